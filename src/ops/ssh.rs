//! How fleet reaches a host over SSH, as plain data: the options from inventory and
//! fleet.toml, the `ssh` command line for `fleet connect`, the identity-file check, and
//! what ssh's error text means.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything needed to open a connection to one host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SshTarget {
    pub(crate) host: String,
    pub(crate) address: String,
    pub(crate) user: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) identity_file: Option<PathBuf>,
    /// Our own known_hosts (fleet.toml), else the user's.
    pub(crate) known_hosts: Option<PathBuf>,
    /// An ssh_config used instead of ~/.ssh/config (`ssh -F`).
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    /// `--accept-new-host-keys`: record keys of new hosts, still refuse changed ones.
    pub(crate) accept_new: bool,
}

impl SshTarget {
    /// `ssh` arguments for an interactive session with the same policy as a run
    /// (BatchMode is left to ssh so a passphrase can be typed).
    pub(crate) fn ssh_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(f) = &self.config_file {
            args.extend(["-F".to_string(), f.display().to_string()]);
        }
        let checking = if self.accept_new { "accept-new" } else { "yes" };
        args.extend(["-o".into(), format!("StrictHostKeyChecking={checking}")]);
        if let Some(k) = &self.known_hosts {
            args.extend(["-o".into(), format!("UserKnownHostsFile={}", k.display())]);
        }
        args.extend([
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
        ]);
        if let Some(i) = &self.identity_file {
            args.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                i.display().to_string(),
            ]);
        }
        if let Some(p) = self.port {
            args.extend(["-p".into(), p.to_string()]);
        }
        if let Some(u) = &self.user {
            args.extend(["-l".into(), u.clone()]);
        }
        // `--`: whatever the address holds, ssh reads it as the destination.
        args.extend(["--".into(), self.address.clone()]);
        args
    }

    /// `ssh` arguments of the run's master connection: it stays in the foreground (no
    /// `-f`), so it is fleet's child and ends with fleet; `-E` keeps its messages.
    pub(crate) fn master_args(&self, control: &Path, log: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "-E",
            &log.display().to_string(),
            "-S",
            &control.display().to_string(),
            "-M",
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "ServerAliveInterval=15",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.ssh_args());
        args
    }
}

/// SSH settings of fleet.toml and the command line, for hosts that do not set their own.
#[derive(Debug, Clone)]
pub(crate) struct SshDefaults {
    /// Relative paths in the inventory and fleet.toml are relative to this.
    pub(crate) root: PathBuf,
    pub(crate) user: Option<String>,
    pub(crate) port: Option<u16>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) known_hosts: Option<PathBuf>,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    pub(crate) accept_new: bool,
}

impl Default for SshDefaults {
    fn default() -> Self {
        SshDefaults {
            root: PathBuf::from("."),
            user: None,
            port: None,
            identity_file: None,
            known_hosts: None,
            config_file: None,
            connect_timeout: Duration::from_secs(10),
            accept_new: false,
        }
    }
}

/// The connection to `host`: its inventory entry first, then the defaults.
pub(crate) fn target_for(host: &crate::inventory::ResolvedHost, d: &SshDefaults) -> SshTarget {
    let path = |p: &Path| resolve_path(&d.root, p);
    SshTarget {
        host: host.name.clone(),
        address: host.address.clone(),
        user: host.user.clone().or_else(|| d.user.clone()),
        port: host.port.or(d.port),
        identity_file: host
            .identity_file
            .as_deref()
            .or(d.identity_file.as_deref())
            .map(path),
        known_hosts: d.known_hosts.as_deref().map(path),
        config_file: d.config_file.as_deref().map(path),
        connect_timeout: d.connect_timeout,
        // A host a recipe has just created (inventory::add) has a key never seen before.
        accept_new: d.accept_new
            || host.vars.get("ssh_accept_new_host_key") == Some(&serde_json::Value::Bool(true)),
    }
}

/// `~/x` -> `$HOME/x`; a relative path is relative to the project root.
pub(crate) fn resolve_path(root: &Path, path: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    root.join(path)
}

/// Why an identity file (a private key) is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error("identity file {} cannot be read: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "identity file {} has mode {mode:04o}; it must be readable only by its owner \
         (0600 or 0400): run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    OpenToOthers { path: PathBuf, mode: u32 },
}

/// A private key that others can read is refused, as ssh itself would.
pub(crate) fn check_identity_file(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| IdentityError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::OpenToOthers {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// How known_hosts names the target: `10.0.0.5`, or `[10.0.0.5]:2222` off port 22.
pub(crate) fn known_hosts_name(target: &SshTarget) -> String {
    match target.port {
        Some(p) if p != 22 => format!("[{}]:{p}", target.address),
        _ => target.address.clone(),
    }
}

/// Why a connection failed, in words that say what to do.
pub(crate) fn explain_connect_error(target: &SshTarget, ssh_text: &str) -> String {
    let text = ssh_text.trim();
    let known_hosts = target
        .known_hosts
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.ssh/known_hosts".to_string());
    if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        let fingerprint = text
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .unwrap_or("an unknown key");
        let offending = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Offending "))
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        return format!(
            "host key of {} ({}) has CHANGED: it now presents {fingerprint}, which does not match \
             {known_hosts}{offending}. This may be an attack; if the host was reinstalled on \
             purpose, remove the old key (`ssh-keygen -R {} -f {known_hosts}`) and run with \
             --accept-new-host-keys",
            target.host,
            target.address,
            known_target(target)
        );
    }
    if text.contains("Host key verification failed") {
        let key = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("No ")
                    .and_then(|r| r.split_once(" host key is known"))
                    .map(|(k, _)| format!("{k} "))
            })
            .unwrap_or_default();
        return format!(
            "no {key}host key for {} ({}) in {known_hosts}, and host keys are checked strictly; \
             if this is a new host, run once with --accept-new-host-keys to record its key",
            target.host,
            known_target(target)
        );
    }
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("ssh failed without a message")
        .trim();
    if last.contains("Permission denied") {
        return format!(
            "authentication failed for {}@{}: {last}",
            target.user.as_deref().unwrap_or("(default user)"),
            target.address
        );
    }
    last.strip_prefix("ssh: ").unwrap_or(last).to_string()
}

/// The name known_hosts stores a host under: `addr`, or `[addr]:port` off port 22.
fn known_target(target: &SshTarget) -> String {
    match target.port {
        Some(p) if p != 22 => format!("[{}]:{p}", target.address),
        _ => target.address.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            host: "web-1".into(),
            address: "10.0.0.1".into(),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_file: Some("/k/id".into()),
            known_hosts: Some("/p/known_hosts".into()),
            config_file: Some("/p/ssh_config".into()),
            connect_timeout: Duration::from_secs(5),
            accept_new: false,
        }
    }

    #[test]
    fn hosts_override_defaults_and_paths_resolve_from_the_project() {
        let mut host = crate::inventory::ResolvedHost {
            name: "web-1".into(),
            address: "10.0.0.1".into(),
            port: None,
            user: None,
            identity_file: None,
            connection: crate::inventory::Connection::Ssh,
            groups: vec![],
            vars: Default::default(),
        };
        let d = SshDefaults {
            root: "/proj".into(),
            user: Some("ops".into()),
            port: Some(2222),
            identity_file: Some("keys/id".into()),
            known_hosts: Some("known_hosts".into()),
            ..SshDefaults::default()
        };
        let t = target_for(&host, &d);
        assert_eq!(t.user.as_deref(), Some("ops"));
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.identity_file, Some("/proj/keys/id".into()));
        assert_eq!(t.known_hosts, Some("/proj/known_hosts".into()));
        host.user = Some("root".into());
        host.identity_file = Some("/abs/key".into());
        let t = target_for(&host, &d);
        assert_eq!(t.user.as_deref(), Some("root"));
        assert_eq!(t.identity_file, Some("/abs/key".into()));
    }

    #[test]
    fn connect_uses_the_same_options_as_a_run() {
        assert_eq!(
            target().ssh_args().join(" "),
            "-F /p/ssh_config -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/p/known_hosts \
             -o ConnectTimeout=5 -o IdentitiesOnly=yes -i /k/id -p 2222 -l deploy -- 10.0.0.1"
        );
        let t = SshTarget {
            accept_new: true,
            ..target()
        };
        assert!(
            t.ssh_args()
                .contains(&"StrictHostKeyChecking=accept-new".to_string())
        );
    }

    #[test]
    fn master_stays_in_the_foreground_and_ends_options_before_the_address() {
        let t = SshTarget {
            address: "-oProxyCommand=x".into(),
            ..target()
        };
        let args = t.master_args(Path::new("/c/m"), Path::new("/c/log"));
        assert_eq!(args[..6], ["-E", "/c/log", "-S", "/c/m", "-M", "-N"]);
        assert!(!args.contains(&"-f".to_string()));
        assert_eq!(args[args.len() - 2..], ["--", "-oProxyCommand=x"]);
    }

    #[test]
    fn an_unknown_key_says_how_to_accept_it() {
        let msg = explain_connect_error(
            &target(),
            "No ED25519 host key is known for [10.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.",
        );
        assert!(
            msg.starts_with("no ED25519 host key for web-1 ([10.0.0.1]:2222) in /p/known_hosts"),
            "{msg}"
        );
        assert!(msg.contains("--accept-new-host-keys"), "{msg}");
    }

    #[test]
    fn a_changed_key_names_fingerprint_and_file() {
        let text = "@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            The fingerprint for the ED25519 key sent by the remote host is\nSHA256:abcdef.\n\
            Offending ED25519 key in /p/known_hosts:3\nHost key verification failed.";
        let msg = explain_connect_error(&target(), text);
        assert!(
            msg.contains("has CHANGED: it now presents SHA256:abcdef."),
            "{msg}"
        );
        assert!(msg.contains("(ED25519 key in /p/known_hosts:3)"), "{msg}");
        assert!(
            msg.contains("ssh-keygen -R [10.0.0.1]:2222 -f /p/known_hosts"),
            "{msg}"
        );
    }

    #[test]
    fn other_errors_keep_ssh_words() {
        assert_eq!(
            explain_connect_error(
                &target(),
                "ssh: connect to host 10.0.0.1 port 2222: Connection refused\n"
            ),
            "connect to host 10.0.0.1 port 2222: Connection refused"
        );
        assert!(
            explain_connect_error(&target(), "deploy@10.0.0.1: Permission denied (publickey).")
                .starts_with("authentication failed for deploy@10.0.0.1")
        );
    }

    #[test]
    fn identity_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, "k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_identity_file(&key).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "identity file {k} has mode 0644; it must be readable only by its owner \
                 (0600 or 0400): run `chmod 600 {k}`",
                k = key.display()
            )
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(check_identity_file(&key).is_ok());
        assert!(check_identity_file(&dir.path().join("none")).is_err());
    }
}
