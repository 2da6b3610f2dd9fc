//! Port forwarding on an edge host with nftables (`nat::`): every rule fleet manages
//! lives in its own table `ip fleet_nat`, so tables fleet did not write are never
//! touched. The table is one file, /etc/fleet/nat.nft, that deletes and recreates it in
//! one `nft -f` transaction (never half applied) and carries the forwards as a JSON
//! state line, so the file on the edge is the record fleet reads back. A systemd unit
//! (`fleet-nat.service`, `PartOf=`/`After=nftables.service`) loads it at boot and after
//! nftables.service reloads its own `flush ruleset` configuration.

use crate::inventory::ResolvedHost;
use crate::ops::files::FileOpts;
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::Argv;
use crate::ops::ufw;
use crate::outcome::HostError;
use std::net::Ipv4Addr;

pub(crate) const RULES_FILE: &str = "/etc/fleet/nat.nft";
pub(crate) const SYSCTL_FILE: &str = "/etc/sysctl.d/60-fleet-nat.conf";
pub(crate) const UNIT_FILE: &str = "/etc/systemd/system/fleet-nat.service";
pub(crate) const UNIT: &str = "fleet-nat.service";
/// What starts the line of the rules file that holds the forwards as JSON.
const STATE_MARK: &str = "# fleet-nat-state: ";
/// The comment of the ufw route rules fleet adds for forwards (not `fleet:`, so
/// `ufw::apply` leaves them alone).
pub(crate) const UFW_MARK: &str = "fleet-nat:";
const SYSCTL: &str =
    "# Managed by fleet (nat::): the edge forwards packets.\nnet.ipv4.ip_forward = 1\n";

pub(crate) const UNIT_TEXT: &str = "# Managed by fleet (nat::).
[Unit]
Description=fleet port forwarding (nftables table ip fleet_nat)
After=nftables.service network-pre.target
Before=network.target
PartOf=nftables.service
ReloadPropagatedFrom=nftables.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/fleet/nat.nft
ExecReload=/usr/sbin/nft -f /etc/fleet/nat.nft
ExecStop=-/usr/sbin/nft delete table ip fleet_nat

[Install]
WantedBy=multi-user.target
";

/// A forward or edge setting fleet refuses, before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NatError {
    #[error("`{field}` {value} is not a port (1-65535)")]
    Port { field: &'static str, value: i64 },
    #[error("proto `{0}` is not tcp or udp")]
    Proto(String),
    #[error("to_host `{0}` is not in the inventory: forward only to inventory hosts")]
    UnknownTarget(String),
    #[error(
        "to_host `{0}` has no internal address: set its host var internal_address to an IPv4 address (its address `{1}` is not one)"
    )]
    NoInternalAddress(String, String),
    #[error("{0}'s internal_address `{1}` is not an IPv4 address")]
    BadInternalAddress(String, String),
    #[error("`{0}` is not a host name fleet can forward to (letters, digits, . _ -)")]
    BadName(String),
    #[error(
        "port {port} is the SSH port of {edge}: forwarding it would cut fleet off from {edge}; pick another public port"
    )]
    SshPort { port: u16, edge: String },
    #[error(
        "You cannot forward a source port on the same host to different servers: {proto} port {port} of {edge} goes to {first} and to {second}; remove one (nat::remove(edge, #{{ port: {port}, proto: \"{proto}\" }}))"
    )]
    Conflict {
        edge: String,
        port: u16,
        proto: Proto,
        first: String,
        second: String,
    },
    #[error(
        "comment `{0}` may hold only letters, digits, spaces and . _ - : , / + @ (at most 100)"
    )]
    Comment(String),
    #[error("masquerade `{0}` is not true, false or an IPv4 network like 10.0.0.0/24")]
    Masquerade(String),
    #[error("the host var `nat` of {0} is not valid: {1}")]
    Settings(String, String),
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub(crate) fn parse(s: &str) -> Result<Proto, NatError> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(NatError::Proto(other.to_string())),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a forward came from: the edge's `nat` var (`nat::apply` owns those) or a
/// recipe's `nat::forward` (kept until `nat::remove`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Origin {
    Inventory,
    Recipe,
}

impl Origin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Inventory => "inventory",
            Origin::Recipe => "recipe",
        }
    }
}

fn tcp() -> String {
    "tcp".into()
}

/// A forward as a recipe or the inventory writes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardInput {
    pub(crate) port: i64,
    #[serde(default = "tcp")]
    pub(crate) proto: String,
    pub(crate) to_host: String,
    /// Default: `port`.
    #[serde(default)]
    pub(crate) to_port: Option<i64>,
    #[serde(default)]
    pub(crate) comment: String,
}

/// The options map of `nat::remove`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveInput {
    pub(crate) port: i64,
    #[serde(default = "tcp")]
    pub(crate) proto: String,
}

impl RemoveInput {
    pub(crate) fn key(&self) -> Result<(u16, Proto), NatError> {
        Ok((port("port", self.port)?, Proto::parse(&self.proto)?))
    }
}

/// `masquerade` of the `nat` var: the internal network's outbound traffic leaves with
/// the edge's address.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum MasqueradeInput {
    /// true: the network of the edge's `internal_address` (read from its interfaces).
    #[default]
    #[serde(skip)]
    Auto,
    Flag(bool),
    Network(String),
}

/// The edge's host var `nat`: `{ masquerade = true, forwards = [{ port, proto, to_host,
/// to_port, comment }] }`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EdgeSettings {
    #[serde(default)]
    pub(crate) masquerade: MasqueradeInput,
    #[serde(default)]
    pub(crate) forwards: Vec<ForwardInput>,
}

/// How the masquerading network is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Masquerade {
    Off,
    /// The network of this address of the edge, read from `ip -o -4 addr`.
    Of(Ipv4Addr),
    Network(Net),
}

/// An IPv4 network, its address masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Net {
    pub(crate) addr: Ipv4Addr,
    pub(crate) len: u8,
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Net {
    /// `10.1.2.3/24` -> 10.1.2.0/24.
    pub(crate) fn parse(s: &str) -> Option<Net> {
        let (a, l) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let len: u8 = l.parse().ok().filter(|l| *l <= 32)?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Some(Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            len,
        })
    }
}

/// One port forward as the edge holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Forward {
    pub(crate) port: u16,
    pub(crate) proto: Proto,
    pub(crate) to_host: String,
    pub(crate) to_address: Ipv4Addr,
    pub(crate) to_port: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) comment: String,
    pub(crate) origin: Origin,
}

impl Forward {
    fn key(&self) -> (u16, Proto) {
        (self.port, self.proto)
    }

    /// The rule's text in the table's prerouting chain: only packets for the edge's
    /// own addresses, so traffic the edge routes for others is never redirected.
    fn nft_rule(&self) -> String {
        let comment = if self.comment.is_empty() {
            self.to_host.clone()
        } else {
            format!("{}: {}", self.to_host, self.comment)
        };
        format!(
            "fib daddr type local {} dport {} dnat to {}:{} comment \"{comment}\"",
            self.proto, self.port, self.to_address, self.to_port
        )
    }

    /// The ufw route rule that lets the forwarded traffic through ufw's forward chain,
    /// as `ufw show added` prints it (without `ufw`).
    pub(crate) fn ufw_spec(&self) -> String {
        format!(
            "route allow to {} port {} proto {}",
            self.to_address, self.to_port, self.proto
        )
    }

    fn ufw_add(&self) -> Argv {
        Argv::new("ufw")
            .args(self.ufw_spec().split(' '))
            .args(["comment", &format!("{UFW_MARK} {}", self.to_host)])
    }
}

/// `ufw route delete allow to …`, from a rule line as `ufw show added` printed it.
fn ufw_delete(spec: &str) -> Argv {
    let mut words = spec.split_whitespace();
    let first = words.next().unwrap_or_default();
    Argv::new("ufw").args([first, "delete"]).args(words)
}

fn port(field: &'static str, value: i64) -> Result<u16, NatError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(NatError::Port { field, value })
}

fn valid_name(name: &str) -> Result<(), NatError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NatError::BadName(name.escape_debug().to_string()))
    }
}

fn valid_comment(c: &str) -> Result<(), NatError> {
    let ok = c.len() <= 100
        && c.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || " ._-:,/+@".contains(ch));
    if ok {
        Ok(())
    } else {
        Err(NatError::Comment(c.escape_debug().to_string()))
    }
}

/// A host's internal address: its var `internal_address` when set, else its `address`
/// when that is an IPv4 literal.
pub(crate) fn internal_address(h: &ResolvedHost) -> Result<Ipv4Addr, NatError> {
    match h.vars.get("internal_address") {
        Some(v) => {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            text.parse()
                .map_err(|_| NatError::BadInternalAddress(h.name.clone(), text))
        }
        None => h
            .address
            .parse()
            .map_err(|_| NatError::NoInternalAddress(h.name.clone(), h.address.clone())),
    }
}

/// The ports the edge's sshd is reached on, as the inventory says: its `port` (22 when
/// unset) and the `ssh.port` var of `fleet configure`.
pub(crate) fn ssh_ports(edge: &ResolvedHost) -> Vec<u16> {
    let mut ports = vec![edge.port.unwrap_or(22)];
    if let Some(p) = edge
        .vars
        .get("ssh")
        .and_then(|s| s.get("port"))
        .and_then(|p| p.as_u64())
        .and_then(|p| u16::try_from(p).ok())
    {
        ports.push(p);
    }
    ports
}

/// What a forward is checked against: the edge, and how a target name becomes an
/// internal address (an inventory lookup).
pub(crate) struct Context<'a> {
    pub(crate) edge: &'a ResolvedHost,
    pub(crate) resolve: &'a dyn Fn(&str) -> Option<ResolvedHost>,
}

impl ForwardInput {
    /// The forward, every field checked and its target resolved; nothing is sent yet.
    pub(crate) fn check(&self, cx: &Context, origin: Origin) -> Result<Forward, NatError> {
        let public = port("port", self.port)?;
        let to_port = port("to_port", self.to_port.unwrap_or(self.port))?;
        let proto = Proto::parse(&self.proto)?;
        valid_name(&self.to_host)?;
        valid_comment(&self.comment)?;
        if ssh_ports(cx.edge).contains(&public) && proto == Proto::Tcp {
            return Err(NatError::SshPort {
                port: public,
                edge: cx.edge.name.clone(),
            });
        }
        let target = (cx.resolve)(&self.to_host)
            .ok_or_else(|| NatError::UnknownTarget(self.to_host.clone()))?;
        Ok(Forward {
            port: public,
            proto,
            to_host: self.to_host.clone(),
            to_address: internal_address(&target)?,
            to_port,
            comment: self.comment.clone(),
            origin,
        })
    }
}

impl EdgeSettings {
    /// The edge's `nat` var (none: no forwards, masquerading on).
    pub(crate) fn of(edge: &ResolvedHost) -> Result<EdgeSettings, NatError> {
        match edge.vars.get("nat") {
            None => Ok(EdgeSettings::default()),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| NatError::Settings(edge.name.clone(), e.to_string())),
        }
    }

    pub(crate) fn masquerade(&self, edge: &ResolvedHost) -> Result<Masquerade, NatError> {
        Ok(match &self.masquerade {
            MasqueradeInput::Flag(false) => Masquerade::Off,
            MasqueradeInput::Auto | MasqueradeInput::Flag(true) => {
                match edge.vars.get("internal_address") {
                    // No internal address: nothing to masquerade for.
                    None => Masquerade::Off,
                    Some(_) => Masquerade::Of(internal_address(edge)?),
                }
            }
            MasqueradeInput::Network(s) => {
                Masquerade::Network(Net::parse(s).ok_or_else(|| NatError::Masquerade(s.clone()))?)
            }
        })
    }

    /// The inventory's forwards, checked, one per public port and protocol.
    pub(crate) fn forwards(&self, cx: &Context) -> Result<Vec<Forward>, NatError> {
        let mut out: Vec<Forward> = Vec::new();
        for f in &self.forwards {
            out = with_forward(out, f.check(cx, Origin::Inventory)?, &cx.edge.name)?;
        }
        Ok(out)
    }
}

/// `forwards` with `f` added, or replacing the one for its port that goes to the same
/// host; a port that goes to another host is refused.
pub(crate) fn with_forward(
    mut forwards: Vec<Forward>,
    f: Forward,
    edge: &str,
) -> Result<Vec<Forward>, NatError> {
    if let Some(old) = forwards.iter_mut().find(|o| o.key() == f.key()) {
        if old.to_host != f.to_host {
            return Err(NatError::Conflict {
                edge: edge.to_string(),
                port: f.port,
                proto: f.proto,
                first: old.to_host.clone(),
                second: f.to_host,
            });
        }
        *old = f;
    } else {
        forwards.push(f);
    }
    forwards.sort_by_key(Forward::key);
    Ok(forwards)
}

/// The recipe-made forwards on the edge plus the inventory's (which replace every
/// inventory forward the edge had); a port both give to different hosts is refused.
pub(crate) fn merged(
    current: &[Forward],
    inventory: Vec<Forward>,
    edge: &str,
) -> Result<Vec<Forward>, NatError> {
    let mut out = inventory;
    for f in current.iter().filter(|f| f.origin == Origin::Recipe) {
        match out.iter().find(|o| o.key() == f.key()) {
            Some(o) if o.to_host != f.to_host => {
                return Err(NatError::Conflict {
                    edge: edge.to_string(),
                    port: f.port,
                    proto: f.proto,
                    first: f.to_host.clone(),
                    second: o.to_host.clone(),
                });
            }
            Some(_) => {}
            None => out.push(f.clone()),
        }
    }
    out.sort_by_key(Forward::key);
    Ok(out)
}

/// The rules file: the state line, then one transaction that replaces the table.
pub(crate) fn render(forwards: &[Forward], masquerade: Option<Net>) -> String {
    let state = serde_json::to_string(forwards).expect("forwards serialize");
    let mut text = format!(
        "#!/usr/sbin/nft -f\n# Managed by fleet (nat::): port forwarding of this edge. Changes by hand are lost.\n# Loaded by {UNIT}; `nft -f` on this file replaces the table ip fleet_nat and nothing else.\n{STATE_MARK}{state}\ntable ip fleet_nat {{}}\ndelete table ip fleet_nat\ntable ip fleet_nat {{\n\tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
    );
    for f in forwards {
        text.push_str(&format!("\t\t{}\n", f.nft_rule()));
    }
    text.push_str(
        "\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    if let Some(n) = masquerade {
        text.push_str(&format!(
            "\t\tip saddr {n} ip daddr != {n} masquerade comment \"internal network\"\n"
        ));
    }
    text.push_str("\t}\n}\n");
    text
}

/// The forwards of a rules file fleet wrote (none when there is no file).
pub(crate) fn parse(text: &str) -> Result<Vec<Forward>, serde_json::Error> {
    match text.lines().find_map(|l| l.strip_prefix(STATE_MARK)) {
        None => Ok(Vec::new()),
        Some(json) => serde_json::from_str(json),
    }
}

/// The network `addr` is on, from `ip -o -4 addr show`.
pub(crate) fn network_of(ip_addr: &str, addr: Ipv4Addr) -> Option<Net> {
    ip_addr.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        words.find(|w| *w == "inet")?;
        let cidr = words.next()?;
        let (a, _) = cidr.split_once('/')?;
        (a.parse::<Ipv4Addr>().ok()? == addr)
            .then(|| Net::parse(cidr))
            .flatten()
    })
}

// The procedure on the edge.

/// What the edge is: from one query.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Probe {
    pub(crate) root: bool,
    pub(crate) nft: bool,
    pub(crate) systemd: bool,
    pub(crate) enabled: bool,
    pub(crate) active: bool,
    pub(crate) ip_forward: bool,
    pub(crate) ufw: bool,
}

pub(crate) const PROBE: &str = "echo uid=$(id -u); \
if command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]; then echo nft=yes; fi; \
if [ -d /run/systemd/system ]; then echo systemd=yes; \
echo enabled=$(systemctl is-enabled fleet-nat.service 2>/dev/null); \
echo active=$(systemctl is-active fleet-nat.service 2>/dev/null); fi; \
echo ip_forward=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null); \
if command -v ufw >/dev/null 2>&1 || [ -x /usr/sbin/ufw ]; then echo ufw=yes; fi";

pub(crate) fn parse_probe(text: &str) -> Probe {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_string()
    };
    Probe {
        root: value("uid") == "0",
        nft: value("nft") == "yes",
        systemd: value("systemd") == "yes",
        enabled: value("enabled") == "enabled",
        active: value("active") == "active",
        ip_forward: value("ip_forward") == "1",
        ufw: value("ufw") == "yes",
    }
}

fn fail(r: &dyn Remote, message: String) -> HostError {
    HostError::new(r.name(), message)
}

fn as_root(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::CHANGE
    }
}

fn query(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::QUERY
    }
}

/// The edge as the procedures start from it: what it is, its rules file and forwards.
pub(crate) struct EdgeState {
    pub(crate) probe: Probe,
    pub(crate) text: String,
    pub(crate) forwards: Vec<Forward>,
}

/// Reads the edge: refused when nftables is missing or the state line is broken.
pub(crate) fn read(r: &dyn Remote) -> Result<EdgeState, HostError> {
    let out = r.command(PROBE, CommandOpts::QUERY)?;
    let probe = parse_probe(&out.stdout);
    if !probe.nft {
        return Err(fail(
            r,
            format!(
                "nft is not installed on {}: install nftables first (apt: nftables)",
                r.name()
            ),
        ));
    }
    let cat = format!("if [ -f {RULES_FILE} ]; then cat -- {RULES_FILE}; fi");
    let text = r
        .command(
            &cat,
            CommandOpts {
                allow_fail: false,
                ..CommandOpts::QUERY
            },
        )?
        .stdout;
    let forwards = parse(&text).map_err(|e| {
        fail(
            r,
            format!(
                "the state line of {RULES_FILE} on {} cannot be read ({e}); remove the file to start afresh",
                r.name()
            ),
        )
    })?;
    Ok(EdgeState {
        probe,
        text,
        forwards,
    })
}

/// The masquerading network, reading the edge's interfaces when it is the network of
/// one of its addresses.
fn masquerade_net(r: &dyn Remote, m: &Masquerade) -> Result<Option<Net>, HostError> {
    match m {
        Masquerade::Off => Ok(None),
        Masquerade::Network(n) => Ok(Some(*n)),
        Masquerade::Of(addr) => {
            let out = r.command("ip -o -4 addr show", CommandOpts::QUERY)?;
            network_of(&out.stdout, *addr).map(Some).ok_or_else(|| {
                fail(
                    r,
                    format!(
                        "{} has no interface with its internal_address {addr}: fix the var, or set nat.masquerade to a network or false",
                        r.name()
                    ),
                )
            })
        }
    }
}

/// Makes the edge hold exactly `forwards` (and masquerading), persisted and loaded:
/// the rules file checked by `nft -c` first, written, loaded in one transaction (the
/// old file put back if loading fails), `net.ipv4.ip_forward=1` now and in sysctl.d,
/// the unit written and enabled where systemd runs, ufw route rules for each forward
/// when ufw is installed. Returns the steps that changed something.
pub(crate) fn apply(
    r: &dyn Remote,
    edge: &EdgeState,
    forwards: &[Forward],
    masquerade: &Masquerade,
) -> Result<Vec<String>, HostError> {
    let p = &edge.probe;
    let sudo = !p.root;
    let net = masquerade_net(r, masquerade)?;
    let text = render(forwards, net);
    let mut changes = Vec::new();
    let loaded = r
        .command("nft list table ip fleet_nat >/dev/null 2>&1", query(sudo))?
        .code
        == 0;
    if text != edge.text || !loaded {
        changes.push(load(r, &edge.text, &text, sudo)?.to_string());
    }
    boot(r, p, &mut changes)?;
    if p.ufw && ufw_routes(r, forwards, sudo)? {
        changes.push("ufw".to_string());
    }
    Ok(changes)
}

/// Checks `text` with `nft -c` (also in --check), writes it as the rules file and loads
/// it in one transaction, putting `old` back if loading fails; "rules" when the file
/// changed, "loaded" when only the kernel lacked the table.
fn load(r: &dyn Remote, old: &str, text: &str, sudo: bool) -> Result<&'static str, HostError> {
    // Checked before anything changes, also in --check.
    let check = Argv::new("nft").args(["-c", "-f", "/dev/stdin"]);
    let line = if sudo {
        check.sudo_line()
    } else {
        check.line()
    };
    let out = r.exec(&line, None, Some(text.as_bytes()), false)?;
    if out.code != 0 {
        return Err(fail(
            r,
            format!(
                "nft -c refused the rules for {}; nothing was changed: {}",
                r.name(),
                crate::ops::text::tail(&out.stderr, 5)
            ),
        ));
    }
    if !r.check_mode() {
        let mkdir = Argv::new("mkdir").args(["-p", "/etc/fleet"]);
        r.program(
            &mkdir,
            CommandOpts {
                changed: Some(false),
                ..as_root(sudo)
            },
        )?;
    }
    let file = root_file(sudo);
    let wrote = crate::ops::files::write_file(r, RULES_FILE, text.as_bytes(), &file)?;
    if r.check_mode() {
        r.out(&format!(
            "would load {RULES_FILE} (nft -f: the table ip fleet_nat replaced in one transaction)"
        ));
    } else {
        let load = r.program(
            &Argv::new("nft").args(["-f", RULES_FILE]),
            CommandOpts {
                allow_fail: true,
                ..as_root(sudo)
            },
        )?;
        if load.code != 0 {
            crate::ops::files::write_file(r, RULES_FILE, old.as_bytes(), &file)?;
            return Err(fail(
                r,
                format!(
                    "nft -f {RULES_FILE} failed on {}; the old file was put back: {}",
                    r.name(),
                    crate::ops::text::tail(&load.stderr, 5)
                ),
            ));
        }
    }
    Ok(if wrote { "rules" } else { "loaded" })
}

/// What makes forwarding outlive a reboot: `net.ipv4.ip_forward=1` now and in
/// sysctl.d, the unit written, enabled and started where systemd runs.
fn boot(r: &dyn Remote, p: &Probe, changes: &mut Vec<String>) -> Result<(), HostError> {
    let sudo = !p.root;
    let file = root_file(sudo);
    if crate::ops::files::write_file(r, SYSCTL_FILE, SYSCTL.as_bytes(), &file)? {
        changes.push("sysctl.d".to_string());
    }
    if !p.ip_forward {
        r.program(
            &Argv::new("sysctl").args(["-w", "net.ipv4.ip_forward=1"]),
            as_root(sudo),
        )?;
        changes.push("ip_forward".to_string());
    }
    let unit_changed = crate::ops::files::write_file(r, UNIT_FILE, UNIT_TEXT.as_bytes(), &file)?;
    if unit_changed {
        changes.push("unit".to_string());
    }
    if p.systemd {
        let systemctl = |args: &[&str]| {
            r.program(
                &Argv::new("systemctl").args(args.iter().copied()),
                as_root(sudo),
            )
        };
        if unit_changed {
            systemctl(&["daemon-reload"])?;
        }
        if !p.enabled {
            systemctl(&["enable", UNIT])?;
            changes.push("enabled".to_string());
        }
        if !p.active {
            systemctl(&["start", UNIT])?;
        }
    }
    Ok(())
}

/// ufw route rules for the forwards: the missing ones added, fleet-nat's own that no
/// forward needs deleted; true when something changed.
fn ufw_routes(r: &dyn Remote, forwards: &[Forward], sudo: bool) -> Result<bool, HostError> {
    let added = r.program(
        &Argv::new("ufw").args(["show", "added"]),
        CommandOpts {
            allow_fail: false,
            ..query(sudo)
        },
    )?;
    let current = ufw::parse_show_added(&added.stdout);
    let mut changed = false;
    let wanted: Vec<String> = forwards.iter().map(Forward::ufw_spec).collect();
    let mut present: Vec<String> = current.iter().map(|a| a.spec.clone()).collect();
    for f in forwards {
        // Two public ports may lead to one target port: one route rule.
        if !present.contains(&f.ufw_spec()) {
            r.program(&f.ufw_add(), as_root(sudo))?;
            present.push(f.ufw_spec());
            changed = true;
        }
    }
    for a in &current {
        let ours = a
            .comment
            .as_deref()
            .is_some_and(|c| c.starts_with(UFW_MARK));
        if ours && !wanted.contains(&a.spec) {
            r.program(&ufw_delete(&a.spec), as_root(sudo))?;
            changed = true;
        }
    }
    Ok(changed)
}

fn root_file(sudo: bool) -> FileOpts {
    FileOpts {
        mode: Some("0644".into()),
        owner: Some("root:root".into()),
        sudo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Connection;
    use crate::ops::remote::fake::Scripted;

    fn host(name: &str, address: &str, vars: serde_json::Value) -> ResolvedHost {
        ResolvedHost {
            name: name.into(),
            address: address.into(),
            port: None,
            user: None,
            identity_file: None,
            connection: Connection::Ssh,
            groups: vec![],
            vars: serde_json::from_value(vars).unwrap(),
        }
    }

    fn lookup(name: &str) -> Option<ResolvedHost> {
        match name {
            "vm" => Some(host(
                "vm",
                "vm.example",
                serde_json::json!({"internal_address": "10.0.0.5"}),
            )),
            "db" => Some(host("db", "10.0.0.6", serde_json::json!({}))),
            "web" => Some(host("web", "web.example", serde_json::json!({}))),
            _ => None,
        }
    }

    fn input(port: i64, proto: &str, to: &str) -> ForwardInput {
        ForwardInput {
            port,
            proto: proto.into(),
            to_host: to.into(),
            to_port: Some(22),
            comment: String::new(),
        }
    }

    fn edge() -> ResolvedHost {
        host(
            "edge",
            "203.0.113.1",
            serde_json::json!({"internal_address": "10.0.0.1", "ssh": {"port": 2222}}),
        )
    }

    fn check(i: &ForwardInput) -> Result<Forward, NatError> {
        let e = edge();
        let cx = Context {
            edge: &e,
            resolve: &lookup,
        };
        i.check(&cx, Origin::Recipe)
    }

    #[test]
    fn the_rules_file_is_one_transaction_and_round_trips() {
        let f = check(&ForwardInput {
            comment: "ssh".into(),
            ..input(2203, "tcp", "vm")
        })
        .unwrap();
        let g = check(&ForwardInput {
            to_port: None,
            ..input(5353, "udp", "db")
        })
        .unwrap();
        let text = render(&[f.clone(), g.clone()], Net::parse("10.0.0.1/24"));
        assert_eq!(
            text,
            "#!/usr/sbin/nft -f\n# Managed by fleet (nat::): port forwarding of this edge. Changes by hand are lost.\n# Loaded by fleet-nat.service; `nft -f` on this file replaces the table ip fleet_nat and nothing else.\n# fleet-nat-state: [{\"port\":2203,\"proto\":\"tcp\",\"to_host\":\"vm\",\"to_address\":\"10.0.0.5\",\"to_port\":22,\"comment\":\"ssh\",\"origin\":\"recipe\"},{\"port\":5353,\"proto\":\"udp\",\"to_host\":\"db\",\"to_address\":\"10.0.0.6\",\"to_port\":5353,\"origin\":\"recipe\"}]\ntable ip fleet_nat {}\ndelete table ip fleet_nat\ntable ip fleet_nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local tcp dport 2203 dnat to 10.0.0.5:22 comment \"vm: ssh\"\n\t\tfib daddr type local udp dport 5353 dnat to 10.0.0.6:5353 comment \"db\"\n\t}\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 10.0.0.0/24 ip daddr != 10.0.0.0/24 masquerade comment \"internal network\"\n\t}\n}\n"
        );
        assert_eq!(parse(&text).unwrap(), vec![f, g]);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# fleet-nat-state: [{\"port\":1}]\n").is_err());
    }

    #[test]
    fn bad_forwards_are_refused_before_anything_is_sent() {
        let cases: Vec<(ForwardInput, &str)> = vec![
            (input(0, "tcp", "vm"), "`port` 0 is not a port (1-65535)"),
            (input(65536, "tcp", "vm"), "`port` 65536 is not a port"),
            (
                ForwardInput {
                    to_port: Some(-1),
                    ..input(80, "tcp", "vm")
                },
                "`to_port` -1 is not a port",
            ),
            (input(80, "icmp", "vm"), "proto `icmp` is not tcp or udp"),
            (
                input(80, "tcp", "nowhere"),
                "to_host `nowhere` is not in the inventory",
            ),
            (
                input(80, "tcp", "web"),
                "to_host `web` has no internal address",
            ),
            (input(80, "tcp", "-oProxy"), "is not a host name"),
            (input(22, "tcp", "vm"), "port 22 is the SSH port of edge"),
            (
                input(2222, "tcp", "vm"),
                "port 2222 is the SSH port of edge",
            ),
            (
                ForwardInput {
                    comment: "a\" ; drop".into(),
                    ..input(80, "tcp", "vm")
                },
                "may hold only letters",
            ),
        ];
        for (i, message) in cases {
            let e = check(&i).unwrap_err().to_string();
            assert!(e.contains(message), "{e}");
        }
        // udp 22 is not SSH.
        assert!(check(&input(22, "udp", "vm")).is_ok());
    }

    #[test]
    fn one_public_port_goes_to_one_host() {
        let a = check(&input(2203, "tcp", "vm")).unwrap();
        let b = check(&input(2203, "tcp", "db")).unwrap();
        let e = with_forward(vec![a.clone()], b.clone(), "edge")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("You cannot forward a source port on the same host to different servers: tcp port 2203 of edge goes to vm and to db"),
            "{e}"
        );
        // The same host again: an update.
        let a2 = Forward {
            to_port: 2222,
            ..a.clone()
        };
        assert_eq!(
            with_forward(vec![a.clone()], a2.clone(), "edge").unwrap(),
            [a2]
        );
        // Another protocol is another rule.
        let udp = check(&input(2203, "udp", "db")).unwrap();
        assert_eq!(with_forward(vec![a.clone()], udp, "edge").unwrap().len(), 2);
        // The inventory's forwards replace the inventory's; a recipe's conflicting one is refused.
        let inv = Forward {
            origin: Origin::Inventory,
            ..b
        };
        assert!(merged(std::slice::from_ref(&a), vec![inv], "edge").is_err());
        let old_inv = Forward {
            port: 9000,
            origin: Origin::Inventory,
            ..a.clone()
        };
        assert_eq!(merged(&[old_inv, a.clone()], vec![], "edge").unwrap(), [a]);
    }

    #[test]
    fn settings_and_networks() {
        assert_eq!(
            Net::parse("10.1.2.3/24").unwrap().to_string(),
            "10.1.2.0/24"
        );
        assert!(Net::parse("10.1.2.3/33").is_none());
        let ip = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n12: eth1    inet 172.19.0.2/16 brd 172.19.255.255 scope global eth1\\ x\n";
        assert_eq!(
            network_of(ip, "172.19.0.2".parse().unwrap())
                .unwrap()
                .to_string(),
            "172.19.0.0/16"
        );
        assert!(network_of(ip, "172.19.0.3".parse().unwrap()).is_none());
        let e = edge();
        assert_eq!(
            EdgeSettings::of(&e).unwrap().masquerade(&e).unwrap(),
            Masquerade::Of("10.0.0.1".parse().unwrap())
        );
        let off = host("e", "x", serde_json::json!({"nat": {"masquerade": false}}));
        assert_eq!(
            EdgeSettings::of(&off).unwrap().masquerade(&off).unwrap(),
            Masquerade::Off
        );
        let bad = host(
            "e",
            "x",
            serde_json::json!({"nat": {"masquerade": "10.0.0.0/99"}}),
        );
        assert!(EdgeSettings::of(&bad).unwrap().masquerade(&bad).is_err());
        let unknown = host("e", "x", serde_json::json!({"nat": {"forward": []}}));
        assert!(
            EdgeSettings::of(&unknown)
                .unwrap_err()
                .to_string()
                .contains("the host var `nat` of e is not valid")
        );
    }

    #[test]
    fn ufw_route_rules_are_fleet_nats_and_not_ufw_applys() {
        let f = check(&input(2203, "tcp", "vm")).unwrap();
        assert_eq!(
            f.ufw_add().line(),
            "ufw route allow to 10.0.0.5 port 22 proto tcp comment 'fleet-nat: vm'"
        );
        // As ufw 0.36 prints it back (tests/image container); ufw::apply's plan
        // deletes only rules marked `fleet:`, so it keeps this one.
        let added = ufw::parse_show_added(
            "ufw route allow to 10.0.0.5 port 22 proto tcp comment 'fleet-nat: vm'\n",
        );
        assert_eq!(added[0].spec, f.ufw_spec());
        assert!(!added[0].ours());
        assert_eq!(
            ufw_delete(&added[0].spec).line(),
            "ufw route delete allow to 10.0.0.5 port 22 proto tcp"
        );
    }

    #[test]
    fn probe_is_read() {
        let p = parse_probe(
            "uid=0\nnft=yes\nsystemd=yes\nenabled=disabled\nactive=inactive\nip_forward=1\nufw=yes\n",
        );
        assert!(p.root && p.nft && p.systemd && !p.enabled && !p.active && p.ip_forward && p.ufw);
        assert_eq!(parse_probe("uid=1000\nip_forward=0\n"), Probe::default());
    }

    /// `write_file`'s inspection of a file that holds `content`, root's, 0644.
    fn same(content: &str) -> String {
        format!(
            "{}\n644 root:root\n",
            crate::ops::files::sha256_hex(content.as_bytes())
        )
    }

    fn probe() -> Probe {
        Probe {
            root: true,
            nft: true,
            ..Probe::default()
        }
    }

    #[test]
    fn apply_checks_writes_loads_and_opens_ufw() {
        let f = check(&input(2203, "tcp", "vm")).unwrap();
        let r = Scripted::new(&[
            ("nft list table", 1, ""),
            ("nft -c -f /dev/stdin", 0, ""),
            ("mkdir -p /etc/fleet", 0, ""),
            ("if [ -f /etc/fleet/nat.nft ]", 0, "absent\n"),
            ("{ umask", 0, ""),
            ("nft -f /etc/fleet/nat.nft", 0, ""),
            ("if [ -f /etc/sysctl.d/60-fleet-nat.conf ]", 0, "absent\n"),
            ("{ umask", 0, ""),
            ("sysctl -w net.ipv4.ip_forward=1", 0, ""),
            (
                "if [ -f /etc/systemd/system/fleet-nat.service ]",
                0,
                &same(UNIT_TEXT),
            ),
            (
                "ufw show added",
                0,
                "Added user rules (see 'ufw status' for running firewall):\nufw route allow to 10.0.0.9 port 22 proto tcp comment 'fleet-nat: old'\nufw allow 22/tcp comment 'fleet: ssh'\n",
            ),
            (
                "ufw route allow to 10.0.0.5 port 22 proto tcp comment 'fleet-nat: vm'",
                0,
                "",
            ),
            (
                "ufw route delete allow to 10.0.0.9 port 22 proto tcp",
                0,
                "",
            ),
        ]);
        let state = EdgeState {
            probe: Probe {
                ufw: true,
                ..probe()
            },
            text: String::new(),
            forwards: vec![],
        };
        let changes = apply(&r, &state, &[f], &Masquerade::Off).unwrap();
        assert_eq!(changes, ["rules", "sysctl.d", "ip_forward", "ufw"]);
    }

    #[test]
    fn apply_changes_nothing_when_all_is_in_place() {
        let f = check(&input(2203, "tcp", "vm")).unwrap();
        let text = render(std::slice::from_ref(&f), None);
        let r = Scripted::new(&[
            ("nft list table", 0, ""),
            (
                "if [ -f /etc/sysctl.d/60-fleet-nat.conf ]",
                0,
                &same(SYSCTL),
            ),
            (
                "if [ -f /etc/systemd/system/fleet-nat.service ]",
                0,
                &same(UNIT_TEXT),
            ),
        ]);
        let state = EdgeState {
            probe: Probe {
                ip_forward: true,
                ..probe()
            },
            text,
            forwards: vec![f.clone()],
        };
        assert!(
            apply(&r, &state, &[f], &Masquerade::Off)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_table_gone_from_the_kernel_is_loaded_again() {
        let f = check(&input(2203, "tcp", "vm")).unwrap();
        let text = render(std::slice::from_ref(&f), None);
        let r = Scripted::new(&[
            ("nft list table", 1, ""),
            ("nft -c -f /dev/stdin", 0, ""),
            ("mkdir -p /etc/fleet", 0, ""),
            ("if [ -f /etc/fleet/nat.nft ]", 0, &same(&text)),
            ("nft -f /etc/fleet/nat.nft", 0, ""),
            (
                "if [ -f /etc/sysctl.d/60-fleet-nat.conf ]",
                0,
                &same(SYSCTL),
            ),
            (
                "if [ -f /etc/systemd/system/fleet-nat.service ]",
                0,
                &same(UNIT_TEXT),
            ),
        ]);
        let state = EdgeState {
            probe: Probe {
                ip_forward: true,
                ..probe()
            },
            text,
            forwards: vec![f.clone()],
        };
        assert_eq!(
            apply(&r, &state, &[f], &Masquerade::Off).unwrap(),
            ["loaded"]
        );
    }

    #[test]
    fn a_ruleset_nft_refuses_changes_nothing() {
        let r = Scripted::new(&[("nft list table", 1, ""), ("nft -c -f /dev/stdin", 1, "")]);
        let state = EdgeState {
            probe: probe(),
            text: String::new(),
            forwards: vec![],
        };
        let e = apply(&r, &state, &[], &Masquerade::Off).unwrap_err();
        assert!(
            e.message
                .contains("nft -c refused the rules for fake; nothing was changed"),
            "{}",
            e.message
        );
    }

    #[test]
    fn check_mode_shows_the_diff_and_runs_only_queries() {
        let mut r = Scripted::new(&[
            ("nft list table", 1, ""),
            ("nft -c -f /dev/stdin", 0, ""),
            ("if [ -f /etc/fleet/nat.nft ]", 0, "absent\n"),
            (
                "if [ -f /etc/sysctl.d/60-fleet-nat.conf ]",
                0,
                &same(SYSCTL),
            ),
            (
                "if [ -f /etc/systemd/system/fleet-nat.service ]",
                0,
                &same(UNIT_TEXT),
            ),
        ]);
        r.check = true;
        let state = EdgeState {
            probe: Probe {
                ip_forward: true,
                ..probe()
            },
            text: String::new(),
            forwards: vec![],
        };
        let changes = apply(&r, &state, &[], &Masquerade::Off).unwrap();
        assert_eq!(changes, ["rules"]);
        let printed = r.printed().join("\n");
        assert!(
            printed.contains("would write /etc/fleet/nat.nft: create it"),
            "{printed}"
        );
        assert!(printed.contains("+table ip fleet_nat {}"), "{printed}");
        assert!(
            printed.contains("would load /etc/fleet/nat.nft"),
            "{printed}"
        );
    }
}
