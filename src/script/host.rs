//! `hosts()`, `host()` and the `Host` type: what a recipe knows about a host and the
//! commands it runs there. Every call goes through `Run::command`.

use super::values::{Options, from_json};
use crate::exec::run::{CmdResult, CommandOpts, HostFailure};
use crate::inventory::ResolvedHost;
use crate::recipe::engine::ScriptCtx;
use rhai::{
    Array, Dynamic, EvalAltResult, FuncRegistration, ImmutableString, Map, Module,
    NativeCallContext,
};
use std::sync::Arc;

/// A host as a recipe holds it: cheap to clone, read-only.
#[derive(Debug, Clone)]
pub struct HostRef(pub Arc<ResolvedHost>);

/// Registers a function with its signature and doc comment for `fleet api`.
macro_rules! function {
    ($module:expr, $name:expr, [$($param:expr),*], $doc:expr, $f:expr) => {
        FuncRegistration::new($name)
            .with_params_info([$($param),*])
            .with_comments([concat!("/// ", $doc)])
            .in_global_namespace()
            .set_into_module($module, $f)
    };
}
pub(crate) use function;

pub fn raise(failure: HostFailure, ctx: &NativeCallContext) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(failure),
        ctx.call_position(),
    ))
}

fn usage_error(e: crate::error::Error, ctx: &NativeCallContext) -> Box<EvalAltResult> {
    let text = match &e {
        crate::error::Error::Usage {
            message,
            help: Some(h),
        } => format!("{message} ({h})"),
        other => other.to_string(),
    };
    Box::new(EvalAltResult::ErrorRuntime(
        text.into(),
        ctx.call_position(),
    ))
}

const RUN_OPTIONS: &[&str] = &["allow_fail", "timeout", "changed"];

fn command_opts(
    map: &Map,
    name: &str,
    read_only: bool,
    ctx: &NativeCallContext,
) -> Result<CommandOpts, Box<EvalAltResult>> {
    let o = Options::new(map, name, RUN_OPTIONS, ctx.call_position())?;
    Ok(CommandOpts {
        allow_fail: o.bool("allow_fail")?.unwrap_or(false),
        timeout: o.seconds("timeout")?,
        read_only,
        changed: o.bool("changed")?,
    })
}

pub fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();

    let c = ctx.clone();
    function!(
        &mut m,
        "hosts",
        ["pattern: &str", "Array"],
        "Hosts matching an Ansible-style pattern (`web`, `web-*`, `web:&prod`, `all:!db-1`), narrowed by --limit, in inventory order.",
        move |ctx: NativeCallContext, pattern: &str| -> Result<Array, Box<EvalAltResult>> {
            let run = c.run()?;
            let hosts = run.select(pattern).map_err(|e| usage_error(e, &ctx))?;
            Ok(hosts
                .into_iter()
                .map(|h| Dynamic::from(HostRef(Arc::new(h))))
                .collect())
        }
    );
    let c = ctx.clone();
    function!(
        &mut m,
        "hosts",
        ["Array"],
        "Every host of the inventory, narrowed by --limit.",
        move |ctx: NativeCallContext| -> Result<Array, Box<EvalAltResult>> {
            let run = c.run()?;
            let hosts = run.select("all").map_err(|e| usage_error(e, &ctx))?;
            Ok(hosts
                .into_iter()
                .map(|h| Dynamic::from(HostRef(Arc::new(h))))
                .collect())
        }
    );
    let c = ctx.clone();
    function!(
        &mut m,
        "host",
        ["name: &str", "Host"],
        "The inventory host called `name`; an error names the closest host when there is none.",
        move |ctx: NativeCallContext, name: &str| -> Result<HostRef, Box<EvalAltResult>> {
            let run = c.run()?;
            let h = run.host(name).map_err(|e| usage_error(e, &ctx))?;
            Ok(HostRef(Arc::new(h)))
        }
    );

    m.set_getter_fn("name", |h: &mut HostRef| {
        Ok(ImmutableString::from(h.0.name.as_str()))
    });
    m.set_getter_fn("address", |h: &mut HostRef| {
        Ok(ImmutableString::from(h.0.address.as_str()))
    });
    m.set_getter_fn("port", |h: &mut HostRef| {
        Ok(h.0
            .port
            .map_or(Dynamic::UNIT, |p| Dynamic::from(p as rhai::INT)))
    });
    m.set_getter_fn("user", |h: &mut HostRef| {
        Ok(h.0.user.clone().map_or(Dynamic::UNIT, Dynamic::from))
    });
    m.set_getter_fn("groups", |h: &mut HostRef| {
        Ok(h.0
            .groups
            .iter()
            .map(|g| Dynamic::from(g.clone()))
            .collect::<Array>())
    });
    m.set_getter_fn("vars", |h: &mut HostRef| {
        Ok(h.0
            .vars
            .iter()
            .map(|(k, v)| (k.as_str().into(), from_json(v)))
            .collect::<Map>())
    });
    function!(
        &mut m,
        "to_string",
        ["h: Host", "String"],
        "The host's name.",
        |h: &mut HostRef| h.0.name.clone()
    );
    function!(
        &mut m,
        "to_debug",
        ["h: Host", "String"],
        "The host's name and address.",
        |h: &mut HostRef| { format!("Host({} at {})", h.0.name, h.0.address) }
    );

    for (name, read_only, doc) in [
        (
            "run",
            false,
            "Runs a shell command on the host and returns a CmdResult. A non-zero exit raises an error naming host, command, exit code and stderr, unless `#{ allow_fail: true }`. Options: allow_fail, timeout (seconds), changed (false: does not count as a change). In --check it is printed, not run.",
        ),
        (
            "read",
            true,
            "Runs a read-only query on the host: executed in --check too, and never counts as a change. Same options as run().",
        ),
    ] {
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["h: Host", "cmd: &str", "CmdResult"])
            .with_comments([format!("/// {doc}")])
            .in_global_namespace()
            .set_into_module(
                &mut m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      cmd: &str|
                      -> Result<CmdResult, Box<EvalAltResult>> {
                    let run = c.run()?;
                    let opts = CommandOpts {
                        read_only,
                        ..CommandOpts::default()
                    };
                    run.command(&h.0, cmd, opts).map_err(|f| raise(f, &ctx))
                },
            );
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["h: Host", "cmd: &str", "options: Map", "CmdResult"])
            .with_comments([format!("/// {doc}")])
            .in_global_namespace()
            .set_into_module(
                &mut m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      cmd: &str,
                      options: Map|
                      -> Result<CmdResult, Box<EvalAltResult>> {
                    let run = c.run()?;
                    let opts = command_opts(&options, name, read_only, &ctx)?;
                    run.command(&h.0, cmd, opts).map_err(|f| raise(f, &ctx))
                },
            );
    }
    let c = ctx.clone();
    function!(
        &mut m,
        "changed",
        ["h: Host", "()"],
        "Marks the host as changed in this run (for work a recipe detects itself).",
        move |h: HostRef| -> Result<(), Box<EvalAltResult>> {
            c.run()?.mark_changed(&h.0.name);
            Ok(())
        }
    );

    // CmdResult
    m.set_getter_fn("code", |r: &mut CmdResult| Ok(r.code));
    m.set_getter_fn("stdout", |r: &mut CmdResult| Ok(r.stdout.clone()));
    m.set_getter_fn("stderr", |r: &mut CmdResult| Ok(r.stderr.clone()));
    m.set_getter_fn("ok", |r: &mut CmdResult| Ok(r.code == 0));
    m.set_getter_fn("changed", |r: &mut CmdResult| Ok(r.changed));
    m.set_getter_fn("executed", |r: &mut CmdResult| Ok(r.executed));
    function!(
        &mut m,
        "to_string",
        ["r: CmdResult", "String"],
        "The command's stdout without the final newline.",
        |r: &mut CmdResult| { r.stdout.trim_end_matches('\n').to_string() }
    );

    // HostError, as caught by `try { … } catch (e) { … }`
    m.set_getter_fn("host", |e: &mut HostFailure| Ok(e.host.clone()));
    m.set_getter_fn("message", |e: &mut HostFailure| Ok(e.message.clone()));
    m.set_getter_fn("command", |e: &mut HostFailure| {
        Ok(e.command.clone().map_or(Dynamic::UNIT, Dynamic::from))
    });
    m.set_getter_fn("code", |e: &mut HostFailure| {
        Ok(e.code
            .map_or(Dynamic::UNIT, |c| Dynamic::from(c as rhai::INT)))
    });
    m.set_getter_fn("stderr", |e: &mut HostFailure| Ok(e.stderr.clone()));
    m.set_getter_fn("unreachable", |e: &mut HostFailure| Ok(e.unreachable));
    function!(
        &mut m,
        "to_string",
        ["e: HostError", "String"],
        "The error message.",
        |e: &mut HostFailure| e.message.clone()
    );
    m
}
