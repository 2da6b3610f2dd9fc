//! fleet's own inventory format: TOML, so that every mistake can be pointed at exactly.
//!
//! ```toml
//! [vars]                      # variables of the group `all`
//! [hosts.web-1]
//! address = "10.0.0.11"
//! groups = ["web"]
//! [groups.web]
//! children = ["web-eu"]
//! ```

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use ::toml::Spanned;
use indexmap::IndexMap;
use serde::Deserialize;

use super::vars::find_cycle;
use super::{Connection, Host, Inventory, Vars, bad_port};
use crate::error::{Result, SourceError};

type TomlVars = IndexMap<String, ::toml::Value>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    vars: TomlVars,
    #[serde(default)]
    hosts: IndexMap<Spanned<String>, HostSpec>,
    #[serde(default)]
    groups: IndexMap<Spanned<String>, GroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    address: Option<Spanned<String>>,
    // Wider than u16 so that a bad port gets fleet's message rather than serde's.
    port: Option<Spanned<i64>>,
    user: Option<String>,
    identity_file: Option<String>,
    connection: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    vars: TomlVars,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    #[serde(default)]
    vars: TomlVars,
    #[serde(default)]
    children: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
}

pub(crate) fn parse(name: &str, text: &str) -> Result<Inventory> {
    let error = |span: Range<usize>, message: String, label: &str| {
        let len = span.len().max(1);
        SourceError::at_span(name, text, (span.start, len).into(), message, label)
    };
    let spec: FileSpec = ::toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        // toml's messages end with a newline and sometimes span several lines.
        let message = e.message().trim().to_string();
        let first = message.lines().next().unwrap_or_default().to_string();
        error(span, first, "here")
    })?;

    let mut inv = Inventory::empty(name);
    inv.groups["all"].vars = to_vars(spec.vars);
    // Groups defined in the file come first, in its order; groups only named by hosts follow.
    for group in spec.groups.keys() {
        check_name(group.get_ref(), "group")
            .map_err(|e| error(group.span(), e.to_string(), "here"))?;
        inv.group_entry(group.get_ref());
    }

    for (host_name, host_spec) in spec.hosts {
        check_name(host_name.get_ref(), "host")
            .map_err(|e| error(host_name.span(), e.to_string(), "here"))?;
        let mut host = Host::new(host_name.get_ref());
        if let Some(address) = host_spec.address {
            if address.get_ref().trim().is_empty() {
                let message = format!("empty address for host `{}`", host.name);
                return Err(error(address.span(), message, "here").into());
            }
            host.address = address.into_inner();
        }
        if let Some(port) = host_spec.port {
            let value = u16::try_from(*port.get_ref()).ok().filter(|p| *p > 0);
            let Some(value) = value else {
                let message = bad_port(&port.get_ref().to_string());
                return Err(error(port.span(), message, "not a port").into());
            };
            host.port = Some(value);
        }
        host.user = host_spec.user;
        host.identity_file = host_spec.identity_file.map(PathBuf::from);
        host.connection = match host_spec.connection {
            None => Connection::default_for(&host.address),
            Some(connection) => match connection.get_ref().as_str() {
                "local" => Connection::Local,
                "ssh" => Connection::Ssh,
                other => {
                    let message =
                        format!("unknown connection `{other}`: expected `local` or `ssh`");
                    return Err(error(connection.span(), message, "here").into());
                }
            },
        };
        for group in host_spec.groups {
            check_name(group.get_ref(), "group")
                .map_err(|e| error(group.span(), e.to_string(), "here"))?;
            // Every host is in `all` already.
            if group.get_ref() == "all" {
                continue;
            }
            inv.group_entry(group.get_ref());
            if !host.groups.contains(group.get_ref()) {
                host.groups.push(group.into_inner());
            }
        }
        host.vars = to_vars(host_spec.vars);
        inv.hosts.insert(host.name.clone(), host);
    }

    let mut child_spans: HashMap<(String, String), Range<usize>> = HashMap::new();
    for (group_name, group_spec) in spec.groups {
        let group_name = group_name.into_inner();
        let vars = to_vars(group_spec.vars);
        inv.groups[&group_name].vars.extend(vars);
        for child in group_spec.children {
            if child.get_ref() == "all" {
                let message = "`all` cannot be a child group".to_string();
                let err = error(child.span(), message, "here")
                    .with_help("`all` already holds every host");
                return Err(err.into());
            }
            if !inv.groups.contains_key(child.get_ref()) {
                let message = format!("no group named `{}`", child.get_ref());
                let err = error(child.span(), message, "unknown group").with_help(format!(
                    "define it with `[groups.{}]`, or list it in a host's `groups`",
                    child.get_ref()
                ));
                return Err(err.into());
            }
            let children = &mut inv.groups[&group_name].children;
            if !children.contains(child.get_ref()) {
                children.push(child.get_ref().clone());
            }
            child_spans
                .entry((group_name.clone(), child.get_ref().clone()))
                .or_insert(child.span());
        }
        for member in group_spec.hosts {
            let Some(host) = inv.hosts.get_mut(member.get_ref()) else {
                let message = format!("no host named `{}`", member.get_ref());
                let err = error(member.span(), message, "unknown host")
                    .with_help(format!("define it with `[hosts.{}]`", member.get_ref()));
                return Err(err.into());
            };
            if group_name != "all" && !host.groups.contains(&group_name) {
                host.groups.push(group_name.clone());
            }
        }
    }

    if let Some(cycle) = find_cycle(&inv) {
        let parent = &cycle[cycle.len() - 2];
        let child = &cycle[cycle.len() - 1];
        let span = child_spans[&(parent.clone(), child.clone())].clone();
        let message = format!("child groups form a cycle: {}", cycle.join(" -> "));
        let label = format!("`{child}` is already an ancestor of `{parent}`");
        return Err(error(span, message, &label).into());
    }
    Ok(inv)
}

/// An empty group or host name (`what` says which).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("empty {0} name")]
struct EmptyName(&'static str);

/// Names end up in patterns and messages: an empty one could never be selected.
fn check_name(name: &str, what: &'static str) -> Result<(), EmptyName> {
    if name.trim().is_empty() {
        Err(EmptyName(what))
    } else {
        Ok(())
    }
}

fn to_vars(vars: TomlVars) -> Vars {
    vars.into_iter().map(|(k, v)| (k, to_json(v))).collect()
}

/// Variables are JSON everywhere else; TOML datetimes have no JSON type, so they become
/// strings in TOML's own notation.
fn to_json(value: ::toml::Value) -> serde_json::Value {
    use ::toml::Value as T;
    use serde_json::Value as J;
    match value {
        T::String(s) => J::String(s),
        T::Integer(i) => J::from(i),
        T::Float(f) => serde_json::Number::from_f64(f)
            .map(J::Number)
            .unwrap_or_else(|| J::String(f.to_string())),
        T::Boolean(b) => J::Bool(b),
        T::Datetime(d) => J::String(d.to_string()),
        T::Array(items) => J::Array(items.into_iter().map(to_json).collect()),
        T::Table(table) => J::Object(table.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_name_says_which() {
        assert_eq!(EmptyName("group").to_string(), "empty group name");
        assert_eq!(
            check_name(" ", "host").unwrap_err().to_string(),
            "empty host name"
        );
    }
    use crate::error::{Error, line_of};
    use serde_json::json;

    const FLEET: &str = r#"
[vars]
ntp = "pool.ntp.org"
level = "all"

[hosts.web-1]
address = "10.0.0.11"
port = 2222
user = "deploy"
identity_file = "~/.ssh/id_ed25519"
groups = ["web", "prod"]
vars = { role = "frontend", level = "host" }

[hosts.db-1]
groups = ["db"]
vars = { since = 2024-01-02T03:04:05Z, ratio = 0.5, tags = ["a", "b"] }

[hosts.localhost]

[hosts.box]
address = "localhost"
connection = "ssh"

[groups.web]
vars = { http_port = 80, level = "web" }
children = ["web-eu"]
hosts = ["localhost"]

[groups.web-eu]
"#;

    fn source_error(text: &str) -> Box<SourceError> {
        match parse("fleet.toml", text) {
            Err(Error::Source(e)) => e,
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    fn error_line(text: &str) -> usize {
        line_of(text, source_error(text).span.offset())
    }

    #[test]
    fn parses_hosts_in_file_order_with_every_field() {
        let inv = parse("fleet.toml", FLEET).unwrap();
        assert_eq!(
            inv.host_names().collect::<Vec<_>>(),
            ["web-1", "db-1", "localhost", "box"]
        );
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            ["all", "web", "web-eu", "prod", "db"]
        );
        let web1 = &inv.hosts["web-1"];
        assert_eq!(web1.address, "10.0.0.11");
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.identity_file, Some(PathBuf::from("~/.ssh/id_ed25519")));
        assert_eq!(web1.connection, Connection::Ssh);
        assert_eq!(web1.groups, ["web", "prod"]);
        assert_eq!(inv.groups["all"].vars["ntp"], json!("pool.ntp.org"));
        assert_eq!(inv.groups["web"].children, ["web-eu"]);

        let db1 = &inv.hosts["db-1"];
        assert_eq!(db1.address, "db-1");
        assert_eq!(db1.vars["since"], json!("2024-01-02T03:04:05Z"));
        assert_eq!(db1.vars["ratio"], json!(0.5));
        assert_eq!(db1.vars["tags"], json!(["a", "b"]));

        let localhost = &inv.hosts["localhost"];
        assert_eq!(localhost.connection, Connection::Local);
        assert_eq!(localhost.groups, ["web"], "from the group's `hosts`");
        assert_eq!(inv.hosts["box"].connection, Connection::Ssh);

        let resolved = inv.resolve("web-1").unwrap();
        assert_eq!(resolved.groups, ["prod", "web"]);
        assert_eq!(resolved.vars["level"], json!("host"));
        assert_eq!(resolved.vars["http_port"], json!(80));
        assert_eq!(resolved.vars["ntp"], json!("pool.ntp.org"));
    }

    #[test]
    fn syntax_errors_point_at_their_line() {
        let text = "[hosts.a]\naddress = \"x\"\nport = \n";
        assert_eq!(error_line(text), 3);
        let rendered = crate::inventory::tests::render(&source_error(text));
        assert!(rendered.contains("fleet.toml:3:"), "{rendered}");
    }

    #[test]
    fn unknown_fields_and_wrong_types_point_at_their_line() {
        let text = "[hosts.a]\naddress = \"x\"\nadress = \"y\"\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 3);
        assert!(err.message.contains("adress"), "{}", err.message);
        assert_eq!(error_line("[vars]\nx = 1\n[hostz.a]\n"), 3);
        assert_eq!(error_line("[hosts.a]\n\ngroups = \"web\"\n"), 3);
        assert_eq!(error_line("[hosts.a]\nport = \"22\"\n"), 2);
        assert_eq!(error_line("[groups.g]\nchildren = [\"a\", 3]\n"), 2);
    }

    #[test]
    fn bad_ports_and_connections_point_at_the_value() {
        let text = "[hosts.a]\nport = 22\n[hosts.b]\nport = 70000\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 4);
        assert_eq!(&text[err.span.offset()..][..5], "70000");
        assert_eq!(
            err.message,
            "bad port `70000`: expected a number from 1 to 65535"
        );
        assert_eq!(error_line("[hosts.a]\nport = 0\n"), 2);
        let text = "[hosts.a]\n\nconnection = \"docker\"\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 3);
        assert!(err.message.contains("unknown connection `docker`"));
    }

    #[test]
    fn unknown_children_and_members_are_errors() {
        let text = "[hosts.a]\ngroups = [\"web\"]\n[groups.prod]\nchildren = [\"web\", \"dbs\"]\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 4);
        assert_eq!(&text[err.span.offset()..][..5], "\"dbs\"");
        assert_eq!(err.message, "no group named `dbs`");

        let text = "[hosts.a]\n[groups.web]\nhosts = [\"a\",\n  \"b\"]\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 4);
        assert_eq!(err.message, "no host named `b`");

        assert_eq!(error_line("[groups.x]\nchildren = [\"all\"]\n"), 2);
        assert_eq!(error_line("[hosts.\"\"]\n"), 1);
        assert_eq!(error_line("[hosts.a]\naddress = \"\"\n"), 2);
    }

    #[test]
    fn child_cycles_point_at_the_closing_edge() {
        let text = "[groups.a]\nchildren = [\"b\"]\n[groups.b]\nchildren = [\"c\"]\n[groups.c]\nchildren = [\"a\"]\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 6);
        assert_eq!(err.message, "child groups form a cycle: a -> b -> c -> a");
    }

    #[test]
    fn all_can_be_configured_as_a_group_too() {
        let text =
            "[vars]\na = 1\n[groups.all]\nvars = { b = 2 }\nchildren = [\"web\"]\n[groups.web]\n";
        let inv = parse("fleet.toml", text).unwrap();
        assert_eq!(inv.groups.keys().collect::<Vec<_>>(), ["all", "web"]);
        assert_eq!(inv.groups["all"].vars["a"], json!(1));
        assert_eq!(inv.groups["all"].vars["b"], json!(2));
    }
}
