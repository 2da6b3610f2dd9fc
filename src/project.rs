//! Finding a fleet project (the directory with `fleet.toml`) and reading its settings.

use crate::error::{Error, Result, SourceError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub(crate) const CONFIG_FILE: &str = "fleet.toml";

/// Inventory file names tried, in order, when fleet.toml names none.
const DEFAULT_INVENTORIES: &[&str] = &[
    "inventory.toml",
    "inventory",
    "hosts",
    "inventory.ini",
    "inventory.yml",
    "inventory.yaml",
    "hosts.yml",
    "hosts.yaml",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Inventory file, relative to the project root.
    pub(crate) inventory: Option<PathBuf>,
    /// Hosts worked on at once (default 10).
    #[serde(default, deserialize_with = "at_least_one")]
    pub(crate) forks: Option<usize>,
    /// ssh master connections a run keeps open at most (default 2 × forks): the least
    /// recently used one of a host whose work has ended is closed to make room, and
    /// opened again if the recipe comes back to the host.
    #[serde(default, deserialize_with = "max_masters")]
    pub(crate) max_masters: Option<usize>,
    /// Where JSON-lines run logs go, relative to the project root (default `.fleet/logs`).
    pub(crate) log_dir: Option<PathBuf>,
    /// Seconds a dynamic inventory script may take to print its `--list` (default 30).
    #[serde(default, deserialize_with = "inventory_timeout")]
    pub(crate) inventory_timeout: Option<u64>,
    /// Default per-command timeout in seconds (none by default).
    pub(crate) command_timeout: Option<u64>,
    /// Bytes of each command's stdout and stderr kept in memory, the log and the
    /// journal (its head and tail); the rest is only streamed. Default 1 MiB.
    #[serde(default, deserialize_with = "output_limit")]
    pub(crate) output_limit: Option<usize>,
    /// Secrets for `secret("name")`: a TOML file of `name = "value"` kept outside the
    /// recipes, relative to the project root (`~/` allowed), mode 0600 or 0400.
    pub(crate) secrets_file: Option<PathBuf>,
    /// The NAME of a secret (secrets file or FLEET_SECRET_NAME, never its value) that
    /// each new guest's root password is derived from (`passwords::guest`).
    pub(crate) password_secret: Option<String>,
    /// The state repository (journal, configuration snapshots), relative to the project
    /// root (default `state`).
    pub(crate) state_dir: Option<PathBuf>,
    /// The ACME directory `proxy::site` gets certificates from (certbot's default,
    /// Let's Encrypt, when absent): staging, a private CA or a test one.
    #[serde(default, deserialize_with = "acme_directory")]
    pub(crate) acme_directory: Option<String>,
    /// The ACME account's email (none: `--register-unsafely-without-email`).
    #[serde(default, deserialize_with = "acme_email")]
    pub(crate) acme_email: Option<String>,
    /// A CA bundle ON THE PROXY HOST that certbot trusts for the directory's HTTPS.
    #[serde(default, deserialize_with = "acme_ca_bundle")]
    pub(crate) acme_ca_bundle: Option<String>,
    /// Run only signed recipes (`--require-signed` on every command line): a
    /// `--recipes-rev`, a replayed run's commit and `--catalog-repo` checkouts must be
    /// signed by a key of `allowed_signers` or `gpg_keyring`.
    #[serde(default)]
    pub(crate) require_signed: bool,
    /// ssh-keygen's allowed signers file for `--require-signed`, relative to the root.
    pub(crate) allowed_signers: Option<PathBuf>,
    /// An OpenPGP keyring (public keys, for gpgv) for `--require-signed`.
    pub(crate) gpg_keyring: Option<PathBuf>,
    /// The users of `fleet serve` (names, roles, password hashes), relative to the
    /// project root (`~/` allowed); default `.fleet/users.toml`. Keep it out of git.
    pub(crate) serve_users: Option<PathBuf>,
    #[serde(default)]
    pub(crate) ssh: SshConfig,
    /// fleet's own files (lock, logs) somewhere else than `.fleet/`: `fleet test` keeps
    /// its runs apart from the fleet's. Not a fleet.toml setting.
    #[serde(skip)]
    pub(crate) data_dir: Option<PathBuf>,
}

/// Connection defaults for SSH hosts; a host's own inventory entry wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SshConfig {
    pub(crate) user: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) identity_file: Option<PathBuf>,
    /// Seconds to wait for a host to answer (default 10).
    pub(crate) connect_timeout: Option<u64>,
    /// known_hosts checked strictly instead of the user's ~/.ssh/known_hosts.
    pub(crate) known_hosts: Option<PathBuf>,
    /// An ssh_config used instead of ~/.ssh/config (`ssh -F`).
    pub(crate) config_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) root: PathBuf,
    /// False when no fleet.toml was found: built-in recipes still work.
    pub(crate) has_config: bool,
    pub(crate) config: Config,
}

impl Project {
    /// `-C DIR` must be a project; otherwise walk up from `start` to a fleet.toml,
    /// and fall back to `start` itself with default settings.
    pub(crate) fn locate(explicit: Option<&Path>, start: &Path) -> Result<Project> {
        if let Some(dir) = explicit {
            if !dir.is_dir() {
                return Err(Error::usage(format!(
                    "-C {}: no such directory",
                    dir.display()
                )));
            }
            if !dir.join(CONFIG_FILE).is_file() {
                return Err(Error::usage_with_help(
                    format!("-C {}: no {CONFIG_FILE} in that directory", dir.display()),
                    format!("create a project there with `fleet init {}`", dir.display()),
                ));
            }
            return Project::open(dir);
        }
        let mut dir = Some(start);
        while let Some(d) = dir {
            if d.join(CONFIG_FILE).is_file() {
                return Project::open(d);
            }
            dir = d.parent();
        }
        Ok(Project {
            root: start.to_path_buf(),
            has_config: false,
            config: Config::default(),
        })
    }

    pub(crate) fn open(root: &Path) -> Result<Project> {
        let path = root.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(Error::read(&path))?;
        let config = parse_config(&display_path(&path), &text)?;
        Ok(Project {
            root: root.to_path_buf(),
            has_config: true,
            config,
        })
    }

    pub(crate) fn recipes_dir(&self) -> PathBuf {
        self.root.join("recipes")
    }

    pub(crate) fn stdlib_dir(&self) -> PathBuf {
        self.root.join("stdlib")
    }

    /// fleet's own files of this project (lock, logs): `.fleet/` in a project; outside
    /// one (`fleet exec -i hosts.txt …` anywhere) the user's state directory, so ad-hoc
    /// runs never litter the working directory.
    pub(crate) fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.config.data_dir {
            return dir.clone();
        }
        if self.has_config {
            return self.root.join(".fleet");
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("fleet")
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        match &self.config.state_dir {
            Some(dir) => self.root.join(dir),
            None if self.has_config => self.root.join("state"),
            None => self.data_dir().join("state"),
        }
    }

    pub(crate) fn log_dir(&self) -> PathBuf {
        match &self.config.log_dir {
            Some(dir) => self.root.join(dir),
            None => self.data_dir().join("logs"),
        }
    }

    /// The inventory fleet.toml names, else the first default name that exists.
    pub(crate) fn inventory_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.config.inventory {
            return Some(self.root.join(p));
        }
        DEFAULT_INVENTORIES
            .iter()
            .map(|n| self.root.join(n))
            .find(|p| p.is_file())
    }
}

pub(crate) fn parse_config(name: &str, text: &str) -> Result<Config> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let len = span.len().max(1);
        Error::from(SourceError::at_span(
            name,
            text,
            (span.start, len).into(),
            format!("invalid {CONFIG_FILE}: {}", e.message()),
            "here",
        ))
    })
}

/// `forks = 0` would start no host: refused with the file and line it is written on,
/// not later as if `--forks 0` had been typed.
fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom("`forks` must be at least 1")),
        n => Ok(Some(n)),
    }
}

fn max_masters<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom("`max_masters` must be at least 1")),
        n => Ok(Some(n)),
    }
}

/// An ACME setting, checked where it is written (`set` puts it into the settings).
fn acme_setting<'de, D: serde::Deserializer<'de>>(
    d: D,
    set: fn(&mut crate::ops::proxy::Acme, String),
) -> Result<Option<String>, D::Error> {
    let value = String::deserialize(d)?;
    let mut acme = crate::ops::proxy::Acme::default();
    set(&mut acme, value.clone());
    acme.check().map_err(serde::de::Error::custom)?;
    Ok(Some(value))
}

fn acme_directory<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    acme_setting(d, |a, v| a.directory = Some(v))
}

fn acme_email<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    acme_setting(d, |a, v| a.email = Some(v))
}

fn acme_ca_bundle<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    acme_setting(d, |a, v| a.ca_bundle = Some(v))
}

fn inventory_timeout<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "`inventory_timeout` must be at least 1 (seconds)",
        )),
        n => Ok(Some(n)),
    }
}

fn output_limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        n if n < 1024 => Err(serde::de::Error::custom(
            "`output_limit` must be at least 1024 (bytes)",
        )),
        n => Ok(Some(n)),
    }
}

/// Paths in messages are shown relative to the working directory when possible.
pub(crate) fn display_path(path: &Path) -> String {
    crate::ops::paths::display(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_settings() {
        let c = parse_config("fleet.toml", "forks = 4\n[ssh]\nuser = \"ops\"\n").unwrap();
        assert_eq!(c.forks, Some(4));
        assert_eq!(c.ssh.user.as_deref(), Some("ops"));
    }

    #[test]
    fn acme_settings_are_checked_where_written() {
        let c = parse_config(
            "fleet.toml",
            "acme_directory = \"https://ca.internal:14000/dir\"\nacme_ca_bundle = \"/etc/ssl/ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            c.acme_directory.as_deref(),
            Some("https://ca.internal:14000/dir")
        );
        let e = parse_config("fleet.toml", "acme_directory = \"http://ca/dir\"\n").unwrap_err();
        assert!(
            e.to_string().contains("must be an https:// URL")
                || format!("{e:?}").contains("must be an https:// URL"),
            "{e:?}"
        );
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let err = parse_config("fleet.toml", "forks = 4\nforsk = 5\n").unwrap_err();
        let Error::Source(e) = err else { panic!() };
        assert!(e.message.contains("unknown field `forsk`"), "{}", e.message);
        assert_eq!(crate::error::line_of(e.src.inner(), e.span.offset()), 2);
    }

    #[test]
    fn forks_zero_names_the_file() {
        let err = parse_config("ops/fleet.toml", "# settings\nforks = 0\n").unwrap_err();
        let Error::Source(e) = err else { panic!() };
        assert_eq!(e.message, "invalid fleet.toml: `forks` must be at least 1");
        assert_eq!(e.src.name(), "ops/fleet.toml");
        assert_eq!(crate::error::line_of(e.src.inner(), e.span.offset()), 2);
        assert_eq!(parse_config("f", "forks = 3\n").unwrap().forks, Some(3));
        assert_eq!(parse_config("f", "").unwrap().forks, None);
    }

    #[test]
    fn inventory_timeout_is_at_least_a_second() {
        let c = parse_config("f", "inventory_timeout = 5\n").unwrap();
        assert_eq!(c.inventory_timeout, Some(5));
        let Error::Source(e) = parse_config("f", "inventory_timeout = 0\n").unwrap_err() else {
            panic!()
        };
        assert_eq!(
            e.message,
            "invalid fleet.toml: `inventory_timeout` must be at least 1 (seconds)"
        );
    }

    #[test]
    fn walks_up_to_the_project() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "").unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let p = Project::locate(None, &sub).unwrap();
        assert!(p.has_config);
        assert_eq!(p.root, dir.path());
    }
}
