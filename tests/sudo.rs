//! Least-privilege sudo on container hosts: a login user whose sudoers rule allows only
//! apt (made at test time) can be updated, a command outside the rule fails naming
//! what sudo allows, and `fleet status` tells full, limited and no sudo apart.

use crate::support::containers::{ContainerHost, TestKey, project_for};
use crate::support::run_fleet;

/// A login user `name` with the test key and the sudoers rule `rule` (none when empty).
fn add_user(host: &ContainerHost, name: &str, rule: &str) {
    let script = format!(
        r#"set -e
useradd -m -s /bin/sh -p '*' {name}
install -d -m 700 -o {name} -g {name} /home/{name}/.ssh
install -m 600 -o {name} -g {name} /root/.ssh/authorized_keys /home/{name}/.ssh/authorized_keys
if [ -n '{rule}' ]; then
  printf '%s\n' '{rule}' > /etc/sudoers.d/{name}
  chmod 440 /etc/sudoers.d/{name}
  visudo -cf /etc/sudoers.d/{name} >/dev/null
fi"#
    );
    let out = std::process::Command::new("docker")
        .args(["exec", &host.id, "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "adding {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The SUDO column of `fleet status` for `host`.
fn sudo_column(out: &str, host: &str) -> String {
    let header = out
        .lines()
        .find(|l| l.starts_with("HOST "))
        .unwrap_or_default();
    let at = header
        .find("SUDO")
        .unwrap_or_else(|| panic!("no sudo column:\n{out}"));
    let row = out
        .lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_else(|| panic!("no row for {host}:\n{out}"));
    row.get(at..)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_user_allowed_only_apt_updates_and_is_told_what_sudo_refuses() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let fixture = std::process::Command::new("docker")
        .args(["exec", &host.id, "sh", "-c", crate::update::FIXTURE])
        .output()
        .unwrap();
    assert!(
        fixture.status.success(),
        "{}",
        String::from_utf8_lossy(&fixture.stderr)
    );
    add_user(
        &host,
        "orchestrator",
        "orchestrator ALL=(root) NOPASSWD:/usr/bin/apt-get, /usr/bin/apt",
    );
    add_user(&host, "admin", "admin ALL=(ALL:ALL) NOPASSWD: ALL");
    add_user(&host, "nobody2", "");
    let p = project_for(&key, &[("root1", &host, "")]);
    let mut inventory = std::fs::read_to_string(p.path().join("inventory.toml")).unwrap();
    for (name, user, vars) in [
        ("l1", "orchestrator", "modules = { ufw = true }"),
        ("f1", "admin", ""),
        ("n1", "nobody2", ""),
    ] {
        inventory.push_str(&format!(
            "[hosts.{name}]\naddress = \"{}\"\nport = {}\nuser = \"{user}\"\nvars = {{ {vars} }}\n\n",
            host.address, host.port
        ));
    }
    std::fs::write(p.path().join("inventory.toml"), inventory).unwrap();

    // apt alone is enough for the whole update.
    let update = run_fleet(p.path(), &["update", "--pattern", "l1"]);
    update.code(0);
    assert_eq!(
        host.exec("cat /usr/share/fleet-test/version").trim(),
        "1.1",
        "{update}"
    );
    let log = std::fs::read_dir(p.path().join(".fleet/logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        log.contains("sudo -n -- apt-get update -q"),
        "no apt-get without a shell in the log"
    );
    assert!(
        log.contains("sudo -n -- apt-get -y -q -o Dpkg::Options::=--force-confdef"),
        "no upgrade without a shell in the log"
    );
    assert!(!log.contains("sudo -n sh -c"), "a shell went through sudo");

    // ufw is not in the rule: configure fails and says what the rule allows.
    run_fleet(p.path(), &["configure", "--pattern", "l1"])
        .code(3)
        .stderr_has(
            "sudo on l1 does not allow `ufw status` (allowed: /usr/bin/apt-get, /usr/bin/apt)",
        );
    // So is a shell.
    let p2 = p.path().join("recipes");
    std::fs::create_dir_all(&p2).unwrap();
    std::fs::write(
        p2.join("shell.rhai"),
        r#"/// apt-get as one program through sudo, then a shell.
fn shell() {
    each(hosts("l1"), |h| {
        print(`one program: ${h.sudo(["apt-get", "--version"]).stdout.split("\n")[0]}`);
        h.sudo("id -u && true")
    });
}
"#,
    )
    .unwrap();
    run_fleet(p.path(), &["shell"])
        .code(3)
        .stdout_has("one program: apt 2.")
        .stderr_has(
            "sudo on l1 does not allow `sh -c 'id -u && true'` (allowed: /usr/bin/apt-get, /usr/bin/apt)",
        );

    let status = run_fleet(p.path(), &["status"]);
    status.code(0);
    assert_eq!(sudo_column(&status.stdout, "root1"), "full", "{status}");
    assert_eq!(sudo_column(&status.stdout, "f1"), "full", "{status}");
    assert_eq!(sudo_column(&status.stdout, "l1"), "limited", "{status}");
    assert_eq!(sudo_column(&status.stdout, "n1"), "no", "{status}");
    let json = run_fleet(p.path(), &["status", "--json", "--cached"]);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let l1 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "l1")
        .unwrap();
    assert_eq!(l1["facts"]["sudo"], "limited", "{json}");
}
