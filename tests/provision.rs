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
    // What this machine can judge is a usage error, before the node is asked anything.
    provision(&sim, &["web_4", "--memory", "8"])
        .code(2)
        .stderr_has("name `web_4`: must be a DNS label")
        .stderr_has("memory `8`: must be between 16 and 268435456 (MiB)")
        .stderr_has("nothing was sent to the node");
    let log = commands_logged(sim.project());
    assert!(!log.contains("\"command\""), "a command ran:\n{log}");
}

/// A project whose only Proxmox node is down: a connection to it (127.0.0.1, port 1,
/// where nothing listens) would end the run as unreachable (exit 4), never exit 2.
fn node_down() -> crate::support::Project {
    crate::support::Project::new()
        .file(
            "inventory.toml",
            "[hosts.pve]\naddress = \"127.0.0.1\"\nport = 1\nuser = \"root\"\ngroups = [\"proxmox\"]\n",
        )
        .file(
            "key.pub",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test\n",
        )
}

/// The run log of `project`'s last run says nothing reached a host.
#[track_caller]
fn nothing_sent(project: &Path) {
    let log = commands_logged(project);
    assert!(
        !log.contains("\"command\"") && !log.contains("is unreachable"),
        "something was sent to the node:\n{log}"
    );
}

#[test]
fn local_problems_end_provision_before_any_connection() {
    let p = node_down();
    let cases: &[(&[&str], &[&str])] = &[
        (&["Bad_Name!"], &["name `Bad_Name!`: must be a DNS label"]),
        (
            &["web-3", "--memory", "8", "--disk", "0", "--cores", "0"],
            &[
                "memory `8`: must be between 16 and 268435456 (MiB)",
                "disk `0`: must be at least 1 (GiB)",
                "cores `0`: must be at least 1",
            ],
        ),
        (
            &["web-3", "--ip", "10.0.0.5"],
            &["ip `10.0.0.5`: must be `dhcp` or an IPv4 CIDR like 10.0.0.5/24"],
        ),
        (
            &["web-3", "--ip", "10.0.0.5/24", "--gateway", "10.0.1.1"],
            &["gateway `10.0.1.1`: is outside 10.0.0.0/24, the subnet of ip 10.0.0.5/24"],
        ),
        (
            &["web-3", "--gateway", "10.0.0.1"],
            &["gateway `10.0.0.1`: needs a static ip"],
        ),
        (
            &["web-3", "--user", "Root!"],
            &["user `Root!`: must be a Linux user name"],
        ),
        (
            &["web-3", "--dns", "10.0.0.1 one.one"],
            &["dns `one.one`: must be an IP address"],
        ),
        (
            &[
                "web-3",
                "--vmid",
                "99",
                "--storage",
                "local lvm",
                "--image",
                "debian.qcow2",
            ],
            &[
                "vmid `99`: must be between 100 and 999999999",
                "storage `local lvm`: is not a storage ID",
                "image `debian.qcow2`: must be an absolute path",
            ],
        ),
        (
            &["web-3", "--packages", "nginx Bad;pkg"],
            &["user_data packages: `Bad;pkg` is not a Debian package name"],
        ),
        // Every problem of one request at once.
        (
            &[
                "Bad_Name!",
                "--memory",
                "8",
                "--ip",
                "10.0.0.5/24",
                "--gateway",
                "10.0.1.1",
                "--user",
                "Root!",
            ],
            &[
                "name `Bad_Name!`",
                "memory `8`",
                "gateway `10.0.1.1`",
                "user `Root!`",
            ],
        ),
        (
            &["web-3", "--root-login", "maybe"],
            &["root_login 'maybe': must be no, prohibit-password or yes"],
        ),
        (&["web-3", "--wait", "0"], &["wait '0': must be at least 1"]),
        // The network edge's options are judged here too.
        (
            &["web-3", "--forward-ssh", "70000"],
            &["forward_ssh '70000': must be a port (1-65535), or 0 for none"],
        ),
        (&["web-3", "--tls"], &["--tls needs --domain"]),
        (
            &["web-3", "--domain", "web3;reboot"],
            &["domain 'web3;reboot': not a hostname"],
        ),
        (
            &["web-3", "--keys", "nobody"],
            &["--keys nobody: access.toml has no such group"],
        ),
    ];
    for (args, messages) in cases {
        let mut argv = vec!["provision", "--ssh-key", "key.pub"];
        argv.extend_from_slice(args);
        let out = p.fleet(&argv);
        out.code(2).stderr_has("nothing was sent to the node");
        for m in *messages {
            out.stderr_has(m);
        }
        assert!(!out.stderr.contains("is unreachable"), "{args:?}\n{out}");
        nothing_sent(p.path());
    }
    // A playbook that is not there (or no ansible-playbook) ends it before the node too.
    let out = p.fleet(&[
        "provision",
        "web-3",
        "--ssh-key",
        "key.pub",
        "--playbook",
        "missing.yml",
    ]);
    out.code(2);
    assert!(
        out.stderr.contains("missing.yml") || out.stderr.contains("ansible-core"),
        "{out}"
    );
    nothing_sent(p.path());
    // A key file that holds no public key is named too.
    std::fs::write(
        p.path().join("bad.pub"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = p.fleet(&["provision", "web-3", "--ssh-key", "bad.pub"]);
    out.code(2)
        .stderr_has("ssh_keys[0]: not an OpenSSH public key line");
    nothing_sent(p.path());
    // An option the recipe does not have is refused by the command line itself.
    let out = p.fleet(&[
        "provision",
        "web-3",
        "--ssh-key",
        "key.pub",
        "--colour",
        "blue",
    ]);
    out.code(2).stderr_has("--colour");
    assert!(!out.stderr.contains("is unreachable"), "{out}");
    // With every value good, the next step is the node, which is down: so the checks
    // above really ran before the first connection.
    let out = p.fleet(&["provision", "web-3", "--ssh-key", "key.pub"]);
    out.code(4).stderr_has("pve is unreachable");
}

#[test]
fn inventories_of_every_format_answer_has_and_refuse_edits() {
    let p = node_down()
        .file("hosts.ini", "[web]\nweb-1 ansible_host=10.0.0.4\n\n[proxmox]\npve ansible_host=127.0.0.1 ansible_port=1\n")
        .file("hosts.txt", "deploy@web-1:2222\nroot@127.0.0.1:1\n")
        .recipe(
            "probe",
            r#"
/// Whether the inventory has the host.
fn probe(name) { print(`has ${name}: ${inventory::has(name)}`); }
/// Adds a host.
fn adder() { inventory::add("new-1", #{ address: "10.0.0.9" }); }
/// Removes a host.
fn remover(name) { inventory::remove(name); }
"#,
        );
    for (file, kind) in [
        ("hosts.ini", "an Ansible INI inventory"),
        ("hosts.txt", "a plain list of hosts"),
    ] {
        let before = p.read(file);
        p.fleet(&["-i", file, "probe", "web-1"])
            .code(0)
            .stdout_has("has web-1: true");
        p.fleet(&["-i", file, "probe", "web-9"])
            .code(0)
            .stdout_has("has web-9: false");
        for args in [&["adder"][..], &["remover", "web-1"]] {
            let mut argv = vec!["-i", file];
            argv.extend_from_slice(args);
            p.fleet(&argv)
                .code(2)
                .stderr_has(&format!("{file} is {kind}, not a TOML inventory"))
                .stderr_has("by hand");
        }
        // provision refuses such an inventory before it creates anything.
        p.fleet(&["-i", file, "provision", "web-3", "--ssh-key", "key.pub"])
            .code(2)
            .stderr_has("not a TOML inventory");
        nothing_sent(p.path());
        assert_eq!(p.read(file), before, "{file} was changed");
    }
    // The TOML inventory answers the same way, and takes the edits.
    p.fleet(&["probe", "pve"])
        .code(0)
        .stdout_has("has pve: true");
    p.fleet(&["adder"]).code(0);
    p.fleet(&["probe", "new-1"])
        .code(0)
        .stdout_has("has new-1: true");
    p.fleet(&["remover", "new-1"]).code(0);
    assert!(!p.read("inventory.toml").contains("new-1"));
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

    // A VM whose sshd never comes up: the SSH wait times out and says so. The wait
    // leaves the simulated guest agent time to come up on a busy machine.
    sim.fault("no_sshd", serde_json::json!(true));
    let out = provision(
        &sim,
        &["web-7", "--vmid", "131", "--packages", "", "--wait", "15"],
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
        assert!(!out.stderr.contains("is unreachable"), "{out}");
    }
    assert!(!p.path().join(".fleet/logs").exists(), "a run was started");
}

#[test]
fn terminate_judges_the_hosts_vars_before_asking_the_node() {
    let p = node_down();
    let inventory = p.path().join("inventory.toml");
    let base = std::fs::read_to_string(&inventory).unwrap();
    for (vars, message) in [
        (
            r#"{ proxmox_node = "pve", vmid = "777" }"#,
            "ghost's var vmid must be a VM id (an integer), not '777'",
        ),
        (
            r#"{ proxmox_node = "pve", vmid = 5 }"#,
            "VM id 5 is not between 100 and 999999999",
        ),
        (
            r#"{ proxmox_node = 7, vmid = 777 }"#,
            "ghost's var proxmox_node must name the node's inventory host",
        ),
        (r#"{ proxmox_node = "nosuch", vmid = 777 }"#, "nosuch"),
    ] {
        std::fs::write(
            &inventory,
            format!("{base}\n[hosts.ghost]\naddress = \"10.9.9.9\"\nvars = {vars}\n"),
        )
        .unwrap();
        let out = p.fleet(&["terminate", "ghost", "--yes"]);
        out.code(2).stderr_has(message);
        assert!(!out.stderr.contains("is unreachable"), "{vars}\n{out}");
        nothing_sent(p.path());
    }
}

#[test]
fn qm_check_in_a_recipe_needs_no_node_and_refuses_unknown_keys() {
    let p = node_down().recipe(
        "vet",
        r#"
/// Judges a spec.
/// @arg memory: int  memory in MiB
fn vet(memory) {
    qm::check(#{ name: "web-1", image: "/var/lib/vz/i.qcow2", memory: memory });
    print("spec is fine");
}
/// A typo in a key.
fn typo() { qm::check(#{ name: "web-1", image: "/i.qcow2", memroy: 4096 }); }
"#,
    );
    p.fleet(&["vet", "4096"]).code(0).stdout_has("spec is fine");
    p.fleet(&["vet", "8"])
        .code(2)
        .stderr_has("VM `web-1` was not created; nothing was sent to the node")
        .stderr_has("memory `8`: must be between 16 and 268435456 (MiB)");
    p.fleet(&["typo"]).code(2).stderr_has(
        "unknown option `memroy` for qm::check(); known options: vmid, name, cores, memory",
    );
    nothing_sent(p.path());
}

/// The address `.200` of a subnet, with its prefix ("172.20.0.200/16").
fn address_200(subnet: &str) -> String {
    let (base, prefix) = subnet.split_once('/').expect("a subnet");
    let (head, _) = base.rsplit_once('.').expect("an IPv4 subnet");
    format!("{head}.200/{prefix}")
}

#[test]
fn provision_hands_over_a_reachable_server_and_terminate_takes_it_all_away() {
    use crate::support::acme::{fetch, must, serve_page, start_pebble, trust_pebble};
    use crate::support::containers::EdgeTopology;

    // The topology is made first so it is dropped last: the simulator's VMs leave its
    // internal network before the network is removed (a failed run leaks none).
    let t = EdgeTopology::start();
    let sim = ProxmoxSim::start();
    sim.bridge_to_network("vmbr0", &t.internal.name);
    let p = sim.project();
    let edge_public = t.edge.ip_on(&t.public);
    let edge_internal = t.edge.ip_on(&t.internal);
    let client_ip = t.client.ip_on(&t.public);
    // The edge joins the simulator's project, logged into with the topology's key.
    let mut inventory = std::fs::read_to_string(p.join("inventory.toml")).unwrap();
    inventory.push_str(&format!(
        "\n[hosts.edge]\naddress = \"{}\"\nport = {}\nuser = \"root\"\nidentity_file = \"{}\"\ngroups = [\"edge\"]\nvars = {{ internal_address = \"{edge_internal}\", public_address = \"{edge_public}\", nat = {{ masquerade = true }} }}\n",
        t.edge.address,
        t.edge.port,
        t.key.private().display()
    ));
    std::fs::write(p.join("inventory.toml"), inventory).unwrap();
    let mut known = std::fs::read_to_string(p.join("known_hosts")).unwrap();
    known.push_str(&format!("{}\n", t.edge.known_hosts_line()));
    std::fs::write(p.join("known_hosts"), known).unwrap();
    let ca = start_pebble(&t.client, &client_ip, &edge_public);
    let bundle = trust_pebble(&t.edge, &ca);
    let toml = std::fs::read_to_string(p.join("fleet.toml")).unwrap();
    std::fs::write(
        p.join("fleet.toml"),
        format!(
            "acme_directory = \"https://{client_ip}:14000/dir\"\nacme_ca_bundle = \"{bundle}\"\n{toml}"
        ),
    )
    .unwrap();
    t.client_on_the_internet();
    // The ops group's key (the topology's) gets the new VM through --keys.
    std::fs::write(
        p.join("access.toml"),
        format!(
            "[people.ops]\nkeys = [\"{}\"]\n\n[groups]\nops = [\"ops\"]\n",
            t.key.public().trim()
        ),
    )
    .unwrap();
    // The edge routes the internal network out before any VM is behind it.
    run_fleet(p, &["nat"]).code(0);
    let ip = address_200(&t.internal.subnet());
    let vm_ip = ip.split('/').next().unwrap().to_string();

    let out = provision(
        &sim,
        &[
            "web-3",
            "--packages",
            "",
            "--wait",
            "60",
            "--vmid",
            "105",
            "--ip",
            &ip,
            "--gateway",
            &edge_internal,
            "--forward-ssh",
            "2203",
            "--domain",
            "web3.test",
            "--tls",
            "--backup",
            "--keys",
            "ops",
        ],
    );
    out.code(0)
        .stdout_has(&format!("web-3: ssh -p 2203 admin@{edge_public}"))
        .stdout_has("web-3: https://web3.test/ through edge")
        .stdout_has("web-3: first backup ");
    let inventory = std::fs::read_to_string(p.join("inventory.toml")).unwrap();
    for var in [
        format!("public_ssh = \"{edge_public}:2203\""),
        "edge = \"edge\"".to_string(),
        "proxy = \"edge\"".to_string(),
        "domains = [\"web3.test\"]".to_string(),
        "backup_paths = [\"/etc\"]".to_string(),
    ] {
        assert!(inventory.contains(&var), "{var} in:\n{inventory}");
    }
    assert!(
        std::fs::read_dir(p.join("backups/web-3")).is_ok_and(|mut d| d.next().is_some()),
        "a first snapshot in backups/web-3"
    );

    // From the internet: a login through the forwarded port, the page over TLS.
    let vm = sim.containers().pop().expect("the VM's container");
    let vm = crate::support::containers::ContainerHost::existing(&vm);
    serve_page(&vm, "web-3 behind the edge\n");
    let key = std::fs::read_to_string(t.key.private()).unwrap();
    must(
        &t.client,
        &format!("umask 077; printf '%s' '{key}' > /tmp/id && true"),
    );
    let provision_out = format!("{out}");
    let (_, login) = t.client.try_exec(
        &format!(
            "ssh -i /tmp/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -p 2203 admin@{edge_public} hostname"
        ),
    );
    assert_eq!(
        login.trim(),
        "web-3",
        "{provision_out}\n{}",
        std::fs::read_to_string(p.join("access.toml")).unwrap()
    );
    let (ok, page) = fetch(&t.client, &edge_public);
    assert!(ok && page == "web-3 behind the edge\n", "{page}");
    assert_eq!(vm_ip, vm.ip_on(&t.internal));

    // Terminate takes the forward, the site and its certificate with the VM.
    let out = run_fleet(p, &["terminate", "web-3", "--yes"]);
    out.code(0)
        .stdout_has("1 forward(s) to web-3 removed from edge")
        .stdout_has("site web3.test removed from edge");
    assert!(vms(&sim).is_empty());
    let left = t.edge.exec(
        "grep -c 2203 /etc/fleet/nat.nft; ls /etc/nginx/sites-enabled /etc/letsencrypt/live 2>/dev/null | grep -c web3",
    );
    assert_eq!(left, "0\n0\n", "left on the edge");
    let (ok, _) = t.client.try_exec(&format!(
        "ssh -i /tmp/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=3 -p 2203 admin@{edge_public} hostname"
    ));
    assert!(!ok, "the forwarded port still answers after terminate");
    let inventory = std::fs::read_to_string(p.join("inventory.toml")).unwrap();
    assert!(!inventory.contains("web-3"), "{inventory}");
    let access = std::fs::read_to_string(p.join("access.toml")).unwrap();
    assert!(!access.contains("web-3"), "{access}");

    // A late step that fails (no ACME server at that port) leaves what exists, says
    // what it is, and terminate takes all of it away from the half-made server.
    let toml = std::fs::read_to_string(p.join("fleet.toml")).unwrap();
    std::fs::write(
        p.join("fleet.toml"),
        toml.replace(":14000/dir", ":14999/dir"),
    )
    .unwrap();
    let out = provision(
        &sim,
        &[
            "web-4",
            "--packages",
            "",
            "--upgrade=false",
            "--wait",
            "60",
            "--vmid",
            "106",
            "--ip",
            &ip,
            "--gateway",
            &edge_internal,
            "--forward-ssh",
            "2204",
            "--domain",
            "web4.test",
            "--tls",
        ],
    );
    out.code(2)
        .stderr_has("web-4 is only partly provisioned")
        .stderr_has(
            "what exists: VM 106 on pve1, inventory entry web-4, forward edge:2204 -> web-4:22",
        )
        .stderr_has("undo all of it: fleet terminate web-4 --yes");
    run_fleet(p, &["terminate", "web-4", "--yes"])
        .code(0)
        .stdout_has("1 forward(s) to web-4 removed from edge");
    assert!(vms(&sim).is_empty());
    let left = t.edge.exec(
        "grep -c 2204 /etc/fleet/nat.nft; ls /etc/nginx/sites-enabled /etc/nginx/sites-available | grep -c web4",
    );
    assert_eq!(left, "0\n0\n", "left on the edge by the half-made web-4");
}

/// Drives fleet in a pseudo-terminal (python3's `pty`): for each step, waits until the
/// terminal shows `wait` (after what the previous step saw), then types `keys`.
/// Returns the exit code and everything the terminal showed.
fn on_terminal_dialog(dir: &Path, args: &[String], steps: &[(&str, &str)]) -> (i32, String) {
    const DRIVER: &str = r#"
import json, os, pty, select, sys, time
steps = json.loads(os.environ["FLEET_DIALOG"])
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def more(timeout):
    global out
    if not select.select([fd], [], [], timeout)[0]:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    out += data
    return bool(data)
seen = 0
for wait, keys in steps:
    deadline = time.time() + 120
    while wait.encode() not in out[seen:]:
        if time.time() > deadline or not more(1):
            sys.stdout.write(out.decode(errors="replace"))
            sys.stdout.write("\n[driver] never saw " + repr(wait) + "\n")
            sys.exit(99)
    seen = out.index(wait.encode(), seen) + len(wait)
    for key in keys:
        time.sleep(0.3)
        os.write(fd, key.encode())
deadline = time.time() + 600
while time.time() < deadline and more(5):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    // Each key (an arrow is three bytes) is typed on its own.
    let steps: Vec<(String, Vec<String>)> = steps
        .iter()
        .map(|(wait, keys)| {
            let mut split = Vec::new();
            let mut rest = *keys;
            while !rest.is_empty() {
                let n = if rest.starts_with('\x1b') {
                    3
                } else {
                    rest.chars().next().unwrap().len_utf8()
                };
                split.push(rest[..n].to_string());
                rest = &rest[n..];
            }
            (wait.to_string(), split)
        })
        .collect();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(DRIVER)
        .arg(crate::support::fleet_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env("FLEET_DIALOG", serde_json::to_string(&steps).unwrap())
        .output()
        .expect("python3 runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_menus_pick_a_storage_and_two_apps() {
    let sim = ProxmoxSim::start();
    // A second storage that holds disk images, and the example catalog.
    let config_path = sim.sim.path().join("sim.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["storages"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "id": "tank", "type": "zfspool", "content": ["images"] }));
    std::fs::write(&config_path, config.to_string()).unwrap();
    std::fs::create_dir_all(sim.sim.path().join("storage/tank")).unwrap();
    std::fs::create_dir_all(sim.project().join("catalog")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configure/catalog/index.json"),
        sim.project().join("catalog/index.json"),
    )
    .unwrap();

    let mut args: Vec<String> = vec!["provision".into()];
    args.extend(sim.provision_args());
    for a in [
        "--snippets",
        "",
        "--upgrade=false",
        "--wait",
        "60",
        "--configure=false",
    ] {
        args.push(a.into());
    }
    let (code, shown) = on_terminal_dialog(
        sim.project(),
        &args,
        &[
            // Only the required argument is asked as text.
            ("name", "web-7\r"),
            // local-lvm is pre-selected; one down is tank.
            ("Storage for the disk", "\x1b[B\r"),
            // nginx, docker, redis, web-stack: tick the first and the third.
            ("Apps from the catalog", " \x1b[B\x1b[B \r"),
            // Enter accepts the defaults (none ticked).
            ("Configuration modules", "\r"),
        ],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("tank (zfspool, "), "{shown}");
    assert!(
        !shown.contains("cores"),
        "only NAME is asked as text:\n{shown}"
    );

    let state = sim.state();
    let vms = state["vms"].as_object().unwrap();
    assert_eq!(vms.len(), 1, "{state}");
    let vm = vms.values().next().unwrap().to_string();
    assert!(vm.contains("tank:"), "the disk is on tank: {vm}");
    assert!(!vm.contains("local-lvm:"), "{vm}");
    let inventory = std::fs::read_to_string(sim.project().join("inventory.toml")).unwrap();
    assert!(inventory.contains("[hosts.web-7]"), "{inventory}");
    assert!(
        inventory.contains(r#"apps = ["nginx", "redis"]"#),
        "{inventory}"
    );
}
