//! The controller's side of `fleet keys`: the data matched against the inventory, the
//! account fleet logs in as and the public keys it logs in with (its identity file's
//! `.pub`, else `ssh-keygen -y`; without an identity file, the agent's keys from
//! `ssh-add -L` and `~/.ssh/id_*.pub`), and the fresh login that proves a write did not
//! lock fleet out (a new `ssh` process without the run's ControlMaster).

use super::apply::{AccountPlan, HostInput, apply_host, plan_host, read_host};
use super::keyline::{PublicKey, parse_key_line};
use super::{Access, AccessError, Grant, Problem, valid_account};
use crate::inventory::{Connection, Inventory, ResolvedHost};
use crate::ops::remote::Remote;
use crate::ops::ssh::{SshDefaults, SshTarget, target_for};
use crate::outcome::HostError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

/// The data with the hosts each rule matches.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) access: Access,
    pub(crate) matched: Vec<BTreeSet<String>>,
    /// Warnings to show (keys-less owners, rules matching no host).
    pub(crate) warnings: Vec<Problem>,
    /// Servers whose keys could not be fetched, with why: hosts they reach fail.
    pub(crate) fetch_errors: BTreeMap<String, String>,
}

/// Reads a server's key files on an inventory host: (host, key files) -> their text.
pub(crate) type FetchFn<'a> = dyn Fn(&str, &[String]) -> Result<String, HostError> + 'a;

impl Prepared {
    /// Reads the keys of every server that has a `host`, with `fetch(host, key_files)`;
    /// a failure is kept, and fails the hosts that server reaches (planning without its
    /// keys would remove them everywhere).
    pub(crate) fn fetch_servers(&mut self, fetch: &FetchFn) {
        let fetches: Vec<(String, super::Fetch)> = self
            .access
            .owners
            .values()
            .filter_map(|o| o.fetch.clone().map(|f| (o.name.clone(), f)))
            .collect();
        for (owner, f) in fetches {
            let got = fetch(&f.host, &f.key_files)
                .map_err(|e| e.message)
                .and_then(|text| {
                    let added = self.access.add_fetched(&owner, &f.host, &text);
                    added.map_err(|e| e.to_string())
                });
            if let Err(why) = got {
                self.fetch_errors.insert(owner, why);
            }
        }
    }

    /// Whether some server's keys come from a host.
    pub(crate) fn has_fetches(&self) -> bool {
        self.access.owners.values().any(|o| o.fetch.is_some())
    }
}

/// Reads the project's access data and matches its rules against `inventory`; the error
/// lists every problem, one per line (`access.toml:12: error: …`).
pub(crate) fn prepare(root: &Path, inventory: &Inventory) -> Result<Prepared, AccessError> {
    let access = match Access::load(root) {
        Ok(Some(a)) => a,
        Ok(None) => return Err(AccessError::NoFile),
        Err(problems) => return Err(AccessError::Problems(problems)),
    };
    prepare_access(access, inventory)
}

/// [`prepare`] for data already read (`fleet user add --check` plans with the edit it
/// does not write).
pub(crate) fn prepare_access(
    access: Access,
    inventory: &Inventory,
) -> Result<Prepared, AccessError> {
    let mut matched = Vec::new();
    for rule in &access.rules {
        match crate::inventory::select(inventory, &rule.hosts) {
            Ok(hosts) => matched.push(hosts.iter().map(|h| h.name.clone()).collect()),
            // A pattern naming no host is a warning, not an error (the fleet changes).
            Err(_) => matched.push(BTreeSet::new()),
        }
    }
    let unknown: Vec<Problem> = access
        .owners
        .values()
        .filter_map(|o| o.fetch.as_ref())
        .filter(|f| inventory.resolve(&f.host).is_none())
        .map(|f| Problem {
            file: super::ACCESS_FILE.into(),
            line: f.line,
            message: format!(
                "`{}` is not a host of the inventory",
                crate::ops::text::shown(&f.host)
            ),
            warning: false,
        })
        .collect();
    if !unknown.is_empty() {
        return Err(AccessError::Problems(unknown));
    }
    let mut warnings = access.warnings.clone();
    warnings.extend(access.unmatched_rules(&matched));
    Ok(Prepared {
        access,
        matched,
        warnings,
        fetch_errors: BTreeMap::new(),
    })
}

/// The account fleet logs in as: the inventory's or fleet.toml's user, else the
/// operator's own name (as ssh does).
pub(crate) fn login_user(host: &ResolvedHost, ssh: &SshDefaults) -> String {
    let target = target_for(host, ssh);
    target
        .user
        .filter(|_| host.connection == Connection::Ssh)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "root".into())
}

/// The accounts fleet manages on `host`: its `accounts` var (a list of names), else the
/// login account. Rules naming other accounts add them.
pub(crate) fn host_accounts(host: &ResolvedHost, login: &str) -> Result<Vec<String>, AccessError> {
    let bad = || AccessError::Accounts {
        host: host.name.clone(),
    };
    match host.vars.get("accounts") {
        None => Ok(vec![login.to_string()]),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .map(|v| match v.as_str() {
                Some(a) if valid_account(a) => Ok(a.to_string()),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn parse_lines(text: &str) -> Vec<PublicKey> {
    text.lines()
        .filter_map(|l| parse_key_line(l, true).ok())
        .collect()
}

/// The public keys fleet logs in to `target` with.
pub(crate) fn fleet_keys(target: &SshTarget) -> Vec<PublicKey> {
    if let Some(identity) = &target.identity_file {
        let mut pubfile = identity.clone().into_os_string();
        pubfile.push(".pub");
        if let Ok(text) = std::fs::read_to_string(&pubfile) {
            return parse_lines(&text);
        }
        let out = Command::new("ssh-keygen")
            .args(["-y", "-P", "", "-f"])
            .arg(identity)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        return out
            .map(|o| parse_lines(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default();
    }
    let mut keys = Command::new("ssh-add")
        .arg("-L")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| parse_lines(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        for name in [
            "id_ed25519",
            "id_ecdsa",
            "id_rsa",
            "id_ed25519_sk",
            "id_ecdsa_sk",
        ] {
            let path = Path::new(&home).join(".ssh").join(format!("{name}.pub"));
            if let Ok(text) = std::fs::read_to_string(path) {
                keys.extend(parse_lines(&text));
            }
        }
    }
    keys
}

/// The `ssh` arguments of a fresh login to `target` that runs `true`: a new connection
/// (ControlPath=none: not the run's master), never asking anything.
pub(crate) fn fresh_login_args(target: &SshTarget) -> Vec<String> {
    let mut args: Vec<String> = [
        "-o",
        "ControlPath=none",
        "-o",
        "ControlMaster=no",
        "-o",
        "BatchMode=yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(target.ssh_args());
    args.push("true".into());
    args
}

/// Why the fresh login after a write failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    /// The last lines of ssh's stderr, made safe to show.
    #[error("{0}")]
    Refused(String),
}

/// Opens a fresh connection to `target`; the reason when it fails.
pub(crate) fn verify_login(target: &SshTarget) -> Result<(), LoginError> {
    let out = Command::new("ssh")
        .args(fresh_login_args(target))
        .stdin(Stdio::null())
        .output()
        .map_err(LoginError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail = crate::ops::text::tail(&stderr, 2);
        Err(LoginError::Refused(crate::ops::text::shown(&tail)))
    }
}

/// The grants of every managed account of `host`.
pub(crate) fn host_grants(
    prepared: &Prepared,
    host: &ResolvedHost,
    login: &str,
) -> Result<BTreeMap<String, Vec<Grant>>, AccessError> {
    let accounts = host_accounts(host, login)?;
    Ok(prepared
        .access
        .grants(&host.name, &accounts, &prepared.matched))
}

/// What a host's step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read and plan; show the changes.
    Plan,
    /// Plan, write, verify; show and journal the changes.
    Apply,
    /// Only read what the accounts have (`--live`).
    Read,
}

/// One host's step: the plans per account; for plan and apply the changes are shown on
/// the host's lines, and for apply kept in the journal under `keys`.
pub(crate) fn host_step(
    r: &dyn Remote,
    prepared: &Prepared,
    host: &ResolvedHost,
    ssh: &SshDefaults,
    step: Step,
) -> Result<Vec<AccountPlan>, HostError> {
    let apply = step == Step::Apply;
    let login = login_user(host, ssh);
    let grants = host_grants(prepared, host, &login)
        .map_err(|e| HostError::new(&host.name, e.to_string()))?;
    let reached = prepared
        .access
        .rules
        .iter()
        .zip(&prepared.matched)
        .filter(|(_, hosts)| hosts.contains(&host.name))
        .filter_map(|(r, _)| prepared.access.groups.get(&r.group))
        .flatten();
    for owner in reached {
        if let Some(why) = prepared.fetch_errors.get(owner) {
            return Err(HostError::new(
                &host.name,
                format!("the keys of server {owner} could not be fetched: {why}"),
            ));
        }
    }
    let target = target_for(host, ssh);
    let keys = fleet_keys(&target);
    let input = HostInput {
        grants: &grants,
        login_user: &login,
        fleet_keys: &keys,
    };
    let plans = if apply {
        let verify = || {
            if host.connection == Connection::Ssh {
                verify_login(&target)
            } else {
                Ok(())
            }
        };
        apply_host(r, &input, &verify)?
    } else if step == Step::Plan {
        plan_host(r, &input)?
    } else {
        return read_host(r, &input, false);
    };
    for line in super::apply::describe(&plans) {
        r.out(&line);
    }
    if apply && !r.check_mode() {
        let value = super::apply::journal_value(&plans);
        if value.as_array().is_some_and(|a| !a.is_empty()) {
            r.note_result("keys", value);
        }
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_whose_keys_cannot_be_fetched_is_kept_as_an_error() {
        let text = "[servers.backup]\nhost = \"b1\"\n";
        let access = Access::parse(text, &|_| None).unwrap();
        let mut p = Prepared {
            access,
            matched: Vec::new(),
            warnings: Vec::new(),
            fetch_errors: BTreeMap::new(),
        };
        assert!(p.has_fetches());
        p.fetch_servers(&|host, files| {
            assert_eq!((host, files.len()), ("b1", 0));
            Err(HostError::new(host, "b1 is unreachable".into()))
        });
        assert_eq!(p.fetch_errors["backup"], "b1 is unreachable");
    }

    #[test]
    fn login_errors_say_what_is_wrong() {
        let spawn = LoginError::Spawn(std::io::Error::other("no such file"));
        assert_eq!(spawn.to_string(), "cannot run ssh: no such file");
        let refused = LoginError::Refused("Permission denied (publickey).".into());
        assert_eq!(refused.to_string(), "Permission denied (publickey).");
    }

    #[test]
    fn the_fresh_login_does_not_use_the_runs_master() {
        let target = SshTarget {
            host: "web-1".into(),
            address: "-oProxyCommand=x".into(),
            user: Some("root".into()),
            port: Some(2222),
            identity_file: Some("/k/id".into()),
            known_hosts: None,
            config_file: None,
            connect_timeout: std::time::Duration::from_secs(5),
            accept_new: false,
        };
        let args = fresh_login_args(&target).join(" ");
        assert_eq!(
            args,
            "-o ControlPath=none -o ControlMaster=no -o BatchMode=yes -o StrictHostKeyChecking=yes \
             -o ConnectTimeout=5 -o IdentitiesOnly=yes -i /k/id -p 2222 -l root -- -oProxyCommand=x true"
        );
    }
}
