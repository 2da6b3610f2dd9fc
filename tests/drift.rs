//! `fleet drift`: a container host configured with `configure`, then changed by hand;
//! drift finds exactly those changes, keeps its `since` over time, and `configure`
//! fixes them. `update --check` refreshes stale package lists first.

use crate::support::containers::{ContainerHost, TestKey, project_for};
use crate::support::{Output, fleet_bin, run_fleet};
use std::path::Path;

/// The local apt repository of the update tests (offline): fleet-test-pkg installed.
fn fixture(host: &ContainerHost) {
    let out = std::process::Command::new("docker")
        .args(["exec", &host.id, "sh", "-c", crate::update::FIXTURE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fixture: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// fleet with its clock at `now` (RFC 3339).
fn fleet_at(dir: &Path, now: &str, args: &[&str]) -> Output {
    let out = std::process::Command::new(fleet_bin())
        .args(args)
        .current_dir(dir)
        .env("FLEET_NOW", now)
        .output()
        .expect("fleet runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The journal record with the greatest run id.
fn newest_run(project: &Path) -> serde_json::Value {
    let mut stack = vec![project.join("state/runs")];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort_by_key(|f| f.file_name().unwrap().to_owned());
    serde_json::from_str(&std::fs::read_to_string(files.last().unwrap()).unwrap()).unwrap()
}

const VARS: &str = r#"modules = { baseline_tools = ["fleet-test-pkg"], ufw = true }, ssh = { root_login = "prohibit-password", password_auth = false, port = 22 }, ufw = { preset = "web" }"#;

#[test]
fn drift_finds_hand_made_changes_keeps_its_since_and_configure_fixes_them() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    fixture(&host);
    let p = project_for(&key, &[("c1", &host, VARS)]);
    // A second host that declares nothing: it never drifts.
    let inventory = p.read("inventory.toml") + "[hosts.l1]\nconnection = \"local\"\n";
    std::fs::write(p.path().join("inventory.toml"), inventory).unwrap();
    let before = run_fleet(p.path(), &["status", "--cached"]);
    assert!(
        before
            .stdout
            .lines()
            .any(|l| l.starts_with("c1") && l.split_whitespace().nth(8) == Some("?")),
        "{before}"
    );

    run_fleet(p.path(), &["configure"]).code(0);
    fleet_at(p.path(), "2026-12-01T10:00:00Z", &["drift"])
        .code(0)
        .stdout_has("c1  none")
        .stdout_has("l1  none");

    // By hand, outside fleet: a rule removed, a managed file edited, a package removed.
    host.exec("ufw delete allow 443/tcp >/dev/null");
    host.exec("echo 'PermitEmptyPasswords no' >> /etc/ssh/sshd_config.d/10-fleet.conf");
    host.exec("dpkg -r fleet-test-pkg >/dev/null 2>&1");

    let first = fleet_at(p.path(), "2026-12-01T11:00:00Z", &["drift"]);
    first
        .code(3)
        .stdout_has("c1  3 changes since 0s")
        .stdout_has("l1  none");
    let show = fleet_at(
        p.path(),
        "2026-12-01T11:00:00Z",
        &["drift", "--show", "c1", "--json"],
    );
    show.code(3);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let changes = v["changes"].as_array().unwrap();
    let listed: Vec<&str> = changes
        .iter()
        .map(|c| c["change"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:#?}");
    assert!(
        listed[0].contains("install --no-install-recommends -- fleet-test-pkg"),
        "{listed:#?}"
    );
    assert!(
        listed[1].starts_with("run: ufw allow 443/tcp comment 'fleet: web'"),
        "{listed:#?}"
    );
    assert!(
        listed[2].starts_with("write /etc/ssh/sshd_config.d/10-fleet.conf"),
        "{listed:#?}"
    );
    assert!(
        changes[2]["detail"]
            .as_str()
            .unwrap()
            .contains("-PermitEmptyPasswords no"),
        "{show}"
    );
    fleet_at(p.path(), "2026-12-01T11:00:00Z", &["drift", "--show", "c1"])
        .code(3)
        .stdout_has("- [ssh] write /etc/ssh/sshd_config.d/10-fleet.conf")
        .stdout_has("    -PermitEmptyPasswords no");

    // An hour later the same set: the same since, stored as a reference.
    let later = fleet_at(p.path(), "2026-12-01T12:00:00Z", &["drift"]);
    later.code(3).stdout_has("c1  3 changes since 1h 0m");
    let status = fleet_at(
        p.path(),
        "2026-12-01T12:00:00Z",
        &["status", "--cached", "--drifted"],
    );
    status.code(0).stdout_has("3 changes since 1h 0m");
    assert!(
        status.stdout.lines().any(|l| l.starts_with("c1")),
        "{status}"
    );
    assert!(
        !status.stdout.lines().any(|l| l.starts_with("l1")),
        "{status}"
    );
    let html = p.path().join("report.html");
    run_fleet(p.path(), &["report", "--html", html.to_str().unwrap()]).code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("3 pending (drift)"), "{page}");
    assert!(page.contains("[ufw] run: ufw allow 443"), "{page}");
    let record = newest_run(p.path());
    let c1 = record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "c1")
        .unwrap();
    assert_eq!(c1["drift"]["count"], 3, "{c1}");
    assert!(c1["drift"].get("changes").is_none(), "{c1}");
    assert!(c1["drift"]["same_as"].is_string(), "{c1}");

    run_fleet(p.path(), &["configure"]).code(0);
    fleet_at(p.path(), "2026-12-01T13:00:00Z", &["drift"])
        .code(0)
        .stdout_has("c1  none");
    fleet_at(
        p.path(),
        "2026-12-01T13:00:00Z",
        &["status", "--cached", "--drifted"],
    )
    .code(0)
    .stdout_lacks("c1");
}

#[test]
fn update_check_refreshes_stale_lists_and_counts_what_apt_would() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    // The repository is new and the lists never saw it: stale.
    fixture(&host);
    let p = project_for(&key, &[("u1", &host, "")]);
    let stale = run_fleet(p.path(), &["--check", "update", "--no-refresh"]);
    stale.code(0);
    let row = |o: &Output| {
        o.stdout
            .lines()
            .find(|l| l.starts_with("u1 ") && !l.starts_with("u1 |"))
            .unwrap_or_else(|| panic!("{o}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(row(&stale), "0");
    let check = run_fleet(p.path(), &["--check", "update"]);
    check.code(0);
    let apt = host.exec("apt-get update -q >/dev/null 2>&1; apt-get -s upgrade | grep -c '^Inst '");
    assert_eq!(row(&check), apt.trim(), "{check}");
    assert_eq!(row(&check), "1");
    // Nothing upgraded: the check changed nothing but the cache.
    assert_eq!(host.exec("cat /usr/share/fleet-test/version").trim(), "1.0");
}
