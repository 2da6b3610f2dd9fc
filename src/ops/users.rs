//! Local users on a host: `ensure` (shell, home, supplementary groups, a sudo rule),
//! `remove`, `lock`. Pure builders (each change is one program, an [`Argv`], so a
//! limited sudo rule for useradd/usermod/userdel/passwd is enough), `getent` parsers,
//! the sudoers file, and the procedures over [`Remote`]: read the state, change only
//! what differs. A sudo rule is written to a temporary file that sudo ignores (its name
//! has a dot), checked with `visudo -cf`, and only then renamed into place.

use crate::ops::files::FileOpts;
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::Argv;
use crate::outcome::HostError;

/// Where fleet's sudo rules live.
pub(crate) const SUDOERS_DIR: &str = "/etc/sudoers.d";

/// Why a user's name, path or sudo rule is refused (before anything reaches a host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UserError {
    #[error(
        "`{}` is not a user name: use a lower-case letter or _ first, then a-z, 0-9, _ or -, at most 32 characters",
        .0.escape_debug()
    )]
    Name(String),
    /// `what` is the option: `shell` or `home`.
    #[error(
        "{what} `{}` must be an absolute path without `..`, `:` or control characters",
        .path.escape_debug()
    )]
    Path { what: &'static str, path: String },
    #[error("sudo: give true, false or a non-empty list of commands")]
    NoSudoCommands,
    #[error(
        "sudo command `{}` must be an absolute path (arguments may follow) without , : = \\ # ! or quotes",
        .0.escape_debug()
    )]
    SudoCommand(String),
}

/// A user name as Debian's `adduser` accepts by default: lower-case letter or `_`
/// first, then letters, digits, `_` and `-`, at most 32 characters. No dot, slash or
/// other path character, so it can name a sudoers file.
pub(crate) fn valid_name(name: &str) -> Result<&str, UserError> {
    let mut bytes = name.bytes();
    let first_ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'));
    if first_ok
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Ok(name)
    } else {
        Err(UserError::Name(name.to_string()))
    }
}

/// An absolute path for a shell or home: no `..`, no control characters, no `:` (the
/// passwd field separator).
fn valid_path<'a>(what: &'static str, path: &'a str) -> Result<&'a str, UserError> {
    if path.starts_with('/')
        && !path.split('/').any(|c| c == "..")
        && !path.chars().any(|c| c.is_control() || c == ':')
    {
        Ok(path)
    } else {
        Err(UserError::Path {
            what,
            path: path.to_string(),
        })
    }
}

/// `sudo` of `users::ensure`: `true` (everything), `false` (no rule), or a list of
/// commands (absolute paths, optionally with arguments).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum SudoRule {
    Full(bool),
    Commands(Vec<String>),
}

/// The options map of `users::ensure`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnsureOptions {
    #[serde(default)]
    pub(crate) shell: Option<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    #[serde(default)]
    pub(crate) sudo: Option<SudoRule>,
    #[serde(default)]
    pub(crate) home: Option<String>,
}

/// The options map of `users::remove`.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveOptions {
    #[serde(default)]
    pub(crate) keep_home: bool,
}

/// One line of `getent passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Passwd {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) home: String,
    pub(crate) shell: String,
}

/// `name:x:uid:gid:gecos:home:shell`; None for anything else.
pub(crate) fn parse_passwd(line: &str) -> Option<Passwd> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    if f.len() != 7 {
        return None;
    }
    Some(Passwd {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        home: f[5].to_string(),
        shell: f[6].to_string(),
    })
}

/// From `getent group` lines: the groups that exist, and those listing `user` as a
/// member.
pub(crate) fn parse_groups(text: &str, user: &str) -> (Vec<String>, Vec<String>) {
    let mut all = Vec::new();
    let mut member = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() != 4 {
            continue;
        }
        all.push(f[0].to_string());
        if f[3].split(',').any(|m| m == user) {
            member.push(f[0].to_string());
        }
    }
    (all, member)
}

/// `passwd -S` output: whether the password is locked (`L`).
pub(crate) fn parse_locked(text: &str) -> bool {
    text.split_whitespace().nth(1) == Some("L")
}

/// `/etc/sudoers.d/fleet-user-NAME` (no dot: sudo reads it).
pub(crate) fn sudoers_path(name: &str) -> String {
    format!("{SUDOERS_DIR}/fleet-user-{name}")
}

/// The temporary file the rule is checked in (a dot: sudo ignores it meanwhile).
pub(crate) fn sudoers_temp(name: &str) -> String {
    format!("{SUDOERS_DIR}/.fleet-user-{name}.new")
}

/// The sudoers file text of `rule` for `name`; None for no rule. A command must be an
/// absolute path with arguments free of sudoers' special characters.
pub(crate) fn sudoers_text(name: &str, rule: &SudoRule) -> Result<Option<String>, UserError> {
    let commands = match rule {
        SudoRule::Full(false) => return Ok(None),
        SudoRule::Full(true) => "ALL".to_string(),
        SudoRule::Commands(list) if list.is_empty() => {
            return Err(UserError::NoSudoCommands);
        }
        SudoRule::Commands(list) => {
            for c in list {
                if !c.starts_with('/')
                    || c.chars()
                        .any(|ch| ch.is_control() || ",:=\\#!\"'".contains(ch))
                {
                    return Err(UserError::SudoCommand(c.clone()));
                }
            }
            list.join(", ")
        }
    };
    Ok(Some(format!(
        "# Managed by fleet (users::ensure); changes by hand are lost.\n{name} ALL=(ALL) NOPASSWD: {commands}\n"
    )))
}

pub(crate) fn useradd(name: &str, o: &EnsureOptions) -> Argv {
    let mut a = Argv::new("useradd").arg("--create-home");
    if let Some(shell) = &o.shell {
        a = a.args(["--shell", shell]);
    }
    if let Some(home) = &o.home {
        a = a.args(["--home-dir", home]);
    }
    if !o.groups.is_empty() {
        a = a.args(["--groups".to_string(), o.groups.join(",")]);
    }
    a.args(["--", name])
}

pub(crate) fn usermod(name: &str, flags: &[&str]) -> Argv {
    Argv::new("usermod")
        .args(flags.iter().copied())
        .args(["--", name])
}

pub(crate) fn userdel(name: &str, keep_home: bool) -> Argv {
    let a = Argv::new("userdel");
    let a = if keep_home { a } else { a.arg("--remove") };
    a.args(["--", name])
}

pub(crate) fn lock_argv(name: &str) -> Argv {
    Argv::new("passwd").args(["-l", "--", name])
}

fn change(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::CHANGE
    }
}

fn query(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::QUERY
    }
}

fn fail(r: &dyn Remote, message: String) -> HostError {
    HostError::new(r.name(), message)
}

/// The user's passwd entry, None when there is none.
pub(crate) fn lookup(r: &dyn Remote, name: &str) -> Result<Option<Passwd>, HostError> {
    let out = r.program(
        &Argv::new("getent").args(["passwd", "--", name]),
        CommandOpts::QUERY,
    )?;
    Ok(match out.code {
        0 => parse_passwd(out.stdout.lines().next().unwrap_or_default()),
        _ => None,
    })
}

/// What `ensure` did: the steps that changed something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ensured {
    pub(crate) changes: Vec<String>,
}

/// Makes user `name` exist with `o`'s shell, home, groups (added to, never taken away)
/// and sudo rule (`false`: fleet's rule for the user is removed; absent: left as it is).
pub(crate) fn ensure(r: &dyn Remote, name: &str, o: &EnsureOptions) -> Result<Ensured, HostError> {
    let bad = |e: &dyn std::fmt::Display| fail(r, format!("users::ensure `{name}`: {e}"));
    valid_name(name).map_err(|e| bad(&e))?;
    if let Some(s) = &o.shell {
        valid_path("shell", s).map_err(|e| bad(&e))?;
    }
    if let Some(h) = &o.home {
        valid_path("home", h).map_err(|e| bad(&e))?;
    }
    for g in &o.groups {
        valid_name(g).map_err(|e| bad(&format_args!("group: {e}")))?;
    }
    // No `sudo` option: the user's rule is not managed (and not even read, so a login
    // user whose sudo allows only useradd/usermod can ensure users).
    let sudoers = match &o.sudo {
        Some(rule) => Some(sudoers_text(name, rule).map_err(|e| bad(&e))?),
        None => None,
    };
    let sudo = r.needs_sudo()?;
    let mut done = Ensured::default();
    match lookup(r, name)? {
        None => {
            r.program(&useradd(name, o), change(sudo))?;
            done.changes.push("created".into());
        }
        Some(now) => {
            if let Some(shell) = o.shell.as_deref().filter(|s| *s != now.shell) {
                r.program(&usermod(name, &["--shell", shell]), change(sudo))?;
                done.changes.push(format!("shell {shell}"));
            }
            if let Some(home) = o.home.as_deref().filter(|h| *h != now.home) {
                r.program(
                    &usermod(name, &["--move-home", "--home", home]),
                    change(sudo),
                )?;
                done.changes.push(format!("home {home}"));
            }
            let groups = r.program(&Argv::new("getent").arg("group"), CommandOpts::QUERY)?;
            let (_, member) = parse_groups(&groups.stdout, name);
            let missing: Vec<&str> = o
                .groups
                .iter()
                .filter(|g| !member.contains(g))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                let list = missing.join(",");
                r.program(
                    &usermod(name, &["--append", "--groups", &list]),
                    change(sudo),
                )?;
                done.changes.push(format!("groups +{list}"));
            }
        }
    }
    if let Some(text) = sudoers
        && set_sudo_rule(r, name, text.as_deref(), sudo)?
    {
        done.changes.push("sudo rule".into());
    }
    Ok(done)
}

/// Installs (checked by visudo first) or removes fleet's sudoers file for `name`; true
/// when it changed.
fn set_sudo_rule(
    r: &dyn Remote,
    name: &str,
    text: Option<&str>,
    sudo: bool,
) -> Result<bool, HostError> {
    let path = sudoers_path(name);
    // /etc/sudoers.d is world-readable, its files are not: only an existing file is
    // read through sudo (so removing a user with no rule needs no sudo for cat).
    let exists = r.program(&Argv::new("test").args(["-e", &path]), CommandOpts::QUERY)?;
    let current = if exists.code == 0 {
        let now = r.program(&Argv::new("cat").args(["--", &path]), query(sudo))?;
        (now.code == 0).then_some(now.stdout)
    } else {
        None
    };
    if current.as_deref() == text {
        return Ok(false);
    }
    let Some(text) = text else {
        r.program(&Argv::new("rm").args(["-f", "--", &path]), change(sudo))?;
        return Ok(true);
    };
    if r.check_mode() {
        r.out(&format!(
            "would install the sudo rule {path}: {}",
            text.lines().last().unwrap_or_default()
        ));
        r.mark_changed();
        return Ok(true);
    }
    let temp = sudoers_temp(name);
    let opts = FileOpts {
        mode: Some("0440".into()),
        owner: Some("root:root".into()),
        sudo,
    };
    crate::ops::files::write_file(r, &temp, text.as_bytes(), &opts)?;
    let check = r.program(
        &Argv::new("visudo").args(["-c", "-f", &temp]),
        CommandOpts {
            allow_fail: true,
            ..query(sudo)
        },
    )?;
    if check.code != 0 {
        r.program(&Argv::new("rm").args(["-f", "--", &temp]), change(sudo))?;
        let why = format!("{}{}", check.stdout, check.stderr);
        return Err(fail(
            r,
            format!(
                "the sudo rule for `{name}` fails `visudo -c` and was not installed: {}",
                crate::ops::text::tail(why.trim(), 5)
            ),
        ));
    }
    r.program(
        &Argv::new("mv").args(["-f", "--", &temp, &path]),
        change(sudo),
    )?;
    Ok(true)
}

/// Removes user `name` (and its home unless `keep_home`) and fleet's sudo rule for it;
/// true when something changed.
pub(crate) fn remove(r: &dyn Remote, name: &str, o: RemoveOptions) -> Result<bool, HostError> {
    valid_name(name).map_err(|e| fail(r, format!("users::remove: {e}")))?;
    let sudo = r.needs_sudo()?;
    let mut changed = set_sudo_rule(r, name, None, sudo)?;
    if lookup(r, name)?.is_some() {
        r.program(&userdel(name, o.keep_home), change(sudo))?;
        changed = true;
    }
    Ok(changed)
}

/// Locks the password of user `name` (`passwd -l`); true when it was not locked yet.
pub(crate) fn lock(r: &dyn Remote, name: &str) -> Result<bool, HostError> {
    valid_name(name).map_err(|e| fail(r, format!("users::lock: {e}")))?;
    let sudo = r.needs_sudo()?;
    if lookup(r, name)?.is_none() {
        return Err(fail(
            r,
            format!("users::lock: there is no user `{name}` on {}", r.name()),
        ));
    }
    let status = r.program(&Argv::new("passwd").args(["-S", "--", name]), query(sudo))?;
    if status.code == 0 && parse_locked(&status.stdout) {
        return Ok(false);
    }
    r.program(&lock_argv(name), change(sudo))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::fake::Scripted;

    #[test]
    fn user_errors_say_what_is_wrong() {
        let path = |what, path: &str| UserError::Path {
            what,
            path: path.into(),
        };
        let cases = [
            (
                UserError::Name("a\nb".into()),
                "`a\\nb` is not a user name: use a lower-case letter or _ first, then a-z, 0-9, _ or -, at most 32 characters",
            ),
            (
                path("shell", "bin/sh"),
                "shell `bin/sh` must be an absolute path without `..`, `:` or control characters",
            ),
            (
                path("home", "/h\x07"),
                "home `/h\\u{7}` must be an absolute path without `..`, `:` or control characters",
            ),
            (
                UserError::NoSudoCommands,
                "sudo: give true, false or a non-empty list of commands",
            ),
            (
                UserError::SudoCommand("ls, id".into()),
                "sudo command `ls, id` must be an absolute path (arguments may follow) without , : = \\ # ! or quotes",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn names_that_could_be_paths_or_options_are_refused() {
        for ok in ["deploy", "_svc", "smb-share_1"] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-rf",
            "a/b",
            "a.b",
            "..",
            "Root",
            "a b",
            "x\n",
            &"a".repeat(33),
        ] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn getent_lines_parse() {
        let p = parse_passwd("deploy:x:1001:1001:,,,:/home/deploy:/bin/bash\n").unwrap();
        assert_eq!(
            (p.uid, p.home.as_str(), p.shell.as_str()),
            (1001, "/home/deploy", "/bin/bash")
        );
        assert!(parse_passwd("garbage").is_none());
        let (all, member) = parse_groups(
            "sudo:x:27:a,deploy\nadm:x:4:\ndocker:x:999:deployer\n",
            "deploy",
        );
        assert_eq!(all, ["sudo", "adm", "docker"]);
        assert_eq!(member, ["sudo"]);
        assert!(parse_locked("deploy L 2026-01-01 0 99999 7 -1"));
        assert!(!parse_locked("deploy P 2026-01-01 0 99999 7 -1"));
    }

    #[test]
    fn command_lines_are_one_program_each() {
        let o = EnsureOptions {
            shell: Some("/bin/bash".into()),
            groups: vec!["adm".into(), "sudo".into()],
            ..Default::default()
        };
        assert_eq!(
            useradd("deploy", &o).line(),
            "useradd --create-home --shell /bin/bash --groups adm,sudo -- deploy"
        );
        assert_eq!(
            userdel("deploy", false).line(),
            "userdel --remove -- deploy"
        );
        assert_eq!(userdel("deploy", true).line(), "userdel -- deploy");
        assert_eq!(lock_argv("deploy").line(), "passwd -l -- deploy");
    }

    #[test]
    fn sudoers_text_is_full_or_a_list() {
        assert_eq!(
            sudoers_text("deploy", &SudoRule::Full(true))
                .unwrap()
                .unwrap(),
            "# Managed by fleet (users::ensure); changes by hand are lost.\ndeploy ALL=(ALL) NOPASSWD: ALL\n"
        );
        let list = SudoRule::Commands(vec![
            "/usr/bin/apt-get".into(),
            "/usr/sbin/service nginx reload".into(),
        ]);
        assert!(sudoers_text("deploy", &list).unwrap().unwrap().ends_with(
            "deploy ALL=(ALL) NOPASSWD: /usr/bin/apt-get, /usr/sbin/service nginx reload\n"
        ));
        assert_eq!(
            sudoers_text("deploy", &SudoRule::Full(false)).unwrap(),
            None
        );
        for bad in [
            "apt-get",
            "/bin/sh\nroot ALL=(ALL) ALL",
            "/bin/x, ALL",
            "/bin/x:y",
        ] {
            assert!(
                sudoers_text("d", &SudoRule::Commands(vec![bad.into()])).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(sudoers_path("deploy"), "/etc/sudoers.d/fleet-user-deploy");
        assert!(
            !sudoers_path("deploy")
                .rsplit('/')
                .next()
                .unwrap()
                .contains('.')
        );
        assert!(sudoers_temp("deploy").contains('.'));
    }

    #[test]
    fn an_existing_user_in_the_wanted_state_is_left_alone() {
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            (
                "getent passwd -- deploy",
                0,
                "deploy:x:1001:1001::/home/deploy:/bin/bash\n",
            ),
            ("getent group", 0, "adm:x:4:deploy\n"),
            ("test -e /etc/sudoers.d/fleet-user-deploy", 1, ""),
        ]);
        let o = EnsureOptions {
            shell: Some("/bin/bash".into()),
            groups: vec!["adm".into()],
            sudo: Some(SudoRule::Full(false)),
            ..Default::default()
        };
        assert_eq!(ensure(&r, "deploy", &o).unwrap(), Ensured::default());
        // Without `sudo` the rule is not even read.
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            (
                "getent passwd -- deploy",
                0,
                "deploy:x:1001:1001::/home/deploy:/bin/bash\n",
            ),
            ("getent group", 0, ""),
        ]);
        let o = EnsureOptions::default();
        assert_eq!(ensure(&r, "deploy", &o).unwrap(), Ensured::default());
    }

    #[test]
    fn only_what_differs_is_changed() {
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            (
                "getent passwd -- deploy",
                0,
                "deploy:x:1001:1001::/home/deploy:/bin/sh\n",
            ),
            ("usermod --shell /bin/bash -- deploy", 0, ""),
            ("getent group", 0, "adm:x:4:deploy\nsudo:x:27:\n"),
            ("usermod --append --groups sudo -- deploy", 0, ""),
            ("test -e /etc/sudoers.d/fleet-user-deploy", 0, ""),
            ("cat -- /etc/sudoers.d/fleet-user-deploy", 0, "old rule\n"),
            ("rm -f -- /etc/sudoers.d/fleet-user-deploy", 0, ""),
        ]);
        let o = EnsureOptions {
            shell: Some("/bin/bash".into()),
            groups: vec!["adm".into(), "sudo".into()],
            sudo: Some(SudoRule::Full(false)),
            ..Default::default()
        };
        let done = ensure(&r, "deploy", &o).unwrap();
        assert_eq!(
            done.changes,
            ["shell /bin/bash", "groups +sudo", "sudo rule"]
        );
    }

    #[test]
    fn a_rule_visudo_refuses_is_removed_not_installed() {
        let r = Scripted::new(&[
            ("id -u", 0, "1000\n"),
            ("getent passwd -- deploy", 2, ""),
            ("sudo -- useradd --create-home -- deploy", 0, ""),
            ("test -e /etc/sudoers.d/fleet-user-deploy", 1, ""),
            ("sudo -n sh -c", 0, "absent\n"),
            ("sudo -n sh -c", 0, ""),
            (
                "sudo -- visudo -c -f /etc/sudoers.d/.fleet-user-deploy.new",
                1,
                "syntax error near line 2\n",
            ),
            (
                "sudo -- rm -f -- /etc/sudoers.d/.fleet-user-deploy.new",
                0,
                "",
            ),
        ]);
        let o = EnsureOptions {
            sudo: Some(SudoRule::Full(true)),
            ..Default::default()
        };
        let e = ensure(&r, "deploy", &o).unwrap_err();
        assert!(
            e.message
                .contains("fails `visudo -c` and was not installed"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("syntax error near line 2"),
            "{}",
            e.message
        );
        assert!(!r.ran().iter().any(|c| c.starts_with("sudo -- mv")));
    }

    #[test]
    fn lock_is_idempotent() {
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            (
                "getent passwd -- deploy",
                0,
                "deploy:x:1001:1001::/home/deploy:/bin/sh\n",
            ),
            (
                "passwd -S -- deploy",
                0,
                "deploy L 2026-01-01 0 99999 7 -1\n",
            ),
        ]);
        assert!(!lock(&r, "deploy").unwrap());
    }
}
