//! Many hosts from one controller: the ssh masters a run keeps open follow `--forks`
//! (fleet.toml `max_masters`, default 2 × forks), not the inventory, and a host whose
//! master was closed for the bound is reached again when a recipe comes back to it.

use crate::support::spawn_fleet;
use crate::support::sshd::{TestFleet, ssh_masters_for};
use std::time::{Duration, Instant};

/// Every host sleeps a little so the run lasts long enough to be watched; then the
/// recipe returns to the first host after all the others.
const ROUND: &str = r#"
/// Each host once, then the first one again.
fn round() {
    let names = each(hosts(), |h| {
        h.run("sleep 0.2", #{ changed: false });
        h.read("echo $FLEET_TEST_HOST")
    });
    print(`seen ${names.len()} hosts`);
    let first = host("n01");
    first.run("echo back on n01 >&2", #{ changed: false });
    print(`back: ${first.read("echo again-$FLEET_TEST_HOST")}`);
}
"#;

#[test]
fn thirty_hosts_with_five_forks_never_hold_more_than_ten_masters() {
    // Three listeners, ten inventory names each: thirty hosts to fleet (separate
    // masters, separate records) on three sshd processes.
    let f = TestFleet::start(3);
    let mut inventory = String::new();
    for i in 1..=30 {
        let listener = f.host(&format!("s{}", (i - 1) % 3 + 1));
        inventory.push_str(&format!(
            "[hosts.n{i:02}]\naddress = \"{}\"\nport = {}\ngroups = [\"many\"]\n\n",
            listener.address, listener.port
        ));
    }
    std::fs::write(f.path().join("inventory.toml"), inventory).unwrap();
    std::fs::create_dir_all(f.path().join("recipes")).unwrap();
    std::fs::write(f.path().join("recipes/round.rhai"), ROUND).unwrap();

    let mut child = spawn_fleet(f.path(), &["round", "--forks", "5", "--recap", "full"]);
    let (mut peak, mut samples) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the run did not end in 2 minutes"
        );
        let live = ssh_masters_for(f.path());
        assert!(
            live.len() <= 10,
            "{} ssh processes at once, more than 2 × forks: {live:#?}",
            live.len()
        );
        peak = peak.max(live.len());
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Watched while it worked, and the bound was reached: masters were closed and
    // opened again, not merely never opened.
    assert!(
        samples > 20 && peak >= 6,
        "peak {peak} in {samples} samples"
    );
    assert!(stdout.contains("seen 30 hosts"), "{stdout}");
    assert!(stdout.contains("back: again-s1"), "{stdout}");
    assert!(
        stderr.contains("30 ok, 0 changed, 0 failed, 0 unreachable"),
        "{stderr}"
    );
    assert!(ssh_masters_for(f.path()).is_empty(), "ssh processes left");

    // The journal has every host; n01 ran its commands of both visits, all exit 0.
    let show = crate::support::run_fleet(f.path(), &["show", "last", "--json"]);
    show.code(0);
    let record: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let hosts = record["hosts"].as_array().expect("hosts in the record");
    assert_eq!(hosts.len(), 30, "{record:#}");
    let n01 = hosts
        .iter()
        .find(|h| h["host"] == "n01")
        .expect("n01 in the record");
    assert_eq!(n01["status"], "ok", "{n01:#}");
    let commands: Vec<&serde_json::Value> = n01["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["commands"].as_array().unwrap())
        .collect();
    assert_eq!(commands.len(), 4, "{n01:#}");
    assert!(commands.iter().all(|c| c["exit_code"] == 0), "{n01:#}");
    // The run's log says how many masters were open at most.
    let logs = std::fs::read_dir(f.path().join(".fleet/logs")).unwrap();
    let said = logs
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|t| t.contains("ssh masters: at most"))
        .expect("a run log with the masters line");
    let line = said.lines().find(|l| l.contains("ssh masters")).unwrap();
    assert!(line.contains("(max_masters 10)"), "{line}");
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn controller_journals_pushed_to_branches_merge_with_results_fetch() {
    use crate::support::{Project, run_fleet};
    let shared = tempfile::tempdir().unwrap();
    let bare = shared.path().join("state.git");
    git(
        shared.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    // Two controllers, each with its own clone of the project and state repository,
    // each running its shard and pushing its journal to its own branch.
    let shards = [("a", "h1:h2"), ("b", "h3:h4")];
    let mut controllers = Vec::new();
    for (name, shard) in shards {
        let p = Project::new().local_hosts(4);
        // `fleet status` is the run that `status --cached` shows (facts per host).
        p.fleet(&["status", "-l", shard]).code(0);
        git(
            &p.path().join("state"),
            &[
                "push",
                "-q",
                bare.to_str().unwrap(),
                &format!("HEAD:refs/heads/controllers/{name}"),
            ],
        );
        controllers.push(p);
    }
    // A third clone merges both with one command; the views show all four hosts.
    let merged = Project::new().local_hosts(4);
    let from = bare.to_str().unwrap();
    run_fleet(merged.path(), &["results", "fetch", "--from", from])
        .code(0)
        .stdout_has("merged the journals of 2 controller(s): a, b");
    // Again: nothing new, nothing breaks.
    run_fleet(merged.path(), &["results", "fetch", "--from", from]).code(0);
    let history = run_fleet(merged.path(), &["history", "--json"]);
    history.code(0);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs:#}");
    let status = run_fleet(merged.path(), &["status", "--cached", "--json"]);
    status.code(0);
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    for host in ["h1", "h2", "h3", "h4"] {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["host"] == host)
            .unwrap_or_else(|| panic!("no {host} in {rows:#}"));
        assert!(row["gathered_at"].is_string(), "{row:#}");
    }
    // A hostile prefix is refused, and the two prefixes may not be the same.
    run_fleet(
        merged.path(),
        &["results", "fetch", "--from", from, "--controllers", "-x"],
    )
    .code(2);
    run_fleet(
        merged.path(),
        &[
            "results",
            "fetch",
            "--from",
            from,
            "--controllers",
            "results",
        ],
    )
    .code(2)
    .stderr_has("different branch prefixes");
}

#[test]
fn on_a_terminal_thirty_hosts_end_in_counts_and_the_failures() {
    use crate::support::{Project, on_terminal};
    let p = Project::new().local_hosts(30).recipe(
        "some_fail",
        "/// h7 fails, the others change.\nfn some_fail() {\n    each(hosts(), |h| {\n        h.run(\"sleep 0.1\");\n        if h.name == \"h7\" { h.run(\"exit 5\"); }\n    });\n}\n",
    );
    let shown = on_terminal(p.path(), "some-fail --forks 12", None);
    // The progress counted the hosts in flight; hosts that ended well got no line and
    // no row; the failure has both.
    assert!(shown.contains("in flight"), "{shown}");
    assert!(!shown.contains("h3 | changed"), "{shown}");
    assert!(shown.contains("h7 | FAILED"), "{shown}");
    assert!(
        shown.contains("29 hosts ok, changed or skipped not listed (--recap full lists every host"),
        "{shown}"
    );
    assert!(shown.contains("0 ok, 29 changed, 1 failed"), "{shown}");
    // --recap full: every host has its row again.
    let full = on_terminal(p.path(), "some-fail --forks 12 --recap full", None);
    assert!(
        full.lines()
            .any(|l| l.starts_with("h3 ") && l.contains("changed")),
        "{full}"
    );
    assert!(!full.contains("not listed"), "{full}");
}
