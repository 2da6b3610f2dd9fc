//! `fleet backups [PATTERN]`: per host (and per named backup job), the last good
//! snapshot, its age and size, and the last error, from the journal — the backups at a
//! glance, with the hosts never backed up listed as `never`.

use crate::App;
use crate::error::Result;
use crate::ops::backup::{BackupResult, jobs_of};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

/// How a host's (or job's) backups stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackupState {
    /// The last backup completed.
    Ok,
    /// The last backup failed (an earlier snapshot may still be there).
    Failed,
    /// No backup was ever recorded.
    #[default]
    Never,
}

#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct HostBackups {
    pub(crate) host: String,
    /// The named job (None: the host's only, unnamed backup).
    pub(crate) job: Option<String>,
    pub(crate) state: BackupState,
    pub(crate) last_snapshot: Option<String>,
    pub(crate) last_snapshot_at: Option<String>,
    pub(crate) total_size: Option<u64>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_error_at: Option<String>,
}

fn age(since: &str) -> String {
    let Some(secs) = crate::journal::seconds_since(since) else {
        return "?".into();
    };
    humantime::format_duration(std::time::Duration::from_secs(secs - secs % 60)).to_string()
}

/// Every (host, job) the journal has a backup result for, from the runs newest first
/// (as `journal::load_all` returns them): the newest result decides the state.
pub(crate) fn from_journal(
    runs: &[crate::journal::RunRecord],
) -> BTreeMap<(String, Option<String>), HostBackups> {
    let mut out: BTreeMap<(String, Option<String>), HostBackups> = BTreeMap::new();
    // Oldest first, so later runs overwrite.
    // Check runs made no backup.
    for r in runs.iter().rev().filter(|r| !r.check) {
        for h in &r.hosts {
            for result in BackupResult::all_from_journal(&h.results) {
                let entry = out
                    .entry((h.host.clone(), result.job.clone()))
                    .or_insert_with(|| HostBackups {
                        host: h.host.clone(),
                        job: result.job.clone(),
                        ..HostBackups::default()
                    });
                match (&result.snapshot, &result.error) {
                    (Some(s), None) => {
                        entry.state = BackupState::Ok;
                        entry.last_snapshot = Some(s.clone());
                        entry.last_snapshot_at = Some(r.ended.clone());
                        entry.total_size = Some(result.total_size);
                        entry.last_error = None;
                        entry.last_error_at = None;
                    }
                    (_, Some(e)) => {
                        entry.state = BackupState::Failed;
                        entry.last_error = Some(e.clone());
                        entry.last_error_at = Some(r.ended.clone());
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

pub(crate) fn run(app: &App, pattern: &str) -> Result<i32> {
    let inventory = super::load_inventory(app)?;
    let mut selected = crate::inventory::select(&inventory, pattern)?;
    if let Some(limit) = &app.global.limit {
        let allowed = crate::inventory::select(&inventory, limit)?;
        selected.retain(|h| allowed.iter().any(|a| a.name == h.name));
    }
    let runs = crate::journal::load_all(&app.project.state_dir())?;
    let mut known = from_journal(&runs);
    let resolver = inventory.resolver();
    let mut list: Vec<HostBackups> = Vec::new();
    for host in &selected {
        let name = host.name.clone();
        // The jobs the host declares (each listed even before its first run), then any
        // other the journal remembers.
        let mut jobs: Vec<Option<String>> = match resolver.resolve(&name).map(|h| jobs_of(&h)) {
            Some(Ok(jobs)) => jobs.into_iter().map(|j| j.name).collect(),
            Some(Err(e)) => {
                eprintln!(
                    "warning: {}",
                    crate::ops::terminal::neutralise(&e.to_string())
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        for (h, job) in known.keys() {
            if *h == name && !jobs.contains(job) {
                jobs.push(job.clone());
            }
        }
        jobs.sort();
        jobs.dedup();
        if jobs.is_empty() {
            jobs.push(None);
        }
        for job in jobs {
            let entry = known
                .remove(&(name.clone(), job.clone()))
                .unwrap_or_else(|| HostBackups {
                    host: name.clone(),
                    job,
                    ..HostBackups::default()
                });
            list.push(entry);
        }
    }
    let text = if app.global.json {
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    } else if list.is_empty() {
        "no host matches\n".to_string()
    } else {
        let out = std::io::stdout();
        let color = out.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        render(&list, color)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

/// The table; the JOB column only when a host has named jobs. `color` paints failed
/// and never-run backups red.
pub(crate) fn render(list: &[HostBackups], color: bool) -> String {
    let named = list.iter().any(|h| h.job.is_some());
    let mut header = vec!["HOST"];
    if named {
        header.push("JOB");
    }
    header.extend(["STATE", "LAST SNAPSHOT", "AGE", "SIZE", "LAST ERROR"]);
    let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
    let state_column = usize::from(named) + 1;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|h| {
            let mut row = vec![h.host.clone()];
            if named {
                row.push(BackupResult::job_name(h.job.as_deref()).to_string());
            }
            row.extend([
                match h.state {
                    BackupState::Ok => "ok",
                    BackupState::Failed => "FAILED",
                    BackupState::Never => "never",
                }
                .to_string(),
                h.last_snapshot.clone().unwrap_or_else(|| "none".into()),
                h.last_snapshot_at.as_deref().map(age).unwrap_or_default(),
                h.total_size.map(|s| format!("{s} B")).unwrap_or_default(),
                h.last_error
                    .as_deref()
                    .map(|e| e.lines().next().unwrap_or_default().to_string())
                    .unwrap_or_default(),
            ]);
            row
        })
        .collect();
    let paint = |row: usize, column: usize, cell: &str| {
        let bad = list[row].state != BackupState::Ok;
        if color && bad && column == state_column {
            console::Style::new()
                .red()
                .bold()
                .force_styling(true)
                .apply_to(cell)
                .to_string()
        } else {
            cell.to_string()
        }
    };
    crate::table::render_painted(&header, &rows, &paint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_and_never_run_backups_are_red_only_in_colour() {
        let list = vec![
            HostBackups {
                host: "a".into(),
                state: BackupState::Ok,
                last_snapshot: Some("backups/a/20261125T020000Z".into()),
                ..HostBackups::default()
            },
            HostBackups {
                host: "b".into(),
                state: BackupState::Failed,
                last_error: Some("rsync exited with 23\nmore".into()),
                ..HostBackups::default()
            },
            HostBackups {
                host: "c\x1b[2J".into(),
                ..HostBackups::default()
            },
        ];
        let plain = render(&list, false);
        assert_eq!(
            plain,
            "HOST    STATE   LAST SNAPSHOT               AGE  SIZE  LAST ERROR\n\
             a       ok      backups/a/20261125T020000Z\n\
             b       FAILED  none                                   rsync exited with 23\n\
             c^[[2J  never   none\n"
        );
        let painted = render(&list, true);
        assert!(
            painted.contains("\x1b[31m\x1b[1mFAILED\x1b[0m  none"),
            "{painted:?}"
        );
        assert!(
            painted.contains("\x1b[31m\x1b[1mnever\x1b[0m   none"),
            "{painted:?}"
        );
        assert!(painted.contains("a       ok      "));
        assert!(!painted.contains("\x1b[2J"));
    }
}
