//! Ansible's INI inventory, so that existing Ansible inventories work unchanged.
//!
//! `ansible_host`, `ansible_user` and friends become the host's connection fields rather
//! than variables, whether they are set on the host line or in a `[group:vars]` section.

use std::collections::HashMap;

use serde_json::Value;

use super::ansible::{Field, SetOnHost, apply_group_fields, expand, implicit_group};
use super::detect::section_header;
use super::plain::parse_target;
use super::vars::find_cycle;
use super::{Host, Inventory};
use crate::error::{Result, SourceError};

pub(crate) fn parse(name: &str, text: &str) -> Result<Inventory> {
    let mut parser = Parser {
        name,
        text,
        inv: Inventory::empty(name),
        set_on_host: HashMap::new(),
        child_spans: HashMap::new(),
    };
    let mut section = Section::Hosts(None);
    let mut line_start = 0;
    for raw in text.split_inclusive('\n') {
        let start = line_start;
        line_start += raw.len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = start + raw.len() - raw.trim_start().len();
        if line.starts_with('[') && !starts_with_ipv6(line) {
            section = parser.header(line, at)?;
            continue;
        }
        match &section {
            Section::Hosts(group) => parser.host_line(group.as_deref(), line, at)?,
            Section::Vars(group) => parser.vars_line(group, line, at)?,
            Section::Children(group) => parser.child_line(group, line, at)?,
        }
    }
    parser.finish()
}

/// What the lines under the last header mean.
enum Section {
    /// Host lines; `None` before any header and under `[all]`.
    Hosts(Option<String>),
    Vars(String),
    Children(String),
}

struct Parser<'t> {
    name: &'t str,
    text: &'t str,
    inv: Inventory,
    /// Connection fields each host line set, which group variables must not override.
    set_on_host: SetOnHost,
    /// Where each `parent -> child` edge was written, to point at a cycle.
    child_spans: HashMap<(String, String), (usize, usize)>,
}

impl Parser<'_> {
    fn error(&self, at: usize, len: usize, message: String, label: &str) -> SourceError {
        SourceError::at_span(
            self.name,
            self.text,
            (at, len.max(1)).into(),
            message,
            label,
        )
    }

    fn header(&mut self, line: &str, at: usize) -> Result<Section> {
        let malformed = || {
            self.error(
                at,
                line.len(),
                format!("malformed section header `{line}`"),
                "expected `[group]`, `[group:vars]` or `[group:children]`",
            )
        };
        // Like Ansible, allow a comment after the closing bracket.
        let close = line.find(']').ok_or_else(malformed)?;
        let after = line[close + 1..].trim_start();
        if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
            return Err(malformed().into());
        }
        let inner = section_header(&line[..=close]).ok_or_else(malformed)?;
        let (group, suffix) = match inner.split_once(':') {
            Some((group, suffix)) => (group, Some(suffix)),
            None => (inner, None),
        };
        if group.is_empty() || group.contains(|c: char| c.is_whitespace() || c == '[') {
            return Err(malformed().into());
        }
        let section = match suffix {
            None if implicit_group(group) => Section::Hosts(None),
            None => Section::Hosts(Some(group.to_string())),
            Some("vars") => Section::Vars(group.to_string()),
            Some("children") => Section::Children(group.to_string()),
            Some(other) => {
                let err = self
                    .error(
                        at + 1 + group.len(),
                        other.len() + 1,
                        format!("unknown section suffix `:{other}`"),
                        "expected `:vars` or `:children`",
                    )
                    .with_help("sections are `[group]`, `[group:vars]` or `[group:children]`");
                return Err(err.into());
            }
        };
        self.inv.group_entry(group);
        Ok(section)
    }

    fn host_line(&mut self, group: Option<&str>, line: &str, at: usize) -> Result<()> {
        let tokens = tokenize(line).map_err(|(offset, message)| {
            self.error(at + offset, line.len() - offset, message, "unterminated")
        })?;
        let Some(&(_, pattern)) = tokens.first() else {
            return Ok(());
        };
        let names = expand(pattern)
            .map_err(|e| self.error(at, pattern.len(), e.to_string(), "bad host range"))?;

        let mut fields = Vec::new();
        let mut vars = Vec::new();
        for &(offset, token) in &tokens[1..] {
            let token_at = at + offset;
            let Some((key, raw)) = token.split_once('=') else {
                let err = self
                    .error(
                        token_at,
                        token.len(),
                        format!("expected `key=value` after the host, found `{token}`"),
                        "no `=`",
                    )
                    .with_help(
                        "host variables are written `name=value`, without spaces around `=`",
                    );
                return Err(err.into());
            };
            if key.is_empty() {
                let message = format!("missing variable name before `=` in `{token}`");
                return Err(self.error(token_at, 1, message, "no name").into());
            }
            let value = parse_value(raw);
            match Field::from_var(key, &value) {
                Some(Ok(field)) => fields.push(field),
                Some(Err(e)) => {
                    let value_at = token_at + key.len() + 1;
                    return Err(self
                        .error(value_at, raw.len(), e.to_string(), "here")
                        .into());
                }
                None => vars.push((key.to_string(), value)),
            }
        }

        for name in names {
            // Only an unexpanded name maps back to the line byte for byte.
            let exact = name == pattern;
            let target = parse_target(&name, false).map_err(|flaw| {
                if exact {
                    flaw.at(self.name, self.text, at)
                } else {
                    self.error(at, pattern.len(), flaw.message, flaw.label)
                }
            })?;
            let host_name = target.host.to_string();
            let host = self
                .inv
                .hosts
                .entry(host_name.clone())
                .or_insert_with(|| Host::new(&host_name));
            if let Some(group) = group
                && !host.groups.iter().any(|g| g == group)
            {
                host.groups.push(group.to_string());
            }
            let set = self.set_on_host.entry(host_name).or_default();
            // `web-1:2222` is the host's own port: a group's `ansible_port` does not win.
            if target.port.is_some() {
                host.port = target.port;
                set.insert("port");
            }
            for field in &fields {
                set.insert(field.kind());
                field.clone().apply(host);
            }
            for (key, value) in &vars {
                host.vars.insert(key.clone(), value.clone());
            }
        }
        Ok(())
    }

    fn vars_line(&mut self, group: &str, line: &str, at: usize) -> Result<()> {
        let Some((key, raw)) = line.split_once('=') else {
            let err = self
                .error(
                    at,
                    line.len(),
                    format!("expected `key=value` in `[{group}:vars]`, found `{line}`"),
                    "no `=`",
                )
                .with_help("each line of a `:vars` section sets one variable: `name=value`");
            return Err(err.into());
        };
        let name = key.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            let message = format!("bad variable name `{name}` in `[{group}:vars]`");
            return Err(self
                .error(at, key.len(), message, "expected one word")
                .into());
        }
        let value = parse_value(raw.trim());
        // Checked here, where the line is known; applied to the hosts in `finish`.
        if let Some(Err(e)) = Field::from_var(name, &value) {
            let value_at = at + line.len() - line[key.len() + 1..].trim_start().len();
            let len = raw.trim().len();
            return Err(self.error(value_at, len, e.to_string(), "here").into());
        }
        self.inv
            .group_entry(group)
            .vars
            .insert(name.to_string(), value);
        Ok(())
    }

    fn child_line(&mut self, group: &str, line: &str, at: usize) -> Result<()> {
        let mut words = line.split_whitespace().take_while(|w| !w.starts_with('#'));
        let child = words.next().unwrap_or(line);
        if words.next().is_some() {
            let message = format!("expected one group name per line in `[{group}:children]`");
            return Err(self.error(at, line.len(), message, "several words").into());
        }
        if child == "all" {
            let err = self
                .error(
                    at,
                    child.len(),
                    "`all` cannot be a child group".to_string(),
                    "here",
                )
                .with_help("`all` already holds every host");
            return Err(err.into());
        }
        // Ansible creates groups first named as children; so does fleet.
        self.inv.group_entry(child);
        let parent = self.inv.group_entry(group);
        if !parent.children.iter().any(|c| c == child) {
            parent.children.push(child.to_string());
        }
        self.child_spans
            .entry((group.to_string(), child.to_string()))
            .or_insert((at, child.len()));
        Ok(())
    }

    fn finish(mut self) -> Result<Inventory> {
        if let Some(cycle) = find_cycle(&self.inv) {
            let parent = &cycle[cycle.len() - 2];
            let child = &cycle[cycle.len() - 1];
            let (at, len) = self.child_spans[&(parent.clone(), child.clone())];
            let message = format!("child groups form a cycle: {}", cycle.join(" -> "));
            let label = format!("`{child}` is already an ancestor of `{parent}`");
            return Err(self.error(at, len, message, &label).into());
        }

        apply_group_fields(&mut self.inv, &self.set_on_host);
        Ok(self.inv)
    }
}

/// `[::1]` or `[::1]:22` opening a line is a host, not a section.
fn starts_with_ipv6(line: &str) -> bool {
    line[1..]
        .split_once(']')
        .is_some_and(|(inner, _)| inner.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Splits a host line on whitespace, keeping quoted values whole; a word starting with
/// `#` starts a comment. Errors carry the byte offset of the unterminated quote's word.
fn tokenize(line: &str) -> Result<Vec<(usize, &str)>, (usize, String)> {
    let mut tokens = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut quote = None;
        let mut end = line.len();
        while let Some(&(i, c)) = chars.peek() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '"' || c == '\'' => quote = Some(c),
                None => {}
            }
            chars.next();
        }
        if let Some(q) = quote {
            return Err((start, format!("unterminated {q} quote")));
        }
        tokens.push((start, &line[start..end]));
    }
    Ok(tokens)
}

/// Ansible's typing of INI values, which is Python's `ast.literal_eval`: quoted means
/// string; `True`, `False` and `None` (capitalised, as in Python: `true` stays a string);
/// integers and floats. Integers with leading zeros stay strings: `007` is a name.
/// Python lists and dicts are not evaluated; they stay strings.
fn parse_value(raw: &str) -> Value {
    for quote in ['"', '\''] {
        if raw.len() >= 2 && raw.starts_with(quote) && raw.ends_with(quote) {
            return Value::String(raw[1..raw.len() - 1].to_string());
        }
    }
    match raw {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if canonical && let Ok(n) = raw.parse::<i64>() {
        return Value::from(n);
    }
    // `1.5`, `.5`, `1e3`; not `inf` or `nan`, which Python reads as names.
    let float_like = digits.bytes().any(|b| b.is_ascii_digit())
        && digits.contains(['.', 'e', 'E'])
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && !digits.starts_with(['e', 'E']);
    if float_like
        && let Ok(f) = raw.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, line_of};
    use crate::inventory::Connection;
    use serde_json::json;
    use std::path::PathBuf;

    fn source_error(text: &str) -> Box<SourceError> {
        match parse("hosts.ini", text) {
            Err(Error::Source(e)) => e,
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    fn error_line(text: &str) -> usize {
        line_of(text, source_error(text).span.offset())
    }

    const FLEET: &str = "\
; an Ansible inventory
bastion ansible_host=203.0.113.9 ansible_port=2200

[web]
web-1 ansible_host=10.0.0.11 role=frontend  # the first one
web-2 ansible_user=admin weight=3 enabled=True flag=true ratio=0.5 none=None label=\"two words\" zip=007 ansible_python_interpreter=/usr/bin/python3

[db]
db-1 ansible_connection=local ansible_ssh_private_key_file=~/.ssh/db
web-1 backup=False

[prod:children]
web
db

[web:vars]
http_port=80
greeting = 'hello world'
ansible_user=deploy

[all:vars]
ntp=pool.ntp.org
";

    #[test]
    fn parses_groups_hosts_vars_and_connection_fields() {
        let inv = parse("hosts.ini", FLEET).unwrap();
        assert_eq!(
            inv.host_names().collect::<Vec<_>>(),
            ["bastion", "web-1", "web-2", "db-1"]
        );
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            ["all", "web", "db", "prod"]
        );
        assert_eq!(inv.groups["prod"].children, ["web", "db"]);
        assert_eq!(inv.groups["all"].vars["ntp"], json!("pool.ntp.org"));

        let bastion = &inv.hosts["bastion"];
        assert_eq!(bastion.address, "203.0.113.9");
        assert_eq!(bastion.port, Some(2200));
        assert!(bastion.groups.is_empty());
        assert!(bastion.vars.is_empty());

        let web1 = &inv.hosts["web-1"];
        assert_eq!(web1.groups, ["web", "db"]);
        assert_eq!(web1.address, "10.0.0.11");
        assert_eq!(web1.user.as_deref(), Some("deploy"), "from [web:vars]");
        assert_eq!(web1.vars["role"], json!("frontend"));
        assert_eq!(web1.vars["backup"], json!(false));
        assert!(!web1.vars.contains_key("ansible_host"));

        let web2 = &inv.hosts["web-2"];
        assert_eq!(web2.user.as_deref(), Some("admin"), "the host line wins");
        assert_eq!(web2.vars["weight"], json!(3));
        assert_eq!(web2.vars["enabled"], json!(true));
        assert_eq!(
            web2.vars["flag"],
            json!("true"),
            "Python's literals, as Ansible"
        );
        assert_eq!(web2.vars["ratio"], json!(0.5));
        assert_eq!(web2.vars["none"], json!(null));
        assert_eq!(web2.vars["label"], json!("two words"));
        assert_eq!(web2.vars["zip"], json!("007"));
        assert_eq!(
            web2.vars["ansible_python_interpreter"],
            json!("/usr/bin/python3")
        );

        let db1 = &inv.hosts["db-1"];
        assert_eq!(db1.connection, Connection::Local);
        assert_eq!(db1.identity_file, Some(PathBuf::from("~/.ssh/db")));

        let web = &inv.groups["web"].vars;
        assert_eq!(web["http_port"], json!(80));
        assert_eq!(web["greeting"], json!("hello world"));
        assert!(!web.contains_key("ansible_user"), "became a host field");

        let resolved = inv.resolve("web-1").unwrap();
        assert_eq!(resolved.groups, ["prod", "db", "web"]);
        assert_eq!(resolved.vars["ntp"], json!("pool.ntp.org"));
        assert_eq!(resolved.vars["http_port"], json!(80));
    }

    #[test]
    fn connection_follows_the_address_unless_set() {
        let text = "a ansible_host=localhost\nlocalhost ansible_host=10.0.0.1\nlocalhost2 ansible_connection=ssh ansible_host=localhost\n";
        let inv = parse("hosts", text).unwrap();
        assert_eq!(inv.hosts["a"].connection, Connection::Local);
        assert_eq!(inv.hosts["localhost"].connection, Connection::Ssh);
        assert_eq!(inv.hosts["localhost2"].connection, Connection::Ssh);
        let text = "[local]\nx\n[local:vars]\nansible_connection=smart\n[all:vars]\nansible_connection=local\n";
        let inv = parse("hosts", text).unwrap();
        assert_eq!(
            inv.hosts["x"].connection,
            Connection::Ssh,
            "group beats all"
        );
    }

    #[test]
    fn ranges_expand_with_padding_letters_and_steps() {
        assert_eq!(
            expand("web[01:03].example.com").unwrap(),
            [
                "web01.example.com",
                "web02.example.com",
                "web03.example.com"
            ]
        );
        assert_eq!(expand("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand("n[0:6:3]").unwrap(), ["n0", "n3", "n6"]);
        assert_eq!(
            expand("r[1:2]c[1:2]").unwrap(),
            ["r1c1", "r1c2", "r2c1", "r2c2"]
        );
        assert_eq!(expand("[::1]:22").unwrap(), ["[::1]:22"]);
        assert!(expand("web[3:1]").is_err());
        assert!(expand("web[01:100]").is_err());
        assert!(expand("web[a:3]").is_err());

        let inv = parse("hosts", "[web]\nweb[1:2]:2222 role=x\n[::1]:22\n").unwrap();
        assert_eq!(
            inv.host_names().collect::<Vec<_>>(),
            ["web1", "web2", "::1"]
        );
        assert_eq!(inv.hosts["web2"].port, Some(2222));
        assert_eq!(inv.hosts["web2"].vars["role"], json!("x"));
        assert_eq!(inv.hosts["::1"].groups, ["web"]);
        let db = parse(
            "hosts",
            "[db]\ndb-1:2022\ndb-2\n[db:vars]\nansible_port=5022\n",
        )
        .unwrap();
        assert_eq!(
            db.hosts["db-1"].port,
            Some(2022),
            "the host's own port wins"
        );
        assert_eq!(db.hosts["db-2"].port, Some(5022));
    }

    #[test]
    fn children_create_groups_never_defined() {
        let inv = parse("hosts", "[prod:children]\nweb\n").unwrap();
        assert_eq!(
            inv.groups.keys().collect::<Vec<_>>(),
            ["all", "prod", "web"]
        );
        assert!(inv.groups["web"].vars.is_empty());
    }

    #[test]
    fn malformed_headers_are_reported_on_their_line() {
        assert_eq!(error_line("a\n[web\nb\n"), 2);
        assert_eq!(error_line("a\n\n[web] x\n"), 3);
        assert_eq!(error_line("[]\n"), 1);
        let text = "[web]\na\n[web:foo]\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 3);
        assert_eq!(err.message, "unknown section suffix `:foo`");
        let rendered = crate::inventory::tests::render(&err);
        assert!(rendered.contains("hosts.ini:3:5"), "{rendered}");
    }

    #[test]
    fn bad_lines_are_reported_on_their_line() {
        assert_eq!(error_line("[web]\na\n[web:vars]\nx=1\njunk\n"), 5);
        assert_eq!(error_line("[web]\na\nb ansible_port=http\n"), 3);
        assert_eq!(error_line("a:70000\n"), 1);
        assert_eq!(error_line("[web:vars]\nansible_port=0\n"), 2);
        assert_eq!(error_line("a\nb ansible_connection=docker\n"), 2);
        assert_eq!(error_line("a\nb role\n"), 2);
        assert_eq!(error_line("a\nb role=\"x\n"), 2);
        assert_eq!(error_line("a\n[g:children]\nx y\n"), 3);
        assert_eq!(error_line("a\nweb[3:1]\n"), 2);
        let text = "a\nb ansible_port=http\n";
        let err = source_error(text);
        assert_eq!(&text[err.span.offset()..][..4], "http");
    }

    #[test]
    fn child_cycles_point_at_the_closing_edge() {
        let text = "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 6);
        assert!(err.message.contains("a -> b -> c -> a"), "{}", err.message);
        assert_eq!(error_line("[a:children]\na\n"), 2);
        assert_eq!(error_line("[a:children]\nall\n"), 2);
    }
}
