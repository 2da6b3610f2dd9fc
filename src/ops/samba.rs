//! Samba shares, one system user per share (as fleet's predecessor did): the shares
//! live in a fleet-managed include file (`/etc/samba/smb.shares.conf`, included once
//! from `smb.conf`), each share's folder lies below a configured base, each share's
//! user has no login shell and a samba password set through `smbpasswd -s` on stdin
//! (never on a command line, never logged). The include file is a pure function of the
//! shares, so fleet reads it back to know what it manages; `testparm -s` checks the
//! configuration before smbd reloads it, and a failing check restores the old file.

use crate::ops::files::FileOpts;
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::{Argv, maybe_sudo, quote};
use crate::ops::users;
use crate::outcome::HostError;
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const SMB_CONF: &str = "/etc/samba/smb.conf";
pub(crate) const SHARES_CONF: &str = "/etc/samba/smb.shares.conf";
/// The line `smb.conf` gets once.
pub(crate) const INCLUDE_LINE: &str = "include = /etc/samba/smb.shares.conf";
/// Root-only: per share user, a hash of the password set, so an unchanged password is
/// not set again (the hash is salted with the user name; the password never is stored).
pub(crate) const STATE_DIR: &str = "/etc/samba/fleet";
/// The shells of users that cannot log in.
const NO_LOGIN: &[&str] = &[
    "/usr/sbin/nologin",
    "/sbin/nologin",
    "/bin/false",
    "/usr/bin/false",
];
const HEADER: &str = "# Managed by fleet (samba::share); changes by hand are lost.\n";

fn default_base() -> String {
    "/srv/shares".into()
}
fn default_prefix() -> String {
    "smb-".into()
}

/// The options map of `samba::share` (the password itself is read by the glue).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShareOptions {
    /// The folder: relative to `base`, or absolute below it. Default: the share name.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// The share's system user. Default: `user_prefix` + share name.
    #[serde(default)]
    pub(crate) user: Option<String>,
    /// The name of the secret holding the password (`secret(name)`).
    #[serde(default)]
    pub(crate) password_secret: Option<String>,
    /// The password itself, from `secret(...)` in the recipe.
    #[serde(default)]
    pub(crate) password: Option<String>,
    /// The name of a project secret the password is derived from (with the share name).
    #[serde(default)]
    pub(crate) password_key: Option<String>,
    #[serde(default)]
    pub(crate) read_only: bool,
    /// Further samba users allowed in (default: only the share's user).
    #[serde(default)]
    pub(crate) valid_users: Vec<String>,
    #[serde(default = "default_base")]
    pub(crate) base: String,
    #[serde(default = "default_prefix")]
    pub(crate) user_prefix: String,
}

/// One share as the include file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Share {
    pub(crate) path: String,
    pub(crate) user: String,
    pub(crate) read_only: bool,
    pub(crate) valid_users: Vec<String>,
}

/// Why a share's options are refused (before anything reaches a host).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SambaError {
    #[error(
        "`{}` is not a share name: use letters, digits, _ and - (at most 64), not global, homes or printers",
        .0.escape_debug()
    )]
    ShareName(String),
    #[error("the samba base `{}` must be an absolute path", .0.escape_debug())]
    Base(String),
    #[error(
        "the share folder `{}` may hold only letters, digits, / . _ - + and spaces",
        .0.escape_debug()
    )]
    FolderCharacters(String),
    #[error(
        "the share folder `{}` is outside the samba base {base}: give a path below it",
        .path.escape_debug()
    )]
    Outside { path: String, base: String },
    #[error("the share user `{user}` must start with the user prefix `{prefix}` (not empty)")]
    UserPrefix { user: String, prefix: String },
    #[error(transparent)]
    User(#[from] users::UserError),
}

/// A share name: letters, digits, `_` and `-`, at most 64; not one of samba's special
/// sections.
pub(crate) fn valid_share_name(name: &str) -> Result<&str, SambaError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let special = ["global", "homes", "printers", "print$", "ipc$"]
        .contains(&name.to_ascii_lowercase().as_str());
    if ok && !special {
        Ok(name)
    } else {
        Err(SambaError::ShareName(name.to_string()))
    }
}

/// The share's folder: `path` (relative to `base`, or absolute) must lie strictly below
/// `base`, compared lexically with `.`/`..` refused, and hold only characters that
/// smb.conf takes literally (letters, digits, `/ . _ - +` and space; no `%`).
pub(crate) fn folder(base: &str, path: &str) -> Result<String, SambaError> {
    let literal = |p: &str| {
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+ ".contains(c))
    };
    if !base.starts_with('/') || !literal(base) || base.split('/').any(|c| c == "..") {
        return Err(SambaError::Base(base.to_string()));
    }
    let outside = || SambaError::Outside {
        path: path.to_string(),
        base: base.to_string(),
    };
    if !literal(path) {
        return Err(SambaError::FolderCharacters(path.to_string()));
    }
    let relative = match path.strip_prefix('/') {
        Some(_) => {
            let root = base.trim_end_matches('/');
            let rest = path.strip_prefix(root).ok_or_else(outside)?;
            if !rest.starts_with('/') {
                return Err(outside());
            }
            rest.to_string()
        }
        None => path.to_string(),
    };
    let joined =
        crate::ops::paths::join_relative(Path::new(base), &relative).map_err(|_| outside())?;
    crate::ops::paths::stays_under(Path::new(base), &joined).map_err(|_| outside())?;
    Ok(joined.to_string_lossy().into_owned())
}

/// The include file: every share, sorted by name.
pub(crate) fn render(shares: &BTreeMap<String, Share>) -> String {
    let mut text = HEADER.to_string();
    for (name, s) in shares {
        let mut users = vec![s.user.clone()];
        users.extend(s.valid_users.iter().filter(|u| **u != s.user).cloned());
        text.push_str(&format!(
            "\n[{name}]\n   path = {}\n   valid users = {}\n   force user = {}\n   read only = {}\n   browseable = yes\n",
            s.path,
            users.join(" "),
            s.user,
            if s.read_only { "yes" } else { "no" },
        ));
    }
    text
}

/// The shares of an include file fleet wrote (other sections and keys are ignored).
pub(crate) fn parse(text: &str) -> BTreeMap<String, Share> {
    let mut shares = BTreeMap::new();
    let mut current: Option<(String, BTreeMap<String, String>)> = None;
    let mut finish = |c: Option<(String, BTreeMap<String, String>)>| {
        if let Some((name, keys)) = c
            && let (Some(path), Some(user)) = (keys.get("path"), keys.get("force user"))
        {
            let valid_users = keys
                .get("valid users")
                .map(|v| {
                    v.split_whitespace()
                        .filter(|u| u != user)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            shares.insert(
                name,
                Share {
                    path: path.clone(),
                    user: user.clone(),
                    read_only: keys.get("read only").is_some_and(|v| v == "yes"),
                    valid_users,
                },
            );
        }
    };
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            finish(current.take());
            current = Some((name.to_string(), BTreeMap::new()));
        } else if let (Some((_, keys)), Some((k, v))) = (current.as_mut(), line.split_once('=')) {
            keys.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    finish(current);
    shares
}

/// The password derived from a project secret and the share name: 24 characters of
/// SHA-256 over both (length-prefixed), base 62. Deterministic, so every run and every
/// controller sets the same one; without the key it cannot be guessed.
pub(crate) fn derive_password(key: &str, share: &str) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut data = b"fleet samba password\0".to_vec();
    data.extend((key.len() as u64).to_be_bytes());
    data.extend(key.as_bytes());
    data.extend(share.as_bytes());
    Sha256::digest(&data)
        .iter()
        .take(24)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// What the state file holds for `user`'s password: a salted hash, never the password.
pub(crate) fn password_mark(user: &str, password: &str) -> String {
    let data = format!("fleet samba mark\0{user}\0{password}");
    format!("{}\n", crate::ops::files::sha256_hex(data.as_bytes()))
}

/// `smbpasswd -s -a USER`: the password comes twice on stdin (`-s`).
pub(crate) fn smbpasswd_argv(user: &str) -> Argv {
    Argv::new("smbpasswd").args(["-s", "-a", "--", user])
}

/// smbpasswd's stdin for `password`.
pub(crate) fn smbpasswd_input(password: &str) -> Vec<u8> {
    format!("{password}\n{password}\n").into_bytes()
}

/// Starts smbd, or has the running one reload its configuration: systemd when it runs,
/// else the init script, else smbd itself.
pub(crate) const RELOAD: &str = "if [ -d /run/systemd/system ]; then systemctl reload-or-restart smbd; \
elif pidof smbd >/dev/null; then smbcontrol smbd reload-config; \
elif [ -x /etc/init.d/smbd ]; then /etc/init.d/smbd start; else smbd -D; fi";

fn change(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::CHANGE
    }
}

fn fail(r: &dyn Remote, message: String) -> HostError {
    HostError::new(r.name(), message)
}

fn root_file(sudo: bool, mode: &str) -> FileOpts {
    FileOpts {
        mode: Some(mode.into()),
        owner: Some("root:root".into()),
        sudo,
    }
}

/// A file's text, empty when it does not exist.
fn read(r: &dyn Remote, path: &str, sudo: bool) -> Result<String, HostError> {
    let cmd = format!("if [ -f {p} ]; then cat -- {p}; fi", p = quote(path));
    let out = r.command(
        &cmd,
        CommandOpts {
            sudo,
            allow_fail: false,
            ..CommandOpts::QUERY
        },
    )?;
    Ok(out.stdout)
}

/// A share as `samba::share` wants it.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub(crate) name: String,
    pub(crate) share: Share,
}

impl Wanted {
    /// Checks `o` for share `name`: valid names, the folder below the base.
    pub(crate) fn from_options(name: &str, o: &ShareOptions) -> Result<Wanted, SambaError> {
        valid_share_name(name)?;
        let user = match &o.user {
            Some(u) => u.clone(),
            None => format!("{}{}", o.user_prefix, name.to_ascii_lowercase()),
        };
        users::valid_name(&user)?;
        // The share's user is deleted with the share: never a user fleet did not name.
        if o.user_prefix.is_empty() || !user.starts_with(&o.user_prefix) {
            return Err(SambaError::UserPrefix {
                user,
                prefix: o.user_prefix.clone(),
            });
        }
        for u in &o.valid_users {
            users::valid_name(u)?;
        }
        let path = folder(&o.base, o.path.as_deref().unwrap_or(name))?;
        Ok(Wanted {
            name: name.to_string(),
            share: Share {
                path,
                user,
                read_only: o.read_only,
                valid_users: o.valid_users.clone(),
            },
        })
    }
}

/// Makes the share exist as wanted, with its user, folder and password; the steps that
/// changed something. A second share for a folder or user another share has is refused.
pub(crate) fn share(r: &dyn Remote, w: &Wanted, password: &str) -> Result<Vec<String>, HostError> {
    let (name, s) = (&w.name, &w.share);
    let sudo = r.needs_sudo()?;
    let mut changes = Vec::new();
    let old_text = read(r, SHARES_CONF, sudo)?;
    let mut shares = parse(&old_text);
    if let Some((other, _)) = shares
        .iter()
        .find(|(n, o)| *n != name && (o.path == s.path || o.user == s.user))
    {
        return Err(fail(
            r,
            format!(
                "samba::share `{name}`: share `{other}` already has the folder {} or the user {}; one share per folder and user",
                s.path, s.user
            ),
        ));
    }
    // The user: a system account without a login shell.
    let existing = users::lookup(r, &s.user)?;
    if let Some(u) = existing
        .as_ref()
        .filter(|u| !NO_LOGIN.contains(&u.shell.as_str()))
    {
        return Err(fail(
            r,
            format!(
                "samba::share `{name}`: {} is a login user (shell {}); a share's user has no login shell",
                s.user, u.shell
            ),
        ));
    }
    if existing.is_none() {
        let add = Argv::new("useradd").args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--",
            &s.user,
        ]);
        r.program(&add, change(sudo))?;
        changes.push(format!("user {}", s.user));
    }
    // The folder, owned by the user, for it alone.
    let stat = r.command(
        &format!("stat -c '%U %a' -- {}", quote(&s.path)),
        CommandOpts {
            sudo,
            ..CommandOpts::QUERY
        },
    )?;
    let wanted_stat = format!("{} 770", s.user);
    if stat.code != 0 || stat.stdout.trim() != wanted_stat {
        let cmd = format!(
            "mkdir -p -- {p} && chown -- {u}: {p} && chmod 0770 -- {p}",
            p = quote(&s.path),
            u = quote(&s.user)
        );
        r.command(&maybe_sudo(&cmd, sudo), CommandOpts::CHANGE)?;
        changes.push(format!("folder {}", s.path));
    }
    // The password, set again only when it differs from the one fleet set.
    let mark_path = format!("{STATE_DIR}/{}", s.user);
    let mark = password_mark(&s.user, password);
    if read(r, &mark_path, sudo)? != mark {
        if r.check_mode() {
            r.out(&format!("would set the samba password of {}", s.user));
            r.mark_changed();
        } else {
            let argv = smbpasswd_argv(&s.user);
            let line = if sudo { argv.sudo_line() } else { argv.line() };
            let out = r.exec(&line, None, Some(&smbpasswd_input(password)), true)?;
            if out.code != 0 {
                return Err(fail(
                    r,
                    format!(
                        "cannot set the samba password of {}: {}",
                        s.user,
                        crate::ops::text::tail(&out.stderr, 3)
                    ),
                ));
            }
            r.command(
                &maybe_sudo(&format!("mkdir -p -m 0700 -- {STATE_DIR}"), sudo),
                CommandOpts::CHANGE,
            )?;
            crate::ops::files::write_file(
                r,
                &mark_path,
                mark.as_bytes(),
                &root_file(sudo, "0600"),
            )?;
            r.mark_changed();
        }
        changes.push("password".into());
    }
    shares.insert(name.clone(), s.clone());
    if apply_config(r, &old_text, &render(&shares), sudo)? {
        changes.push("config".into());
    }
    Ok(changes)
}

/// The shares fleet manages on the host (from the include file), by name.
pub(crate) fn list(r: &dyn Remote) -> Result<BTreeMap<String, Share>, HostError> {
    Ok(parse(&read(r, SHARES_CONF, r.needs_sudo()?)?))
}

/// Removes share `name` from the include file, and its user with its samba account; the
/// folder and its files stay. True when there was such a share.
pub(crate) fn remove(r: &dyn Remote, name: &str) -> Result<bool, HostError> {
    valid_share_name(name).map_err(|e| fail(r, format!("samba::remove: {e}")))?;
    let sudo = r.needs_sudo()?;
    let old_text = read(r, SHARES_CONF, sudo)?;
    let mut shares = parse(&old_text);
    let Some(gone) = shares.remove(name) else {
        return Ok(false);
    };
    apply_config(r, &old_text, &render(&shares), sudo)?;
    if users::lookup(r, &gone.user)?.is_some() {
        r.program(
            &Argv::new("smbpasswd").args(["-x", "--", &gone.user]),
            CommandOpts {
                allow_fail: true,
                ..change(sudo)
            },
        )?;
        r.program(&users::userdel(&gone.user, true), change(sudo))?;
        r.program(
            &Argv::new("rm").args(["-f", "--", &format!("{STATE_DIR}/{}", gone.user)]),
            change(sudo),
        )?;
    }
    Ok(true)
}

/// Writes the include file (and the include line into smb.conf once), checks the whole
/// configuration with `testparm -s` (restoring the old file when it fails) and has smbd
/// reload it; true when the configuration changed.
fn apply_config(r: &dyn Remote, old: &str, new: &str, sudo: bool) -> Result<bool, HostError> {
    let mut changed = false;
    let conf = read(r, SMB_CONF, sudo)?;
    if conf.is_empty() && !r.check_mode() {
        return Err(fail(
            r,
            format!("{SMB_CONF} is missing on {}: install samba first", r.name()),
        ));
    }
    if conf.is_empty() {
        // --check before samba is installed: the include line comes with the real run.
        r.out(&format!(
            "would add `{INCLUDE_LINE}` to {SMB_CONF} once samba is installed"
        ));
    } else if !conf.lines().any(|l| l.trim() == INCLUDE_LINE) {
        let mut text = conf.clone();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "\n# Shares managed by fleet (samba::share)\n{INCLUDE_LINE}\n"
        ));
        changed |=
            crate::ops::files::write_file(r, SMB_CONF, text.as_bytes(), &root_file(sudo, "0644"))?;
    }
    changed |=
        crate::ops::files::write_file(r, SHARES_CONF, new.as_bytes(), &root_file(sudo, "0644"))?;
    if !changed {
        return Ok(false);
    }
    if r.check_mode() {
        r.out("would check the samba configuration (testparm -s) and reload smbd");
        return Ok(true);
    }
    let check = r.program(
        &Argv::new("testparm").args(["-s", "--", SMB_CONF]),
        CommandOpts {
            sudo,
            ..CommandOpts::QUERY
        },
    )?;
    if check.code != 0 {
        crate::ops::files::write_file(r, SHARES_CONF, old.as_bytes(), &root_file(sudo, "0644"))?;
        return Err(fail(
            r,
            format!(
                "testparm -s refused the samba configuration, which was put back: {}",
                crate::ops::text::tail(&check.stderr, 5)
            ),
        ));
    }
    r.command(&maybe_sudo(RELOAD, sudo), CommandOpts::CHANGE)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(path: &str, user: &str) -> Share {
        Share {
            path: path.into(),
            user: user.into(),
            read_only: false,
            valid_users: vec![],
        }
    }

    #[test]
    fn folders_stay_below_the_base() {
        assert_eq!(
            folder("/srv/shares", "backup").unwrap(),
            "/srv/shares/backup"
        );
        assert_eq!(
            folder("/srv/shares", "/srv/shares/a/b").unwrap(),
            "/srv/shares/a/b"
        );
        for bad in [
            "/etc",
            "../etc",
            "/srv/shares",
            "/srv/shares/../x",
            "/srv/sharesx/a",
            "a/../../x",
            "x%u",
            "a\nb",
            "",
        ] {
            assert!(folder("/srv/shares", bad).is_err(), "{bad:?}");
        }
        assert!(
            folder("/srv/shares", "/etc")
                .unwrap_err()
                .to_string()
                .contains("outside the samba base /srv/shares")
        );
    }

    #[test]
    fn samba_errors_say_what_is_wrong() {
        let cases = [
            (
                SambaError::ShareName("a\nb".into()),
                "`a\\nb` is not a share name: use letters, digits, _ and - (at most 64), not global, homes or printers",
            ),
            (
                SambaError::Base("srv".into()),
                "the samba base `srv` must be an absolute path",
            ),
            (
                SambaError::FolderCharacters("x%u".into()),
                "the share folder `x%u` may hold only letters, digits, / . _ - + and spaces",
            ),
            (
                SambaError::Outside {
                    path: "/etc".into(),
                    base: "/srv/shares".into(),
                },
                "the share folder `/etc` is outside the samba base /srv/shares: give a path below it",
            ),
            (
                SambaError::UserPrefix {
                    user: "root".into(),
                    prefix: "smb-".into(),
                },
                "the share user `root` must start with the user prefix `smb-` (not empty)",
            ),
            (
                SambaError::User(users::UserError::Name("Root".into())),
                "`Root` is not a user name: use a lower-case letter or _ first, then a-z, 0-9, _ or -, at most 32 characters",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn share_names_are_plain() {
        assert!(valid_share_name("backup-1").is_ok());
        for bad in ["", "global", "Homes", "a b", "a]", "x\n[global]"] {
            assert!(valid_share_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_include_file_round_trips() {
        let mut shares = BTreeMap::new();
        shares.insert(
            "backup".to_string(),
            share("/srv/shares/backup", "smb-backup"),
        );
        let mut docs = share("/srv/shares/docs", "smb-docs");
        docs.read_only = true;
        docs.valid_users = vec!["alice".into()];
        shares.insert("docs".to_string(), docs);
        let text = render(&shares);
        assert_eq!(
            text,
            "# Managed by fleet (samba::share); changes by hand are lost.\n\n[backup]\n   path = /srv/shares/backup\n   valid users = smb-backup\n   force user = smb-backup\n   read only = no\n   browseable = yes\n\n[docs]\n   path = /srv/shares/docs\n   valid users = smb-docs alice\n   force user = smb-docs\n   read only = yes\n   browseable = yes\n"
        );
        assert_eq!(parse(&text), shares);
        assert!(parse("").is_empty());
    }

    #[test]
    fn options_become_a_share() {
        let o = ShareOptions {
            base: default_base(),
            user_prefix: default_prefix(),
            ..Default::default()
        };
        let w = Wanted::from_options("Backup", &o).unwrap();
        assert_eq!(
            (w.share.path.as_str(), w.share.user.as_str()),
            ("/srv/shares/Backup", "smb-backup")
        );
        let root = ShareOptions {
            user: Some("root".into()),
            ..o.clone()
        };
        assert!(
            Wanted::from_options("x", &root)
                .unwrap_err()
                .to_string()
                .contains("must start with the user prefix `smb-`")
        );
        let o = ShareOptions {
            path: Some("/etc".into()),
            ..o
        };
        assert!(Wanted::from_options("x", &o).is_err());
    }

    #[test]
    fn derived_passwords_are_stable_and_differ_per_share() {
        let a = derive_password("k3y", "backup");
        assert_eq!(a.len(), 24);
        assert_eq!(a, derive_password("k3y", "backup"));
        assert_ne!(a, derive_password("k3y", "docs"));
        assert_ne!(a, derive_password("k3z", "backup"));
        // Pinned: a changed derivation would change every derived share password.
        assert_eq!(derive_password("k3y", "backup"), "Zwyck3XNM6bwH3hYFM7mDZ9T");
        assert!(
            !password_mark("smb-x", "pw").contains("pw\n")
                && password_mark("smb-x", "pw").len() == 65
        );
    }

    #[test]
    fn the_password_goes_on_stdin_only() {
        assert_eq!(smbpasswd_argv("smb-x").line(), "smbpasswd -s -a -- smb-x");
        assert_eq!(smbpasswd_input("p w"), b"p w\np w\n");
    }

    #[test]
    fn a_login_user_is_never_a_share_user() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            ("if [ -f", 0, ""),
            (
                "getent passwd -- smb-x",
                0,
                "smb-x:x:1001:1001::/home/smb-x:/bin/bash\n",
            ),
        ]);
        let w = Wanted {
            name: "x".into(),
            share: share("/srv/shares/x", "smb-x"),
        };
        let e = super::share(&r, &w, "pw").unwrap_err();
        assert!(
            e.message
                .contains("smb-x is a login user (shell /bin/bash)"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_second_share_for_the_same_folder_is_refused() {
        use crate::ops::remote::fake::Scripted;
        let existing = render(
            &[("a".to_string(), share("/srv/shares/x", "smb-a"))]
                .into_iter()
                .collect(),
        );
        let r = Scripted::new(&[("id -u", 0, "0\n"), ("if [ -f", 0, &existing)]);
        let w = Wanted {
            name: "b".into(),
            share: share("/srv/shares/x", "smb-b"),
        };
        let e = super::share(&r, &w, "pw").unwrap_err();
        assert!(
            e.message
                .contains("share `a` already has the folder /srv/shares/x"),
            "{}",
            e.message
        );
    }
}
