//! Who may log in where, as data kept in the project (`access.toml` and `keys/*.pub`):
//! people and servers with their public keys, groups of them, and rules saying which
//! group reaches which accounts of which hosts, with per-rule key options. This file
//! reads and validates that data (every problem named by file and line) and resolves it
//! into the keys each account of a host should have; [`block`] plans the
//! `authorized_keys` file and [`apply`] writes it on a host without locking fleet out.

pub(crate) mod apply;
pub(crate) mod block;
pub(crate) mod controller;
pub(crate) mod edit;
pub(crate) mod keyline;

use indexmap::IndexMap;
use keyline::{PublicKey, parse_key_line, parse_options};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The data file, at the project's root.
pub(crate) const ACCESS_FILE: &str = "access.toml";
/// Where `NAME.pub` files with more keys of a person or server live.
pub(crate) const KEYS_DIR: &str = "keys";
/// Key files larger than this are refused (a key line is under 16 KiB).
const MAX_KEY_FILE: u64 = 1 << 20;

/// A problem in the data, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) message: String,
    /// A warning does not stop plan or apply.
    pub(crate) warning: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.warning { "warning" } else { "error" };
        write!(f, "{}:{}: {kind}: {}", self.file, self.line, self.message)
    }
}

/// Problems one per line, as `access.toml:12: error: …`.
fn lines(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Why the access data cannot be used, or a server's fetched keys cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AccessError {
    #[error("the project has no {ACCESS_FILE} (see README, section Access)")]
    NoFile,
    /// Every problem of the data at once.
    #[error("{}", lines(.0))]
    Problems(Vec<Problem>),
    /// `n` counts the lines with a key, from 1.
    #[error("key {n} of server {owner}, fetched from {host}, does not parse: {error}")]
    FetchedKey {
        n: usize,
        owner: String,
        host: String,
        error: keyline::KeyError,
    },
    #[error("the key {fingerprint} fetched from {host} for server {owner} is also {other}'s")]
    FetchedKeyTaken {
        fingerprint: String,
        host: String,
        owner: String,
        other: String,
    },
    #[error("no public key found on {host} for server {owner}")]
    NoFetchedKey { host: String, owner: String },
    /// The host's `accounts` var is not a list of account names.
    #[error("host var `accounts` of {host} must be a list of account names")]
    Accounts { host: String },
}

/// Why `keys/NAME.pub` cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyFileError {
    #[error("it is not a regular file (a symlink or directory is not followed)")]
    NotAFile,
    #[error("it is larger than {MAX_KEY_FILE} bytes")]
    TooLarge,
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    #[serde(default)]
    people: IndexMap<Spanned<String>, OwnerSpec>,
    #[serde(default)]
    servers: IndexMap<Spanned<String>, OwnerSpec>,
    #[serde(default)]
    groups: IndexMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    rules: Vec<Spanned<RuleSpec>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerSpec {
    #[serde(default)]
    keys: Vec<Spanned<String>>,
    /// Servers only: fetch the keys from this inventory host at plan/apply time.
    #[serde(default)]
    host: Option<Spanned<String>>,
    /// With `host`: the absolute paths of its public key files (default: the login
    /// account's `~/.ssh/id_*.pub`).
    #[serde(default)]
    key_files: Vec<Spanned<String>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    group: Spanned<String>,
    hosts: Spanned<String>,
    #[serde(default)]
    accounts: Vec<Spanned<String>>,
    #[serde(default)]
    options: Vec<Spanned<String>>,
}

/// Whose a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OwnerKind {
    Person,
    Server,
}

/// A key of a person or server.
#[derive(Debug, Clone)]
pub(crate) struct OwnedKey {
    pub(crate) key: PublicKey,
}

#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) name: String,
    pub(crate) kind: OwnerKind,
    pub(crate) keys: Vec<OwnedKey>,
    /// A server whose keys are read from an inventory host.
    pub(crate) fetch: Option<Fetch>,
}

/// Where a server's keys are fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub(crate) host: String,
    /// Empty: the login account's `~/.ssh/id_*.pub`.
    pub(crate) key_files: Vec<String>,
    pub(crate) line: usize,
}

/// One rule: `group` reaches `accounts` (empty: every managed account) of `hosts`.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) group: String,
    pub(crate) hosts: String,
    pub(crate) accounts: Vec<String>,
    pub(crate) options: Vec<String>,
    pub(crate) line: usize,
}

/// The project's access data, validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    pub(crate) owners: BTreeMap<String, Owner>,
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    pub(crate) rules: Vec<Rule>,
    /// Warnings found while reading (errors make `load` fail).
    pub(crate) warnings: Vec<Problem>,
}

/// A key an account should have, from which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) owner: String,
    pub(crate) kind: OwnerKind,
    /// With the rule's options.
    pub(crate) key: PublicKey,
    /// The rule's line in access.toml.
    pub(crate) rule_line: usize,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// A user name as `useradd` accepts it (and nothing a shell or path could misread).
pub(crate) fn valid_account(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b))
        && !name.starts_with(['.', '-'])
}

/// `keys/NAME.pub` of a name, when there is one: its path and its text (or why it
/// cannot be read).
pub(crate) type KeyFileFn<'a> = dyn Fn(&str) -> Option<(String, Result<String, KeyFileError>)> + 'a;

/// `keys/NAME.pub` under the project `root`: its path and text (or why it cannot be
/// read), None when there is no such file.
pub(crate) fn read_key_file(
    root: &Path,
    name: &str,
) -> Option<(String, Result<String, KeyFileError>)> {
    let rel = PathBuf::from(KEYS_DIR).join(format!("{name}.pub"));
    let full = root.join(&rel);
    let meta = std::fs::symlink_metadata(&full).ok()?;
    let text = if !meta.is_file() {
        Err(KeyFileError::NotAFile)
    } else if meta.len() > MAX_KEY_FILE {
        Err(KeyFileError::TooLarge)
    } else {
        std::fs::read_to_string(&full).map_err(KeyFileError::Read)
    };
    Some((rel.display().to_string(), text))
}

impl Access {
    /// Reads `access.toml` and `keys/*.pub` under `root`; None when the project has no
    /// access.toml. Every error is returned at once, each naming file and line.
    pub(crate) fn load(root: &Path) -> Result<Option<Access>, Vec<Problem>> {
        let path = root.join(ACCESS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(vec![Problem {
                    file: ACCESS_FILE.into(),
                    line: 1,
                    message: format!("cannot read it: {e}"),
                    warning: false,
                }]);
            }
        };
        Access::parse(&text, &|name| read_key_file(root, name)).map(Some)
    }

    /// Parses the data; `key_file(name)` gives the path and text of `keys/NAME.pub`
    /// when there is one.
    pub(crate) fn parse(text: &str, key_file: &KeyFileFn) -> Result<Access, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut err = |line: usize, message: String| {
            problems.push(Problem {
                file: ACCESS_FILE.into(),
                line,
                message,
                warning: false,
            })
        };
        let spec: FileSpec = match toml::from_str(text) {
            Ok(s) => s,
            Err(e) => {
                let line = e.span().map_or(1, |s| line_of(text, s.start));
                err(line, e.message().to_string());
                return Err(problems);
            }
        };
        let mut access = Access::default();
        let mut seen_keys: BTreeMap<String, (String, String, usize)> = BTreeMap::new();
        let mut key_problems = Vec::new();
        let owners = spec
            .people
            .into_iter()
            .map(|o| (o, OwnerKind::Person))
            .chain(spec.servers.into_iter().map(|o| (o, OwnerKind::Server)));
        for ((name, owner), kind) in owners {
            let line = line_of(text, name.span().start);
            let name = name.into_inner();
            if !valid_name(&name) {
                err(
                    line,
                    format!(
                        "`{}` is not a valid name (letters, digits, `_-.@`)",
                        crate::ops::text::shown(&name)
                    ),
                );
                continue;
            }
            if access.owners.contains_key(&name) {
                err(
                    line,
                    format!("`{name}` is both a person and a server: names must be unique"),
                );
                continue;
            }
            let mut keys = Vec::new();
            let mut given: Vec<(String, String, usize)> = owner
                .keys
                .iter()
                .map(|k| {
                    (
                        k.get_ref().clone(),
                        ACCESS_FILE.to_string(),
                        line_of(text, k.span().start),
                    )
                })
                .collect();
            if let Some((file, content)) = key_file(&name) {
                let content = content.unwrap_or_else(|why| {
                    key_problems.push(Problem {
                        file: file.clone(),
                        line: 1,
                        message: format!("key file of {name}: {why}"),
                        warning: false,
                    });
                    String::new()
                });
                for (i, l) in content.lines().enumerate() {
                    let l = l.trim();
                    if !l.is_empty() && !l.starts_with('#') {
                        given.push((l.to_string(), file.clone(), i + 1));
                    }
                }
            }
            for (line_text, file, line) in given {
                match parse_key_line(&line_text, false) {
                    Ok(key) => {
                        if let Some((other, ofile, oline)) = seen_keys.get(&key.key_id()) {
                            key_problems.push(Problem {
                                file: file.clone(),
                                line,
                                message: format!(
                                    "this key ({}) is already given at {ofile}:{oline} (for {other})",
                                    key.fingerprint()
                                ),
                                warning: false,
                            });
                            continue;
                        }
                        seen_keys.insert(key.key_id(), (name.clone(), file.clone(), line));
                        keys.push(OwnedKey { key });
                    }
                    Err(e) => key_problems.push(Problem {
                        file,
                        line,
                        message: format!("key of {name} does not parse: {e}"),
                        warning: false,
                    }),
                }
            }
            let mut fetch = None;
            if let Some(host) = &owner.host {
                let hline = line_of(text, host.span().start);
                let mut files = Vec::new();
                for f in &owner.key_files {
                    let ok = f.get_ref().starts_with('/')
                        && !f.get_ref().chars().any(char::is_control)
                        && !f.get_ref().split('/').any(|c| c == "..");
                    if ok {
                        files.push(f.get_ref().clone());
                    } else {
                        err(
                            line_of(text, f.span().start),
                            format!("{name}: key_files must be absolute paths"),
                        );
                    }
                }
                if kind == OwnerKind::Person {
                    err(
                        hline,
                        format!("{name}: only servers have keys fetched from a host"),
                    );
                } else if host.get_ref().trim().is_empty()
                    || host.get_ref().chars().any(char::is_control)
                {
                    err(
                        hline,
                        format!("{name}: `host` must be an inventory host name"),
                    );
                } else {
                    fetch = Some(Fetch {
                        host: host.get_ref().clone(),
                        key_files: files,
                        line: hline,
                    });
                }
            } else if let Some(f) = owner.key_files.first() {
                err(
                    line_of(text, f.span().start),
                    format!("{name}: key_files needs host = \"INVENTORY HOST\""),
                );
            }
            if keys.is_empty() && fetch.is_none() {
                access.warnings.push(Problem {
                    file: ACCESS_FILE.into(),
                    line,
                    message: format!("{name} has no key (keys = [...] or {KEYS_DIR}/{name}.pub)"),
                    warning: true,
                });
            }
            access.owners.insert(
                name.clone(),
                Owner {
                    name,
                    kind,
                    keys,
                    fetch,
                },
            );
        }
        for (group, members) in spec.groups {
            let line = line_of(text, group.span().start);
            let group = group.into_inner();
            if !valid_name(&group) {
                err(
                    line,
                    format!(
                        "`{}` is not a valid group name",
                        crate::ops::text::shown(&group)
                    ),
                );
                continue;
            }
            let mut names = Vec::new();
            for m in members {
                let mline = line_of(text, m.span().start);
                let m = m.into_inner();
                if !access.owners.contains_key(&m) {
                    err(
                        mline,
                        format!(
                            "group {group}: unknown person or server `{}`",
                            crate::ops::text::shown(&m)
                        ),
                    );
                } else if names.contains(&m) {
                    err(mline, format!("group {group}: `{m}` is listed twice"));
                } else {
                    names.push(m);
                }
            }
            access.groups.insert(group, names);
        }
        for rule in spec.rules {
            let line = line_of(text, rule.span().start);
            let rule = rule.into_inner();
            let group = rule.group.into_inner();
            if !access.groups.contains_key(&group) {
                err(
                    line,
                    format!("rule: unknown group `{}`", crate::ops::text::shown(&group)),
                );
            }
            let mut accounts = Vec::new();
            for a in rule.accounts {
                let aline = line_of(text, a.span().start);
                if valid_account(a.get_ref()) {
                    accounts.push(a.into_inner());
                } else {
                    err(
                        aline,
                        format!(
                            "rule: `{}` is not a valid account name",
                            crate::ops::text::shown(a.get_ref())
                        ),
                    );
                }
            }
            let opts: Vec<String> = rule.options.iter().map(|o| o.get_ref().clone()).collect();
            let options = match parse_options(&opts) {
                Ok(o) => o,
                Err(e) => {
                    let oline = rule
                        .options
                        .first()
                        .map_or(line, |o| line_of(text, o.span().start));
                    err(oline, format!("rule: {e}"));
                    Vec::new()
                }
            };
            let hosts = rule.hosts.into_inner();
            if hosts.trim().is_empty() || hosts.chars().any(char::is_control) {
                err(line, "rule: `hosts` must be a host pattern".into());
            }
            access.rules.push(Rule {
                group,
                hosts,
                accounts,
                options,
                line,
            });
        }
        problems.extend(key_problems);
        if problems.is_empty() {
            Ok(access)
        } else {
            Err(problems)
        }
    }

    /// Warnings for rules whose pattern matches no host (`matched[i]`: the host names
    /// rule i matches).
    pub(crate) fn unmatched_rules(&self, matched: &[BTreeSet<String>]) -> Vec<Problem> {
        self.rules
            .iter()
            .zip(matched)
            .filter(|(_, m)| m.is_empty())
            .map(|(r, _)| Problem {
                file: ACCESS_FILE.into(),
                line: r.line,
                message: format!("rule for group {} matches no host: `{}`", r.group, r.hosts),
                warning: true,
            })
            .collect()
    }

    /// The accounts of `host` fleet manages and the keys each should have.
    /// `matched[i]`: the hosts rule i matches; `host_accounts`: the host's own list
    /// (host var `accounts`, else the account fleet logs in as). A rule without
    /// `accounts` reaches all of those; one with `accounts` adds them.
    pub(crate) fn grants(
        &self,
        host: &str,
        host_accounts: &[String],
        matched: &[BTreeSet<String>],
    ) -> BTreeMap<String, Vec<Grant>> {
        let mut out: BTreeMap<String, Vec<Grant>> = host_accounts
            .iter()
            .map(|a| (a.clone(), Vec::new()))
            .collect();
        for (rule, hosts) in self.rules.iter().zip(matched) {
            if !hosts.contains(host) {
                continue;
            }
            let accounts: Vec<String> = if rule.accounts.is_empty() {
                host_accounts.to_vec()
            } else {
                rule.accounts.clone()
            };
            for account in accounts {
                let list = out.entry(account).or_default();
                for member in self.groups.get(&rule.group).into_iter().flatten() {
                    let Some(owner) = self.owners.get(member) else {
                        continue;
                    };
                    for k in &owner.keys {
                        if list.iter().any(|g| g.key.key_id() == k.key.key_id()) {
                            continue; // the first rule that grants a key decides its options
                        }
                        let mut key = k.key.clone();
                        key.options = rule.options.clone();
                        list.push(Grant {
                            owner: owner.name.clone(),
                            kind: owner.kind,
                            key,
                            rule_line: rule.line,
                        });
                    }
                }
            }
        }
        out
    }

    /// Adds the keys fetched for server `owner` (the text of its `.pub` files, read from
    /// `host`); a key that does not parse or is another owner's is an error.
    pub(crate) fn add_fetched(
        &mut self,
        owner: &str,
        host: &str,
        text: &str,
    ) -> Result<usize, AccessError> {
        let mut keys = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let key = parse_key_line(l, false).map_err(|error| AccessError::FetchedKey {
                n: i + 1,
                owner: owner.to_string(),
                host: host.to_string(),
                error,
            })?;
            if let Some(other) = self.owner_of(&key.key_id()).filter(|o| o.name != owner) {
                return Err(AccessError::FetchedKeyTaken {
                    fingerprint: key.fingerprint(),
                    host: host.to_string(),
                    owner: owner.to_string(),
                    other: other.name.clone(),
                });
            }
            keys.push(OwnedKey { key });
        }
        if keys.is_empty() {
            return Err(AccessError::NoFetchedKey {
                host: host.to_string(),
                owner: owner.to_string(),
            });
        }
        let n = keys.len();
        if let Some(o) = self.owners.get_mut(owner) {
            for k in keys {
                if !o
                    .keys
                    .iter()
                    .any(|have| have.key.key_id() == k.key.key_id())
                {
                    o.keys.push(k);
                }
            }
        }
        Ok(n)
    }

    /// The owner of a key, if the data knows it.
    pub(crate) fn owner_of(&self, key_id: &str) -> Option<&Owner> {
        self.owners
            .values()
            .find(|o| o.keys.iter().any(|k| k.key.key_id() == key_id))
    }
}

#[cfg(test)]
mod tests {
    use super::keyline::tests::{ED, ED2, ED3};
    use super::*;

    fn parse(text: &str) -> Result<Access, Vec<Problem>> {
        Access::parse(text, &|_| None)
    }

    fn sample() -> String {
        format!(
            r#"[people.alice]
keys = ["{ED}"]

[people.bob]
keys = ["{ED2}"]

[servers.backup]
keys = ["{ED3}"]

[groups]
admins = ["alice", "bob"]
backup = ["backup"]

[[rules]]
group = "admins"
hosts = "web-*"

[[rules]]
group = "backup"
hosts = "all"
accounts = ["root"]
options = ["restrict", 'command="rrsync -ro /"']
"#
        )
    }

    fn matched(sets: &[&[&str]]) -> Vec<BTreeSet<String>> {
        sets.iter()
            .map(|s| s.iter().map(|h| h.to_string()).collect())
            .collect()
    }

    #[test]
    fn rules_resolve_to_keys_per_account() {
        let a = parse(&sample()).unwrap();
        assert_eq!(a.rules[0].line, 14);
        let m = matched(&[&["web-1"], &["web-1", "db-1"]]);
        let g = a.grants("web-1", &["deploy".into()], &m);
        let deploy: Vec<&str> = g["deploy"].iter().map(|g| g.owner.as_str()).collect();
        assert_eq!(deploy, ["alice", "bob"]);
        assert_eq!(g["root"].len(), 1);
        assert_eq!(g["root"][0].owner, "backup");
        assert_eq!(g["root"][0].key.options[0], "restrict");
        let db = a.grants("db-1", &["root".into()], &m);
        assert_eq!(db.len(), 1);
        assert_eq!(db["root"].len(), 1);
        assert!(
            a.unmatched_rules(&matched(&[&[], &["x"]]))[0]
                .to_string()
                .starts_with("access.toml:14: warning: rule for group admins matches no host")
        );
    }

    #[test]
    fn problems_are_named_by_file_and_line() {
        let text = sample()
            .replace(
                r#"admins = ["alice", "bob"]"#,
                r#"admins = ["alice", "carol"]"#,
            )
            .replace(r#"group = "backup""#, r#"group = "backups""#)
            .replace(&ED2[40..50], "!!!!!!!!!!");
        let errors: Vec<String> = parse(&text)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "access.toml:11: error: group admins: unknown person or server `carol`",
                "access.toml:18: error: rule: unknown group `backups`",
                "access.toml:5: error: key of bob does not parse: the key's data is not valid base64",
            ]
        );
        let dup = sample().replace(ED2, ED);
        let errors = parse(&dup).unwrap_err();
        assert_eq!(errors[0].line, 5);
        assert!(
            errors[0]
                .message
                .contains("already given at access.toml:2 (for alice)")
        );
        let syntax = parse("[people.x]\nkeys = 3\n").unwrap_err();
        assert_eq!(syntax[0].line, 2);
    }

    #[test]
    fn access_errors_say_what_is_wrong() {
        let problem = |line, warning| Problem {
            file: "access.toml".into(),
            line,
            message: "bad".into(),
            warning,
        };
        let key = parse_key_line("nonsense", false).unwrap_err();
        let key_text = format!("key 2 of server backup, fetched from b1, does not parse: {key}");
        let cases = [
            (
                AccessError::NoFile,
                "the project has no access.toml (see README, section Access)".to_string(),
            ),
            (
                AccessError::Problems(vec![problem(1, false), problem(4, true)]),
                "access.toml:1: error: bad\naccess.toml:4: warning: bad".into(),
            ),
            (
                AccessError::FetchedKey {
                    n: 2,
                    owner: "backup".into(),
                    host: "b1".into(),
                    error: key,
                },
                key_text,
            ),
            (
                AccessError::FetchedKeyTaken {
                    fingerprint: "SHA256:x".into(),
                    host: "b1".into(),
                    owner: "backup".into(),
                    other: "alice".into(),
                },
                "the key SHA256:x fetched from b1 for server backup is also alice's".into(),
            ),
            (
                AccessError::NoFetchedKey {
                    host: "b1".into(),
                    owner: "backup".into(),
                },
                "no public key found on b1 for server backup".into(),
            ),
            (
                AccessError::Accounts {
                    host: "web-1".into(),
                },
                "host var `accounts` of web-1 must be a list of account names".into(),
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
        let file_cases = [
            (
                KeyFileError::NotAFile,
                "it is not a regular file (a symlink or directory is not followed)",
            ),
            (KeyFileError::TooLarge, "it is larger than 1048576 bytes"),
            (
                KeyFileError::Read(std::io::Error::other("denied")),
                "cannot read it: denied",
            ),
        ];
        for (err, message) in file_cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn server_keys_can_be_fetched_from_a_host() {
        let text = sample().replace(
            &format!("[servers.backup]\nkeys = [\"{ED3}\"]"),
            "[servers.backup]\nhost = \"backup-1\"\nkey_files = [\"/root/.ssh/id_ed25519.pub\"]",
        );
        let mut a = parse(&text).unwrap();
        let fetch = a.owners["backup"].fetch.clone().unwrap();
        assert_eq!(fetch.host, "backup-1");
        assert_eq!(fetch.key_files, ["/root/.ssh/id_ed25519.pub"]);
        assert!(a.add_fetched("backup", "backup-1", "garbage\n").is_err());
        assert!(
            a.add_fetched("backup", "backup-1", &format!("{ED}\n"))
                .unwrap_err()
                .to_string()
                .contains("also alice's")
        );
        assert_eq!(
            a.add_fetched("backup", "backup-1", &format!("{ED3}\n"))
                .unwrap(),
            1
        );
        let g = a.grants("db-1", &[], &matched(&[&[], &["db-1"]]));
        assert_eq!(g["root"][0].owner, "backup");
        let bad = text.replace("[servers.backup]", "[people.backup]");
        let errors = parse(&bad).unwrap_err();
        assert!(
            errors[0]
                .to_string()
                .contains("only servers have keys fetched"),
            "{errors:?}"
        );
    }

    #[test]
    fn key_files_add_keys_with_their_own_lines() {
        let text = "[people.carol]\n";
        let files = |name: &str| {
            (name == "carol").then(|| {
                (
                    "keys/carol.pub".to_string(),
                    Ok(format!("# laptop\n{ED}\n\nssh-ed25519 nope\n")),
                )
            })
        };
        let errors = Access::parse(text, &files).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "keys/carol.pub:4: error: key of carol does not parse: the key's data is malformed (truncated)"
        );
        let unreadable =
            |_: &str| Some(("keys/carol.pub".to_string(), Err(KeyFileError::NotAFile)));
        let errors = Access::parse(text, &unreadable).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "keys/carol.pub:1: error: key file of carol: it is not a regular file \
             (a symlink or directory is not followed)"
        );
    }
}
