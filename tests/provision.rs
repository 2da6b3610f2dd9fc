//! `fleet provision`, `fleet vms` and `fleet terminate` against the Proxmox simulator
//! (tests/support/proxmox.rs): real SSH to the node, real containers as VMs, real
//! cloud-init applying the user-data fleet generated.

use crate::support::proxmox::ProxmoxSim;
use crate::support::run_fleet;
use std::path::Path;

fn provision(sim: &ProxmoxSim, extra: &[&str]) -> crate::support::Output {
    let mut args: Vec<String> = vec!["provision".into()];
    args.extend(sim.provision_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_fleet(sim.project(), &args)
}

fn vms(sim: &ProxmoxSim) -> Vec<String> {
    sim.state()["vms"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The commands fleet ran on the node in its last run, from the run log.
fn commands_logged(project: &Path) -> String {
    let logs = project.join(".fleet/logs");
    let mut newest = std::fs::read_dir(&logs)
        .unwrap_or_else(|e| panic!("{}: {e}", logs.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect::<Vec<_>>();
    newest.sort();
    std::fs::read_to_string(newest.last().expect("a run log")).unwrap()
}

fn cloud_init_valid(path: &Path) {
    let out = std::process::Command::new("cloud-init")
        .args(["schema", "--config-file"])
        .arg(path)
        .output()
        .expect("cloud-init schema (apt-get install cloud-init)");
    assert!(
        out.status.success(),
        "{} is not valid cloud-config:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn provision_configure_list_and_terminate_end_to_end() {
    let sim = ProxmoxSim::start();
    // A project module `configure` is applied to the new host.
    std::fs::create_dir_all(sim.project().join("stdlib")).unwrap();
    std::fs::write(
        sim.project().join("stdlib/configure.rhai"),
        "fn apply(h) { h.sudo(\"touch /etc/configured-by-fleet\"); }\n",
    )
    .unwrap();

    let out = provision(
        &sim,
        &["web-3", "--packages", "", "--wait", "60", "--vmid", "105"],
    );
    out.code(0)
        .stdout_has("VM 105 (web-3) created on pve1")
        .stdout_has("cloud-init done");
    assert_eq!(vms(&sim), ["105"]);

    // The inventory gained the host, comments kept.
    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(
        inventory.starts_with("# the lab (comments survive fleet's edits)\n"),
        "{inventory}"
    );
    assert!(inventory.contains("[hosts.web-3]"), "{inventory}");
    assert!(inventory.contains("user = \"admin\""), "{inventory}");
    assert!(
        inventory.contains("vars = { proxmox_node = \"pve1\", vmid = 105 }"),
        "{inventory}"
    );

    // The VM answers as itself, over SSH, as the user cloud-init made.
    run_fleet(sim.project(), &["exec", "web-3", "--", "hostname; id -un; test -e /etc/configured-by-fleet && echo configured; cat /etc/ssh/sshd_config.d/10-fleet.conf"])
        .code(0)
        .stdout_has("web-3 | web-3")
        .stdout_has("web-3 | admin")
        .stdout_has("web-3 | configured")
        .stdout_has("web-3 | PermitRootLogin prohibit-password");

    // The snippets fleet uploaded are what cloud-init accepted; they also pass its schema.
    let snippets = sim.sim.path().join("storage/local/snippets");
    let user_data = snippets.join("fleet-105-user.yaml");
    assert!(
        std::fs::read_to_string(&user_data)
            .unwrap()
            .starts_with("#cloud-config\n")
    );
    cloud_init_valid(&user_data);
    assert!(
        std::fs::read_to_string(snippets.join("fleet-105-network.yaml"))
            .unwrap()
            .contains("macaddress: bc:24:11:")
    );
    let config = run_fleet(sim.project(), &["exec", "pve1", "--", "qm config 105"]);
    config
        .code(0)
        .stdout_has("cicustom: user=local:snippets/fleet-105-user.yaml,network=local:snippets/fleet-105-network.yaml")
        .stdout_has("scsi0: local-lvm:vm-105-disk-0,size=20G");

    run_fleet(sim.project(), &["vms"])
        .code(0)
        .stdout_has("105")
        .stdout_has("running")
        .stdout_has("web-3");

    // Without a terminal, terminate needs --yes and destroys nothing until then.
    run_fleet(sim.project(), &["terminate", "web-3"])
        .code(2)
        .stderr_has("pass --yes");
    assert_eq!(vms(&sim), ["105"]);

    run_fleet(sim.project(), &["terminate", "web-3", "--yes"])
        .code(0)
        .stdout_has("VM 105 (web-3) destroyed on pve1 and removed from the inventory");
    assert!(vms(&sim).is_empty());
    assert!(sim.containers().is_empty(), "{:?}", sim.containers());
    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(!inventory.contains("web-3"), "{inventory}");
    assert!(inventory.contains("# the lab"), "{inventory}");

    // The same name again, now with Proxmox's own cloud-init options (no snippets): the
    // new VM's host key is accepted although the address may be the old VM's.
    provision(
        &sim,
        &["web-3", "--snippets", "", "--upgrade=false", "--wait", "60"],
    )
    .code(0)
    .stdout_has("VM 100 (web-3) created on pve1");
    run_fleet(sim.project(), &["exec", "pve1", "--", "qm config 100"])
        .code(0)
        .stdout_has("ciuser: admin")
        .stdout_has("sshkeys: ssh-ed25519%20")
        .stdout_has("ciupgrade: 0")
        .stdout_has("ipconfig0: ip=dhcp");
    run_fleet(sim.project(), &["exec", "web-3", "--", "id -un"])
        .code(0)
        .stdout_has("web-3 | admin");
    run_fleet(sim.project(), &["terminate", "web-3", "--yes"]).code(0);
    assert!(sim.containers().is_empty());
}

#[test]
fn a_failed_cloud_init_fails_the_run_with_its_error() {
    let sim = ProxmoxSim::start();
    let out = provision(
        &sim,
        &[
            "web-8",
            "--packages",
            "no-such-package-fleet",
            "--upgrade=false",
            "--wait",
            "60",
        ],
    );
    out.code(3)
        .stderr_has("cloud-init failed on web-8: status error")
        .stderr_has("'install', 'no-such-package-fleet'");
    // The VM stays for inspection, and fleet terminate can remove it.
    run_fleet(sim.project(), &["terminate", "web-8", "--yes"]).code(0);
}

#[test]
fn bad_specs_stop_before_any_qm_create() {
    let sim = ProxmoxSim::start();
    std::fs::write(
        sim.sim.path().join("state.json"),
        r#"{"vms": {"150": {"name": "old", "memory": "512"}}}"#,
    )
    .unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["web-4", "--vmid", "150"],
            "vmid `150`: VM 150 already exists",
        ),
        (
            &["web-4", "--storage", "nosuch"],
            "storage `nosuch`: no such storage on pve1 (storages: local, local-lvm, nfs1)",
        ),
        (
            &["web-4", "--storage", "nfs1"],
            "storage `nfs1`: storage is disabled on pve1",
        ),
        (
            &["web-4", "--bridge", "vmbr9"],
            "bridge `vmbr9`: no such bridge on pve1 (bridges: vmbr0)",
        ),
        (&["web_4"], "name `web_4`: must be a DNS label"),
        (
            &["web-4", "--memory", "8"],
            "memory `8`: must be at least 16",
        ),
    ];
    for (args, message) in cases {
        let out = provision(&sim, args);
        out.code(3)
            .stderr_has(message)
            .stderr_has("nothing was sent");
        assert!(
            !commands_logged(sim.project()).contains("qm create"),
            "{args:?} ran qm create"
        );
    }
    assert_eq!(vms(&sim), ["150"]);
    assert!(sim.containers().is_empty());
    // Several problems at once are all named.
    provision(&sim, &["web-4", "--bridge", "vmbr9", "--storage", "nosuch"])
        .code(3)
        .stderr_has("storage `nosuch`")
        .stderr_has("bridge `vmbr9`");
}

#[test]
fn a_failing_start_destroys_the_new_vm_and_its_snippets() {
    let sim = ProxmoxSim::start();
    sim.fail_start("QEMU exited with code 1");
    let out = provision(&sim, &["web-5", "--vmid", "120", "--packages", ""]);
    out.code(3)
        .stderr_has("start failed: QEMU exited with code 1")
        .stderr_has("cleanup: destroyed VM 120 on pve1 and removed its cloud-init snippets");
    assert!(vms(&sim).is_empty());
    let left: Vec<_> = std::fs::read_dir(sim.sim.path().join("storage/local/snippets"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(!inventory.contains("web-5"));
}

#[test]
fn waits_end_with_the_stage_reached() {
    let sim = ProxmoxSim::start();
    // An agent that never answers: the address wait names the stage and the cause.
    sim.fault("agent_down", serde_json::json!(true));
    provision(&sim, &["web-6", "--vmid", "130", "--packages", "", "--wait", "4"])
        .code(3)
        .stderr_has("no address for VM 130 on pve1 after 4s; stage reached: VM started, QEMU guest agent is not running");
    run_fleet(
        sim.project(),
        &["exec", "pve1", "--", "qm stop 130 && qm destroy 130"],
    )
    .code(0);

    // A VM whose sshd never comes up: the SSH wait times out and says so.
    sim.fault("no_sshd", serde_json::json!(true));
    let out = provision(
        &sim,
        &["web-7", "--vmid", "131", "--packages", "", "--wait", "5"],
    );
    out.code(4).stderr_has("web-7 is unreachable");
    assert!(out.stderr.contains("wait for ssh"), "{}", out.stderr);
    // The VM exists and is in the inventory, so `fleet terminate` can take it away.
    run_fleet(sim.project(), &["terminate", "web-7", "--yes"]).code(0);
    assert!(sim.containers().is_empty());
}

#[test]
fn terminate_of_a_missing_vm_keeps_the_entry_unless_forced() {
    let sim = ProxmoxSim::start();
    let inventory = sim.project().join("inventory.toml");
    let mut text = std::fs::read_to_string(&inventory).unwrap();
    text.push_str(
        "\n[hosts.ghost]\naddress = \"10.9.9.9\"\nvars = { proxmox_node = \"pve1\", vmid = 777 }\n",
    );
    std::fs::write(&inventory, text).unwrap();
    run_fleet(sim.project(), &["terminate", "ghost", "--yes"])
        .code(3)
        .stdout_has("VM 777 (ghost) was not found on pve1")
        .stderr_has("pass --force");
    assert!(
        std::fs::read_to_string(&inventory)
            .unwrap()
            .contains("ghost")
    );
    run_fleet(sim.project(), &["terminate", "ghost", "--force"])
        .code(0)
        .stdout_has("ghost removed from the inventory (--force)");
    assert!(
        !std::fs::read_to_string(&inventory)
            .unwrap()
            .contains("ghost")
    );
}

#[test]
fn without_a_terminal_missing_arguments_are_listed() {
    let sim = ProxmoxSim::start();
    run_fleet(sim.project(), &["provision"])
        .code(2)
        .stderr_has("the following required arguments were not provided")
        .stderr_has("<NAME>");
}

#[test]
fn a_create_that_fails_on_the_node_removes_the_snippets_it_wrote() {
    let sim = ProxmoxSim::start();
    sim.fault("create", serde_json::json!("storage 'local-lvm' is full"));
    provision(&sim, &["web-9", "--vmid", "140"])
        .code(3)
        .stderr_has("unable to create VM 140 - storage 'local-lvm' is full")
        .stderr_has("cleanup: VM 140 was not created, nothing to destroy")
        .stderr_has("cleanup: removed ");
    let left: Vec<_> = std::fs::read_dir(sim.sim.path().join("storage/local/snippets"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(vms(&sim).is_empty());
}

#[test]
fn provision_rejects_bad_ssh_port() {
    // No simulator: the node is a port nothing listens on, so any connection would end
    // the run as unreachable instead of naming the argument.
    let p = crate::support::Project::new()
        .file(
            "inventory.toml",
            "[hosts.pve]\naddress = \"127.0.0.1\"\nport = 1\ngroups = [\"proxmox\"]\n",
        )
        .file(
            "key.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n",
        );
    for port in ["0", "70000", "-1"] {
        let flag = format!("--ssh-port={port}");
        let out = p.fleet(&["provision", "web-3", "--ssh-key", "key.pub", &flag]);
        out.code(2)
            .stderr_has(&format!("expects a port (1-65535), got `{port}`"))
            .stderr_has("ssh_port");
        assert!(!out.stderr.contains("unreachable"), "{out}");
    }
    assert!(!p.path().join(".fleet/logs").exists(), "a run was started");
}
