//! Derived guest passwords (fleet.toml `password_secret`): `fleet provision` gives a VM's
//! root and user the password derived from the secret and the guest's name (cloud-init
//! chpasswd, hashes only) and a container's root `pct create --password`; the password
//! shows nowhere: not on stdout or stderr, not in the run log, the journal or the
//! snippet left on the node. Against the Proxmox simulator (real cloud-init in the VM).

use crate::support::proxmox::ProxmoxSim;
use crate::support::run_fleet;
use std::path::Path;
use std::process::Command;

const SECRET: &str = "Lab-Guest-Secret-4e1b9c";

/// The password as an independent implementation (Python's hmac) derives it.
fn expected_password(secret: &str, name: &str) -> String {
    let script = r#"
import hmac, hashlib, sys
A = b"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
x = int.from_bytes(hmac.new(sys.argv[1].encode(), b"fleet-guest-password:" + sys.argv[2].encode(), hashlib.sha256).digest(), "big")
out = []
for _ in range(20):
    out.append(chr(A[x % 57])); x //= 57
print("".join(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script, secret, name])
        .output()
        .expect("python3");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Whether `hash` (a shadow field) is `password`'s, by glibc's crypt(3).
fn crypt_verifies(password: &str, hash: &str) -> bool {
    let out = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
            password,
            hash,
        ])
        .output()
        .expect("python3 with crypt");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

fn configure_secret(project: &Path) {
    let toml = project.join("fleet.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text = format!("password_secret = \"guest_pw\"\nsecrets_file = \"secrets.toml\"\n{text}");
    std::fs::write(&toml, text).unwrap();
    let secrets = project.join("secrets.toml");
    std::fs::write(&secrets, format!("guest_pw = \"{SECRET}\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every file below `dir` (except the secrets file), and the journal's history.
fn everything_recorded(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            everything_recorded(&path, out);
        } else if path.file_name().is_some_and(|n| n != "secrets.toml")
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    if dir.join(".git").exists() {
        let log = Command::new("git")
            .args(["log", "--all", "-p"])
            .current_dir(dir)
            .output()
            .unwrap();
        out.push((
            format!("git log -p of {}", dir.display()),
            String::from_utf8_lossy(&log.stdout).into_owned(),
        ));
    }
}

fn assert_nowhere(password: &str, places: &[(String, String)]) {
    assert!(places.len() > 3, "{places:?}");
    for (what, text) in places {
        assert!(!text.contains(password), "the password shows in {what}");
        assert!(!text.contains(SECRET), "the secret shows in {what}");
    }
}

#[test]
fn a_vm_gets_its_derived_password_as_a_hash_and_it_shows_nowhere() {
    let sim = ProxmoxSim::start();
    configure_secret(sim.project());
    let password = expected_password(SECRET, "web-7");
    assert_eq!(password.len(), 20);

    let mut args: Vec<String> = vec!["provision".into()];
    args.extend(sim.provision_args());
    args.extend(["web-7", "--packages", "", "--wait", "60", "--vmid", "107"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let provisioned = run_fleet(sim.project(), &args);
    provisioned.code(0).stdout_has("cloud-init done");

    // Root's and admin's shadow entries hold the derived password's hash.
    let shadow = run_fleet(
        sim.project(),
        &["exec", "web-7", "--", "sudo getent shadow root admin"],
    );
    shadow.code(0);
    let mut checked = 0;
    for line in shadow.stdout.lines() {
        let fields: Vec<&str> = line.split(" | ").nth(1).unwrap_or("").split(':').collect();
        if fields.len() > 2 && ["root", "admin"].contains(&fields[0]) {
            assert!(fields[1].starts_with("$6$"), "{line}");
            assert!(crypt_verifies(&password, fields[1]), "{line}");
            assert!(!crypt_verifies("wrong", fields[1]));
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "{shadow}");

    // The snippet on the node holds the hash, never the password.
    let snippet = std::fs::read_to_string(
        sim.sim
            .path()
            .join("storage/local/snippets/fleet-107-user.yaml"),
    )
    .unwrap();
    assert!(snippet.contains("chpasswd:"), "{snippet}");
    assert!(snippet.contains("type: hash"), "{snippet}");

    // Without a terminal, `fleet guest password` refuses and shows nothing.
    let refused = run_fleet(sim.project(), &["guest", "password", "web-7"]);
    refused.code(2).stderr_has("only on a terminal");

    let mut places = vec![
        ("provision stdout".to_string(), provisioned.stdout.clone()),
        ("provision stderr".to_string(), provisioned.stderr.clone()),
        ("guest password stdout".to_string(), refused.stdout.clone()),
        ("guest password stderr".to_string(), refused.stderr.clone()),
    ];
    everything_recorded(sim.project(), &mut places);
    everything_recorded(sim.sim.path(), &mut places);
    assert!(places.iter().any(|(p, _)| p.contains(".fleet/logs")));
    assert_nowhere(&password, &places);

    run_fleet(sim.project(), &["terminate", "web-7", "--yes"]).code(0);
}

#[test]
fn a_container_gets_pct_create_password_masked() {
    let sim = ProxmoxSim::start();
    configure_secret(sim.project());
    let password = expected_password(SECRET, "ct-7");
    let key = sim.project().join("id_ed25519.pub").display().to_string();
    let provisioned = run_fleet(
        sim.project(),
        &[
            "provision",
            "--kind",
            "ct",
            "--ssh-key",
            &key,
            "ct-7",
            "--vmid",
            "127",
            "--wait",
            "60",
        ],
    );
    provisioned
        .code(0)
        .stdout_has("CT 127 (ct-7) created on pve1");
    let mut places = vec![
        ("provision stdout".to_string(), provisioned.stdout.clone()),
        ("provision stderr".to_string(), provisioned.stderr.clone()),
    ];
    everything_recorded(sim.project(), &mut places);
    let logged = places
        .iter()
        .filter(|(p, _)| p.contains(".fleet/logs"))
        .map(|(_, t)| t.as_str())
        .collect::<String>();
    assert!(logged.contains("--password ***"), "{logged}");
    assert!(
        places.iter().any(|(p, _)| p.starts_with("git log -p")),
        "no journal"
    );
    assert_nowhere(&password, &places);
    run_fleet(sim.project(), &["terminate", "ct-7", "--yes"]).code(0);
}

#[test]
fn guest_password_needs_a_terminal_and_one_name() {
    let project = crate::support::Project::new();
    // No terminal is refused before anything is looked up (no password_secret here).
    run_fleet(project.path(), &["guest", "password", "web-7"])
        .code(2)
        .stderr_has("only on a terminal");
    run_fleet(project.path(), &["guest", "password", "a", "b"])
        .code(2)
        .stderr_has("takes one NAME");
}

/// `fleet guest password NAME` in a pseudo-terminal, answering `answer`.
fn guest_password_on_a_terminal(project: &Path, name: &str, answer: &str) -> String {
    let command = format!(
        "{} -C {} guest password {name}",
        crate::support::fleet_bin().display(),
        project.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    std::io::Write::write_all(&mut stdin, answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn guest_password_shows_it_on_a_terminal_after_a_yes_and_journals_nothing() {
    let project = crate::support::Project::new().local_hosts(1);
    configure_secret(project.path());
    let password = expected_password(SECRET, "h1");
    let no = guest_password_on_a_terminal(project.path(), "h1", "n\r");
    assert!(no.contains("show the root password of h1"), "{no}");
    assert!(no.contains("nothing was shown"), "{no}");
    assert!(!no.contains(&password), "{no}");
    let yes = guest_password_on_a_terminal(project.path(), "h1", "y\r");
    assert!(yes.contains(&password), "{yes}");
    assert!(!yes.contains(SECRET), "{yes}");
    // No run was started: nothing is logged or journaled.
    let mut places = Vec::new();
    everything_recorded(project.path(), &mut places);
    for (what, text) in &places {
        assert!(!text.contains(&password), "the password shows in {what}");
    }
    assert!(!project.path().join(".fleet/logs").exists());
}

#[test]
fn every_run_masks_the_derived_passwords_of_the_inventorys_hosts() {
    let project = crate::support::Project::new().local_hosts(2);
    configure_secret(project.path());
    let password = expected_password(SECRET, "h2");
    let out = run_fleet(
        project.path(),
        &["exec", "h1", "--", &format!("echo pw={password}")],
    );
    out.code(0).stdout_has("pw=***");
    assert!(!out.stdout.contains(&password), "{out}");
    // Nor in the log or the journal, which record the command line too.
    let mut places = Vec::new();
    everything_recorded(project.path(), &mut places);
    assert!(places.iter().any(|(p, _)| p.contains(".fleet/logs")));
    for (what, text) in &places {
        assert!(!text.contains(&password), "the password shows in {what}");
    }
}
