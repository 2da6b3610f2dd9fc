//! `fleet keys` on a container host with a real sshd: a person's key applied lets that
//! person log in with a real `ssh`, removed from the data it is removed and the login
//! refused; fleet's own key survives; a key added by hand outside fleet's block stays;
//! a backup server's key restricted to `rrsync` runs rsync but no shell; `--live` shows
//! keys the data does not know; a write that breaks fleet's login is undone; bad key
//! data is named by file and line.

use crate::support::containers::{ContainerHost, TestKey, project_for, ssh_as};
use crate::support::{Project, run_fleet};
use std::process::Command;

/// alice's key inline; the backup server's fetched from h1 (`/root/backup.pub`).
fn access(alice: &TestKey, admins: &str) -> String {
    format!(
        r#"[people.alice]
keys = ["{}"]

[servers.backup]
host = "h1"
key_files = ["/root/backup.pub"]

[groups]
admins = [{admins}]
backups = ["backup"]

[[rules]]
group = "admins"
hosts = "all"
accounts = ["deploy"]

[[rules]]
group = "backups"
hosts = "h1"
accounts = ["root"]
options = ["restrict", 'command="rrsync -ro /etc"']
"#,
        alice.public().trim(),
    )
}

#[test]
fn keys_are_applied_removed_restricted_and_never_lock_fleet_out() {
    let key = TestKey::new();
    let (alice, backup, stray) = (TestKey::new(), TestKey::new(), TestKey::new());
    let host = ContainerHost::start(&key.public());
    host.exec("useradd -m -s /bin/sh -p '*' deploy");
    host.exec(&format!(
        "echo '{}' > /root/backup.pub",
        backup.public().trim()
    ));
    let p = project_for(&key, &[("h1", &host, r#"accounts = ["root"]"#)]);
    let path = p.path();
    std::fs::write(path.join("access.toml"), access(&alice, r#""alice""#)).unwrap();

    let plan = run_fleet(path, &["keys", "plan", "--json"]);
    plan.code(0);
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let accounts = json[0]["accounts"].as_array().unwrap();
    let deploy = accounts.iter().find(|a| a["account"] == "deploy").unwrap();
    assert_eq!(deploy["added"][0]["owner"], "alice", "{plan}");
    assert_eq!(deploy["path"], "/home/deploy/.ssh/authorized_keys");
    assert!(!ssh_as(path, &host, &alice, "deploy", "true").0);

    let apply = run_fleet(path, &["keys", "apply"]);
    apply.code(0).stdout_has("deploy + alice SHA256:");
    let (ok, out) = ssh_as(path, &host, &alice, "deploy", "id -un");
    assert!(ok && out.contains("deploy"), "{out}");
    assert_eq!(
        host.exec("stat -c '%a %U' /home/deploy/.ssh /home/deploy/.ssh/authorized_keys"),
        "700 deploy\n600 deploy\n"
    );
    // fleet's own key, outside the block, is still there; a second apply changes nothing.
    assert!(
        host.exec("cat /root/.ssh/authorized_keys")
            .contains(key.public().trim())
    );
    let again = run_fleet(path, &["keys", "apply", "--json"]);
    again.code(0);
    assert!(
        again.stdout.contains("\"ok\"") && !again.stdout.contains("\"changed\""),
        "{again}"
    );

    // The same from a recipe: nothing left to change.
    std::fs::create_dir_all(path.join("recipes")).unwrap();
    std::fs::write(
        path.join("recipes/access.rhai"),
        r#"/// Plans and applies the keys.
fn access() {
    each(hosts("all"), |h| {
        let plan = keys::plan(h);
        print(`accounts: ${plan.len()}, changes: ${plan.filter(|a| a.changes).len()}`);
        keys::apply(h);
    });
}
"#,
    )
    .unwrap();
    run_fleet(path, &["access"])
        .code(0)
        .stdout_has("accounts: 2, changes: 0");

    // The backup server's key runs rsync (read-only, under /etc) but no shell.
    let (shell, out) = ssh_as(path, &host, &backup, "root", "id");
    assert!(!shell, "a shell with the restricted key: {out}");
    let dest = tempfile::tempdir().unwrap();
    let ssh = format!(
        "ssh -o BatchMode=yes -o IdentitiesOnly=yes -o UserKnownHostsFile={} -i {} -p {}",
        path.join("known_hosts").display(),
        backup.private().display(),
        host.port
    );
    let rsync = Command::new("rsync")
        .args(["-a", "-e", &ssh])
        .arg(format!("root@{}:hostname", host.address))
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(
        rsync.status.success(),
        "{}",
        String::from_utf8_lossy(&rsync.stderr)
    );
    assert!(dest.path().join("hostname").exists());

    // A key added by hand is drift: `--live` shows it, apply keeps it.
    host.exec(&format!(
        "echo '{}' >> /home/deploy/.ssh/authorized_keys",
        stray.public().trim()
    ));
    let live = run_fleet(path, &["keys", "who", "h1", "--live"]);
    live.code(0).stdout_has("unknown (not in access.toml)");
    run_fleet(path, &["keys", "where", "alice"])
        .code(0)
        .stdout_has("h1    deploy");

    // alice leaves the group: apply removes her key, her login is refused, the hand-added
    // key stays.
    std::fs::write(path.join("access.toml"), access(&alice, "")).unwrap();
    run_fleet(path, &["keys", "apply"])
        .code(0)
        .stdout_has("deploy - alice SHA256:");
    assert!(!ssh_as(path, &host, &alice, "deploy", "true").0);
    assert!(ssh_as(path, &host, &stray, "deploy", "true").0);
    // The journal says who lost access where.
    let show = run_fleet(path, &["show", "last", "--json"]);
    show.code(0);
    let record: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let keys = &record["hosts"][0]["results"]["keys"][0];
    assert_eq!(keys["account"], "deploy", "{show}");
    assert_eq!(keys["removed"][0]["owner"], "alice", "{show}");

    // fleet's own key given by the data only: a plan that drops it is refused.
    let with_ops = access(&alice, "").replace(
        "[servers.backup]",
        &format!(
            "[people.ops]\nkeys = [\"{}\"]\n\n[servers.backup]",
            key.public().trim()
        ),
    );
    let with_ops = with_ops.replace(
        r#"backups = ["backup"]"#,
        r#"backups = ["backup"]
ops = ["ops"]

[[rules]]
group = "ops"
hosts = "h1"
accounts = ["root"]"#,
    );
    std::fs::write(path.join("access.toml"), &with_ops).unwrap();
    run_fleet(path, &["keys", "apply"]).code(0);
    host.exec(&format!(
        "awk -v k='{}' '/^# BEGIN fleet/ {{ b = 1 }} b || $0 != k' /root/.ssh/authorized_keys > /tmp/k; cat /tmp/k > /root/.ssh/authorized_keys",
        key.public().trim()
    ));
    let root_keys = host.exec("cat /root/.ssh/authorized_keys");
    assert_eq!(
        root_keys.matches(key.public().trim()).count(),
        1,
        "{root_keys}"
    );
    assert!(ssh_as(path, &host, &key, "root", "true").0);
    let without = with_ops.replace(r#"ops = ["ops"]"#, "ops = []");
    std::fs::write(path.join("access.toml"), without).unwrap();
    run_fleet(path, &["keys", "apply"])
        .code(3)
        .stderr_has("refusing a plan that drops the key fleet logs in with");
    assert!(ssh_as(path, &host, &key, "root", "true").0);

    // A write after which fleet cannot log in again is undone: the previous file is
    // back. Here a `getent` on the host's PATH makes sshd refuse new logins as root
    // once fleet's run is connected (its open connection stays).
    let before = host.exec("cat /root/.ssh/authorized_keys");
    let changed = with_ops.replace("rrsync -ro /etc", "rrsync -ro /var");
    std::fs::write(path.join("access.toml"), changed).unwrap();
    host.exec(
        r#"printf '%s\n' '#!/bin/sh' \
  "echo 'DenyUsers root' > /etc/ssh/sshd_config.d/deny.conf" \
  'kill -HUP "$(cat /run/sshd.pid)"; sleep 1' \
  'exec /usr/bin/getent "$@"' > /usr/local/bin/getent && chmod 755 /usr/local/bin/getent"#,
    );
    run_fleet(path, &["keys", "apply"])
        .code(3)
        .stderr_has("fleet could not log in again as root")
        .stderr_has("the previous file is restored");
    host.exec(
        r#"rm /usr/local/bin/getent /etc/ssh/sshd_config.d/deny.conf && kill -HUP "$(cat /run/sshd.pid)"; sleep 1"#,
    );
    assert_eq!(host.exec("cat /root/.ssh/authorized_keys"), before);
    assert!(ssh_as(path, &host, &key, "root", "true").0);
}

#[test]
fn bad_key_data_is_named_by_file_and_line() {
    let p = Project::new().local_hosts(1).file(
        "access.toml",
        "[people.alice]\nkeys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIhello alice\"]\n\n[groups]\nadmins = [\"alice\", \"bob\"]\n",
    );
    p.fleet(&["keys", "plan"])
        .code(2)
        .stderr_has("access.toml:2: error: key of alice does not parse")
        .stderr_has("access.toml:5: error: group admins: unknown person or server `bob`");
    p.fleet(&["check"])
        .code(2)
        .stderr_has("access.toml:2: key of alice does not parse");
    std::fs::create_dir_all(p.path().join("keys")).unwrap();
    std::fs::write(
        p.path().join("access.toml"),
        "[people.alice]\n\n[groups]\nadmins = [\"alice\"]\n",
    )
    .unwrap();
    std::fs::write(p.path().join("keys/alice.pub"), "# laptop\nssh-rsa nope\n").unwrap();
    p.fleet(&["keys", "who", "h1"])
        .code(2)
        .stderr_has("keys/alice.pub:2: error: key of alice does not parse");
}
