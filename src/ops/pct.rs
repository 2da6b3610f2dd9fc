//! Proxmox LXC containers: a container spec ([`CtSpec`], read by serde with unknown keys
//! refused) and its validation, the `pct`/`pveam` command lines, parsers of their output
//! (pure functions), and the procedures on a node over [`Remote`]. Containers share the
//! VM id space, the storages and the bridges with VMs, so the shared rules come from
//! [`crate::ops::proxmox`]. Facts: the pct(1) and pveam(1) man pages of PVE 8/9 and
//! PVE/CLI/pct.pm, PVE/CLI/pveam.pm (output layouts).

use crate::ops::cloudinit::is_public_key;
use crate::ops::proxmox::procedures::{QUIET_CHANGE, fail, query, read};
use crate::ops::proxmox::{self as pve, SpecError, Storage};
use crate::ops::remote::{CmdResult, CommandOpts, Remote};
use crate::ops::shell::quote;
use crate::outcome::HostError;
use serde::Deserialize;
use std::time::{Duration, Instant};

/// What a recipe asks `pct::create` for.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct CtSpec {
    /// 0: the next free id of the cluster (the caller asks the node).
    #[serde(default)]
    pub(crate) vmid: u64,
    pub(crate) hostname: String,
    /// A `vztmpl` volume: `local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst`.
    pub(crate) template: String,
    #[serde(default = "one")]
    pub(crate) cores: i64,
    #[serde(default = "memory")]
    pub(crate) memory: i64,
    #[serde(default = "memory")]
    pub(crate) swap: i64,
    /// Size of the root disk in GiB.
    #[serde(default = "disk")]
    pub(crate) disk: i64,
    #[serde(default = "local_lvm")]
    pub(crate) storage: String,
    #[serde(default = "vmbr0")]
    pub(crate) bridge: String,
    #[serde(default = "dhcp")]
    pub(crate) ip: String,
    #[serde(default)]
    pub(crate) gateway: String,
    #[serde(default)]
    pub(crate) dns: Vec<String>,
    #[serde(default = "yes")]
    pub(crate) unprivileged: bool,
    #[serde(default)]
    pub(crate) nesting: bool,
    #[serde(default = "yes")]
    pub(crate) onboot: bool,
    /// Public keys for root (`--ssh-public-keys`).
    #[serde(default)]
    pub(crate) ssh_keys: Vec<String>,
    /// Root's password (`--password`): a value registered with the redactor (as
    /// `passwords::guest` gives), so the logged command shows `***`.
    #[serde(default)]
    pub(crate) password: Option<String>,
    /// Destroy the container when a step after `pct create` fails.
    #[serde(default = "yes")]
    pub(crate) cleanup: bool,
}

fn one() -> i64 {
    1
}
fn memory() -> i64 {
    512
}
fn disk() -> i64 {
    8
}
fn local_lvm() -> String {
    "local-lvm".into()
}
fn vmbr0() -> String {
    "vmbr0".into()
}
fn dhcp() -> String {
    "dhcp".into()
}
fn yes() -> bool {
    true
}

/// The keys of [`CtSpec`] with their defaults, for the help text.
pub(crate) const SPEC_KEYS: &str = "vmid (0: next free), hostname, template (a vztmpl volume, \"local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst\"), cores (1), memory (MiB, 512), swap (MiB, 512), disk (GiB, 8), storage (\"local-lvm\", holds rootdir), bridge (\"vmbr0\"), ip (\"dhcp\" or CIDR), gateway, dns ([…]), unprivileged (true), nesting (false), onboot (true), ssh_keys ([…], root's), password (root's, from passwords::guest), cleanup (true)";

/// A container spec refused before anything was sent to the node.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "CT `{}` was not created; nothing was sent to the node:\n  - {}",
    crate::ops::text::shown(name),
    problems.join("\n  - ")
)]
pub(crate) struct Refused {
    pub(crate) name: String,
    pub(crate) problems: Vec<String>,
}

/// `local:vztmpl/NAME.tar.zst` -> (storage, file name), when it is one.
pub(crate) fn template_parts(volid: &str) -> Option<(&str, &str)> {
    let (storage, rest) = volid.split_once(':')?;
    let name = rest.strip_prefix("vztmpl/")?;
    let ok_name = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
        && [".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2"]
            .iter()
            .any(|s| name.ends_with(s));
    (pve::is_pve_id(storage) && ok_name).then_some((storage, name))
}

/// A template's file name as `pveam available` lists it.
pub(crate) fn is_template_name(name: &str) -> bool {
    template_parts(&format!("local:vztmpl/{name}")).is_some()
}

impl CtSpec {
    /// Everything wrong with the spec that the node is not needed for; a vmid of 0 (the
    /// node picks it) is fine.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out: Vec<SpecError> = Vec::new();
        let mut bad = |field, value: String, problem: &str| {
            out.push(SpecError {
                field,
                value,
                problem: problem.to_string(),
            })
        };
        if self.vmid != 0 && !(pve::VMID_MIN..=pve::VMID_MAX).contains(&self.vmid) {
            bad(
                "vmid",
                self.vmid.to_string(),
                "must be between 100 and 999999999",
            );
        }
        if !pve::is_dns_label(&self.hostname) {
            bad(
                "hostname",
                self.hostname.clone(),
                "must be a DNS label: 1-63 letters, digits and `-`, not starting or ending with `-`",
            );
        }
        if template_parts(&self.template).is_none() {
            bad(
                "template",
                self.template.clone(),
                "must be a container template volume like local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst (see `pveam available`)",
            );
        }
        if self.cores < 1 {
            bad("cores", self.cores.to_string(), "must be at least 1");
        }
        if !pve::MEMORY_MB.contains(&self.memory) {
            bad(
                "memory",
                self.memory.to_string(),
                "must be between 16 and 268435456 (MiB)",
            );
        }
        if self.swap < 0 {
            bad("swap", self.swap.to_string(), "must be 0 or more (MiB)");
        }
        if self.disk < 1 {
            bad("disk", self.disk.to_string(), "must be at least 1 (GiB)");
        }
        if !pve::is_pve_id(&self.storage) {
            bad("storage", self.storage.clone(), "is not a storage ID");
        }
        if !pve::is_pve_id(&self.bridge) {
            bad("bridge", self.bridge.clone(), "is not a bridge name");
        }
        for e in pve::address_problems(&self.ip, &self.gateway) {
            bad(e.field, e.value, &e.problem);
        }
        for ns in &self.dns {
            if ns.parse::<std::net::IpAddr>().is_err() {
                bad("dns", ns.clone(), "must be an IP address");
            }
        }
        let mut problems: Vec<String> = out.iter().map(|e| e.to_string()).collect();
        // Never quoted back: the message would carry the password.
        if let Some(p) = &self.password
            && (p.chars().count() < 5 || p.chars().any(char::is_control))
        {
            problems.push(
                "password: must be at least 5 characters, none of them control characters".into(),
            );
        }
        for (i, key) in self.ssh_keys.iter().enumerate() {
            if !is_public_key(key) {
                problems.push(format!("ssh_keys[{i}]: not an OpenSSH public key line"));
            }
        }
        problems
    }

    /// [`CtSpec::problems`] as the error recipes see.
    pub(crate) fn check(&self) -> Result<(), Refused> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Refused {
                name: self.hostname.clone(),
                problems,
            })
        }
    }

    /// `--net0`: the container's eth0 on the bridge, `ip=dhcp` or a static address.
    pub(crate) fn net0(&self) -> String {
        let mut s = format!("name=eth0,bridge={},ip={}", self.bridge, self.ip);
        if !self.gateway.is_empty() {
            s.push_str(&format!(",gw={}", self.gateway));
        }
        s
    }

    /// `pct create`: the options the container needs instead of cloud-init.
    /// `keys_file` is the node-side file of root's public keys (the CLI takes a path).
    pub(crate) fn create_command(&self, keys_file: Option<&str>) -> String {
        let mut args: Vec<String> = vec![
            "pct".into(),
            "create".into(),
            self.vmid.to_string(),
            quote(&self.template),
        ];
        let mut opt = |k: &str, v: String| {
            args.push(format!("--{k}"));
            args.push(quote(&v));
        };
        opt("hostname", self.hostname.clone());
        opt("cores", self.cores.to_string());
        opt("memory", self.memory.to_string());
        opt("swap", self.swap.to_string());
        opt("rootfs", format!("{}:{}", self.storage, self.disk));
        opt("net0", self.net0());
        if !self.dns.is_empty() {
            opt("nameserver", self.dns.join(" "));
        }
        opt("unprivileged", u8::from(self.unprivileged).to_string());
        if self.nesting {
            opt("features", "nesting=1".into());
        }
        opt("onboot", u8::from(self.onboot).to_string());
        if let Some(f) = keys_file {
            opt("ssh-public-keys", f.to_string());
        }
        if let Some(p) = &self.password {
            opt("password", p.clone());
        }
        args.join(" ")
    }

    /// The node-side file of keys `pct create --ssh-public-keys` reads.
    pub(crate) fn keys_path(&self) -> String {
        format!("/tmp/fleet-ct-keys-{}.pub", self.vmid)
    }
}

/// What a node has, as far as a container spec depends on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CtFacts {
    pub(crate) vmid_taken: Option<String>,
    pub(crate) storages: Vec<Storage>,
    /// Storage IDs that hold `rootdir`, and those that hold `vztmpl`.
    pub(crate) rootdir: Vec<String>,
    pub(crate) vztmpl: Vec<String>,
    pub(crate) bridges: Vec<String>,
    /// The template storage's volumes (`pveam list`), when it could be listed.
    pub(crate) templates: Vec<String>,
}

impl CtSpec {
    /// Checks against what the node has.
    pub(crate) fn problems_on_node(&self, node: &str, facts: &CtFacts) -> Vec<String> {
        let mut out = Vec::new();
        let mut bad = |field: &str, value: &str, problem: String| {
            out.push(format!(
                "{field} `{}`: {problem}",
                crate::ops::text::shown(value)
            ))
        };
        if let Some(owner) = &facts.vmid_taken {
            bad("vmid", &self.vmid.to_string(), owner.clone());
        }
        let storage_problem = |id: &str, content: &str, holds: &[String]| {
            pve::storage_problem(
                node,
                &facts.storages,
                id,
                content,
                holds.iter().any(|h| h == id),
            )
        };
        if let Some(p) = storage_problem(&self.storage, "rootdir", &facts.rootdir) {
            bad("storage", &self.storage, p);
        }
        if let Some((tstore, name)) = template_parts(&self.template) {
            if let Some(p) = storage_problem(tstore, "vztmpl", &facts.vztmpl) {
                bad("template", &self.template, p);
            } else if !facts.templates.iter().any(|t| t == &self.template) {
                bad(
                    "template",
                    &self.template,
                    format!(
                        "not on {node} (fetch it with `pveam download {tstore} {name}`; `pveam available` lists them)"
                    ),
                );
            }
        }
        if let Some(p) = pve::bridge_problem(node, &facts.bridges, &self.bridge) {
            bad("bridge", &self.bridge, p);
        }
        out
    }
}

/// One row of `pct list`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CtRow {
    pub(crate) vmid: u64,
    pub(crate) status: String,
    pub(crate) lock: String,
    pub(crate) name: String,
}

/// Parses `pct list` (printf `%-10s %-10s %-12s %-20s`: VMID, Status, Lock, Name; only
/// the header, or nothing, without containers). The lock column is often empty, so
/// the columns are cut where the header puts them.
pub(crate) fn parse_pct_list(text: &str) -> Result<Vec<CtRow>, pve::UnreadableOutput> {
    let mut out = Vec::new();
    let mut starts = [0usize, 11, 22, 35];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("VMID") {
            let at = |w: &str, d: usize| line.find(w).unwrap_or(d);
            starts = [0, at("Status", 11), at("Lock", 22), at("Name", 35)];
            continue;
        }
        let cut = |a: usize, b: Option<usize>| {
            let end = b.unwrap_or(line.len()).min(line.len());
            line.get(a.min(end)..end).unwrap_or("").trim().to_string()
        };
        let unparsable = || format!("unexpected `pct list` line {}: {line:?}", i + 1);
        let vmid = cut(0, Some(starts[1])).parse().map_err(|_| unparsable())?;
        let status = cut(starts[1], Some(starts[2]));
        if status.is_empty() || status.contains(' ') {
            return Err(unparsable().into());
        }
        out.push(CtRow {
            vmid,
            status,
            lock: cut(starts[2], Some(starts[3])),
            name: cut(starts[3], None),
        });
    }
    Ok(out)
}

/// One template of `pveam available`: its section and file name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Available {
    pub(crate) section: String,
    pub(crate) template: String,
}

/// Parses `pveam available` (printf `%-15s %s`: section, template).
pub(crate) fn parse_pveam_available(text: &str) -> Result<Vec<Available>, pve::UnreadableOutput> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols.as_slice() {
            [] => {}
            [section, template] if is_template_name(template) => out.push(Available {
                section: section.to_string(),
                template: template.to_string(),
            }),
            _ => {
                return Err(
                    format!("unexpected `pveam available` line {}: {line:?}", i + 1).into(),
                );
            }
        }
    }
    Ok(out)
}

/// Parses `pveam list STORAGE` (`NAME SIZE` header, then volume IDs with sizes).
pub(crate) fn parse_pveam_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| template_parts(v).is_some())
        .map(str::to_string)
        .collect()
}

/// The IPv4 address of `ip -4 -o addr show eth0` (`2: eth0    inet 10.0.0.5/24 brd …`),
/// never loopback or link-local.
pub(crate) fn parse_ip_addr(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "inet")?;
        let addr: std::net::Ipv4Addr = words.next()?.split('/').next()?.parse().ok()?;
        (!addr.is_loopback() && !addr.is_link_local() && !addr.is_unspecified())
            .then(|| addr.to_string())
    })
}

/// An unknown CT id, in every `pct` subcommand's words.
pub(crate) fn is_missing_ct(stderr: &str) -> bool {
    stderr.contains("does not exist") && stderr.contains("/lxc/")
}

pub(crate) const LIST_COMMAND: &str = "pct list";

pub(crate) fn status_command(vmid: u64) -> String {
    format!("pct status {vmid}")
}

pub(crate) fn config_command(vmid: u64) -> String {
    format!("pct config {vmid}")
}

/// `pct exec ID -- PROGRAM ARGS…`, each word quoted: the container runs the program
/// itself, no shell on the node in between.
pub(crate) fn exec_command(vmid: u64, argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|w| quote(w)).collect();
    format!("pct exec {vmid} -- {}", words.join(" "))
}

/// How fleet reads a container's address: from inside, as `pct exec` runs it.
pub(crate) fn address_command(vmid: u64) -> String {
    exec_command(
        vmid,
        &["ip", "-4", "-o", "addr", "show", "eth0"].map(String::from),
    )
}

pub(crate) fn available_command(section: Option<&str>) -> String {
    match section {
        Some(s) => format!("pveam available --section {}", quote(s)),
        None => "pveam available".into(),
    }
}

pub(crate) fn pveam_list_command(storage: &str) -> String {
    format!("pveam list {}", quote(storage))
}

pub(crate) fn download_command(storage: &str, template: &str) -> String {
    format!("pveam download {} {}", quote(storage), quote(template))
}

/// A change of a container's power state, or its removal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Power {
    Start,
    Stop,
    Shutdown { timeout_s: u64 },
    Destroy { purge: bool },
}

impl Power {
    pub(crate) fn command(self, vmid: u64) -> String {
        match self {
            Power::Start => format!("pct start {vmid}"),
            Power::Stop => format!("pct stop {vmid}"),
            Power::Shutdown { timeout_s } => {
                format!("pct shutdown {vmid} --timeout {timeout_s} --forceStop 1")
            }
            Power::Destroy { purge: true } => {
                format!("pct destroy {vmid} --purge 1 --destroy-unreferenced-disks 1")
            }
            Power::Destroy { purge: false } => format!("pct destroy {vmid}"),
        }
    }
}

// --- procedures on a node ---

pub(crate) fn list(node: &dyn Remote) -> Result<Vec<CtRow>, HostError> {
    let out = read(node, LIST_COMMAND)?;
    parse_pct_list(&out).map_err(|e| fail(node, format!("{e} on {}", node.name())))
}

/// `running`, `stopped`, ... or None when the node has no such container.
pub(crate) fn status(node: &dyn Remote, vmid: u64) -> Result<Option<String>, HostError> {
    let r = query(node, &status_command(vmid))?;
    if r.code != 0 && is_missing_ct(&r.stderr) {
        return Ok(None);
    }
    if r.code != 0 {
        return Err(fail(
            node,
            format!(
                "`pct status {vmid}` failed on {}: {}",
                node.name(),
                r.stderr.trim()
            ),
        ));
    }
    Ok(pve::parse_qm_status(&r.stdout))
}

pub(crate) fn config(node: &dyn Remote, vmid: u64) -> Result<Vec<(String, String)>, HostError> {
    Ok(pve::parse_config(&read(node, &config_command(vmid))?))
}

pub(crate) fn power(node: &dyn Remote, vmid: u64, action: Power) -> Result<(), HostError> {
    node.command(&action.command(vmid), CommandOpts::CHANGE)
        .map(|_| ())
}

/// Runs `argv` in the container; its exit code and output (a failure is the caller's
/// to judge). Counts as a change: the program may change anything.
pub(crate) fn exec(node: &dyn Remote, vmid: u64, argv: &[String]) -> Result<CmdResult, HostError> {
    let opts = CommandOpts {
        allow_fail: true,
        ..CommandOpts::CHANGE
    };
    node.command(&exec_command(vmid, argv), opts)
}

/// What the node has that `spec` depends on, read with queries only.
pub(crate) fn node_facts(
    node: &dyn Remote,
    node_name: Option<&str>,
    spec: &CtSpec,
) -> Result<CtFacts, HostError> {
    let taken = query(node, &pve::nextid_command(Some(spec.vmid)))?;
    let vmid_taken = (taken.code != 0).then(|| pve::nextid_refusal(&taken.stderr));
    let storages = |cmd: &str| {
        pve::parse_pvesm_status(&read(node, cmd)?)
            .map_err(|e| fail(node, format!("{e} on {}", node.name())))
    };
    let all = storages(pve::PVESM_STATUS_COMMAND)?;
    let ids = |rows: Vec<Storage>| rows.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let rootdir = ids(storages(&pve::pvesm_content_command("rootdir"))?);
    let vztmpl = ids(storages(&pve::pvesm_content_command("vztmpl"))?);
    let templates = match template_parts(&spec.template) {
        Some((tstore, _)) if vztmpl.iter().any(|v| v == tstore) => {
            parse_pveam_list(&read(node, &pveam_list_command(tstore))?)
        }
        _ => Vec::new(),
    };
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
    Ok(CtFacts {
        vmid_taken,
        storages: all,
        rootdir,
        vztmpl,
        bridges,
        templates,
    })
}

/// Validates `spec` against itself and the node, then runs `pct create` with root's
/// keys in a node-side file it removes again. Nothing is sent before every check
/// passed; a failure after `pct create` destroys the container when `cleanup` is set
/// (not in check mode), and says so.
pub(crate) fn create(
    node: &dyn Remote,
    node_name: Option<&str>,
    spec: &CtSpec,
) -> Result<(), HostError> {
    let refused = |problems: Vec<String>| {
        fail(
            node,
            format!(
                "CT {} ({}) was not created on {}; nothing was sent:\n  - {}",
                spec.vmid,
                spec.hostname,
                node.name(),
                problems.join("\n  - ")
            ),
        )
    };
    let local = spec.problems();
    if !local.is_empty() || spec.vmid == 0 {
        let mut p = local;
        if spec.vmid == 0 {
            p.push("vmid `0`: the node's next free id must be asked first".into());
        }
        return Err(refused(p));
    }
    node.activity(&format!(
        "checking CT {} against {}",
        spec.vmid,
        node.name()
    ));
    let facts = node_facts(node, node_name, spec)?;
    let on_node = spec.problems_on_node(node.name(), &facts);
    if !on_node.is_empty() {
        return Err(refused(on_node));
    }
    let keys = (!spec.ssh_keys.is_empty()).then(|| spec.keys_path());
    let made = (|| {
        if let Some(path) = &keys {
            let text = spec.ssh_keys.join("\n") + "\n";
            node.write_file(path, text.as_bytes())?;
        }
        node.activity(&format!("creating CT {} ({})", spec.vmid, spec.hostname));
        node.command(&spec.create_command(keys.as_deref()), CommandOpts::CHANGE)?;
        Ok(())
    })();
    if let Some(path) = &keys {
        let quiet = CommandOpts {
            allow_fail: true,
            ..QUIET_CHANGE
        };
        let _ = node.command(
            &pve::remove_files_command(std::slice::from_ref(path)),
            quiet,
        );
    }
    match made {
        Ok(()) => Ok(()),
        Err(e) if !spec.cleanup || node.check_mode() => Err(e),
        Err(e) => Err(HostError {
            message: format!("{}\n{}", e.message, cleanup(node, spec.vmid)),
            ..e
        }),
    }
}

/// Destroys a container a failed step left, and says what happened.
fn cleanup(node: &dyn Remote, vmid: u64) -> String {
    let may_fail = CommandOpts {
        allow_fail: true,
        ..CommandOpts::CHANGE
    };
    match status(node, vmid) {
        Ok(None) => format!("cleanup: CT {vmid} was not created, nothing to destroy"),
        Ok(Some(_)) => {
            let _ = node.command(&Power::Stop.command(vmid), may_fail);
            match node.command(&Power::Destroy { purge: true }.command(vmid), may_fail) {
                Ok(r) if r.code == 0 => format!("cleanup: destroyed CT {vmid} on {}", node.name()),
                Ok(r) => format!(
                    "cleanup: could not destroy CT {vmid} on {} ({}); remove it by hand with `pct destroy {vmid} --purge 1`",
                    node.name(),
                    r.stderr.trim()
                ),
                Err(e) => format!("cleanup: could not destroy CT {vmid}: {}", e.message),
            }
        }
        Err(e) => format!("cleanup: could not check CT {vmid}: {}", e.message),
    }
}

/// Starts a container [`create`] just made; one that does not start holds nothing
/// yet and is destroyed, and the failure says so.
pub(crate) fn start_new(node: &dyn Remote, vmid: u64) -> Result<(), HostError> {
    let Err(e) = power(node, vmid, Power::Start) else {
        return Ok(());
    };
    let what = match power(node, vmid, Power::Destroy { purge: true }) {
        Ok(()) => format!("destroyed CT {vmid} on {}", node.name()),
        Err(d) => format!("could not destroy CT {vmid}: {}", d.message),
    };
    Err(HostError {
        message: format!("{}\ncleanup: {what}", e.message),
        ..e
    })
}

/// The container's eth0 address, read from inside it with `pct exec`, polled every
/// `interval` until `timeout`. Check mode answers "" (the container was not made).
pub(crate) fn wait_address(
    node: &dyn Remote,
    vmid: u64,
    timeout: Duration,
    interval: Duration,
) -> Result<String, HostError> {
    if node.check_mode() {
        return Ok(String::new());
    }
    let started = Instant::now();
    loop {
        let r = query(node, &address_command(vmid))?;
        let last = if r.code == 0 {
            match parse_ip_addr(&r.stdout) {
                Some(ip) => return Ok(ip),
                None => "eth0 has no IPv4 address yet".to_string(),
            }
        } else {
            let why = r.stderr.trim().to_string();
            if is_missing_ct(&why) {
                return Err(fail(
                    node,
                    format!("no address for CT {vmid} on {}: {why}", node.name()),
                ));
            }
            why
        };
        let waited = started.elapsed();
        node.activity(&format!(
            "CT {vmid}: waiting for its address ({}s of {}s): {last}",
            waited.as_secs(),
            timeout.as_secs()
        ));
        if waited + interval > timeout {
            return Err(fail(
                node,
                format!(
                    "no address for CT {vmid} on {} after {}s; stage reached: CT started, {last}",
                    node.name(),
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(interval);
        if node.aborted() {
            return Err(fail(node, format!("waiting for CT {vmid} was interrupted")));
        }
    }
}

/// `pveam available [--section S]`.
pub(crate) fn available(
    node: &dyn Remote,
    section: Option<&str>,
) -> Result<Vec<Available>, HostError> {
    let out = read(node, &available_command(section))?;
    parse_pveam_available(&out).map_err(|e| fail(node, format!("{e} on {}", node.name())))
}

/// Fetches `template` (a name `pveam available` lists) to `storage` unless it is there;
/// returns its volume ID and whether it was downloaded.
pub(crate) fn download(
    node: &dyn Remote,
    storage: &str,
    template: &str,
) -> Result<(String, bool), HostError> {
    if !pve::is_pve_id(storage) || !is_template_name(template) {
        return Err(fail(
            node,
            format!(
                "pveam download {}: `{}` must be a storage ID and `{}` a template name from `pveam available`; nothing was sent",
                crate::ops::text::shown(storage),
                crate::ops::text::shown(storage),
                crate::ops::text::shown(template)
            ),
        ));
    }
    let volid = format!("{storage}:vztmpl/{template}");
    if parse_pveam_list(&read(node, &pveam_list_command(storage))?).contains(&volid) {
        return Ok((volid, false));
    }
    node.command(&download_command(storage, template), CommandOpts::CHANGE)?;
    Ok((volid, true))
}

/// The options map of `pct::address`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddressOpts {
    #[serde(
        default = "two_minutes",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) timeout: Duration,
    #[serde(
        default = "two_seconds",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) interval: Duration,
}

fn two_minutes() -> Duration {
    Duration::from_secs(120)
}

fn two_seconds() -> Duration {
    Duration::from_secs(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::fake::Scripted;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3xGcJc0Tq5b6m0yQm6o7ZlJ4W2l8rN5o1fNwzJX6c admin@laptop";
    const TEMPLATE: &str = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

    fn spec(extra: serde_json::Value) -> CtSpec {
        let mut s = serde_json::json!({"vmid": 105, "hostname": "ct-1", "template": TEMPLATE, "ssh_keys": [KEY]});
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(s).unwrap()
    }

    #[test]
    fn the_create_command_carries_what_cloud_init_would() {
        assert_eq!(
            spec(serde_json::json!({})).create_command(Some("/tmp/fleet-ct-keys-105.pub")),
            "pct create 105 local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst --hostname ct-1 --cores 1 --memory 512 --swap 512 --rootfs local-lvm:8 --net0 name=eth0,bridge=vmbr0,ip=dhcp --unprivileged 1 --onboot 1 --ssh-public-keys /tmp/fleet-ct-keys-105.pub"
        );
        let s = spec(serde_json::json!({
            "ip": "10.0.0.5/24", "gateway": "10.0.0.1", "dns": ["1.1.1.1", "9.9.9.9"],
            "nesting": true, "unprivileged": false, "onboot": false, "cores": 2,
            "memory": 1024, "swap": 0, "disk": 4, "storage": "tank", "bridge": "vmbr1"
        }));
        assert_eq!(
            s.create_command(None),
            "pct create 105 local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst --hostname ct-1 --cores 2 --memory 1024 --swap 0 --rootfs tank:4 --net0 name=eth0,bridge=vmbr1,ip=10.0.0.5/24,gw=10.0.0.1 --nameserver '1.1.1.1 9.9.9.9' --unprivileged 0 --features nesting=1 --onboot 0"
        );
    }

    #[test]
    fn the_password_is_an_option_and_checked_unquoted() {
        let s = spec(serde_json::json!({"password": "caVCiWrkp7NUyvJhiJxf"}));
        assert!(
            s.create_command(None)
                .ends_with(" --onboot 1 --password caVCiWrkp7NUyvJhiJxf")
        );
        assert_eq!(s.problems(), Vec::<String>::new());
        let s = spec(serde_json::json!({"password": "ab\ncd-xyz"}));
        let problems = s.problems();
        assert_eq!(
            problems,
            ["password: must be at least 5 characters, none of them control characters"]
        );
        assert!(!problems[0].contains("xyz"));
    }

    #[test]
    fn power_and_query_commands() {
        assert_eq!(Power::Start.command(105), "pct start 105");
        assert_eq!(Power::Stop.command(105), "pct stop 105");
        assert_eq!(
            Power::Shutdown { timeout_s: 30 }.command(105),
            "pct shutdown 105 --timeout 30 --forceStop 1"
        );
        assert_eq!(
            Power::Destroy { purge: true }.command(105),
            "pct destroy 105 --purge 1 --destroy-unreferenced-disks 1"
        );
        assert_eq!(status_command(105), "pct status 105");
        assert_eq!(config_command(105), "pct config 105");
        assert_eq!(
            address_command(105),
            "pct exec 105 -- ip -4 -o addr show eth0"
        );
        assert_eq!(
            exec_command(105, &["sh".into(), "-c".into(), "echo $HOME; id".into()]),
            "pct exec 105 -- sh -c 'echo $HOME; id'"
        );
        assert_eq!(
            download_command("local", "debian-12-standard_12.7-1_amd64.tar.zst"),
            "pveam download local debian-12-standard_12.7-1_amd64.tar.zst"
        );
        assert_eq!(
            available_command(Some("system")),
            "pveam available --section system"
        );
    }

    #[test]
    fn every_local_problem_is_named_at_once() {
        let s = spec(serde_json::json!({
            "vmid": 42, "hostname": "Bad_Host", "template": "/var/lib/vz/template/cache/x.tar.zst",
            "memory": 8, "swap": -1, "disk": 0, "storage": "-x", "ip": "10.0.0.5",
            "ssh_keys": ["nope"]
        }));
        assert_eq!(
            s.check().unwrap_err().problems,
            [
                "vmid `42`: must be between 100 and 999999999",
                "hostname `Bad_Host`: must be a DNS label: 1-63 letters, digits and `-`, not starting or ending with `-`",
                "template `/var/lib/vz/template/cache/x.tar.zst`: must be a container template volume like local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst (see `pveam available`)",
                "memory `8`: must be between 16 and 268435456 (MiB)",
                "swap `-1`: must be 0 or more (MiB)",
                "disk `0`: must be at least 1 (GiB)",
                "storage `-x`: is not a storage ID",
                "ip `10.0.0.5`: must be `dhcp` or an IPv4 CIDR like 10.0.0.5/24",
                "ssh_keys[0]: not an OpenSSH public key line",
            ]
        );
        assert_eq!(spec(serde_json::json!({"vmid": 0})).check(), Ok(()));
        assert!(template_parts("local:vztmpl/../x.tar.zst").is_none());
        assert!(template_parts("local:vztmpl/a b.tar.zst").is_none());
        assert!(template_parts("local:iso/x.tar.zst").is_none());
        let e = serde_json::from_value::<CtSpec>(
            serde_json::json!({"hostname": "a", "template": TEMPLATE, "memroy": 1}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `memroy`"), "{e}");
    }

    const PCT_LIST: &str = "VMID       Status     Lock         Name                \n105        running                 ct-1                \n106        stopped    backup       ct-2                \n";

    #[test]
    fn parsers() {
        assert_eq!(
            parse_pct_list(PCT_LIST).unwrap(),
            [
                CtRow {
                    vmid: 105,
                    status: "running".into(),
                    lock: "".into(),
                    name: "ct-1".into()
                },
                CtRow {
                    vmid: 106,
                    status: "stopped".into(),
                    lock: "backup".into(),
                    name: "ct-2".into()
                },
            ]
        );
        assert!(parse_pct_list("").unwrap().is_empty());
        assert!(parse_pct_list("VMID Status Lock Name\nnope\n").is_err());

        let available = "mail            proxmox-mail-gateway-8.1-standard_8.1-1_amd64.tar.zst\nsystem          debian-12-standard_12.7-1_amd64.tar.zst\n";
        let a = parse_pveam_available(available).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(
            a[1],
            Available {
                section: "system".into(),
                template: "debian-12-standard_12.7-1_amd64.tar.zst".into()
            }
        );
        assert!(parse_pveam_available("system x; rm -rf /\n").is_err());

        let list = "NAME                                                         SIZE  \nlocal:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst         120.65MB\n";
        assert_eq!(parse_pveam_list(list), [TEMPLATE]);

        let ip = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n";
        assert_eq!(parse_ip_addr(ip).as_deref(), Some("10.0.0.5"));
        assert_eq!(parse_ip_addr(""), None);

        assert_eq!(
            pve::parse_qm_status("status: running\n").as_deref(),
            Some("running")
        );
        assert!(is_missing_ct(
            "Configuration file 'nodes/pve1/lxc/105.conf' does not exist"
        ));
        assert!(!is_missing_ct(
            "Configuration file 'nodes/pve1/qemu-server/105.conf' does not exist"
        ));
    }

    const PVESM: &str = "Name Type Status Total Used Available %
local dir active 100 10 90 10%
local-lvm lvmthin active 100 10 90 10%
";

    fn node_checks() -> Vec<(&'static str, i64, &'static str)> {
        vec![
            ("pvesh get /cluster/nextid --vmid 105", 0, "105\n"),
            ("pvesm status", 0, PVESM),
            (
                "pvesm status --content rootdir",
                0,
                "local-lvm lvmthin active 1 1 1 1%\n",
            ),
            (
                "pvesm status --content vztmpl",
                0,
                "local dir active 1 1 1 1%\n",
            ),
            (
                "pveam list local",
                0,
                "NAME SIZE\nlocal:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst 120.65MB\n",
            ),
            ("hostname", 0, "pve1\n"),
            ("pvesh get /nodes/pve1/network", 0, r#"[{"iface":"vmbr0"}]"#),
        ]
    }

    #[test]
    fn create_checks_the_node_then_passes_the_keys_in_a_file_it_removes() {
        let mut script = node_checks();
        script.push(("write /tmp/fleet-ct-keys-105.pub", 0, ""));
        script.push(("pct create 105", 0, ""));
        script.push(("rm -f /tmp/fleet-ct-keys-105.pub", 0, ""));
        let node = Scripted::new(&script);
        create(&node, None, &spec(serde_json::json!({}))).unwrap();
        assert_eq!(node.written.lock().unwrap()[0].1, format!("{KEY}\n"));
        assert_eq!(node.ran().len(), 10);
    }

    #[test]
    fn a_missing_template_or_storage_sends_nothing() {
        let mut script = node_checks();
        script[4].2 = "NAME SIZE\n"; // no template
        script[2].2 = ""; // local-lvm does not hold rootdir
        let node = Scripted::new(&script);
        let e = create(&node, None, &spec(serde_json::json!({}))).unwrap_err();
        assert!(
            e.message
                .starts_with("CT 105 (ct-1) was not created on fake; nothing was sent:"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("storage `local-lvm`: storage on fake does not hold rootdir"),
            "{}",
            e.message
        );
        assert!(e.message.contains("template `local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst`: not on fake (fetch it with `pveam download local debian-12-standard_12.7-1_amd64.tar.zst`"), "{}", e.message);
        assert!(!node.ran().iter().any(|c| c.starts_with("pct create")));

        // Bad local values: nothing at all is sent.
        let node = Scripted::new(&[]);
        let e = create(&node, None, &spec(serde_json::json!({"hostname": "-x"}))).unwrap_err();
        assert!(e.message.contains("hostname `-x`"), "{}", e.message);
        assert!(node.ran().is_empty());
    }

    #[test]
    fn a_failed_create_destroys_what_was_made() {
        let mut script = node_checks();
        script.push(("write /tmp/fleet-ct-keys-105.pub", 0, ""));
        script.push(("pct create 105", 1, ""));
        script.push(("rm -f /tmp/fleet-ct-keys-105.pub", 0, ""));
        script.push(("pct status 105", 0, "status: stopped\n"));
        script.push(("pct stop 105", 0, ""));
        script.push(("pct destroy 105 --purge 1", 0, ""));
        let node = Scripted::new(&script);
        let e = create(&node, None, &spec(serde_json::json!({}))).unwrap_err();
        assert!(
            e.message.ends_with("\ncleanup: destroyed CT 105 on fake"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_address_wait_and_download() {
        let node = Scripted::new(&[
            ("pct exec 105 -- ip -4 -o addr show eth0", 0, ""),
            (
                "pct exec 105 -- ip -4 -o addr show eth0",
                0,
                "2: eth0    inet 10.0.0.7/24 brd 10.0.0.255 scope global eth0\n",
            ),
        ]);
        let ip = wait_address(&node, 105, Duration::from_secs(60), Duration::ZERO).unwrap();
        assert_eq!(ip, "10.0.0.7");

        let node = Scripted::new(&[
            ("pveam list local", 0, "NAME SIZE\n"),
            (
                "pveam download local debian-12-standard_12.7-1_amd64.tar.zst",
                0,
                "",
            ),
        ]);
        assert_eq!(
            download(&node, "local", "debian-12-standard_12.7-1_amd64.tar.zst").unwrap(),
            (TEMPLATE.to_string(), true)
        );
        let node = Scripted::new(&[]);
        assert!(download(&node, "local", "x; rm -rf /").is_err());
        assert!(node.ran().is_empty());
    }
}
