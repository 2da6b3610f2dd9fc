//! Proxmox VE as fleet knows it: a VM spec and its validation, the `qm`/`pvesh`/`pvesm`
//! command lines for it, and parsers of their output (pure functions, here); what a
//! recipe asks for and how it becomes a spec ([`request`]); and the procedures on a
//! node over `Remote` ([`procedures`]). The facts come from
//! shared/reference/proxmox-and-ufw-cli.md (PVE 8/9).

pub(crate) mod choices;
pub(crate) mod guest;
pub(crate) mod image;
pub(crate) mod procedures;
pub(crate) mod request;

pub(crate) use procedures::{
    DestroyOpts, GuestIpOpts, Power, ShutdownOpts, config, create, list, next_vmid, power,
    start_new, status, wait_guest_ip,
};
pub(crate) use request::{CreateOptions, CreateRequest, NewVm, SPEC_KEYS};

use crate::ops::shell::quote;
use std::fmt;

crate::error::message_error!(
    /// Output of `pvesm`, `qm` or the guest agent that fleet cannot read; the message
    /// quotes what was unexpected.
    UnreadableOutput
);

pub(crate) const VMID_MIN: u64 = 100;
pub(crate) const VMID_MAX: u64 = 999_999_999;
/// Proxmox's default MAC prefix (BC:24:11, its IEEE OUI).
pub(crate) const MAC_PREFIX: [u8; 3] = [0xbc, 0x24, 0x11];

/// How cloud-init gets its data: Proxmox's own options, or user-data (and
/// network-config) uploaded as snippets and attached with `--cicustom`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CloudInit {
    Native,
    Snippets { storage: String },
}

/// What a new VM is: every field a `qm create` for a cloud image needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VmSpec {
    pub(crate) vmid: u64,
    pub(crate) name: String,
    pub(crate) cores: i64,
    pub(crate) memory_mb: i64,
    pub(crate) disk_gb: i64,
    pub(crate) storage: String,
    pub(crate) bridge: String,
    /// The cloud image on the node, imported as the boot disk.
    pub(crate) image: String,
    pub(crate) mac: String,
    pub(crate) ostype: String,
    pub(crate) agent: bool,
    pub(crate) serial: bool,
    pub(crate) cpu: String,
    /// `dhcp`, or an IPv4 address in CIDR form (10.0.0.5/24).
    pub(crate) ip: String,
    /// The gateway of a static address; empty for none.
    pub(crate) gateway: String,
    pub(crate) nameserver: Vec<String>,
    pub(crate) searchdomain: Vec<String>,
    pub(crate) ciuser: String,
    /// `--ciupgrade`: whether Proxmox's generated user-data upgrades packages on first
    /// boot (PVE 8.1+); None leaves Proxmox's default (yes).
    pub(crate) ciupgrade: Option<bool>,
    pub(crate) cloud_init: CloudInit,
}

/// One thing wrong with a spec, named by its field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpecError {
    pub(crate) field: &'static str,
    pub(crate) value: String,
    pub(crate) problem: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}`: {}",
            self.field,
            crate::ops::text::shown(&self.value),
            self.problem
        )
    }
}

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A Proxmox storage or bridge ID: letters first, then letters, digits, `-`, `_`, `.`.
pub(crate) fn is_pve_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

pub(crate) fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A locally random MAC in Proxmox's range, like the one `qm create` would pick; fleet
/// picks it itself so the network-config can match the NIC before the VM exists.
pub(crate) fn random_mac() -> String {
    let tail: [u8; 3] = [fastrand::u8(..), fastrand::u8(..), fastrand::u8(..)];
    MAC_PREFIX
        .iter()
        .chain(tail.iter())
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `10.0.0.5/24` -> (address, prefix), IPv4 only.
pub(crate) fn parse_cidr(s: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((addr.parse().ok()?, prefix))
}

/// Memory of a VM in MiB, as `qm create --memory` takes it.
pub(crate) const MEMORY_MB: std::ops::RangeInclusive<i64> = 16..=268_435_456;

/// The one set of rules for a VM's address, shared by the spec (`--ipconfig0`) and
/// network-config: `dhcp` (no gateway), or an IPv4 CIDR whose address is a host of its
/// subnet, with an optional gateway inside that subnet (the documents fleet writes have
/// no on-link routes) that is not the address itself.
pub(crate) fn address_problems(ip: &str, gateway: &str) -> Vec<SpecError> {
    let mut out = Vec::new();
    let mut bad = |field, value: &str, problem: String| {
        out.push(SpecError {
            field,
            value: value.to_string(),
            problem,
        })
    };
    let gw = (!gateway.is_empty()).then(|| gateway.parse::<std::net::Ipv4Addr>());
    if let Some(Err(_)) = gw {
        bad("gateway", gateway, "must be an IPv4 address".into());
    }
    if ip == "dhcp" {
        if let Some(Ok(_)) = gw {
            bad(
                "gateway",
                gateway,
                "needs a static ip (with `dhcp` the DHCP server gives the gateway)".into(),
            );
        }
        return out;
    }
    let Some((addr, prefix)) = parse_cidr(ip) else {
        bad(
            "ip",
            ip,
            "must be `dhcp` or an IPv4 CIDR like 10.0.0.5/24".into(),
        );
        return out;
    };
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = std::net::Ipv4Addr::from(u32::from(addr) & mask);
    let broadcast = std::net::Ipv4Addr::from(u32::from(network) | !mask);
    let subnet = format!("{network}/{prefix}");
    // In a /31 or /32 every address is a host's (RFC 3021).
    let edge = |a: std::net::Ipv4Addr| {
        if prefix <= 30 && a == network {
            Some(format!("is the network address of {subnet}, not a host's"))
        } else if prefix <= 30 && a == broadcast {
            Some(format!(
                "is the broadcast address of {subnet}, not a host's"
            ))
        } else {
            None
        }
    };
    if addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.is_broadcast() {
        bad("ip", ip, "is not an address a VM can have".into());
    } else if let Some(p) = edge(addr) {
        bad("ip", ip, p);
    }
    if let Some(Ok(g)) = gw {
        if g == addr {
            bad(
                "gateway",
                gateway,
                format!("is the VM's own address ({ip})"),
            );
        } else if u32::from(g) & mask != u32::from(network) {
            bad(
                "gateway",
                gateway,
                format!("is outside {subnet}, the subnet of ip {ip}"),
            );
        } else if let Some(p) = edge(g) {
            bad("gateway", gateway, p);
        }
    }
    out
}

impl VmSpec {
    /// Everything that can be checked without the node; an empty list when fine.
    pub(crate) fn check(&self) -> Vec<SpecError> {
        let mut errors = Vec::new();
        let mut bad = |field, value: String, problem: &str| {
            errors.push(SpecError {
                field,
                value,
                problem: problem.to_string(),
            })
        };
        if !(VMID_MIN..=VMID_MAX).contains(&self.vmid) {
            bad(
                "vmid",
                self.vmid.to_string(),
                "must be between 100 and 999999999",
            );
        }
        if !is_dns_label(&self.name) {
            bad(
                "name",
                self.name.clone(),
                "must be a DNS label: 1-63 letters, digits and `-`, not starting or ending with `-`",
            );
        }
        if self.cores < 1 {
            bad("cores", self.cores.to_string(), "must be at least 1");
        }
        if !MEMORY_MB.contains(&self.memory_mb) {
            bad(
                "memory",
                self.memory_mb.to_string(),
                "must be between 16 and 268435456 (MiB)",
            );
        }
        if self.disk_gb < 1 {
            bad("disk", self.disk_gb.to_string(), "must be at least 1 (GiB)");
        }
        if !is_pve_id(&self.storage) {
            bad("storage", self.storage.clone(), "is not a storage ID");
        }
        if !is_pve_id(&self.bridge) {
            bad("bridge", self.bridge.clone(), "is not a bridge name");
        }
        if !self.image.starts_with('/') {
            bad(
                "image",
                self.image.clone(),
                "must be an absolute path of a cloud image on the node",
            );
        }
        if !is_mac(&self.mac) {
            bad(
                "mac",
                self.mac.clone(),
                "must be a MAC like BC:24:11:AA:BB:CC",
            );
        }
        for e in address_problems(&self.ip, &self.gateway) {
            bad(e.field, e.value, &e.problem);
        }
        for ns in &self.nameserver {
            if ns.parse::<std::net::IpAddr>().is_err() {
                bad("dns", ns.clone(), "must be an IP address");
            }
        }
        for d in &self.searchdomain {
            if d.split('.').any(|l| !is_dns_label(l)) {
                bad("searchdomain", d.clone(), "must be a domain name");
            }
        }
        if !self.ciuser.is_empty() && !crate::ops::cloudinit::is_user_name(&self.ciuser) {
            bad("user", self.ciuser.clone(), "must be a Linux user name");
        }
        if let CloudInit::Snippets { storage } = &self.cloud_init
            && !is_pve_id(storage)
        {
            bad("snippets_storage", storage.clone(), "is not a storage ID");
        }
        errors
    }

    /// Checks against what the node has; `facts` comes from the commands of `NodeFacts`.
    pub(crate) fn check_on_node(&self, node: &str, facts: &NodeFacts) -> Vec<SpecError> {
        let mut errors = Vec::new();
        let mut bad = |field, value: &str, problem: String| {
            errors.push(SpecError {
                field,
                value: value.to_string(),
                problem,
            })
        };
        if let Some(owner) = &facts.vmid_taken {
            bad("vmid", &self.vmid.to_string(), owner.clone());
        }
        let storage_problem = |id: &str, content: &str| {
            storage_problem(
                node,
                &facts.storages,
                id,
                content,
                facts.content_ok(id, content),
            )
        };
        if let Some(p) = storage_problem(&self.storage, "images") {
            bad("storage", &self.storage, p);
        }
        if let CloudInit::Snippets { storage } = &self.cloud_init
            && let Some(p) = storage_problem(storage, "snippets")
        {
            bad("snippets_storage", storage, p);
        }
        if let Some(p) = bridge_problem(node, &facts.bridges, &self.bridge) {
            bad("bridge", &self.bridge, p);
        }
        if !facts.image_present {
            bad("image", &self.image, format!("no such file on {node}"));
        }
        errors
    }

    /// `qm create` for the spec: boot disk imported from the cloud image, cloud-init
    /// drive, serial console, guest agent, one virtio NIC with the chosen MAC.
    /// `sshkeys_file` is the node-side file of public keys (the CLI takes a path).
    pub(crate) fn create_command(
        &self,
        sshkeys_file: Option<&str>,
        cicustom: Option<&str>,
    ) -> String {
        let mut args: Vec<String> = vec!["qm".into(), "create".into(), self.vmid.to_string()];
        let mut opt = |k: &str, v: String| {
            args.push(format!("--{k}"));
            args.push(quote(&v));
        };
        opt("name", self.name.clone());
        opt("memory", self.memory_mb.to_string());
        opt("cores", self.cores.to_string());
        opt("cpu", self.cpu.clone());
        opt("ostype", self.ostype.clone());
        opt("scsihw", "virtio-scsi-pci".into());
        opt(
            "scsi0",
            format!("{}:0,import-from={}", self.storage, self.image),
        );
        opt("ide2", format!("{}:cloudinit", self.storage));
        opt("boot", "order=scsi0".into());
        if self.serial {
            opt("serial0", "socket".into());
            opt("vga", "serial0".into());
        }
        opt("agent", format!("enabled={}", u8::from(self.agent)));
        opt(
            "net0",
            format!("virtio={},bridge={}", self.mac, self.bridge),
        );
        opt("ipconfig0", self.ipconfig());
        if !self.nameserver.is_empty() {
            opt("nameserver", self.nameserver.join(" "));
        }
        if !self.searchdomain.is_empty() {
            opt("searchdomain", self.searchdomain.join(" "));
        }
        if !self.ciuser.is_empty() {
            opt("ciuser", self.ciuser.clone());
        }
        if let Some(file) = sshkeys_file {
            opt("sshkeys", file.to_string());
        }
        if let Some(up) = self.ciupgrade {
            opt("ciupgrade", u8::from(up).to_string());
        }
        if let Some(c) = cicustom {
            opt("cicustom", c.to_string());
        }
        args.join(" ")
    }

    /// `--ipconfig0`: `ip=dhcp`, or `ip=10.0.0.5/24[,gw=10.0.0.1]`.
    pub(crate) fn ipconfig(&self) -> String {
        match self.gateway.as_str() {
            "" => format!("ip={}", self.ip),
            gw => format!("ip={},gw={gw}", self.ip),
        }
    }

    /// Grows the imported disk (a cloud image is ~2 GiB) to the spec's size.
    pub(crate) fn resize_command(&self) -> String {
        format!("qm disk resize {} scsi0 {}G", self.vmid, self.disk_gb)
    }

    /// The snippet file names fleet uploads for this VM.
    pub(crate) fn snippet_names(&self) -> (String, String) {
        (
            format!("fleet-{}-user.yaml", self.vmid),
            format!("fleet-{}-network.yaml", self.vmid),
        )
    }

    /// The snippet volumes (user, network) on `storage`, as `pvesm path` takes them.
    pub(crate) fn snippet_volids(&self, storage: &str) -> (String, String) {
        let (user, network) = self.snippet_names();
        (
            format!("{storage}:snippets/{user}"),
            format!("{storage}:snippets/{network}"),
        )
    }

    /// `--cicustom` attaching the snippets on `storage`.
    pub(crate) fn cicustom(&self, storage: &str) -> String {
        let (user, network) = self.snippet_volids(storage);
        format!("user={user},network={network}")
    }

    /// The node-side file of public keys `qm create --sshkeys` reads (native mode).
    pub(crate) fn sshkeys_path(&self) -> String {
        format!("/tmp/fleet-sshkeys-{}.pub", self.vmid)
    }
}

/// `qm disk resize` runs a task whose failure still exits 0: tell it from stderr.
pub(crate) fn resize_failed(stderr: &str) -> Option<String> {
    let s = stderr.trim();
    (!s.is_empty() && !s.starts_with("Task finished with")).then(|| s.to_string())
}

/// What a node has, as far as a spec depends on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeFacts {
    /// Why the vmid is taken (pvesh's message), if it is.
    pub(crate) vmid_taken: Option<String>,
    pub(crate) storages: Vec<Storage>,
    /// Storage IDs that hold the content types asked for, per type.
    pub(crate) content: Vec<(String, Vec<String>)>,
    pub(crate) bridges: Vec<String>,
    pub(crate) image_present: bool,
}

impl NodeFacts {
    fn content_ok(&self, id: &str, content: &str) -> bool {
        self.content
            .iter()
            .find(|(c, _)| c == content)
            .is_none_or(|(_, ids)| ids.iter().any(|i| i == id))
    }
}

/// One row of `pvesm status`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Storage {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) total_kib: u64,
    pub(crate) used_kib: u64,
    pub(crate) avail_kib: u64,
}

/// Parses `pvesm status` by position: the header's wording changed in 9.0.14.
pub(crate) fn parse_pvesm_status(text: &str) -> Result<Vec<Storage>, UnreadableOutput> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() || (i == 0 && cols[0] == "Name") {
            continue;
        }
        if cols.len() < 6 {
            return Err(format!("unexpected `pvesm status` line {}: {line:?}", i + 1).into());
        }
        let num = |s: &str| s.parse::<u64>().unwrap_or(0);
        out.push(Storage {
            id: cols[0].to_string(),
            kind: cols[1].to_string(),
            status: cols[2].to_string(),
            total_kib: num(cols[3]),
            used_kib: num(cols[4]),
            avail_kib: num(cols[5]),
        });
    }
    Ok(out)
}

/// One row of `qm list`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VmRow {
    pub(crate) vmid: u64,
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) mem_mb: u64,
    pub(crate) bootdisk_gb: f64,
    pub(crate) pid: u64,
}

/// Parses `qm list` (printf `%10s %-20s %-10s %-10s %12s %-10s`; nothing at all when
/// there are no VMs). The name is what lies between the VMID and the last four
/// columns: an unnamed VM shows as `VM 105`, a long name overflows its column.
pub(crate) fn parse_qm_list(text: &str) -> Result<Vec<VmRow>, UnreadableOutput> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() || cols[0] == "VMID" {
            continue;
        }
        let unparsable = || format!("unexpected `qm list` line {}: {line:?}", i + 1);
        if cols.len() < 6 {
            return Err(unparsable().into());
        }
        let n = cols.len();
        let row = (|| {
            Some(VmRow {
                vmid: cols[0].parse().ok()?,
                name: cols[1..n - 4].join(" "),
                status: cols[n - 4].to_string(),
                mem_mb: cols[n - 3].parse().ok()?,
                bootdisk_gb: cols[n - 2].parse().ok()?,
                pid: cols[n - 1].parse().ok()?,
            })
        })();
        out.push(row.ok_or_else(unparsable)?);
    }
    Ok(out)
}

/// `qm status` prints one line, `status: running`.
pub(crate) fn parse_qm_status(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("status: "))
        .map(|s| s.trim().to_string())
}

/// `pvesh get /cluster/nextid` prints `105` (text) or `"105"` (json).
pub(crate) fn parse_nextid(text: &str) -> Option<u64> {
    text.trim().trim_matches('"').parse().ok()
}

/// `qm config VMID` lines as key/value pairs, in order.
pub(crate) fn parse_config(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The MAC of a `netN` value: `virtio=BC:24:11:AA:BB:CC,bridge=vmbr0`.
pub(crate) fn mac_of_net(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k != "bridge" && is_mac(v) || k == "macaddr").then(|| v.to_ascii_lowercase())
    })
}

/// The address fleet should connect to, from `qm guest cmd VMID
/// network-get-interfaces`: the IPv4 of the NIC whose MAC is `mac` (net0's), else of
/// any NIC; never loopback or link-local.
pub(crate) fn guest_ip(json: &str, mac: Option<&str>) -> Result<Option<String>, UnreadableOutput> {
    let ifaces: Vec<serde_json::Value> = serde_json::from_str(json)
        .map_err(|e| format!("guest agent answered with something not JSON: {e}"))?;
    let usable = |iface: &serde_json::Value| -> Option<String> {
        iface["ip-addresses"]
            .as_array()?
            .iter()
            .filter(|a| a["ip-address-type"] == "ipv4")
            .filter_map(|a| a["ip-address"].as_str()?.parse::<std::net::Ipv4Addr>().ok())
            .find(|ip| !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified())
            .map(|ip| ip.to_string())
    };
    let mac_of = |iface: &serde_json::Value| {
        iface["hardware-address"]
            .as_str()
            .map(|m| m.to_ascii_lowercase())
    };
    if let Some(mac) = mac {
        let mac = mac.to_ascii_lowercase();
        if let Some(iface) = ifaces.iter().find(|i| mac_of(i).as_deref() == Some(&mac)) {
            return Ok(usable(iface));
        }
    }
    Ok(ifaces.iter().filter(|i| i["name"] != "lo").find_map(usable))
}

pub(crate) fn start_command(vmid: u64) -> String {
    format!("qm start {vmid}")
}

pub(crate) fn stop_command(vmid: u64) -> String {
    format!("qm stop {vmid}")
}

pub(crate) fn shutdown_command(vmid: u64, timeout_s: u64) -> String {
    format!("qm shutdown {vmid} --timeout {timeout_s} --forceStop 1")
}

pub(crate) fn destroy_command(vmid: u64, purge: bool) -> String {
    if purge {
        format!("qm destroy {vmid} --purge 1 --destroy-unreferenced-disks 1")
    } else {
        format!("qm destroy {vmid}")
    }
}

pub(crate) fn status_command(vmid: u64) -> String {
    format!("qm status {vmid}")
}

pub(crate) fn config_command(vmid: u64) -> String {
    format!("qm config {vmid}")
}

pub(crate) fn guest_interfaces_command(vmid: u64) -> String {
    format!("qm guest cmd {vmid} network-get-interfaces")
}

pub(crate) fn nextid_command(vmid: Option<u64>) -> String {
    match vmid {
        Some(id) => format!("pvesh get /cluster/nextid --vmid {id}"),
        None => "pvesh get /cluster/nextid".into(),
    }
}

/// The inventory variable that names the node as Proxmox knows it (for API paths),
/// when that is not its `hostname`.
pub(crate) const NODE_NAME_VAR: &str = "proxmox_node_name";

pub(crate) const LIST_COMMAND: &str = "qm list";

pub(crate) const PVESM_STATUS_COMMAND: &str = "pvesm status";

/// The node's host name, which is its name in API paths.
pub(crate) const HOSTNAME_COMMAND: &str = "hostname";

/// The storages that hold `content` (`images`, `snippets`, ...).
pub(crate) fn pvesm_content_command(content: &str) -> String {
    format!("pvesm status --content {}", quote(content))
}

/// The node's bridges as JSON (`[{"iface": "vmbr0", ...}]`).
pub(crate) fn bridges_command(node_name: &str) -> String {
    format!(
        "pvesh get /nodes/{}/network --type any_bridge --output-format json",
        quote(node_name)
    )
}

/// Exits 0 when `path` is a file on the node.
pub(crate) fn file_exists_command(path: &str) -> String {
    format!("test -f {}", quote(path))
}

/// The node-side path of a volume (`local:snippets/x.yaml`).
pub(crate) fn pvesm_path_command(volid: &str) -> String {
    format!("pvesm path {}", quote(volid))
}

/// The folder of a node-side file, made if missing (a snippets folder).
pub(crate) fn mkdir_parent_command(path: &str) -> String {
    format!("mkdir -p {}", quote(parent(path)))
}

/// Removes node-side files fleet wrote (snippets, a key file); missing ones are fine.
pub(crate) fn remove_files_command(files: &[String]) -> String {
    format!(
        "rm -f {}",
        files.iter().map(|f| quote(f)).collect::<Vec<_>>().join(" ")
    )
}

/// The folder part of a path (`/` for a file at the root, `.` for a bare name).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/')
        .map_or(".", |(p, _)| if p.is_empty() { "/" } else { p })
}

/// An unknown VMID, in every `qm` subcommand's words.
pub(crate) fn is_missing_vm(stderr: &str) -> bool {
    stderr.contains("does not exist") && stderr.contains("qemu-server")
}

/// `vmid: VM 105 already exists` -> the text after the parameter name.
pub(crate) fn nextid_refusal(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("vmid: "))
        .unwrap_or(stderr.trim())
        .to_string()
}

/// Why guest storage `id` cannot take `content` on `node` (missing, not active, or not
/// holding that content: `holds`), or None; shared by VM and container specs.
pub(crate) fn storage_problem(
    node: &str,
    storages: &[Storage],
    id: &str,
    content: &str,
    holds: bool,
) -> Option<String> {
    match storages.iter().find(|s| s.id == id) {
        None => Some(format!(
            "no such storage on {node} (storages: {})",
            storages
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(s) if s.status != "active" => Some(format!("storage is {} on {node}", s.status)),
        Some(_) if !holds => Some(format!(
            "storage on {node} does not hold {content} (enable it with `pvesm set {id} --content …,{content}`)"
        )),
        Some(_) => None,
    }
}

/// Why `bridge` is not one of `node`'s bridges, or None; shared by VM and container specs.
pub(crate) fn bridge_problem(node: &str, bridges: &[String], bridge: &str) -> Option<String> {
    (!bridges.iter().any(|b| b == bridge)).then(|| {
        format!(
            "no such bridge on {node} (bridges: {})",
            if bridges.is_empty() {
                "none".to_string()
            } else {
                bridges.join(", ")
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> VmSpec {
        VmSpec {
            vmid: 105,
            name: "web-3".into(),
            cores: 2,
            memory_mb: 2048,
            disk_gb: 20,
            storage: "local-lvm".into(),
            bridge: "vmbr0".into(),
            image: "/var/lib/vz/template/iso/debian-13-genericcloud-amd64.qcow2".into(),
            mac: "BC:24:11:0A:0B:0C".into(),
            ostype: "l26".into(),
            agent: true,
            serial: true,
            cpu: "host".into(),
            ip: "10.0.0.5/24".into(),
            gateway: "10.0.0.1".into(),
            nameserver: vec!["10.0.0.1".into(), "1.1.1.1".into()],
            searchdomain: vec!["lan".into()],
            ciuser: "admin".into(),
            ciupgrade: None,
            cloud_init: CloudInit::Native,
        }
    }

    #[test]
    fn golden_create_command_native() {
        assert_eq!(
            spec().create_command(Some("/tmp/fleet-105.pub"), None),
            "qm create 105 --name web-3 --memory 2048 --cores 2 --cpu host --ostype l26 \
             --scsihw virtio-scsi-pci \
             --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/debian-13-genericcloud-amd64.qcow2 \
             --ide2 local-lvm:cloudinit --boot order=scsi0 --serial0 socket --vga serial0 \
             --agent enabled=1 --net0 virtio=BC:24:11:0A:0B:0C,bridge=vmbr0 \
             --ipconfig0 ip=10.0.0.5/24,gw=10.0.0.1 --nameserver '10.0.0.1 1.1.1.1' \
             --searchdomain lan --ciuser admin --sshkeys /tmp/fleet-105.pub"
        );
    }

    #[test]
    fn golden_create_command_snippets() {
        let mut s = spec();
        s.serial = false;
        s.agent = false;
        s.ciuser = String::new();
        s.nameserver.clear();
        s.searchdomain.clear();
        s.ip = "dhcp".into();
        s.gateway.clear();
        s.ciupgrade = Some(false);
        assert_eq!(
            s.create_command(
                None,
                Some("user=local:snippets/fleet-105-user.yaml,network=local:snippets/fleet-105-network.yaml")
            ),
            "qm create 105 --name web-3 --memory 2048 --cores 2 --cpu host --ostype l26 \
             --scsihw virtio-scsi-pci \
             --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/debian-13-genericcloud-amd64.qcow2 \
             --ide2 local-lvm:cloudinit --boot order=scsi0 --agent enabled=0 \
             --net0 virtio=BC:24:11:0A:0B:0C,bridge=vmbr0 --ipconfig0 ip=dhcp --ciupgrade 0 \
             --cicustom user=local:snippets/fleet-105-user.yaml,network=local:snippets/fleet-105-network.yaml"
        );
        assert_eq!(s.resize_command(), "qm disk resize 105 scsi0 20G");
        assert_eq!(
            s.cicustom("local"),
            "user=local:snippets/fleet-105-user.yaml,network=local:snippets/fleet-105-network.yaml"
        );
        assert_eq!(s.sshkeys_path(), "/tmp/fleet-sshkeys-105.pub");
    }

    #[test]
    fn golden_lifecycle_commands() {
        assert_eq!(start_command(105), "qm start 105");
        assert_eq!(stop_command(105), "qm stop 105");
        assert_eq!(
            shutdown_command(105, 60),
            "qm shutdown 105 --timeout 60 --forceStop 1"
        );
        assert_eq!(
            destroy_command(105, true),
            "qm destroy 105 --purge 1 --destroy-unreferenced-disks 1"
        );
        assert_eq!(destroy_command(105, false), "qm destroy 105");
        assert_eq!(
            guest_interfaces_command(105),
            "qm guest cmd 105 network-get-interfaces"
        );
        assert_eq!(nextid_command(None), "pvesh get /cluster/nextid");
        assert_eq!(
            nextid_command(Some(105)),
            "pvesh get /cluster/nextid --vmid 105"
        );
    }

    #[test]
    fn golden_node_commands() {
        assert_eq!(
            pvesm_content_command("images"),
            "pvesm status --content images"
        );
        assert_eq!(
            bridges_command("pve 1"),
            "pvesh get /nodes/'pve 1'/network --type any_bridge --output-format json"
        );
        assert_eq!(
            file_exists_command("/var/a b.img"),
            "test -f '/var/a b.img'"
        );
        assert_eq!(
            pvesm_path_command("local:snippets/fleet-105-user.yaml"),
            "pvesm path local:snippets/fleet-105-user.yaml"
        );
        assert_eq!(
            mkdir_parent_command("/var/lib/vz/snippets/a.yaml"),
            "mkdir -p /var/lib/vz/snippets"
        );
        assert_eq!(
            remove_files_command(&["/tmp/a".into(), "/tmp/b c".into()]),
            "rm -f /tmp/a '/tmp/b c'"
        );
        assert_eq!(
            parent("/var/lib/vz/snippets/a.yaml"),
            "/var/lib/vz/snippets"
        );
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), ".");
    }

    #[test]
    fn a_good_spec_passes() {
        assert_eq!(spec().check(), vec![]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut s = spec();
        s.vmid = 99;
        s.name = "web_3".into();
        s.cores = 0;
        s.memory_mb = 8;
        s.disk_gb = 0;
        s.storage = "local lvm".into();
        s.bridge = "vmbr0;reboot".into();
        s.image = "debian.qcow2".into();
        s.mac = "zz".into();
        s.nameserver = vec!["one.one".into()];
        let fields: Vec<_> = s.check().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "vmid", "name", "cores", "memory", "disk", "storage", "bridge", "image", "mac",
                "dns"
            ]
        );
        s.vmid = 1_000_000_000;
        assert!(s.check()[0].to_string().contains("vmid `1000000000`"));
    }

    #[test]
    fn dns_labels() {
        for ok in ["web-3", "a", "db01", &"x".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a.b", "a_b", &"x".repeat(64), "a b"] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }

    #[test]
    fn addresses_and_gateways() {
        let problems = |ip, gw| -> Vec<String> {
            address_problems(ip, gw)
                .iter()
                .map(|e| e.to_string())
                .collect()
        };
        for (ip, gw) in [
            ("dhcp", ""),
            ("10.0.0.5/24", "10.0.0.1"),
            ("10.0.0.5/24", ""),
            ("10.0.0.5/32", ""),
            ("10.0.0.4/31", "10.0.0.5"),
            ("192.168.1.200/16", "192.168.0.1"),
        ] {
            assert_eq!(problems(ip, gw), Vec::<String>::new(), "{ip} {gw}");
        }
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "10.0.0.5",
                "",
                &["ip `10.0.0.5`: must be `dhcp` or an IPv4 CIDR like 10.0.0.5/24"],
            ),
            ("10.0.0.5/33", "", &["ip `10.0.0.5/33`: must be `dhcp`"]),
            (
                "10.0.0.5/24",
                "gw",
                &["gateway `gw`: must be an IPv4 address"],
            ),
            (
                "dhcp",
                "10.0.0.1",
                &["gateway `10.0.0.1`: needs a static ip"],
            ),
            (
                "10.0.0.5/24",
                "10.0.1.1",
                &["gateway `10.0.1.1`: is outside 10.0.0.0/24, the subnet of ip 10.0.0.5/24"],
            ),
            (
                "10.0.0.5/24",
                "10.0.0.5",
                &["gateway `10.0.0.5`: is the VM's own address (10.0.0.5/24)"],
            ),
            (
                "10.0.0.0/24",
                "10.0.0.255",
                &[
                    "ip `10.0.0.0/24`: is the network address of 10.0.0.0/24, not a host's",
                    "gateway `10.0.0.255`: is the broadcast address of 10.0.0.0/24",
                ],
            ),
            (
                "127.0.0.5/8",
                "",
                &["ip `127.0.0.5/8`: is not an address a VM can have"],
            ),
            (
                "x",
                "y",
                &["gateway `y`: must be an IPv4 address", "ip `x`: must be"],
            ),
        ];
        for (ip, gw, want) in cases {
            let got = problems(ip, gw);
            assert_eq!(got.len(), want.len(), "{ip} {gw}: {got:?}");
            for (g, w) in got.iter().zip(want.iter()) {
                assert!(g.starts_with(w), "{ip} {gw}: {g:?} is not {w:?}");
            }
        }
    }

    #[test]
    fn the_spec_checks_its_address_and_quotes_values_safely() {
        let mut s = spec();
        assert_eq!(s.ipconfig(), "ip=10.0.0.5/24,gw=10.0.0.1");
        s.gateway = "10.9.0.1".into();
        s.name = "a\nb\u{1b}[2J".into();
        s.memory_mb = 268_435_457;
        let errors: Vec<String> = s.check().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors,
            [
                "name `a\\nb\\u{1b}[2J`: must be a DNS label: 1-63 letters, digits and `-`, not starting or ending with `-`",
                "memory `268435457`: must be between 16 and 268435456 (MiB)",
                "gateway `10.9.0.1`: is outside 10.0.0.0/24, the subnet of ip 10.0.0.5/24",
            ]
        );
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            vmid_taken: None,
            storages: parse_pvesm_status(PVESM).unwrap(),
            content: vec![("snippets".into(), vec!["local".into()])],
            bridges: vec!["vmbr0".into()],
            image_present: true,
        }
    }

    #[test]
    fn node_checks_name_what_is_missing() {
        let f = facts();
        assert_eq!(spec().check_on_node("pve1", &f), vec![]);
        let mut s = spec();
        s.storage = "nosuch".into();
        s.bridge = "vmbr9".into();
        s.cloud_init = CloudInit::Snippets {
            storage: "local-lvm".into(),
        };
        let mut f = f;
        f.image_present = false;
        f.vmid_taken = Some("VM 105 already exists".into());
        let errors: Vec<String> = s
            .check_on_node("pve1", &f)
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "vmid `105`: VM 105 already exists",
                "storage `nosuch`: no such storage on pve1 (storages: local, local-lvm, nfs1)",
                "snippets_storage `local-lvm`: storage on pve1 does not hold snippets (enable it with `pvesm set local-lvm --content …,snippets`)",
                "bridge `vmbr9`: no such bridge on pve1 (bridges: vmbr0)",
                "image `/var/lib/vz/template/iso/debian-13-genericcloud-amd64.qcow2`: no such file on pve1",
            ]
        );
        s.storage = "nfs1".into();
        assert!(
            s.check_on_node("pve1", &f)[1]
                .to_string()
                .contains("storage is disabled")
        );
    }

    const PVESM: &str =
        "Name             Type     Status     Total (KiB)      Used (KiB) Available (KiB)        %
local             dir     active        98497780        12345678        81084548   12.53%
local-lvm     lvmthin     active       365760512         1234567       364525945    0.34%
nfs1              nfs   disabled               0               0               0      N/A
";

    #[test]
    fn pvesm_status_old_and_new_headers() {
        let rows = parse_pvesm_status(PVESM).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].id, "local-lvm");
        assert_eq!(rows[1].kind, "lvmthin");
        assert_eq!(rows[1].avail_kib, 364525945);
        assert_eq!(rows[2].status, "disabled");
        let old = PVESM.replace(
            "Total (KiB)      Used (KiB) Available (KiB)",
            "     Total            Used       Available",
        );
        assert_eq!(parse_pvesm_status(&old).unwrap(), rows);
        assert!(parse_pvesm_status("local dir\n").is_err());
    }

    #[test]
    fn qm_list_rows() {
        let text = "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n       100 web01                running    2048              10.00 12345     \n       101 VM 101               stopped    512                0.00 0         \n      9000 ubuntu-tmpl          stopped    2048               2.20 0         \n";
        let rows = parse_qm_list(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].name, "web01");
        assert_eq!(
            (rows[0].vmid, rows[0].pid, rows[0].mem_mb),
            (100, 12345, 2048)
        );
        assert_eq!(rows[1].name, "VM 101");
        assert_eq!(rows[1].status, "stopped");
        assert_eq!(rows[2].bootdisk_gb, 2.2);
        assert_eq!(parse_qm_list("").unwrap(), vec![]);
        assert!(parse_qm_list("       100 web01 running\n").is_err());
    }

    #[test]
    fn qm_status_nextid_config() {
        assert_eq!(
            parse_qm_status("status: running\n").as_deref(),
            Some("running")
        );
        assert_eq!(parse_qm_status("").as_deref(), None);
        assert_eq!(parse_nextid("105\n"), Some(105));
        assert_eq!(parse_nextid("\"105\"\n"), Some(105));
        assert_eq!(parse_nextid("abc"), None);
        let cfg = parse_config(
            "agent: 1\nnet0: virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1\nname: web01\n",
        );
        assert_eq!(cfg[2], ("name".into(), "web01".into()));
        assert_eq!(mac_of_net(&cfg[1].1).as_deref(), Some("bc:24:11:aa:bb:cc"));
        assert_eq!(
            mac_of_net("model=virtio,macaddr=BC:24:11:AA:BB:CD").as_deref(),
            Some("bc:24:11:aa:bb:cd")
        );
        assert_eq!(
            nextid_refusal("400 Parameter verification failed.\nvmid: VM 105 already exists\n"),
            "VM 105 already exists"
        );
        assert!(is_missing_vm(
            "Configuration file 'nodes/pve1/qemu-server/105.conf' does not exist"
        ));
        assert!(resize_failed("").is_none());
        assert_eq!(
            resize_failed("shrinking disks is not supported\n").as_deref(),
            Some("shrinking disks is not supported")
        );
    }

    #[test]
    fn guest_ip_prefers_net0_and_skips_loopback_and_link_local() {
        let json = r#"[
   {
      "hardware-address" : "00:00:00:00:00:00",
      "ip-addresses" : [ { "ip-address" : "127.0.0.1", "ip-address-type" : "ipv4", "prefix" : 8 } ],
      "name" : "lo"
   },
   {
      "hardware-address" : "02:42:ac:11:00:09",
      "ip-addresses" : [ { "ip-address" : "172.17.0.9", "ip-address-type" : "ipv4", "prefix" : 16 } ],
      "name" : "docker0"
   },
   {
      "hardware-address" : "bc:24:11:0a:0b:0c",
      "ip-addresses" : [
         { "ip-address" : "fe80::1", "ip-address-type" : "ipv6", "prefix" : 64 },
         { "ip-address" : "169.254.3.4", "ip-address-type" : "ipv4", "prefix" : 16 },
         { "ip-address" : "10.0.0.5", "ip-address-type" : "ipv4", "prefix" : 24 }
      ],
      "name" : "eth0"
   }
]"#;
        assert_eq!(
            guest_ip(json, Some("BC:24:11:0A:0B:0C"))
                .unwrap()
                .as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(guest_ip(json, None).unwrap().as_deref(), Some("172.17.0.9"));
        let no_ip = r#"[{"name":"eth0","hardware-address":"bc:24:11:0a:0b:0c"}]"#;
        assert_eq!(guest_ip(no_ip, Some("bc:24:11:0a:0b:0c")).unwrap(), None);
        assert!(guest_ip("QEMU guest agent is not running", None).is_err());
    }

    #[test]
    fn random_macs_are_proxmox_macs() {
        let m = random_mac();
        assert!(is_mac(&m) && m.starts_with("BC:24:11:"), "{m}");
    }
}
