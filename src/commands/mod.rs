//! One file per built-in command, plus what they share: loading the inventory, setting
//! up a run, and printing an error.

pub(crate) mod adhoc;
pub(crate) mod api;
pub(crate) mod backups;
pub(crate) mod catalog;
pub(crate) mod check;
pub(crate) mod connect;
pub(crate) mod drift;
pub(crate) mod guest;
pub(crate) mod history;
pub(crate) mod hosts;
pub(crate) mod image;
pub(crate) mod init;
pub(crate) mod keys;
pub(crate) mod pull;
pub(crate) mod pull_signed;
pub(crate) mod recipe;
pub(crate) mod recipes;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod restore;
pub(crate) mod results;
pub(crate) mod serve;
pub(crate) mod signed;
pub(crate) mod status;
pub(crate) mod test;
pub(crate) mod user;

use crate::App;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::outcome::{Ending, exit_code};
use std::io::IsTerminal;
use std::time::Duration;

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
    let code = exit_code(&Ending::Error(&err));
    let err = err.for_terminal();
    let mut text = String::new();
    if handler.render_report(&mut text, &err).is_err() {
        text = format!("error: {err}\n");
    }
    eprint!("{}", crate::ops::secrets::redact(&text));
    code
}

/// The inventory from `-i`, else the project's.
pub(crate) fn load_inventory(app: &App) -> Result<Inventory> {
    let path = inventory_path(app)?;
    let timeout = app.project.config.inventory_timeout.map_or(
        crate::inventory::script::DEFAULT_TIMEOUT,
        Duration::from_secs,
    );
    Inventory::load(&path, &crate::project::display_path(&path), timeout)
}

/// The inventory file of this invocation: `-i`, fleet.toml's, or a default name.
pub(crate) fn inventory_path(app: &App) -> Result<std::path::PathBuf> {
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
    Ok(path)
}

/// SSH settings from fleet.toml and the command line.
pub(crate) fn ssh_defaults(app: &App) -> crate::ops::ssh::SshDefaults {
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

/// What `--retry-failed[=WHICH]` of `name` (a recipe, or `exec`) reruns: the journaled
/// run and its hosts that failed or were unreachable. None (after saying so) when it had
/// none; an error when it stopped on a recipe error, with `--limit` given, or when
/// `accept` refuses the run.
pub(crate) fn retry_target(
    app: &App,
    which: &str,
    name: &str,
    accept: impl Fn(&crate::journal::RunRecord) -> Result<()>,
) -> Result<Option<(crate::journal::RunRecord, Vec<String>)>> {
    if app.global.limit.is_some() {
        return Err(Error::usage(
            "--retry-failed chooses the hosts itself; leave out --limit",
        ));
    }
    let last = crate::journal::find(&app.project.state_dir(), which, Some(name))
        .map_err(|e| Error::usage(e.to_string()))?;
    if !crate::journal::same_recipe(&last.recipe, name) {
        return Err(Error::usage(format!(
            "run {} was of recipe `{}`, not `{name}`",
            last.run_id, last.recipe
        )));
    }
    accept(&last)?;
    let failed: Vec<String> = last.failed_hosts().into_iter().map(String::from).collect();
    if !failed.is_empty() {
        return Ok(Some((last, failed)));
    }
    if let Some(error) = &last.error {
        return Err(Error::usage_with_help(
            format!(
                "run {} of `{name}` stopped with an error of the recipe, not of hosts: {}",
                last.run_id,
                error.lines().next().unwrap_or_default()
            ),
            format!(
                "fix the recipe and run `fleet {name}` again (`fleet show {}` has the details)",
                last.run_id
            ),
        ));
    }
    println!(
        "run {} of `{name}` has no failed or unreachable host: nothing to retry",
        last.run_id
    );
    Ok(None)
}
