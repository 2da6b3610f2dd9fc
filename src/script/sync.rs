//! `h.sync(local_dir, remote_dir, #{ delete, exclude, mode })`: the glue of `ops::sync`.

use super::glue::{function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::inventory::Connection;
use crate::ops::sync::{self, SyncOpts};
use crate::recipe::engine::ScriptCtx;
use rhai::{EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn run_sync(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    h: HostRef,
    local_dir: &str,
    remote_dir: &str,
    options: Map,
) -> Res<Map> {
    let pos = ctx.call_position();
    let opts: SyncOpts = read_options(&options, "sync", pos)?;
    opts.check().map_err(|e| runtime_error(e, pos))?;
    sync::check_remote_dir(remote_dir).map_err(|e| runtime_error(e, pos))?;
    let run = c.run()?;
    let full = crate::ops::local::resolve(&run.options.root, local_dir)
        .map_err(|e| runtime_error(e, pos))?;
    if !full.is_dir() {
        return Err(runtime_error(
            format!("{local_dir} is not a directory of the project"),
            pos,
        ));
    }
    let via = match h.0.connection {
        Connection::Local => None,
        Connection::Ssh => {
            let control = run.control_socket(&h.0).map_err(|f| raise(f, ctx))?;
            let target = crate::ops::ssh::target_for(&h.0, &run.options.ssh);
            Some(crate::ops::rsync::controller_ssh_with(
                &target,
                control.as_deref(),
            ))
        }
    };
    let local = full.display().to_string();
    let args_for =
        |dry_run: bool| sync::sync_args(&local, remote_dir, via.as_ref(), &opts, dry_run);
    let shown = format!(
        "{}/ to {}:{}/",
        local_dir.trim_end_matches('/'),
        h.0.name,
        remote_dir.trim_end_matches('/')
    );
    let result = sync::sync(&run.controller(&h.0), &args_for, &shown).map_err(|f| raise(f, ctx))?;
    let value = serde_json::to_value(&result).unwrap_or_default();
    Ok(crate::script::values::from_json(&value)
        .try_cast::<Map>()
        .unwrap_or_default())
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    function!(
        &mut m,
        "sync",
        [
            "h: Host",
            "local_dir: &str",
            "remote_dir: &str",
            "options: Map",
            "Map"
        ],
        "Makes `remote_dir` (absolute) on the host hold the content of the project directory `local_dir`, with one rsync run on this machine over the host's existing SSH connection (no login of its own; plain local rsync for a local host). Files are compared by size and time, written with the local modes and times as the login user (not through sudo: sync to a directory the user may write). Changed only when something differed. Options: delete (remove files the local directory does not have), exclude ([\"*.tmp\", \"/cache/\"], rsync patterns), mode (rsync --chmod, \"D755,F644\"). Under --check nothing is written: rsync runs with --dry-run and the names that would change are printed (`+ new`, `~ updated`, `- deleted`). Returns #{ changed, created, updated, deleted } (names relative to the directory).",
        move |ctx: NativeCallContext,
              h: HostRef,
              local_dir: &str,
              remote_dir: &str,
              options: Map|
              -> Res<Map> { run_sync(&c, &ctx, h, local_dir, remote_dir, options) }
    );
    let c = ctx.clone();
    function!(
        &mut m,
        "sync",
        ["h: Host", "local_dir: &str", "remote_dir: &str", "Map"],
        "sync(h, local_dir, remote_dir, #{}).",
        move |ctx: NativeCallContext, h: HostRef, local_dir: &str, remote_dir: &str| -> Res<Map> {
            run_sync(&c, &ctx, h, local_dir, remote_dir, Map::new())
        }
    );
    m
}
