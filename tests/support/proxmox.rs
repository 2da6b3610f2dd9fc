//! A Proxmox node for the tests: one loopback sshd host (the node, logged into as root)
//! whose commands find the simulator's `qm`, `pvesh`, `pvesm`, `pct` and `pveam` first on PATH
//! (tests/support/proxmox-sim/pve-sim). The simulator keeps VM state in a JSON file and
//! boots VMs as containers of the test image with their cloud-init seed; dropping the
//! [`ProxmoxSim`] removes those containers and stops the node.
#![allow(dead_code)]

use super::containers::{remove_labelled, test_image, unique_label};
use super::sshd::TestFleet;
use std::path::{Path, PathBuf};

pub struct ProxmoxSim {
    /// The simulator's files: bin/, sim.json, state.json, storage/, images/.
    pub sim: tempfile::TempDir,
    pub fleet: TestFleet,
    pub instance: String,
}

pub const IMAGE: &str = "images/debian-13-genericcloud-amd64.qcow2";
/// The container template on storage `local` (`pct create`'s ostemplate).
pub const CT_TEMPLATE: &str = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";
const CT_TEMPLATE_FILE: &str = "debian-12-standard_12.7-1_amd64.tar.zst";

impl ProxmoxSim {
    /// A node `pve1` (group `proxmox`) with storages `local` (dir: snippets, iso) and
    /// `local-lvm` (images), a disabled `nfs1`, bridge `vmbr0`, and a "cloud image".
    pub fn start() -> ProxmoxSim {
        let sim = tempfile::Builder::new()
            .prefix("fleet-pve-")
            .tempdir()
            .expect("temp dir for the simulator");
        let dir = sim.path();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/proxmox-sim/pve-sim");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for name in ["qm", "pvesh", "pvesm", "pct", "pveam"] {
            std::os::unix::fs::symlink(&script, dir.join("bin").join(name)).unwrap();
        }
        for d in ["storage/local/snippets", "storage/local-lvm", "images"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join(IMAGE), b"QFI\xfb not really a qcow2").unwrap();
        // A container template already fetched with `pveam download local …`.
        let cache = dir.join("storage/local/template/cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(cache.join(CT_TEMPLATE_FILE), b"not really a template").unwrap();
        let instance = unique_label("pve");
        let config = serde_json::json!({
            "instance": instance,
            "image": test_image(),
            "bridges": ["vmbr0"],
            "storages": [
                { "id": "local", "type": "dir", "content": ["iso", "vztmpl", "backup", "snippets"] },
                { "id": "local-lvm", "type": "lvmthin", "content": ["images", "rootdir"] },
                { "id": "nfs1", "type": "nfs", "status": "disabled", "content": ["images"] }
            ]
        });
        std::fs::write(
            dir.join("sim.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            dir.join("bin").display()
        );
        let fleet = TestFleet::start_with_env(1, &[("FLEET_TEST_PATH", &path)]);
        let node = fleet.host("s1").clone();
        let port = if node.port == 22 {
            String::new()
        } else {
            format!("port = {}\n", node.port)
        };
        std::fs::write(
            fleet.path().join("inventory.toml"),
            format!(
                "# the lab (comments survive fleet's edits)\n[hosts.pve1]\naddress = \"{}\"\n{port}user = \"root\"\ngroups = [\"proxmox\"]\n",
                node.address
            ),
        )
        .unwrap();
        // The node's host key was recorded for s1's address already (known_hosts).
        ProxmoxSim {
            sim,
            fleet,
            instance,
        }
    }

    /// The fleet project (fleet.toml, inventory.toml, id_ed25519{,.pub}).
    pub fn project(&self) -> &Path {
        self.fleet.path()
    }

    pub fn image(&self) -> PathBuf {
        self.sim.path().join(IMAGE)
    }

    /// Arguments that point `fleet provision` at the simulator's image and the test key.
    pub fn provision_args(&self) -> Vec<String> {
        vec![
            "--image".into(),
            self.image().display().to_string(),
            "--ssh-key".into(),
            self.project().join("id_ed25519.pub").display().to_string(),
        ]
    }

    pub fn state(&self) -> serde_json::Value {
        std::fs::read_to_string(self.sim.path().join("state.json"))
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or_else(|_| serde_json::json!({ "vms": {} }))
    }

    /// Makes every `qm start` fail with `start failed: <message>`.
    pub fn fail_start(&self, message: &str) {
        self.fault("start", serde_json::json!(message));
    }

    /// Sets a simulator fault: `start`/`create` (a message), `agent_down`, `no_sshd`.
    pub fn fault(&self, name: &str, value: serde_json::Value) {
        let path = self.sim.path().join("sim.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["faults"] = serde_json::json!({ name: value });
        std::fs::write(&path, config.to_string()).unwrap();
    }

    /// Puts VMs whose net0 is on `bridge` onto the docker network `network` (with
    /// ipconfig0's static address and gateway, as a real guest would configure them).
    pub fn bridge_to_network(&self, bridge: &str, network: &str) {
        let path = self.sim.path().join("sim.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["networks"][bridge] = serde_json::json!(network);
        std::fs::write(&path, config.to_string()).unwrap();
    }

    /// Containers ("running VMs") of this simulator.
    pub fn containers(&self) -> Vec<String> {
        let out = std::process::Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=fleet-test={}", self.instance),
            ])
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for ProxmoxSim {
    fn drop(&mut self) {
        if std::env::var_os("FLEET_TEST_KEEP").is_some() {
            eprintln!(
                "FLEET_TEST_KEEP: simulator {} and its containers kept",
                self.sim.path().display()
            );
            let kept = std::mem::replace(&mut self.sim, tempfile::tempdir().unwrap());
            let _ = kept.keep();
            return;
        }
        remove_labelled(&self.instance);
    }
}
