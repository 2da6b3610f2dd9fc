//! What fleet does on a Proxmox node, over [`Remote`]: queries (next id, list, status,
//! config, the facts a spec depends on), creating a VM with its cloud-init data (and
//! removing what a failed create made), power actions, and waiting for a guest's
//! address. Command lines and parsers come from the parent module.

use super::{self as pve, CloudInit, CreateRequest, NodeFacts, VmSpec};
use crate::ops::remote::{CmdResult, CommandOpts, Remote};
use crate::ops::text::tail;
use crate::outcome::HostError;
use std::time::{Duration, Instant};

/// A failure of `node` with `message` (shared by the Proxmox procedures: qm, pct,
/// guests, images, choices).
pub(crate) fn fail(node: &dyn Remote, message: String) -> HostError {
    HostError::new(node.name(), message)
}

pub(crate) fn query(node: &dyn Remote, cmd: &str) -> Result<CmdResult, HostError> {
    node.command(cmd, CommandOpts::QUERY)
}

/// A query that must succeed; its stderr becomes the message.
pub(crate) fn read(node: &dyn Remote, cmd: &str) -> Result<String, HostError> {
    let r = query(node, cmd)?;
    if r.code != 0 {
        return Err(fail(
            node,
            format!(
                "`{cmd}` failed on {} (exit {}): {}",
                node.name(),
                r.code,
                tail(&r.stderr, 5)
            ),
        ));
    }
    Ok(r.stdout)
}

/// A change whose success does not count as one (files around the real change).
pub(crate) const QUIET_CHANGE: CommandOpts = CommandOpts {
    changed: Some(false),
    ..CommandOpts::CHANGE
};

/// The lowest free VM id of the node's cluster.
pub(crate) fn next_vmid(node: &dyn Remote) -> Result<u64, HostError> {
    let out = read(node, &pve::nextid_command(None))?;
    pve::parse_nextid(&out).ok_or_else(|| {
        fail(
            node,
            format!(
                "`pvesh get /cluster/nextid` on {} printed {out:?}, not a VM id",
                node.name()
            ),
        )
    })
}

pub(crate) fn list(node: &dyn Remote) -> Result<Vec<pve::VmRow>, HostError> {
    let out = read(node, pve::LIST_COMMAND)?;
    pve::parse_qm_list(&out).map_err(|e| fail(node, format!("{e} on {}", node.name())))
}

/// `running`, `stopped`, ... or None when the node has no such VM.
pub(crate) fn status(node: &dyn Remote, vmid: u64) -> Result<Option<String>, HostError> {
    let r = query(node, &pve::status_command(vmid))?;
    if r.code != 0 && pve::is_missing_vm(&r.stderr) {
        return Ok(None);
    }
    if r.code != 0 {
        return Err(fail(
            node,
            format!(
                "`qm status {vmid}` failed on {}: {}",
                node.name(),
                r.stderr.trim()
            ),
        ));
    }
    Ok(pve::parse_qm_status(&r.stdout))
}

pub(crate) fn config(node: &dyn Remote, vmid: u64) -> Result<Vec<(String, String)>, HostError> {
    Ok(pve::parse_config(&read(node, &pve::config_command(vmid))?))
}

/// What the node has that `spec` depends on, read with queries only. `node_name` is
/// the node's name as Proxmox knows it (for API paths); None asks its `hostname`.
pub(crate) fn node_facts(
    node: &dyn Remote,
    node_name: Option<&str>,
    spec: &VmSpec,
) -> Result<NodeFacts, HostError> {
    let taken = query(node, &pve::nextid_command(Some(spec.vmid)))?;
    let vmid_taken = (taken.code != 0).then(|| pve::nextid_refusal(&taken.stderr));
    let storages = |cmd: &str| {
        pve::parse_pvesm_status(&read(node, cmd)?)
            .map_err(|e| fail(node, format!("{e} on {}", node.name())))
    };
    let all = storages(pve::PVESM_STATUS_COMMAND)?;
    let mut content = Vec::new();
    for kind in ["images", "snippets"] {
        let rows = storages(&pve::pvesm_content_command(kind))?;
        content.push((kind.to_string(), rows.into_iter().map(|s| s.id).collect()));
    }
    let node_name = match node_name {
        Some(n) => n.to_string(),
        None => read(node, pve::HOSTNAME_COMMAND)?.trim().to_string(),
    };
    let net = read(node, &pve::bridges_command(&node_name))?;
    let bridges = serde_json::from_str::<Vec<serde_json::Value>>(&net)
        .map_err(|e| {
            fail(
                node,
                format!("bridges of {}: unexpected answer ({e})", node.name()),
            )
        })?
        .iter()
        .filter_map(|b| b["iface"].as_str().map(str::to_string))
        .collect();
    let image_present = query(node, &pve::file_exists_command(&spec.image))?.code == 0;
    Ok(NodeFacts {
        vmid_taken,
        storages: all,
        content,
        bridges,
        image_present,
    })
}

/// Validates `req` against itself and the node, then creates the VM: cloud-init
/// data first (snippets or a key file), `qm create`, `qm disk resize`. Nothing is
/// sent before every check passed; a failure after that destroys the VM and the
/// snippets again when `cleanup` is set (not in check mode), and says so.
/// Returns the node-side files it left for the VM (the snippets).
pub(crate) fn create(
    node: &dyn Remote,
    node_name: Option<&str>,
    req: &CreateRequest,
) -> Result<Vec<String>, HostError> {
    let spec = &req.spec;
    let checked = match req.check() {
        Ok(documents) => {
            node.activity(&format!(
                "checking VM {} against {}",
                spec.vmid,
                node.name()
            ));
            let facts = node_facts(node, node_name, spec)?;
            let on_node: Vec<String> = spec
                .check_on_node(node.name(), &facts)
                .iter()
                .map(|e| e.to_string())
                .collect();
            if on_node.is_empty() {
                Ok(documents)
            } else {
                Err(on_node)
            }
        }
        Err(problems) => Err(problems),
    };
    let documents = checked.map_err(|problems| {
        fail(
            node,
            format!(
                "VM {} ({}) was not created on {}; nothing was sent:\n  - {}",
                spec.vmid,
                spec.name,
                node.name(),
                problems.join("\n  - ")
            ),
        )
    })?;

    let mut made: Vec<String> = Vec::new(); // node-side files to remove on failure
    if let Err(e) = make(node, req, documents.as_ref(), &mut made) {
        if !req.cleanup || node.check_mode() {
            return Err(e);
        }
        let cleaned = cleanup(node, spec.vmid, &made);
        return Err(HostError {
            message: format!("{}\n{cleaned}", e.message),
            ..e
        });
    }
    Ok(made)
}

/// The steps of a checked create; `made` collects the node-side files it wrote.
fn make(
    node: &dyn Remote,
    req: &CreateRequest,
    documents: Option<&(String, String)>,
    made: &mut Vec<String>,
) -> Result<(), HostError> {
    let spec = &req.spec;
    let mut cicustom = None;
    let mut keys_file = None;
    match (&spec.cloud_init, documents) {
        (CloudInit::Snippets { storage }, Some((user, network))) => {
            let (user_volid, net_volid) = spec.snippet_volids(storage);
            for (volid, text) in [(&user_volid, user), (&net_volid, network)] {
                let path = read(node, &pve::pvesm_path_command(volid))?
                    .trim()
                    .to_string();
                node.command(&pve::mkdir_parent_command(&path), QUIET_CHANGE)?;
                node.write_file(&path, text.as_bytes())?;
                made.push(path);
            }
            cicustom = Some(spec.cicustom(storage));
        }
        _ => {
            if !req.ssh_keys.is_empty() {
                let path = spec.sshkeys_path();
                let text = req.ssh_keys.join("\n") + "\n";
                node.write_file(&path, text.as_bytes())?;
                made.push(path.clone());
                keys_file = Some(path);
            }
        }
    }
    node.activity(&format!("creating VM {} ({})", spec.vmid, spec.name));
    node.command(
        &spec.create_command(keys_file.as_deref(), cicustom.as_deref()),
        CommandOpts::CHANGE,
    )?;
    let resize = node.command(&spec.resize_command(), CommandOpts::CHANGE)?;
    if let Some(problem) = pve::resize_failed(&resize.stderr) {
        return Err(fail(
            node,
            format!(
                "`{}` on {} failed: {problem}",
                spec.resize_command(),
                node.name()
            ),
        ));
    }
    if let Some(k) = &keys_file {
        node.command(
            &pve::remove_files_command(std::slice::from_ref(k)),
            QUIET_CHANGE,
        )?;
        made.retain(|p| p != k);
    }
    Ok(())
}

/// Removes what a failed create made and says what happened.
fn cleanup(node: &dyn Remote, vmid: u64, files: &[String]) -> String {
    let may_fail = CommandOpts {
        allow_fail: true,
        ..CommandOpts::CHANGE
    };
    let mut said = Vec::new();
    match status(node, vmid) {
        Ok(Some(_)) => {
            let _ = node.command(&pve::stop_command(vmid), may_fail);
            match node.command(&pve::destroy_command(vmid, true), may_fail) {
                Ok(r) if r.code == 0 => {
                    said.push(format!("cleanup: destroyed VM {vmid} on {}", node.name()))
                }
                Ok(r) => said.push(format!(
                    "cleanup: could not destroy VM {vmid} on {} ({}); remove it by hand with `qm destroy {vmid} --purge 1`",
                    node.name(),
                    r.stderr.trim()
                )),
                Err(e) => said.push(format!(
                    "cleanup: could not destroy VM {vmid}: {}",
                    e.message
                )),
            }
        }
        Ok(None) => said.push(format!(
            "cleanup: VM {vmid} was not created, nothing to destroy"
        )),
        Err(e) => said.push(format!("cleanup: could not check VM {vmid}: {}", e.message)),
    }
    if !files.is_empty() {
        let rm = pve::remove_files_command(files);
        let quiet = CommandOpts {
            allow_fail: true,
            ..QUIET_CHANGE
        };
        if node.command(&rm, quiet).is_ok() {
            said.push(format!("cleanup: removed {}", files.join(", ")));
        }
    }
    said.join("\n")
}

/// A change of a VM's power state, or its removal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Power {
    Start,
    /// At once; a stopped VM is fine.
    Stop,
    /// Cleanly, stopped hard after `timeout_s`.
    Shutdown {
        timeout_s: u64,
    },
    /// A stopped VM and its disks; `purge` also from backup jobs, replication and HA.
    Destroy {
        purge: bool,
    },
}

impl Power {
    pub(crate) fn command(self, vmid: u64) -> String {
        match self {
            Power::Start => pve::start_command(vmid),
            Power::Stop => pve::stop_command(vmid),
            Power::Shutdown { timeout_s } => pve::shutdown_command(vmid, timeout_s),
            Power::Destroy { purge } => pve::destroy_command(vmid, purge),
        }
    }
}

pub(crate) fn power(node: &dyn Remote, vmid: u64, action: Power) -> Result<(), HostError> {
    node.command(&action.command(vmid), CommandOpts::CHANGE)
        .map(|_| ())
}

/// Starts a VM that [`create`] just made. One that does not start holds nothing yet:
/// it is destroyed (purged) and the `files` create left for it are removed, and the
/// failure says so.
pub(crate) fn start_new(node: &dyn Remote, vmid: u64, files: &[String]) -> Result<(), HostError> {
    let Err(e) = power(node, vmid, Power::Start) else {
        return Ok(());
    };
    let said = |cleanup: String| HostError {
        message: format!("{}\ncleanup: {cleanup}", e.message),
        ..e.clone()
    };
    if let Err(d) = power(node, vmid, Power::Destroy { purge: true }) {
        return Err(said(format!("could not destroy VM {vmid}: {}", d.message)));
    }
    let mut cleanup = format!("destroyed VM {vmid} on {}", node.name());
    if !files.is_empty() {
        if let Err(r) = node.command(&pve::remove_files_command(files), QUIET_CHANGE) {
            return Err(said(format!(
                "{cleanup}; could not remove {}: {}",
                files.join(", "),
                r.message
            )));
        }
        cleanup.push_str(" and removed its cloud-init snippets");
    }
    Err(said(cleanup))
}

/// The VM's address from its guest agent, polled every `interval` until `timeout`;
/// the progress line and a timeout say which stage was reached. Check mode answers ""
/// (the VM was not made).
pub(crate) fn wait_guest_ip(
    node: &dyn Remote,
    vmid: u64,
    nic: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<String, HostError> {
    let mac = config(node, vmid)?
        .into_iter()
        .find(|(k, _)| k == nic)
        .and_then(|(_, v)| pve::mac_of_net(&v));
    if node.check_mode() {
        return Ok(String::new());
    }
    let started = Instant::now();
    loop {
        let r = query(node, &pve::guest_interfaces_command(vmid))?;
        let last = if r.code == 0 {
            match pve::guest_ip(&r.stdout, mac.as_deref()) {
                Ok(Some(ip)) => return Ok(ip),
                Ok(None) => {
                    "the guest agent answers, but the VM has no IPv4 address yet".to_string()
                }
                Err(e) => e.0,
            }
        } else {
            let why = r.stderr.trim().to_string();
            if why.contains("No QEMU guest agent configured")
                || why.contains("is not running") && why.starts_with("VM ")
            {
                return Err(fail(
                    node,
                    format!("no address for VM {vmid} on {}: {why}", node.name()),
                ));
            }
            why
        };
        let waited = started.elapsed();
        node.activity(&format!(
            "VM {vmid}: waiting for its guest agent ({}s of {}s): {last}",
            waited.as_secs(),
            timeout.as_secs()
        ));
        if waited + interval > timeout {
            return Err(fail(
                node,
                format!(
                    "no address for VM {vmid} on {} after {}s; stage reached: VM started, {last}. Is qemu-guest-agent installed and running in the VM?",
                    node.name(),
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(interval);
        if node.aborted() {
            return Err(fail(node, format!("waiting for VM {vmid} was interrupted")));
        }
    }
}

/// The options map of `qm::shutdown`: how long a clean shutdown may take.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShutdownOpts {
    #[serde(
        default = "one_minute",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) timeout: std::time::Duration,
}

fn one_minute() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

/// The options map of `qm::destroy`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestroyOpts {
    /// Also remove the VM from backup jobs, replication and HA.
    #[serde(default)]
    pub(crate) purge: bool,
}

/// The options map of `qm::guest_ip`: which NIC, how long and how often to ask.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GuestIpOpts {
    #[serde(
        default = "two_minutes",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) timeout: std::time::Duration,
    #[serde(
        default = "three_seconds",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) interval: std::time::Duration,
    #[serde(default = "net0")]
    pub(crate) nic: String,
}

fn two_minutes() -> std::time::Duration {
    std::time::Duration::from_secs(120)
}

fn three_seconds() -> std::time::Duration {
    std::time::Duration::from_secs(3)
}

fn net0() -> String {
    "net0".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::proxmox::CreateOptions;
    use crate::ops::remote::fake::Scripted;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3xGcJc0Tq5b6m0yQm6o7ZlJ4W2l8rN5o1fNwzJX6c admin@laptop";
    const IMAGE: &str = "/var/lib/vz/template/iso/debian.qcow2";
    const PVESM: &str = "Name Type Status Total Used Available %
local dir active 100 10 90 10%
local-lvm lvmthin active 100 10 90 10%
";

    fn request(extra: serde_json::Value) -> CreateRequest {
        let mut spec = serde_json::json!({
            "name": "web-3", "image": IMAGE, "mac": "BC:24:11:0A:0B:0C",
            "user": "admin", "ssh_keys": [KEY],
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value::<CreateOptions>(spec)
            .unwrap()
            .into_request(105)
    }

    /// The queries of a create's node check, all answered as a node that has it all.
    fn node_checks() -> Vec<(&'static str, i64, &'static str)> {
        vec![
            ("pvesh get /cluster/nextid --vmid 105", 0, "105\n"),
            ("pvesm status", 0, PVESM),
            (
                "pvesm status --content images",
                0,
                "local-lvm lvmthin active 1 1 1 1%\n",
            ),
            (
                "pvesm status --content snippets",
                0,
                "local dir active 1 1 1 1%\n",
            ),
            ("hostname", 0, "pve1\n"),
            ("pvesh get /nodes/pve1/network", 0, r#"[{"iface":"vmbr0"}]"#),
            ("test -f /var/lib/vz/template/iso/debian.qcow2", 0, ""),
        ]
    }

    fn snippet_uploads() -> Vec<(&'static str, i64, &'static str)> {
        vec![
            (
                "pvesm path local:snippets/fleet-105-user.yaml",
                0,
                "/var/lib/vz/snippets/fleet-105-user.yaml\n",
            ),
            ("mkdir -p /var/lib/vz/snippets", 0, ""),
            ("write /var/lib/vz/snippets/fleet-105-user.yaml", 0, ""),
            (
                "pvesm path local:snippets/fleet-105-network.yaml",
                0,
                "/var/lib/vz/snippets/fleet-105-network.yaml\n",
            ),
            ("mkdir -p /var/lib/vz/snippets", 0, ""),
            ("write /var/lib/vz/snippets/fleet-105-network.yaml", 0, ""),
        ]
    }

    const SNIPPETS: [&str; 2] = [
        "/var/lib/vz/snippets/fleet-105-user.yaml",
        "/var/lib/vz/snippets/fleet-105-network.yaml",
    ];

    #[test]
    fn next_free_id() {
        let node = Scripted::new(&[("pvesh get /cluster/nextid", 0, "\"107\"\n")]);
        assert_eq!(next_vmid(&node).unwrap(), 107);
        assert_eq!(node.ran(), ["pvesh get /cluster/nextid"]);
        let node = Scripted::new(&[("pvesh get /cluster/nextid", 0, "no\n")]);
        let e = next_vmid(&node).unwrap_err();
        assert!(
            e.message.contains("printed \"no\\n\", not a VM id"),
            "{}",
            e.message
        );
        let node = Scripted::new(&[("pvesh get /cluster/nextid", 2, "")]);
        let e = next_vmid(&node).unwrap_err();
        assert!(
            e.message.contains("failed on fake (exit 2)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_snippets_create_uploads_then_creates_and_keeps_the_snippets() {
        let mut script = node_checks();
        script.extend(snippet_uploads());
        script.push(("qm create 105 --name web-3", 0, ""));
        script.push(("qm disk resize 105 scsi0 20G", 0, ""));
        let node = Scripted::new(&script);
        let req = request(serde_json::json!({"snippets_storage": "local"}));
        assert_eq!(create(&node, None, &req).unwrap(), SNIPPETS);
        let ran = node.ran();
        assert!(
            ran[ran.len() - 2].ends_with(
                "--cicustom user=local:snippets/fleet-105-user.yaml,network=local:snippets/fleet-105-network.yaml"
            ),
            "{ran:?}"
        );
        let written = node.written.lock().unwrap().clone();
        assert_eq!(written[0].0, SNIPPETS[0]);
        assert!(written[0].1.contains("hostname: web-3"), "{}", written[0].1);
        assert!(written[1].1.to_lowercase().contains("bc:24:11:0a:0b:0c"));
    }

    #[test]
    fn a_native_create_passes_the_keys_in_a_file_it_removes() {
        let mut script = node_checks();
        script.remove(4); // the node name comes from the inventory
        script[4].0 = "pvesh get /nodes/pve-a/network";
        script.push(("write /tmp/fleet-sshkeys-105.pub", 0, ""));
        script.push(("qm create 105", 0, ""));
        script.push(("qm disk resize 105", 0, ""));
        script.push(("rm -f /tmp/fleet-sshkeys-105.pub", 0, ""));
        let node = Scripted::new(&script);
        let files = create(&node, Some("pve-a"), &request(serde_json::json!({}))).unwrap();
        assert!(files.is_empty());
        let ran = node.ran();
        assert!(
            ran[7].contains("--ciuser admin --sshkeys /tmp/fleet-sshkeys-105.pub"),
            "{ran:?}"
        );
        assert_eq!(node.written.lock().unwrap()[0].1, format!("{KEY}\n"));
    }

    #[test]
    fn a_bad_spec_sends_nothing_and_names_each_problem() {
        let node = Scripted::new(&[]);
        let mut req = request(serde_json::json!({}));
        req.spec.cores = 0;
        req.ssh_keys.push("not a key".into());
        let e = create(&node, None, &req).unwrap_err();
        assert!(
            e.message
                .starts_with("VM 105 (web-3) was not created on fake; nothing was sent:")
        );
        assert!(
            e.message.contains("\n  - cores `0`: must be at least 1"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("\n  - ssh_keys[1]: not an OpenSSH public key line")
        );
        assert!(node.ran().is_empty());

        // What the node lacks is found with queries only.
        let mut script = node_checks();
        script[6].1 = 1; // no image
        let node = Scripted::new(&script);
        let e = create(&node, None, &request(serde_json::json!({}))).unwrap_err();
        assert!(
            e.message
                .contains("image `/var/lib/vz/template/iso/debian.qcow2`: no such file on fake"),
            "{}",
            e.message
        );
        assert_eq!(node.ran().len(), 7);
    }

    #[test]
    fn a_failure_after_qm_create_destroys_the_vm_and_removes_the_snippets() {
        let mut script = node_checks();
        script.extend(snippet_uploads());
        script.push(("qm create 105", 0, ""));
        script.push(("qm disk resize 105", 1, ""));
        script.push(("qm status 105", 0, "status: stopped\n"));
        script.push(("qm stop 105", 0, ""));
        script.push(("qm destroy 105 --purge 1", 0, ""));
        script.push((
            "rm -f /var/lib/vz/snippets/fleet-105-user.yaml /var/lib/vz/snippets/fleet-105-network.yaml",
            0,
            "",
        ));
        let node = Scripted::new(&script);
        let req = request(serde_json::json!({"snippets_storage": "local"}));
        let e = create(&node, None, &req).unwrap_err();
        assert!(
            e.message
                .contains("`qm disk resize 105 scsi0 20G` exited with 1"),
            "{}",
            e.message
        );
        assert!(e.message.contains("\ncleanup: destroyed VM 105 on fake\ncleanup: removed /var/lib/vz/snippets/fleet-105-user.yaml, /var/lib/vz/snippets/fleet-105-network.yaml"), "{}", e.message);

        // Without cleanup, what was made stays.
        let mut script = node_checks();
        script.extend(snippet_uploads());
        script.push(("qm create 105", 1, ""));
        let node = Scripted::new(&script);
        let mut req = req;
        req.cleanup = false;
        let e = create(&node, None, &req).unwrap_err();
        assert!(!e.message.contains("cleanup"), "{}", e.message);
    }

    #[test]
    fn a_failing_start_destroys_the_new_vm_and_its_snippets() {
        let files: Vec<String> = SNIPPETS.iter().map(|s| s.to_string()).collect();
        let node = Scripted::new(&[
            ("qm start 105", 1, ""),
            (
                "qm destroy 105 --purge 1 --destroy-unreferenced-disks 1",
                0,
                "",
            ),
            (
                "rm -f /var/lib/vz/snippets/fleet-105-user.yaml /var/lib/vz/snippets/fleet-105-network.yaml",
                0,
                "",
            ),
        ]);
        let e = start_new(&node, 105, &files).unwrap_err();
        assert!(
            e.message.ends_with(
                "\ncleanup: destroyed VM 105 on fake and removed its cloud-init snippets"
            ),
            "{}",
            e.message
        );
        assert_eq!(node.ran().len(), 3);

        let node = Scripted::new(&[("qm start 105", 1, ""), ("qm destroy 105", 1, "")]);
        let e = start_new(&node, 105, &files).unwrap_err();
        assert!(
            e.message.contains("\ncleanup: could not destroy VM 105: "),
            "{}",
            e.message
        );

        let node = Scripted::new(&[("qm start 105", 0, "")]);
        start_new(&node, 105, &files).unwrap();
        assert_eq!(node.ran(), ["qm start 105"]);
    }

    const CONFIG: &str = "name: web-3\nnet0: virtio=BC:24:11:0A:0B:0C,bridge=vmbr0\n";
    const NO_IP: &str = r#"[{"name":"eth0","hardware-address":"bc:24:11:0a:0b:0c"}]"#;
    const IP: &str = r#"[{"name":"eth0","hardware-address":"bc:24:11:0a:0b:0c","ip-addresses":[{"ip-address":"10.0.0.5","ip-address-type":"ipv4"}]}]"#;

    #[test]
    fn the_guest_ip_wait_asks_until_the_address_comes() {
        let node = Scripted::new(&[
            ("qm config 105", 0, CONFIG),
            ("qm guest cmd 105 network-get-interfaces", 0, NO_IP),
            ("qm guest cmd 105 network-get-interfaces", 0, IP),
        ]);
        let ip = wait_guest_ip(&node, 105, "net0", Duration::from_secs(60), Duration::ZERO);
        assert_eq!(ip.unwrap(), "10.0.0.5");
        assert_eq!(node.ran().len(), 3);
    }

    #[test]
    fn the_guest_ip_wait_ends_with_the_stage_reached() {
        let node = Scripted::new(&[
            ("qm config 105", 0, CONFIG),
            ("qm guest cmd 105 network-get-interfaces", 0, NO_IP),
        ]);
        let e = wait_guest_ip(&node, 105, "net0", Duration::ZERO, Duration::ZERO).unwrap_err();
        assert!(
            e.message.contains("after 0s; stage reached: VM started, the guest agent answers, but the VM has no IPv4 address yet"),
            "{}",
            e.message
        );

        let mut node = Scripted::new(&[("qm config 105", 0, CONFIG)]);
        node.check = true;
        assert_eq!(
            wait_guest_ip(&node, 105, "net0", Duration::ZERO, Duration::ZERO).unwrap(),
            ""
        );
    }

    #[test]
    fn power_actions() {
        let node = Scripted::new(&[
            ("qm shutdown 105 --timeout 30 --forceStop 1", 0, ""),
            ("qm destroy 105", 0, ""),
        ]);
        power(&node, 105, Power::Shutdown { timeout_s: 30 }).unwrap();
        power(&node, 105, Power::Destroy { purge: false }).unwrap();
        assert_eq!(node.ran()[1], "qm destroy 105");
    }
}
