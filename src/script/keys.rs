//! The `keys` module of recipes: SSH access from the project's access.toml, per host;
//! the work is in `ops::access`.

use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use crate::ops::access::apply::fetch_keys;
use crate::ops::access::controller::{Step, host_step, prepare};
use crate::ops::access::{KeyFileFn, edit, read_key_file};
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, EvalAltResult, FuncRegistration, Module, NativeCallContext};

fn step(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    h: &HostRef,
    step: Step,
) -> Result<Array, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let run = c.run()?;
    let inventory = super::inventory::current_inventory(c, pos)?;
    let mut prepared = prepare(&run.options.root, &inventory).map_err(|e| runtime_error(e, pos))?;
    prepared.fetch_servers(&|name, files| {
        let host = inventory
            .require(name)
            .map_err(|e| crate::outcome::HostError::new(name, e.to_string()))?;
        fetch_keys(&run.remote(&host), files)
    });
    for w in &prepared.warnings {
        run.ui.event(Some(&h.0.name), &w.to_string());
    }
    let plans = host_step(&run.remote(&h.0), &prepared, &h.0, &run.options.ssh, step)
        .map_err(|f| raise(f, ctx))?;
    let value = rhai::serde::to_dynamic(&plans).map_err(|e| runtime_error(e, pos))?;
    Ok(value.into_array().unwrap_or_default())
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "plan",
        ["h: Host", "Array"],
        "What `keys::apply` would change on the host, from the project's access.toml (read-only): one map per managed account, #{ account, path, added: [#{ owner, fingerprint, comment, options, managed }], removed: [...], changes }. Fails naming file and line when the data is bad, and when the plan would drop the key fleet itself logs in with.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<Array, Box<EvalAltResult>> {
            step(&c, &ctx, &h, Step::Plan)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "apply",
        ["h: Host", "Array"],
        "Writes fleet's block of `authorized_keys` for every managed account of the host (the accounts of its `accounts` var, else the login account, plus those rules name), as `fleet keys apply` does: homes from `getent passwd`, 0600 file, 0700 .ssh, keys outside the block kept; refuses to drop fleet's own key and, after writing the login account's file, logs in over a fresh connection, putting the previous file back when that fails. Keys added and removed (with owners) go to the journal under `keys`. Returns what `keys::plan` returns.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<Array, Box<EvalAltResult>> {
            step(&c, &ctx, &h, Step::Apply)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "groups",
        ["Array"],
        "The group names of the project's access.toml (none without one). Reads only; bad data is an error naming file and line.",
        move |ctx: NativeCallContext| -> Result<Array, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let (text, key_file) = access_text(&run.options.root, pos)?;
            let access = crate::ops::access::Access::parse(&text, &key_file)
                .map_err(|p| runtime_error(edit::EditError::Invalid(p), pos))?;
            Ok(access.groups.into_keys().map(Into::into).collect())
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "grant",
        ["group: &str", "host: &str", "bool"],
        "Gives the access.toml group GROUP the host HOST with a rule `{ group, hosts = HOST }` (comments and layout kept; the edit is read back as `fleet keys` reads it, so a bad one is an error and never a file); an unknown group is an error. False when such a rule is there already. In --check the file is not touched. Then `keys::apply(h)` writes the keys.",
        move |ctx: NativeCallContext,
              group: &str,
              host: &str|
              -> Result<bool, Box<EvalAltResult>> {
            edit_access(
                &c,
                &ctx,
                host,
                &format!("rule for group {group}"),
                |text, key_file| edit::grant_host(text, group, host, key_file),
            )
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "revoke",
        ["host: &str", "bool"],
        "Removes the access.toml rules whose hosts are exactly HOST (a host that goes away). False when there were none. In --check the file is not touched.",
        move |ctx: NativeCallContext, host: &str| -> Result<bool, Box<EvalAltResult>> {
            edit_access(&c, &ctx, host, "rules", |text, _| {
                edit::revoke_host(text, host)
            })
        }
    );
    m
}

/// Reads access.toml, edits it with `edit` and writes it back (not in --check), with
/// the change said for HOST and recorded as a change of this machine.
fn edit_access(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    host: &str,
    what: &str,
    edit: impl FnOnce(&str, &KeyFileFn) -> Result<Option<String>, edit::EditError>,
) -> Result<bool, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let run = c.run()?;
    let path = run.options.root.join("access.toml");
    let (text, key_file) = access_text(&run.options.root, pos)?;
    let Some(edited) = edit(&text, &key_file).map_err(|e| runtime_error(e, pos))? else {
        return Ok(false);
    };
    if run.options.check {
        run.ui.out(
            Some(host),
            &format!("would change access.toml: {what} of {host}"),
        );
    } else {
        crate::ops::localfs::write_local(&path, edited.as_bytes())
            .map_err(|e| runtime_error(format!("cannot write access.toml: {e}"), pos))?;
        run.note_local_change(&format!("write access.toml ({what} of {host})"));
    }
    Ok(true)
}

/// The text of the project's access.toml ("" when there is none) and its key-file reader.
#[allow(clippy::type_complexity)]
fn access_text(
    root: &std::path::Path,
    pos: rhai::Position,
) -> Result<
    (
        String,
        impl Fn(&str) -> Option<(String, Result<String, crate::ops::access::KeyFileError>)>,
    ),
    Box<EvalAltResult>,
> {
    let text = match std::fs::read_to_string(root.join("access.toml")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(runtime_error(format!("cannot read access.toml: {e}"), pos)),
    };
    let root = root.to_path_buf();
    Ok((text, move |name: &str| read_key_file(&root, name)))
}
