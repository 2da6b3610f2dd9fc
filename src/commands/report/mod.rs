//! `fleet report --html FILE`: `fleet status --cached`, the run history and per-host
//! results as one static page with no external assets, to serve or mail from cron.
//! Reads only the journal; a failed or unreachable host is marked in red.

use super::status::{HEADER, cached_row, cells, known};
use crate::App;
use crate::error::{Error, Result};
use crate::outcome::HostStatus;
use serde::Serialize;

const TEMPLATE: &str = include_str!("report.html");

#[derive(Serialize)]
struct HostLine {
    host: String,
    class: &'static str,
    cells: Vec<String>,
    last_status: Option<&'static str>,
    last_run: String,
    last_error: Option<String>,
    /// The pending changes of the last drift check (`fleet drift`).
    drift: Vec<String>,
}

#[derive(Serialize)]
struct PullLine {
    host: String,
    class: &'static str,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct RunLine {
    run_id: String,
    summary: String,
    started: String,
    duration: String,
    ok: usize,
    changed: usize,
    failed: usize,
    unreachable: usize,
    skipped: usize,
    exit_code: i32,
    hosts: Vec<RunHost>,
}

#[derive(Serialize)]
struct RunHost {
    host: String,
    status: &'static str,
    duration: String,
    error: Option<String>,
    results: Option<String>,
}

fn jinja(value: &impl Serialize) -> minijinja::Value {
    crate::ops::template::to_jinja(&serde_json::to_value(value).unwrap_or_default())
}

pub(crate) fn run(app: &App, html: &std::path::Path, max_runs: usize) -> Result<i32> {
    let runs = crate::journal::load_all(&app.project.state_dir())?;
    let known = known(&runs);
    let inventory = super::load_inventory(app)?;
    let mut names: Vec<String> = crate::inventory::select(&inventory, "all")
        .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
        .unwrap_or_default();
    for h in known.keys() {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let mut failed_hosts = 0;
    let mut outdated_hosts = 0;
    let rows: Vec<HostLine> = names
        .iter()
        .map(|name| {
            let row = cached_row(name, &known);
            // The newest run that touched the host decides its mark.
            let last = runs.iter().find_map(|r| {
                r.hosts
                    .iter()
                    .find(|h| h.host == *name && h.status != HostStatus::Skipped)
                    .map(|h| (r, h))
            });
            let last_status = last.map(|(_, h)| h.status.as_str());
            let bad = matches!(last_status, Some("failed" | "unreachable"))
                || row.reachable == Some(false);
            let outdated = row.facts.as_ref().is_some_and(|f| f.outdated());
            failed_hosts += usize::from(bad);
            outdated_hosts += usize::from(outdated);
            HostLine {
                host: name.clone(),
                class: if bad {
                    "failed"
                } else if outdated {
                    "outdated"
                } else {
                    ""
                },
                cells: cells(&row),
                last_status,
                last_run: last
                    .map(|(r, _)| format!("{} ({})", r.recipe, r.run_id))
                    .unwrap_or_default(),
                last_error: last.and_then(|(_, h)| h.error.clone()),
                drift: row
                    .drift
                    .as_ref()
                    .map(|d| {
                        d.changes
                            .iter()
                            .map(|c| {
                                let step = c.step.as_deref().map(|s| format!("[{s}] "));
                                let line = format!("{}{}", step.unwrap_or_default(), c.change);
                                crate::ops::secrets::redact(&line).into_owned()
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    // Pull hosts' pushed results (`fleet results fetch`): last run, result, last seen.
    let pull_header = super::results::PULL_HEADER;
    let pull_rows: Vec<PullLine> = super::results::pull_hosts(app, Some(&inventory))?
        .iter()
        .map(|p| PullLine {
            class: if p.overdue || matches!(p.status, HostStatus::Failed | HostStatus::Unreachable)
            {
                "failed"
            } else {
                ""
            },
            host: p.host.clone(),
            cells: super::results::cells(p),
        })
        .collect();
    let run_lines: Vec<RunLine> = runs
        .iter()
        .take(max_runs)
        .map(|r| RunLine {
            run_id: r.run_id.clone(),
            summary: r.summary(),
            started: r.started.clone(),
            duration: format!("{:.1}s", r.duration_ms as f64 / 1000.0),
            ok: r.count(HostStatus::Ok),
            changed: r.count(HostStatus::Changed),
            failed: r.count(HostStatus::Failed),
            unreachable: r.count(HostStatus::Unreachable),
            skipped: r.count(HostStatus::Skipped),
            exit_code: r.exit_code,
            hosts: r
                .hosts
                .iter()
                .map(|h| RunHost {
                    host: h.host.clone(),
                    status: h.status.as_str(),
                    duration: format!("{:.1}s", h.duration_ms as f64 / 1000.0),
                    error: h.error.clone(),
                    results: (!h.results.is_empty())
                        .then(|| serde_json::to_string_pretty(&h.results).unwrap_or_default()),
                })
                .collect(),
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| Error::Internal(format!("report template: {e}")))?;
    let page = env
        .get_template("report.html")
        .and_then(|t| {
            t.render(minijinja::context! {
                project => app.project.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                generated => humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                state_dir => crate::project::display_path(&app.project.state_dir()),
                total_runs => runs.len(),
                header => jinja(&HEADER),
                rows => jinja(&rows),
                pull_header => jinja(&pull_header),
                pull_rows => jinja(&pull_rows),
                runs => jinja(&run_lines),
                failed_hosts => failed_hosts,
                outdated_hosts => outdated_hosts,
            })
        })
        .map_err(|e| Error::Internal(format!("report template: {e}")))?;
    let page = crate::ops::secrets::redact(&page).into_owned();
    crate::ops::localfs::write_local(html, page.as_bytes()).map_err(Error::write(html))?;
    eprintln!(
        "wrote {} ({} hosts, {} runs)",
        html.display(),
        names.len(),
        run_lines.len()
    );
    Ok(0)
}
