//! `fleet status [PATTERN]`: the fleet at a glance — reachable, OS, kernel, uptime,
//! pending (security) updates, reboot needed, sudo, last update run, last backup and the
//! soonest certificate expiry of a proxy's TLS sites —
//! gathered live in parallel (and kept in the journal), or `--cached` from the journal.

use crate::App;
use crate::error::Result;
use crate::exec::fanout::fan_out;
use crate::journal::RunRecord;
use crate::ops::facts::{Facts, facts_command, parse_facts, short_duration};
use crate::ops::remote::CommandOpts;
use crate::outcome::HostStatus;
use crate::session::{RunRequest, finish_run_with, start_run};
use serde::Serialize;
use std::collections::BTreeMap;

/// What fleet knows of a host's last update run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LastUpdate {
    pub(crate) at: String,
    pub(crate) run_id: String,
    pub(crate) status: HostStatus,
    pub(crate) result: Option<serde_json::Value>,
}

/// How a host's newest backup went (every named job's newest result counts: one failed
/// job makes the host's backup failed).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LastBackup {
    /// When the newest backup attempt ended.
    pub(crate) at: String,
    /// `ok`, or `failed` when a job's newest result is an error.
    pub(crate) status: &'static str,
    /// The first line of the newest failure.
    pub(crate) error: Option<String>,
}

/// One host's line of the dashboard.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) host: String,
    /// None: never gathered.
    pub(crate) reachable: Option<bool>,
    pub(crate) error: Option<String>,
    pub(crate) facts: Option<Facts>,
    /// When the facts were gathered (now, or the journal's run).
    pub(crate) gathered_at: Option<String>,
    pub(crate) last_update: Option<LastUpdate>,
    /// When the last good backup ended.
    pub(crate) last_backup_at: Option<String>,
    /// The newest backup, good or failed.
    pub(crate) last_backup: Option<LastBackup>,
    /// The last drift check of `configure` (None: never checked).
    pub(crate) drift: Option<crate::journal::HostDrift>,
    /// A pull-mode host's pushed results (`fleet results fetch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pull: Option<crate::ops::results::PullHost>,
}

/// What the journal says per host, newest wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    pub(crate) facts: Option<(String, bool, Option<Facts>, Option<String>)>,
    pub(crate) last_update: Option<LastUpdate>,
    pub(crate) last_backup_at: Option<String>,
    pub(crate) last_backup: Option<LastBackup>,
    pub(crate) drift: Option<crate::journal::HostDrift>,
}

/// Reads every run (newest first, as `journal::load_all` returns them) into `Known`s.
pub(crate) fn known(runs: &[RunRecord]) -> BTreeMap<String, Known> {
    let mut out: BTreeMap<String, Known> = BTreeMap::new();
    let drift = crate::journal::drift_of_hosts(runs, Some(super::drift::DEFAULT_RECIPE));
    for (host, d) in drift {
        out.entry(host).or_default().drift = Some(d);
    }
    for r in runs {
        for h in &r.hosts {
            let k = out.entry(h.host.clone()).or_default();
            if k.facts.is_none() && r.recipe == "status" && !r.check {
                let facts = h
                    .results
                    .get("status")
                    .and_then(|v| serde_json::from_value::<Facts>(v.clone()).ok());
                let reachable = h.status != HostStatus::Unreachable;
                k.facts = Some((r.ended.clone(), reachable, facts, h.error.clone()));
            }
            if k.last_update.is_none()
                && r.recipe == "update"
                && !r.check
                && h.status != HostStatus::Skipped
            {
                k.last_update = Some(LastUpdate {
                    at: r.ended.clone(),
                    run_id: r.run_id.clone(),
                    status: h.status,
                    result: h.results.get("update").cloned(),
                });
            }
        }
    }
    // Backups per job: the newest result of each decides.
    for ((host, _), b) in super::backups::from_journal(runs) {
        let k = out.entry(host).or_default();
        if b.last_snapshot_at > k.last_backup_at {
            k.last_backup_at = b.last_snapshot_at.clone();
        }
        let (at, failed) = match (&b.last_error_at, &b.last_snapshot_at) {
            (Some(at), _) => (at.clone(), true),
            (None, Some(at)) => (at.clone(), false),
            (None, None) => continue,
        };
        let newest = k.last_backup.get_or_insert_with(|| LastBackup {
            at: at.clone(),
            status: "ok",
            error: None,
        });
        if at > newest.at {
            newest.at = at;
        }
        if failed && newest.status == "ok" {
            newest.status = "failed";
            newest.error = b
                .last_error
                .as_deref()
                .map(|e| e.lines().next().unwrap_or_default().to_string());
        }
    }
    out
}

/// `2h 5m ago`, from an RFC 3339 time.
pub(crate) fn ago(when: &str) -> String {
    match crate::journal::seconds_since(when) {
        Some(secs) => format!("{} ago", short_duration(secs)),
        None => "?".into(),
    }
}

/// The dashboard's columns, for the table and the HTML report.
pub(crate) const HEADER: [&str; 12] = [
    "HOST",
    "REACHABLE",
    "OS",
    "KERNEL",
    "UPTIME",
    "UPDATES",
    "REBOOT",
    "SUDO",
    "DRIFT",
    "LAST UPDATE",
    "LAST BACKUP",
    "CERT EXPIRY",
];

/// A host's row from what the journal knows of it.
pub(crate) fn cached_row(host: &str, known: &BTreeMap<String, Known>) -> Row {
    let k = known.get(host).cloned().unwrap_or_default();
    let (gathered_at, reachable, facts, error) = match k.facts {
        Some((at, reachable, facts, error)) => (Some(at), Some(reachable), facts, error),
        None => (None, None, None, None),
    };
    Row {
        host: host.to_string(),
        reachable,
        error,
        facts,
        gathered_at,
        last_update: k.last_update,
        last_backup_at: k.last_backup_at,
        last_backup: k.last_backup,
        drift: k.drift,
        pull: None,
    }
}

pub(crate) struct Filters {
    pub(crate) outdated: bool,
    pub(crate) unreachable: bool,
    pub(crate) drifted: bool,
}

pub(crate) fn run(app: &App, pattern: &str, cached: bool, filters: Filters) -> Result<i32> {
    let runs = crate::journal::load_all(&app.project.state_dir())?;
    let known = known(&runs);
    let (mut rows, code) = if cached {
        let inventory = super::load_inventory(app)?;
        let hosts = crate::inventory::select(&inventory, pattern)?;
        let rows = hosts.iter().map(|h| cached_row(&h.name, &known)).collect();
        (rows, 0)
    } else {
        live(app, pattern, &known)?
    };
    let inventory = super::load_inventory(app).ok();
    let pulls = super::results::pull_hosts(app, inventory.as_ref())?;
    attach_pull_hosts(&mut rows, pulls, pattern == "all");
    rows.retain(|r| {
        (!filters.outdated || r.facts.as_ref().is_some_and(Facts::outdated))
            && (!filters.unreachable || r.reachable == Some(false))
            && (!filters.drifted || r.drift.as_ref().is_some_and(|d| !d.changes.is_empty()))
    });
    let text = if app.global.json {
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    } else {
        let pulled: Vec<_> = rows.iter().filter_map(|r| r.pull.clone()).collect();
        let mut text = render(&rows);
        if !pulled.is_empty() {
            text.push('\n');
            text.push_str(&super::results::render(&pulled));
        }
        text
    };
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(code)
}

/// Pull hosts' results go on their rows; with every host asked for, pull hosts the
/// inventory does not name get rows of their own.
pub(crate) fn attach_pull_hosts(
    rows: &mut Vec<Row>,
    pulls: Vec<crate::ops::results::PullHost>,
    all: bool,
) {
    for p in pulls {
        match rows.iter_mut().find(|r| r.host == p.host) {
            Some(row) => row.pull = Some(p),
            None if all => {
                let mut row = cached_row(&p.host, &BTreeMap::new());
                row.pull = Some(p);
                rows.push(row);
            }
            None => {}
        }
    }
}

fn live(app: &App, pattern: &str, known: &BTreeMap<String, Known>) -> Result<(Vec<Row>, i32)> {
    let request = RunRequest {
        recipe: "status".into(),
        args: vec![pattern.to_string()],
        params: Default::default(),
        limit: app.global.limit.clone(),
        replays: None,
    };
    let run = start_run(app, request)?;
    let hosts = run.select(pattern)?;
    let read = CommandOpts {
        read_only: true,
        ..CommandOpts::default()
    };
    let command = facts_command();
    let results = fan_out(&run, &hosts, |host| {
        let out = run.command(host, &command, read)?;
        let facts = parse_facts(&out.stdout);
        let value = serde_json::to_value(&facts).unwrap_or_default();
        run.update(&host.name, |r| {
            r.results.insert("status".into(), value);
        });
        Ok(facts)
    });
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let records = run.records();
    let rows = hosts
        .iter()
        .zip(results)
        .map(|(h, facts)| {
            let k = known.get(&h.name).cloned().unwrap_or_default();
            let failure = records.get(&h.name).and_then(|r| r.failure.clone());
            Row {
                host: h.name.clone(),
                reachable: Some(!matches!(failure, Some((HostStatus::Unreachable, _)))),
                error: failure.map(|(_, m)| m),
                facts,
                gathered_at: Some(now.clone()),
                last_update: k.last_update,
                last_backup_at: k.last_backup_at,
                last_backup: k.last_backup,
                drift: k.drift,
                pull: None,
            }
        })
        .collect();
    let code = finish_run_with(app, &run, None, false);
    Ok((rows, code))
}

/// The table, one host a line.
pub(crate) fn render(rows: &[Row]) -> String {
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    let lines: Vec<Vec<String>> = rows.iter().map(cells).collect();
    crate::table::render(&header, &lines)
}

/// A row's cells, as the table and the HTML report show them.
pub(crate) fn cells(r: &Row) -> Vec<String> {
    let dash = || "-".to_string();
    let f = r.facts.as_ref();
    vec![
        r.host.clone(),
        match r.reachable {
            Some(true) => "yes".into(),
            Some(false) => "NO".into(),
            None => "?".into(),
        },
        f.map_or_else(dash, |f| f.os.clone()),
        f.map_or_else(dash, |f| f.kernel.clone()),
        f.map_or_else(dash, |f| short_duration(f.uptime_seconds)),
        f.map_or_else(dash, Facts::updates),
        f.map_or_else(dash, |f| {
            if f.reboot_required {
                "yes".into()
            } else {
                "no".into()
            }
        }),
        f.map_or_else(dash, |f| f.sudo.as_str().into()),
        r.drift
            .as_ref()
            .map_or_else(|| "?".into(), super::drift::summary),
        r.last_update.as_ref().map_or_else(
            || "never".into(),
            |u| format!("{} ({})", ago(&u.at), u.status.as_str()),
        ),
        match &r.last_backup {
            None => "never".into(),
            Some(b) if b.status == "failed" => format!("FAILED ({})", ago(&b.at)),
            Some(b) => ago(&b.at),
        },
        f.map_or_else(dash, |f| crate::ops::proxy::certs_cell(&f.certs)),
    ]
}
