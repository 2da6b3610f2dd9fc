//! The `rsync::` module: backups of hosts into snapshots, and restores from them.

use super::glue::runtime_error;
use super::glue::{module_function, raise};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::backup::{self, BackupOpts, Store};
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext, Position};

fn strings(list: Array, what: &str, pos: Position) -> Result<Vec<String>, Box<EvalAltResult>> {
    list.into_iter()
        .map(|v| {
            let t = v.type_name().to_string();
            v.into_string()
                .map_err(|_| runtime_error(format!("{what} must be strings, not {t}"), pos))
        })
        .collect()
}

/// `rsync::snapshot`'s options, checked: the destination directory, the inventory host
/// that keeps the snapshots (if not the controller), its extra ssh options, and the
/// backup options (with `dest_dir` as given).
struct SnapshotInputs {
    dest: String,
    dest_host: Option<String>,
    ssh_options: String,
    opts: BackupOpts,
}

fn snapshot_inputs(options: &Map, pos: Position) -> Result<SnapshotInputs, Box<EvalAltResult>> {
    let o: backup::SnapshotOptions = read_options(options, "rsync::snapshot", pos)?;
    let job = o.job;
    if let Some(name) = &job
        && !backup::job_name_ok(name)
    {
        return Err(runtime_error(
            format!("job `{name}` must be lowercase letters, digits, `-` and `_`"),
            pos,
        ));
    }
    Ok(SnapshotInputs {
        dest_host: o.dest_host,
        ssh_options: o.ssh_options.unwrap_or_default(),
        opts: BackupOpts {
            dest_dir: o.dest_dir.clone().into(),
            excludes: o.excludes,
            one_file_system: o.one_file_system,
            sudo: o.sudo,
            retention: o.retention.unwrap_or_default().policy(),
            job,
        },
        dest: o.dest_dir,
    })
}

/// `rsync::snapshot(h, paths, options)`.
fn snapshot(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    h: HostRef,
    paths: Array,
    options: Map,
) -> Result<Map, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let SnapshotInputs {
        dest,
        dest_host,
        ssh_options,
        mut opts,
    } = snapshot_inputs(&options, pos)?;
    let run = c.run()?;
    let paths = strings(paths, "backup paths", pos)?;
    let backup_host = match dest_host {
        Some(name) => {
            if !dest.starts_with('/') {
                return Err(runtime_error(
                    format!(
                        "with dest_host, dest_dir must be an absolute path on {name}, not `{dest}`"
                    ),
                    pos,
                ));
            }
            Some(
                run.host(&name)
                    .map_err(|e| runtime_error(e.to_string(), pos))?,
            )
        }
        None => None,
    };
    let (controller, at) = (
        run.controller(&h.0),
        backup_host.as_ref().map(|b| run.remote(b)),
    );
    let store = match &at {
        Some(at) => Store::Remote {
            host: at,
            dir: dest.clone(),
            ssh_options,
        },
        None => Store::Local {
            dir: run.options.root.join(&dest),
            root: run.options.root.clone(),
            controller: &controller,
        },
    };
    opts.dest_dir = run.options.root.join(dest);
    let source = run.remote(&h.0);
    let result = backup::backup(
        &source,
        &h.0,
        &run.options.ssh,
        &store,
        &paths,
        &opts,
        &backup::now_unix,
    )
    .map_err(|f| raise(f, ctx))?;
    let value = serde_json::to_value(&result).unwrap_or_default();
    Ok(crate::script::values::from_json(&value)
        .try_cast::<Map>()
        .unwrap_or_default())
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    register_snapshot(&mut m, ctx);
    register_jobs(&mut m);
    register_restore(&mut m, ctx);
    m
}

/// `rsync::snapshot`.
fn register_snapshot(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "snapshot",
        ["h: Host", "paths: Array", "options: Map", "Map"],
        "Backs up `paths` (absolute) of the host with rsync over SSH into a hard-linked snapshot `<dest_dir>/<host>/<time>` on the controller: written as `<time>.partial` with --link-dest to the newest complete snapshot, renamed only when rsync succeeded, then pruned by `retention` (#{ last: 1, hourly_every: 4, hourly: 6, daily: 7, weekly: 4, monthly: 3 }: the newest `last`, plus the newest of each of the newest N 4-hour, daily, weekly and monthly buckets). Options: dest_dir (relative to the project; empty, new or fleet's own — a non-empty directory without fleet's marker is refused), dest_host (an inventory host that keeps the snapshots and pulls from the source itself with its own ssh; dest_dir is then absolute on it; the source's host var `backup_ssh` (\"-p 2203 -i /root/.ssh/backup root@edge\": -p, -l, -i, -o UserKnownHostsFile/IdentitiesOnly/StrictHostKeyChecking, then [user@]host) says how the backup host reaches it when that differs from the inventory; ssh_options are added to its ssh, e.g. \"-i /root/.ssh/backup\"), excludes (relative to each path), one_file_system, sudo (rsync on the host runs as `sudo -n rsync`, so a login that is not root reads every file), retention, job (a named job: snapshots in `<dest_dir>/<host>/<job>/`, its own result and retention). Returns #{ snapshot, files_transferred, bytes_transferred, total_size, duration_ms, exit_code, warning, pruned }; a failure never touches complete snapshots.",
        move |ctx: NativeCallContext,
              h: HostRef,
              paths: Array,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> { snapshot(&c, &ctx, h, paths, options) }
    );
}

/// `rsync::jobs`.
fn register_jobs(m: &mut Module) {
    module_function!(
        m,
        "jobs",
        ["h: Host", "Array"],
        "The backup jobs the host's vars declare, checked: `backups = [{ name, paths, excludes, dest_host, dest_dir, retention, one_file_system, sudo }]`, or the one unnamed job of `backup_paths` (default [\"/etc\"]), `backup_excludes`, `backup_retention` and `backup_sudo` (true: rsync on the host runs as `sudo -n rsync`, for a login that is not root). Each is #{ name (() for the unnamed one), paths, options } where options are rsync::snapshot's (with `job` set for a named one; add dest_dir when the job has none). A bad var is an error naming the host and the var.",
        |ctx: NativeCallContext, h: HostRef| -> Result<Array, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let jobs = backup::jobs_of(&h.0).map_err(|e| runtime_error(e, pos))?;
            Ok(jobs
                .into_iter()
                .map(|job| {
                    let mut m = Map::new();
                    m.insert(
                        "name".into(),
                        job.name.clone().map_or(rhai::Dynamic::UNIT, Into::into),
                    );
                    m.insert(
                        "paths".into(),
                        crate::script::values::from_json(&serde_json::json!(job.paths)),
                    );
                    let mut options = serde_json::to_value(&job).unwrap_or_default();
                    if let Some(o) = options.as_object_mut() {
                        o.remove("paths");
                        if let Some(name) = o.remove("name") {
                            o.insert("job".into(), name);
                        }
                    }
                    m.insert("options".into(), crate::script::values::from_json(&options));
                    rhai::Dynamic::from_map(m)
                })
                .collect())
        }
    );
}

/// `rsync::restore`, with and without options.
fn register_restore(m: &mut Module, ctx: &ScriptCtx) {
    for with_opts in [false, true] {
        let c = ctx.clone();
        let f = move |ctx: &NativeCallContext,
                      snapshot: &str,
                      h: HostRef,
                      path: &str,
                      options: Map|
              -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let to = read_options::<backup::RestoreOpts>(&options, "rsync::restore", pos)?.to;
            let run = c.run()?;
            let snapshot = run.options.root.join(snapshot);
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) && !run.options.check {
                let target = to.as_deref().unwrap_or(path);
                let question = format!(
                    "Restore {path} from {} to {}:{target}? [y/N] ",
                    snapshot.display(),
                    h.0.name
                );
                if !run.ui.confirm(&question) {
                    return Err(runtime_error(
                        "restore not confirmed; nothing was changed",
                        pos,
                    ));
                }
            }
            let controller = run.controller(&h.0);
            backup::restore(
                &controller,
                &h.0,
                &run.options.ssh,
                &snapshot,
                path,
                to.as_deref(),
            )
            .map_err(|e| raise(e, ctx))
        };
        let registration = FuncRegistration::new("restore");
        if with_opts {
            registration
                .with_params_info(["snapshot: &str", "h: Host", "path: &str", "options: Map", "()"])
                .with_comments(["/// rsync::restore(snapshot, h, path) with options: to (another path on the host)."])
                .set_into_module(m, move |ctx: NativeCallContext, snapshot: &str, h: HostRef, path: &str, options: Map| f(&ctx, snapshot, h, path, options));
        } else {
            registration
                .with_params_info(["snapshot: &str", "h: Host", "path: &str", "()"])
                .with_comments(["/// Restores `path` (a file or directory, absolute) from a snapshot directory (as rsync::snapshot returned it) to the host, with modes and owners; asks for confirmation on a terminal."])
                .set_into_module(m, move |ctx: NativeCallContext, snapshot: &str, h: HostRef, path: &str| f(&ctx, snapshot, h, path, Map::new()));
        }
    }
}
