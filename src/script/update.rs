//! The `apt` module and `reboot`/`record` of recipes; the work is in `exec::update`.

use super::files::runtime_error;
use super::host::{HostRef, function, module_function, raise};
use super::values::Options;
use crate::ops::apt;
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext};
use std::time::Duration;

/// Default reboot: systemd's, else SysV's.
pub const REBOOT_COMMAND: &str = "systemctl reboot || shutdown -r now";
/// Default boot marker: changes with every boot of a Linux kernel.
pub const BOOT_MARKER: &str = "cat /proc/sys/kernel/random/boot_id";

pub fn apt_module(ctx: &ScriptCtx) -> Module {
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
            let o = Options::new(&options, "apt::pending", &["refresh"], ctx.call_position())?;
            let run = c.run()?;
            let pending = apt::pending(&run.remote(&h.0), o.bool("refresh")?.unwrap_or(true))
                .map_err(|f| raise(f, &ctx))?;
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
        "reboot_required",
        ["h: Host", "bool"],
        "Whether an installed update asked for a reboot (/var/run/reboot-required).",
        move |ctx: NativeCallContext, h: HostRef| -> Result<bool, Box<EvalAltResult>> {
            apt::reboot_required(&c.run()?.remote(&h.0)).map_err(|f| raise(f, &ctx))
        }
    );
    m
}

pub fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    function!(
        &mut m,
        "reboot",
        ["h: Host", "options: Map", "float"],
        "Reboots the host and waits until it answers again with another boot: `command` (default `systemctl reboot || shutdown -r now`, with sudo when not root), `marker` (a command whose output changes with each boot; default the kernel's boot id), `timeout` (seconds, default 600), `interval` (default 5). Returns the seconds it took; a host that does not come back ends unreachable. In --check it is printed.",
        move |ctx: NativeCallContext,
              h: HostRef,
              options: Map|
              -> Result<rhai::FLOAT, Box<EvalAltResult>> {
            let o = Options::new(
                &options,
                "reboot",
                &["command", "marker", "timeout", "interval"],
                ctx.call_position(),
            )?;
            let command = o
                .string("command")?
                .unwrap_or_else(|| REBOOT_COMMAND.into());
            let marker = o.string("marker")?.unwrap_or_else(|| BOOT_MARKER.into());
            let timeout = o.seconds("timeout")?.unwrap_or(Duration::from_secs(600));
            let interval = o.seconds("interval")?.unwrap_or(Duration::from_secs(5));
            let run = c.run()?;
            let took = apt::reboot(&run.remote(&h.0), &command, &marker, timeout, interval)
                .map_err(|f| raise(f, &ctx))?;
            Ok(took.as_secs_f64())
        }
    );
    let c = ctx.clone();
    function!(
        &mut m,
        "record",
        ["h: Host", "key: &str", "value: Dynamic", "()"],
        "Keeps `value` under `key` in the host's results of this run's journal record (what `fleet status` and `fleet report` read back, e.g. `record(h, \"update\", #{ pending: 3 })`).",
        move |ctx: NativeCallContext,
              h: HostRef,
              key: &str,
              value: Dynamic|
              -> Result<(), Box<EvalAltResult>> {
            let json: serde_json::Value = rhai::serde::from_dynamic(&value)
                .map_err(|e| runtime_error(format!("record: {e}"), ctx.call_position()))?;
            c.run()?.update(&h.0.name, |r| {
                r.results.insert(key.to_string(), json);
            });
            Ok(())
        }
    );
    m
}
