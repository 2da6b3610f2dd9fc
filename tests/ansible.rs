//! `ansible::playbook` with ansible-core (from PyPI, put in place by
//! `scripts/install-deps --tests`) against the loopback sshd fleet: a role that changes
//! a file on the first run and nothing on the second, check mode that shows Ansible's
//! diff and changes nothing, a failing task that fails only its host, an inventory var
//! that Ansible keeps as text, and the error when ansible-playbook is missing.

use crate::support::fleet_bin;
use crate::support::sshd::TestFleet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where install-deps puts ansible-core when the machine has none on PATH.
fn venv_bin() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    cache.join("fleet-test/ansible/bin")
}

/// PATH with ansible-playbook on it; the test fails (never skips) without it.
fn path_with_ansible() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    let full = format!("{}:{path}", venv_bin().display());
    let found = std::env::split_paths(&full).any(|d| d.join("ansible-playbook").is_file());
    assert!(
        found,
        "ansible-playbook is not installed: run scripts/install-deps --tests (it installs ansible-core into {})",
        venv_bin().display()
    );
    full
}

fn fleet(dir: &Path, path: &str, args: &[&str]) -> crate::support::Output {
    let out = std::process::Command::new(fleet_bin())
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .output()
        .expect("fleet runs");
    crate::support::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const RECIPE: &str = r#"
/// Runs site.yml.
fn site() {
    let r = ansible::playbook(hosts(), "site.yml", #{ extra_vars: #{ out_dir: OUT, greeting: "hello" } });
    print(`result ${json::to_string(r)}`);
}

/// Runs broken.yml for each host on its own, as provision's configure step would.
fn each_host() {
    each(hosts(), |h| {
        ansible::playbook(h, "broken.yml", #{ extra_vars: #{ out_dir: OUT, greeting: "each" } });
    });
}

/// Runs broken.yml, whose last task fails on s2.
fn broken() {
    ansible::playbook(hosts(), "broken.yml", #{ extra_vars: #{ out_dir: OUT, greeting: "hello" }, tags: ["motd", "fail"] });
}
"#;

const ROLE: &str = r#"- name: write the motd
  ansible.builtin.copy:
    dest: "{{ out_dir }}/{{ inventory_hostname }}.txt"
    content: "{{ greeting }} {{ motto | default('') }}\n"
    mode: "0644"
  tags: [motd]
"#;

const SITE: &str = "- hosts: sshfleet\n  gather_facts: false\n  roles: [motd]\n";

const BROKEN: &str = r#"- hosts: sshfleet
  gather_facts: false
  roles: [motd]
  tasks:
    - name: fail where asked
      ansible.builtin.fail:
        msg: asked to fail
      when: inventory_hostname == "s2"
      tags: [fail]
"#;

/// A test fleet of two hosts with the playbooks, the role and the recipe; the role
/// writes into `out` (open to the hosts' login user).
fn project(out: &Path) -> TestFleet {
    let f = TestFleet::start(2);
    let dir = f.path();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "recipes/play.rhai",
        &RECIPE.replace("OUT", &format!("{:?}", out.display().to_string())),
    );
    write("roles/motd/tasks/main.yml", ROLE);
    write("site.yml", SITE);
    write("broken.yml", BROKEN);
    // A hostile var: Ansible must write it as text, not run it on this machine.
    let inv = std::fs::read_to_string(dir.join("inventory.toml")).unwrap();
    let pwned = out.join("pwned");
    let var = format!(
        "vars = {{ motto = \"{{{{ lookup('pipe', 'touch {}') }}}}\" }}\n",
        pwned.display()
    );
    let inv = inv.replacen(
        "groups = [\"sshfleet\"]\n",
        &format!("groups = [\"sshfleet\"]\n{var}"),
        1,
    );
    std::fs::write(dir.join("inventory.toml"), inv).unwrap();
    f
}

fn out_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("fleet-ansible-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

#[test]
fn a_role_changes_once_then_nothing_and_check_mode_only_shows() {
    let path = path_with_ansible();
    let out = out_dir();
    let f = project(out.path());
    let first = fleet(f.path(), &path, &["site"]);
    first.code(0).stdout_has("\"status\":\"changed\"");
    let s1 = std::fs::read_to_string(out.path().join("s1.txt")).unwrap();
    assert_eq!(
        s1,
        "hello {{ lookup('pipe', 'touch ".to_string()
            + &out.path().join("pwned").display().to_string()
            + "') }}\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("s2.txt")).unwrap(),
        "hello \n"
    );
    assert!(!out.path().join("pwned").exists(), "a var was run as code");

    let second = fleet(f.path(), &path, &["site", "--json"]);
    second.code(0);
    let recap: serde_json::Value = serde_json::from_str(&second.stdout).unwrap();
    let statuses: Vec<_> = recap["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            format!(
                "{}={}",
                h["host"].as_str().unwrap(),
                h["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(statuses, ["s1=ok", "s2=ok"], "{}", second.stdout);

    std::fs::write(out.path().join("s2.txt"), "edited\n").unwrap();
    let check = fleet(f.path(), &path, &["site", "--check"]);
    check.code(0).stdout_has("-edited").stdout_has("+hello");
    assert_eq!(
        std::fs::read_to_string(out.path().join("s2.txt")).unwrap(),
        "edited\n"
    );
}

#[test]
fn a_failing_task_fails_only_its_host() {
    let path = path_with_ansible();
    let out = out_dir();
    let f = project(out.path());
    let run = fleet(f.path(), &path, &["broken", "--json"]);
    run.code(3);
    let recap: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let hosts = recap["hosts"].as_array().unwrap();
    let status = |i: usize| hosts[i]["status"].as_str().unwrap().to_string();
    assert_eq!((status(0), status(1)), ("changed".into(), "failed".into()));
    let error = hosts[1]["error"].as_str().unwrap();
    assert!(error.contains("fail where asked: asked to fail"), "{error}");
    assert!(out.path().join("s1.txt").exists());
    // The journal keeps each host's ansible results and the play's output.
    let record = journal_records(&f.path().join("state/runs")).join("\n");
    assert!(record.contains("\"ansible\""), "{record}");
    assert!(record.contains("PLAY RECAP"), "{record}");
}

/// The text of every journal record under `dir`.
fn journal_records(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            found.extend(journal_records(&p));
        } else if p.extension().is_some_and(|x| x == "json") {
            found.push(std::fs::read_to_string(p).unwrap());
        }
    }
    found
}

#[test]
fn a_missing_ansible_playbook_says_what_to_install() {
    let f = TestFleet::start(1);
    std::fs::create_dir_all(f.path().join("recipes")).unwrap();
    std::fs::write(
        f.path().join("recipes/play.rhai"),
        RECIPE.replace("OUT", "\"/tmp\""),
    )
    .unwrap();
    std::fs::write(f.path().join("site.yml"), SITE).unwrap();
    std::fs::write(
        f.path().join("recipes/ready.rhai"),
        "/// Checks.\nfn ready() { ansible::require(\"nope.yml\"); }\n",
    )
    .unwrap();
    fleet(f.path(), &path_with_ansible(), &["ready"])
        .code(2)
        .stderr_has("the playbook `nope.yml` does not exist in the project");
    // A playbook Ansible refuses ends the recipe with Ansible's own words.
    std::fs::write(
        f.path().join("site.yml"),
        "- hosts: all\n  roles: [no_such_role]\n",
    )
    .unwrap();
    fleet(f.path(), &path_with_ansible(), &["site"])
        .code(2)
        .stderr_has("before any play recap")
        .stderr_has("no_such_role");
    std::fs::write(f.path().join("site.yml"), SITE).unwrap();
    let empty = tempfile::tempdir().unwrap();
    fleet(f.path(), &empty.path().display().to_string(), &["site"])
        .code(2)
        .stderr_has("ansible-playbook is not installed")
        .stderr_has("ansible-core");
}

#[test]
fn an_unreachable_host_is_unreachable_and_the_other_goes_on() {
    let path = path_with_ansible();
    let out = out_dir();
    let f = project(out.path());
    f.kill("s2");
    let run = fleet(f.path(), &path, &["site", "--json"]);
    run.code(4);
    let recap: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let hosts = recap["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["status"], "changed", "{}", run.stdout);
    assert_eq!(hosts[1]["status"], "unreachable", "{}", run.stdout);
    assert!(out.path().join("s1.txt").exists());
}

#[test]
fn each_host_may_run_its_own_playbook() {
    let path = path_with_ansible();
    let out = out_dir();
    let f = project(out.path());
    let run = fleet(f.path(), &path, &["each-host", "--json"]);
    run.code(3);
    let recap: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let hosts = recap["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["status"], "changed", "{}", run.stdout);
    assert_eq!(hosts[1]["status"], "failed", "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(out.path().join("s2.txt")).unwrap(),
        "each \n"
    );
}
