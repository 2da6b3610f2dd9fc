//! `users::` and `samba::` on container hosts: real sshd, real sudo/visudo, real smbd
//! reached with smbclient inside the container.

use crate::support::Project;
use crate::support::containers::{ContainerHost, TestKey, project_for};

const USERS: &str = r#"
/// The deploy user with a limited sudo rule.
fn user_ok() {
    each(hosts(), |h| users::ensure(h, "deploy", #{ shell: "/bin/bash", groups: ["adm"], sudo: ["/usr/bin/apt-get", "/usr/sbin/service nginx reload"] }));
}
/// A rule visudo refuses.
fn user_bad_rule() {
    each(hosts(), |h| users::ensure(h, "deploy", #{ shell: "/bin/bash", groups: ["adm"], sudo: ["/usr/bin/sudoedit /etc/hosts"] }));
}
/// Locks and removes the user.
fn user_gone() {
    each(hosts(), |h| { users::lock(h, "deploy"); users::remove(h, "deploy", #{}) });
}
"#;

#[test]
fn users_are_ensured_idempotently_and_a_bad_sudo_rule_is_never_installed() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let p = project_for(&key, &[("c1", &host, "")]).recipe("access", USERS);

    let first = p.fleet(&["user_ok"]);
    first.code(0);
    assert!(first.recap_row("c1").contains("changed"), "{first}");
    assert!(
        host.exec("getent passwd deploy")
            .ends_with(":/home/deploy:/bin/bash\n")
    );
    assert!(
        host.exec("id -nG deploy")
            .split_whitespace()
            .any(|g| g == "adm")
    );
    let rule = host.exec("cat /etc/sudoers.d/fleet-user-deploy");
    assert!(
        rule.ends_with(
            "deploy ALL=(ALL) NOPASSWD: /usr/bin/apt-get, /usr/sbin/service nginx reload\n"
        ),
        "{rule}"
    );
    assert_eq!(
        host.exec("stat -c '%a %U' /etc/sudoers.d/fleet-user-deploy"),
        "440 root\n"
    );
    assert!(host.exec("sudo -l -U deploy").contains("/usr/bin/apt-get"));

    let second = p.fleet(&["user_ok"]);
    second.code(0);
    assert!(
        second.recap_row("c1").contains(" ok"),
        "second run changed something: {second}"
    );

    let bad = p.fleet(&["user_bad_rule"]);
    bad.code(3)
        .stderr_has("fails `visudo -c` and was not installed");
    bad.stderr_has("sudoedit should not be specified with a path");
    assert_eq!(host.exec("cat /etc/sudoers.d/fleet-user-deploy"), rule);
    assert_eq!(host.exec("ls -A /etc/sudoers.d/ | grep -c fleet"), "1\n");
    assert_eq!(host.exec("visudo -c >/dev/null && echo valid"), "valid\n");

    p.fleet(&["user_gone"]).code(0);
    assert_eq!(host.exec("getent passwd deploy"), "");
    assert_eq!(
        host.exec("ls /etc/sudoers.d/ /home/"),
        "/etc/sudoers.d/:\nREADME\n\n/home/:\n"
    );
}

const PASSWORD: &str = "Smb-Pw-7391-quartz";

const SHARES: &str = r#"
/// The backup share, its password from the secret share_pw.
fn share() { each(hosts(), |h| samba::share(h, "backup", #{ password_secret: "share_pw" })); }
/// A share outside the base.
fn outside() { each(hosts(), |h| samba::share(h, "etc", #{ path: "/etc", password_secret: "share_pw" })); }
/// A second share for the backup folder.
fn again() { each(hosts(), |h| samba::share(h, "again", #{ path: "/srv/shares/backup", password_secret: "share_pw" })); }
/// Removes the backup share.
fn unshare() { each(hosts(), |h| samba::remove(h, "backup")); }
"#;

/// Every file under `dir` as text (logs, journal, the state repo's history).
fn everything_under(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    text
}

fn smbclient(host: &ContainerHost, user_pw: &str, command: &str) -> String {
    host.exec(&format!(
        "smbclient //127.0.0.1/backup -U '{user_pw}' -c '{command}' 2>&1; echo rc=$?"
    ))
}

#[test]
fn a_share_takes_its_user_and_password_and_nothing_leaks() {
    use std::os::unix::fs::PermissionsExt;
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let p = project_for(&key, &[("c1", &host, "")]);
    let toml = format!("secrets_file = \"secrets.toml\"\n{}", p.read("fleet.toml"));
    let p: Project = p
        .file("fleet.toml", &toml)
        .file("secrets.toml", &format!("share_pw = \"{PASSWORD}\"\n"))
        .recipe("shares", SHARES);
    std::fs::set_permissions(
        p.path().join("secrets.toml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    let mut seen = String::new();
    // --check shows what would change and changes nothing.
    let check = p.fleet(&["share", "--check"]);
    seen.push_str(&format!("{check}"));
    check
        .code(0)
        .stdout_has("would set the samba password of smb-backup");
    assert_eq!(
        host.exec(
            "getent passwd smb-backup; ls /etc/samba/smb.shares.conf 2>&1 | grep -c 'No such'"
        ),
        "1\n"
    );

    let first = p.fleet(&["share"]);
    seen.push_str(&format!("{first}"));
    first.code(0);
    assert!(first.recap_row("c1").contains("changed"), "{first}");
    assert_eq!(
        host.exec("getent passwd smb-backup | cut -d: -f7"),
        "/usr/sbin/nologin\n"
    );
    assert_eq!(
        host.exec("stat -c '%U %a' /srv/shares/backup"),
        "smb-backup 770\n"
    );
    assert_eq!(
        host.exec("grep -c '^include = /etc/samba/smb.shares.conf$' /etc/samba/smb.conf"),
        "1\n"
    );
    assert!(
        host.exec("cat /etc/samba/smb.shares.conf")
            .contains("[backup]\n   path = /srv/shares/backup\n")
    );

    let listed = smbclient(
        &host,
        &format!("smb-backup%{PASSWORD}"),
        "put /etc/hostname hello.txt; ls",
    );
    assert!(
        listed.contains("hello.txt") && listed.ends_with("rc=0\n"),
        "{listed}"
    );
    assert_eq!(
        host.exec("stat -c %U /srv/shares/backup/hello.txt"),
        "smb-backup\n"
    );
    let refused = smbclient(&host, "smb-backup%wrong-password", "ls");
    assert!(refused.contains("NT_STATUS_LOGON_FAILURE"), "{refused}");

    let second = p.fleet(&["share"]);
    seen.push_str(&format!("{second}"));
    second.code(0);
    assert!(
        second.recap_row("c1").contains(" ok"),
        "second run changed something: {second}"
    );

    let outside = p.fleet(&["outside"]);
    seen.push_str(&format!("{outside}"));
    outside
        .code(3)
        .stderr_has("outside the samba base /srv/shares");
    let again = p.fleet(&["again"]);
    seen.push_str(&format!("{again}"));
    again
        .code(3)
        .stderr_has("share `backup` already has the folder /srv/shares/backup");
    assert!(
        !host
            .exec("cat /etc/samba/smb.shares.conf")
            .contains("[etc]")
    );
    assert!(
        !host
            .exec("cat /etc/samba/smb.shares.conf")
            .contains("[again]")
    );

    let gone = p.fleet(&["unshare"]);
    seen.push_str(&format!("{gone}"));
    gone.code(0);
    assert!(
        !host
            .exec("cat /etc/samba/smb.shares.conf")
            .contains("[backup]")
    );
    assert_eq!(host.exec("getent passwd smb-backup"), "");
    assert_eq!(
        host.exec("cat /srv/shares/backup/hello.txt"),
        host.exec("cat /etc/hostname")
    );

    // The password is nowhere fleet writes: terminal, logs, journal, state repo history.
    let files =
        everything_under(&p.path().join(".fleet")) + &everything_under(&p.path().join("state"));
    let history = std::process::Command::new("git")
        .args(["-C", "state", "log", "-p", "--all"])
        .current_dir(p.path())
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(
        history.contains("unshare"),
        "the journal is not in the state repo: {history}"
    );
    for (what, text) in [("terminal", &seen), ("files", &files), ("git", &history)] {
        assert!(!text.contains(PASSWORD), "the password shows in {what}");
        assert!(
            !text.contains("Pw-7391"),
            "part of the password shows in {what}"
        );
    }
    // Nor on the host, outside samba's own password database.
    assert_eq!(
        host.exec(&format!(
            "grep -rl '{PASSWORD}' /etc /var/log /root /tmp; echo done"
        )),
        "done\n"
    );
}

#[test]
fn configure_makes_the_shares_of_the_samba_var_and_removes_unlisted_ones() {
    use std::os::unix::fs::PermissionsExt;
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let vars = r#"samba = { base = "/srv/data", user_prefix = "share-", shares = [ { name = "backup", password_secret = "share_pw" }, { name = "docs", path = "/srv/data/team/docs", password_key = "samba_key", read_only = true } ] }"#;
    let p = project_for(&key, &[("c1", &host, vars)]);
    let toml = format!("secrets_file = \"secrets.toml\"\n{}", p.read("fleet.toml"));
    let p: Project = p.file("fleet.toml", &toml).file(
        "secrets.toml",
        &format!("share_pw = \"{PASSWORD}\"\nsamba_key = \"Key-5521-basalt\"\n"),
    );
    std::fs::set_permissions(
        p.path().join("secrets.toml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    let first = p.fleet(&["configure", "c1"]);
    first.code(0);
    let conf = host.exec("cat /etc/samba/smb.shares.conf");
    assert!(
        conf.contains("[backup]\n   path = /srv/data/backup\n   valid users = share-backup\n"),
        "{conf}"
    );
    assert!(
        conf.contains("[docs]\n   path = /srv/data/team/docs\n"),
        "{conf}"
    );
    assert!(conf.contains("   read only = yes\n"), "{conf}");
    assert_eq!(
        host.exec("pdbedit -L | cut -d: -f1 | sort"),
        "share-backup\nshare-docs\n"
    );
    let listed = host.exec(&format!(
        "smbclient //127.0.0.1/backup -U 'share-backup%{PASSWORD}' -c ls >/dev/null 2>&1; echo rc=$?"
    ));
    assert_eq!(listed, "rc=0\n");

    let second = p.fleet(&["configure", "c1"]);
    second.code(0);
    assert!(
        second.recap_row("c1").contains(" ok"),
        "second run changed something: {second}"
    );

    // The docs share is no longer listed: fleet removes it, its folder stays.
    let fewer = r#"samba = { base = "/srv/data", user_prefix = "share-", shares = [ { name = "backup", password_secret = "share_pw" } ] }"#;
    std::fs::write(
        p.path().join("inventory.toml"),
        format!(
            "[hosts.c1]\naddress = \"{}\"\nport = {}\nvars = {{ {fewer} }}\n",
            host.address, host.port
        ),
    )
    .unwrap();
    p.fleet(&["configure", "c1"]).code(0);
    let conf = host.exec("cat /etc/samba/smb.shares.conf");
    assert!(
        conf.contains("[backup]") && !conf.contains("[docs]"),
        "{conf}"
    );
    assert_eq!(
        host.exec("test -d /srv/data/team/docs && echo kept"),
        "kept\n"
    );
}

const LIMITED: &str = r#"
/// Ensures, locks and removes a user through sudo.
fn through_sudo() {
    each(hosts(), |h| {
        let a = users::ensure(h, "carol", #{ shell: "/bin/bash" });
        let b = users::ensure(h, "carol", #{ shell: "/bin/bash" });
        if !a.changed || b.changed { throw `not idempotent: ${a} then ${b}`; }
        users::lock(h, "carol");
        if users::lock(h, "carol") { throw "locked twice"; }
        users::remove(h, "carol", #{})
    });
}
"#;

#[test]
fn a_login_user_whose_sudo_allows_only_the_user_tools_manages_users() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let rule = "ops ALL=(root) NOPASSWD: /usr/sbin/useradd, /usr/sbin/usermod, /usr/sbin/userdel, /usr/bin/passwd";
    let setup = format!(
        "set -e; useradd -m -s /bin/sh -p '*' ops; install -d -m 700 -o ops -g ops /home/ops/.ssh; \
         install -m 600 -o ops -g ops /root/.ssh/authorized_keys /home/ops/.ssh/authorized_keys; \
         printf '%s\\n' '{rule}' > /etc/sudoers.d/ops; chmod 440 /etc/sudoers.d/ops; visudo -c >/dev/null; echo ready"
    );
    assert_eq!(host.exec(&setup), "ready\n");
    let p = project_for(&key, &[("c1", &host, "")])
        .file(
            "inventory.toml",
            &format!(
                "[hosts.c1]\naddress = \"{}\"\nport = {}\nuser = \"ops\"\n",
                host.address, host.port
            ),
        )
        .recipe("limited", LIMITED);
    let out = p.fleet(&["through_sudo"]);
    out.code(0);
    assert_eq!(host.exec("getent passwd carol; ls /home"), "ops\n");
}
