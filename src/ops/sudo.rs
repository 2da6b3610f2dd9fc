//! What sudo lets the login user do on a host, read from `sudo -n -l`: everything
//! (`full`), some programs only (`limited`: a rule like
//! `NOPASSWD: /usr/bin/apt-get, /usr/bin/apt`) or nothing without a password (`no`);
//! and the clear sentence for a command sudo refused, naming what it does allow.

use super::remote::Remote;
use crate::outcome::HostError;
use serde::{Deserialize, Serialize};

/// Asks for the login user's rights in one round trip: `root`, or sudo's own list.
/// `sudo -n -l` needs no password when one of the user's rules has NOPASSWD (sudo's
/// `listpw=any`), so it answers for every user fleet can use.
pub(crate) const ACCESS_QUERY: &str =
    "if [ \"$(id -u)\" = 0 ]; then echo root; else sudo -n -l 2>&1; fi";

/// How much sudo allows, as `fleet status` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    /// Root, or passwordless sudo for every command.
    Full,
    /// Passwordless sudo for some programs only.
    Limited,
    /// No command without a password (or no sudo at all).
    #[default]
    No,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Full => "full",
            Level::Limited => "limited",
            Level::No => "no",
        }
    }
}

/// Journal records before fleet knew `limited` kept a bool: root or `sudo -n true` worked.
impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Old(bool),
            New(String),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Old(true) => Level::Full,
            Stored::Old(false) => Level::No,
            Stored::New(s) => match s.as_str() {
                "full" => Level::Full,
                "limited" => Level::Limited,
                _ => Level::No,
            },
        })
    }
}

/// The login user's rights on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Logged in as root: no sudo needed.
    Root,
    /// Every command as root without a password (`(ALL : ALL) NOPASSWD: ALL`).
    Full,
    /// Only these commands as root without a password, as sudo lists them.
    Limited(Vec<String>),
    /// Nothing without a password; why, in sudo's words.
    No(String),
}

impl Access {
    /// Whether commands that change the host go through sudo.
    pub(crate) fn needs_sudo(&self) -> bool {
        !matches!(self, Access::Root)
    }

    /// Whether a command may be given environment variables: as root in the shell, and
    /// through sudo only when the rule that matched is `ALL` (sudo's env_reset refuses
    /// `NAME=value` for a rule naming programs, unless it carries SETENV).
    pub(crate) fn sets_env(&self) -> bool {
        matches!(self, Access::Root | Access::Full)
    }

    pub(crate) fn level(&self) -> Level {
        match self {
            Access::Root | Access::Full => Level::Full,
            Access::Limited(_) => Level::Limited,
            Access::No(_) => Level::No,
        }
    }
}

/// Reads the answer of [`ACCESS_QUERY`].
pub(crate) fn parse_access(text: &str) -> Access {
    if text.trim() == "root" {
        Access::Root
    } else {
        parse_list(text)
    }
}

/// Reads `sudo -n -l` (stdout and stderr together). Only commands that may run as root
/// without a password count: fleet never answers a prompt.
pub(crate) fn parse_list(text: &str) -> Access {
    let Some(start) = text.find("may run the following commands on") else {
        let why = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("sudo printed nothing");
        return Access::No(why.to_string());
    };
    // `Defaults !authenticate` makes every rule passwordless.
    let no_auth = text[..start].contains("!authenticate");
    // One entry per `    (runas) TAGS: cmd, cmd` line; longer ones wrap onto lines
    // indented further.
    let mut entries: Vec<String> = Vec::new();
    for line in text[start..].lines().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('\t') {
            break;
        }
        match entries.last_mut() {
            Some(last) if !line.trim_start().starts_with('(') => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => entries.push(line.trim().to_string()),
        }
    }
    let mut allowed: Vec<String> = Vec::new();
    for entry in entries {
        let (runas, rest) = match entry.strip_prefix('(').and_then(|e| e.split_once(')')) {
            Some((runas, rest)) => (runas.to_string(), rest.trim()),
            None => ("root".to_string(), entry.as_str()),
        };
        let users = runas.split(':').next().unwrap_or_default();
        let as_root = users
            .split(',')
            .map(str::trim)
            .any(|u| u == "ALL" || u == "root")
            && !users.contains("!root");
        if !as_root {
            continue;
        }
        let mut nopasswd = no_auth;
        for item in rest.split(", ") {
            let mut item = item.trim();
            // Tags (`NOPASSWD:`, `SETENV:`, …) stay in force for the rest of the entry.
            while let Some((tag, after)) = item.split_once(": ") {
                if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                    break;
                }
                match tag {
                    "NOPASSWD" => nopasswd = true,
                    "PASSWD" => nopasswd = no_auth,
                    _ => {}
                }
                item = after.trim();
            }
            if nopasswd && !item.is_empty() {
                if item == "ALL" {
                    return Access::Full;
                }
                allowed.push(item.to_string());
            }
        }
    }
    if allowed.is_empty() {
        Access::No("every command sudo allows needs a password".into())
    } else {
        allowed.dedup();
        Access::Limited(allowed)
    }
}

/// The login user's rights on the host (one round trip).
pub(crate) fn access(r: &dyn Remote) -> Result<Access, HostError> {
    let out = r.exec(ACCESS_QUERY, None, None, true)?;
    Ok(parse_access(&format!(
        "{}{}",
        out.stdout_text(),
        out.stderr
    )))
}

/// Why sudo did not run a command, in words that say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SudoError {
    #[error("sudo on {host} does not allow `{command}` (allowed: {})", allowed.join(", "))]
    NotAllowed {
        host: String,
        command: String,
        allowed: Vec<String>,
    },
    #[error(
        "sudo needs a password on {host}: give the login user passwordless sudo (NOPASSWD in sudoers) or log in as root"
    )]
    Password { host: String },
    #[error("sudo is not installed on {host}")]
    NotInstalled { host: String },
    #[error("the login user on {host} may not use sudo (not in sudoers)")]
    NotInSudoers { host: String },
}

/// Whether `stderr` is sudo declining to run a command (it asks for a password it may
/// not prompt for, or says the command or its environment is not allowed).
pub(crate) fn refused(stderr: &str) -> bool {
    stderr.contains("sudo: a password is required")
        || stderr.contains("sudo: a terminal is required")
        || stderr.contains("is not allowed to execute")
        || stderr.contains("not allowed to set the following environment variables")
}

/// What went wrong when sudo did not run a command, from its stderr alone (no round
/// trip); None when the command itself failed.
pub(crate) fn problem(host: &str, stderr: &str) -> Option<SudoError> {
    let host = host.to_string();
    if stderr.contains("sudo: command not found") || stderr.contains("sudo: not found") {
        Some(SudoError::NotInstalled { host })
    } else if stderr.contains("is not in the sudoers file") {
        Some(SudoError::NotInSudoers { host })
    } else if refused(stderr) {
        Some(SudoError::Password { host })
    } else {
        None
    }
}

/// The first ~100 characters of what sudo was asked to run, for a message.
fn shortened(command: &str) -> String {
    match command.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &command[..i]),
        None => command.to_string(),
    }
}

/// Explains a command sudo did not run: when sudo allows the user some commands
/// (`sudo -n -l`, one more round trip), which; None when the command itself failed.
/// `command` is what sudo was asked to run (`apt-get update -q`, `sh -c '…'`).
pub(crate) fn explain(r: &dyn Remote, command: &str, stderr: &str) -> Option<SudoError> {
    let found = problem(r.name(), stderr)?;
    if !matches!(found, SudoError::Password { .. }) {
        return Some(found);
    }
    match access(r) {
        Ok(Access::Limited(allowed)) => Some(SudoError::NotAllowed {
            host: r.name().to_string(),
            command: shortened(command),
            allowed,
        }),
        // sudo runs everything: the words came from the command itself.
        Ok(Access::Root | Access::Full) => None,
        _ => Some(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real answers of `sudo -n -l` (sudo 1.9.13p3, Debian bookworm, tests/image).
    const LIMITED: &str = "Matching Defaults entries for orchestrator on 93fd9247ad74:
    env_reset, mail_badpass, secure_path=/usr/local/sbin\\:/usr/local/bin\\:/usr/sbin\\:/usr/bin\\:/sbin\\:/bin, use_pty

User orchestrator may run the following commands on 93fd9247ad74:
    (root) NOPASSWD: /usr/bin/apt-get, /usr/bin/apt
";
    const FULL: &str = "Matching Defaults entries for fulluser on 93fd9247ad74:
    env_reset, mail_badpass, secure_path=/usr/local/sbin\\:/usr/local/bin\\:/usr/sbin\\:/usr/bin\\:/sbin\\:/bin, use_pty

User fulluser may run the following commands on 93fd9247ad74:
    (ALL : ALL) NOPASSWD: ALL
";
    // A user without rules, and one whose rules all need a password, alike.
    const NONE: &str = "sudo: a password is required\n";

    #[test]
    fn full_limited_and_none_from_real_answers() {
        assert_eq!(parse_list(FULL), Access::Full);
        assert_eq!(
            parse_list(LIMITED),
            Access::Limited(vec!["/usr/bin/apt-get".into(), "/usr/bin/apt".into()])
        );
        assert_eq!(
            parse_list(NONE),
            Access::No("sudo: a password is required".into())
        );
        assert_eq!(parse_access("root\n"), Access::Root);
        assert_eq!(parse_access("sh: 1: sudo: not found\n").level(), Level::No);
        assert_eq!(parse_access(LIMITED).level(), Level::Limited);
        assert!(Access::Root.sets_env() && Access::Full.sets_env());
        assert!(!parse_access(LIMITED).sets_env() && !Access::Root.needs_sudo());
    }

    #[test]
    fn only_passwordless_commands_as_root_count() {
        let list = |entries: &str| {
            parse_list(&format!(
                "User u may run the following commands on h:\n{entries}"
            ))
        };
        assert_eq!(
            list("    (ALL : ALL) ALL\n    (root) NOPASSWD: /usr/sbin/ufw\n"),
            Access::Limited(vec!["/usr/sbin/ufw".into()])
        );
        assert_eq!(
            list("    (root) NOPASSWD: /usr/bin/apt-get, PASSWD: /usr/bin/systemctl\n"),
            Access::Limited(vec!["/usr/bin/apt-get".into()])
        );
        assert_eq!(
            list(
                "    (root) NOPASSWD: SETENV: /usr/bin/apt-get update,\n        /usr/bin/apt-get upgrade\n"
            ),
            Access::Limited(vec![
                "/usr/bin/apt-get update".into(),
                "/usr/bin/apt-get upgrade".into()
            ])
        );
        assert_eq!(list("    (www-data) NOPASSWD: ALL\n").level(), Level::No);
        assert_eq!(list("    (ALL) NOPASSWD: ALL\n"), Access::Full);
        assert_eq!(list("    (ALL : ALL) ALL\n").level(), Level::No);
        let no_auth = "Matching Defaults entries for u on h:\n    !authenticate\n\n\
                       User u may run the following commands on h:\n    (ALL : ALL) ALL\n";
        assert_eq!(parse_list(no_auth), Access::Full);
    }

    #[test]
    fn refusals_become_sentences() {
        assert_eq!(
            problem("web-1", "sudo: a password is required\n")
                .unwrap()
                .to_string(),
            "sudo needs a password on web-1: give the login user passwordless sudo (NOPASSWD in sudoers) or log in as root"
        );
        assert_eq!(
            SudoError::NotAllowed {
                host: "web-1".into(),
                command: "ufw status".into(),
                allowed: vec!["/usr/bin/apt-get".into(), "/usr/bin/apt".into()],
            }
            .to_string(),
            "sudo on web-1 does not allow `ufw status` (allowed: /usr/bin/apt-get, /usr/bin/apt)"
        );
        assert!(problem("web-1", "E: Could not get lock /var/lib/dpkg/lock").is_none());
        assert!(matches!(
            problem("h", "sh: 1: sudo: not found"),
            Some(SudoError::NotInstalled { .. })
        ));
        assert!(refused(
            "sudo: sorry, you are not allowed to set the following environment variables: DEBIAN_FRONTEND"
        ));
        assert_eq!(shortened(&"x".repeat(150)).chars().count(), 101);
    }

    #[test]
    fn a_refused_command_names_what_sudo_allows() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[("if [ \"$(id -u)\" = 0 ]", 0, LIMITED)]);
        let e = explain(&r, "ufw status", "sudo: a password is required\n").unwrap();
        assert_eq!(
            e.to_string(),
            "sudo on fake does not allow `ufw status` (allowed: /usr/bin/apt-get, /usr/bin/apt)"
        );
        let r = Scripted::new(&[("if [ \"$(id -u)\" = 0 ]", 1, NONE)]);
        let e = explain(&r, "ufw status", "sudo: a password is required\n").unwrap();
        assert!(matches!(e, SudoError::Password { .. }));
        // With full sudo the words came from the command (one that calls sudo itself).
        let r = Scripted::new(&[("if [ \"$(id -u)\" = 0 ]", 0, FULL)]);
        assert!(explain(&r, "make deploy", "sudo: a password is required\n").is_none());
    }

    #[test]
    fn old_journal_records_read_as_levels() {
        let l: Level = serde_json::from_str("true").unwrap();
        assert_eq!(l, Level::Full);
        let l: Level = serde_json::from_str("false").unwrap();
        assert_eq!(l, Level::No);
        let l: Level = serde_json::from_str("\"limited\"").unwrap();
        assert_eq!(l, Level::Limited);
        assert_eq!(
            serde_json::to_string(&Level::Limited).unwrap(),
            "\"limited\""
        );
    }
}
