//! The hosts fleet knows about: their addresses, groups and variables.
//!
//! Three file formats feed one model (`toml`, `plain`, `ini`); `pattern` selects hosts
//! the way Ansible patterns do, and `resolve` merges variables all < group < host.

mod detect;
mod ini;
mod pattern;
mod plain;
mod toml;
mod vars;

use indexmap::IndexMap;
use std::path::{Path, PathBuf};

pub use detect::{Format, detect_format};
pub use pattern::select;

/// Variables as JSON values: every format maps onto them and `--json` prints them as is.
pub type Vars = IndexMap<String, serde_json::Value>;

/// How commands reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    /// `sh -c` on the machine fleet runs on.
    Local,
    /// OpenSSH to `address`.
    Ssh,
}

impl Connection {
    /// `localhost` means this machine unless the inventory says otherwise, as in Ansible.
    pub fn default_for(address: &str) -> Self {
        if address == "localhost" {
            Connection::Local
        } else {
            Connection::Ssh
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub connection: Connection,
    /// Groups the host was put in directly (not their parents, not `all`).
    pub groups: Vec<String>,
    /// The host's own variables, before merging with group variables.
    pub vars: Vars,
}

impl Host {
    pub fn new(name: &str) -> Self {
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
pub struct Group {
    pub name: String,
    pub vars: Vars,
    /// Names of child groups: their hosts are members of this group too.
    pub children: Vec<String>,
}

/// A parsed inventory. Hosts and groups keep the order of the file.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Display name of the file it came from (for messages).
    pub source: String,
    pub hosts: IndexMap<String, Host>,
    /// Every group, including `all` (which always exists and holds every host).
    pub groups: IndexMap<String, Group>,
}

/// A host with everything merged: what a recipe sees as `h`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResolvedHost {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub connection: Connection,
    /// Every group the host belongs to, direct or through a child group, parents first;
    /// `all` is left out.
    pub groups: Vec<String>,
    pub vars: Vars,
}

impl Inventory {
    /// Parses inventory text in any supported format, recognised by content.
    /// `name` is used in error messages (usually the path as the user gave it).
    pub fn parse(name: &str, text: &str) -> crate::error::Result<Inventory> {
        let inventory = match detect_format(name, text) {
            Format::Toml => toml::parse(name, text)?,
            Format::Ini => ini::parse(name, text)?,
            Format::Plain => plain::parse(name, text)?,
        };
        Ok(inventory)
    }

    pub fn load(path: &Path) -> crate::error::Result<Inventory> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::io(path, &e))?;
        Inventory::parse(&path.display().to_string(), &text)
    }

    /// Host names in inventory order.
    pub fn host_names(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// Merges variables all < groups (parents before children, then by name) < host.
    pub fn resolve(&self, host: &str) -> Option<ResolvedHost> {
        vars::resolve(self, host)
    }
}
