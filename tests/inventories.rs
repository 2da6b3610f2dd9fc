//! The inventories Ansible users already have, read as Ansible reads them: a YAML
//! inventory, the same fleet in INI, and two dynamic inventory scripts
//! (tests/fixtures/inventories). For each,
//! the hosts fleet selects for a list of patterns and every host's merged variables,
//! groups and connection settings are compared with Ansible's own answers, recorded
//! there by `record-ansible-answers` (with ansible-core), so that CI needs no Ansible.

use crate::support::{Output, Project};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/inventories");

/// Connection variables that fleet turns into a host's fields.
const FIELDS: &[&str] = &[
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_connection",
    "ansible_ssh_private_key_file",
];

fn answers(inventory: &str) -> Value {
    let path = Path::new(FIXTURES).join(format!("answers/{inventory}.json"));
    let text = std::fs::read_to_string(&path).expect("recorded answers");
    serde_json::from_str(&text).unwrap()
}

/// A project holding the fixture under `name` (its mode kept: scripts stay executable).
fn project_with(fixture: &str, name: &str) -> Project {
    let p = Project::new();
    std::fs::copy(Path::new(FIXTURES).join(fixture), p.path().join(name)).unwrap();
    p
}

fn hosts_json(out: &Output) -> Vec<Value> {
    out.code(0);
    serde_json::from_str::<Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{out}"))
        .as_array()
        .unwrap()
        .clone()
}

fn names(hosts: &[Value]) -> BTreeSet<String> {
    hosts
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every pattern selects the hosts Ansible's `--list-hosts` listed; one Ansible matches
/// nothing with is an error in fleet (a run on no host is surely a mistake).
fn same_host_sets(p: &Project, inventory: &str, answers: &Value) {
    let patterns = answers["patterns"].as_object().unwrap();
    assert!(patterns.len() >= 9, "too few patterns recorded");
    for (pattern, expected) in patterns {
        let expected: BTreeSet<String> = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        let out = p.fleet(&["-i", inventory, "hosts", "--json", "--", pattern]);
        if expected.is_empty() {
            out.code(2).stderr_has("matches no host");
        } else {
            assert_eq!(
                names(&hosts_json(&out)),
                expected,
                "{inventory}: pattern `{pattern}`"
            );
        }
    }
}

/// Groups each host is in, directly or through child groups, from `ansible-inventory
/// --list` (without `all` and Ansible's implicit `ungrouped`, as fleet lists them).
fn ansible_groups(list: &Map<String, Value>) -> BTreeMap<String, BTreeSet<String>> {
    fn members(list: &Map<String, Value>, group: &str, out: &mut BTreeSet<String>) {
        let Some(data) = list.get(group) else { return };
        for host in data["hosts"].as_array().into_iter().flatten() {
            out.insert(host.as_str().unwrap().to_string());
        }
        for child in data["children"].as_array().into_iter().flatten() {
            members(list, child.as_str().unwrap(), out);
        }
    }
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for group in list.keys() {
        if ["_meta", "all", "ungrouped"].contains(&group.as_str()) {
            continue;
        }
        let mut hosts = BTreeSet::new();
        members(list, group, &mut hosts);
        for host in hosts {
            groups.entry(host).or_default().insert(group.clone());
        }
    }
    groups
}

/// Merged variables (all < parents < children < host), groups and connection fields
/// of every host are Ansible's.
fn same_vars_and_groups(hosts: &[Value], answers: &Value) {
    let list = answers["list"].as_object().unwrap();
    let hostvars = list["_meta"]["hostvars"].as_object().unwrap();
    let groups = ansible_groups(list);
    let expected_names: BTreeSet<String> = hostvars
        .keys()
        .cloned()
        .chain(groups.keys().cloned())
        .collect();
    assert_eq!(names(hosts), expected_names);
    for host in hosts {
        let name = host["name"].as_str().unwrap();
        let mut want = hostvars.get(name).cloned().unwrap_or_default();
        let want = want.as_object_mut().unwrap();
        let field = |key: &str| want.get(key).cloned().unwrap_or(Value::Null);
        let address = match field("ansible_host") {
            Value::Null => Value::from(name),
            address => address,
        };
        assert_eq!(host["address"], address, "{name}: address");
        assert_eq!(host["port"], field("ansible_port"), "{name}: port");
        assert_eq!(host["user"], field("ansible_user"), "{name}: user");
        want.retain(|key, _| !FIELDS.contains(&key.as_str()));
        assert_eq!(host["vars"].as_object().unwrap(), want, "{name}: vars");
        let fleet_groups: BTreeSet<String> = host["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            fleet_groups,
            groups.get(name).cloned().unwrap_or_default(),
            "{name}: groups"
        );
    }
}

/// `fleet hosts --json` has one shape whatever the format.
fn same_shape_as_toml(hosts: &[Value]) {
    let toml = Project::new().local_hosts(1);
    let reference = hosts_json(&toml.fleet(&["hosts", "--json"]));
    let keys = |h: &Value| h.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    for host in hosts {
        assert_eq!(keys(host), keys(&reference[0]));
    }
}

#[test]
fn yaml_inventory_gives_ansibles_hosts_and_vars() {
    let answers = answers("hosts.yml");
    let p = project_with("hosts.yml", "hosts.yml");
    same_host_sets(&p, "hosts.yml", &answers);
    // Found by its content too: without an extension, as the project's default name.
    let p = project_with("hosts.yml", "inventory");
    let hosts = hosts_json(&p.fleet(&["hosts", "--json"]));
    same_vars_and_groups(&hosts, &answers);
    same_shape_as_toml(&hosts);
}

#[test]
fn what_ansible_inventory_exports_reads_back_the_same() {
    // `ansible-inventory -i hosts.yml --list --yaml`: merged vars on every host, and
    // Ansible's implicit `ungrouped` group spelled out.
    let answers = answers("hosts.yml");
    let p = project_with("answers/exported.yml", "exported.yml");
    let hosts = hosts_json(&p.fleet(&["-i", "exported.yml", "hosts", "--json"]));
    same_vars_and_groups(&hosts, &answers);
    let out = p.fleet(&["-i", "exported.yml", "hosts", "--json", "ungrouped"]);
    assert_eq!(
        names(&hosts_json(&out)),
        BTreeSet::from(["bastion".to_string()])
    );
}

#[test]
fn ini_inventory_gives_ansibles_hosts_and_vars() {
    // The same fleet as hosts.yml, so that the formats are seen to agree with each other.
    let answers = answers("hosts.ini");
    let p = project_with("hosts.ini", "hosts.ini");
    same_host_sets(&p, "hosts.ini", &answers);
    let hosts = hosts_json(&p.fleet(&["-i", "hosts.ini", "hosts", "--json"]));
    same_vars_and_groups(&hosts, &answers);
    same_shape_as_toml(&hosts);
}

#[test]
fn dynamic_inventory_gives_ansibles_hosts_and_vars() {
    let answers = answers("dynamic.py");
    let p = project_with("dynamic.py", "dynamic.py");
    same_host_sets(&p, "dynamic.py", &answers);
    let hosts = hosts_json(&p.fleet(&["-i", "dynamic.py", "hosts", "--json"]));
    same_vars_and_groups(&hosts, &answers);
    same_shape_as_toml(&hosts);
}

#[test]
fn dynamic_inventory_without_meta_is_asked_for_each_host() {
    let answers = answers("dynamic-nometa.sh");
    let p = project_with("dynamic-nometa.sh", "inv.sh");
    same_host_sets(&p, "inv.sh", &answers);
    let hosts = hosts_json(&p.fleet(&["-i", "inv.sh", "hosts", "--json"]));
    same_vars_and_groups(&hosts, &answers);
}

fn script(p: Project, name: &str, body: &str) -> Project {
    use std::os::unix::fs::PermissionsExt;
    let p = p.file(name, &format!("#!/bin/sh\n{body}"));
    let path = p.path().join(name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn a_failing_script_is_named_with_its_stderr() {
    let p = script(
        Project::new(),
        "pve.sh",
        "printf 'token \\033[31mexpired\\n' >&2\nexit 3\n",
    );
    let out = p.fleet(&["-i", "pve.sh", "hosts"]);
    out.code(2)
        .stderr_has("inventory script pve.sh (--list) exited with status 3")
        .stderr_has("expired");
    assert!(!out.stderr.contains('\u{1b}'), "raw escape shown: {out}");

    let p = script(Project::new(), "slow.sh", "echo working >&2\nsleep 20\n").file(
        "fleet.toml",
        "inventory = \"slow.sh\"\ninventory_timeout = 1\n",
    );
    let started = std::time::Instant::now();
    p.fleet(&["hosts"])
        .code(2)
        .stderr_has("inventory script slow.sh did not finish within 1s")
        .stderr_has("working")
        .stderr_has("inventory_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    let p = script(Project::new(), "junk.sh", "echo '{\"web\": [1'\n");
    p.fleet(&["-i", "junk.sh", "hosts"])
        .code(2)
        .stderr_has("not the JSON of a dynamic inventory")
        .stderr_has("junk.sh --list");
}

#[test]
fn a_script_that_is_not_executable_is_not_run() {
    let p = Project::new().file(
        "inv.py",
        "#!/usr/bin/python3\nprint('{}')\nopen('ran', 'w')\n",
    );
    p.fleet(&["-i", "inv.py", "hosts"])
        .code(2)
        .stderr_has("starts with `#!` but is not executable")
        .stderr_has("chmod +x");
    assert!(!p.path().join("ran").exists());
}
