//! `fleet backups`: per host, the last good snapshot, its age and size, and the last
//! error, from the journal — the backups at a glance.

use crate::App;
use crate::error::Result;
use crate::ops::backup::BackupResult;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Default, serde::Serialize)]
struct HostBackups {
    host: String,
    last_snapshot: Option<String>,
    last_snapshot_at: Option<String>,
    total_size: Option<u64>,
    last_error: Option<String>,
    last_error_at: Option<String>,
}

fn age(since: &str) -> String {
    let Some(secs) = crate::journal::seconds_since(since) else {
        return "?".into();
    };
    humantime::format_duration(std::time::Duration::from_secs(secs - secs % 60)).to_string()
}

pub(crate) fn run(app: &App) -> Result<i32> {
    let runs = crate::journal::load_all(&app.project.state_dir())?;
    let mut hosts: BTreeMap<String, HostBackups> = BTreeMap::new();
    // Oldest first, so later runs overwrite.
    for r in runs.iter().rev() {
        for h in &r.hosts {
            let Some(result) = BackupResult::from_journal(&h.results) else {
                continue;
            };
            let entry = hosts.entry(h.host.clone()).or_insert_with(|| HostBackups {
                host: h.host.clone(),
                ..HostBackups::default()
            });
            match (&result.snapshot, &result.error) {
                (Some(s), None) => {
                    entry.last_snapshot = Some(s.clone());
                    entry.last_snapshot_at = Some(r.ended.clone());
                    entry.total_size = Some(result.total_size);
                    entry.last_error = None;
                    entry.last_error_at = None;
                }
                (_, Some(e)) => {
                    entry.last_error = Some(e.clone());
                    entry.last_error_at = Some(r.ended.clone());
                }
                _ => {}
            }
        }
    }
    let list: Vec<&HostBackups> = hosts.values().collect();
    let text = if app.global.json {
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    } else if list.is_empty() {
        "no backup in the journal yet (`fleet backup` makes one)\n".to_string()
    } else {
        let header: Vec<String> = [
            "HOST",
            "STATE",
            "LAST SNAPSHOT",
            "AGE",
            "SIZE",
            "LAST ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|h| {
                vec![
                    h.host.clone(),
                    if h.last_error.is_some() {
                        "FAILED"
                    } else {
                        "ok"
                    }
                    .to_string(),
                    h.last_snapshot.clone().unwrap_or_else(|| "none".into()),
                    h.last_snapshot_at.as_deref().map(age).unwrap_or_default(),
                    h.total_size.map(|s| format!("{s} B")).unwrap_or_default(),
                    h.last_error
                        .as_deref()
                        .map(|e| e.lines().next().unwrap_or_default().to_string())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        crate::table::render(&header, &rows)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}
