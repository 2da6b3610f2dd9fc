//! Pull mode: a host runs a recipe from a repository (a bare repo here) on itself,
//! keeps its journal, survives a broken remote with the last good checkout, and pushes
//! its journal to a results branch.

use crate::support::run_fleet;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
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

pub(crate) fn publish(work: &Path, version: &str) {
    std::fs::write(
        work.join("recipes/apply.rhai"),
        format!(
            "/// Apply the site's settings to this host.\n/// @arg target: string  file to write\nfn apply(target) {{\n    each(hosts(\"all\"), |h| {{ h.write(target, \"{version} \" + h.vars.role + \"\\n\"); }});\n}}\n"
        ),
    )
    .unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", version]);
    git(work, &["push", "-q", "origin", "main"]);
}

/// A site repository (bare `site.git`, pushed from `work` with `inventory` and the
/// `apply` recipe at v1) in a temp dir: (the dir, the remote, the work tree).
pub(crate) fn site(inventory: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("site.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("recipes")).unwrap();
    git(
        tmp.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(&work, &["init", "-q"]);
    git(
        &work,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    std::fs::write(work.join("fleet.toml"), "").unwrap();
    std::fs::write(work.join("inventory.toml"), inventory).unwrap();
    std::fs::write(work.join(".gitignore"), ".fleet/\n").unwrap();
    publish(&work, "v1");
    (tmp, remote, work)
}

#[test]
fn pull_runs_the_repositorys_recipe_here_and_survives_a_broken_remote() {
    let (tmp, remote, work) = site(
        "[hosts.box-1]\naddress = \"10.9.9.9\"\nuser = \"nobody\"\nvars = { role = \"web\" }\n\n[hosts.other]\naddress = \"10.9.9.8\"\n",
    );

    let base = tmp.path().join("pull");
    let target = tmp.path().join("applied");
    let here = tmp.path();
    let pull = |extra: &[&str]| {
        let mut args = vec![
            "pull",
            "--repo",
            remote.to_str().unwrap(),
            "--dir",
            base.to_str().unwrap(),
            "--host",
            "box-1",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["apply", target.to_str().unwrap()]);
        run_fleet(here, &args)
    };

    // The host's own entry (made local) and its vars apply; `other` is never touched.
    pull(&[]).code(0).stderr_has("pulled ").stderr_has("box-1");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1 web\n");

    publish(&work, "v2");
    pull(&[]).code(0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v2 web\n");

    // The remote is gone: the last good checkout runs, and says so.
    std::fs::rename(&remote, tmp.path().join("moved.git")).unwrap();
    std::fs::remove_file(&target).unwrap();
    pull(&[])
        .code(0)
        .stderr_has("warning: running the last good checkout");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v2 web\n");
    std::fs::rename(tmp.path().join("moved.git"), &remote).unwrap();

    // The journal stays here and goes to the results branch.
    pull(&["--push-results", "results"])
        .code(0)
        .stderr_has("journal pushed to");
    let files = git(&remote, &["ls-tree", "-r", "--name-only", "results/box-1"]);
    assert_eq!(
        files.lines().filter(|f| f.ends_with(".json")).count(),
        4,
        "{files}"
    );
    let history = run_fleet(
        &base.join("checkout"),
        &[
            "--state-dir",
            base.join("state").to_str().unwrap(),
            "history",
        ],
    );
    history.code(0).stdout_has("apply");
}

/// fleet in `dir` as if it were `later` after now (FLEET_NOW).
fn fleet_later(dir: &Path, later: std::time::Duration, args: &[&str]) -> (i32, String, String) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + later);
    let out = Command::new(crate::support::fleet_bin())
        .args(args)
        .current_dir(dir)
        .env("FLEET_NOW", now.to_string())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Two pull hosts, box-1 (hourly, the default) and box-2 (every 30 minutes), that have
/// each run `apply` once and pushed their results to `results/<host>` of the site
/// repository: (temp dir, site repository, project checkout).
pub(crate) fn two_pull_hosts_pushed_results() -> (tempfile::TempDir, PathBuf, PathBuf) {
    // box-2's timer runs every 30 minutes, box-1's every hour (the default).
    let (tmp, remote, work) = site(
        "[hosts.box-1]\naddress = \"10.9.9.9\"\nvars = { role = \"web\" }\n\n[hosts.box-2]\naddress = \"10.9.9.8\"\nvars = { role = \"db\", pull_interval = \"30m\" }\n",
    );

    for host in ["box-1", "box-2"] {
        let base = tmp.path().join(format!("pull-{host}"));
        let target = tmp.path().join(format!("applied-{host}"));
        run_fleet(
            tmp.path(),
            &[
                "pull",
                "--repo",
                remote.to_str().unwrap(),
                "--dir",
                base.to_str().unwrap(),
                "--host",
                host,
                "--push-results",
                "results",
                "apply",
                target.to_str().unwrap(),
            ],
        )
        .code(0)
        .stderr_has("journal pushed to");
    }
    (tmp, remote, work)
}

#[test]
fn pull_hosts_results_are_fetched_and_shown_with_last_seen_and_overdue() {
    let (tmp, remote, work) = two_pull_hosts_pushed_results();
    // A branch that is no host name is ignored.
    git(&remote, &["branch", "results/-bad", "results/box-1"]);

    // Without a remote for the state repository, fleet says what to give.
    run_fleet(&work, &["results", "fetch"])
        .code(2)
        .stderr_has("--from URL");
    run_fleet(
        &work,
        &["results", "fetch", "--from", remote.to_str().unwrap()],
    )
    .code(0)
    .stdout_has("fetched the results of 2 pull host(s): box-1, box-2");

    // 90 minutes later: box-2 (30m) is overdue, box-1 (1h) is not.
    let (code, out, err) = fleet_later(
        &work,
        std::time::Duration::from_secs(90 * 60),
        &["status", "--cached"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let pull_row = |host: &str| -> Vec<String> {
        out.lines()
            .rev()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no pull row for {host}:\n{out}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    assert!(out.contains("PULL HOST"), "{out}");
    let (box1, box2) = (pull_row("box-1"), pull_row("box-2"));
    assert_eq!(
        [&box1[..3], &box1[4..]].concat(),
        ["box-1", "apply", "changed", "1h 0m", "on time"],
        "{out}"
    );
    assert_eq!(
        [&box2[..3], &box2[4..]].concat(),
        ["box-2", "apply", "changed", "30m", "OVERDUE"],
        "{out}"
    );
    // Last seen: the pushed run's end, 90 minutes (and the test's seconds) ago.
    assert!(box1[3].starts_with("1h 3"), "{out}");
    assert!(!out.contains("-bad"), "{out}");

    let (code, json, err) = fleet_later(
        &work,
        std::time::Duration::from_secs(90 * 60),
        &["status", "--cached", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pull = |host: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["host"] == host)
            .unwrap()["pull"]
            .clone()
    };
    assert_eq!(pull("box-1")["overdue"], false);
    assert_eq!(pull("box-2")["overdue"], true);
    assert_eq!(pull("box-2")["interval_secs"], 1800);
    assert!(pull("box-1")["last_seen"].as_str().unwrap().ends_with('Z'));

    // The HTML report has them too, an overdue host marked.
    let html = tmp.path().join("report.html");
    let (code, _, err) = fleet_later(
        &work,
        std::time::Duration::from_secs(90 * 60),
        &["report", "--html", html.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<h2>Pull hosts</h2>"), "{page}");
    assert!(
        page.contains(r#"<tr class="failed" data-host="box-2"><td>box-2</td>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<tr class="" data-host="box-1"><td>box-1</td>"#),
        "{page}"
    );
}

#[test]
fn pull_enroll_prints_a_script_with_the_units_and_refuses_hostile_values() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_fleet(
        tmp.path(),
        &[
            "pull",
            "enroll",
            "--repo",
            "https://git.example.com/ops/site.git",
            "--interval",
            "30m",
            "--push-results",
            "results",
            "--unsigned",
            "--print",
        ],
    );
    out.code(0)
        .stdout_has("--repo https://git.example.com/ops/site.git \\\n")
        .stdout_has("    --push-results results \\\n    update\n")
        .stdout_has("OnUnitActiveSec=1800s\n")
        .stdout_has("systemctl enable --now fleet-pull.timer\n")
        .stdout_has("require_signed = false\n");
    let check = Command::new("sh")
        .args(["-n", "-c", &out.stdout])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", out.stdout);
    // The same again: the same script.
    let again = run_fleet(
        tmp.path(),
        &[
            "pull",
            "enroll",
            "--repo",
            "https://git.example.com/ops/site.git",
            "--interval",
            "30m",
            "--push-results",
            "results",
            "--unsigned",
            "--print",
        ],
    );
    assert_eq!(again.stdout, out.stdout);
    // Signed: the script installs who may sign before the timer starts.
    let signers = tmp.path().join("allowed_signers");
    std::fs::write(
        &signers,
        "ops@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN\n",
    )
    .unwrap();
    let signed = run_fleet(
        tmp.path(),
        &[
            "pull",
            "enroll",
            "--repo",
            "/srv/site",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--print",
        ],
    );
    signed
        .code(0)
        .stdout_has(
            "cat > /var/lib/fleet-pull/allowed_signers <<'FLEET_EOF'\nops@example.com ssh-ed25519",
        )
        .stdout_has("require_signed = true\n");
    std::fs::write(&signers, "ops ssh-ed25519 K\nFLEET_EOF\ntouch /pwned\n").unwrap();
    run_fleet(
        tmp.path(),
        &[
            "pull",
            "enroll",
            "--repo",
            "/srv/site",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--print",
        ],
    )
    .code(2)
    .stderr_has("not an allowed signers file")
    .stdout_lacks("pwned");

    run_fleet(
        tmp.path(),
        &[
            "pull",
            "enroll",
            "--repo",
            "x\nExecStartPre=/bin/sh",
            "--unsigned",
            "--print",
        ],
    )
    .code(2)
    .stderr_has("cannot go into a unit file")
    .stdout_lacks("ExecStart");
    // Without --print it enrolls over SSH: the hosts come from the inventory.
    run_fleet(
        tmp.path(),
        &["pull", "enroll", "--repo", "/srv/site", "--unsigned"],
    )
    .code(2)
    .stderr_has("no inventory found");
}
