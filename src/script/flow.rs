//! `each(hosts, |h| …)` and `step(name, || …)`: how a recipe fans out and names its work.

use super::glue::function;
use super::host::HostRef;
use crate::exec::current;
use crate::exec::fanout::{HostEnd, fan_out_serial, fan_out_with};
use crate::exec::max_fail::MaxFail;
use crate::outcome::HostStatus;
use crate::recipe::diagnostic::{Cause, locate};
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, Dynamic, EvalAltResult, FnPtr, FuncRegistration, Module, NativeCallContext};
use std::sync::Arc;

fn to_hosts(list: Array, ctx: &NativeCallContext) -> Result<Vec<HostRef>, Box<EvalAltResult>> {
    list.into_iter()
        .map(|d| {
            let type_name = d.type_name().to_string();
            d.try_cast::<HostRef>().ok_or_else(|| {
                Box::new(EvalAltResult::ErrorRuntime(
                    format!("each() needs an array of hosts, but it holds a {type_name}").into(),
                    ctx.call_position(),
                ))
            })
        })
        .collect()
}

/// Calls `f(h)` for every host on the worker pool and collects the values.
/// How `each` fans out, from its options map.
#[derive(Debug, Default, serde::Deserialize)]
struct EachOpts {
    forks: Option<std::num::NonZeroUsize>,
    serial: Option<MaxFail>,
    max_fail: Option<MaxFail>,
}

fn each_opts(options: &rhai::Map, pos: rhai::Position) -> Result<EachOpts, Box<EvalAltResult>> {
    super::values::read_options(options, "each", pos)
}

fn each_host(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    hosts: Vec<HostRef>,
    opts: EachOpts,
    f: &FnPtr,
) -> Result<Array, Box<EvalAltResult>> {
    let run = c.run()?;
    let forks = opts.forks.map_or(run.options.forks, |n| n.get());
    let resolved: Vec<_> = hosts.iter().map(|h| (*h.0).clone()).collect();
    let source = ctx.call_source().unwrap_or_default().to_string();
    let work = |host: &crate::inventory::ResolvedHost| {
        let arg = Dynamic::from(HostRef(Arc::new(host.clone())));
        f.call_within_context::<Dynamic>(ctx, (arg,))
            .map_err(|err| {
                let located = locate(&err, &source, &c.sources);
                let at = located
                    .location
                    .as_ref()
                    .map(|l| format!(" (at {l})"))
                    .unwrap_or_default();
                match &located.cause {
                    Cause::Host(f) => HostEnd {
                        status: f.status(),
                        message: format!("{}{at}", f.message),
                    },
                    Cause::Thrown(m) => HostEnd {
                        status: HostStatus::Failed,
                        message: format!("{m}{at}"),
                    },
                    Cause::Script(_) if crate::exec::interrupt::aborted() => HostEnd {
                        status: HostStatus::Failed,
                        message: "interrupted".to_string(),
                    },
                    // A bug met on this host (bad index, unknown function) fails this
                    // host like a failed command: the others go on, the recap lists it.
                    Cause::Script(m) => HostEnd {
                        status: HostStatus::Failed,
                        message: format!("recipe error: {m}{at}"),
                    },
                }
            })
    };
    let results = match opts.serial {
        Some(serial) => {
            let batch_policy = opts
                .max_fail
                .or(run.options.max_fail)
                .unwrap_or(MaxFail::Count(0));
            fan_out_serial(&run, &resolved, forks, serial, batch_policy, work)
        }
        None => fan_out_with(&run, &resolved, forks, work),
    };
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Dynamic::UNIT))
        .collect())
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    each(&mut m, ctx);
    step(&mut m, ctx);
    check_mode(&mut m, ctx);
    m
}

/// `each(hosts, f)`, with options and with `forks` as a number.
fn each(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "each",
        ["hosts: Array", "f: FnPtr", "Array"],
        "Calls `f(h)` for every host, --forks at a time. A host whose closure fails ends failed and the others go on; --max-fail stops starting new hosts. Returns each host's value in host order (() for hosts that failed or were skipped).",
        move |ctx: NativeCallContext,
              hosts: Array,
              f: FnPtr|
              -> Result<Array, Box<EvalAltResult>> {
            let hosts = to_hosts(hosts, &ctx)?;
            each_host(&c, &ctx, hosts, EachOpts::default(), &f)
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "each",
        ["hosts: Array", "options: Map", "f: FnPtr", "Array"],
        "each(hosts, f) with options: forks (the recipe's own parallelism, e.g. 1 for one host after another; --forks on the command line wins); serial (rolling batches: 2 or \"25%\" of the hosts at a time, each batch done before the next); max_fail (per batch with serial, default 0: a batch with more failures stops the rollout and later hosts are skipped, never touched).",
        move |ctx: NativeCallContext,
              hosts: Array,
              options: rhai::Map,
              f: FnPtr|
              -> Result<Array, Box<EvalAltResult>> {
            let opts = each_opts(&options, ctx.call_position())?;
            let hosts = to_hosts(hosts, &ctx)?;
            each_host(&c, &ctx, hosts, opts, &f)
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "each",
        ["pattern: &str", "f: FnPtr", "Array"],
        "Shorthand for `each(hosts(pattern), f)`.",
        move |ctx: NativeCallContext,
              pattern: &str,
              f: FnPtr|
              -> Result<Array, Box<EvalAltResult>> {
            let run = c.run()?;
            let hosts = run.select(pattern).map_err(|e| {
                Box::new(EvalAltResult::ErrorRuntime(
                    e.to_string().into(),
                    ctx.call_position(),
                ))
            })?;
            let hosts = hosts.into_iter().map(|h| HostRef(Arc::new(h))).collect();
            each_host(&c, &ctx, hosts, EachOpts::default(), &f)
        }
    );
}

/// `step(name, f)`.
fn step(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "step",
        ["name: &str", "f: FnPtr", "Dynamic"],
        "Runs `f()` as a named step: the name shows on the host's progress line and in every log record of its commands. Returns what `f` returns.",
        move |ctx: NativeCallContext,
              name: &str,
              f: FnPtr|
              -> Result<Dynamic, Box<EvalAltResult>> {
            let run = c.run()?;
            let host = current::host();
            if run.ui.options.progress && host.is_some() {
                run.ui
                    .host_activity(host.as_deref().unwrap_or_default(), name);
            } else if run.ui.options.verbosity >= 0 {
                run.ui.event(host.as_deref(), &format!("step: {name}"));
            }
            run.tag
                .host_message(host.as_deref(), Some(name), "step started");
            let previous = current::replace_step(Some(name.to_string()));
            let result = f.call_within_context::<Dynamic>(&ctx, ());
            current::replace_step(previous);
            result
        }
    );
}

/// `check_mode()`.
fn check_mode(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "check_mode",
        ["bool"],
        "True when the run was started with --check (commands are printed, not run).",
        move || -> Result<bool, Box<EvalAltResult>> { Ok(c.run()?.options.check) }
    );
}
