//! `fleet restore HOST [SNAPSHOT] PATH [--to DIR]`: a path of a host back from one of
//! its backup snapshots (default: the newest good one the journal knows), with the
//! restore procedures of `ops::backup`; asks first on a terminal, needs `--yes` without.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::fanout::fan_out;
use crate::ops::backup;
use crate::ops::rsync;
use crate::session::{RunRequest, finish_run, start_run};
use std::io::IsTerminal;
use std::path::PathBuf;

pub(crate) struct RestoreArgs {
    pub(crate) host: String,
    /// `[SNAPSHOT] PATH`.
    pub(crate) args: Vec<String>,
    pub(crate) to: Option<String>,
    pub(crate) job: Option<String>,
    pub(crate) yes: bool,
}

/// Where a snapshot is: on this machine, or on a backup host (`host:/dir`).
#[derive(Debug, PartialEq)]
enum Location {
    Local(PathBuf),
    Store { host: String, dir: String },
}

/// The snapshot to restore from: as given (a path, `host:/path`, or a snapshot name
/// beside the newest good one), else the newest good one of the host (and job).
fn choose(given: Option<&str>, newest: Option<&str>, what: &str) -> Result<String> {
    let none = || {
        Error::usage_with_help(
            format!("the journal has no good backup of {what}"),
            "`fleet backups` lists the backups; give the snapshot's path",
        )
    };
    match given {
        None => newest.map(str::to_string).ok_or_else(none),
        Some(name) if rsync::parse_snapshot_name(name).is_some() => {
            let newest = newest.ok_or_else(none)?;
            let parent = newest.rsplit_once('/').map_or("", |(p, _)| p);
            Ok(format!("{parent}/{name}"))
        }
        Some(path) => Ok(path.to_string()),
    }
}

fn locate(snapshot: &str, is_host: impl Fn(&str) -> bool, root: &std::path::Path) -> Location {
    if let Some((host, dir)) = snapshot.split_once(':')
        && dir.starts_with('/')
        && is_host(host)
    {
        return Location::Store {
            host: host.to_string(),
            dir: dir.to_string(),
        };
    }
    Location::Local(root.join(snapshot))
}

/// Asks `question` on the terminal; without one (cron, a pipe) it is an error that says
/// to pass --yes, so nothing waits for an answer.
fn confirm(app: &App, question: &str, overwrites: &str) -> Result<()> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::usage_with_help(
            format!("restoring overwrites {overwrites} and there is no terminal to ask on"),
            "pass --yes (or --check to see what would be restored)",
        ));
    }
    let ui = crate::exec::ui::Ui::new(crate::exec::ui::UiOptions::detect(
        true,
        app.global.verbosity(),
        false,
    ));
    match ui.confirm(&crate::ops::terminal::neutralise(question)) {
        true => Ok(()),
        false => Err(Error::usage("restore not confirmed; nothing was changed")),
    }
}

pub(crate) fn run(app: &App, a: RestoreArgs) -> Result<i32> {
    let (given, path) = match a.args.as_slice() {
        [path] => (None, path.clone()),
        [snapshot, path] => (Some(snapshot.as_str()), path.clone()),
        _ => return Err(Error::usage("fleet restore HOST [SNAPSHOT] PATH")),
    };
    for (what, p) in [("PATH", Some(&path)), ("--to", a.to.as_ref())] {
        if let Some(p) = p
            && (!p.starts_with('/') || p.split('/').any(|c| c == ".."))
        {
            return Err(Error::usage(format!(
                "{what} `{}` must be an absolute path without `..`",
                crate::ops::terminal::neutralise(p)
            )));
        }
    }
    if let Some(job) = &a.job
        && !backup::job_name_ok(job)
    {
        return Err(Error::usage(format!(
            "--job `{}` is not a job name (lowercase letters, digits, `-`, `_`)",
            crate::ops::terminal::neutralise(job)
        )));
    }
    let inventory = super::load_inventory(app)?;
    let host = inventory.require(&a.host)?;
    let runs = crate::journal::load_all(&app.project.state_dir())?;
    let known = super::backups::from_journal(&runs);
    // Without --job: the host's one backup, named or not; several ask for --job.
    let job = match &a.job {
        Some(job) => Some(job.clone()),
        None if known.contains_key(&(host.name.clone(), None)) => None,
        None => {
            let mut jobs: Vec<&String> = known
                .keys()
                .filter(|(h, _)| *h == host.name)
                .filter_map(|(_, job)| job.as_ref())
                .collect();
            jobs.sort();
            match jobs.as_slice() {
                [] => None,
                [one] => Some((*one).clone()),
                several => {
                    let names: Vec<&str> = several.iter().map(|j| j.as_str()).collect();
                    return Err(Error::usage_with_help(
                        format!(
                            "{} has the backup jobs {}: which one?",
                            host.name,
                            names.join(", ")
                        ),
                        "pass --job NAME",
                    ));
                }
            }
        }
    };
    let newest = known
        .get(&(host.name.clone(), job.clone()))
        .and_then(|b| b.last_snapshot.clone());
    let what = match &job {
        Some(job) => format!("{} (job {job})", host.name),
        None => host.name.clone(),
    };
    let snapshot = choose(given, newest.as_deref(), &what)?;
    let location = locate(
        &snapshot,
        |h| inventory.resolve(h).is_some(),
        &app.project.root,
    );
    let target = a.to.clone().unwrap_or_else(|| path.clone());
    if !app.global.check && !a.yes {
        let question = format!(
            "Restore {path} from {snapshot} to {}:{target}? [y/N] ",
            host.name
        );
        confirm(app, &question, &format!("{}:{target}", host.name))?;
    }
    let mut args = vec![host.name.clone(), snapshot.clone(), path.clone()];
    if let Some(to) = &a.to {
        args.extend(["--to".to_string(), to.clone()]);
    }
    let request = RunRequest {
        recipe: "restore".into(),
        args,
        params: Default::default(),
        limit: app.global.limit.clone(),
        replays: None,
    };
    let run = start_run(app, request)?;
    let hosts = run.select(&host.name)?;
    fan_out(&run, &hosts, |h| {
        let controller = run.controller(h);
        match &location {
            Location::Local(dir) => backup::restore(
                &controller,
                h,
                &run.options.ssh,
                dir,
                &path,
                a.to.as_deref(),
            )?,
            Location::Store { host: at, dir } => {
                let at = run.host(at).map_err(|e| crate::exec::fanout::HostEnd {
                    status: crate::outcome::HostStatus::Failed,
                    message: e.to_string(),
                })?;
                let store = run.remote(&at);
                backup::restore_from_store(&store, &controller, h, dir, &path, a.to.as_deref())?
            }
        }
        if !run.options.check {
            run.ui.out(
                Some(&h.name),
                &format!("restored {path} from {snapshot} to {target}"),
            );
        }
        Ok(())
    });
    Ok(finish_run(app, &run, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_snapshot_is_the_newest_a_name_beside_it_or_a_path() {
        let newest = Some("backups/web-1/20261125T020000Z");
        assert_eq!(
            choose(None, newest, "web-1").unwrap(),
            "backups/web-1/20261125T020000Z"
        );
        assert_eq!(
            choose(Some("20261124T020000Z"), newest, "web-1").unwrap(),
            "backups/web-1/20261124T020000Z"
        );
        assert_eq!(
            choose(Some("/srv/b/web-1/x"), None, "web-1").unwrap(),
            "/srv/b/web-1/x"
        );
        let err = choose(None, None, "web-1 (job db)")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no good backup of web-1 (job db)"), "{err}");
        assert!(choose(Some("20261124T020000Z"), None, "web-1").is_err());
    }

    #[test]
    fn a_snapshot_on_a_backup_host_is_told_by_its_inventory_name() {
        let root = Path::new("/p");
        let is_host = |h: &str| h == "bk";
        assert_eq!(
            locate("bk:/srv/b/web-1/20261125T020000Z", is_host, root),
            Location::Store {
                host: "bk".into(),
                dir: "/srv/b/web-1/20261125T020000Z".into()
            }
        );
        assert_eq!(
            locate("backups/web-1/T", is_host, root),
            Location::Local("/p/backups/web-1/T".into())
        );
        assert_eq!(
            locate("other:/x", is_host, root),
            Location::Local("/p/other:/x".into())
        );
    }
}
