//! Results of pull-mode hosts (`fleet pull --push-results P` pushes each host's journal
//! to the branch `P/<host>`): which branch names are hosts, and what a host's journal
//! says of its last run and when it was last seen. Branch names and records come from
//! the hosts themselves: a branch name that is no plain host name is refused, and a
//! host's journal speaks only for that host.

use crate::journal::RunRecord;
use crate::outcome::HostStatus;
use serde::Serialize;

/// The expected interval of a pull host when its `pull_interval` var is unset: 1 h.
pub(crate) const DEFAULT_INTERVAL_SECS: u64 = 3600;

/// Why a results prefix cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ResultsError {
    #[error(
        "`{0}` is not a results prefix: use letters, digits, `-`, `_`, `.` and `/` (e.g. `results`)"
    )]
    Prefix(String),
    #[error("host {host}: pull_interval {why}")]
    Interval { host: String, why: String },
}

fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A prefix for `refs/heads/<prefix>/*`: plain names joined by `/`.
pub(crate) fn check_prefix(prefix: &str) -> Result<&str, ResultsError> {
    let p = prefix.trim_matches('/');
    if p.split('/').all(plain) {
        Ok(p)
    } else {
        Err(ResultsError::Prefix(
            crate::ops::terminal::neutralise(prefix).into_owned(),
        ))
    }
}

/// The host a fetched results ref (`<namespace>/<host>`) is of; None for anything else.
pub(crate) fn host_of_ref<'a>(namespace: &str, refname: &'a str) -> Option<&'a str> {
    let host = refname.strip_prefix(namespace)?.strip_prefix('/')?;
    plain(host).then_some(host)
}

/// A pull host's expected interval from its `pull_interval` var (a duration such as
/// "30m" or a number of seconds), or the default.
pub(crate) fn interval(host: &str, var: Option<&serde_json::Value>) -> Result<u64, ResultsError> {
    let bad = |why: String| ResultsError::Interval {
        host: host.to_string(),
        why,
    };
    match var {
        None | Some(serde_json::Value::Null) => Ok(DEFAULT_INTERVAL_SECS),
        Some(serde_json::Value::Number(n)) => n.as_u64().filter(|s| *s > 0).ok_or_else(|| {
            bad(format!(
                "is {n}; give a positive number of seconds or e.g. \"1h\""
            ))
        }),
        Some(serde_json::Value::String(s)) => crate::ops::clock::duration_secs(s)
            .ok()
            .filter(|s| *s > 0)
            .map(|s| s as u64)
            .ok_or_else(|| {
                bad(format!(
                    "`{}` is not a duration; say e.g. \"30m\", \"1h\", \"6h\"",
                    crate::ops::terminal::neutralise(s)
                ))
            }),
        Some(other) => Err(bad(format!(
            "is a {}; give a duration such as \"1h\"",
            match other {
                serde_json::Value::Bool(_) => "boolean",
                serde_json::Value::Array(_) => "list",
                _ => "table",
            }
        ))),
    }
}

/// What fleet knows of a pull host from the journal it pushed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PullHost {
    pub(crate) host: String,
    /// The newest run's recipe and id.
    pub(crate) last_run: String,
    pub(crate) run_id: String,
    pub(crate) status: HostStatus,
    /// When the newest run ended: the host was alive then.
    pub(crate) last_seen: String,
    pub(crate) interval_secs: u64,
    /// Not seen for more than twice its interval.
    pub(crate) overdue: bool,
}

/// A pull host's newest run of its own journal (records of other hosts are ignored: a
/// host speaks only for itself); `seconds_since` tells how long ago a time was.
pub(crate) fn summarise(
    host: &str,
    records: &[RunRecord],
    interval_secs: u64,
    seconds_since: impl Fn(&str) -> Option<u64>,
) -> Option<PullHost> {
    let (record, run) = records
        .iter()
        .filter_map(|r| r.hosts.iter().find(|h| h.host == host).map(|h| (r, h)))
        .max_by(|a, b| a.0.ended.cmp(&b.0.ended))?;
    let overdue = seconds_since(&record.ended).is_none_or(|s| s > interval_secs * 2);
    Some(PullHost {
        host: host.to_string(),
        last_run: record.recipe.clone(),
        run_id: record.run_id.clone(),
        status: run.status,
        last_seen: record.ended.clone(),
        interval_secs,
        overdue,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, ended: &str, host: &str, status: HostStatus) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": id, "recipe": "update", "args": [], "recipe_commit": null,
            "recipe_dirty": false, "fleet_version": "0", "user": "u", "controller": "c",
            "started": ended, "ended": ended, "duration_ms": 1, "check": false,
            "exit_code": 0,
            "hosts": [{"host": host, "status": status, "duration_ms": 1, "steps": []}]
        }))
        .unwrap()
    }

    #[test]
    fn prefixes_and_refs_are_plain_names() {
        assert_eq!(check_prefix("results/").unwrap(), "results");
        assert_eq!(check_prefix("site/results").unwrap(), "site/results");
        for bad in ["", "-x", "a/../b", "a b", "r*", "\x1b[2J"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        let e = check_prefix("\x1b[2J").unwrap_err().to_string();
        assert!(!e.contains('\x1b'), "{e}");
        let ns = "refs/fleet-results";
        assert_eq!(host_of_ref(ns, "refs/fleet-results/web-1"), Some("web-1"));
        assert_eq!(host_of_ref(ns, "refs/fleet-results/a/b"), None);
        assert_eq!(host_of_ref(ns, "refs/fleet-results/-rf"), None);
        assert_eq!(host_of_ref(ns, "refs/heads/web-1"), None);
    }

    #[test]
    fn intervals_from_the_host_var() {
        assert_eq!(interval("h", None).unwrap(), 3600);
        assert_eq!(interval("h", Some(&"30m".into())).unwrap(), 1800);
        assert_eq!(interval("h", Some(&serde_json::json!(600))).unwrap(), 600);
        let e = interval("web-1", Some(&"soon".into()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("host web-1: pull_interval `soon`"), "{e}");
        assert!(interval("h", Some(&serde_json::json!(0))).is_err());
        assert!(interval("h", Some(&serde_json::json!(true))).is_err());
    }

    #[test]
    fn the_newest_own_run_and_overdue_after_twice_the_interval() {
        let records = vec![
            record("1", "2026-11-30T10:00:00Z", "a", HostStatus::Ok),
            record("2", "2026-11-30T11:00:00Z", "a", HostStatus::Failed),
            // Another host's record in a's journal does not count for either.
            record("3", "2026-11-30T12:00:00Z", "b", HostStatus::Ok),
        ];
        let at = |secs| move |_: &str| Some(secs);
        let a = summarise("a", &records, 3600, at(7200)).unwrap();
        assert_eq!((a.run_id.as_str(), a.status), ("2", HostStatus::Failed));
        assert_eq!(a.last_seen, "2026-11-30T11:00:00Z");
        assert!(!a.overdue);
        assert!(summarise("a", &records, 3600, at(7201)).unwrap().overdue);
        assert!(summarise("c", &records, 3600, at(0)).is_none());
    }
}
