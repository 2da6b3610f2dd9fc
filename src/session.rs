//! The run lifecycle: a run starts (lock, inventory, checks, log, interrupt handling),
//! works, and finishes (recap, journal record, exit code), the same for recipes, `exec`,
//! `backup` and every other command that touches hosts.

use crate::App;
use crate::commands::{inventory_path, load_inventory, ssh_defaults};
use crate::error::{Error, Result};
use crate::exec::log::RunTag;
use crate::exec::max_fail::MaxFail;
use crate::exec::recap::Recap;
use crate::exec::run::{Run, RunOptions};
use crate::exec::ui::{Ui, UiOptions};
use crate::journal::{HostRun, RunRecord};
use crate::outcome::{Ending, HostStatus, Stop, exit_code};
use std::time::{Duration, Instant};

/// `20261125T010203.456Z-3f9a`: sortable, unique enough for one project.
pub(crate) fn new_run_id() -> String {
    // Milliseconds keep runs of the same second in order.
    let stamp = humantime::format_rfc3339_millis(crate::ops::clock::now()).to_string();
    let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{:04x}", fastrand::u16(..))
}

/// Whether `id` has the shape `new_run_id` gives: safe as a file name and in a URL.
pub(crate) fn is_run_id(id: &str) -> bool {
    let b = id.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 25
        && digits(0..8)
        && b[8] == b'T'
        && digits(9..15)
        && b[15] == b'.'
        && digits(16..19)
        && &b[19..21] == b"Z-"
        && b[21..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// A run with the command line's and fleet.toml's settings, its log file opened.
/// What to run: the recipe (or `exec`), its arguments as typed and as converted, and the
/// hosts it may touch (`--limit`, or the failed hosts of a retried run).
pub(crate) struct RunRequest {
    pub(crate) recipe: String,
    pub(crate) args: Vec<String>,
    pub(crate) params: serde_json::Map<String, serde_json::Value>,
    pub(crate) limit: Option<String>,
    /// The run this one replays (`fleet replay RUN`).
    pub(crate) replays: Option<String>,
}

pub(crate) fn start_run(app: &App, request: RunRequest) -> Result<Run> {
    let recipe = request.recipe.as_str();
    let args = &request.args;
    let lock = crate::exec::lock::acquire(
        &app.project.data_dir(),
        recipe,
        Duration::from_secs(app.global.lock_wait),
    )?;
    let inventory = load_inventory(app)?;
    let g = &app.global;
    let max_fail = g
        .max_fail
        .as_deref()
        .map(MaxFail::parse)
        .transpose()
        .map_err(|e| Error::usage(e.to_string()))?;
    let forks = g.forks.or(app.project.config.forks).unwrap_or(10);
    if forks == 0 {
        return Err(Error::usage("--forks must be at least 1"));
    }
    let options = RunOptions {
        forks,
        forks_given: g.forks.is_some(),
        max_masters: app.project.config.max_masters,
        max_fail,
        check: g.check,
        limit: request.limit.clone(),
        command_timeout: app.project.config.command_timeout.map(Duration::from_secs),
        output_limit: app
            .project
            .config
            .output_limit
            .unwrap_or(crate::transport::DEFAULT_KEEP),
        ssh: ssh_defaults(app),
        root: app.project.root.clone(),
        secrets_file: app
            .project
            .config
            .secrets_file
            .as_deref()
            .map(|p| crate::ops::ssh::resolve_path(&app.project.root, p)),
        password_secret: app.project.config.password_secret.clone(),
        state_dir: app.project.state_dir(),
        inventory_file: inventory_path(app).ok(),
        signed: crate::commands::signed::keys(app),
        acme: crate::ops::proxy::Acme {
            directory: app.project.config.acme_directory.clone(),
            email: app.project.config.acme_email.clone(),
            ca_bundle: app.project.config.acme_ca_bundle.clone(),
        },
    };
    // Every configured secret is masked from the run's first line, read or not.
    if let Some(file) = &options.secrets_file {
        crate::ops::secrets::register_file(file).map_err(|e| Error::usage(e.to_string()))?;
    }
    // So are the derived passwords of the inventory's hosts (a guest's, shown by a later
    // run's command, is masked too). A secret that is not set fails only provision.
    if let Some(name) = &options.password_secret {
        let values = options
            .secrets_file
            .as_deref()
            .filter(|f| f.exists())
            .and_then(|f| crate::ops::secrets::load_file(f).ok());
        let file = options.secrets_file.as_deref().zip(values.as_ref());
        if let Ok(secret) = crate::ops::secrets::lookup(name, file, crate::ops::secrets::env_value)
        {
            for host in inventory.hosts.keys() {
                if let Ok(p) = crate::ops::passwords::derive(&secret, host) {
                    crate::ops::secrets::register(&p);
                }
            }
        }
    }
    let in_scope = match &options.limit {
        Some(limit) => crate::inventory::select(&inventory, limit)?,
        None => inventory.hosts.values().collect(),
    };
    // A private key others can read stops the run before any connection is made.
    let resolver = inventory.resolver();
    for host in in_scope {
        if let Some(h) = resolver.resolve(&host.name)
            && h.connection == crate::inventory::Connection::Ssh
            && let Some(key) = crate::ops::ssh::target_for(&h, &options.ssh).identity_file
        {
            crate::ops::ssh::check_identity_file(&key)
                .map_err(|e| Error::usage(format!("host {}: {e}", h.name)))?;
        }
    }
    let tag = RunTag {
        // `fleet serve` names the runs it starts, to show them while they run.
        run_id: crate::sysinfo::take_given_run_id().unwrap_or_else(new_run_id),
        recipe: recipe.to_string(),
    };
    let ui = Ui::new(UiOptions::detect(g.no_progress, g.verbosity(), g.json));
    if let Some(file) = &options.secrets_file
        && let Some(warning) = secrets_file_warning(&app.project.root, file)
    {
        ui.event(None, &format!("warning: {warning}"));
    }
    // A run killed before it could write its record (kill -9, a crash) is recorded now.
    match crate::journal::record_killed_runs(&app.project.log_dir(), &app.project.state_dir()) {
        Ok(killed) => {
            for id in killed {
                ui.event(None, &format!("note: run {id} was killed before it ended; recorded it as killed in the journal"));
            }
        }
        Err(e) => ui.event(None, &format!("warning: cannot record killed runs: {e}")),
    }
    let log = app.project.log_dir().join(format!("{}.jsonl", tag.run_id));
    if let Err(e) = crate::exec::log::init(&log) {
        ui.event(None, &format!("warning: {e}; this run is not logged"));
    }
    crate::exec::interrupt::install();
    if let Some(limit) = g.timeout {
        crate::exec::interrupt::start_timeout(limit);
    }
    tag.run_started(args, g.check);
    let mut run = Run::new(tag, inventory, options, ui);
    run.lock = Some(lock);
    run.meta = crate::exec::run::RunMeta {
        args: request.args,
        params: request.params,
        recipes_rev: app.global.recipes_rev.clone(),
        replays: request.replays,
        started_at: crate::ops::clock::now(),
    };
    Ok(run)
}

/// Why the secrets file may end up in git, said on every run until it is fixed: tracked
/// by any repository, or inside the project and not ignored (`git add .` takes it).
fn secrets_file_warning(root: &std::path::Path, file: &std::path::Path) -> Option<String> {
    use crate::ops::git::Exposure;
    let shown = crate::project::display_path(file);
    match crate::ops::git::exposure(file)? {
        Exposure::Tracked { repo } => Some(format!(
            "secrets file {shown} is tracked by the git repository {}: its secrets are in \
             its history; run `git rm --cached {shown}`, add it to .gitignore and change \
             the secrets",
            crate::project::display_path(&repo)
        )),
        Exposure::NotIgnored { .. }
            if file
                .canonicalize()
                .ok()?
                .starts_with(root.canonicalize().ok()?) =>
        {
            Some(format!(
                "secrets file {shown} is inside the project and not ignored by git: add it \
                 to .gitignore, or keep it outside the project"
            ))
        }
        Exposure::NotIgnored { .. } => None,
    }
}

/// Prints the recap (table on stderr, or JSON on stdout) and returns the run's exit code.
/// `error`: the recipe's own error, shown before the recap.
pub(crate) fn finish_run(app: &App, run: &Run, error: Option<Error>) -> i32 {
    finish_run_with(app, run, error, true)
}

/// `finish_run` for commands that print their own result: `show_json_recap` false
/// leaves stdout to them under `--json` (the table recap still goes to stderr).
pub(crate) fn finish_run_with(
    app: &App,
    run: &Run,
    error: Option<Error>,
    show_json_recap: bool,
) -> i32 {
    if run.peak_masters() > 0 {
        run.tag.host_message(
            None,
            None,
            &format!(
                "ssh masters: at most {} open at once (max_masters {})",
                run.peak_masters(),
                run.max_masters()
            ),
        );
    }
    run.close();
    run.ui.finish();
    let recap = Recap::of(run, error.is_some());
    let error_text = error.as_ref().map(|e| e.to_string());
    // The recipe's error first and the run line last, as for a host's failure.
    let error_code = error.map(crate::commands::report_error);
    let quiet = app.global.verbosity() < 0;
    if app.global.json && !show_json_recap {
        // The command's own JSON is the result.
    } else if app.global.json {
        let text = serde_json::to_string_pretty(&recap).unwrap_or_default();
        run.ui.json_result(&text);
    } else if quiet && recap.exit_code == 0 {
        // -q: nothing at all when every host ended well (cron mails only failures).
    } else {
        let style = |status, word: &str| run.ui.style(status).apply_to(word).to_string();
        use std::io::IsTerminal;
        let rows = crate::exec::recap::Rows::chosen(
            app.global.recap,
            quiet,
            std::io::stderr().is_terminal(),
            recap.hosts.len(),
        );
        let table = recap.render(style, rows);
        eprint!("{}", crate::ops::secrets::redact(&table));
    }
    match crate::exec::interrupt::stop() {
        Some(Stop::TimedOut) => eprintln!(
            "timed out: commands in flight were stopped, hosts not yet started were skipped"
        ),
        Some(Stop::Interrupted) => eprintln!("interrupted: hosts not yet started were skipped"),
        None => {}
    }
    let mut code = match (crate::exec::interrupt::stop(), error_code) {
        // Not stopped: the recipe's error decides (exit 2).
        (None, Some(c)) => c,
        _ => recap.exit_code,
    };
    let mut record = journal_record(app, run, &recap, error_text);
    if record.check {
        // Unreadable history only costs the link to earlier drift, never the record.
        let earlier = crate::journal::load_all(&app.project.state_dir()).unwrap_or_default();
        crate::journal::link_drift(&mut record, &earlier);
    }
    let writing = Instant::now();
    let written = crate::journal::write(&app.project.state_dir(), &record, &run.staged());
    if written.is_ok() {
        // For bench/scale and anyone sizing a journal: what one record costs.
        let bytes = std::fs::metadata(app.project.state_dir().join(record.path()))
            .map(|m| m.len())
            .unwrap_or(0);
        run.tag.host_message(
            None,
            None,
            &format!(
                "journal: record of {bytes} bytes written and committed in {} ms",
                writing.elapsed().as_millis()
            ),
        );
    }
    match written {
        Ok(commit) if app.global.verbose > 0 => eprintln!(
            "journal: {} in {} (commit {})",
            record.path().display(),
            crate::project::display_path(&app.project.state_dir()),
            &commit[..commit.len().min(10)]
        ),
        Ok(_) => {}
        // Never a silent loss: the run says so, and a clean run no longer exits 0.
        Err(e) => {
            eprintln!(
                "error: the journal of run {} was not written: {e}",
                record.run_id
            );
            code = exit_code(&Ending::JournalLost { code });
        }
    }
    run.tag.run_ended(code);
    run.ended.store(true, std::sync::atomic::Ordering::SeqCst);
    code
}

/// The journal record of a finished run.
fn journal_record(app: &App, run: &Run, recap: &Recap, error: Option<String>) -> RunRecord {
    // The recipes that ran: the pinned revision, or the work tree and whether it was dirty.
    let head = match &run.meta.recipes_rev {
        Some(rev) => crate::recipe::sources::repo_of(&app.project.root)
            .ok()
            .and_then(|(repo, _)| crate::ops::git::resolve_rev(&repo, rev).ok())
            .map(|commit| crate::ops::git::HeadInfo {
                commit,
                dirty: false,
            }),
        None => crate::ops::git::head_info(&app.project.root).ok().flatten(),
    };
    let records = run.records();
    let now = crate::ops::clock::now();
    let ended = humantime::format_rfc3339_seconds(now).to_string();
    let hosts = recap
        .hosts
        .iter()
        .map(|h| HostRun {
            host: h.host.clone(),
            status: h.status,
            duration_ms: h.duration_ms,
            error: h.error.clone(),
            steps: crate::journal::steps(
                records
                    .get(&h.host)
                    .map(|r| r.commands.as_slice())
                    .unwrap_or_default(),
            ),
            results: records
                .get(&h.host)
                .map(|r| r.results.clone())
                .unwrap_or_default(),
            // A host that failed or was not reached has no known drift.
            drift: (run.options.check && matches!(h.status, HostStatus::Ok | HostStatus::Changed))
                .then(|| {
                    let planned = records
                        .get(&h.host)
                        .map(|r| r.planned.clone())
                        .unwrap_or_default();
                    crate::journal::Drift::new(planned, &ended)
                }),
        })
        .collect();
    RunRecord {
        run_id: run.tag.run_id.clone(),
        recipe: run.tag.recipe.clone(),
        args: run.meta.args.clone(),
        params: run.meta.params.clone(),
        recipe_commit: head
            .as_ref()
            .map(|h| h.commit.clone())
            .filter(|c| !c.is_empty()),
        recipe_dirty: head.as_ref().is_some_and(|h| h.dirty),
        recipes_rev: run.meta.recipes_rev.clone(),
        replays: run.meta.replays.clone(),
        fleet_version: env!("CARGO_PKG_VERSION").to_string(),
        user: crate::sysinfo::run_user(),
        controller: crate::sysinfo::hostname(),
        started: humantime::format_rfc3339_seconds(run.meta.started_at).to_string(),
        ended,
        duration_ms: recap.duration_ms,
        check: run.options.check,
        exit_code: recap.exit_code,
        error,
        killed: false,
        local_changes: recap.local_changes.clone(),
        refused: app.global.refused.clone(),
        hosts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_have_one_shape() {
        assert!(is_run_id(&new_run_id()));
        assert!(is_run_id("20261125T010203.456Z-3f9a"));
        for bad in [
            "",
            "last",
            "20261125T010203.456Z-3f9",
            "20261125T010203.456Z-3F9A",
            "../../etc/passwd/00000000",
            "20261125T010203.456Z-3f9a\n",
            "2026112xT010203.456Z-3f9a",
        ] {
            assert!(!is_run_id(bad), "{bad:?}");
        }
    }
}
