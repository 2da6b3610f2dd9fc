//! `fleet history`, `fleet show RUN` and `fleet config-diff HOST`: reading the journal
//! and the configuration snapshots back.

use crate::App;
use crate::error::{Error, Result};
use crate::journal::{self, RunRecord};
use crate::outcome::HostStatus;
use std::io::{IsTerminal, Write};
use std::path::Path;

fn print(text: &str) {
    // Journal records and captured configurations hold host output: its control
    // characters are made visible. A closed pipe (`fleet history | head`) is not an error.
    let text = crate::ops::terminal::neutralise(text);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A `--since` that is not a time fleet can compare with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SinceError {
    #[error("--since {0} reaches before 1970")]
    BeforeEpoch(String),
    #[error(
        "--since `{0}`: expected a date (2026-11-01), a time (2026-11-01T10:00:00Z) or an age (2h, 3days)"
    )]
    Format(String),
}

/// `2026-11-01`, `2026-11-01T10:00:00Z`, or an age like `2h` / `3days`.
pub(crate) fn parse_since(text: &str) -> std::result::Result<String, SinceError> {
    if let Ok(age) = humantime::parse_duration(text) {
        let at = std::time::SystemTime::now()
            .checked_sub(age)
            .ok_or_else(|| SinceError::BeforeEpoch(text.to_string()))?;
        return Ok(humantime::format_rfc3339_seconds(at).to_string());
    }
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .map_err(|_| SinceError::Format(text.to_string()))
}

/// Characters of the ARGS column on a terminal.
const ARGS_ON_A_TERMINAL: usize = 40;

pub(crate) fn history(
    app: &App,
    host: Option<&str>,
    recipe: Option<&str>,
    since: Option<&str>,
) -> Result<i32> {
    let since = since
        .map(parse_since)
        .transpose()
        .map_err(|e| Error::usage(e.to_string()))?;
    if app.global.json {
        // Whole records: what scripts read.
        let runs: Vec<RunRecord> = journal::load_all(&app.project.state_dir())?
            .into_iter()
            .filter(|r| host.is_none_or(|h| r.hosts.iter().any(|x| x.host == h)))
            .filter(|r| recipe.is_none_or(|n| journal::same_recipe(&r.recipe, n)))
            .filter(|r| since.as_deref().is_none_or(|s| r.started.as_str() >= s))
            .collect();
        print(&(serde_json::to_string_pretty(&runs).unwrap_or_default() + "\n"));
        return Ok(0);
    }
    // The table needs each run's counts only: kept per record in a cache of this
    // machine, so only new records are read. With --host, the runs' host lists.
    let state = app.project.state_dir();
    let lines: Vec<journal::RunLine> = match host {
        Some(h) => journal::load_summaries(&state)?
            .into_iter()
            .filter(|r| r.hosts.iter().any(|x| x.host == h))
            .map(journal::RunLine::of)
            .collect(),
        None => {
            let cache = app.project.data_dir().join("history-cache.json");
            journal::load_lines(&state, &cache)?
        }
    };
    let runs: Vec<journal::RunLine> = lines
        .into_iter()
        .filter(|r| recipe.is_none_or(|n| journal::same_recipe(&r.recipe, n)))
        .filter(|r| since.as_deref().is_none_or(|s| r.started.as_str() >= s))
        .collect();
    let header: Vec<String> = [
        "RUN",
        "STARTED",
        "RECIPE",
        "ARGS",
        "OK",
        "CHANGED",
        "FAILED",
        "UNREACHABLE",
        "EXIT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // One long `exec` must not make every row of a terminal's table wrap; --json and
    // pipes keep the arguments whole.
    let fit = |args: String| match std::io::stdout().is_terminal() {
        true => crate::ops::text::truncate_display(&args, ARGS_ON_A_TERMINAL),
        false => args,
    };
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.started.clone(),
                // As `fleet recipes` lists it.
                r.recipe.replace('_', "-"),
                fit(r.args.join(" ")),
                r.count(HostStatus::Ok).to_string(),
                r.count(HostStatus::Changed).to_string(),
                r.count(HostStatus::Failed).to_string(),
                r.count(HostStatus::Unreachable).to_string(),
                r.exit_code.to_string(),
            ]
        })
        .collect();
    print(&crate::table::render(&header, &rows));
    Ok(0)
}

pub(crate) fn show(app: &App, which: &str) -> Result<i32> {
    let mut r = journal::find(&app.project.state_dir(), which, None)
        .map_err(|e| Error::usage(e.to_string()))?;
    // -l: only the hosts of the run that the pattern selects in the inventory.
    if let Some(limit) = &app.global.limit {
        let inventory = crate::commands::load_inventory(app)?;
        let chosen: Vec<String> = crate::inventory::select(&inventory, limit)?
            .into_iter()
            .map(|h| h.name.clone())
            .collect();
        r.hosts.retain(|h| chosen.contains(&h.host));
    }
    if app.global.json {
        print(&(serde_json::to_string_pretty(&r).unwrap_or_default() + "\n"));
        return Ok(0);
    }
    let mut out = format!(
        "run {}: {}\n  started {} by {}@{}, {:.1}s, exit {}{}\n  recipes at {}{}\n",
        r.run_id,
        r.summary(),
        r.started,
        r.user,
        r.controller,
        r.duration_ms as f64 / 1000.0,
        r.exit_code,
        if r.check { " (check mode)" } else { "" },
        r.recipe_commit.as_deref().unwrap_or("(no git repository)"),
        if r.recipe_dirty {
            " with uncommitted changes"
        } else {
            ""
        },
    );
    if let Some(replayed) = &r.replays {
        out.push_str(&format!("  replays run {replayed}\n"));
    }
    if let Some(refused) = &r.refused {
        out.push_str(&format!("  {refused}: the last verified commit ran\n"));
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    for h in &r.hosts {
        out.push_str(&format!(
            "\n{} {} ({:.1}s){}\n",
            h.host,
            h.status.as_str(),
            h.duration_ms as f64 / 1000.0,
            h.error
                .as_deref()
                .map(|e| format!(": {}", e.lines().next().unwrap_or_default()))
                .unwrap_or_default()
        ));
        for step in &h.steps {
            if let Some(name) = &step.name {
                out.push_str(&format!("  step {name}\n"));
            }
            for c in &step.commands {
                let code = match (c.executed, c.exit_code) {
                    (false, _) => "not run (check mode)".to_string(),
                    (true, Some(code)) => format!("exit {code}"),
                    (true, None) => "no exit".to_string(),
                };
                out.push_str(&format!(
                    "    $ {}  [{code}, {}ms]\n",
                    c.command, c.duration_ms
                ));
                for line in c.stdout_tail.lines() {
                    out.push_str(&format!("      | {line}\n"));
                }
                for line in c.stderr_tail.lines() {
                    out.push_str(&format!("      ! {line}\n"));
                }
            }
        }
    }
    print(&out);
    Ok(0)
}

/// The commit that recorded `run` (the one that added its journal file).
fn commit_of(state: &Path, run: &RunRecord) -> Result<String> {
    let commits = crate::ops::git::commits_touching(state, &run.path())?;
    commits.last().map(|c| c.0.clone()).ok_or_else(|| {
        Error::usage(format!(
            "run {} is not committed in {}",
            run.run_id,
            state.display()
        ))
    })
}

pub(crate) fn config_diff(app: &App, host: &str, runs: &[String]) -> Result<i32> {
    let state = app.project.state_dir();
    let prefix = crate::ops::capture::host_dir(host).map_err(|e| Error::usage(e.to_string()))?;
    let (from, to) = match runs {
        [] => {
            let changes = crate::ops::git::commits_touching(&state, &prefix)?;
            match changes.as_slice() {
                [newest, older, ..] => (older.0.clone(), newest.0.clone()),
                [_] => {
                    print(&format!(
                        "{host}: only one captured configuration so far, nothing to compare\n"
                    ));
                    return Ok(0);
                }
                [] => {
                    return Err(Error::usage_with_help(
                        format!(
                            "no configuration of {host} is captured in {}",
                            state.display()
                        ),
                        "recipes capture it with h.snapshot_config([paths])",
                    ));
                }
            }
        }
        [one] => {
            let r = journal::find(&state, one, None).map_err(|e| Error::usage(e.to_string()))?;
            (commit_of(&state, &r)?, "HEAD".to_string())
        }
        [a, b, ..] => {
            let ra = journal::find(&state, a, None).map_err(|e| Error::usage(e.to_string()))?;
            let rb = journal::find(&state, b, None).map_err(|e| Error::usage(e.to_string()))?;
            (commit_of(&state, &ra)?, commit_of(&state, &rb)?)
        }
    };
    let diff = crate::ops::git::diff_between(&state, &from, &to, &prefix)?;
    if diff.is_empty() {
        print(&format!(
            "{host}: no change in its captured configuration\n"
        ));
    } else {
        print(&diff);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_dates_times_and_ages() {
        assert_eq!(parse_since("2026-11-01").unwrap(), "2026-11-01T00:00:00Z");
        assert_eq!(
            parse_since("2026-11-01T10:00:00Z").unwrap(),
            "2026-11-01T10:00:00Z"
        );
        assert!(parse_since("2h").unwrap().starts_with("20"));
        assert!(parse_since("yesterday-ish").is_err());
        let cases = [
            (
                SinceError::BeforeEpoch("9999years".into()),
                "--since 9999years reaches before 1970",
            ),
            (
                SinceError::Format("soon".into()),
                "--since `soon`: expected a date (2026-11-01), a time (2026-11-01T10:00:00Z) or an age (2h, 3days)",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }
}
