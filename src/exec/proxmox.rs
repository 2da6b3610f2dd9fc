//! Proxmox VMs through a node's `qm`/`pvesh`/`pvesm` over SSH: the I/O around
//! `ops::proxmox` (command lines, parsers, validation) and `ops::cloudinit` (documents).

use super::run::Run;
use crate::inventory::ResolvedHost;
use crate::ops::cloudinit::{self, NetworkSpec, UserDataSpec, UserSpec};
use crate::ops::files::FileOpts;
use crate::ops::proxmox::{self as pve, CloudInit, NodeFacts, VmSpec};
use crate::ops::remote::{CmdResult, CommandOpts};
use crate::ops::shell::quote;
use crate::outcome::HostFailure;
use std::time::{Duration, Instant};

/// What a recipe asks `qm::create` for, beyond the spec itself.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub spec: VmSpec,
    pub ssh_keys: Vec<String>,
    /// Extra user-data (snippets mode): packages, write_files, runcmd, ...
    pub user_data: UserDataSpec,
    /// Destroy what was made when a step fails half-way.
    pub cleanup: bool,
}

fn fail(node: &ResolvedHost, message: String) -> HostFailure {
    HostFailure::new(&node.name, message)
}

impl Run {
    fn pve_query(&self, node: &ResolvedHost, cmd: &str) -> Result<CmdResult, HostFailure> {
        self.command(node, cmd, CommandOpts::QUERY)
    }

    /// A query that must succeed; its stderr becomes the message.
    fn pve_read(&self, node: &ResolvedHost, cmd: &str) -> Result<String, HostFailure> {
        let r = self.pve_query(node, cmd)?;
        if r.code != 0 {
            return Err(fail(
                node,
                format!(
                    "`{cmd}` failed on {} (exit {}): {}",
                    node.name,
                    r.code,
                    crate::ops::text::tail(&r.stderr, 5)
                ),
            ));
        }
        Ok(r.stdout)
    }

    pub fn pve_next_vmid(&self, node: &ResolvedHost) -> Result<u64, HostFailure> {
        let out = self.pve_read(node, &pve::nextid_command(None))?;
        pve::parse_nextid(&out).ok_or_else(|| {
            fail(
                node,
                format!(
                    "`pvesh get /cluster/nextid` on {} printed {out:?}, not a VM id",
                    node.name
                ),
            )
        })
    }

    pub fn pve_list(&self, node: &ResolvedHost) -> Result<Vec<pve::VmRow>, HostFailure> {
        let out = self.pve_read(node, "qm list")?;
        pve::parse_qm_list(&out).map_err(|e| fail(node, format!("{} on {}", e, node.name)))
    }

    /// `running`, `stopped`, ... or None when the node has no such VM.
    pub fn pve_status(
        &self,
        node: &ResolvedHost,
        vmid: u64,
    ) -> Result<Option<String>, HostFailure> {
        let r = self.pve_query(node, &pve::status_command(vmid))?;
        if r.code != 0 && pve::is_missing_vm(&r.stderr) {
            return Ok(None);
        }
        if r.code != 0 {
            return Err(fail(
                node,
                format!(
                    "`qm status {vmid}` failed on {}: {}",
                    node.name,
                    r.stderr.trim()
                ),
            ));
        }
        Ok(pve::parse_qm_status(&r.stdout))
    }

    pub fn pve_config(
        &self,
        node: &ResolvedHost,
        vmid: u64,
    ) -> Result<Vec<(String, String)>, HostFailure> {
        Ok(pve::parse_config(
            &self.pve_read(node, &pve::config_command(vmid))?,
        ))
    }

    /// What the node has that `spec` depends on, read with queries only.
    pub fn pve_node_facts(
        &self,
        node: &ResolvedHost,
        spec: &VmSpec,
    ) -> Result<NodeFacts, HostFailure> {
        let taken = self.pve_query(node, &pve::nextid_command(Some(spec.vmid)))?;
        let vmid_taken = (taken.code != 0).then(|| pve::nextid_refusal(&taken.stderr));
        let storages = pve::parse_pvesm_status(&self.pve_read(node, "pvesm status")?)
            .map_err(|e| fail(node, format!("{e} on {}", node.name)))?;
        let mut content = Vec::new();
        for kind in ["images", "snippets"] {
            let rows = pve::parse_pvesm_status(
                &self.pve_read(node, &format!("pvesm status --content {kind}"))?,
            )
            .map_err(|e| fail(node, format!("{e} on {}", node.name)))?;
            content.push((kind.to_string(), rows.into_iter().map(|s| s.id).collect()));
        }
        let net = self.pve_read(
            node,
            &format!(
                "pvesh get /nodes/{}/network --type any_bridge --output-format json",
                quote(&self.pve_node_name(node)?)
            ),
        )?;
        let bridges = serde_json::from_str::<Vec<serde_json::Value>>(&net)
            .map_err(|e| {
                fail(
                    node,
                    format!("bridges of {}: unexpected answer ({e})", node.name),
                )
            })?
            .iter()
            .filter_map(|b| b["iface"].as_str().map(str::to_string))
            .collect();
        let image_present = self
            .pve_query(node, &format!("test -f {}", quote(&spec.image)))?
            .code
            == 0;
        Ok(NodeFacts {
            vmid_taken,
            storages,
            content,
            bridges,
            image_present,
        })
    }

    /// The node's name as Proxmox knows it (for API paths): its `hostname`.
    fn pve_node_name(&self, node: &ResolvedHost) -> Result<String, HostFailure> {
        if let Some(n) = node.vars.get("proxmox_node_name").and_then(|v| v.as_str()) {
            return Ok(n.to_string());
        }
        Ok(self.pve_read(node, "hostname")?.trim().to_string())
    }

    /// Validates `req` against itself and the node, then creates the VM: cloud-init
    /// data first (snippets or a key file), `qm create`, `qm disk resize`. Nothing is
    /// sent before every check passed; a failure after `qm create` destroys the VM and
    /// the snippets again when `cleanup` is set, and says so.
    /// Returns the node-side files it left for the VM (the snippets).
    pub fn pve_create(
        &self,
        node: &ResolvedHost,
        req: &CreateRequest,
    ) -> Result<Vec<String>, HostFailure> {
        let spec = &req.spec;
        let mut problems: Vec<String> = spec.check().iter().map(|e| e.to_string()).collect();
        for (i, key) in req.ssh_keys.iter().enumerate() {
            if !cloudinit::is_public_key(key) {
                problems.push(format!("ssh_keys[{i}]: not an OpenSSH public key line"));
            }
        }
        let documents = match &spec.cloud_init {
            CloudInit::Native => None,
            CloudInit::Snippets { .. } => match self.pve_documents(req) {
                Ok(d) => Some(d),
                Err(p) => {
                    problems.extend(p);
                    None
                }
            },
        };
        if problems.is_empty() {
            self.ui.host_activity(
                &node.name,
                &format!("checking VM {} against {}", spec.vmid, node.name),
            );
            let facts = self.pve_node_facts(node, spec)?;
            problems.extend(
                spec.check_on_node(&node.name, &facts)
                    .iter()
                    .map(|e| e.to_string()),
            );
        }
        if !problems.is_empty() {
            return Err(fail(
                node,
                format!(
                    "VM {} ({}) was not created on {}; nothing was sent:\n  - {}",
                    spec.vmid,
                    spec.name,
                    node.name,
                    problems.join("\n  - ")
                ),
            ));
        }

        let mut made: Vec<String> = Vec::new(); // node-side files to remove on failure
        let result = (|| {
            let mut cicustom = None;
            let mut keys_file = None;
            match (&spec.cloud_init, &documents) {
                (CloudInit::Snippets { storage }, Some((user, network))) => {
                    let (user_name, net_name) = spec.snippet_names();
                    for (name, text) in [(&user_name, user), (&net_name, network)] {
                        let volid = format!("{storage}:snippets/{name}");
                        let path = self
                            .pve_read(node, &format!("pvesm path {}", quote(&volid)))?
                            .trim()
                            .to_string();
                        self.command(
                            node,
                            &format!("mkdir -p {}", quote(parent(&path))),
                            CommandOpts {
                                changed: Some(false),
                                ..CommandOpts::CHANGE
                            },
                        )?;
                        crate::ops::files::write_file(
                            &self.remote(node),
                            &path,
                            text.as_bytes(),
                            &FileOpts::default(),
                        )?;
                        made.push(path);
                    }
                    cicustom = Some(format!(
                        "user={storage}:snippets/{user_name},network={storage}:snippets/{net_name}"
                    ));
                }
                _ => {
                    if !req.ssh_keys.is_empty() {
                        let path = format!("/tmp/fleet-sshkeys-{}.pub", spec.vmid);
                        let text = req.ssh_keys.join("\n") + "\n";
                        crate::ops::files::write_file(
                            &self.remote(node),
                            &path,
                            text.as_bytes(),
                            &FileOpts::default(),
                        )?;
                        made.push(path.clone());
                        keys_file = Some(path);
                    }
                }
            }
            self.ui.host_activity(
                &node.name,
                &format!("creating VM {} ({})", spec.vmid, spec.name),
            );
            self.command(
                node,
                &spec.create_command(keys_file.as_deref(), cicustom.as_deref()),
                CommandOpts::CHANGE,
            )?;
            let resize = self.command(node, &spec.resize_command(), CommandOpts::CHANGE)?;
            if let Some(problem) = pve::resize_failed(&resize.stderr) {
                return Err(fail(
                    node,
                    format!(
                        "`{}` on {} failed: {problem}",
                        spec.resize_command(),
                        node.name
                    ),
                ));
            }
            if let Some(k) = &keys_file {
                self.command(
                    node,
                    &format!("rm -f {}", quote(k)),
                    CommandOpts {
                        changed: Some(false),
                        ..CommandOpts::CHANGE
                    },
                )?;
                made.retain(|p| p != k);
            }
            Ok(())
        })();
        let made_files = made.clone();
        if let Err(e) = result {
            if !req.cleanup || self.options.check {
                return Err(e);
            }
            let cleaned = self.pve_cleanup(node, spec.vmid, &made);
            return Err(HostFailure {
                message: format!("{}\n{cleaned}", e.message),
                ..e
            });
        }
        Ok(made_files)
    }

    /// Removes what a failed create made and says what happened.
    fn pve_cleanup(&self, node: &ResolvedHost, vmid: u64, files: &[String]) -> String {
        let mut said = Vec::new();
        match self.pve_status(node, vmid) {
            Ok(Some(_)) => {
                let _ = self.command(
                    node,
                    &pve::stop_command(vmid),
                    CommandOpts {
                        allow_fail: true,
                        ..CommandOpts::CHANGE
                    },
                );
                match self.command(node, &pve::destroy_command(vmid, true), CommandOpts { allow_fail: true, ..CommandOpts::CHANGE }) {
                    Ok(r) if r.code == 0 => said.push(format!("cleanup: destroyed VM {vmid} on {}", node.name)),
                    Ok(r) => said.push(format!(
                        "cleanup: could not destroy VM {vmid} on {} ({}); remove it by hand with `qm destroy {vmid} --purge 1`",
                        node.name,
                        r.stderr.trim()
                    )),
                    Err(e) => said.push(format!("cleanup: could not destroy VM {vmid}: {}", e.message)),
                }
            }
            Ok(None) => said.push(format!(
                "cleanup: VM {vmid} was not created, nothing to destroy"
            )),
            Err(e) => said.push(format!("cleanup: could not check VM {vmid}: {}", e.message)),
        }
        if !files.is_empty() {
            let rm = format!(
                "rm -f {}",
                files.iter().map(|f| quote(f)).collect::<Vec<_>>().join(" ")
            );
            if self
                .command(
                    node,
                    &rm,
                    CommandOpts {
                        allow_fail: true,
                        changed: Some(false),
                        ..CommandOpts::CHANGE
                    },
                )
                .is_ok()
            {
                said.push(format!("cleanup: removed {}", files.join(", ")));
            }
        }
        said.join("\n")
    }

    /// user-data and network-config for a snippets-mode request, or its problems.
    fn pve_documents(&self, req: &CreateRequest) -> Result<(String, String), Vec<String>> {
        let spec = &req.spec;
        let mut user = req.user_data.clone();
        user.hostname.get_or_insert_with(|| spec.name.clone());
        if !spec.ciuser.is_empty() && !user.users.iter().any(|u| u.name == spec.ciuser) {
            user.users.insert(
                0,
                UserSpec {
                    name: spec.ciuser.clone(),
                    ssh_authorized_keys: req.ssh_keys.clone(),
                    sudo: Some(cloudinit::Sudo::All(true)),
                    groups: Vec::new(),
                    shell: None,
                },
            );
        }
        let (ip, gateway) = split_ipconfig(&spec.ipconfig);
        let network = NetworkSpec {
            ip,
            gateway,
            dns: spec.nameserver.clone(),
            search: spec.searchdomain.clone(),
            mac: spec.mac.clone(),
            name: "eth0".into(),
        };
        let said = |p: Vec<cloudinit::Problem>, doc: &str| {
            p.into_iter()
                .map(|p| format!("{doc} {p}"))
                .collect::<Vec<_>>()
        };
        match (user.render(), network.render()) {
            (Ok(u), Ok(n)) => Ok((u, n)),
            (u, n) => Err(u
                .err()
                .map(|p| said(p, "user_data"))
                .unwrap_or_default()
                .into_iter()
                .chain(n.err().map(|p| said(p, "network")).unwrap_or_default())
                .collect()),
        }
    }

    pub fn pve_power(&self, node: &ResolvedHost, cmd: &str) -> Result<(), HostFailure> {
        self.command(node, cmd, CommandOpts::CHANGE).map(|_| ())
    }

    /// The VM's address from its guest agent, polled every `interval` until `timeout`;
    /// the progress line and a timeout say which stage was reached.
    pub fn pve_guest_ip(
        &self,
        node: &ResolvedHost,
        vmid: u64,
        nic: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<String, HostFailure> {
        let mac = self
            .pve_config(node, vmid)?
            .into_iter()
            .find(|(k, _)| k == nic)
            .and_then(|(_, v)| pve::mac_of_net(&v));
        if self.options.check {
            return Ok(String::new());
        }
        let started = Instant::now();
        let mut last;
        loop {
            let r = self.pve_query(node, &pve::guest_interfaces_command(vmid))?;
            last = if r.code == 0 {
                match pve::guest_ip(&r.stdout, mac.as_deref()) {
                    Ok(Some(ip)) => return Ok(ip),
                    Ok(None) => {
                        "the guest agent answers, but the VM has no IPv4 address yet".to_string()
                    }
                    Err(e) => e,
                }
            } else {
                let why = r.stderr.trim().to_string();
                if why.contains("No QEMU guest agent configured")
                    || why.contains("is not running") && why.starts_with("VM ")
                {
                    return Err(fail(
                        node,
                        format!("no address for VM {vmid} on {}: {why}", node.name),
                    ));
                }
                why
            };
            let waited = started.elapsed();
            self.ui.host_activity(
                &node.name,
                &format!(
                    "VM {vmid}: waiting for its guest agent ({}s of {}s): {last}",
                    waited.as_secs(),
                    timeout.as_secs()
                ),
            );
            if waited + interval > timeout {
                return Err(fail(
                    node,
                    format!(
                        "no address for VM {vmid} on {} after {}s; stage reached: VM started, {last}. Is qemu-guest-agent installed and running in the VM?",
                        node.name,
                        timeout.as_secs()
                    ),
                ));
            }
            std::thread::sleep(interval);
            if super::interrupt::aborted() {
                return Err(fail(node, format!("waiting for VM {vmid} was interrupted")));
            }
        }
    }

    /// Runs `cloud-init status --wait --long` on a fresh host: a cloud-init that ended
    /// in error fails the host with its errors.
    pub fn cloud_init_wait(
        &self,
        host: &ResolvedHost,
        timeout: Duration,
    ) -> Result<cloudinit::Status, HostFailure> {
        self.ui
            .host_activity(&host.name, "waiting for cloud-init to finish");
        let r = self.command(
            host,
            cloudinit::STATUS_COMMAND,
            CommandOpts {
                timeout: Some(timeout),
                ..CommandOpts::QUERY
            },
        )?;
        if self.options.check && !r.executed {
            return Ok(cloudinit::Status::default());
        }
        let status = cloudinit::parse_status(&r.stdout);
        if r.code == 1 || status.failed() {
            let errors = if status.errors.is_empty() {
                status.detail.clone()
            } else {
                status.errors.join("; ")
            };
            return Err(HostFailure {
                code: Some(r.code as i32),
                command: Some(cloudinit::STATUS_COMMAND.into()),
                ..fail(
                    host,
                    format!(
                        "cloud-init failed on {}: status {}: {errors} (see /var/log/cloud-init.log there)",
                        host.name, status.status
                    ),
                )
            });
        }
        if r.code != 0 && r.code != 2 {
            return Err(fail(
                host,
                format!(
                    "`{}` on {} exited with {}: {}",
                    cloudinit::STATUS_COMMAND,
                    host.name,
                    r.code,
                    r.stderr.trim()
                ),
            ));
        }
        Ok(status)
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/')
        .map_or(".", |(p, _)| if p.is_empty() { "/" } else { p })
}

/// `ip=10.0.0.5/24,gw=10.0.0.1` -> ("10.0.0.5/24", "10.0.0.1").
fn split_ipconfig(ipconfig: &str) -> (String, String) {
    let mut ip = "dhcp".to_string();
    let mut gw = String::new();
    for part in ipconfig.split(',') {
        match part.split_once('=') {
            Some(("ip", v)) => ip = v.to_string(),
            Some(("gw", v)) => gw = v.to_string(),
            _ => {}
        }
    }
    (ip, gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipconfig_parts() {
        assert_eq!(split_ipconfig("ip=dhcp"), ("dhcp".into(), String::new()));
        assert_eq!(
            split_ipconfig("ip=10.0.0.5/24,gw=10.0.0.1"),
            ("10.0.0.5/24".into(), "10.0.0.1".into())
        );
        assert_eq!(
            parent("/var/lib/vz/snippets/a.yaml"),
            "/var/lib/vz/snippets"
        );
        assert_eq!(parent("/a"), "/");
    }
}
