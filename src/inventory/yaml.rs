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
type YamlVars = IndexMap<Name, Spanned<serde_json::Value>>;

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
            if let Some(Err(message)) = Field::from_var(&key.value, &value.value) {
                return Err(self.error(&value, message, "here").into());
            }
            self.inv
                .group_entry(group)
                .vars
                .insert(key.value, value.value);
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
            .map_err(|message| self.error(pattern, message, "bad host range"))?;
        let mut fields = Vec::new();
        let mut plain = Vec::new();
        for (key, value) in vars {
            match Field::from_var(&key.value, &value.value) {
                Some(Ok(field)) => fields.push(field),
                Some(Err(message)) => return Err(self.error(&value, message, "here").into()),
                None => plain.push((key.value, value.value)),
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
