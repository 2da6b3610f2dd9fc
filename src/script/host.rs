//! `hosts()`, `host()` and the `Host` type: what a recipe knows about a host and the
//! commands it runs there. Every call goes through `Run::command` (shell text) or
//! `Run::program` (`[program, args…]`).

use super::glue::{function, getter, ok, raise, runtime_error, usage_error};
use super::values::{from_json, read_options};
use crate::inventory::ResolvedHost;
use crate::ops::remote::{CmdResult, CommandOpts, RunOptions, WaitOptions};
use crate::ops::shell::Argv;
use crate::outcome::HostError;
use crate::recipe::engine::ScriptCtx;
use rhai::{
    Array, Dynamic, EvalAltResult, FuncRegistration, ImmutableString, Map, Module,
    NativeCallContext,
};
use std::sync::Arc;

/// A host as a recipe holds it: cheap to clone, read-only.
#[derive(Debug, Clone)]
pub(crate) struct HostRef(pub Arc<ResolvedHost>);

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    selection(&mut m, ctx);
    identity(&mut m);
    membership(&mut m);
    commands(&mut m, ctx);
    wait_for_ssh(&mut m, ctx);
    helpers(&mut m, ctx);
    cmd_output(&mut m);
    cmd_status(&mut m);
    host_error(&mut m);
    m
}

/// `hosts()`, `hosts(pattern)`, `host(name)`.
fn selection(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
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
        m,
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
        m,
        "host",
        ["name: &str", "Host"],
        "The inventory host called `name`; an error names the closest host when there is none.",
        move |ctx: NativeCallContext, name: &str| -> Result<HostRef, Box<EvalAltResult>> {
            let run = c.run()?;
            let h = run.host(name).map_err(|e| usage_error(e, &ctx))?;
            Ok(HostRef(Arc::new(h)))
        }
    );
}

/// `Host` properties: where and how it is reached.
fn identity(m: &mut Module) {
    getter!(
        m,
        "Host",
        "name",
        "String",
        "The inventory name.",
        |h: &mut HostRef| { ok(ImmutableString::from(h.0.name.as_str())) }
    );
    getter!(
        m,
        "Host",
        "address",
        "String",
        "The address commands reach it at.",
        |h: &mut HostRef| { ok(ImmutableString::from(h.0.address.as_str())) }
    );
    getter!(
        m,
        "Host",
        "port",
        "int or ()",
        "The SSH port, if the inventory sets one.",
        |h: &mut HostRef| {
            ok(h.0
                .port
                .map_or(Dynamic::UNIT, |p| Dynamic::from(p as rhai::INT)))
        }
    );
    getter!(
        m,
        "Host",
        "user",
        "String or ()",
        "The login user, if the inventory sets one.",
        |h: &mut HostRef| { ok(h.0.user.clone().map_or(Dynamic::UNIT, Dynamic::from)) }
    );
}

/// `Host` groups and vars, and how it prints.
fn membership(m: &mut Module) {
    getter!(
        m,
        "Host",
        "groups",
        "Array",
        "Every group the host is in, parents first, without `all`.",
        |h: &mut HostRef| {
            ok(h.0
                .groups
                .iter()
                .map(|g| Dynamic::from(g.clone()))
                .collect::<Array>())
        }
    );
    getter!(
        m,
        "Host",
        "vars",
        "Map",
        "Variables merged all < groups (parents first) < host. A missing key reads as `()`: `h.vars.port ?? 8080` (as in every map).",
        |h: &mut HostRef| {
            ok(h.0
                .vars
                .iter()
                .map(|(k, v)| (k.as_str().into(), from_json(v)))
                .collect::<Map>())
        }
    );
    function!(
        m,
        "to_string",
        ["h: Host", "String"],
        "The host's name.",
        |h: &mut HostRef| h.0.name.clone()
    );
    function!(
        m,
        "to_debug",
        ["h: Host", "String"],
        "The host's name and address.",
        |h: &mut HostRef| { format!("Host({} at {})", h.0.name, h.0.address) }
    );
}

/// `h.run`, `h.read`, `h.sudo`, each with and without options.
fn commands(m: &mut Module, ctx: &ScriptCtx) {
    for (name, base, doc) in [
        (
            "run",
            CommandOpts::default(),
            "Runs a shell command on the host and returns a CmdResult. A non-zero exit raises an error naming host, command, exit code and stderr, unless `#{ allow_fail: true }`. Options: allow_fail, timeout (seconds; the command is killed on the host too), changed (false: does not count as a change), sudo. In --check it is printed, not run.",
        ),
        (
            "read",
            CommandOpts {
                read_only: true,
                ..CommandOpts::default()
            },
            "Runs a read-only query on the host: executed in --check too, and never counts as a change. Same options as run().",
        ),
        (
            "sudo",
            CommandOpts {
                sudo: true,
                ..CommandOpts::default()
            },
            "Runs a command through `sudo -n sh -c '…'`, like run() (a shell: the host's sudoers rule must allow `sh`, in practice everything; apt::install and ufw::apply run their one-program commands without a shell). A host where sudo would ask for a password fails with \"sudo needs a password on HOST\", one whose rule allows only some programs with \"sudo on HOST does not allow `…` (allowed: …)\". Same options as run().",
        ),
    ] {
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["h: Host", "cmd: &str", "CmdResult"])
            .with_comments([format!("/// {doc}")])
            .in_global_namespace()
            .set_into_module(
                m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      cmd: &str|
                      -> Result<CmdResult, Box<EvalAltResult>> {
                    let run = c.run()?;
                    run.command(&h.0, cmd, base).map_err(|f| raise(f, &ctx))
                },
            );
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["h: Host", "cmd: &str", "options: Map", "CmdResult"])
            .with_comments([format!("/// {doc}")])
            .in_global_namespace()
            .set_into_module(
                m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      cmd: &str,
                      options: Map|
                      -> Result<CmdResult, Box<EvalAltResult>> {
                    let run = c.run()?;
                    let opts = read_options::<RunOptions>(&options, name, ctx.call_position())?
                        .apply(base);
                    run.command(&h.0, cmd, opts).map_err(|f| raise(f, &ctx))
                },
            );
        let argv_doc = format!(
            "/// {name}(h, [program, args…]) and {name}(h, [program, args…], options): one program with its arguments and no shell (no pipes, redirections or `&&`); through sudo it runs as `sudo -n -- PROGRAM ARGS…`, so a sudoers rule that names the program is enough. Otherwise like {name}(h, cmd)."
        );
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["h: Host", "argv: Array", "CmdResult"])
            .with_comments([argv_doc.clone()])
            .in_global_namespace()
            .set_into_module(
                m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      argv: Array|
                      -> Result<CmdResult, Box<EvalAltResult>> {
                    let argv = argv_of(argv, name, &ctx)?;
                    let run = c.run()?;
                    run.program(&h.0, &argv, base).map_err(|f| raise(f, &ctx))
                },
            );
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["h: Host", "argv: Array", "options: Map", "CmdResult"])
            .with_comments([argv_doc])
            .in_global_namespace()
            .set_into_module(
                m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      argv: Array,
                      options: Map|
                      -> Result<CmdResult, Box<EvalAltResult>> {
                    let argv = argv_of(argv, name, &ctx)?;
                    let run = c.run()?;
                    let opts = read_options::<RunOptions>(&options, name, ctx.call_position())?
                        .apply(base);
                    run.program(&h.0, &argv, opts).map_err(|f| raise(f, &ctx))
                },
            );
    }
}

/// A recipe's `[program, args…]` as one program's command line: strings only.
fn argv_of(list: Array, name: &str, ctx: &NativeCallContext) -> Result<Argv, Box<EvalAltResult>> {
    let words = list
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            w.into_immutable_string()
                .map(|s| s.to_string())
                .map_err(|t| {
                    runtime_error(
                        format!("{name}(): word {i} of the command is a {t}, not a string"),
                        ctx.call_position(),
                    )
                })
        })
        .collect::<Result<Vec<String>, _>>()?;
    Argv::from_words(words)
        .map_err(|e| runtime_error(format!("{name}(): {e}"), ctx.call_position()))
}

/// `h.wait_for_ssh()`, with and without options.
fn wait_for_ssh(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "wait_for_ssh",
        ["h: Host", "options: Map", "()"],
        "Waits until the host accepts an SSH login (a VM that is still booting), trying every `interval` seconds (default 3) for up to `timeout` seconds (default 120); the host ends unreachable if it never answers. Local hosts are ready at once.",
        move |ctx: NativeCallContext, h: HostRef, options: Map| -> Result<(), Box<EvalAltResult>> {
            let o: WaitOptions = read_options(&options, "wait_for_ssh", ctx.call_position())?;
            c.run()?
                .wait_ready(&h.0, o.timeout, o.interval)
                .map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "wait_for_ssh",
        ["h: Host", "()"],
        "wait_for_ssh(h, #{}) with the default timeout of 120 s and interval of 3 s.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<(), Box<EvalAltResult>> {
            let o = WaitOptions::default();
            c.run()?
                .wait_ready(&h.0, o.timeout, o.interval)
                .map_err(|f| raise(f, &ctx))
        }
    );
}

/// `quote`, `fail`, `changed`.
fn helpers(m: &mut Module, ctx: &ScriptCtx) {
    function!(
        m,
        "quote",
        ["text: &str", "String"],
        "Quotes text for a POSIX shell, for building commands from values: `h.run(\"rm -f \" + quote(path))`.",
        |text: &str| crate::ops::shell::quote(text)
    );
    function!(
        m,
        "fail",
        ["h: Host", "message: &str", "()"],
        "Fails the host with `message`: the recap shows it failed and the run exits with 3, as when one of its commands fails. For checks a recipe makes itself (`if !ok { fail(h, \"…\") }`).",
        |ctx: NativeCallContext, h: HostRef, message: &str| -> Result<(), Box<EvalAltResult>> {
            Err(raise(HostError::new(&h.0.name, message.to_string()), &ctx))
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "changed",
        ["h: Host", "()"],
        "Marks the host as changed in this run (for work a recipe detects itself).",
        move |h: HostRef| -> Result<(), Box<EvalAltResult>> {
            c.run()?.mark_changed(&h.0.name);
            Ok(())
        }
    );
}

/// `CmdResult` exit code and output.
fn cmd_output(m: &mut Module) {
    getter!(
        m,
        "CmdResult",
        "code",
        "int",
        "Exit code (0 in --check for a command that was only printed).",
        |r: &mut CmdResult| ok(r.code)
    );
    getter!(
        m,
        "CmdResult",
        "stdout",
        "String",
        "Everything the command wrote to stdout. Output over fleet.toml's `output_limit` (default 1 MiB) is not kept: reading `stdout` of such a command is an error (write big output to a file on the host and read the part you need, or raise the limit).",
        |r: &mut CmdResult| {
            if r.stdout_dropped > 0 {
                return Err(format!(
                    "this command wrote {} bytes to stdout, more than fleet.toml's output_limit keeps; only its head and tail were kept (`.stdout_kept` has them): write big output to a file on the host and read what you need, or raise output_limit",
                    r.stdout.len() as u64 + r.stdout_dropped
                )
                .into());
            }
            ok(r.stdout.clone())
        }
    );
    getter!(
        m,
        "CmdResult",
        "stdout_kept",
        "String",
        "What fleet kept of stdout: all of it, or its head and tail with a marker line between them when it was over `output_limit`.",
        |r: &mut CmdResult| ok(r.stdout.clone())
    );
    getter!(
        m,
        "CmdResult",
        "stderr",
        "String",
        "Everything the command wrote to stderr.",
        |r: &mut CmdResult| ok(r.stderr.clone())
    );
}

/// `CmdResult` flags and how it prints.
fn cmd_status(m: &mut Module) {
    getter!(
        m,
        "CmdResult",
        "ok",
        "bool",
        "True when the exit code is 0.",
        |r: &mut CmdResult| ok(r.code == 0)
    );
    getter!(
        m,
        "CmdResult",
        "changed",
        "bool",
        "True when the command counts as a change of the host.",
        |r: &mut CmdResult| ok(r.changed)
    );
    getter!(
        m,
        "CmdResult",
        "executed",
        "bool",
        "False when --check only printed the command.",
        |r: &mut CmdResult| ok(r.executed)
    );
    function!(
        m,
        "to_string",
        ["r: CmdResult", "String"],
        "The command's stdout without the final newline.",
        |r: &mut CmdResult| { r.stdout.trim_end_matches('\n').to_string() }
    );
}

/// `HostError`, as caught by `try { … } catch (e) { … }`.
fn host_error(m: &mut Module) {
    getter!(
        m,
        "HostError",
        "host",
        "String",
        "The host that failed.",
        |e: &mut HostError| ok(e.host.clone())
    );
    getter!(
        m,
        "HostError",
        "message",
        "String",
        "What went wrong, with the stderr tail.",
        |e: &mut HostError| ok(e.message.clone())
    );
    getter!(
        m,
        "HostError",
        "command",
        "String or ()",
        "The command that failed.",
        |e: &mut HostError| { ok(e.command.clone().map_or(Dynamic::UNIT, Dynamic::from)) }
    );
    getter!(
        m,
        "HostError",
        "code",
        "int or ()",
        "Its exit code, when it ran to the end.",
        |e: &mut HostError| {
            ok(e.code
                .map_or(Dynamic::UNIT, |c| Dynamic::from(c as rhai::INT)))
        }
    );
    getter!(
        m,
        "HostError",
        "stderr",
        "String",
        "Its whole stderr.",
        |e: &mut HostError| ok(e.stderr.clone())
    );
    getter!(
        m,
        "HostError",
        "unreachable",
        "bool",
        "True when the host could not be reached at all.",
        |e: &mut HostError| ok(e.unreachable)
    );
    function!(
        m,
        "to_string",
        ["e: HostError", "String"],
        "The error message.",
        |e: &mut HostError| e.message.clone()
    );
}
