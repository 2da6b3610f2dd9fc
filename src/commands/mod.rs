//! One file per built-in command, plus what they share: loading the inventory, setting
//! up a run, and printing an error.

pub mod adhoc;
pub mod api;
pub mod connect;
pub mod hosts;
pub mod init;
pub mod recipe;
pub mod recipes;

use crate::App;
use crate::error::{Error, Result};
use crate::exec::log::RunTag;
use crate::exec::recap::Recap;
use crate::exec::run::{Run, RunOptions};
use crate::exec::status::MaxFail;
use crate::exec::ui::{Ui, UiOptions};
use crate::inventory::Inventory;
use std::io::IsTerminal;
use std::time::{Duration, SystemTime};

/// Prints an error the way users read it best: with the source line for positioned
/// errors, colour only on a terminal without NO_COLOR. Returns the exit code.
pub fn report_error(err: Error) -> i32 {
    let tty = std::io::stderr().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let handler = miette::GraphicalReportHandler::new_themed(if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    })
    .with_context_lines(2);
    let code = err.exit_code();
    let mut text = String::new();
    match handler.render_report(&mut text, &err) {
        Ok(()) => eprint!("{text}"),
        Err(_) => eprintln!("error: {err}"),
    }
    code
}

/// The inventory from `-i`, else the project's.
pub fn load_inventory(app: &App) -> Result<Inventory> {
    let path = match &app.global.inventory {
        Some(p) => p.clone(),
        None => app.project.inventory_path().ok_or_else(|| {
            Error::usage_with_help(
                format!(
                    "no inventory found in {}",
                    crate::project::display_path(&app.project.root)
                ),
                "pass -i FILE, set `inventory` in fleet.toml, or create inventory.toml (`fleet init` makes one)",
            )
        })?,
    };
    if !path.is_file() {
        return Err(Error::usage(format!(
            "inventory {} does not exist",
            crate::project::display_path(&path)
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, &e))?;
    Inventory::parse(&crate::project::display_path(&path), &text)
}

/// SSH settings from fleet.toml and the command line.
pub fn ssh_defaults(app: &App) -> crate::ops::ssh::SshDefaults {
    let ssh = &app.project.config.ssh;
    crate::ops::ssh::SshDefaults {
        root: app.project.root.clone(),
        user: ssh.user.clone(),
        port: ssh.port,
        identity_file: ssh.identity_file.clone(),
        known_hosts: ssh.known_hosts.clone(),
        config_file: ssh.config_file.clone(),
        connect_timeout: Duration::from_secs(ssh.connect_timeout.unwrap_or(10)),
        accept_new: app.global.accept_new_host_keys,
    }
}

/// `20261125T010203Z-3f9a`: sortable, unique enough for one project.
pub fn new_run_id() -> String {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = stamp.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{:04x}", fastrand::u16(..))
}

/// A run with the command line's and fleet.toml's settings, its log file opened.
pub fn start_run(app: &App, recipe: &str, args: &[String]) -> Result<Run> {
    let lock = crate::exec::lock::acquire(
        &app.project.root,
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
        .map_err(Error::usage)?;
    let forks = g.forks.or(app.project.config.forks).unwrap_or(10);
    if forks == 0 {
        return Err(Error::usage("--forks must be at least 1"));
    }
    let options = RunOptions {
        forks,
        max_fail,
        check: g.check,
        limit: g.limit.clone(),
        command_timeout: app.project.config.command_timeout.map(Duration::from_secs),
        ssh: ssh_defaults(app),
        root: app.project.root.clone(),
        secrets_file: app
            .project
            .config
            .secrets_file
            .as_deref()
            .map(|p| crate::ops::ssh::resolve_path(&app.project.root, p)),
    };
    let in_scope = match &options.limit {
        Some(limit) => crate::inventory::select(&inventory, limit)?,
        None => inventory.hosts.values().collect(),
    };
    // A private key others can read stops the run before any connection is made.
    for host in in_scope {
        if let Some(h) = inventory.resolve(&host.name)
            && h.connection == crate::inventory::Connection::Ssh
            && let Some(key) = crate::ops::ssh::target_for(&h, &options.ssh).identity_file
        {
            crate::ops::ssh::check_identity_file(&key)
                .map_err(|e| Error::usage(format!("host {}: {e}", h.name)))?;
        }
    }
    let tag = RunTag {
        run_id: new_run_id(),
        recipe: recipe.to_string(),
    };
    let ui = Ui::new(UiOptions::detect(g.no_progress, g.verbosity(), g.json));
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
    Ok(run)
}

/// Prints the recap (table on stderr, or JSON on stdout) and returns the run's exit code.
pub fn finish_run(app: &App, run: &Run) -> i32 {
    run.close();
    run.ui.finish();
    let recap = Recap::of(run);
    if app.global.json {
        let text = serde_json::to_string_pretty(&recap).unwrap_or_default();
        run.ui.json_result(&text);
    } else {
        let table = recap.render(|status, word| run.ui.style(status).apply_to(word).to_string());
        // A run that touched no host has only the summary line to show.
        let text = match recap.hosts.is_empty() {
            true => table.lines().last().unwrap_or_default().to_string() + "\n",
            false => table,
        };
        eprint!("{text}");
    }
    match crate::exec::interrupt::exit_code() {
        Some(crate::error::exit::TIMEOUT) => eprintln!(
            "timed out: commands in flight were stopped, hosts not yet started were skipped"
        ),
        Some(_) => eprintln!("interrupted: hosts not yet started were skipped"),
        None => {}
    }
    run.tag.run_ended(recap.exit_code);
    recap.exit_code
}
