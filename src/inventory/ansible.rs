//! What Ansible's inventory formats (INI, YAML, dynamic inventory scripts) share:
//! `ansible_host`, `ansible_user` and friends become a host's connection fields rather
//! than variables, group values applying in merge order, and host ranges (`web[01:04]`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde_json::Value;

use super::vars::Hierarchy;
use super::{Connection, Host, Inventory, bad_port, parse_port};

/// `all` and `ungrouped` are Ansible's implicit groups: a host listed under them is in
/// no group (`ungrouped` in a pattern means just that), as `ansible-inventory --list`
/// output read back shows.
pub(super) fn implicit_group(name: &str) -> bool {
    name == "all" || name == "ungrouped"
}

/// Connection fields each host set itself (on its line, or in its own vars), which
/// group variables must not override.
pub(super) type SetOnHost = HashMap<String, HashSet<&'static str>>;

/// Applies connection variables of groups to their hosts in merge order (all, parents,
/// children), except the fields a host set itself; then removes them from the groups'
/// variables, and lets `localhost` mean this machine unless a connection was set.
/// The values were checked where they were read (so that errors point there).
pub(super) fn apply_group_fields(inv: &mut Inventory, set_on_host: &SetOnHost) {
    let mut updates = Vec::new();
    {
        let hierarchy = Hierarchy::new(inv);
        for host in inv.hosts.values() {
            let set = set_on_host.get(&host.name);
            let mut fields = Vec::new();
            let layers = std::iter::once("all").chain(hierarchy.groups_of(host));
            for group in layers.filter_map(|g| inv.groups.get(g)) {
                for (key, value) in &group.vars {
                    if let Some(Ok(field)) = Field::from_var(key, value)
                        && !set.is_some_and(|s| s.contains(field.kind()))
                    {
                        fields.push(field);
                    }
                }
            }
            updates.push((host.name.clone(), fields));
        }
    }
    for (name, fields) in updates {
        let host = &mut inv.hosts[&name];
        let set = set_on_host.get(&name);
        let connection_set = set.is_some_and(|s| s.contains("connection"))
            || fields.iter().any(|f| matches!(f, Field::Connection(_)));
        for field in fields {
            field.apply(host);
        }
        if !connection_set {
            host.connection = Connection::default_for(&host.address);
        }
    }
    for group in inv.groups.values_mut() {
        group.vars.retain(|key, _| !is_connection_var(key));
    }
}

/// A connection setting given as an `ansible_*` variable.
#[derive(Debug, Clone)]
pub(super) enum Field {
    Address(String),
    Port(u16),
    User(String),
    Identity(PathBuf),
    Connection(Connection),
}

pub(super) fn is_connection_var(key: &str) -> bool {
    matches!(
        key,
        "ansible_host"
            | "ansible_ssh_host"
            | "ansible_port"
            | "ansible_ssh_port"
            | "ansible_user"
            | "ansible_ssh_user"
            | "ansible_ssh_private_key_file"
            | "ansible_private_key_file"
            | "ansible_connection"
    )
}

impl Field {
    /// `None` for ordinary variables (other `ansible_*` ones included).
    // String: becomes the message of a SourceError at the variable's value.
    pub(super) fn from_var(key: &str, value: &Value) -> Option<Result<Field, String>> {
        if !is_connection_var(key) {
            return None;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Some(Err(format!("`{key}` must be a string"))),
        };
        let field = match key {
            "ansible_host" | "ansible_ssh_host" => Ok(Field::Address(text)),
            "ansible_port" | "ansible_ssh_port" => parse_port(&text)
                .map(Field::Port)
                .ok_or_else(|| bad_port(&text)),
            "ansible_user" | "ansible_ssh_user" => Ok(Field::User(text)),
            "ansible_connection" => match text.as_str() {
                "local" => Ok(Field::Connection(Connection::Local)),
                // Both are ways of running OpenSSH as far as fleet is concerned.
                "ssh" | "smart" | "paramiko" => Ok(Field::Connection(Connection::Ssh)),
                other => Err(format!(
                    "unsupported connection `{other}`: expected `local` or `ssh`"
                )),
            },
            _ => Ok(Field::Identity(PathBuf::from(text))),
        };
        Some(field)
    }

    /// Which host field it sets, so that a host line's value is not overridden by a group.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Field::Address(_) => "address",
            Field::Port(_) => "port",
            Field::User(_) => "user",
            Field::Identity(_) => "identity",
            Field::Connection(_) => "connection",
        }
    }

    pub(super) fn apply(self, host: &mut Host) {
        match self {
            Field::Address(address) => host.address = address,
            Field::Port(port) => host.port = Some(port),
            Field::User(user) => host.user = Some(user),
            Field::Identity(path) => host.identity_file = Some(path),
            Field::Connection(connection) => host.connection = connection,
        }
    }
}

/// Beyond this a range is surely a typo, and would only eat memory.
const MAX_RANGE: usize = 65_536;

/// Expands Ansible host ranges: `web[01:03]` (zero padding kept), `db-[a:c]`, a step as
/// in `[0:10:2]`, several ranges in one name. A bracketed IPv6 address is left alone.
// String: becomes the message of a SourceError at the pattern's line.
pub(super) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let Some(close) = pattern[open..].find(']').map(|i| open + i) else {
        return Ok(vec![pattern.to_string()]);
    };
    let inner = &pattern[open + 1..close];
    if inner.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(vec![pattern.to_string()]);
    }
    let bad = |why: &str| format!("bad host range `[{inner}]` in `{pattern}`: {why}");
    let parts: Vec<&str> = inner.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("expected `[start:end]` or `[start:end:step]`"));
    }
    let step = match parts.get(2) {
        None => 1,
        Some(step) => match step.parse::<usize>() {
            Ok(step) if step > 0 => step,
            _ => return Err(bad("the step must be a positive number")),
        },
    };
    // Like Ansible, `[:3]` starts at 0.
    let (first, last) = (if parts[0].is_empty() { "0" } else { parts[0] }, parts[1]);
    let items: Vec<String> = if let (Ok(a), Ok(b)) = (first.parse::<u64>(), last.parse::<u64>()) {
        let padded = first.len() > 1 && first.starts_with('0');
        if padded && first.len() != last.len() {
            return Err(bad("a zero-padded start and its end need the same width"));
        }
        if a > b {
            return Err(bad("the start is after the end"));
        }
        if (b - a) / step as u64 >= MAX_RANGE as u64 {
            return Err(bad("too many hosts"));
        }
        let width = if padded { first.len() } else { 0 };
        (a..=b)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let letter = |s: &str| {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
                _ => None,
            }
        };
        let (Some(a), Some(b)) = (letter(first), letter(last)) else {
            return Err(bad("expected numbers or single letters"));
        };
        if a > b {
            return Err(bad("the start is after the end"));
        }
        (a..=b).step_by(step).map(String::from).collect()
    };
    let head = &pattern[..open];
    let tails = expand(&pattern[close + 1..])?;
    if items.len() * tails.len() > MAX_RANGE {
        return Err(bad("too many hosts"));
    }
    Ok(items
        .iter()
        .flat_map(|item| tails.iter().map(move |tail| format!("{head}{item}{tail}")))
        .collect())
}
