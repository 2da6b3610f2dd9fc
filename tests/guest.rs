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

/// `python3 -m http.server` on the loopback serving one file; its request log is kept.
struct FileServer {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl FileServer {
    fn start(name: &str, content: &[u8]) -> FileServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), content).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("requests.log")).unwrap();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 -m http.server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        FileServer { child, dir, port }
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    fn gets(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("requests.log"))
            .unwrap()
            .matches("\"GET ")
            .count()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha512_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha512sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..128].to_string()
}

#[test]
fn image_fetch_verifies_before_it_puts_the_file_in_place() {
    let sim = ProxmoxSim::start();
    let p = sim.project();
    let content = b"QFI\xfb a tiny cloud image";
    let server = FileServer::start("tiny-cloud.img", content);
    let url = server.url("tiny-cloud.img");
    let right = sha512_hex(content);
    let wrong = "0".repeat(128);
    let folder = sim.sim.path().join("storage/local/template/iso");
    let target = folder.join("tiny-cloud.img");
    let leftovers = || -> Vec<String> {
        std::fs::read_dir(&folder)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    run_fleet(
        p,
        &["image", "fetch", &url, "--node", "pve1", "--sha512", &wrong],
    )
    .code(3)
    .stderr_has("the download was removed, nothing was put in place");
    assert_eq!(leftovers(), Vec::<String>::new());

    run_fleet(
        p,
        &[
            "image", "fetch", &url, "--node", "pve1", "--sha512", &right, "--check",
        ],
    )
    .code(0)
    .stdout_has("curl -fsSL")
    .stdout_has("would fetch local:iso/tiny-cloud.img");
    assert!(!target.exists(), "--check fetched");
    assert_eq!(server.gets(), 1);

    run_fleet(
        p,
        &["image", "fetch", &url, "--node", "pve1", "--sha512", &right],
    )
    .code(0)
    .stdout_has("fetched local:iso/tiny-cloud.img");
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert_eq!(leftovers(), ["tiny-cloud.img"]);
    assert_eq!(server.gets(), 2);

    run_fleet(
        p,
        &["image", "fetch", &url, "--node", "pve1", "--sha512", &right],
    )
    .code(0)
    .stdout_has("local:iso/tiny-cloud.img is already there");
    assert_eq!(server.gets(), 2, "a second fetch downloaded again");

    // Judged before anything is sent.
    for (args, says) in [
        (
            vec!["image", "fetch", "file:///etc/passwd.img", "--node", "pve1"],
            "must start with http://",
        ),
        (
            vec!["image", "fetch", &url, "--node", "pve1", "--sha512", "abc"],
            "sha512 `abc`",
        ),
        (
            vec!["image", "fetch", &url, "--node", "pve1", "--storage=-rf"],
            "storage `-rf`",
        ),
        (
            vec!["image", "fetch", &url, "--node", "nosuch"],
            "no host named `nosuch`",
        ),
    ] {
        run_fleet(p, &args).code(2).stderr_has(says);
    }
    // A storage without a directory is named by the node.
    run_fleet(
        p,
        &[
            "image",
            "fetch",
            &url,
            "--node",
            "pve1",
            "--storage",
            "local-lvm",
        ],
    )
    .code(3)
    .stderr_has("does not hold iso");
    assert_eq!(server.gets(), 2);
}

#[test]
fn provision_fetches_a_missing_image_from_image_url() {
    let sim = ProxmoxSim::start();
    let p = sim.project();
    let content = b"QFI\xfb the cloud image of the url";
    let server = FileServer::start("url-cloud.qcow2", content);
    let url = server.url("url-cloud.qcow2");
    let sum = sha512_hex(content);
    let key = p.join("id_ed25519.pub").display().to_string();
    let base = ["provision", "web-4", "--ssh-key", &key, "--image-url", &url];

    let mut bad = base.to_vec();
    bad.extend(["--image-sha512", "xyz"]);
    run_fleet(p, &bad)
        .code(2)
        .stderr_has("sha512 `xyz`: must be 128 hex digits");
    run_fleet(
        p,
        &[
            "provision",
            "web-4",
            "--ssh-key",
            &key,
            "--image-sha512",
            &sum,
        ],
    )
    .code(2)
    .stderr_has("--image-sha512 needs --image-url");

    let mut check = base.to_vec();
    check.extend(["--image-sha512", &sum, "--check"]);
    run_fleet(p, &check)
        .code(0)
        .stdout_has("would fetch local:iso/url-cloud.qcow2 on pve1, then create VM web-4 from it");
    assert_eq!(server.gets(), 0, "--check downloaded");

    let mut run = base.to_vec();
    run.extend([
        "--image-sha512",
        &sum,
        "--packages",
        "",
        "--wait",
        "60",
        "--vmid",
        "106",
    ]);
    run_fleet(p, &run)
        .code(0)
        .stdout_has("VM 106 (web-4) created on pve1");
    let image = sim
        .sim
        .path()
        .join("storage/local/template/iso/url-cloud.qcow2");
    assert_eq!(std::fs::read(&image).unwrap(), content);
    assert_eq!(server.gets(), 1);
    run_fleet(p, &["exec", "pve1", "--", "qm config 106"])
        .code(0)
        .stdout_has("scsi0: local-lvm:vm-106-disk-0");
}
