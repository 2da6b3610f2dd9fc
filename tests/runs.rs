//! Running recipes and ad-hoc commands across several local hosts.

use crate::support::Project;

/// Largest number of hosts between their S and E marks in an append-only log.
fn max_overlap(log: &str) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for line in log.lines() {
        match line.trim() {
            "S" => {
                now += 1;
                max = max.max(now);
            }
            "E" => now -= 1,
            _ => {}
        }
    }
    max
}

const OVERLAP: &str = r#"
/// Each host marks its start and end in events.log.
fn overlap() {
    let names = each(hosts(), |h| {
        h.run("echo S >> events.log; sleep 0.3; echo E >> events.log");
        h.name
    });
    print(names);
}
"#;

#[test]
fn forks_bound_how_many_hosts_work_at_once() {
    let p = Project::new().local_hosts(6).recipe("overlap", OVERLAP);
    let out = p.fleet(&["overlap", "--forks", "2"]);
    out.code(0)
        .stdout_has(r#"["h1", "h2", "h3", "h4", "h5", "h6"]"#);
    let log = p.read("events.log");
    assert_eq!(log.lines().count(), 12, "{log}");
    assert_eq!(max_overlap(&log), 2, "{log}");

    std::fs::remove_file(p.path().join("events.log")).unwrap();
    p.fleet(&["overlap", "-f", "6"]).code(0);
    assert_eq!(max_overlap(&p.read("events.log")), 6);
}

const FAIL_EVEN: &str = r#"
/// Hosts with an even number fail.
fn flaky() {
    each(hosts(), |h| {
        step("check", || h.run(`test $(( ${h.vars.n} % 2 )) -eq 1 || { echo "even host" >&2; exit 7; }`));
        h.run("echo done >> done.log");
    });
}
"#;

#[test]
fn a_failing_host_does_not_stop_the_others() {
    let p = Project::new().local_hosts(5).recipe("flaky", FAIL_EVEN);
    let out = p.fleet(&["flaky"]);
    out.code(3)
        .stderr_has("h2 | FAILED: command `test $(( 2 % 2 )) -eq 1 || { echo \"even host\" >&2; exit 7; }` on h2 exited with 7:")
        .stderr_has("h2 | even host")
        .stderr_has("recipes/flaky.rhai:5:")
        .stderr_has("3 changed, 2 failed");
    assert_eq!(p.read("done.log").lines().count(), 3);
    for (host, status) in [
        ("h1", "changed"),
        ("h2", "failed"),
        ("h3", "changed"),
        ("h4", "failed"),
    ] {
        let row = out
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no recap row for {host}\n{out}"));
        assert!(row.contains(status), "{row}");
    }
}

#[test]
fn the_json_recap_lists_every_host() {
    let p = Project::new().local_hosts(4).recipe("flaky", FAIL_EVEN);
    let out = p.fleet(&["flaky", "--json"]);
    out.code(3);
    // stdout is the JSON document and nothing else, whatever the recipe prints.
    let recap: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(recap["recipe"], "flaky");
    assert_eq!(recap["exit_code"], 3);
    let statuses: Vec<_> = recap["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}={}",
                h["host"].as_str().unwrap(),
                h["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        statuses,
        ["h1=changed", "h2=failed", "h3=changed", "h4=failed"]
    );
    assert!(
        recap["hosts"][1]["error"]
            .as_str()
            .unwrap()
            .contains("exited with 7")
    );
}

const ALL_FAIL: &str = r#"
/// Every host fails after recording itself.
fn doomed() {
    each(hosts(), |h| {
        h.run(`echo ${h.name} >> started.log`);
        throw `${h.name} is doomed`;
    });
}
"#;

#[test]
fn max_fail_stops_starting_new_hosts() {
    let p = Project::new().local_hosts(6).recipe("doomed", ALL_FAIL);
    let out = p.fleet(&["doomed", "--forks", "1", "--max-fail", "1"]);
    out.code(3)
        .stderr_has("h1 | FAILED: h1 is doomed (at recipes/doomed.rhai:6:")
        .stderr_has("2 failed, 0 unreachable, 4 skipped");
    assert_eq!(p.read("started.log"), "h1\nh2\n");

    std::fs::remove_file(p.path().join("started.log")).unwrap();
    p.fleet(&["doomed", "--forks", "1", "--max-fail", "50%"])
        .code(3)
        .stderr_has("4 failed, 0 unreachable, 2 skipped");
    assert_eq!(p.read("started.log").lines().count(), 4);

    p.fleet(&["doomed", "--max-fail", "lots"])
        .code(2)
        .stderr_has("invalid --max-fail `lots`");
}

const CHECKED: &str = r#"
/// Reads something, then changes something.
fn tidy() {
    each(hosts(), |h| {
        let seen = h.read("echo read-ran >> reads.log; echo 3");
        h.run("echo run-ran >> runs.log");
        print(`seen ${seen} check=${check_mode()}`);
    });
}
"#;

#[test]
fn check_mode_prints_runs_and_executes_reads() {
    let p = Project::new().local_hosts(2).recipe("tidy", CHECKED);
    let out = p.fleet(&["tidy", "--check"]);
    out.code(0)
        .stdout_has("h1 | would run: echo run-ran >> runs.log")
        .stdout_has("h2 | would run: echo run-ran >> runs.log")
        .stdout_has("h1 | seen 3 check=true")
        .stderr_has("(check mode)");
    assert_eq!(p.read("reads.log").lines().count(), 2);
    assert_eq!(p.read("runs.log"), "");

    p.fleet(&["tidy"]).code(0).stdout_lacks("would run");
    assert_eq!(p.read("runs.log").lines().count(), 2);
}

const VARS: &str = r#"
/// Prints what a host sees.
fn peek() {
    for h in hosts("even") { print(`${h.name} n=${h.vars.n} groups=${h.groups}`); }
    let r = host("h1").read("echo hello; echo oops >&2; exit 4", #{ allow_fail: true });
    let err = r.stderr;
    err.trim();
    print(`code=${r.code} ok=${r.ok} out=${r} err=${err}`);
}
"#;

#[test]
fn recipes_see_vars_groups_and_results() {
    let p = Project::new().local_hosts(4).recipe("peek", VARS);
    let out = p.fleet(&["peek"]);
    out.code(0)
        .stdout_has("h2 n=2 groups=[\"even\", \"local\"]")
        .stdout_has("h4 n=4")
        .stdout_has("code=4 ok=false out=hello err=oops");
}

#[test]
fn limit_narrows_every_selection() {
    let p = Project::new().local_hosts(4).recipe("overlap", OVERLAP);
    p.fleet(&["overlap", "--limit", "h1,h3"])
        .code(0)
        .stdout_has(r#"["h1", "h3"]"#);
    p.fleet(&["overlap", "--limit", "nosuch"])
        .code(2)
        .stderr_has("nosuch");
}

#[test]
fn exec_runs_an_adhoc_command_everywhere() {
    let p = Project::new().local_hosts(3);
    let out = p.fleet(&["exec", "all", "--", "echo", "hi from $((1+1))"]);
    out.code(0)
        .stdout_has("h1 | hi from 2")
        .stdout_has("h3 | hi from 2");
    let out = p.fleet(&["exec", "even", "--", "echo bad >&2; exit 3"]);
    out.code(3)
        .stderr_has("h2 | ! bad")
        .stderr_has("exited with 3: bad");
    p.fleet(&["exec", "h1", "--check", "--", "touch made"])
        .code(0)
        .stdout_has("h1 | would run: touch made");
    assert!(!p.path().join("made").exists());
}

#[test]
fn output_without_a_terminal_has_no_escape_codes() {
    let p = Project::new().local_hosts(3).recipe("flaky", FAIL_EVEN);
    let out = p.fleet(&["flaky"]);
    out.code(3);
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'),
        "{out}"
    );
    // Plain lines start with a timestamp and name their host.
    let line = out.stderr.lines().find(|l| l.contains("h1 | ")).unwrap();
    assert!(line.starts_with("20") && line.contains("Z h1 | "), "{line}");
}

#[test]
fn every_run_writes_a_json_lines_log() {
    let p = Project::new().local_hosts(2).recipe("flaky", FAIL_EVEN);
    p.fleet(&["flaky"]).code(3);
    let logs: Vec<_> = std::fs::read_dir(p.path().join(".fleet/logs"))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 1);
    let text = std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed = records
        .iter()
        .find(|r| r["message"] == "command" && r["host"] == "h2" && r["step"] == "check")
        .expect("h2's command is logged with its step");
    assert_eq!(failed["exit_code"], 7);
    assert_eq!(failed["stderr"], "even host\n");
    assert_eq!(failed["recipe"], "flaky");
    assert!(failed["run_id"].as_str().unwrap().len() > 10);
    assert!(failed["timestamp"].is_string());
    assert!(
        records
            .iter()
            .any(|r| r["message"] == "host ended" && r["host"] == "h2" && r["status"] == "failed")
    );
}

#[test]
fn a_refused_ssh_host_ends_unreachable_and_the_others_go_on() {
    let p = Project::new()
        .local_hosts(1)
        .file(
            "inventory.toml",
            "[hosts.h1]\nconnection = \"local\"\n[hosts.remote]\naddress = \"127.0.0.1\"\nport = 1\n",
        )
        .recipe("overlap", OVERLAP);
    p.fleet(&["overlap"])
        .code(4)
        .stderr_has("remote | UNREACHABLE: remote is unreachable: connect to host 127.0.0.1 port 1: Connection refused")
        .stderr_has("1 changed, 0 failed, 1 unreachable");
}

const SLOW_SHORT: &str = r#"
/// Every host sleeps a little.
fn slow() {
    each(hosts(), |h| h.run("sleep 1"));
}
"#;

const SLOW: &str = r#"
/// Every host sleeps.
fn slow() {
    each(hosts(), |h| h.run("sleep 5"));
    print("after each");
}
"#;

/// The project's single run log, parsed.
fn log_text(p: &Project) -> String {
    let logs: Vec<_> = std::fs::read_dir(p.path().join(".fleet/logs"))
        .unwrap()
        .collect();
    assert_eq!(logs.len(), 1);
    std::fs::read_to_string(logs[0].as_ref().unwrap().path()).unwrap()
}

fn sigint(child: &std::process::Child) {
    // SAFETY: signals the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}

#[test]
fn a_first_ctrl_c_lets_running_hosts_finish_and_starts_no_more() {
    let p = Project::new().local_hosts(4).recipe("slow", SLOW_SHORT);
    let child = crate::support::spawn_fleet(p.path(), &["slow", "--forks", "2"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("no new hosts are started, running ones finish"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 changed, 0 failed, 0 unreachable, 2 skipped"),
        "{stderr}"
    );
    assert!(log_text(&p).contains("\"exit_code\":130"));
}

#[test]
fn a_second_ctrl_c_stops_commands_in_flight() {
    let p = Project::new().local_hosts(4).recipe("slow", SLOW);
    let child = crate::support::spawn_fleet(p.path(), &["slow", "--forks", "2"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    sigint(&child);
    std::thread::sleep(std::time::Duration::from_millis(200));
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("h1 | FAILED: command `sleep 5` on h1 was interrupted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 failed, 0 unreachable, 2 skipped"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("after each"));
    assert!(log_text(&p).contains("\"exit_code\":130"));
}

#[test]
fn timeout_bounds_the_whole_run_with_exit_124() {
    let p = Project::new().local_hosts(2).recipe("slow", SLOW);
    let out = p.fleet(&["slow", "--timeout", "1s"]);
    out.code(124)
        .stderr_has("reached its --timeout of 1s")
        .stderr_has("was interrupted")
        .stderr_has("timed out: commands in flight were stopped");
    p.fleet(&["slow", "--timeout", "soon"])
        .code(2)
        .stderr_has("soon");
}

#[test]
fn verbose_shows_commands_and_output_quiet_shows_only_failures() {
    let p = Project::new().local_hosts(2).recipe("flaky", FAIL_EVEN);
    let out = p.fleet(&["flaky", "-v"]);
    out.code(3)
        .stderr_has("h1 | $ echo done >> done.log")
        .stderr_has("h1 | step: check")
        .stderr_has("h2 | ! even host");
    let out = p.fleet(&["flaky", "-q"]);
    out.code(3).stderr_has("h2 | FAILED");
    assert!(
        !out.stderr.contains("step: check") && !out.stderr.contains("h1 | changed"),
        "{out}"
    );
}

#[test]
fn a_second_run_waits_then_exits_75_naming_the_holder() {
    let p = Project::new().local_hosts(1).recipe("slow", SLOW_SHORT);
    let first = crate::support::spawn_fleet(p.path(), &["slow"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = p.fleet(&["exec", "all", "--lock-wait", "0", "--", "true"]);
    out.code(75)
        .stderr_has("another run holds the lock of this project: `slow` started")
        .stderr_has(&format!("(pid {})", first.id()));
    assert!(first.wait_with_output().unwrap().status.success());
    // Waiting long enough gets the lock.
    let first = crate::support::spawn_fleet(p.path(), &["slow"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.fleet(&["exec", "all", "--lock-wait", "5", "--", "true"])
        .code(0);
    assert!(first.wait_with_output().unwrap().status.success());
}

#[test]
fn a_killed_run_leaves_no_lock_behind() {
    let p = Project::new().local_hosts(1).recipe("slow", SLOW);
    let mut run = crate::support::spawn_fleet(p.path(), &["slow"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    run.kill().unwrap();
    run.wait().unwrap();
    p.fleet(&["exec", "all", "--", "true"]).code(0);
}

#[test]
fn an_adhoc_run_outside_a_project_leaves_the_working_directory_alone() {
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("hosts.toml"),
        "[hosts.here]\nconnection = \"local\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(crate::support::fleet_bin())
        .args(["-i", "hosts.toml", "exec", "all", "--", "echo hi"])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["hosts.toml"]);
    let data = home.path().join(".local/state/fleet");
    assert!(
        data.join("state/.git").is_dir()
            && data.join("logs").is_dir()
            && data.join("lock").is_file()
    );
}

const ROLLING: &str = r#"
/// Rolls out in batches; h3 fails.
/// @arg share: string = "0"  max_fail per batch
fn roll(share) {
    each(hosts(), #{ serial: 2, max_fail: share }, |h| {
        h.run(`echo ${h.name} >> touched.log`);
        if h.name == "h3" { throw "h3 breaks"; }
    });
}
"#;

#[test]
fn rolling_batches_stop_after_a_failing_batch_and_skip_the_rest() {
    let p = Project::new().local_hosts(6).recipe("roll", ROLLING);
    let out = p.fleet(&["roll", "--forks", "1"]);
    out.code(3)
        .stderr_has("the rollout stopped after batch 2 (1 of 2 hosts failed)")
        .stderr_has("h5 | skipped: the rollout stopped after batch 2")
        .stderr_has("3 changed, 1 failed, 0 unreachable, 2 skipped");
    assert_eq!(p.read("touched.log"), "h1\nh2\nh3\nh4\n");
    std::fs::remove_file(p.path().join("touched.log")).unwrap();
    // Half a batch may fail: the rollout goes on.
    p.fleet(&["roll", "--share", "50%"])
        .code(3)
        .stderr_has("5 changed, 1 failed");
    assert_eq!(p.read("touched.log").lines().count(), 6);
    p.recipe(
        "bad",
        "/// Bad.\nfn bad() { each(hosts(), #{ serial: \"lots\" }, |h| h.name); }\n",
    )
    .fleet(&["bad"])
    .code(2)
    .stderr_has("option `serial` of each(): `lots` is not a count like 2 or a share like \"25%\"");
}
