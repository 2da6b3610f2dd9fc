//! The `keys` module of recipes: SSH access from the project's access.toml, per host;
//! the work is in `ops::access`.

use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use crate::ops::access::apply::fetch_keys;
use crate::ops::access::controller::{Step, host_step, prepare};
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
    let mut prepared =
        prepare(&run.options.root, &run.inventory).map_err(|e| runtime_error(e, pos))?;
    prepared.fetch_servers(&|name, files| {
        let host = run
            .inventory
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
    m
}
