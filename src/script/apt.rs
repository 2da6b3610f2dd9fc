//! The `apt` module of recipes: pending updates, upgrade, install, whether a reboot is
//! due; the work is in `ops::apt`.

use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::apt;
use crate::recipe::engine::ScriptCtx;
use rhai::{EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext};

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "pending",
        ["h: Host", "options: Map", "Map"],
        "The host's pending updates from apt's simulated upgrade: #{ count, security, packages: [#{ name, from, to, security }] }; `refresh: true` (default) runs `apt-get update` first. A host without apt-get fails with its OS named.",
        move |ctx: NativeCallContext,
              h: HostRef,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let o: apt::PendingOpts = read_options(&options, "apt::pending", ctx.call_position())?;
            let run = c.run()?;
            let pending = apt::pending(&run.remote(&h.0), o.refresh).map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("count".into(), (pending.len() as INT).into());
            out.insert(
                "security".into(),
                (pending.iter().filter(|p| p.security).count() as INT).into(),
            );
            let list = rhai::serde::to_dynamic(&pending)
                .map_err(|e| runtime_error(e.to_string(), ctx.call_position()))?;
            out.insert("packages".into(), list);
            Ok(out)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "upgrade",
        ["h: Host", "()"],
        "Upgrades every package without questions (local changes to config files are kept); the output streams to the progress line and the log.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<(), Box<EvalAltResult>> {
            apt::upgrade(&c.run()?.remote(&h.0)).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "install",
        ["h: Host", "packages: Array", "bool"],
        "Installs the packages of the list that are not installed yet (`apt-get update` first), without recommends or questions; true when it installed something. Through sudo when the login user is not root, as `sudo -n -- apt-get …` (no shell), so a sudoers rule for /usr/bin/apt-get is enough. A name that is not a Debian package name is an error. In --check the commands are shown.",
        move |ctx: NativeCallContext,
              h: HostRef,
              packages: rhai::Array|
              -> Result<bool, Box<EvalAltResult>> {
            let names = packages
                .into_iter()
                .map(|p| {
                    p.into_immutable_string()
                        .map(|s| s.to_string())
                        .map_err(|t| {
                            runtime_error(
                                format!("apt::install: package names are strings, not {t}"),
                                ctx.call_position(),
                            )
                        })
                })
                .collect::<Result<Vec<String>, _>>()?;
            apt::install(&c.run()?.remote(&h.0), &names).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "reboot_required",
        ["h: Host", "bool"],
        "Whether an installed update asked for a reboot (/var/run/reboot-required).",
        move |ctx: NativeCallContext, h: HostRef| -> Result<bool, Box<EvalAltResult>> {
            apt::reboot_required(&c.run()?.remote(&h.0)).map_err(|f| raise(f, &ctx))
        }
    );
    m
}
