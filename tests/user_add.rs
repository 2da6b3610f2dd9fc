//! `fleet user add` on a container host with a real sshd: the account is made, the
//! person's key written to access.toml and to the account, and the person logs in with a
//! real `ssh` and may use sudo; a second run changes nothing; `--check` writes nothing;
//! bad arguments are refused before anything changes.

use crate::support::containers::{ContainerHost, TestKey, project_for, ssh_as};
use crate::support::run_fleet;

#[test]
fn user_add_creates_the_account_and_lets_the_person_log_in_and_sudo() {
    let key = TestKey::new();
    let alice = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let p = project_for(&key, &[("h1", &host, "")]);
    let path = p.path();
    std::fs::write(path.join("alice.pub"), alice.public()).unwrap();
    let args = [
        "user",
        "add",
        "alice",
        "--on",
        "h1",
        "--key",
        "alice.pub",
        "--sudo",
    ];

    // --check: the diff of access.toml is shown, nothing is written anywhere.
    let check = run_fleet(path, &[&args[..], &["--check"]].concat());
    check
        .code(0)
        .stdout_has("access.toml")
        .stdout_has("user-alice");
    assert!(!path.join("access.toml").exists(), "{check}");
    assert_eq!(host.exec("getent passwd alice || echo none"), "none\n");

    let add = run_fleet(path, &args);
    add.code(0)
        .stdout_has("user alice: created")
        .stdout_has("alice + alice SHA256:")
        .stderr_has("this machine: 1 change (write access.toml)");
    let shown = run_fleet(path, &["show", "last", "--json"]);
    shown.code(0);
    let record: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(record["recipe"], "user-add", "{shown}");
    assert_eq!(record["local_changes"][0], "write access.toml", "{shown}");
    let data = std::fs::read_to_string(path.join("access.toml")).unwrap();
    assert!(data.contains(alice.public().trim()), "{data}");
    assert!(data.contains("user-alice = [\"alice\"]"), "{data}");
    let (ok, out) = ssh_as(
        path,
        &host,
        &alice,
        "alice",
        "id -un && sudo -n true && echo SUDO-OK",
    );
    assert!(
        ok && out.contains("alice") && out.contains("SUDO-OK"),
        "{out}"
    );
    // fleet still logs in as before.
    run_fleet(path, &["exec", "all", "--", "true"]).code(0);

    // Again: nothing changes, on the host or in access.toml.
    let again = run_fleet(path, &[&args[..], &["--json"]].concat());
    again.code(0);
    assert!(
        again.stdout.contains("\"ok\"") && !again.stdout.contains("\"changed\""),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(path.join("access.toml")).unwrap(),
        data
    );
    let history = run_fleet(path, &["history"]);
    history.code(0).stdout_has("user-add");

    // Without --key the person must already have keys; a key of someone else is refused.
    run_fleet(path, &["user", "add", "bob", "--on", "h1"])
        .code(2)
        .stderr_has("pass --key FILE");
    run_fleet(
        path,
        &["user", "add", "bob", "--on", "h1", "--key", "alice.pub"],
    )
    .code(2)
    .stderr_has("already belongs to alice");
    // No host matches; a bad name; a file that is no key: nothing is written.
    run_fleet(
        path,
        &[
            "user",
            "add",
            "bob",
            "--on",
            "nosuch*",
            "--key",
            "alice.pub",
        ],
    )
    .code(2);
    run_fleet(path, &["user", "add", "Bob;x", "--on", "h1"])
        .code(2)
        .stderr_has("not a user name");
    std::fs::write(path.join("bad.pub"), "# mine\nssh-ed25519 nonsense\n").unwrap();
    run_fleet(
        path,
        &["user", "add", "bob", "--on", "h1", "--key", "bad.pub"],
    )
    .code(2)
    .stderr_has("bad.pub:2:");
    assert_eq!(
        std::fs::read_to_string(path.join("access.toml")).unwrap(),
        data
    );
    assert_eq!(host.exec("getent passwd bob || echo none"), "none\n");
}
