//! `fleet results fetch`: the journals pull-mode hosts pushed (`fleet pull
//! --push-results P` to the branches `P/<host>`) fetched into the state repository as
//! `refs/fleet-results/<host>`, where `fleet status` and `fleet report` read them: each
//! pull host's last run, result and last seen time, overdue after twice `pull_interval`.
//! With them, the journals of other controllers (shards, each pushing its state
//! repository to `controllers/<name>`) are fetched as `refs/fleet-controllers/<name>`
//! and merged into this state repository: records are one file per run, so the merge
//! never conflicts and every view of the journal shows the whole fleet.

use crate::App;
use crate::error::{Error, Result};
use crate::journal::RunRecord;
use crate::ops::results::{PullHost, check_prefix, host_of_ref, interval, summarise};
use std::path::Path;
use std::process::Command;

/// Where fetched results live in the state repository: outside `refs/heads`, so they are
/// never checked out nor mixed with the journal's own history.
const NAMESPACE: &str = "refs/fleet-results";

/// Where fetched controller journals live before (and after) they are merged.
const CONTROLLERS: &str = "refs/fleet-controllers";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ResultsAction {
    /// Fetch the pull hosts' results branches into the state repository
    Fetch,
}

/// Why a git command on the state repository failed.
#[derive(Debug, thiserror::Error)]
enum GitError {
    #[error("cannot run git ({0})")]
    Spawn(std::io::Error),
    /// git's own message, neutralised: it may quote the remote server.
    #[error("{0}")]
    Failed(String),
}

fn git(state: &Path, args: &[&str]) -> std::result::Result<String, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(state)
        .args(args)
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitError::Failed(
            crate::ops::terminal::neutralise(String::from_utf8_lossy(&out.stderr).trim())
                .into_owned(),
        ))
    }
}

/// The state repository's remote `origin`, where `fleet results fetch` looks by default.
pub(crate) fn origin(state: &Path) -> Option<String> {
    git(state, &["remote", "get-url", "origin"])
        .ok()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
}

/// Fetches the branches `<prefix>/*` of `source` into the state repository as
/// `refs/fleet-results/*` (hosts whose branch is gone are forgotten); returns the pull
/// hosts fetched so far. `prefix` must have passed [`check_prefix`].
/// Fetches the pull hosts' results branches `prefix/*` and, given `controllers`, the
/// journals controllers push to `controllers/*`, merged into the state repository
/// (their names returned); then the pull hosts whose results are here.
pub(crate) fn fetch(
    state: &Path,
    source: &str,
    prefix: &str,
    controllers: Option<&str>,
) -> Result<(Vec<String>, Vec<String>)> {
    crate::journal::open_state(state)?;
    let mut refspecs = vec![format!("+refs/heads/{prefix}/*:{NAMESPACE}/*")];
    if let Some(c) = controllers {
        refspecs.push(format!("+refs/heads/{c}/*:{CONTROLLERS}/*"));
    }
    let wanted = match controllers {
        Some(c) => format!("{prefix}/* and {c}/*"),
        None => format!("{prefix}/*"),
    };
    // `--` keeps a URL such as `--upload-pack=…` a URL; --prune forgets removed hosts.
    let mut args = vec!["fetch", "--prune", "--no-tags", "--quiet", "--", source];
    args.extend(refspecs.iter().map(String::as_str));
    git(state, &args).map_err(|e| {
        Error::usage(format!(
            "cannot fetch {wanted} from {}: {e}",
            crate::ops::terminal::neutralise(source)
        ))
    })?;
    let merged = match controllers {
        Some(_) => merge_controllers(state)?,
        None => Vec::new(),
    };
    let hosts = load(state)?.into_iter().map(|(h, _)| h).collect();
    Ok((hosts, merged))
}

pub(crate) fn run(
    app: &App,
    _action: ResultsAction,
    from: Option<&str>,
    prefix: &str,
    controllers: &str,
) -> Result<i32> {
    let prefix = check_prefix(prefix).map_err(|e| Error::usage(e.to_string()))?;
    let controllers = check_prefix(controllers).map_err(|e| Error::usage(e.to_string()))?;
    if prefix == controllers {
        return Err(Error::usage(format!(
            "--prefix and --controllers are both `{prefix}`: pull hosts and controllers push to different branch prefixes"
        )));
    }
    let state = app.project.state_dir();
    crate::journal::open_state(&state)?;
    let source = match from {
        Some(url) => url.to_string(),
        None => origin(&state).ok_or_else(|| {
            Error::usage_with_help(
                format!("the state repository {} has no remote `origin`", state.display()),
                "give --from URL: the repository the pull hosts push to (`fleet pull --push-results`)",
            )
        })?,
    };
    let (hosts, merged) = fetch(&state, &source, prefix, Some(controllers))?;
    if !merged.is_empty() {
        println!(
            "merged the journals of {} controller(s): {}",
            merged.len(),
            merged.join(", ")
        );
    }
    if hosts.is_empty() {
        println!(
            "no results branches {prefix}/* in {}",
            crate::ops::terminal::neutralise(&source)
        );
    } else {
        println!(
            "fetched the results of {} pull host(s): {}",
            hosts.len(),
            hosts.join(", ")
        );
    }
    Ok(0)
}

/// Merges every fetched controller journal into the state repository's branch; the
/// names of the controllers merged. Run records are files named by run id, so branches
/// of different controllers touch different files; a conflict (a file two controllers
/// changed differently) stops with the merge undone and names the controller.
fn merge_controllers(state: &Path) -> Result<Vec<String>> {
    let refs = git(
        state,
        &[
            "for-each-ref",
            "--format=%(refname)",
            &format!("{CONTROLLERS}/"),
        ],
    )
    .map_err(|e| {
        Error::usage(format!(
            "cannot list {CONTROLLERS} in {}: {e}",
            state.display()
        ))
    })?;
    let mut merged = Vec::new();
    for refname in refs.lines() {
        let Some(name) = host_of_ref(CONTROLLERS, refname) else {
            continue;
        };
        let message = format!("fleet results fetch: merge the journal of controller {name}");
        let out = git(
            state,
            &[
                "-c",
                "user.name=fleet",
                "-c",
                "user.email=fleet@localhost",
                "merge",
                "--quiet",
                "--no-edit",
                "--allow-unrelated-histories",
                "-m",
                &message,
                refname,
            ],
        );
        if let Err(e) = out {
            let _ = git(state, &["merge", "--abort"]);
            return Err(Error::usage_with_help(
                format!(
                    "cannot merge the journal of controller {name} into {}: {e}",
                    state.display()
                ),
                "controllers must push their own state repository's journal; resolve the conflict there or in a clone",
            ));
        }
        merged.push(name.to_string());
    }
    Ok(merged)
}

/// Every fetched pull host's journal, by host. Unreadable records are skipped.
pub(crate) fn load(state: &Path) -> Result<Vec<(String, Vec<RunRecord>)>> {
    let Ok(repo) = git2::Repository::open(state) else {
        return Ok(Vec::new());
    };
    let shown = state.display().to_string();
    let fail = |e: git2::Error| {
        Error::usage(format!(
            "cannot read pull results in {shown}: {}",
            e.message()
        ))
    };
    let mut out = Vec::new();
    for reference in repo
        .references_glob(&format!("{NAMESPACE}/*"))
        .map_err(fail)?
    {
        let reference = reference.map_err(fail)?;
        let Some(host) = reference
            .name()
            .ok()
            .and_then(|n| host_of_ref(NAMESPACE, n))
        else {
            continue;
        };
        let host = host.to_string();
        let tree = reference.peel_to_tree().map_err(fail)?;
        let mut records = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let name = entry.name().unwrap_or_default();
            if dir.starts_with("runs/")
                && name.ends_with(".json")
                && let Ok(blob) = entry.to_object(&repo).and_then(|o| o.peel_to_blob())
                && let Ok(r) = serde_json::from_slice::<RunRecord>(blob.content())
            {
                records.push(r);
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(fail)?;
        out.push((host, records));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The pull hosts fetched so far, with their intervals from the inventory (hosts it does
/// not name get the default).
pub(crate) fn pull_hosts(
    app: &App,
    inventory: Option<&crate::inventory::Inventory>,
) -> Result<Vec<PullHost>> {
    pull_hosts_in(&app.project.state_dir(), inventory)
}

/// [`pull_hosts`] of the state repository `state`.
pub(crate) fn pull_hosts_in(
    state: &Path,
    inventory: Option<&crate::inventory::Inventory>,
) -> Result<Vec<PullHost>> {
    let mut out = Vec::new();
    for (host, records) in load(state)? {
        let var = inventory
            .and_then(|i| i.resolve(&host))
            .and_then(|h| h.vars.get("pull_interval").cloned());
        let every = interval(&host, var.as_ref()).map_err(|e| {
            Error::usage_with_help(
                e.to_string(),
                "set pull_interval to the timer's interval, e.g. \"1h\"",
            )
        })?;
        if let Some(p) = summarise(&host, &records, every, crate::journal::seconds_since) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The pull hosts' columns, for the table and the HTML report.
pub(crate) const PULL_HEADER: [&str; 6] = [
    "PULL HOST",
    "LAST RUN",
    "RESULT",
    "LAST SEEN",
    "INTERVAL",
    "SEEN",
];

/// The pull hosts' table: last run, result, last seen, OVERDUE.
pub(crate) fn render(hosts: &[PullHost]) -> String {
    let header: Vec<String> = PULL_HEADER.iter().map(|s| s.to_string()).collect();
    let lines: Vec<Vec<String>> = hosts.iter().map(cells).collect();
    crate::table::render(&header, &lines)
}

pub(crate) fn cells(p: &PullHost) -> Vec<String> {
    vec![
        p.host.clone(),
        p.last_run.clone(),
        p.status.as_str().to_string(),
        super::status::ago(&p.last_seen),
        crate::ops::facts::short_duration(p.interval_secs),
        if p.overdue {
            "OVERDUE".into()
        } else {
            "on time".into()
        },
    ]
}
