//! The `ansible` module of recipes: `ansible::playbook` runs `ansible-playbook` on this
//! machine against fleet's hosts. The inventory, command line and results are
//! `ops::ansible`'s; here the call's private directory is made, the program runs as a
//! local process (its lines on the hosts' progress lines, its output in each host's
//! log and journal record), and each host's result becomes its outcome in the run.

use super::glue::{module_function, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::exec::run::Run;
use crate::inventory::{Connection, ResolvedHost};
use crate::ops::ansible::{self, AnsibleError, Files, InventoryHost, Outcome, PlaybookOptions};
use crate::ops::shell::quote;
use crate::outcome::{CommandRecord, HostStatus};
use crate::recipe::engine::ScriptCtx;
use crate::transport::{CmdOutput, LocalTransport, RunOpts, Stream, Transport};
use rhai::{Array, Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Calls of this process so far, so two calls of one run get two directories.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// The call's private directory under `.fleet/ansible`, removed when dropped.
struct CallDir(PathBuf);

impl Drop for CallDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AnsibleError + '_ {
    move |source| AnsibleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the inventory, extra vars and callback plugin for one call (0700/0600: the
/// inventory names identity files and vars may be private).
fn prepare(
    run: &Run,
    hosts: &[ResolvedHost],
    playbook: PathBuf,
    o: &PlaybookOptions,
) -> Result<(CallDir, Files), AnsibleError> {
    use std::os::unix::fs::DirBuilderExt;
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    let dir = run
        .options
        .root
        .join(".fleet/ansible")
        .join(format!("{}-{n}", run.tag.run_id));
    let plugins = dir.join("plugins");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&plugins)
        .map_err(io(&plugins))?;
    let call = CallDir(dir.clone());
    let write = |name: &str, text: &str| -> Result<PathBuf, AnsibleError> {
        let p = dir.join(name);
        crate::ops::localfs::write_atomic(&p, text.as_bytes(), Some(0o600)).map_err(io(&p))?;
        Ok(p)
    };
    let inv: Vec<InventoryHost> = hosts
        .iter()
        .map(|h| InventoryHost {
            target: crate::ops::ssh::target_for(h, &run.options.ssh),
            local: h.connection == Connection::Local,
            groups: &h.groups,
            vars: &h.vars,
        })
        .collect();
    let inventory = write(
        "inventory.yml",
        &ansible::unsafe_yaml(&ansible::inventory(&inv)),
    )?;
    let extra_vars = if o.extra_vars.is_empty() {
        None
    } else {
        let vars = serde_json::Value::Object(o.extra_vars.clone());
        Some(write("extra_vars.yml", &ansible::unsafe_yaml(&vars))?)
    };
    write(
        &format!("plugins/{}.py", ansible::CALLBACK_NAME),
        ansible::CALLBACK_PY,
    )?;
    let files = Files {
        inventory,
        extra_vars,
        playbook,
        plugins,
        results: dir.join("results.json"),
    };
    Ok((call, files))
}

/// Runs the command line in the project root, its lines on the progress line of the
/// host they name (play and task lines on every host's).
fn execute(run: &Run, hosts: &[ResolvedHost], line: &str) -> CmdOutput {
    let verbose = run.ui.options.verbosity >= 1;
    let cmd = format!(
        "cd {} && {line}",
        quote(&run.options.root.display().to_string())
    );
    let opts = RunOpts {
        timeout: run.options.command_timeout,
        stream: true,
        keep: Some(run.options.output_limit),
    };
    LocalTransport
        .run(&cmd, &opts, None, &mut |stream, text| {
            if verbose {
                let mark = if stream == Stream::Stderr { "! " } else { "  " };
                run.ui.event(None, &format!("ansible {mark}{text}"));
            }
            match ansible::line_host(text) {
                Some(h) => run.ui.host_activity(h, &format!("ansible  {text}")),
                None if !text.trim().is_empty() => {
                    for h in hosts {
                        run.ui.host_activity(&h.name, &format!("ansible  {text}"));
                    }
                }
                None => {}
            }
        })
        .unwrap_or_else(|e| CmdOutput {
            code: -1,
            stderr: e.to_string(),
            ..Default::default()
        })
}

/// Each host's result becomes its outcome in the run (and its entry in the journal).
fn record(run: &Run, results: &ansible::Results) -> Map {
    let mut out = Map::new();
    for (host, stats) in &results.stats {
        let outcome = stats.outcome();
        let why = || {
            let m = results.failures.get(host).map(String::as_str).unwrap_or("");
            format!("ansible: {} on {host}: {m}", outcome.as_str())
        };
        match outcome {
            Outcome::Unreachable => run.mark_failed(host, HostStatus::Unreachable, &why()),
            Outcome::Failed => run.mark_failed(host, HostStatus::Failed, &why()),
            Outcome::Changed => run.mark_changed(host),
            Outcome::Ok => run.update(host, |r| r.ran = true),
        }
        let mut value = serde_json::to_value(stats).unwrap_or_default();
        value["status"] = outcome.as_str().into();
        if let Some(m) = results.failures.get(host) {
            value["message"] = m.clone().into();
        }
        run.update(host, |r| {
            r.results.insert("ansible".into(), value.clone());
        });
        out.insert(host.into(), super::values::from_json(&value));
    }
    out
}

/// `ansible-playbook` and the playbook's full path, or why the call cannot run.
fn ready(run: &Run, playbook: &str, pos: rhai::Position) -> Res<(PathBuf, PathBuf)> {
    let err = |e: &dyn std::fmt::Display| runtime_error(e, pos);
    let program =
        ansible::find_program(std::env::var_os("PATH").as_deref()).map_err(|e| err(&e))?;
    let path = crate::ops::local::resolve_file(&run.options.root, playbook)
        .map_err(|e| err(&format!("ansible::playbook: {e}")))?;
    if !path.is_file() {
        return Err(err(&AnsibleError::NoPlaybook(playbook.to_string())));
    }
    Ok((program, path))
}

fn playbook(
    run: &Run,
    hosts: &[ResolvedHost],
    playbook: &str,
    o: &PlaybookOptions,
    pos: rhai::Position,
) -> Res<Map> {
    let err = |e: &dyn std::fmt::Display| runtime_error(e, pos);
    o.validate().map_err(|e| err(&e))?;
    if hosts.is_empty() {
        return Err(err(&AnsibleError::NoHosts));
    }
    let (program, path) = ready(run, playbook, pos)?;
    let (_dir, files) = prepare(run, hosts, path, o).map_err(|e| err(&e))?;
    let argv = ansible::argv(&program, &files, o, run.options.check);
    let started = std::time::Instant::now();
    let out = execute(run, hosts, &argv.line());
    if crate::exec::interrupt::aborted() {
        return Err(err(&"ansible-playbook was interrupted"));
    }
    let stdout = out.stdout_text();
    let took = started.elapsed();
    for h in hosts {
        // The environment is fleet's constants and the call's paths: left out here.
        let rec = CommandRecord {
            step: crate::exec::current::step(),
            command: argv.words(),
            exit_code: Some(out.code),
            duration_ms: took.as_millis() as u64,
            executed: true,
            ..CommandRecord::default()
        };
        run.note_command(&h.name, rec, &stdout, &out.stderr);
        // Inside `each`, the fan-out times its own host.
        if crate::exec::current::host().as_deref() != Some(h.name.as_str()) {
            run.update(&h.name, |r| r.elapsed += took);
        }
    }
    if run.options.check {
        run.ui.out(None, stdout.trim_end());
    }
    let results = std::fs::read_to_string(&files.results).map_err(|_| {
        let why = if out.stderr.trim().is_empty() {
            &stdout
        } else {
            &out.stderr
        };
        err(&AnsibleError::NoResults {
            code: out.code,
            tail: crate::ops::text::tail(why, 10),
        })
    })?;
    let results = ansible::parse_results(&results).map_err(|e| err(&e))?;
    let mut map = Map::new();
    map.insert("code".into(), (out.code as i64).into());
    let changed = results
        .stats
        .values()
        .any(|s| s.outcome() == Outcome::Changed);
    map.insert("changed".into(), changed.into());
    let failed: Array = results
        .stats
        .iter()
        .filter(|(_, s)| matches!(s.outcome(), Outcome::Failed | Outcome::Unreachable))
        .map(|(h, _)| Dynamic::from(h.clone()))
        .collect();
    map.insert("failed".into(), failed.into());
    map.insert("hosts".into(), record(run, &results).into());
    Ok(map)
}

/// Hosts from a recipe's `Host` or array of `Host`s.
fn hosts_of(hosts: Dynamic, pos: rhai::Position) -> Res<Vec<ResolvedHost>> {
    let list = match hosts.try_cast_result::<Array>() {
        Ok(list) => list,
        Err(one) => vec![one],
    };
    list.into_iter()
        .map(|d| {
            let t = d.type_name().to_string();
            d.try_cast::<HostRef>()
                .map(|h| (*h.0).clone())
                .ok_or_else(|| {
                    runtime_error(
                        format!("ansible::playbook takes a host or an array of hosts, not {t}"),
                        pos,
                    )
                })
        })
        .collect()
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "require",
        ["playbook: &str", "()"],
        "Raises the error ansible::playbook would raise before it starts: ansible-playbook not installed (with what to install), or the playbook not a file of the project. For recipes that check what they can before they change anything (e.g. before a VM is made).",
        move |ctx: NativeCallContext, playbook: &str| -> Res<()> {
            let run = c.run()?;
            ready(&run, playbook, ctx.call_position()).map(|_| ())
        }
    );
    for with_opts in [false, true] {
        let c = ctx.clone();
        let f =
            move |ctx: &NativeCallContext, hosts: Dynamic, book: &str, options: Map| -> Res<Map> {
                let pos = ctx.call_position();
                let o: PlaybookOptions = read_options(&options, "ansible::playbook", pos)?;
                let hosts = hosts_of(hosts, pos)?;
                let run = c.run()?;
                playbook(&run, &hosts, book, &o, pos)
            };
        if with_opts {
            module_function!(
                &mut m,
                "playbook",
                ["hosts: Array|Host", "playbook: &str", "options: Map", "Map"],
                "Runs `ansible-playbook` (ansible-core, found on PATH) on this machine against `hosts` (a Host or an array of them), with an inventory fleet writes for the call: each host with fleet's address, user, port, identity file, ssh_config and known_hosts, its groups, and its inventory vars (`ansible_*` vars other than ansible_python_interpreter and ansible_become, _user, _method and _password are not passed, and are refused in extra_vars); every string is `!unsafe` for Ansible, so `{{ … }}` in a var stays text. `playbook` is a project file (e.g. \"site.yml\"; roles next to it as usual), run from the project root. Options: extra_vars (a map, passed with `-e @file`), tags (array), limit (an Ansible pattern), check (Ansible's --check --diff; always on under fleet's --check, whose output then shows Ansible's diffs). Ansible's lines go to the hosts' progress lines and the log; each host's result (from fleet's callback plugin) is its outcome in the recap and the journal: changed, failed (with the first failing task) or unreachable. Returns #{ code, changed, failed: [names], hosts: #{ NAME: #{ status, ok, changed, failures, unreachable, skipped, rescued, ignored, message } } }; a host's failure does not raise, an ansible-playbook that ends without a play recap (a syntax error, a missing role) does.",
                move |ctx: NativeCallContext, hosts: Dynamic, book: &str, options: Map| f(
                    &ctx, hosts, book, options
                )
            );
        } else {
            module_function!(
                &mut m,
                "playbook",
                ["hosts: Array|Host", "playbook: &str", "Map"],
                "ansible::playbook(hosts, playbook, #{}).",
                move |ctx: NativeCallContext, hosts: Dynamic, book: &str| f(
                    &ctx,
                    hosts,
                    book,
                    Map::new()
                )
            );
        }
    }
    m
}
