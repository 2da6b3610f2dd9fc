//! Hostile inventories, arguments and stops (issue 13): nothing from an inventory becomes
//! an option or a path outside its root, and a stopped run leaves no process behind on
//! its hosts or on the controller.

use crate::support::sshd::{TestFleet, processes_with};
use crate::support::{Project, run_fleet, spawn_fleet};
use std::path::Path;
use std::time::{Duration, Instant};

/// A file that the hostile values below try to create on the controller.
fn marker(dir: &Path) -> std::path::PathBuf {
    dir.join("pwned")
}

fn assert_untouched(dir: &Path) {
    assert!(
        !marker(dir).exists(),
        "a hostile value ran a command on the controller"
    );
}

#[test]
fn inventory_address_cannot_become_an_ssh_option() {
    let p = Project::new();
    let touch = format!("-oProxyCommand=touch${{IFS}}{}", marker(p.path()).display());
    let inventories = [
        (
            "hosts.ini",
            format!("[web]\nok ansible_host=10.0.0.1\nevil ansible_host={touch}\n"),
            3,
        ),
        (
            "inventory.toml",
            format!("[hosts.ok]\naddress = \"10.0.0.1\"\n\n[hosts.evil]\naddress = \"{touch}\"\n"),
            5,
        ),
        ("hosts", format!("ok\n{touch}\n"), 2),
        (
            "hosts.yml",
            format!(
                "all:\n  hosts:\n    ok:\n      ansible_host: 10.0.0.1\n    evil:\n      ansible_host: \"{touch}\"\n"
            ),
            6,
        ),
        (
            "user.toml",
            "[hosts.evil]\naddress = \"10.0.0.1\"\nuser = \"-oProxyCommand=x\"\n".to_string(),
            3,
        ),
    ];
    for (file, text, line) in inventories {
        std::fs::write(p.path().join(file), &text).unwrap();
        for args in [
            vec!["-i", file, "connect", "evil", "--", "id"],
            vec!["-i", file, "exec", "all", "--", "id"],
            vec!["-i", file, "hosts"],
        ] {
            let out = p.fleet(&args);
            out.code(2).stderr_has(file);
            assert!(
                out.stderr.contains(&format!("{file}:{line}")),
                "{args:?} does not name the line:\n{}",
                out.stderr
            );
            assert!(
                out.stderr.contains("may not start with `-`"),
                "{}",
                out.stderr
            );
            assert_untouched(p.path());
        }
    }
    // A dynamic inventory's output is checked the same way, pointing into its JSON.
    let script = p.path().join("inv.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho '{{\"web\": [\"ok\", \"evil\"], \"_meta\": {{\"hostvars\": {{'\necho '\"evil\": {{\"ansible_host\": \"{touch}\"}}}}}}}}'\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for args in [
        vec!["-i", "inv.sh", "exec", "all", "--", "id"],
        vec!["-i", "inv.sh", "hosts"],
    ] {
        p.fleet(&args)
            .code(2)
            .stderr_has("inv.sh --list:2")
            .stderr_has("may not start with `-`");
        assert_untouched(p.path());
    }
}

#[test]
fn host_name_cannot_become_a_path() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    let old = victim.join("20200101T000000Z");
    std::fs::create_dir_all(&old).unwrap();
    for name in [victim.display().to_string(), "../../x".into(), "..".into()] {
        let p = Project::new().file(
            "inventory.toml",
            &format!("[hosts.\"{name}\"]\naddress = \"localhost\"\n"),
        );
        for args in [
            vec!["backup", "--dest", "bk"],
            vec!["exec", "all", "--", "true"],
        ] {
            let out = p.fleet(&args);
            out.code(2).stderr_has("inventory.toml:1");
            assert!(old.exists(), "a foreign snapshot was pruned");
            assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
        }
        assert!(!p.path().join("bk").exists());
    }
}

const ADD: &str = r#"
/// Adds a host the arguments describe.
fn add(name, address) {
    inventory::add(name, #{ address: address });
}
"#;

#[test]
fn inventory_add_refuses_hostile_names_and_addresses() {
    let p = Project::new().local_hosts(1).recipe("add", ADD);
    let touch = format!("-oProxyCommand=touch {}", marker(p.path()).display());
    let before = p.read("inventory.toml");
    for (name, address, why) in [
        ("evil", touch.as_str(), "may not start with `-`"),
        ("../../x", "10.0.0.1", "bad host name"),
        ("/abs", "10.0.0.1", "bad host name"),
        ("ok", "10.0.0.1 -oX", "spaces or control characters"),
    ] {
        let out = p.fleet(&["add", "--", name, address]);
        assert_ne!(out.code, 0, "{out:?}");
        out.stderr_has(why);
        assert_eq!(
            p.read("inventory.toml"),
            before,
            "the inventory was changed"
        );
        assert_untouched(p.path());
    }
}

#[test]
fn pull_repo_is_never_a_git_option() {
    let p = Project::new();
    let upload = format!("--upload-pack=touch {}", marker(p.path()).display());
    let repo = format!("--repo={upload}");
    let out = p.fleet(&["pull", &repo, "--dir", "pulled", "hello"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert_untouched(p.path());
}

/// A command no other test runs, so its processes can be found on the hosts.
fn sleeper() -> String {
    format!(
        "sleep {}.{}",
        3000 + fastrand::u32(..1000),
        fastrand::u32(..1000)
    )
}

/// Waits until no process matches `needle` (the run's commands, on any host) and no
/// ssh of the test fleet is left; panics with what is left after `limit`.
fn nothing_left(f: &TestFleet, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_with(needle);
        let masters = f.ssh_processes();
        if left.is_empty() && masters.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left after the run: {left:#?} {masters:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many processes run exactly `cmd` (not a shell or fleet that mentions it).
fn running(cmd: &str) -> usize {
    processes_with(cmd)
        .iter()
        .filter(|l| l.split_once(": ").is_some_and(|(_, args)| args == cmd))
        .count()
}

/// Starts `fleet exec all -- <sleeper>` and waits until the command runs on every host.
fn start_sleeping(f: &TestFleet, extra: &[&str]) -> (std::process::Child, String) {
    let cmd = sleeper();
    let mut args = vec!["exec", "all"];
    args.extend_from_slice(extra);
    args.extend(["--", &cmd]);
    let mut child = spawn_fleet(f.path(), &args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(&cmd) < f.hosts.len() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`{cmd}` never started on every host: {:#?}\n{}",
                processes_with(&cmd),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, cmd)
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: signals the fleet process this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn timeout_stops_commands_on_ssh_hosts() {
    let f = TestFleet::start(2);
    let (child, cmd) = start_sleeping(&f, &["--timeout", "2s"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(124));
    nothing_left(&f, &cmd, Duration::from_secs(8));
}

#[test]
fn second_ctrl_c_stops_commands_on_ssh_hosts() {
    let f = TestFleet::start(2);
    let (child, cmd) = start_sleeping(&f, &[]);
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    nothing_left(&f, &cmd, Duration::from_secs(8));
}

#[test]
fn sigterm_stops_commands_on_ssh_hosts() {
    let f = TestFleet::start(2);
    let (child, cmd) = start_sleeping(&f, &[]);
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("SIGTERM: stopping commands in flight"),
        "{stderr}"
    );
    nothing_left(&f, &cmd, Duration::from_secs(8));
}

#[test]
fn kill_9_leaves_no_master_or_command_and_is_recorded_as_killed() {
    let f = TestFleet::start(2);
    let (mut child, cmd) = start_sleeping(&f, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    nothing_left(&f, &cmd, Duration::from_secs(10));
    // The next run records the killed one from its log.
    let out = run_fleet(f.path(), &["exec", "all", "--", "true"]);
    out.code(0).stderr_has("was killed before it ended");
    let history = run_fleet(f.path(), &["history", "--json"]);
    history.code(0);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let killed: Vec<_> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["killed"] == true)
        .collect();
    assert_eq!(killed.len(), 1, "{}", history.stdout);
    assert_eq!(killed[0]["exit_code"], 137);
    assert!(killed[0]["args"].to_string().contains("sleep"));
}

#[test]
fn local_commands_stop_when_fleet_is_killed() {
    let p = Project::new().local_hosts(2);
    let cmd = sleeper();
    let mut child = spawn_fleet(p.path(), &["exec", "all", "--", &cmd]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(&cmd) < 2 {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while !processes_with(&cmd).is_empty() {
        assert!(Instant::now() < deadline, "{:#?}", processes_with(&cmd));
        std::thread::sleep(Duration::from_millis(100));
    }
}

const BIG: &str = r#"
/// Prints more than the output limit.
fn big() {
    for h in hosts() {
        let r = h.run("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo the-end");
        print(`kept ${r.stdout_kept.len()}`);
        print(r.stdout);
    }
}
"#;

#[test]
fn host_output_is_bounded_in_memory_and_log() {
    let p = Project::new()
        .file("fleet.toml", "output_limit = 100000\n")
        .local_hosts(1)
        .recipe("big", BIG);
    let out = p.fleet(&["big"]);
    // What was kept: 100,000 bytes and a marker line; the whole output went past.
    let kept: usize = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("kept "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!((100_000..100_200).contains(&kept), "{kept}");
    out.code(2)
        .stderr_has("more than fleet.toml's output_limit keeps");
    let logs = p.path().join(".fleet/logs");
    for log in std::fs::read_dir(logs).unwrap() {
        let size = log.unwrap().metadata().unwrap().len();
        assert!(size < 400_000, "log of {size} bytes");
    }
}

#[test]
fn ssh_rejecting_its_arguments_says_why() {
    let p = Project::new()
        .file(
            "fleet.toml",
            "inventory = \"inventory.toml\"\n[ssh]\nconfig_file = \"bad_config\"\n",
        )
        .file("bad_config", "NoSuchOption yes\n")
        .file("inventory.toml", "[hosts.web]\naddress = \"127.0.0.1\"\n");
    let out = p.fleet(&["exec", "all", "--", "true"]);
    out.code(4).stderr_has("bad configuration option");
    assert!(
        !out.stderr.contains("No such file or directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_run_that_stops_on_an_error_is_not_taken_for_killed() {
    let p = Project::new().local_hosts(1);
    p.fleet(&["exec", "no-such-host", "--", "true"]).code(2);
    let out = p.fleet(&["exec", "all", "--", "true"]);
    out.code(0);
    assert!(!out.stderr.contains("was killed"), "{}", out.stderr);
}
