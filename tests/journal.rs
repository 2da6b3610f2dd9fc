//! The run journal in the state repository: records, history, retries, snapshots.

use crate::support::Project;

const FLAKY: &str = r#"
/// Hosts with an even number fail.
/// @arg label: string = "x"  a label
fn flaky(label) {
    each(hosts(), |h| {
        step("check", || h.run(`test $(( ${h.vars.n} % 2 )) -eq 1 || { echo "even host" >&2; exit 7; }`));
        h.run(`echo ${label} done`);
    });
}
"#;

fn head_message(p: &Project) -> String {
    let repo = git2::Repository::open(p.path().join("state")).expect("state repo exists");
    let commit = repo.head().unwrap().peel_to_commit().unwrap();
    commit.message().unwrap().to_string()
}

fn records(p: &Project) -> Vec<serde_json::Value> {
    let out = p.fleet(&["history", "--json"]);
    out.code(0);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_run_with_a_failing_host_still_commits_its_journal() {
    let p = Project::new().local_hosts(3).recipe("flaky", FLAKY);
    p.fleet(&["flaky", "--label", "first"]).code(3);
    assert_eq!(
        head_message(&p),
        "flaky --label first: 0 ok, 2 changed, 1 failed, 0 unreachable"
    );
    let runs = records(&p);
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["recipe"], "flaky");
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["params"]["label"], "first");
    assert_eq!(r["fleet_version"], env!("CARGO_PKG_VERSION"));
    assert!(r["user"].as_str().is_some() && r["controller"].as_str().is_some());
    let h2 = r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "h2")
        .unwrap();
    assert_eq!(h2["status"], "failed");
    assert_eq!(h2["steps"][0]["name"], "check");
    assert_eq!(h2["steps"][0]["commands"][0]["exit_code"], 7);
    assert_eq!(h2["steps"][0]["commands"][0]["stderr_tail"], "even host");
    let id = r["run_id"].as_str().unwrap();
    let file = p
        .path()
        .join("state/runs")
        .join(&id[0..4])
        .join(&id[4..6])
        .join(format!("{id}.json"));
    assert!(file.is_file(), "{}", file.display());
    // fleet show gives the same run per host with output tails.
    p.fleet(&["show", "last"])
        .code(0)
        .stdout_has(&format!("run {id}: flaky --label first"))
        .stdout_has("h2 failed")
        .stdout_has("  step check")
        .stdout_has("      ! even host")
        .stdout_has("      | first done");
}

#[test]
fn an_interrupted_run_commits_its_journal_with_130() {
    let p = Project::new().local_hosts(2).recipe(
        "slow",
        "/// Sleeps.\nfn slow() {\n    each(hosts(), |h| h.run(\"sleep 5\"));\n}\n",
    );
    let child = crate::support::spawn_fleet(p.path(), &["slow"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    for _ in 0..2 {
        // SAFETY: signals the child we started.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(
        head_message(&p),
        "slow: 0 ok, 0 changed, 2 failed, 0 unreachable"
    );
    assert_eq!(records(&p)[0]["exit_code"], 130);
}

#[test]
fn history_filters_by_host_recipe_and_date() {
    let p = Project::new().local_hosts(3).recipe("flaky", FLAKY).recipe(
        "one",
        "/// One host.\nfn one() {\n    host(\"h3\").run(\"true\");\n}\n",
    );
    p.fleet(&["flaky"]).code(3);
    p.fleet(&["one"]).code(0);
    p.fleet(&["exec", "h1", "--", "true"]).code(0);
    let out = p.fleet(&["history"]);
    out.code(0)
        .stdout_has("RUN")
        .stdout_has("flaky")
        .stdout_has("one")
        .stdout_has("exec");
    let ids = |args: &[&str]| -> Vec<String> {
        let out = p.fleet(&[&["history", "--json"], args].concat());
        out.code(0);
        serde_json::from_str::<Vec<serde_json::Value>>(&out.stdout)
            .unwrap()
            .iter()
            .map(|r| r["recipe"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), ["exec", "one", "flaky"], "newest first");
    assert_eq!(ids(&["--recipe", "flaky"]), ["flaky"]);
    assert_eq!(ids(&["--host", "h3"]), ["one", "flaky"]);
    assert_eq!(ids(&["--host", "h1"]), ["exec", "flaky"]);
    assert_eq!(ids(&["--since", "1h"]).len(), 3);
    assert!(ids(&["--since", "2999-01-01"]).is_empty());
    p.fleet(&["history", "--since", "whenever"])
        .code(2)
        .stderr_has("--since `whenever`");
}

#[test]
fn retry_failed_reruns_exactly_the_failed_hosts_with_the_same_arguments() {
    let p = Project::new().local_hosts(5).recipe("flaky", FLAKY);
    p.fleet(&["flaky", "--label", "again"]).code(3);
    let first = records(&p)[0]["run_id"].as_str().unwrap().to_string();
    let out = p.fleet(&["flaky", "--retry-failed"]);
    out.code(3)
        .stderr_has(&format!("retrying run {first} of `flaky` on h2, h4"));
    let retry = &records(&p)[0];
    let hosts: Vec<&str> = retry["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["h2", "h4"]);
    assert_eq!(retry["params"]["label"], "again");
    assert!(
        retry["args"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(format!("--retry-failed={first}")))
    );
    // An explicit run id works too, and a run without failures has nothing to retry.
    p.fleet(&["flaky", &format!("--retry-failed={first}")])
        .code(3);
    p.fleet(&["exec", "h1", "--", "true"]).code(0);
    p.fleet(&["flaky", "--retry-failed", "--limit", "h1"])
        .code(2)
        .stderr_has("leave out --limit");
}

#[test]
fn snapshots_land_in_the_state_repo_and_config_diff_shows_changes() {
    let p = Project::new().local_hosts(1);
    let conf = p.path().join("etc-app.conf");
    let conf = conf.to_str().unwrap().to_string();
    let p = p.recipe(
        "capture",
        &format!(
            "/// Writes and captures a config file.\n/// @arg value: string = \"1\"\nfn capture(value) {{\n    each(hosts(), |h| {{\n        h.write(\"{conf}\", \"port = \" + value + \"\\n\", #{{ mode: \"0640\" }});\n        h.snapshot_config([\"{conf}\", \"/nonexistent/file\"]);\n    }});\n}}\n"
        ),
    );
    p.fleet(&["capture", "--value", "80"]).code(0);
    let stored = p
        .path()
        .join("state/hosts/h1")
        .join(conf.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), "port = 80\n");
    let modes = std::fs::read_to_string(p.path().join("state/hosts/h1/.modes")).unwrap();
    assert_eq!(modes, format!("640 {conf}\n"));
    p.fleet(&["capture", "--value", "8080"]).code(0);
    let out = p.fleet(&["config-diff", "h1"]);
    out.code(0)
        .stdout_has("-port = 80")
        .stdout_has("+port = 8080");
    // Between explicit runs: the first run against the newest state.
    let runs = records(&p);
    let oldest = runs.last().unwrap()["run_id"].as_str().unwrap();
    p.fleet(&["config-diff", "h1", oldest])
        .code(0)
        .stdout_has("+port = 8080");
    p.fleet(&["config-diff", "nosuch"])
        .code(2)
        .stderr_has("no configuration of nosuch");
    // The state repository's own history shows it too.
    let repo = git2::Repository::open(p.path().join("state")).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    assert_eq!(walk.count(), 2, "one commit per run");
}

#[test]
fn recipes_rev_runs_the_recipe_as_committed_at_a_revision() {
    let p = Project::new().local_hosts(1).recipe(
        "hello",
        "/// Says hello.\nfn hello() { print(\"version one\"); }\n",
    );
    let repo = git2::Repository::init(p.path()).unwrap();
    let commit = |message: &str| {
        let mut index = repo.index().unwrap();
        index
            .add_all(
                ["fleet.toml", "inventory.toml", "recipes"],
                git2::IndexAddOption::DEFAULT,
                None,
            )
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.org").unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .map(|h| h.peel_to_commit().unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    };
    let v1 = commit("v1");
    repo.tag_lightweight("v1", &repo.find_object(v1, None).unwrap(), false)
        .unwrap();
    std::fs::write(
        p.path().join("recipes/hello.rhai"),
        "/// Says hello.\nfn hello() { print(\"version two\"); }\n",
    )
    .unwrap();
    commit("v2");
    p.fleet(&["hello"]).code(0).stdout_has("version two");
    p.fleet(&["--recipes-rev", "v1", "hello"])
        .code(0)
        .stdout_has("version one");
    let r = &records(&p)[0];
    assert_eq!(r["recipes_rev"], "v1");
    assert_eq!(r["recipe_commit"], v1.to_string());
    p.fleet(&["--recipes-rev", "nope", "hello"])
        .code(2)
        .stderr_has("--recipes-rev nope");
}

#[test]
fn a_journal_that_cannot_be_written_is_reported_not_lost_silently() {
    let p = Project::new()
        .file("fleet.toml", "state_dir = \"blocked\"\n")
        .file("blocked", "a file where the state repository should be\n")
        .local_hosts(1);
    p.fleet(&["exec", "all", "--", "true"])
        .code(1)
        .stderr_has("error: the journal of run")
        .stderr_has("was not written");
}

/// Runs fleet in the project with `sh`'s `ulimit -f` (files may not grow beyond about
/// 8 KiB, as on a full disk), SIGXFSZ ignored so a write fails instead of killing fleet.
fn fleet_on_a_full_disk(p: &Project, args: &str) -> crate::support::Output {
    let bin = crate::support::fleet_bin();
    let script = format!(
        "trap '' XFSZ; ulimit -f 16; exec '{}' {args}",
        bin.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .current_dir(p.path())
        .output()
        .unwrap();
    crate::support::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn records_are_written_atomically() {
    let p = Project::new().local_hosts(1);
    p.fleet(&["exec", "all", "--", "true"]).code(0);
    // The record (with a 200 KB output tail) cannot be written whole.
    let out = fleet_on_a_full_disk(&p, "exec all -- 'head -c 200000 /dev/zero | tr \"\\0\" x'");
    out.code(1).stderr_has("was not written");
    let history = p.fleet(&["history"]);
    history.code(0);
    assert!(!history.stderr.contains("skipping"), "{history}");
    assert_eq!(history.stdout.lines().count(), 2, "{history}");
    // Only the first run's record is there, and nothing is left staged.
    let mut files = Vec::new();
    let mut dirs = vec![p.path().join("state/runs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            match e.file_type().unwrap().is_dir() {
                true => dirs.push(e.path()),
                false => files.push(e.file_name()),
            }
        }
    }
    assert_eq!(files.len(), 1, "{files:?}");
    let repo = git2::Repository::open(p.path().join("state")).unwrap();
    let statuses = repo.statuses(None).unwrap();
    let dirty: Vec<_> = statuses
        .iter()
        .filter_map(|s| s.path().ok().map(String::from))
        .collect();
    assert!(dirty.is_empty(), "{dirty:?}");
}
