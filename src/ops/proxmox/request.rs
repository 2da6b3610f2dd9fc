//! What a recipe asks `qm::create` for ([`CreateOptions`], read by serde with unknown
//! keys refused) and how it becomes a [`CreateRequest`]: defaults, the MAC fleet picks,
//! the snippets rules, and the cloud-init documents of snippets mode. [`CreateOptions::check`]
//! judges all of it without the node, so a recipe can refuse a request before its first
//! connection.

use super::{CloudInit, SpecError, VMID_MIN, VmSpec};
use crate::ops::cloudinit::{self, NetworkSpec, UserDataSpec, UserSpec};
use serde::Deserialize;

/// A spec map as recipes write it; unknown keys are refused by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOptions {
    /// 0: the next free id of the cluster (the caller asks the node).
    #[serde(default)]
    pub(crate) vmid: u64,
    name: String,
    #[serde(default = "two")]
    cores: i64,
    #[serde(default = "memory")]
    memory: i64,
    #[serde(default = "disk")]
    disk: i64,
    #[serde(default = "local_lvm")]
    storage: String,
    #[serde(default = "vmbr0")]
    bridge: String,
    image: String,
    #[serde(default)]
    mac: String,
    #[serde(default = "l26")]
    ostype: String,
    #[serde(default = "host")]
    cpu: String,
    #[serde(default = "yes")]
    agent: bool,
    #[serde(default = "yes")]
    serial: bool,
    #[serde(default = "dhcp")]
    ip: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    search: Vec<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    ssh_keys: Vec<String>,
    #[serde(default)]
    user_data: Option<UserDataSpec>,
    #[serde(default)]
    snippets_storage: String,
    #[serde(default)]
    upgrade: Option<bool>,
    #[serde(default = "yes")]
    cleanup: bool,
}

fn two() -> i64 {
    2
}
fn memory() -> i64 {
    2048
}
fn disk() -> i64 {
    20
}
fn local_lvm() -> String {
    "local-lvm".into()
}
fn vmbr0() -> String {
    "vmbr0".into()
}
fn l26() -> String {
    "l26".into()
}
fn host() -> String {
    "host".into()
}
fn yes() -> bool {
    true
}
fn dhcp() -> String {
    "dhcp".into()
}

/// The keys of [`CreateOptions`] with their defaults, for the help text.
pub(crate) const SPEC_KEYS: &str = "vmid (0: next free), name, cores (2), memory (MiB, 2048), disk (GiB, 20), storage (\"local-lvm\"), bridge (\"vmbr0\"), image (cloud image path on the node), mac (random BC:24:11:…), ostype (\"l26\"), cpu (\"host\"), agent (true), serial (true), ip (\"dhcp\" or CIDR), gateway, dns ([…]), search ([…]), user, ssh_keys ([…]), user_data (#{ packages, write_files, runcmd, timezone, users, chpasswd, … }; snippets mode), upgrade (upgrade packages on first boot; unset: Proxmox's default, yes), snippets_storage (set: full user-data and network-config as snippets with --cicustom; empty: Proxmox's own cloud-init options), cleanup (true)";

impl std::error::Error for SpecError {}

/// A request refused before anything was sent to the node: every problem, each naming
/// its field and value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "VM `{}` was not created; nothing was sent to the node:\n  - {}",
    crate::ops::text::shown(name),
    problems.join("\n  - ")
)]
pub(crate) struct Refused {
    pub(crate) name: String,
    pub(crate) problems: Vec<String>,
}

/// What `qm::create` does on a node, beyond the spec itself.
#[derive(Debug, Clone)]
pub(crate) struct CreateRequest {
    pub(crate) spec: VmSpec,
    pub(crate) ssh_keys: Vec<String>,
    /// Extra user-data (snippets mode only): packages, write_files, runcmd, ...
    pub(crate) user_data: Option<UserDataSpec>,
    /// Upgrade packages on first boot (user-data's `package_upgrade` unless that says).
    pub(crate) upgrade: Option<bool>,
    /// Destroy what was made when a step fails half-way.
    pub(crate) cleanup: bool,
}

/// What `qm::create` answered, as far as starting the new VM needs it (the map has
/// more keys: name, mac, and what the recipe adds).
#[derive(Debug, Deserialize)]
pub(crate) struct NewVm {
    pub(crate) vmid: u64,
    /// The node-side files create left for the VM (its snippets).
    #[serde(default)]
    pub(crate) files: Vec<String>,
}

impl CreateOptions {
    /// The request for VM `vmid` (the options' own, or the next free one): a random
    /// Proxmox MAC unless one is given (so the network-config can name the NIC before
    /// the VM exists), `--ciupgrade` only in native mode. Judged by
    /// [`CreateRequest::check`], not here.
    pub(crate) fn into_request(self, vmid: u64) -> CreateRequest {
        let native = self.snippets_storage.is_empty();
        let spec = VmSpec {
            vmid,
            name: self.name,
            cores: self.cores,
            memory_mb: self.memory,
            disk_gb: self.disk,
            storage: self.storage,
            bridge: self.bridge,
            image: self.image,
            mac: if self.mac.is_empty() {
                super::random_mac()
            } else {
                self.mac
            },
            ostype: self.ostype,
            agent: self.agent,
            serial: self.serial,
            cpu: self.cpu,
            ip: self.ip,
            gateway: self.gateway,
            nameserver: self.dns,
            searchdomain: self.search,
            ciuser: self.user,
            ciupgrade: self.upgrade.filter(|_| native),
            cloud_init: if native {
                CloudInit::Native
            } else {
                CloudInit::Snippets {
                    storage: self.snippets_storage,
                }
            },
        };
        CreateRequest {
            spec,
            ssh_keys: self.ssh_keys,
            user_data: self.user_data,
            upgrade: self.upgrade,
            cleanup: self.cleanup,
        }
    }

    /// Everything wrong with the options that the node is not needed for, all at once:
    /// what [`CreateRequest::check`] finds, with a VM id of 0 (the node picks it)
    /// standing for a valid one. The node's own checks (id free, storage, bridge,
    /// image) come later, in [`super::create`].
    pub(crate) fn check(&self) -> Result<(), Refused> {
        let vmid = if self.vmid == 0 { VMID_MIN } else { self.vmid };
        let name = self.name.clone();
        match self.clone().into_request(vmid).check() {
            Ok(_) => Ok(()),
            Err(problems) => Err(Refused { name, problems }),
        }
    }
}

impl CreateRequest {
    /// Everything wrong with the request that the node is not needed for: the spec's
    /// fields, the keys, user_data without snippets, and (snippets mode) the documents.
    /// With none, the documents (user-data, network-config) of snippets mode, or None in
    /// native mode.
    pub(crate) fn check(&self) -> Result<Option<(String, String)>, Vec<String>> {
        let mut problems: Vec<String> = self.spec.check().iter().map(|e| e.to_string()).collect();
        for (i, key) in self.ssh_keys.iter().enumerate() {
            if !cloudinit::is_public_key(key) {
                problems.push(format!("ssh_keys[{i}]: not an OpenSSH public key line"));
            }
        }
        let documents = match &self.spec.cloud_init {
            CloudInit::Native => {
                if self.user_data.is_some() {
                    problems.push(USER_DATA_NEEDS_SNIPPETS.to_string());
                }
                None
            }
            CloudInit::Snippets { .. } => {
                // The recipe's own user_data is judged with the rest; the documents
                // are made only from a request without problems (their checks would
                // repeat the spec's: the name, the address, the keys).
                if let Some(u) = &self.user_data {
                    problems.extend(u.check().iter().map(|p| format!("user_data {p}")));
                }
                if problems.is_empty() {
                    match self.documents() {
                        Ok(d) => Some(d),
                        Err(p) => {
                            problems.extend(p);
                            None
                        }
                    }
                } else {
                    None
                }
            }
        };
        if problems.is_empty() {
            Ok(documents)
        } else {
            Err(problems)
        }
    }

    /// user-data and network-config for a snippets-mode request, or its problems: the
    /// VM's name as hostname, the spec's user (with the keys and sudo) first unless
    /// user_data names it, the NIC matched by the spec's MAC.
    pub(crate) fn documents(&self) -> Result<(String, String), Vec<String>> {
        let spec = &self.spec;
        let mut user = self.user_data.clone().unwrap_or_default();
        if user.package_upgrade.is_none() {
            user.package_upgrade = self.upgrade;
        }
        user.hostname.get_or_insert_with(|| spec.name.clone());
        if !spec.ciuser.is_empty() && !user.users.iter().any(|u| u.name == spec.ciuser) {
            user.users.insert(
                0,
                UserSpec {
                    name: spec.ciuser.clone(),
                    ssh_authorized_keys: self.ssh_keys.clone(),
                    sudo: Some(cloudinit::Sudo::All(true)),
                    groups: Vec::new(),
                    shell: None,
                },
            );
        }
        let network = NetworkSpec {
            ip: spec.ip.clone(),
            gateway: spec.gateway.clone(),
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
}

const USER_DATA_NEEDS_SNIPPETS: &str = "user_data: needs snippets_storage (a storage with the `snippets` content type): Proxmox's own cloud-init options cannot carry it";

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB a@b";

    fn options(json: serde_json::Value) -> Result<CreateOptions, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults_and_a_random_proxmox_mac() {
        let o = options(serde_json::json!({"name": "web", "image": "/i.img"})).unwrap();
        assert_eq!(o.vmid, 0);
        assert_eq!(o.check(), Ok(()));
        let r = o.into_request(105);
        let s = &r.spec;
        assert_eq!(
            (s.vmid, s.cores, s.memory_mb, s.disk_gb),
            (105, 2, 2048, 20)
        );
        assert_eq!(
            (s.storage.as_str(), s.bridge.as_str()),
            ("local-lvm", "vmbr0")
        );
        assert_eq!(s.ipconfig(), "ip=dhcp");
        assert!(s.mac.starts_with("BC:24:11:"), "{}", s.mac);
        assert_eq!(s.cloud_init, CloudInit::Native);
        assert!(r.cleanup);
        let given =
            options(serde_json::json!({"name": "web", "image": "/i", "mac": "BC:24:11:00:00:01"}))
                .unwrap()
                .into_request(105);
        assert_eq!(given.spec.mac, "BC:24:11:00:00:01");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = options(serde_json::json!({"name": "web", "image": "/i", "memroy": 1}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `memroy`"), "{e}");
    }

    #[test]
    fn snippet_rules() {
        let native = serde_json::json!({"name": "web", "image": "/i", "upgrade": false});
        let r = options(native).unwrap().into_request(105);
        assert_eq!(r.spec.ciupgrade, Some(false));

        let snippets = serde_json::json!({
            "name": "web", "image": "/i", "upgrade": true, "snippets_storage": "local",
            "user_data": {"packages": ["nginx"], "package_upgrade": false}
        });
        let r = options(snippets).unwrap().into_request(105);
        assert_eq!(r.spec.ciupgrade, None);
        let (user, _) = r.check().unwrap().unwrap();
        assert!(user.contains("package_upgrade: false"), "{user}");
        assert_eq!(
            r.spec.cloud_init,
            CloudInit::Snippets {
                storage: "local".into()
            }
        );
        let upgrade = serde_json::json!({"name": "web", "image": "/i", "upgrade": true, "snippets_storage": "local"});
        let (user, _) = options(upgrade)
            .unwrap()
            .into_request(105)
            .check()
            .unwrap()
            .unwrap();
        assert!(user.contains("package_upgrade: true"), "{user}");
    }

    #[test]
    fn every_local_problem_is_named_at_once_before_the_node_is_asked() {
        // vmid 0 (the node picks it) is no problem here.
        let o = options(serde_json::json!({
            "name": "Bad_Name!", "image": "/i", "memory": 8, "disk": 0,
            "ip": "10.0.0.5/24", "gateway": "10.0.1.1", "user": "Root!",
            "ssh_keys": ["not a key"], "user_data": {"packages": ["x"]}
        }))
        .unwrap();
        let e = o.check().unwrap_err();
        assert_eq!(e.name, "Bad_Name!");
        assert_eq!(
            e.problems,
            [
                "name `Bad_Name!`: must be a DNS label: 1-63 letters, digits and `-`, not starting or ending with `-`",
                "memory `8`: must be between 16 and 268435456 (MiB)",
                "disk `0`: must be at least 1 (GiB)",
                "gateway `10.0.1.1`: is outside 10.0.0.0/24, the subnet of ip 10.0.0.5/24",
                "user `Root!`: must be a Linux user name",
                "ssh_keys[0]: not an OpenSSH public key line",
                USER_DATA_NEEDS_SNIPPETS,
            ]
        );
        assert!(
            e.to_string().starts_with(
                "VM `Bad_Name!` was not created; nothing was sent to the node:\n  - name `Bad_Name!`"
            ),
            "{e}"
        );
        // A VM id the user gave is judged; the documents of snippets mode too.
        let o = options(serde_json::json!({
            "vmid": 99, "name": "web", "image": "/i", "ip": "10.0.0.5",
            "snippets_storage": "local", "user_data": {"packages": ["Bad;pkg"]}
        }))
        .unwrap();
        assert_eq!(
            o.check().unwrap_err().problems,
            [
                "vmid `99`: must be between 100 and 999999999",
                "ip `10.0.0.5`: must be `dhcp` or an IPv4 CIDR like 10.0.0.5/24",
                "user_data packages: `Bad;pkg` is not a Debian package name",
            ]
        );
    }

    #[test]
    fn snippet_documents_carry_user_keys_and_mac() {
        let o = options(serde_json::json!({
            "name": "web", "image": "/i", "mac": "BC:24:11:00:00:01", "user": "admin",
            "ip": "10.0.0.5/24", "gateway": "10.0.0.1", "snippets_storage": "local",
            "ssh_keys": [KEY]
        }));
        let r = o.unwrap().into_request(105);
        let (user, network) = r.check().unwrap().unwrap();
        assert!(user.contains("hostname: web"), "{user}");
        assert!(user.contains("name: admin"), "{user}");
        assert!(user.contains("ssh-ed25519 AAAA"), "{user}");
        assert!(
            network.to_lowercase().contains("bc:24:11:00:00:01"),
            "{network}"
        );
        assert!(network.contains("10.0.0.5/24"), "{network}");
    }
}
