//! `fleet configure` against a container host of the test image (NET_ADMIN for ufw):
//! real apt, real ufw, checked from outside; a second run changes nothing.

use crate::support::containers::{ContainerHost, TestKey, project_for};
use crate::support::{Project, run_fleet};
use std::path::Path;
use std::time::Duration;

struct Setup {
    host: ContainerHost,
    project: Project,
    _key: TestKey,
}

fn setup(vars: &str) -> Setup {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let project = project_for(&key, &[("c1", &host, vars)]);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configure/catalog"),
        &project.path().join("catalog"),
    );
    Setup {
        host,
        project,
        _key: key,
    }
}

fn write_inventory(s: &Setup, vars: &str) {
    std::fs::write(
        s.project.path().join("inventory.toml"),
        format!(
            "[hosts.c1]\naddress = \"{}\"\nport = {}\nvars = {{ {vars} }}\n",
            s.host.address, s.host.port
        ),
    )
    .unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Whether a TCP connection to the container's own address (from this machine, as any
/// client on its network would) is accepted within a second.
fn answers(host: &ContainerHost, port: u16) -> bool {
    let ip = host.exec("hostname -I | cut -d' ' -f1");
    let addr = format!("{}:{port}", ip.trim()).parse().unwrap();
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

const VARS: &str = r#"modules = { baseline_tools = ["jq"], ufw = true, unattended_upgrades = { security_only = true, automatic_reboot = true, reboot_time = "04:00" } }, apps = ["nginx"], ssh = { root_login = "prohibit-password", password_auth = false, port = 22 }, ufw = { preset = "web", allow_app_ports = true }"#;

#[test]
fn configure_twice_changes_nothing_the_second_time_and_the_firewall_holds() {
    let s = setup(VARS);
    // A port that something listens on but no rule allows.
    s.host
        .exec("nohup python3 -m http.server 8080 >/dev/null 2>&1 &");
    let first = run_fleet(s.project.path(), &["configure"]);
    first.code(0).stdout_has("c1");
    assert!(
        first
            .stdout
            .contains("baseline_tools, unattended_upgrades, app nginx, ufw, ssh"),
        "{first}"
    );

    // From outside: nginx answers on 80 (web preset + app port), 8080 is dropped, and
    // SSH still answers (the next runs go through it).
    assert!(answers(&s.host, 80), "port 80 does not answer");
    assert!(
        !answers(&s.host, 8080),
        "port 8080 answers through the firewall"
    );
    let status = s.host.exec("ufw status verbose");
    assert!(status.contains("Status: active"), "{status}");
    assert!(
        status.contains("Default: deny (incoming), allow (outgoing)"),
        "{status}"
    );
    assert!(
        s.host
            .exec("cat /etc/apt/apt.conf.d/52fleet-unattended-upgrades")
            .contains("Unattended-Upgrade::Automatic-Reboot-Time \"04:00\";")
    );
    assert_eq!(
        s.host.exec("cat /etc/ssh/sshd_config.d/10-fleet.conf"),
        "# written by fleet (ssh module); changes here are overwritten\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nPort 22\n"
    );

    // A rule added by hand, outside fleet.
    s.host.exec("ufw allow 9999/tcp");

    let second = run_fleet(s.project.path(), &["configure"]);
    second.code(0);
    let row = second
        .stdout
        .lines()
        .find(|l| l.starts_with("c1"))
        .unwrap_or_else(|| panic!("{second}"))
        .to_string();
    assert!(
        row.split_whitespace().nth(1) == Some("0"),
        "second run changed something: {second}"
    );
    assert!(
        second.stderr.contains("c1    ok"),
        "recap is not ok: {second}"
    );
    assert!(s.host.exec("ufw show added").contains("ufw allow 9999/tcp"));

    // Fewer wanted rules: fleet removes its own, never the hand-made one, never SSH.
    write_inventory(
        &s,
        &VARS.replace(
            "preset = \"web\", allow_app_ports = true",
            "preset = \"server-minimal\", allow_app_ports = false",
        ),
    );
    run_fleet(s.project.path(), &["configure"]).code(0);
    let added = s.host.exec("ufw show added");
    assert!(!added.contains("80/tcp"), "{added}");
    assert!(added.contains("ufw allow 9999/tcp"), "{added}");
    assert!(
        added.contains("ufw allow 22/tcp comment 'fleet: ssh'"),
        "{added}"
    );
    assert!(!answers(&s.host, 80), "port 80 still answers");
    run_fleet(s.project.path(), &["exec", "c1", "--", "true"]).code(0);
}

#[test]
fn check_mode_prints_the_firewall_commands_and_changes_nothing() {
    let s = setup(
        r#"modules = { ufw = true }, ufw = { preset = "custom", rules = [{ port = "8000:8010", proto = "tcp", source = "lan", comment = "dev" }] }"#,
    );
    let out = run_fleet(s.project.path(), &["--check", "configure"]);
    out.code(0)
        .stdout_has("would run: ufw allow 22/tcp comment 'fleet: ssh'")
        .stdout_has("would run: ufw allow from 10.0.0.0/8 to any port 8000:8010 proto tcp comment 'fleet: dev'")
        .stdout_has("would run: ufw --force enable");
    assert!(s.host.exec("ufw status").contains("Status: inactive"));
}

/// A fresh host has no ufw yet: --check previews the first configuration (the package
/// install, then every rule from an empty firewall) and the host ends changed.
#[test]
fn check_on_a_fresh_host_without_ufw_previews_the_install_and_every_rule() {
    let s = setup(r#"modules = { ufw = true }, ufw = { preset = "web" }"#);
    s.host.exec("dpkg --purge ufw >/dev/null 2>&1");
    assert_eq!(s.host.exec("command -v ufw || echo gone").trim(), "gone");
    let out = run_fleet(s.project.path(), &["--check", "configure"]);
    out.code(0)
        .stdout_has("would run: apt-get update -q")
        .stdout_has(
            "would run: DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install --no-install-recommends -- ufw",
        )
        .stdout_has("ufw is not installed yet: the plan starts from an empty firewall")
        .stdout_has("would run: ufw allow 22/tcp comment 'fleet: ssh'")
        .stdout_has("would run: ufw default deny incoming")
        .stdout_has("would run: ufw allow 80/tcp comment 'fleet: web'")
        .stdout_has("would run: ufw allow 443/tcp comment 'fleet: web'")
        .stdout_has("would run: ufw --force enable");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("c1") && l.contains("changed")),
        "c1 did not end changed:\n{out}"
    );
    // Nothing happened: still no ufw.
    assert_eq!(s.host.exec("command -v ufw || echo gone").trim(), "gone");
}

#[test]
fn bad_declarations_are_named() {
    let s = setup(r#"modules = { ufw = true }, apps = ["ngnix"]"#);
    run_fleet(s.project.path(), &["configure"])
        .code(3)
        .stderr_has("app `ngnix` is not in the catalog (did you mean `nginx`?)");
    write_inventory(
        &s,
        r#"modules = { ufw = true }, ufw = { preset = "custom", rules = [{ port = "80; reboot" }] }"#,
    );
    run_fleet(s.project.path(), &["configure"])
        .code(3)
        .stderr_has("rules[0]: `80; reboot` is not a port");
    write_inventory(&s, r#"modules = { firewall = true }"#);
    run_fleet(s.project.path(), &["configure"])
        .code(3)
        .stderr_has("unknown module 'firewall'");
    assert!(s.host.exec("ufw status").contains("Status: inactive"));
}

/// The configuration files the baseline modules write, as a recipe sees them.
#[test]
fn baseline_module_files() {
    let p = Project::new().local_hosts(1).recipe(
        "files",
        r#"
import "fail2ban" as f;
import "sysctl_hardening" as s;
import "unattended_upgrades" as u;
import "ssh" as ssh;
fn files() {
    print(f::jail(2222, true));
    print(s::config());
    print(u::config(#{ security_only: false, automatic_reboot: true, reboot_time: "02:15" }));
    print(u::problem(#{ reboot_time: "25:00" }));
    print(ssh::settings(#{ root_login: "maybe" }));
    print(ssh::config(ssh::settings(#{ port: 2222 })));
}
"#,
    );
    p.fleet(&["files"])
        .code(0)
        .stdout_has("[sshd]\nenabled = true\nport = 2222\nbackend = systemd\n")
        .stdout_has("net.ipv4.tcp_syncookies = 1")
        .stdout_has("\"origin=Debian,codename=${distro_codename}-updates\";")
        .stdout_has("Unattended-Upgrade::Automatic-Reboot \"true\";\nUnattended-Upgrade::Automatic-Reboot-Time \"02:15\";")
        .stdout_has("unattended_upgrades reboot_time '25:00' must be HH:MM")
        .stdout_has("ssh root_login 'maybe' must be no, prohibit-password or yes")
        .stdout_has("PermitRootLogin prohibit-password\nPasswordAuthentication no\nPort 2222\n");
}

/// The catalog can come from a git repository; configure checks it out first.
#[test]
fn the_catalog_comes_from_a_git_repository() {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configure/catalog"),
        repo.path(),
    );
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "catalog"]);
    let p = Project::new().local_hosts(1).file(
        "inventory.toml",
        "[hosts.h1]\nconnection = \"local\"\nvars = { apps = [\"web-stack\"], modules = {} }\n",
    );
    // web-stack's own role does nothing; its dependencies would install packages, so
    // only --check here: the catalog is checked out and resolved in dependency order.
    p.fleet(&[
        "--check",
        "configure",
        "--catalog-repo",
        repo.path().to_str().unwrap(),
    ])
    .code(0)
    .stdout_has("catalog at ");
    assert!(p.path().join("catalog/index.json").is_file());
    assert!(p.path().join("catalog/roles/redis.rhai").is_file());
}
