//! `fleet user add NAME --on PATTERN [--sudo] [--key FILE]`: gives a person an account
//! on some hosts. access.toml gets the person (with the key), a group `user-NAME` and a
//! rule giving it the account NAME on PATTERN (`ops::access::edit`, written in place,
//! comments kept; a change of this machine in the recap and journal); then one run over
//! the hosts makes the user (`users::ensure`) and writes its keys exactly as
//! `fleet keys apply` does, with the same checks that fleet cannot lock itself out.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::fanout::fan_out;
use crate::ops::access::controller::{Step, host_step, prepare_access};
use crate::ops::access::edit::{UserAdd, add_user};
use crate::ops::access::keyline::parse_key_line;
use crate::ops::access::{ACCESS_FILE, Access, read_key_file};
use crate::ops::local::{self, WritePlan};
use crate::ops::remote::Remote;
use crate::ops::users::{self, EnsureOptions, SudoRule};
use crate::session::{RunRequest, finish_run_with, start_run};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum UserAction {
    /// Create the account on the hosts of --on and give it the person's key
    Add,
}

/// The arguments of `fleet user add`.
#[derive(Debug, Clone)]
pub(crate) struct AddArgs {
    pub(crate) name: String,
    pub(crate) on: String,
    pub(crate) sudo: bool,
    pub(crate) key: Option<PathBuf>,
}

/// Key files larger than this are refused (a key line is under 16 KiB).
const MAX_KEY_FILE: u64 = 1 << 20;

/// The one public key line of `path`, checked; errors name the file and line.
fn read_key(path: &Path) -> Result<String> {
    let shown = crate::ops::text::shown(&path.display().to_string());
    let help = "--key takes a public key file, e.g. ~/.ssh/id_ed25519.pub";
    let text = std::fs::metadata(path)
        .and_then(|m| {
            if !m.is_file() {
                Err(std::io::Error::other("it is not a regular file"))
            } else if m.len() > MAX_KEY_FILE {
                Err(std::io::Error::other(format!(
                    "it is larger than {MAX_KEY_FILE} bytes"
                )))
            } else {
                std::fs::read_to_string(path)
            }
        })
        .map_err(|e| Error::usage_with_help(format!("{shown}: cannot read it: {e}"), help))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match lines.as_slice() {
        [(n, line)] => {
            parse_key_line(line, false)
                .map_err(|e| Error::usage_with_help(format!("{shown}:{n}: {e}"), help))?;
            Ok(line.to_string())
        }
        [] => Err(Error::usage_with_help(
            format!("{shown}: holds no public key"),
            help,
        )),
        [_, (n, _), ..] => Err(Error::usage_with_help(
            format!("{shown}:{n}: one key per --key file (this is a second one)"),
            help,
        )),
    }
}

pub(crate) fn run(app: &App, action: UserAction, args: &AddArgs) -> Result<i32> {
    match action {
        UserAction::Add => add(app, args),
    }
}

fn add(app: &App, args: &AddArgs) -> Result<i32> {
    let name = users::valid_name(&args.name).map_err(|e| Error::usage(e.to_string()))?;
    let key = args.key.as_deref().map(read_key).transpose()?;
    let mut cmdline = vec![
        "add".to_string(),
        name.to_string(),
        "--on".into(),
        args.on.clone(),
    ];
    if args.sudo {
        cmdline.push("--sudo".into());
    }
    if let Some(k) = &args.key {
        cmdline.extend(["--key".into(), k.display().to_string()]);
    }
    // The data, edited and checked by reading it back before anything starts; written
    // (unless --check) once the pattern is known to match hosts.
    let root = &app.project.root;
    let path = root.join(ACCESS_FILE);
    let old = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::usage(format!("{ACCESS_FILE}: cannot read it: {e}"))),
    };
    let edit = UserAdd {
        name,
        key: key.as_deref(),
        hosts: &args.on,
    };
    let key_file = |n: &str| read_key_file(root, n);
    let new = add_user(&old, &edit, &key_file).map_err(|e| {
        Error::usage_with_help(
            e.to_string(),
            "fix access.toml (README, section Access, shows the format)",
        )
    })?;
    let request = RunRequest {
        recipe: "user-add".into(),
        args: cmdline,
        params: Default::default(),
        limit: app.global.limit.clone(),
        replays: None,
    };
    let run = start_run(app, request)?;
    let hosts = run.select(&args.on)?;

    let plan = local::plan_write(&path, new.as_bytes()).map_err(|e| Error::usage(e.to_string()))?;
    if plan != WritePlan::Same {
        if run.options.check {
            run.ui.out(
                None,
                &local::describe(ACCESS_FILE, &plan, new.as_bytes()).join("\n"),
            );
        } else {
            local::write(&path, new.as_bytes()).map_err(|e| Error::usage(e.to_string()))?;
        }
        run.note_local_change(&format!("write {ACCESS_FILE}"));
    }
    let access = Access::parse(&new, &key_file).map_err(|p| {
        Error::usage(
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let mut prepared =
        prepare_access(access, &run.inventory).map_err(|e| Error::usage(e.to_string()))?;
    for w in &prepared.warnings {
        eprintln!("{w}");
    }
    prepared.fetch_servers(&|name, files| {
        let host = run
            .inventory
            .require(name)
            .map_err(|e| crate::outcome::HostError::new(name, e.to_string()))?;
        crate::ops::access::apply::fetch_keys(&run.remote(&host), files)
    });

    // The hosts: the user, then its keys.
    let options = EnsureOptions {
        sudo: args.sudo.then_some(SudoRule::Full(true)),
        ..EnsureOptions::default()
    };
    fan_out(&run, &hosts, |host| {
        let r = run.remote(host);
        let done = users::ensure(&r, name, &options)?;
        for c in &done.changes {
            r.out(&format!("user {name}: {c}"));
        }
        if r.check_mode() && done.changes.iter().any(|c| c == "created") {
            r.out(&format!(
                "keys: {name}'s authorized_keys is written once the account exists"
            ));
            return Ok(());
        }
        host_step(&r, &prepared, host, &run.options.ssh, Step::Apply)?;
        Ok(())
    });
    Ok(finish_run_with(app, &run, None, true))
}
