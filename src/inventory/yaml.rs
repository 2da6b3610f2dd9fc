//! Ansible's YAML inventory (`all:` / `children:` / `hosts:` / `vars:`), read with
//! Ansible's semantics: top-level keys are groups, host keys may hold ranges
//! (`web[01:04]`, `db[1:5:2]`) and a port (`web-1:2222`), `ansible_*` connection
//! variables become the host's fields exactly as in the INI format.
//!
//! Unlike Ansible, which only warns, an unknown key in a group (`host:` for `hosts:`)
//! and a duplicate key are errors: they would silently drop hosts or values.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::ansible::{Field, SetOnHost, apply_group_fields, expand, implicit_group};
use super::plain::parse_target;
use super::vars::find_cycle;
use super::{Host, Inventory};
use crate::error::{Result, SourceError};

type Name = Spanned<String>;
type YamlVars = IndexMap<Name, Spanned<Node>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    #[serde(default)]
    vars: Option<YamlVars>,
    #[serde(default)]
    children: Option<IndexMap<Name, Option<GroupSpec>>>,
    #[serde(default)]
    hosts: Option<IndexMap<Name, Option<YamlVars>>>,
}

/// A variable's value with the place of every scalar in it, so that the few plain
/// scalars serde-saphyr and PyYAML (Ansible's YAML 1.1) read differently get PyYAML's
/// reading: `y`/`n` are strings, `1:20` is the number 80.
enum Node {
    Scalar(serde_json::Value),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(String, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Node, D::Error> {
        use serde::de::{MapAccess, SeqAccess, Visitor};
        use serde_json::Value;
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::String(v.to_string())))
            }
            fn visit_u128<E>(self, v: u128) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::String(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(serde_json::Number::from_f64(v).map_or_else(
                    || Value::String(v.to_string()),
                    Value::Number,
                )))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::String(v)))
            }
            fn visit_unit<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Scalar(Value::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Node::Map(entries))
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

impl Node {
    /// The value as JSON, `at` being where it is written (`text` is the whole file).
    fn to_json<T>(&self, text: &str, at: &Spanned<T>) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Scalar(value) => pyyaml(value, raw(text, at)),
            Node::Seq(items) => {
                Value::Array(items.iter().map(|i| i.value.to_json(text, i)).collect())
            }
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.to_json(text, v)))
                    .collect(),
            ),
        }
    }
}

/// The text a scalar is written as (its definition, for an alias); empty if unknown.
fn raw<'t, T>(text: &'t str, at: &Spanned<T>) -> &'t str {
    let span = at.defined.span();
    let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) else {
        return "";
    };
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let end = start.saturating_add(usize::try_from(len).unwrap_or(0));
    text.get(start..end).unwrap_or("")
}

/// PyYAML's reading of a plain scalar where it differs from serde-saphyr's.
fn pyyaml(value: &serde_json::Value, raw: &str) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Bool(_) if matches!(raw, "y" | "Y" | "n" | "N") => Value::String(raw.to_string()),
        Value::String(s) if s == raw => sexagesimal(s).unwrap_or_else(|| value.clone()),
        _ => value.clone(),
    }
}

/// YAML 1.1's base 60 integers (`1:20` is 80, `-1:00:05` is -3605) and floats (`1:20.5`).
fn sexagesimal(s: &str) -> Option<serde_json::Value> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut parts = unsigned.split(':');
    let head = parts.next()?.replace('_', "");
    let tail: Vec<&str> = parts.collect();
    if tail.is_empty() || head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (last, fraction) = match tail[tail.len() - 1].split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction.replace('_', ""))),
        None => (tail[tail.len() - 1], None),
    };
    let base60 = |p: &str| {
        (1..=2).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u64>().is_ok_and(|n| n < 60)
    };
    let middle = &tail[..tail.len() - 1];
    if !(middle.iter().all(|p| base60(p)) && base60(last)) {
        return None;
    }
    let sign = if negative { -1.0 } else { 1.0 };
    match fraction {
        None => {
            // PyYAML's integer form has no leading zero.
            if head.starts_with('0') {
                return None;
            }
            let mut n: i64 = head.parse().ok()?;
            for p in middle.iter().chain([&last]) {
                n = n.checked_mul(60)?.checked_add(p.parse().ok()?)?;
            }
            Some(serde_json::Value::from(if negative { -n } else { n }))
        }
        Some(fraction) => {
            if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let mut n: f64 = head.parse().ok()?;
            for p in middle {
                n = n * 60.0 + p.parse::<f64>().ok()?;
            }
            n = n * 60.0 + format!("{last}.{fraction}").parse::<f64>().ok()?;
            serde_json::Number::from_f64(sign * n).map(serde_json::Value::Number)
        }
    }
}

/// YAML as Ansible reads it (PyYAML, YAML 1.1): `yes`/`no` are booleans and `0755` is
/// octal. A duplicate key is an error rather than the last one winning silently.
/// serde-saphyr's budget (nesting depth 64, alias expansion) stays; the node count is
/// raised from 250,000 so that an inventory of 100,000 hosts with a few variables each
/// still reads (60,000 hosts read in 0.4 s in a release build).
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: false,
        with_snippet: false,
        // JSON has no infinity: `.inf` stays the text it is.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        budget: serde_saphyr::budget! {
            max_nodes: 5_000_000,
            max_events: 20_000_000,
        },
    }
}

/// Reads `text` as YAML into `T`, turning a YAML or shape error into an error at its place.
pub(super) fn read<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<T> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| {
        let (at, message) = locate(text, &e);
        let err = SourceError::at_span(name, text, (at, 1).into(), message, "here").with_help(
            "an Ansible YAML inventory maps group names to `hosts:` (a mapping of host names to their variables), `vars:` and `children:` (a mapping of groups)",
        );
        err.into()
    })
}

/// The byte offset and message of a YAML error; serde-saphyr reports line and column.
fn locate(text: &str, err: &serde_saphyr::Error) -> (usize, String) {
    let err = err.without_snippet();
    let at = err
        .location()
        .map(|l| offset_of(text, l))
        .unwrap_or_default();
    let mut message = err.to_string();
    // The position is shown by the report itself, and options are fleet's business.
    for tail in [" at line ", ", set DuplicateKeyPolicy"] {
        if let Some(cut) = message.find(tail) {
            message.truncate(cut);
        }
    }
    (at, message.lines().next().unwrap_or_default().to_string())
}

/// Byte offset of a 1-based line and (character) column.
fn offset_of(text: &str, location: serde_saphyr::Location) -> usize {
    if let Some(offset) = location.span().byte_offset() {
        return usize::try_from(offset).unwrap_or(0).min(text.len());
    }
    let line = usize::try_from(location.line()).unwrap_or(1).max(1);
    let column = usize::try_from(location.column()).unwrap_or(1).max(1);
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let rest = &text[line_start.min(text.len())..];
    line_start
        + rest
            .char_indices()
            .nth(column - 1)
            .map_or(rest.len(), |(i, _)| i)
}

pub(crate) fn parse(name: &str, text: &str) -> Result<Inventory> {
    let doc: Option<IndexMap<Name, Option<GroupSpec>>> = read(name, text)?;
    let mut parser = Parser {
        name,
        text,
        inv: Inventory::empty(name),
        set_on_host: SetOnHost::new(),
        child_spans: HashMap::new(),
        first_seen: HashMap::new(),
    };
    for (group, spec) in doc.unwrap_or_default() {
        parser.group(&group, spec.unwrap_or_default(), None)?;
    }
    parser.finish()
}

struct Parser<'t> {
    name: &'t str,
    text: &'t str,
    inv: Inventory,
    set_on_host: SetOnHost,
    /// Where each `parent -> child` edge was written, to point at a cycle.
    child_spans: HashMap<(String, String), (usize, usize)>,
    /// Where each host is first written, so that hosts keep the file's order although
    /// groups are read as Ansible reads them (children before hosts).
    /// (offset of the host key, place in its range)
    first_seen: HashMap<String, (usize, usize)>,
}

impl Parser<'_> {
    fn span<T>(&self, node: &Spanned<T>) -> (usize, usize) {
        let at = offset_of(self.text, node.referenced);
        let len = node
            .referenced
            .span()
            .byte_len()
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(1);
        (at, len.min(self.text.len().saturating_sub(at)))
    }

    fn error<T>(&self, node: &Spanned<T>, message: String, label: &str) -> SourceError {
        let (at, len) = self.span(node);
        SourceError::at_span(
            self.name,
            self.text,
            (at, len.max(1)).into(),
            message,
            label,
        )
    }

    /// Ansible reads `vars`, then `children`, then `hosts` of each group; so does fleet,
    /// so that a host written twice ends with the same variables as in Ansible.
    fn group(&mut self, name: &Name, spec: GroupSpec, parent: Option<&str>) -> Result<()> {
        let group = name.value.as_str();
        if group.trim().is_empty() {
            return Err(self.error(name, "empty group name".into(), "here").into());
        }
        if parent.is_some() && group == "all" {
            let err = self
                .error(name, "`all` cannot be a child group".into(), "here")
                .with_help("`all` already holds every host");
            return Err(err.into());
        }
        self.inv.group_entry(group);
        if let Some(parent) = parent {
            let entry = self.inv.group_entry(parent);
            if !entry.children.iter().any(|c| c == group) {
                entry.children.push(group.to_string());
            }
            let span = self.span(name);
            self.child_spans
                .entry((parent.to_string(), group.to_string()))
                .or_insert(span);
        }
        for (key, value) in spec.vars.unwrap_or_default() {
            // Checked here, where the value is known; applied to the hosts in `finish`.
            let json = value.value.to_json(self.text, &value);
            if let Some(Err(e)) = Field::from_var(&key.value, &json) {
                return Err(self.error(&value, e.to_string(), "here").into());
            }
            self.inv.group_entry(group).vars.insert(key.value, json);
        }
        for (child, spec) in spec.children.unwrap_or_default() {
            self.group(&child, spec.unwrap_or_default(), Some(group))?;
        }
        for (pattern, vars) in spec.hosts.unwrap_or_default() {
            self.hosts(group, &pattern, vars.unwrap_or_default())?;
        }
        Ok(())
    }

    /// One host key (maybe a range, maybe with a port) with its variables.
    fn hosts(&mut self, group: &str, pattern: &Name, vars: YamlVars) -> Result<()> {
        let names = expand(&pattern.value)
            .map_err(|e| self.error(pattern, e.to_string(), "bad host range"))?;
        let mut fields = Vec::new();
        let mut plain = Vec::new();
        for (key, value) in vars {
            let json = value.value.to_json(self.text, &value);
            match Field::from_var(&key.value, &json) {
                Some(Ok(field)) => fields.push(field),
                Some(Err(e)) => return Err(self.error(&value, e.to_string(), "here").into()),
                None => plain.push((key.value, json)),
            }
        }
        let (at, _) = self.span(pattern);
        for (place, name) in names.into_iter().enumerate() {
            let target = parse_target(&name, false)
                .map_err(|flaw| self.error(pattern, flaw.message, flaw.label))?;
            let host_name = target.host.to_string();
            let seen = self
                .first_seen
                .entry(host_name.clone())
                .or_insert((at, place));
            *seen = (*seen).min((at, place));
            let host = self
                .inv
                .hosts
                .entry(host_name.clone())
                .or_insert_with(|| Host::new(&host_name));
            if !implicit_group(group) && !host.groups.iter().any(|g| g == group) {
                host.groups.push(group.to_string());
            }
            let set = self.set_on_host.entry(host_name).or_default();
            if target.port.is_some() {
                host.port = target.port;
                set.insert("port");
            }
            for field in &fields {
                set.insert(field.kind());
                field.clone().apply(host);
            }
            for (key, value) in &plain {
                host.vars.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Inventory> {
        if let Some(cycle) = find_cycle(&self.inv) {
            let parent = &cycle[cycle.len() - 2];
            let child = &cycle[cycle.len() - 1];
            let (at, len) = self.child_spans[&(parent.clone(), child.clone())];
            let message = format!("child groups form a cycle: {}", cycle.join(" -> "));
            let label = format!("`{child}` is already an ancestor of `{parent}`");
            let err = SourceError::at_span(
                self.name,
                self.text,
                (at, len.max(1)).into(),
                message,
                &label,
            );
            return Err(err.into());
        }
        apply_group_fields(&mut self.inv, &self.set_on_host);
        let first_seen = &self.first_seen;
        self.inv
            .hosts
            .sort_by_cached_key(|name, _| first_seen.get(name).copied().unwrap_or((usize::MAX, 0)));
        Ok(self.inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, line_of};
    use crate::inventory::Connection;
    use serde_json::json;

    fn source_error(text: &str) -> Box<SourceError> {
        match parse("hosts.yml", text) {
            Err(Error::Source(e)) => e,
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    fn error_line(text: &str) -> usize {
        line_of(text, source_error(text).span.offset())
    }

    const FLEET: &str = "\
# an Ansible YAML inventory
all:
  vars:
    ntp: pool.ntp.org
    tier: 0
  hosts:
    bastion:
      ansible_host: 203.0.113.9
      ansible_port: 2200
  children:
    web:
      vars:
        http_port: 80
        ansible_user: deploy
        tier: 2
      hosts:
        web[01:03]:
        web-eu-1:2222:
          ansible_user: admin
          enabled: yes
          mode: 0755
          label: \"two words\"
          tags: [a, b]
    db:
      hosts:
        db-[a:c]:
        local-db:
          ansible_connection: local
          ansible_ssh_private_key_file: ~/.ssh/db
    prod:
      vars:
        tier: 1
      children:
        web:
        db:
";

    #[test]
    fn parses_groups_hosts_ranges_vars_and_connection_fields() {
        let inv = parse("hosts.yml", FLEET).unwrap();
        assert_eq!(
            inv.host_names().collect::<Vec<_>>(),
            [
                "bastion", "web01", "web02", "web03", "web-eu-1", "db-a", "db-b", "db-c",
                "local-db"
            ]
        );
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            ["all", "web", "db", "prod"]
        );
        assert_eq!(inv.groups["all"].children, ["web", "db", "prod"]);
        assert_eq!(inv.groups["prod"].children, ["web", "db"]);

        let bastion = &inv.hosts["bastion"];
        assert_eq!(bastion.address, "203.0.113.9");
        assert_eq!(bastion.port, Some(2200));
        assert!(bastion.groups.is_empty());

        let web = inv.resolve("web02").unwrap();
        assert_eq!(web.user.as_deref(), Some("deploy"), "from web's vars");
        assert_eq!(web.groups, ["prod", "web"]);
        assert_eq!(web.vars["tier"], json!(2), "all < prod < web");
        assert_eq!(web.vars["ntp"], json!("pool.ntp.org"));
        assert!(!web.vars.contains_key("ansible_user"));

        let eu = inv.resolve("web-eu-1").unwrap();
        assert_eq!(eu.port, Some(2222));
        assert_eq!(eu.user.as_deref(), Some("admin"), "the host wins");
        assert_eq!(eu.vars["enabled"], json!(true), "YAML 1.1 as in Ansible");
        assert_eq!(eu.vars["mode"], json!(493), "octal as in Ansible");
        assert_eq!(eu.vars["label"], json!("two words"));
        assert_eq!(eu.vars["tags"], json!(["a", "b"]));

        assert_eq!(inv.resolve("db-b").unwrap().vars["tier"], json!(1));
        let local = &inv.hosts["local-db"];
        assert_eq!(local.connection, Connection::Local);
        assert_eq!(
            local.identity_file,
            Some(std::path::PathBuf::from("~/.ssh/db"))
        );
    }

    #[test]
    fn top_level_groups_and_empty_sections_are_fine() {
        let text = "web:\n  hosts:\n    a:\n    b: {x: 1}\ndb:\nempty:\n  hosts:\n  vars:\n";
        // Hosts keep the file's order although children are read first, as in Ansible.
        let nested = "g:\n  hosts:\n    n[1:3]:\n  children:\n    c:\n      hosts:\n        n3:\n        m:\n";
        let inv = parse("hosts.yml", nested).unwrap();
        assert_eq!(
            inv.host_names().collect::<Vec<_>>(),
            ["n1", "n2", "n3", "m"]
        );
        let inv = parse("hosts.yml", text).unwrap();
        assert_eq!(inv.host_names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            ["all", "web", "db", "empty"]
        );
        assert_eq!(inv.hosts["b"].vars["x"], json!(1));
    }

    #[test]
    fn mistakes_are_reported_on_their_line() {
        // `host:` for `hosts:` would drop every host silently.
        let text = "all:\n  children:\n    web:\n      host:\n        a:\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 4);
        assert!(err.message.contains("host"), "{}", err.message);
        // Hosts as a list instead of a mapping.
        assert_eq!(error_line("all:\n  hosts:\n    - a\n    - b\n"), 3);
        assert_eq!(
            error_line("all:\n  hosts:\n    a:\n      ansible_port: http\n"),
            4
        );
        assert_eq!(
            error_line("all:\n  vars:\n    x: 1\n  hosts:\n    web[3:1]:\n"),
            5
        );
        assert_eq!(error_line("all:\n  hosts:\n    a:\n    a:\n"), 4);
        assert_eq!(error_line("all:\n  hosts:\n   a: [\n"), 3);
        let text = "all:\n  children:\n    a:\n      children:\n        all:\n";
        assert_eq!(error_line(text), 5);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("all:\n  vars:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "    a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(source_error(&bomb).message.starts_with("budget breached"));
        let deep = format!(
            "all:\n  vars:\n    x: {}{}\n",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(source_error(&deep).message, "recursion limit exceeded");
    }

    #[test]
    fn scalars_read_as_pyyaml_reads_them() {
        let text = "all:\n  vars:\n    a: y\n    b: \"y\"\n    c: 1:20\n    d: '1:20'\n    e: {f: [n, yes, -1:00:05, 1:30.5]}\n    g: !unsafe '{{ x }}'\n    h: .inf\n    i: 01:20\n";
        let inv = parse("hosts.yml", text).unwrap();
        let v = &inv.groups["all"].vars;
        assert_eq!(v["a"], json!("y"));
        assert_eq!(v["b"], json!("y"));
        assert_eq!(v["c"], json!(80));
        assert_eq!(v["d"], json!("1:20"));
        assert_eq!(v["e"], json!({"f": ["n", true, -3605, 90.5]}));
        assert_eq!(v["g"], json!("{{ x }}"));
        assert_eq!(v["h"], json!(".inf"));
        assert_eq!(v["i"], json!("01:20"));
    }

    #[test]
    fn child_cycles_point_at_the_closing_edge() {
        let text = "a:\n  children:\n    b:\n      children:\n        a:\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 5);
        assert_eq!(err.message, "child groups form a cycle: a -> b -> a");
    }

    #[test]
    fn bad_host_names_are_refused_like_every_format() {
        let text = "all:\n  hosts:\n    good:\n    \"-oProxyCommand=x\":\n";
        assert!(crate::inventory::Inventory::parse("hosts.yml", text).is_err());
    }
}
