//! Proxmox LXC containers: `fleet provision --kind ct`, `fleet vms` and `fleet terminate`
//! of a container, and `pct::`/`pveam` in recipes, against the Proxmox simulator
//! (tests/support/proxmox.rs): real SSH to the node, a real container as the CT.

use crate::support::proxmox::{CT_TEMPLATE, ProxmoxSim};
use crate::support::run_fleet;
use std::path::Path;

fn provision_ct(sim: &ProxmoxSim, extra: &[&str]) -> crate::support::Output {
    let key = sim.project().join("id_ed25519.pub").display().to_string();
    let mut args: Vec<&str> = vec!["provision", "--kind", "ct", "--ssh-key", &key];
    args.extend(extra);
    run_fleet(sim.project(), &args)
}

fn cts(sim: &ProxmoxSim) -> Vec<String> {
    sim.state()["cts"]
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

#[test]
fn a_container_is_provisioned_listed_and_terminated() {
    let sim = ProxmoxSim::start();
    provision_ct(
        &sim,
        &["ct-1", "--vmid", "120", "--wait", "60", "--nesting"],
    )
    .code(0)
    .stdout_has("CT 120 (ct-1) created on pve1")
    .stdout_has("ct-1 is at ");
    assert_eq!(cts(&sim), ["120"]);

    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(inventory.contains("[hosts.ct-1]"), "{inventory}");
    assert!(inventory.contains("user = \"root\""), "{inventory}");
    assert!(
        inventory.contains("vars = { kind = \"ct\", proxmox_node = \"pve1\", vmid = 120 }"),
        "{inventory}"
    );

    // The key from --ssh-public-keys lets fleet in as root.
    run_fleet(sim.project(), &["exec", "ct-1", "--", "hostname; id -un"])
        .code(0)
        .stdout_has("ct-1 | ct-1")
        .stdout_has("ct-1 | root");

    run_fleet(sim.project(), &["exec", "pve1", "--", "pct config 120"])
        .code(0)
        .stdout_has("unprivileged: 1")
        .stdout_has("features: nesting=1")
        .stdout_has("onboot: 1")
        .stdout_has("rootfs: local-lvm:vm-120-disk-0,size=20G")
        .stdout_has("net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:");
    let log = commands_logged(sim.project());
    assert!(!log.contains("ssh-ed25519"), "the key went through a file");

    run_fleet(sim.project(), &["vms"])
        .code(0)
        .stdout_has("120")
        .stdout_has(" ct ")
        .stdout_has("running")
        .stdout_has("ct-1");

    run_fleet(sim.project(), &["terminate", "ct-1", "--yes"])
        .code(0)
        .stdout_has("CT 120 (ct-1) destroyed on pve1 and removed from the inventory");
    assert!(cts(&sim).is_empty());
    assert!(sim.containers().is_empty(), "{:?}", sim.containers());
    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(!inventory.contains("ct-1"), "{inventory}");
}

#[test]
fn a_bad_template_or_storage_is_refused_before_pct_create() {
    let sim = ProxmoxSim::start();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "ct-2",
                "--template",
                "local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst",
            ],
            "template `local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst`: not on pve1 (fetch it with `pveam download local ubuntu-24.04-standard_24.04-2_amd64.tar.zst`",
        ),
        (
            &["ct-2", "--storage", "local", "--template", CT_TEMPLATE],
            "storage `local`: storage on pve1 does not hold rootdir",
        ),
        (
            &[
                "ct-2",
                "--template",
                "nosuch:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
            ],
            "no such storage on pve1",
        ),
    ];
    for (args, message) in cases {
        provision_ct(&sim, args)
            .code(3)
            .stderr_has(message)
            .stderr_has("nothing was sent");
        let log = commands_logged(sim.project());
        assert!(!log.contains("pct create"), "{args:?} ran pct create");
    }
    // What this machine can judge ends the run before any connection.
    provision_ct(
        &sim,
        &["ct-2", "--template", "/var/lib/vz/template/cache/x.tar.zst"],
    )
    .code(2)
    .stderr_has(
        "template `/var/lib/vz/template/cache/x.tar.zst`: must be a container template volume",
    );
    let log = commands_logged(sim.project());
    assert!(!log.contains("\"command\""), "a command ran:\n{log}");
    assert!(cts(&sim).is_empty());
    assert!(sim.containers().is_empty());

    // Check mode asks the node, then only says what it would do.
    provision_ct(&sim, &["ct-3", "--check"])
        .code(0)
        .stdout_has(
            "pct create 100 local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst --hostname ct-3",
        )
        .stdout_has("would wait for CT 100's address");
    assert!(cts(&sim).is_empty());
    assert!(sim.containers().is_empty());
    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(!inventory.contains("ct-3"), "{inventory}");
}

#[test]
fn recipes_fetch_templates_and_run_commands_in_a_container() {
    let sim = ProxmoxSim::start();
    std::fs::create_dir_all(sim.project().join("recipes")).unwrap();
    std::fs::write(
        sim.project().join("recipes/lab.rhai"),
        r#"
/// Fetches a template and makes a container from it.
fn lab() {
    let pve = host("pve1");
    let names = pct::available(pve).map(|a| a.template);
    print(`available: ${names.len()}`);
    let t = pct::download(pve, "local", "ubuntu-24.04-standard_24.04-2_amd64.tar.zst");
    print(`template ${t}`);
    let ct = pct::create(pve, #{ hostname: "lab-1", template: t, nesting: true });
    pct::start_new(pve, ct);
    print(`status ${pct::status(pve, ct.vmid)}`);
    let r = pct::exec(pve, ct.vmid, ["sh", "-c", "echo hi from $(hostname)"]);
    print(`exec ${r.code}: ${r.stdout}`);
    print(`address ${pct::address(pve, ct.vmid, #{ timeout: 30 }) != ""}`);
    pct::stop(pve, ct.vmid);
    pct::destroy(pve, ct.vmid, #{ purge: true });
    print(`exists ${pct::exists(pve, ct.vmid)}`);
}
"#,
    )
    .unwrap();
    run_fleet(sim.project(), &["lab"])
        .code(0)
        .stdout_has("available: 4")
        .stdout_has("template local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst")
        .stdout_has("status running")
        .stdout_has("exec 0: hi from lab-1")
        .stdout_has("address true")
        .stdout_has("exists false");
    assert!(sim.containers().is_empty());
}
