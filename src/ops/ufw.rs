//! ufw as fleet drives it: typed rules validated before any command exists, presets,
//! the `ufw` command lines, `ufw show added` read back, and the plan that turns the
//! rules a host has into the rules it should have. Rules fleet adds carry a comment
//! starting with `fleet:`; only those are ever deleted.

use super::remote::{CommandOpts, Remote};
use super::shell::Argv;
use crate::outcome::HostError;
use std::fmt;

/// The options map of `ufw::apply`: the preset, custom rules, catalog apps whose ports
/// to open, and the SSH port to keep open besides the connected one.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApplyOptions {
    #[serde(default = "server_minimal")]
    pub(crate) preset: String,
    #[serde(default)]
    pub(crate) rules: Vec<RuleInput>,
    #[serde(default)]
    pub(crate) apps: Vec<String>,
    #[serde(default = "yes")]
    pub(crate) allow_app_ports: bool,
    #[serde(default, deserialize_with = "super::options::some_port")]
    pub(crate) ssh_port: Option<u16>,
}

fn server_minimal() -> String {
    "server-minimal".into()
}
fn yes() -> bool {
    true
}

/// A rule as a recipe writes it: #{ action, port, proto, source, comment }.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleInput {
    #[serde(default = "allow")]
    pub(crate) action: String,
    pub(crate) port: serde_json::Value,
    #[serde(default = "tcp")]
    pub(crate) proto: String,
    #[serde(default = "any")]
    pub(crate) source: String,
    #[serde(default)]
    pub(crate) comment: String,
}

fn allow() -> String {
    "allow".into()
}
fn tcp() -> String {
    "tcp".into()
}
fn any() -> String {
    "any".into()
}

impl RuleInput {
    /// The rules it stands for (a `lan` source is one per private range), marked as
    /// fleet's.
    pub(crate) fn to_rules(&self) -> Result<Vec<Rule>, BadRule> {
        let port = match &self.port {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let comment = if self.comment.is_empty() {
            format!("{MARK} rule")
        } else {
            format!("{MARK} {}", self.comment)
        };
        Rule::build(&self.action, &port, &self.proto, &self.source, &comment)
    }
}

/// Comment prefix that marks the rules fleet manages.
pub(crate) const MARK: &str = "fleet:";

/// RFC 1918 ranges: the `lan` source and scope.
pub(crate) const LAN: [&str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    Allow,
    Deny,
    Reject,
    Limit,
}

impl Action {
    pub(crate) fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            "reject" => Action::Reject,
            "limit" => Action::Limit,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Reject => "reject",
            Action::Limit => "limit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    Any,
}

impl Proto {
    pub(crate) fn parse(s: &str) -> Option<Proto> {
        Some(match s {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "any" | "" => Proto::Any,
            _ => return None,
        })
    }

    /// `tcp`, `udp` or `any`, as the catalog writes it.
    pub(crate) fn as_str(self) -> &'static str {
        self.word().unwrap_or("any")
    }

    fn word(self) -> Option<&'static str> {
        match self {
            Proto::Tcp => Some("tcp"),
            Proto::Udp => Some("udp"),
            Proto::Any => None,
        }
    }
}

/// One port or an inclusive range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ports {
    pub(crate) from: u16,
    pub(crate) to: u16,
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}:{}", self.from, self.to)
        }
    }
}

/// A firewall rule or preset fleet refuses, with the value as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadRule {
    #[error("`{0}` is not a port (1-65535) or a range like 8000:8010")]
    NotAPort(String),
    #[error("`{0}`: a range goes from low to high")]
    BackwardRange(String),
    #[error("`{0}` is not `any`, `lan` or an address/CIDR")]
    NotASource(String),
    #[error("`{0}` has a bad prefix length")]
    BadPrefix(String),
    #[error("action `{0}` is not one of allow, deny, reject, limit")]
    Action(String),
    #[error("proto `{0}` is not tcp, udp or any")]
    Proto(String),
    #[error("port range `{0}` needs proto tcp or udp (ufw's rule)")]
    RangeNeedsProto(Ports),
    #[error("comment `{0}` must be one line without quotes or backslashes")]
    Comment(String),
    #[error("ufw preset `{0}` is not one of server-minimal, web, lan-only, custom")]
    Preset(String),
}

/// `80`, `8000:8010` or `8000-8010`; nothing else (`80; reboot` is an error).
pub(crate) fn parse_ports(s: &str) -> Result<Ports, BadRule> {
    let s = s.trim();
    let one = |p: &str| -> Result<u16, BadRule> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| BadRule::NotAPort(s.to_string()))
    };
    match s.split_once([':', '-']) {
        Some((a, b)) => {
            let (from, to) = (one(a)?, one(b)?);
            if from >= to {
                return Err(BadRule::BackwardRange(s.to_string()));
            }
            Ok(Ports { from, to })
        }
        None => one(s).map(|p| Ports { from: p, to: p }),
    }
}

/// A source: any address, or one IPv4/IPv6 network.
pub(crate) fn parse_source(s: &str) -> Result<Vec<Option<String>>, BadRule> {
    match s.trim() {
        "" | "any" => Ok(vec![None]),
        "lan" => Ok(LAN.iter().map(|n| Some(n.to_string())).collect()),
        cidr => {
            let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
            let ip: std::net::IpAddr = addr
                .parse()
                .map_err(|_| BadRule::NotASource(cidr.to_string()))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if !prefix.is_empty() && prefix.parse::<u8>().ok().filter(|p| *p <= max).is_none() {
                return Err(BadRule::BadPrefix(cidr.to_string()));
            }
            Ok(vec![Some(cidr.to_string())])
        }
    }
}

/// One ufw rule, incoming.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rule {
    pub(crate) action: Action,
    pub(crate) ports: Ports,
    pub(crate) proto: Proto,
    /// None: from anywhere.
    pub(crate) source: Option<String>,
    pub(crate) comment: String,
}

fn comment_ok(c: &str) -> bool {
    c.len() <= 200 && !c.contains(['\'', '\n', '\\'])
}

impl Rule {
    /// Rules from user input; `lan` gives one rule per RFC 1918 range.
    pub(crate) fn build(
        action: &str,
        port: &str,
        proto: &str,
        source: &str,
        comment: &str,
    ) -> Result<Vec<Rule>, BadRule> {
        let action = Action::parse(action).ok_or_else(|| BadRule::Action(action.to_string()))?;
        let ports = parse_ports(port)?;
        let proto = Proto::parse(proto).ok_or_else(|| BadRule::Proto(proto.to_string()))?;
        if ports.from != ports.to && proto == Proto::Any {
            return Err(BadRule::RangeNeedsProto(ports));
        }
        if !comment_ok(comment) {
            return Err(BadRule::Comment(comment.to_string()));
        }
        Ok(parse_source(source)?
            .into_iter()
            .map(|source| Rule {
                action,
                ports,
                proto,
                source,
                comment: comment.to_string(),
            })
            .collect())
    }

    /// The rule's words on ufw's command line (without `ufw`).
    fn spec_words(&self) -> Vec<String> {
        let action = self.action.word().to_string();
        match &self.source {
            None => {
                let port = match self.proto.word() {
                    Some(p) => format!("{}/{p}", self.ports),
                    None => self.ports.to_string(),
                };
                vec![action, port]
            }
            Some(src) => {
                let mut w = vec![
                    action,
                    "from".into(),
                    src.clone(),
                    "to".into(),
                    "any".into(),
                    "port".into(),
                    self.ports.to_string(),
                ];
                if let Some(p) = self.proto.word() {
                    w.extend(["proto".into(), p.to_string()]);
                }
                w
            }
        }
    }

    /// The rule as ufw's command line and `ufw show added` write it (without `ufw`).
    pub(crate) fn spec(&self) -> String {
        self.spec_words().join(" ")
    }

    /// `ufw allow 80/tcp comment 'fleet: web'`, as `show added` prints it.
    #[cfg(test)]
    pub(crate) fn line(&self) -> String {
        if self.comment.is_empty() {
            format!("ufw {}", self.spec())
        } else {
            format!("ufw {} comment '{}'", self.spec(), self.comment)
        }
    }

    /// `ufw allow 80/tcp comment 'fleet: web'`, one program.
    pub(crate) fn add_command(&self) -> Argv {
        let argv = Argv::new("ufw").args(self.spec_words());
        if self.comment.is_empty() {
            argv
        } else {
            argv.args(["comment", self.comment.as_str()])
        }
    }
}

/// `ufw delete allow 80/tcp` (removes the v4 and v6 rule alike), from a rule as
/// `ufw show added` printed it: its words become arguments, never shell text.
pub(crate) fn delete_command(spec: &str) -> Argv {
    Argv::new("ufw").arg("delete").args(spec.split_whitespace())
}

/// A rule line of `ufw show added`, as it was added.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Added {
    pub(crate) line: String,
    pub(crate) spec: String,
    pub(crate) comment: Option<String>,
}

impl Added {
    pub(crate) fn ours(&self) -> bool {
        self.comment.as_deref().is_some_and(|c| c.starts_with(MARK))
    }
}

/// Parses `ufw show added` (works while ufw is inactive; `(None)` when empty).
pub(crate) fn parse_show_added(text: &str) -> Vec<Added> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("ufw "))
        .map(|rest| {
            let (spec, comment) = match rest.split_once(" comment '") {
                Some((spec, c)) => (spec.to_string(), Some(c.trim_end_matches('\'').to_string())),
                None => (rest.to_string(), None),
            };
            Added {
                line: format!("ufw {rest}"),
                spec,
                comment,
            }
        })
        .collect()
}

/// The state of ufw itself: enabled, and the default policies from /etc/default/ufw.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct State {
    pub(crate) active: bool,
    pub(crate) input_policy: String,
    pub(crate) output_policy: String,
}

/// Reads `ufw status` (first line) and /etc/default/ufw.
pub(crate) fn parse_state(status: &str, defaults: &str) -> State {
    let value = |key: &str| {
        defaults
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    State {
        active: status
            .lines()
            .next()
            .is_some_and(|l| l.trim() == "Status: active"),
        input_policy: value("DEFAULT_INPUT_POLICY="),
        output_policy: value("DEFAULT_OUTPUT_POLICY="),
    }
}

/// The commands that bring a host from `current` to `wanted`, in a safe order: the SSH
/// rules first (before anything could lock fleet out), then policies, the other new
/// rules, deletions of fleet's own rules no longer wanted, and enable last.
pub(crate) fn plan(state: &State, current: &[Added], wanted: &[Rule], ssh: &[Rule]) -> Vec<Argv> {
    let mut seen: Vec<String> = current.iter().map(|a| a.spec.clone()).collect();
    let mut add = |rules: &[Rule], out: &mut Vec<Argv>| {
        for r in rules {
            if !seen.contains(&r.spec()) {
                seen.push(r.spec());
                out.push(r.add_command());
            }
        }
    };
    let mut cmds = Vec::new();
    add(ssh, &mut cmds);
    if state.input_policy != "DROP" {
        cmds.push(Argv::new("ufw").args(["default", "deny", "incoming"]));
    }
    if state.output_policy != "ACCEPT" {
        cmds.push(Argv::new("ufw").args(["default", "allow", "outgoing"]));
    }
    add(wanted, &mut cmds);
    let keep: Vec<String> = ssh.iter().chain(wanted).map(Rule::spec).collect();
    for a in current {
        if a.ours() && !keep.contains(&a.spec) {
            cmds.push(delete_command(&a.spec));
        }
    }
    if !state.active {
        cmds.push(Argv::new("ufw").args(["--force", "enable"]));
    }
    cmds
}

/// A preset's rules besides SSH (`ports`: the app ports to open with `lan-only`).
pub(crate) fn preset(
    name: &str,
    custom: &[Rule],
    app_rules: &[Rule],
) -> Result<Vec<Rule>, BadRule> {
    let web = |port: &str| Rule::build("allow", port, "tcp", "any", &format!("{MARK} web"));
    Ok(match name {
        "server-minimal" => app_rules.to_vec(),
        "web" => {
            let mut r = web("80")?;
            r.extend(web("443")?);
            r.extend(app_rules.iter().cloned());
            r
        }
        "lan-only" => app_rules
            .iter()
            .flat_map(|r| {
                LAN.iter().map(move |n| Rule {
                    source: Some(n.to_string()),
                    ..r.clone()
                })
            })
            .collect(),
        "custom" => {
            let mut r = custom.to_vec();
            r.extend(app_rules.iter().cloned());
            r
        }
        other => {
            return Err(BadRule::Preset(other.to_string()));
        }
    })
}

/// The rules that keep SSH open: every port given (the one fleet is connected on and
/// the configured one), from anywhere, or only from the LAN for `lan-only`.
pub(crate) fn ssh_rules(ports: &[u16], lan_only: bool) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let mut ports = ports.to_vec();
    ports.sort();
    ports.dedup();
    for p in ports {
        let sources: Vec<Option<String>> = if lan_only {
            LAN.iter().map(|n| Some(n.to_string())).collect()
        } else {
            vec![None]
        };
        for source in sources {
            out.push(Rule {
                action: Action::Allow,
                ports: Ports { from: p, to: p },
                proto: Proto::Tcp,
                source,
                comment: format!("{MARK} ssh"),
            });
        }
    }
    out
}

// Applying a firewall on a host: the procedure over `Remote`.

/// What applying did: the commands run (or, in --check, printed).
#[derive(Debug, Clone, Default)]
pub(crate) struct Applied {
    pub(crate) commands: Vec<String>,
    /// The SSH ports kept open.
    pub(crate) ssh_ports: Vec<u16>,
}

/// Who fleet is on the host, whether ufw is there (also in /usr/sbin, which is not on
/// a normal user's PATH), and the SSH connection (client, port, server, port).
const PROBE: &str = "id -u; if command -v ufw >/dev/null || [ -x /usr/sbin/ufw ]; then echo ufw; else echo no-ufw; fi; echo \"${SSH_CONNECTION:-}\"";

/// Makes ufw on the host hold `wanted` plus SSH rules for the port fleet is connected on
/// and `ssh_port`, deny incoming by default, enabled: its state read, the plan (SSH
/// rules before anything that could lock fleet out) run. Each ufw command is one
/// program (`sudo -n -- ufw …` when not root), so a sudoers rule for /usr/sbin/ufw is
/// enough. In --check on a host without ufw yet (a first configuration installs it
/// just before) the plan starts from nothing: every rule, the policies and enable.
pub(crate) fn apply(
    r: &dyn Remote,
    wanted: &[Rule],
    ssh_port: Option<u16>,
    lan_only_ssh: bool,
) -> Result<Applied, HostError> {
    let probe = r.command(PROBE, CommandOpts::QUERY)?;
    if probe.code != 0 {
        return Err(HostError::new(
            r.name(),
            format!("cannot tell whether ufw is installed on {}", r.name()),
        ));
    }
    let mut lines = probe.stdout.lines();
    let root = lines.next().map(str::trim) == Some("0");
    let installed = lines.next().map(str::trim) == Some("ufw");
    // SSH_CONNECTION: client address, client port, server address, server port.
    let connected = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|p| p.parse::<u16>().ok());
    let ssh_ports: Vec<u16> = connected.into_iter().chain(ssh_port).collect();
    let (current, added) = if installed {
        read_state(r, !root)?
    } else if r.check_mode() {
        r.out("ufw is not installed yet: the plan starts from an empty firewall");
        (State::default(), Vec::new())
    } else {
        return Err(HostError::new(
            r.name(),
            format!(
                "ufw is not installed on {}: install it first (the baseline_tools module does)",
                r.name()
            ),
        ));
    };
    let ssh = ssh_rules(&ssh_ports, lan_only_ssh);
    let commands = plan(&current, &added, wanted, &ssh);
    for cmd in &commands {
        r.program(
            cmd,
            CommandOpts {
                sudo: !root,
                ..CommandOpts::default()
            },
        )?;
    }
    Ok(Applied {
        commands: commands.iter().map(Argv::line).collect(),
        ssh_ports,
    })
}

/// ufw's state and its added rules: `ufw status` and `ufw show added` as root (one
/// program each), /etc/default/ufw as anyone.
fn read_state(r: &dyn Remote, sudo: bool) -> Result<(State, Vec<Added>), HostError> {
    let query = CommandOpts {
        allow_fail: false,
        sudo,
        ..CommandOpts::QUERY
    };
    let status = r.program(&Argv::new("ufw").arg("status"), query)?;
    let defaults = r.program(
        &Argv::new("cat").arg("/etc/default/ufw"),
        CommandOpts::QUERY,
    )?;
    let added = r.program(&Argv::new("ufw").args(["show", "added"]), query)?;
    Ok((
        parse_state(&status.stdout, &defaults.stdout),
        parse_show_added(&added.stdout),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(action: &str, port: &str, proto: &str, source: &str) -> Vec<Rule> {
        Rule::build(action, port, proto, source, "fleet: test").unwrap()
    }

    #[test]
    fn rule_lines_match_ufw_show_added() {
        // Each line as ufw 0.36 printed it in `ufw show added` (tests/image container).
        assert_eq!(rule("allow", "22", "tcp", "any")[0].spec(), "allow 22/tcp");
        assert_eq!(
            rule("allow", "5432", "tcp", "10.0.0.0/8")[0].spec(),
            "allow from 10.0.0.0/8 to any port 5432 proto tcp"
        );
        assert_eq!(
            rule("allow", "8000-8010", "tcp", "")[0].spec(),
            "allow 8000:8010/tcp"
        );
        assert_eq!(rule("allow", "53", "any", "any")[0].spec(), "allow 53");
        assert_eq!(
            rule("limit", "2222", "tcp", "any")[0].spec(),
            "limit 2222/tcp"
        );
        assert_eq!(
            rule("allow", "53", "any", "192.168.0.0/16")[0].spec(),
            "allow from 192.168.0.0/16 to any port 53"
        );
        let r = &rule("allow", "80", "tcp", "any")[0];
        assert_eq!(r.line(), "ufw allow 80/tcp comment 'fleet: test'");
        assert_eq!(
            r.add_command().sudo_line(),
            "sudo -n -- ufw allow 80/tcp comment 'fleet: test'"
        );
        assert_eq!(
            delete_command(&r.spec()).sudo_line(),
            "sudo -n -- ufw delete allow 80/tcp"
        );
        // A rule line from the host is words for ufw, never shell text.
        assert_eq!(
            delete_command("allow 22; reboot $(id)").line(),
            "ufw delete allow '22;' reboot '$(id)'"
        );
    }

    #[test]
    fn lan_is_three_rules() {
        let rules = rule("allow", "5432", "tcp", "lan");
        let sources: Vec<_> = rules.iter().map(|r| r.source.clone().unwrap()).collect();
        assert_eq!(sources, LAN);
    }

    #[test]
    fn bad_input_never_becomes_a_command() {
        for (port, proto, source, action, comment) in [
            ("80; reboot", "tcp", "any", "allow", ""),
            ("0", "tcp", "any", "allow", ""),
            ("70000", "tcp", "any", "allow", ""),
            ("90:80", "tcp", "any", "allow", ""),
            ("8000:8010", "any", "any", "allow", ""),
            ("80", "icmp", "any", "allow", ""),
            ("80", "tcp", "10.0.0.0/33", "allow", ""),
            ("80", "tcp", "$(reboot)", "allow", ""),
            ("80", "tcp", "any", "permit", ""),
            ("80", "tcp", "any", "allow", "it's"),
        ] {
            assert!(
                Rule::build(action, port, proto, source, comment).is_err(),
                "{port} {proto} {source} {action} {comment}"
            );
        }
        assert!(
            parse_ports("80; reboot")
                .unwrap_err()
                .to_string()
                .contains("`80; reboot` is not a port")
        );
    }

    const SHOW_ADDED: &str = "Added user rules (see 'ufw status' for running firewall):
ufw allow 22/tcp comment 'fleet: ssh'
ufw allow from 10.0.0.0/8 to any port 5432 proto tcp comment 'fleet: pg'
ufw allow 8000:8010/tcp
ufw allow 53
";

    #[test]
    fn show_added_is_read_back() {
        let added = parse_show_added(SHOW_ADDED);
        assert_eq!(added.len(), 4);
        assert_eq!(
            added[1].spec,
            "allow from 10.0.0.0/8 to any port 5432 proto tcp"
        );
        assert_eq!(added[1].comment.as_deref(), Some("fleet: pg"));
        assert!(added[0].ours() && !added[2].ours());
        assert!(
            parse_show_added("Added user rules (see 'ufw status' for running firewall):\n(None)\n")
                .is_empty()
        );
    }

    #[test]
    fn state_from_status_and_defaults() {
        let s = parse_state(
            "Status: active\n",
            "IPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n",
        );
        assert_eq!(
            s,
            State {
                active: true,
                input_policy: "DROP".into(),
                output_policy: "ACCEPT".into()
            }
        );
        assert!(!parse_state("Status: inactive\n", "").active);
    }

    #[test]
    fn plan_opens_ssh_first_and_deletes_only_fleets_own_rules() {
        let state = State::default();
        let current = parse_show_added(SHOW_ADDED);
        let ssh = ssh_rules(&[22, 2222], false);
        let wanted = rule("allow", "80", "tcp", "any");
        let lines: Vec<String> = plan(&state, &current, &wanted, &ssh)
            .iter()
            .map(Argv::line)
            .collect();
        assert_eq!(
            lines,
            [
                "ufw allow 2222/tcp comment 'fleet: ssh'",
                "ufw default deny incoming",
                "ufw default allow outgoing",
                "ufw allow 80/tcp comment 'fleet: test'",
                "ufw delete allow from 10.0.0.0/8 to any port 5432 proto tcp",
                "ufw --force enable",
            ]
        );
    }

    #[test]
    fn plan_is_empty_when_all_is_in_place() {
        let state = State {
            active: true,
            input_policy: "DROP".into(),
            output_policy: "ACCEPT".into(),
        };
        let ssh = ssh_rules(&[22], false);
        let wanted = rule("allow", "80", "tcp", "any");
        let current: Vec<Added> = ssh
            .iter()
            .chain(&wanted)
            .map(|r| parse_show_added(&r.line()).remove(0))
            .collect();
        assert!(plan(&state, &current, &wanted, &ssh).is_empty());
    }

    #[test]
    fn presets() {
        let app = rule("allow", "5432", "tcp", "any");
        let names = |rules: Vec<Rule>| rules.iter().map(Rule::spec).collect::<Vec<_>>();
        assert_eq!(
            names(preset("server-minimal", &[], &[]).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            names(preset("web", &[], &[]).unwrap()),
            ["allow 80/tcp", "allow 443/tcp"]
        );
        assert_eq!(
            names(preset("lan-only", &[], &app).unwrap()),
            [
                "allow from 10.0.0.0/8 to any port 5432 proto tcp",
                "allow from 172.16.0.0/12 to any port 5432 proto tcp",
                "allow from 192.168.0.0/16 to any port 5432 proto tcp"
            ]
        );
        let custom = rule("limit", "2200", "tcp", "any");
        assert_eq!(
            names(preset("custom", &custom, &[]).unwrap()),
            ["limit 2200/tcp"]
        );
        assert!(
            preset("open", &[], &[])
                .unwrap_err()
                .to_string()
                .contains("server-minimal, web, lan-only, custom")
        );
        assert_eq!(ssh_rules(&[22], true).len(), 3);
    }

    #[test]
    fn apply_opens_ssh_first_and_enables_last_through_sudo() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[
            ("id -u", 0, "1000\nufw\n10.0.0.9 51234 10.0.0.5 22\n"),
            ("sudo -- ufw status", 0, "Status: inactive\n"),
            (
                "cat /etc/default/ufw",
                0,
                "DEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n",
            ),
            ("sudo -- ufw show added", 0, "(None)\n"),
            ("sudo -- ufw allow 22/tcp comment 'fleet: ssh'", 0, ""),
            ("sudo -- ufw allow 80/tcp comment 'fleet: web'", 0, ""),
            ("sudo -- ufw --force enable", 0, ""),
        ]);
        let web = Rule::build("allow", "80", "tcp", "any", "fleet: web").unwrap();
        let applied = apply(&r, &web, None, false).unwrap();
        assert_eq!(applied.ssh_ports, [22]);
        assert_eq!(applied.commands.len(), 3, "{:?}", r.ran());
    }

    #[test]
    fn apply_without_ufw_names_the_module_that_installs_it() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[("id -u", 0, "0\nno-ufw\n\n")]);
        let err = apply(&r, &[], None, false).unwrap_err();
        assert!(err.message.contains("baseline_tools"), "{}", err.message);
    }

    #[test]
    fn check_without_ufw_plans_the_whole_firewall() {
        use crate::ops::remote::fake::Scripted;
        let mut r = Scripted::new(&[("id -u", 0, "1000\nno-ufw\n10.0.0.9 51234 10.0.0.5 22\n")]);
        r.check = true;
        let web = Rule::build("allow", "80", "tcp", "any", "fleet: web").unwrap();
        let applied = apply(&r, &web, Some(2222), false).unwrap();
        assert_eq!(
            applied.commands,
            [
                "ufw allow 22/tcp comment 'fleet: ssh'",
                "ufw allow 2222/tcp comment 'fleet: ssh'",
                "ufw default deny incoming",
                "ufw default allow outgoing",
                "ufw allow 80/tcp comment 'fleet: web'",
                "ufw --force enable",
            ]
        );
        // Shown, not run: only the probe reached the host.
        assert_eq!(r.ran()[0], PROBE);
        assert!(
            r.ran()[1..].iter().all(|c| c.starts_with("sudo -- ufw ")),
            "{:?}",
            r.ran()
        );
    }
}
