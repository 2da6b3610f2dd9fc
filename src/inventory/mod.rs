//! The hosts fleet knows about: their addresses, groups and variables.
//!
//! Five formats feed one model: fleet's TOML, a plain host list, and Ansible's INI, YAML
//! and dynamic inventory scripts (`ansible` holds what those three share); `pattern`
//! selects hosts the way Ansible patterns do, and `resolve` merges variables
//! all < parent groups < child groups < host.

mod ansible;
pub(crate) mod checks;
mod detect;
pub(crate) mod edit;
mod ini;
mod pattern;
mod plain;
pub(crate) mod script;
mod toml;
pub(crate) mod vars;
mod yaml;

use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use detect::{Format, detect_format};
pub(crate) use pattern::select;

/// Variables as JSON values: every format maps onto them and `--json` prints them as is.
pub(crate) type Vars = IndexMap<String, serde_json::Value>;

/// How commands reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Connection {
    /// `sh -c` on the machine fleet runs on.
    Local,
    /// OpenSSH to `address`.
    Ssh,
}

impl Connection {
    /// `localhost` means this machine unless the inventory says otherwise, as in Ansible.
    pub(crate) fn default_for(address: &str) -> Self {
        if address == "localhost" {
            Connection::Local
        } else {
            Connection::Ssh
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) port: Option<u16>,
    pub(crate) user: Option<String>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) connection: Connection,
    /// Groups the host was put in directly (not their parents, not `all`).
    pub(crate) groups: Vec<String>,
    /// The host's own variables, before merging with group variables.
    pub(crate) vars: Vars,
}

impl Host {
    pub(crate) fn new(name: &str) -> Self {
        Host {
            name: name.to_string(),
            address: name.to_string(),
            port: None,
            user: None,
            identity_file: None,
            connection: Connection::default_for(name),
            groups: Vec::new(),
            vars: Vars::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) vars: Vars,
    /// Names of child groups: their hosts are members of this group too.
    pub(crate) children: Vec<String>,
}

/// A parsed inventory. Hosts and groups keep the order of the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inventory {
    /// Display name of the file it came from (for messages).
    pub(crate) source: String,
    pub(crate) hosts: IndexMap<String, Host>,
    /// Every group, including `all` (which always exists and holds every host).
    pub(crate) groups: IndexMap<String, Group>,
}

/// A host with everything merged: what a recipe sees as `h`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct ResolvedHost {
    pub(crate) name: String,
    pub(crate) address: String,
    pub(crate) port: Option<u16>,
    pub(crate) user: Option<String>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) connection: Connection,
    /// Every group the host belongs to, direct or through a child group, parents first;
    /// `all` is left out.
    pub(crate) groups: Vec<String>,
    pub(crate) vars: Vars,
}

impl Inventory {
    /// Parses inventory text in any supported format, recognised by content.
    /// `name` is used in error messages (usually the path as the user gave it).
    pub(crate) fn parse(name: &str, text: &str) -> crate::error::Result<Inventory> {
        let inventory = match detect_format(name, text) {
            Format::Toml => toml::parse(name, text)?,
            Format::Yaml => yaml::parse(name, text)?,
            Format::Ini => ini::parse(name, text)?,
            Format::Plain => plain_or_else(name, text)?,
        };
        inventory.check_connection_values(text)?;
        Ok(inventory)
    }

    /// Reads the inventory file at `path` (`shown` in messages): an executable with a
    /// `#!` line or an ELF header is a dynamic inventory and is run with `--list` (for at
    /// most `timeout`); anything else is text in one of the formats `parse` reads.
    pub(crate) fn load(
        path: &Path,
        shown: &str,
        timeout: Duration,
    ) -> crate::error::Result<Inventory> {
        use crate::error::Error;
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let mut file = std::fs::File::open(path).map_err(Error::read(path))?;
        let mode = file
            .metadata()
            .map_err(Error::read(path))?
            .permissions()
            .mode();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(Error::read(path))?;
        let what = if bytes.starts_with(b"#!") {
            Some("starts with `#!`")
        } else if bytes.starts_with(b"\x7fELF") {
            Some("is a program")
        } else {
            None
        };
        if let Some(what) = what {
            if mode & 0o111 == 0 {
                return Err(Error::usage_with_help(
                    format!("inventory {shown} {what} but is not executable"),
                    format!(
                        "to use it as a dynamic inventory, make it executable: chmod +x {shown}"
                    ),
                ));
            }
            return script::load(path, shown, timeout);
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::usage(format!(
                "inventory {shown} is neither text (UTF-8) nor an executable program"
            ))
        })?;
        Inventory::parse(shown, &text)
    }

    /// Refuses names, addresses and users that could become an option or a path, with
    /// the line that holds the value (found by its text, as each format quotes it).
    fn check_connection_values(&self, text: &str) -> crate::error::Result<()> {
        for host in self.hosts.values() {
            let checks = [
                (host.name.as_str(), checks::host_name(&host.name)),
                (host.address.as_str(), checks::address(&host.address)),
                (
                    host.user.as_deref().unwrap_or_default(),
                    host.user.as_deref().map_or(Ok(()), checks::user),
                ),
            ];
            for (value, result) in checks {
                if let Err(message) = result {
                    let at = text.find(value).filter(|_| !value.is_empty()).unwrap_or(0);
                    let err = crate::error::SourceError::at_span(
                        &self.source,
                        text,
                        (at, value.len().max(1)).into(),
                        format!("host `{}`: {message}", host.name.escape_debug()),
                        "here",
                    )
                    .with_help("fix or remove the value; fleet refuses values that ssh would read as an option and names that would become a path outside fleet's folders");
                    return Err(err.into());
                }
            }
        }
        Ok(())
    }

    /// What every parser starts from: `all` must exist, and come first.
    fn empty(source: &str) -> Inventory {
        let mut groups = IndexMap::new();
        groups.insert(
            "all".to_string(),
            Group {
                name: "all".to_string(),
                ..Group::default()
            },
        );
        Inventory {
            source: source.to_string(),
            hosts: IndexMap::new(),
            groups,
        }
    }

    /// The group called `name`, created empty (after the existing ones) if needed.
    fn group_entry(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            })
    }

    /// Host names in inventory order.
    pub(crate) fn host_names(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// The host called `name`, resolved; an error names the closest host if there is one.
    pub(crate) fn require(&self, name: &str) -> crate::error::Result<ResolvedHost> {
        self.resolve(name).ok_or_else(|| {
            let message = format!("no host named `{name}` in {}", self.source);
            match crate::suggest::closest(name, self.host_names()) {
                Some(c) => {
                    crate::error::Error::usage_with_help(message, format!("did you mean `{c}`?"))
                }
                None => crate::error::Error::usage(message),
            }
        })
    }

    /// Merges variables all < groups (parents before children, then by name) < host.
    pub(crate) fn resolve(&self, host: &str) -> Option<ResolvedHost> {
        vars::resolve(self, host)
    }

    /// For resolving many hosts: the group hierarchy is worked out once.
    pub(crate) fn resolver(&self) -> vars::Resolver<'_> {
        vars::Resolver::new(self)
    }
}

/// A file that nothing marks as TOML, YAML or INI is read as a host list; if it is none,
/// valid YAML (flow style, say) is still taken, and otherwise the error says what was tried.
fn plain_or_else(name: &str, text: &str) -> crate::error::Result<Inventory> {
    let mut plain_err = match plain::parse(name, text) {
        Ok(inventory) => return Ok(inventory),
        Err(crate::error::Error::Source(e)) => e,
        Err(other) => return Err(other),
    };
    let yaml_err = match yaml::read::<serde_json::Value>(name, text) {
        Ok(serde_json::Value::Object(_)) => match yaml::parse(name, text) {
            Ok(inventory) if inventory.groups.len() > 1 || !inventory.hosts.is_empty() => {
                return Ok(inventory);
            }
            Ok(_) => "no group in it".to_string(),
            Err(crate::error::Error::Source(e)) => e.message,
            Err(other) => other.to_string(),
        },
        Ok(_) => "it is not a mapping of group names".to_string(),
        Err(crate::error::Error::Source(e)) => e.message,
        Err(other) => other.to_string(),
    };
    let toml_err = match ::toml::from_str::<::toml::Table>(text) {
        Ok(_) => "tables other than `hosts`, `groups` and `vars`".to_string(),
        Err(e) => e.message().lines().next().unwrap_or_default().to_string(),
    };
    let tried = format!(
        "fleet tried every format it reads: TOML ({toml_err}), Ansible YAML ({yaml_err}), Ansible INI (no `[group]` section or `key=value`), a plain host list (this error), and an executable dynamic inventory (it is not a program with `#!`)"
    );
    let help = match plain_err.help.take() {
        Some(help) => format!("{help}\n{tried}"),
        None => tried,
    };
    Err(plain_err.with_help(help).into())
}

/// Ports as every format accepts them, so that they agree on what a bad port is.
fn parse_port(text: &str) -> Option<u16> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(port) => Some(port),
    }
}

/// The one wording of a bad port, whatever the format.
fn bad_port(text: &str) -> String {
    format!("bad port `{text}`: expected a number from 1 to 65535")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A source error as the user sees it, without colours.
    pub(crate) fn render(err: &crate::error::SourceError) -> String {
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::none())
            .render_report(&mut out, err)
            .unwrap();
        out
    }

    const PLAIN: &str = "\
# the fleet
deploy@web-1:2222
web-2
db-1
";

    const INI: &str = "\
[web]
web-1 ansible_port=2222 ansible_user=deploy
web-2 role=spare

[db]
db-1

[prod:children]
web
db

[prod:vars]
tier=1
[web:vars]
tier=2
[all:vars]
ntp=pool.ntp.org
tier=0
";

    const TOML: &str = r#"
[vars]
ntp = "pool.ntp.org"
tier = 0

[hosts.web-1]
port = 2222
user = "deploy"
groups = ["web"]

[hosts.web-2]
groups = ["web"]
vars = { role = "spare" }

[hosts.db-1]
groups = ["db"]

[groups.prod]
children = ["web", "db"]
vars = { tier = 1 }

[groups.web]
vars = { tier = 2 }
"#;

    #[test]
    fn every_format_describes_the_same_fleet() {
        let plain = Inventory::parse("hosts", PLAIN).unwrap();
        let ini = Inventory::parse("hosts", INI).unwrap();
        let toml = Inventory::parse("inventory", TOML).unwrap();

        let connection = |inv: &Inventory| -> Vec<_> {
            inv.hosts
                .values()
                .map(|h| {
                    (
                        h.name.clone(),
                        h.address.clone(),
                        h.port,
                        h.user.clone(),
                        h.connection,
                    )
                })
                .collect()
        };
        assert_eq!(connection(&plain), connection(&ini));
        assert_eq!(connection(&plain), connection(&toml));

        for name in ["web-1", "web-2", "db-1"] {
            let from_ini = ini.resolve(name).unwrap();
            assert_eq!(from_ini, toml.resolve(name).unwrap(), "{name}");
            let from_plain = plain.resolve(name).unwrap();
            assert!(from_plain.groups.is_empty());
        }
        let web2 = toml.resolve("web-2").unwrap();
        assert_eq!(web2.groups, ["prod", "web"]);
        assert_eq!(web2.vars["tier"], json!(2), "all < prod < web");
        assert_eq!(web2.vars["role"], json!("spare"));
        assert_eq!(web2.vars["ntp"], json!("pool.ntp.org"));
        assert_eq!(toml.resolve("db-1").unwrap().vars["tier"], json!(1));
    }

    #[test]
    fn an_unreadable_file_says_which_formats_were_tried() {
        let err = match Inventory::parse("hosts", "web-1\nweb-2:http\n") {
            Err(crate::error::Error::Source(e)) => e,
            other => panic!("expected a source error, got {other:?}"),
        };
        assert_eq!(
            crate::error::line_of("web-1\nweb-2:http\n", err.span.offset()),
            2
        );
        let help = err.help.unwrap_or_default();
        for format in [
            "TOML (",
            "Ansible YAML (",
            "Ansible INI (",
            "plain host list",
            "executable",
        ] {
            assert!(help.contains(format), "{format}: {help}");
        }
    }

    #[test]
    fn yaml_in_flow_style_is_read_although_nothing_marks_it() {
        let inv = Inventory::parse("hosts", "{all: {hosts: {a: , b: }}}\n").unwrap();
        assert_eq!(inv.host_names().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn the_same_fleet_in_yaml() {
        let yaml = "\
all:
  vars: {ntp: pool.ntp.org, tier: 0}
  children:
    web:
      hosts:
        web-1: {ansible_port: 2222, ansible_user: deploy}
        web-2: {role: spare}
      vars: {tier: 2}
    db:
      hosts:
        db-1:
    prod:
      children: {web: , db: }
      vars: {tier: 1}
";
        let yaml = Inventory::parse("hosts.yml", yaml).unwrap();
        let toml = Inventory::parse("inventory", TOML).unwrap();
        for name in ["web-1", "web-2", "db-1"] {
            assert_eq!(
                yaml.resolve(name).unwrap(),
                toml.resolve(name).unwrap(),
                "{name}"
            );
        }
    }
}
