//! `fleet guest` against the Proxmox simulator (tests/support/proxmox.rs): a VM put into
//! the simulator's state directly (no provisioning), started, resized and stopped by
//! its inventory name.

use crate::support::proxmox::ProxmoxSim;
use crate::support::run_fleet;

/// A stopped VM 105 on pve1 and its inventory host web-3.
fn sim_with_vm() -> ProxmoxSim {
    let sim = ProxmoxSim::start();
    let state = serde_json::json!({ "vms": { "105": {
        "name": "web-3", "cores": "1", "memory": "512", "agent": "enabled=1",
        "scsi0": "local-lvm:vm-105-disk-0,size=20G", "disk_gb": 20.0,
        "ide2": "local-lvm:vm-105-cloudinit,media=cdrom", "ipconfig0": "ip=dhcp",
    } } });
    std::fs::write(sim.sim.path().join("state.json"), state.to_string()).unwrap();
    let inventory = sim.project().join("inventory.toml");
    let mut text = std::fs::read_to_string(&inventory).unwrap();
    text.push_str(
        "\n[hosts.web-3]\naddress = \"192.0.2.13\"\nvars = { proxmox_node = \"pve1\", vmid = 105 }\n\
         \n[hosts.ct-1]\naddress = \"192.0.2.14\"\nvars = { proxmox_node = \"pve1\", vmid = 200, kind = \"ct\" }\n\
         \n[hosts.plain]\naddress = \"192.0.2.15\"\n",
    );
    std::fs::write(&inventory, text).unwrap();
    sim
}

fn vm(sim: &ProxmoxSim) -> serde_json::Value {
    sim.state()["vms"]["105"].clone()
}

#[test]
fn start_set_reboot_and_stop_by_inventory_name() {
    let sim = sim_with_vm();
    let p = sim.project();

    run_fleet(p, &["guest", "start", "web-3", "--check"])
        .code(0)
        .stdout_has("qm start 105");
    assert!(sim.containers().is_empty(), "--check started the VM");

    run_fleet(p, &["guest", "start", "web-3"]).code(0);
    assert_eq!(sim.containers().len(), 1);
    run_fleet(p, &["guest", "start", "web-3"])
        .code(0)
        .stdout_has("web-3 (VM 105) is already running");

    // On a running VM without cpu/memory hotplug, cores and memory wait for a restart.
    let before = vm(&sim);
    run_fleet(
        p,
        &[
            "guest", "set", "web-3", "--cores", "2", "--memory", "1024", "--disk", "+5", "--check",
        ],
    )
    .code(0)
    .stdout_has("qm set 105 --cores 2 --memory 1024")
    .stdout_has("qm disk resize 105 scsi0 +5G")
    .stdout_has("web-3 would change: cores 1 -> 2, memory 512 -> 1024, scsi0 +5G")
    .stdout_has("cores and memory would apply at its next start");
    assert_eq!(vm(&sim), before, "--check changed the VM");

    run_fleet(
        p,
        &[
            "guest", "set", "web-3", "--cores", "2", "--memory", "1024", "--disk", "+5",
        ],
    )
    .code(0)
    .stdout_has("web-3 changed: cores 1 -> 2, memory 512 -> 1024, scsi0 +5G")
    .stdout_has(
        "web-3: cores and memory apply at its next start: restart it (fleet guest reboot web-3)",
    );
    let now = vm(&sim);
    assert_eq!(now["pending"]["cores"], "2");
    assert_eq!(now["cores"], "1");
    assert_eq!(now["scsi0"], "local-lvm:vm-105-disk-0,size=25G");

    // The pending values count: a second run changes nothing.
    run_fleet(
        p,
        &["guest", "set", "web-3", "--cores", "2", "--memory", "1024"],
    )
    .code(0)
    .stdout_has("web-3 already has these settings");

    run_fleet(p, &["guest", "reboot", "web-3"]).code(0);
    let now = vm(&sim);
    assert_eq!(
        (now["cores"].as_str(), now["memory"].as_str()),
        (Some("2"), Some("1024"))
    );
    assert!(now.get("pending").is_none(), "{now}");

    run_fleet(p, &["guest", "shutdown", "web-3", "--check"])
        .code(0)
        .stdout_has("qm shutdown 105 --timeout 60 --forceStop 1");
    assert_eq!(sim.containers().len(), 1);
    run_fleet(p, &["guest", "stop", "web-3"]).code(0);
    assert!(sim.containers().is_empty());
    run_fleet(p, &["guest", "stop", "web-3"])
        .code(0)
        .stdout_has("web-3 (VM 105) is already stopped");
    run_fleet(p, &["guest", "reboot", "web-3"])
        .code(3)
        .stderr_has("is stopped, so it cannot reboot");
}

#[test]
fn bad_names_and_values_are_refused_before_anything_is_sent() {
    let sim = sim_with_vm();
    let p = sim.project();
    let before = sim.state();
    for (args, says) in [
        (
            &["guest", "set", "web-3", "--cores", "0"][..],
            "cores `0`: must be between 1 and 1024",
        ),
        (
            &["guest", "set", "web-3", "--memory", "8"],
            "memory `8`: must be between 16",
        ),
        (
            &["guest", "set", "web-3", "--disk", "5"],
            "disk `5`: must be +GiB",
        ),
        (
            &["guest", "set", "web-3", "--disk", "+1;reboot"],
            "disk `+1;reboot`",
        ),
        (
            &["guest", "set", "web-3"],
            "give at least one of --cores, --memory, --disk",
        ),
        (
            &["guest", "start", "web-3", "--cores", "2"],
            "are for `fleet guest set`",
        ),
        (&["guest", "start", "nosuch"], "no host named `nosuch`"),
        (&["guest", "start", "plain"], "plain is not a Proxmox guest"),
        (
            &["guest", "start", "web-3", "plain"],
            "plain is not a Proxmox guest",
        ),
    ] {
        let out = run_fleet(p, args);
        out.code(2).stderr_has(says);
        assert!(
            !p.join(".fleet/logs").exists()
                || std::fs::read_dir(p.join(".fleet/logs"))
                    .unwrap()
                    .next()
                    .is_none(),
            "{args:?} started a run"
        );
    }
    assert_eq!(sim.state(), before);
    assert!(sim.containers().is_empty());
}

#[test]
fn qm_set_in_a_recipe_is_judged_before_it_connects() {
    let sim = sim_with_vm();
    let p = sim.project();
    std::fs::create_dir_all(p.join("recipes")).unwrap();
    std::fs::write(
        p.join("recipes/resize.rhai"),
        r#"
/// Resizes VM 105.
/// @arg cores: int  cores
fn resize(cores) {
    let r = qm::set(host("pve1"), 105, #{ cores: cores, memory: 768 });
    print(`changes: ${r.changes}, pending: ${r.pending}`);
}
"#,
    )
    .unwrap();
    let before = sim.state();
    run_fleet(p, &["resize", "0"])
        .code(2)
        .stderr_has("qm::set: cores `0`: must be between 1 and 1024");
    assert_eq!(sim.state(), before);
    run_fleet(p, &["resize", "3"])
        .code(0)
        .stdout_has("VM 105 changed: cores 1 -> 3, memory 512 -> 768")
        .stdout_has("pending: []");
    assert_eq!(vm(&sim)["cores"], "3");
    run_fleet(p, &["resize", "3"])
        .code(0)
        .stdout_has("VM 105 already has these settings")
        .stdout_has("changes: []");
}
