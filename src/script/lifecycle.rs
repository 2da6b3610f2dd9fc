//! `reboot` and `record`: a host's lifecycle within a run (the reboot wait is in
//! `ops::apt`, the record goes to the run's journal).

use super::glue::{function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::apt;
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
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
            let o: apt::RebootOpts = read_options(&options, "reboot", ctx.call_position())?;
            let run = c.run()?;
            let took = apt::reboot(
                &run.remote(&h.0),
                &o.command,
                &o.marker,
                o.timeout,
                o.interval,
            )
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
