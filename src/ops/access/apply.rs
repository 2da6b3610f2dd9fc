//! The procedures of `fleet keys plan/apply` over [`Remote`]: find each account's home
//! (`getent passwd`, never assumed), read its `authorized_keys` (refusing symlinks),
//! plan fleet's block, refuse a plan that would drop the key fleet itself logs in with,
//! write the file atomically (0600, `.ssh` 0700, owned by the account), and after
//! writing the login account's file open a fresh connection with fleet's key; when that
//! fails the previous file is put back and the host fails with the reason.

use super::block::{self, Plan};
use super::keyline::PublicKey;
use super::{Grant, valid_account};
use crate::ops::files::transfer::{FileOpts, write_file};
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::{Argv, maybe_sudo, quote};
use crate::outcome::HostError;
use std::collections::BTreeMap;

/// One account's part of a host's plan.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct AccountPlan {
    pub(crate) account: String,
    pub(crate) path: String,
    #[serde(flatten)]
    pub(crate) plan: Plan,
    #[serde(skip)]
    old: Option<String>,
    /// chown's owner: the account (its group is left as it is; the file is 0600).
    #[serde(skip)]
    owner: String,
    #[serde(skip)]
    ids: (u32, u32),
    #[serde(skip)]
    home: String,
}

impl AccountPlan {
    /// The keys the file holds now (in and outside fleet's block).
    pub(crate) fn current_keys(&self) -> Vec<block::KeyEntry> {
        block::read(self.old.as_deref().unwrap_or_default())
            .map(|c| c.keys)
            .unwrap_or_default()
    }
}

/// What a host's step needs besides the host.
pub(crate) struct HostInput<'a> {
    /// Per managed account, the keys it should have.
    pub(crate) grants: &'a BTreeMap<String, Vec<Grant>>,
    /// The account fleet logs in as on this host.
    pub(crate) login_user: &'a str,
    /// The public keys fleet logs in with (its identity file's, or the agent's).
    pub(crate) fleet_keys: &'a [PublicKey],
}

fn fail(r: &dyn Remote, message: String) -> HostError {
    HostError::new(r.name(), message)
}

/// `name:x:uid:gid:gecos:home:shell` -> (home, uid, gid).
pub(crate) fn parse_passwd(line: &str) -> Option<(String, u32, u32)> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    if f.len() != 7 {
        return None;
    }
    let home = f[5];
    let ok = home.starts_with('/')
        && !home.split('/').any(|c| c == "..")
        && !home.chars().any(char::is_control);
    ok.then(|| {
        Some((
            home.trim_end_matches('/').to_string(),
            f[2].parse().ok()?,
            f[3].parse().ok()?,
        ))
    })
    .flatten()
}

/// Prints the file's state and content: `absent`, or `present` then the content;
/// refuses a `.ssh` or file that is a symlink (fleet would read or write elsewhere).
pub(crate) fn read_cmd(home: &str) -> String {
    let dir = quote(&format!("{home}/.ssh"));
    let file = quote(&format!("{home}/.ssh/authorized_keys"));
    format!(
        "if [ -L {dir} ] || [ -L {file} ]; then echo 'is a symlink; fleet will not follow it' >&2; exit 3; fi; \
         if [ -f {file} ]; then echo present; cat -- {file}; else echo absent; fi"
    )
}

/// Creates `.ssh` (0700, owned by the account) when it is missing.
pub(crate) fn mkdir_cmd(home: &str, uid: u32, gid: u32) -> String {
    let dir = quote(&format!("{home}/.ssh"));
    format!("[ -d {dir} ] || install -d -m 0700 -o {uid} -g {gid} -- {dir}")
}

/// Prints a server's public key files: `key_files`, else the login account's
/// `~/.ssh/id_*.pub`.
pub(crate) fn fetch_cmd(key_files: &[String]) -> String {
    if key_files.is_empty() {
        r#"for f in "$HOME"/.ssh/id_*.pub; do if [ -f "$f" ]; then cat -- "$f"; fi; done"#
            .to_string()
    } else {
        let files: Vec<String> = key_files.iter().map(|f| quote(f)).collect();
        format!("cat -- {}", files.join(" "))
    }
}

/// Reads a server's public keys from its host (see [`fetch_cmd`]).
pub(crate) fn fetch_keys(r: &dyn Remote, key_files: &[String]) -> Result<String, HostError> {
    let out = r.command(&fetch_cmd(key_files), CommandOpts::QUERY)?;
    if out.code != 0 || out.stdout_dropped > 0 {
        return Err(fail(
            r,
            format!(
                "cannot read public keys on {}: {}",
                r.name(),
                crate::ops::text::tail(&out.stderr, 2)
            ),
        ));
    }
    Ok(out.stdout)
}

/// sshd's effective `AuthorizedKeysFile` (empty output when `sshd -T` cannot run, e.g.
/// without root: then fleet cannot tell and does not judge).
pub(crate) const SSHD_KEYS_FILE_CMD: &str =
    "PATH=\"$PATH:/usr/sbin:/sbin\" sshd -T 2>/dev/null | grep -i '^authorizedkeysfile '";

/// Whether sshd's `authorizedkeysfile …` line includes `~/.ssh/authorized_keys`;
/// None when the line is missing.
pub(crate) fn sshd_reads_authorized_keys(sshd_t: &str) -> Option<bool> {
    let line = sshd_t
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorizedkeysfile "))?;
    Some(line.split_whitespace().skip(1).any(|f| {
        matches!(
            f,
            ".ssh/authorized_keys" | "%h/.ssh/authorized_keys" | "~/.ssh/authorized_keys"
        )
    }))
}

fn needs_sudo(r: &dyn Remote, account: &str, login: &str) -> Result<bool, HostError> {
    Ok(account != login && r.needs_sudo()?)
}

/// Reads every managed account and plans its file; refuses to drop fleet's own key.
pub(crate) fn plan_host(r: &dyn Remote, input: &HostInput) -> Result<Vec<AccountPlan>, HostError> {
    read_host(r, input, true)
}

/// Reads every managed account and plans its file; `guard`: refuse a plan that drops
/// fleet's own key (false: only to show what the host has).
pub(crate) fn read_host(
    r: &dyn Remote,
    input: &HostInput,
    guard: bool,
) -> Result<Vec<AccountPlan>, HostError> {
    let sshd = r.command(SSHD_KEYS_FILE_CMD, CommandOpts::QUERY)?;
    if sshd_reads_authorized_keys(&sshd.stdout) == Some(false) {
        return Err(fail(
            r,
            format!(
                "sshd on {} does not read ~/.ssh/authorized_keys ({}), so fleet's keys would have no effect; \
                 add .ssh/authorized_keys to its AuthorizedKeysFile",
                r.name(),
                crate::ops::text::shown(sshd.stdout.trim())
            ),
        ));
    }
    let mut out = Vec::new();
    for (account, grants) in input.grants {
        if !valid_account(account) {
            return Err(fail(r, format!("`{account}` is not a valid account name")));
        }
        let sudo = needs_sudo(r, account, input.login_user)?;
        let got = r.program(
            &Argv::new("getent").arg("passwd").arg(account.as_str()),
            CommandOpts::QUERY,
        )?;
        let Some((home, uid, gid)) = got
            .stdout
            .lines()
            .next()
            .filter(|_| got.code == 0)
            .and_then(parse_passwd)
        else {
            return Err(fail(
                r,
                format!(
                    "account `{account}` does not exist on {} (getent passwd finds no such user)",
                    r.name()
                ),
            ));
        };
        let read = r.command(&maybe_sudo(&read_cmd(&home), sudo), CommandOpts::QUERY)?;
        if read.code != 0 || read.stdout_dropped > 0 {
            let why = if read.stdout_dropped > 0 {
                "it is too large".to_string()
            } else {
                crate::ops::text::tail(&read.stderr, 2)
            };
            return Err(fail(
                r,
                format!("cannot read {home}/.ssh/authorized_keys of {account}: {why}"),
            ));
        }
        let old = match read.stdout.split_once('\n') {
            Some(("present", rest)) => Some(rest.to_string()),
            _ if read.stdout.trim() == "absent" => None,
            _ => {
                return Err(fail(
                    r,
                    format!("unexpected answer reading {home}/.ssh/authorized_keys"),
                ));
            }
        };
        let path = format!("{home}/.ssh/authorized_keys");
        let plan = block::plan(old.as_deref().unwrap_or_default(), grants)
            .map_err(|e| fail(r, format!("{path} is left alone: {e}")))?;
        if guard && account == input.login_user {
            keeps_fleet_key(
                r,
                account,
                old.as_deref().unwrap_or_default(),
                &plan,
                grants,
                input.fleet_keys,
            )?;
        }
        out.push(AccountPlan {
            account: account.clone(),
            path,
            plan,
            old,
            owner: account.clone(),
            ids: (uid, gid),
            home,
        });
    }
    Ok(out)
}

/// Never lock out: a key fleet logs in with now must still log in after the change.
fn keeps_fleet_key(
    r: &dyn Remote,
    account: &str,
    old: &str,
    plan: &Plan,
    grants: &[Grant],
    fleet_keys: &[PublicKey],
) -> Result<(), HostError> {
    for k in fleet_keys {
        let id = k.key_id();
        if !block::logs_in(old, &id) || block::logs_in(&plan.text, &id) {
            continue;
        }
        let why = match grants.iter().find(|g| g.key.key_id() == id) {
            Some(g) => format!(
                "the rule at {}:{} gives it the options `{}`, which keep fleet from logging in",
                super::ACCESS_FILE,
                g.rule_line,
                g.key.options.join(",")
            ),
            None => {
                let owner = plan
                    .removed
                    .iter()
                    .find(|e| e.key_id == id)
                    .and_then(|e| e.owner.clone())
                    .unwrap_or_else(|| "fleet".into());
                format!("no rule grants {owner}'s key to {account} any more")
            }
        };
        return Err(fail(
            r,
            format!(
                "refusing a plan that drops the key fleet logs in with ({}) from {account}@{}: {why}; \
                 keep a rule that gives it to {account} on this host",
                k.fingerprint(),
                r.name()
            ),
        ));
    }
    Ok(())
}

/// Writes each changed account's file; after writing the login account's, `verify`
/// opens a fresh connection, and on failure the previous file is restored.
pub(crate) fn apply_host(
    r: &dyn Remote,
    input: &HostInput,
    verify: &dyn Fn() -> Result<(), super::controller::LoginError>,
) -> Result<Vec<AccountPlan>, HostError> {
    let plans = plan_host(r, input)?;
    for p in &plans {
        if !p.plan.changes {
            continue;
        }
        let sudo = needs_sudo(r, &p.account, input.login_user)?;
        let (uid, gid) = p.ids;
        r.command(
            &maybe_sudo(&mkdir_cmd(&p.home, uid, gid), sudo),
            CommandOpts {
                changed: Some(false),
                ..CommandOpts::CHANGE
            },
        )?;
        let opts = FileOpts {
            mode: Some("0600".into()),
            owner: Some(p.owner.clone()),
            sudo,
        };
        write_file(r, &p.path, p.plan.text.as_bytes(), &opts)?;
        if r.check_mode() || p.account != input.login_user {
            continue;
        }
        if let Err(why) = verify() {
            match &p.old {
                Some(old) => {
                    write_file(r, &p.path, old.as_bytes(), &opts)?;
                }
                None => {
                    r.command(
                        &maybe_sudo(&format!("rm -f -- {}", quote(&p.path)), sudo),
                        CommandOpts::CHANGE,
                    )?;
                }
            }
            return Err(fail(
                r,
                format!(
                    "after writing {} fleet could not log in again as {}: {why}; the previous file is restored",
                    p.path, p.account
                ),
            ));
        }
    }
    Ok(plans)
}

/// The journal's record of a host's change: per account, keys added and removed with
/// their owners.
pub(crate) fn journal_value(plans: &[AccountPlan]) -> serde_json::Value {
    let changed: Vec<&AccountPlan> = plans
        .iter()
        .filter(|p| !p.plan.added.is_empty() || !p.plan.removed.is_empty())
        .collect();
    serde_json::to_value(changed).unwrap_or_default()
}

/// One line per added (`+`) or removed (`-`) key, for the host's output.
pub(crate) fn describe(plans: &[AccountPlan]) -> Vec<String> {
    let mut out = Vec::new();
    for p in plans {
        for (sign, list) in [("+", &p.plan.added), ("-", &p.plan.removed)] {
            for e in list {
                let opts = if e.options.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", crate::ops::text::shown(&e.options.join(",")))
                };
                out.push(format!(
                    "{} {sign} {} {} {}{opts}",
                    p.account,
                    e.owner.as_deref().unwrap_or("?"),
                    e.fingerprint,
                    e.comment
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::keyline::parse_key_line;
    use super::super::keyline::tests::{ED, ED2};
    use super::super::{Grant, OwnerKind};
    use super::*;
    use crate::ops::remote::fake::Scripted;

    #[test]
    fn passwd_lines_give_home_and_ids() {
        assert_eq!(
            parse_passwd("deploy:x:1001:1002:,,,:/home/deploy:/bin/bash\n"),
            Some(("/home/deploy".into(), 1001, 1002))
        );
        assert_eq!(parse_passwd("x:x:1:1::relative:/bin/sh"), None);
        assert_eq!(parse_passwd("x:x:1:1::/home/../etc:/bin/sh"), None);
        assert_eq!(parse_passwd("garbage"), None);
    }

    #[test]
    fn sshds_authorized_keys_file_is_judged() {
        assert_eq!(
            sshd_reads_authorized_keys(
                "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n"
            ),
            Some(true)
        );
        assert_eq!(
            sshd_reads_authorized_keys("authorizedkeysfile /etc/ssh/keys/%u\n"),
            Some(false)
        );
        assert_eq!(sshd_reads_authorized_keys(""), None);
        let r = Scripted::new(&[("PATH=", 0, "authorizedkeysfile /etc/ssh/keys/%u\n")]);
        let g = grants(&[("bob", ED2)]);
        let input = HostInput {
            grants: &g,
            login_user: "root",
            fleet_keys: &[],
        };
        let err = plan_host(&r, &input).unwrap_err().to_string();
        assert!(
            err.contains(
                "does not read ~/.ssh/authorized_keys (authorizedkeysfile /etc/ssh/keys/%u)"
            ),
            "{err}"
        );
    }

    #[test]
    fn server_keys_are_read_from_their_files() {
        assert_eq!(
            fetch_cmd(&["/etc/backup key.pub".into()]),
            "cat -- '/etc/backup key.pub'"
        );
        assert!(fetch_cmd(&[]).contains(r#""$HOME"/.ssh/id_*.pub"#));
    }

    #[test]
    fn commands_quote_the_home() {
        assert_eq!(
            mkdir_cmd("/home/o'neil", 5, 6),
            r#"[ -d '/home/o'\''neil/.ssh' ] || install -d -m 0700 -o 5 -g 6 -- '/home/o'\''neil/.ssh'"#
        );
        assert!(read_cmd("/root").contains("cat -- /root/.ssh/authorized_keys"));
    }

    fn grants(keys: &[(&str, &str)]) -> BTreeMap<String, Vec<Grant>> {
        let list = keys
            .iter()
            .map(|(owner, line)| Grant {
                owner: owner.to_string(),
                kind: OwnerKind::Person,
                key: parse_key_line(line, false).unwrap(),
                rule_line: 3,
            })
            .collect();
        BTreeMap::from([("root".to_string(), list)])
    }

    fn scripted(current: &str, more: &[(&str, i64, &str)]) -> Scripted {
        let present = format!("present\n{current}");
        let mut answers = vec![
            (
                "PATH=",
                0,
                "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n",
            ),
            ("getent passwd root", 0, "root:x:0:0:root:/root:/bin/bash\n"),
            ("if [ -L /root/.ssh ]", 0, present.as_str()),
        ];
        answers.extend_from_slice(more);
        Scripted::new(&answers)
    }

    #[test]
    fn a_plan_that_drops_fleets_own_key_is_refused() {
        let fleet = [parse_key_line(ED, false).unwrap()];
        let old = block::plan("", &grants(&[("ops", ED), ("bob", ED2)])["root"])
            .unwrap()
            .text;
        let r = scripted(&old, &[]);
        let g = grants(&[("bob", ED2)]);
        let input = HostInput {
            grants: &g,
            login_user: "root",
            fleet_keys: &fleet,
        };
        let err = plan_host(&r, &input).unwrap_err().to_string();
        assert!(
            err.contains("refusing a plan that drops the key fleet logs in with"),
            "{err}"
        );
        assert!(err.contains("no rule grants ops's key to root"), "{err}");
        // Another account may lose it: fleet does not log in there.
        let r = Scripted::new(&[
            ("PATH=", 1, ""),
            ("id -u", 0, "0\n"),
            ("getent passwd root", 0, "root:x:0:0:root:/root:/bin/bash\n"),
            ("if [ -L /root/.ssh ]", 0, &format!("present\n{old}")),
        ]);
        let input = HostInput {
            login_user: "deploy",
            ..input
        };
        assert!(plan_host(&r, &input).is_ok());
    }

    #[test]
    fn a_failed_login_after_writing_restores_the_previous_file() {
        let fleet = [parse_key_line(ED, false).unwrap()];
        let old = format!("{ED}\n");
        // fleet's key is kept outside the block; the write breaks the login anyway.
        let r = scripted(
            &old,
            &[
                ("[ -d /root/.ssh ]", 0, ""),
                ("if [ -f /root/.ssh/authorized_keys ]", 0, "absent\n"),
                ("", 0, ""),
                ("if [ -f /root/.ssh/authorized_keys ]", 0, "absent\n"),
                ("", 0, ""),
            ],
        );
        let g = grants(&[("bob", ED2)]);
        let input = HostInput {
            grants: &g,
            login_user: "root",
            fleet_keys: &fleet,
        };
        let err = apply_host(&r, &input, &|| {
            Err(crate::ops::access::controller::LoginError::Refused(
                "Permission denied (publickey)".into(),
            ))
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("could not log in again as root: Permission denied (publickey); the previous file is restored"), "{err}");
        let ran = r.ran();
        assert_eq!(ran.len(), 8, "{ran:?}");
        // Written, then the previous content put back the same way.
        assert!(ran[5].contains("/root/.ssh/authorized_keys"), "{ran:?}");
        assert!(ran[7].contains("/root/.ssh/authorized_keys"), "{ran:?}");
    }
}
