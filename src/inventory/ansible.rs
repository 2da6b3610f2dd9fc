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

/// A connection variable whose value fleet cannot use; the caller points at the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FieldError {
    /// The variable's name.
    #[error("`{0}` must be a string")]
    NotAString(String),
    #[error("{}", bad_port(.0))]
    Port(String),
    #[error("unsupported connection `{0}`: expected `local` or `ssh`")]
    Connection(String),
}

/// A host range that cannot be expanded: `inner` is what is between the brackets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad host range `[{inner}]` in `{pattern}`: {why}")]
pub(super) struct RangeError {
    inner: String,
    pattern: String,
    why: RangeProblem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum RangeProblem {
    #[error("expected `[start:end]` or `[start:end:step]`")]
    Shape,
    #[error("the step must be a positive number")]
    Step,
    #[error("a zero-padded start and its end need the same width")]
    PaddedWidth,
    #[error("the start is after the end")]
    Backwards,
    #[error("too many hosts")]
    TooMany,
    #[error("expected numbers or single letters")]
    NotNumbersOrLetters,
}

impl Field {
    /// `None` for ordinary variables (other `ansible_*` ones included).
    pub(super) fn from_var(key: &str, value: &Value) -> Option<Result<Field, FieldError>> {
        if !is_connection_var(key) {
            return None;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Some(Err(FieldError::NotAString(key.to_string()))),
        };
        let field = match key {
            "ansible_host" | "ansible_ssh_host" => Ok(Field::Address(text)),
            "ansible_port" | "ansible_ssh_port" => parse_port(&text)
                .map(Field::Port)
                .ok_or(FieldError::Port(text)),
            "ansible_user" | "ansible_ssh_user" => Ok(Field::User(text)),
            "ansible_connection" => match text.as_str() {
                "local" => Ok(Field::Connection(Connection::Local)),
                // Both are ways of running OpenSSH as far as fleet is concerned.
                "ssh" | "smart" | "paramiko" => Ok(Field::Connection(Connection::Ssh)),
                other => Err(FieldError::Connection(other.to_string())),
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
pub(super) fn expand(pattern: &str) -> Result<Vec<String>, RangeError> {
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
    let bad = |why| RangeError {
        inner: inner.to_string(),
        pattern: pattern.to_string(),
        why,
    };
    let parts: Vec<&str> = inner.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad(RangeProblem::Shape));
    }
    let step = match parts.get(2) {
        None => 1,
        Some(step) => match step.parse::<usize>() {
            Ok(step) if step > 0 => step,
            _ => return Err(bad(RangeProblem::Step)),
        },
    };
    // Like Ansible, `[:3]` starts at 0.
    let (first, last) = (if parts[0].is_empty() { "0" } else { parts[0] }, parts[1]);
    let items: Vec<String> = if let (Ok(a), Ok(b)) = (first.parse::<u64>(), last.parse::<u64>()) {
        let padded = first.len() > 1 && first.starts_with('0');
        if padded && first.len() != last.len() {
            return Err(bad(RangeProblem::PaddedWidth));
        }
        if a > b {
            return Err(bad(RangeProblem::Backwards));
        }
        if (b - a) / step as u64 >= MAX_RANGE as u64 {
            return Err(bad(RangeProblem::TooMany));
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
            return Err(bad(RangeProblem::NotNumbersOrLetters));
        };
        if a > b {
            return Err(bad(RangeProblem::Backwards));
        }
        (a..=b).step_by(step).map(String::from).collect()
    };
    let head = &pattern[..open];
    let tails = expand(&pattern[close + 1..])?;
    if items.len() * tails.len() > MAX_RANGE {
        return Err(bad(RangeProblem::TooMany));
    }
    Ok(items
        .iter()
        .flat_map(|item| tails.iter().map(move |tail| format!("{head}{item}{tail}")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_and_range_errors_say_what_is_wrong() {
        let cases = [
            (
                FieldError::NotAString("ansible_host".into()),
                "`ansible_host` must be a string",
            ),
            (
                FieldError::Port("99999".into()),
                "bad port `99999`: expected a number from 1 to 65535",
            ),
            (
                FieldError::Connection("winrm".into()),
                "unsupported connection `winrm`: expected `local` or `ssh`",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
        let range = |why| RangeError {
            inner: "3:1".into(),
            pattern: "web[3:1]".into(),
            why,
        };
        let cases = [
            (
                RangeProblem::Shape,
                "expected `[start:end]` or `[start:end:step]`",
            ),
            (RangeProblem::Step, "the step must be a positive number"),
            (
                RangeProblem::PaddedWidth,
                "a zero-padded start and its end need the same width",
            ),
            (RangeProblem::Backwards, "the start is after the end"),
            (RangeProblem::TooMany, "too many hosts"),
            (
                RangeProblem::NotNumbersOrLetters,
                "expected numbers or single letters",
            ),
        ];
        for (why, text) in cases {
            assert_eq!(
                range(why).to_string(),
                format!("bad host range `[3:1]` in `web[3:1]`: {text}")
            );
        }
        assert_eq!(
            expand("web[3:1]").unwrap_err(),
            range(RangeProblem::Backwards)
        );
    }
}
