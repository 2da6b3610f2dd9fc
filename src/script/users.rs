//! The `users` module of recipes: local users with their shell, home, groups and sudo
//! rule. The work is in `ops::users`.

use super::glue::{module_function, raise};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::users;
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "ensure",
        ["h: Host", "name: &str", "options: Map", "Map"],
        "Makes the user exist: created with a home (`useradd --create-home`) when missing, else only what differs is changed: `shell` and `home` (absolute paths; a new home is moved), `groups` (supplementary groups the user is added to; none is taken away), `sudo`: true (every command), a list of commands (absolute paths, arguments may follow) false (fleet's rule removed) or absent (the rule is left as it is). The rule is the file /etc/sudoers.d/fleet-user-NAME, written first to a temporary file sudo ignores and installed only when `visudo -cf` accepts it (else the host fails with visudo's message). Each change is one program (useradd, usermod, visudo, mv) through `sudo -n --` when not root. Returns #{ changed, changes: [what changed] }.",
        move |ctx: NativeCallContext,
              h: HostRef,
              name: &str,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let o: users::EnsureOptions =
                read_options(&options, "users::ensure", ctx.call_position())?;
            let done =
                users::ensure(&c.run()?.remote(&h.0), name, &o).map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("changed".into(), (!done.changes.is_empty()).into());
            out.insert(
                "changes".into(),
                Dynamic::from_array(done.changes.into_iter().map(Dynamic::from).collect()),
            );
            Ok(out)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "remove",
        ["h: Host", "name: &str", "options: Map", "bool"],
        "Removes the user (`userdel --remove`: with its home and mail, unless `keep_home: true`) and fleet's sudo rule for it; true when something changed, false when there was no such user.",
        move |ctx: NativeCallContext,
              h: HostRef,
              name: &str,
              options: Map|
              -> Result<bool, Box<EvalAltResult>> {
            let o: users::RemoveOptions =
                read_options(&options, "users::remove", ctx.call_position())?;
            users::remove(&c.run()?.remote(&h.0), name, o).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "lock",
        ["h: Host", "name: &str", "bool"],
        "Locks the user's password (`passwd -l`; logins with an SSH key still work); true when it was not locked yet. A missing user is an error.",
        move |ctx: NativeCallContext, h: HostRef, name: &str| -> Result<bool, Box<EvalAltResult>> {
            users::lock(&c.run()?.remote(&h.0), name).map_err(|f| raise(f, &ctx))
        }
    );
    m
}
