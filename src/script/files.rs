//! `h.write`, `h.upload`, `h.download`, `h.template`: files on hosts from recipes.

use super::glue::{function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::capture::CaptureOpts;
use crate::ops::files::{self, DownloadOpts, FileOpts};
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext, Position};
use std::path::PathBuf;

fn file_opts(map: &Map, function: &str, pos: Position) -> Result<FileOpts, Box<EvalAltResult>> {
    read_options(map, function, pos)
}

/// A local path from a recipe: relative to the project root.
fn local_path(c: &ScriptCtx, path: &str) -> Result<PathBuf, Box<EvalAltResult>> {
    Ok(c.run()?.options.root.join(path))
}

fn content_bytes(content: Dynamic, pos: Position) -> Result<Vec<u8>, Box<EvalAltResult>> {
    if content.is_blob() {
        return Ok(content.cast::<rhai::Blob>());
    }
    let t = content.type_name().to_string();
    content.into_string().map(String::into_bytes).map_err(|_| {
        runtime_error(
            format!("write() takes a string or a blob as content, not {t}"),
            pos,
        )
    })
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    local(&mut m, ctx);
    write(&mut m, ctx);
    upload(&mut m, ctx);
    download(&mut m, ctx);
    snapshot_config(&mut m, ctx);
    template(&mut m, ctx);
    m
}

/// `read_local` and `confirm`: this machine and its terminal.
fn local(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "read_local",
        ["path: &str", "String"],
        "Reads a text file on this machine (the controller): relative to the project root, `~/` for the home directory. For public keys and the like: `read_local(\"~/.ssh/id_ed25519.pub\")`.",
        move |ctx: NativeCallContext, path: &str| -> Result<String, Box<EvalAltResult>> {
            let run = c.run()?;
            let full = crate::ops::ssh::resolve_path(&run.options.root, std::path::Path::new(path));
            std::fs::read_to_string(&full).map_err(|e| {
                runtime_error(
                    format!("cannot read {} on this machine: {e}", full.display()),
                    ctx.call_position(),
                )
            })
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "confirm",
        ["question: &str", "bool"],
        "Asks a yes/no question on the terminal (progress bars paused); true only for y or yes. Without a terminal it is an error that says to pass the recipe's --yes, so cron never waits for an answer.",
        move |ctx: NativeCallContext, question: &str| -> Result<bool, Box<EvalAltResult>> {
            use std::io::IsTerminal;
            let run = c.run()?;
            if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
                return Err(runtime_error(
                    format!(
                        "\"{question}\" needs an answer and there is no terminal to ask on: pass --yes"
                    ),
                    ctx.call_position(),
                ));
            }
            Ok(run.ui.confirm(&format!("{question} [y/N] ")))
        }
    );
}

/// `h.write`, with and without options.
fn write(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "write",
        [
            "h: Host",
            "path: &str",
            "content: String|Blob",
            "options: Map",
            "bool"
        ],
        "Makes the file at `path` on the host hold `content`, atomically (temporary file, then rename). Changed only when content, mode or owner differ; returns whether it changed. Options: mode (\"0644\"), owner (\"user:group\"), sudo. Without a mode, content that holds a configured secret is written 0600 (other content gets the host's default). In --check it shows what would change, with a diff for text; a file that holds a secret shows `(content hidden: holds a secret)` instead.",
        move |ctx: NativeCallContext,
              h: HostRef,
              path: &str,
              content: Dynamic,
              options: Map|
              -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let opts = file_opts(&options, "write", pos)?;
            let data = content_bytes(content, pos)?;
            files::write_file(&c.run()?.remote(&h.0), path, &data, &opts)
                .map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "write",
        ["h: Host", "path: &str", "content: String|Blob", "bool"],
        "write(h, path, content, #{}): the file's mode and owner are left as they are (new files get the login user's defaults).",
        move |ctx: NativeCallContext,
              h: HostRef,
              path: &str,
              content: Dynamic|
              -> Result<bool, Box<EvalAltResult>> {
            let data = content_bytes(content, ctx.call_position())?;
            files::write_file(&c.run()?.remote(&h.0), path, &data, &FileOpts::default())
                .map_err(|f| raise(f, &ctx))
        }
    );
}

/// `h.upload`, with and without options.
fn upload(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    function!(
        m,
        "upload",
        [
            "h: Host",
            "local: &str",
            "remote: &str",
            "options: Map",
            "bool"
        ],
        "Copies a local file (relative to the project) to `remote` on the host, like write(). Options: mode, owner, sudo. Returns whether the host's file changed.",
        move |ctx: NativeCallContext,
              h: HostRef,
              local: &str,
              remote: &str,
              options: Map|
              -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let opts = file_opts(&options, "upload", pos)?;
            let path = local_path(&c, local)?;
            let data = std::fs::read(&path)
                .map_err(|e| runtime_error(format!("cannot read {}: {e}", path.display()), pos))?;
            files::write_file(&c.run()?.remote(&h.0), remote, &data, &opts)
                .map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    function!(
        m,
        "upload",
        ["h: Host", "local: &str", "remote: &str", "bool"],
        "upload(h, local, remote, #{}).",
        move |ctx: NativeCallContext,
              h: HostRef,
              local: &str,
              remote: &str|
              -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let path = local_path(&c, local)?;
            let data = std::fs::read(&path)
                .map_err(|e| runtime_error(format!("cannot read {}: {e}", path.display()), pos))?;
            files::write_file(&c.run()?.remote(&h.0), remote, &data, &FileOpts::default())
                .map_err(|f| raise(f, &ctx))
        }
    );
}

/// `h.download`, with and without options.
fn download(m: &mut Module, ctx: &ScriptCtx) {
    for (params, doc, with_opts) in [
        (
            vec!["h: Host", "remote: &str", "local: &str", "bool"],
            "Copies `remote` from the host to a local path (relative to the project), atomically and byte for byte, with the remote file's mode (a 0600 file stays 0600; setuid, setgid and sticky bits are dropped). Returns whether the local file (content or mode) changed.",
            false,
        ),
        (
            vec![
                "h: Host",
                "remote: &str",
                "local: &str",
                "options: Map",
                "bool",
            ],
            "download(h, remote, local) with options: sudo (read a file only root can read), mode (\"0640\": the local file's mode instead of the remote one's).",
            true,
        ),
    ] {
        let c = ctx.clone();
        let f = move |ctx: &NativeCallContext,
                      h: HostRef,
                      remote: &str,
                      local: &str,
                      options: Map|
              -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let o: DownloadOpts = read_options(&options, "download", pos)?;
            let path = local_path(&c, local)?;
            files::download(&c.run()?.remote(&h.0), remote, &path, o.sudo, o.mode_bits())
                .map_err(|e| raise(e, ctx))
        };
        let registration = FuncRegistration::new("download")
            .with_params_info(params)
            .with_comments([format!("/// {doc}")])
            .in_global_namespace();
        if with_opts {
            registration.set_into_module(
                m,
                move |ctx: NativeCallContext,
                      h: HostRef,
                      remote: &str,
                      local: &str,
                      options: Map| { f(&ctx, h, remote, local, options) },
            );
        } else {
            registration.set_into_module(
                m,
                move |ctx: NativeCallContext, h: HostRef, remote: &str, local: &str| {
                    f(&ctx, h, remote, local, Map::new())
                },
            );
        }
    }
}

/// `snapshot_config`, with and without options.
fn snapshot_config(m: &mut Module, ctx: &ScriptCtx) {
    for with_opts in [false, true] {
        let c = ctx.clone();
        let f = move |ctx: &NativeCallContext,
                      h: HostRef,
                      paths: rhai::Array,
                      options: Map|
              -> Result<rhai::INT, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let o: CaptureOpts = read_options(&options, "snapshot_config", pos)?;
            let paths = paths
                .into_iter()
                .map(|p| {
                    let t = p.type_name().to_string();
                    p.into_string().map_err(|_| {
                        runtime_error(
                            format!("snapshot_config() takes an array of paths, not of {t}"),
                            pos,
                        )
                    })
                })
                .collect::<Result<Vec<String>, _>>()?;
            let run = c.run()?;
            let staged = crate::ops::capture::config(
                &run.remote(&h.0),
                &run.options.state_dir,
                &paths,
                o.sudo,
            )
            .map_err(|f| raise(f, ctx))?;
            run.stage(staged);
            Ok(paths.len() as rhai::INT)
        };
        let registration = FuncRegistration::new("snapshot_config").in_global_namespace();
        if with_opts {
            registration
                .with_params_info(["h: Host", "paths: Array", "options: Map", "int"])
                .with_comments([
                    "/// snapshot_config(h, paths) with options: sudo (files only root can read).",
                ])
                .set_into_module(
                    m,
                    move |ctx: NativeCallContext, h: HostRef, paths: rhai::Array, options: Map| {
                        f(&ctx, h, paths, options)
                    },
                );
        } else {
            registration
                .with_params_info(["h: Host", "paths: Array", "int"])
                .with_comments(["/// Copies the files at these absolute paths from the host into the state repository (hosts/<host>/<path>, modes in hosts/<host>/.modes), committed with the run's journal record; a file gone from the host is removed there. Returns how many paths were captured."])
                .set_into_module(m, move |ctx: NativeCallContext, h: HostRef, paths: rhai::Array| {
                    f(&ctx, h, paths, Map::new())
                });
        }
    }
}

/// `h.template`, with and without options.
fn template(m: &mut Module, ctx: &ScriptCtx) {
    for with_opts in [false, true] {
        let c = ctx.clone();
        let f = move |ctx: &NativeCallContext,
                      h: HostRef,
                      file: &str,
                      remote: &str,
                      vars: Map,
                      options: Map|
              -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let opts = file_opts(&options, "template", pos)?;
            let run = c.run()?;
            let in_templates = run.options.root.join("templates").join(file);
            let path = if in_templates.is_file() {
                in_templates
            } else {
                run.options.root.join(file)
            };
            let source = std::fs::read_to_string(&path).map_err(|e| {
                runtime_error(format!("cannot read template {}: {e}", path.display()), pos)
            })?;
            let extra = serde_json::to_value(Dynamic::from_map(vars))
                .map_err(|e| runtime_error(format!("template vars cannot be used: {e}"), pos))?;
            let context = crate::ops::template::context(&h.0, extra);
            let text = crate::ops::template::render(file, &source, &context).map_err(|e| {
                runtime_error(format!("template {file} for {}: {e}", h.0.name), pos)
            })?;
            files::write_file(&run.remote(&h.0), remote, text.as_bytes(), &opts)
                .map_err(|f| raise(f, ctx))
        };
        let registration = FuncRegistration::new("template").in_global_namespace();
        if with_opts {
            registration
                .with_params_info(["h: Host", "file: &str", "remote: &str", "vars: Map", "options: Map", "bool"])
                .with_comments(["/// template(h, file, remote, vars) with the options of write(): mode, owner, sudo."])
                .set_into_module(m, move |ctx: NativeCallContext, h: HostRef, file: &str, remote: &str, vars: Map, options: Map| {
                    f(&ctx, h, file, remote, vars, options)
                });
        } else {
            registration
                .with_params_info(["h: Host", "file: &str", "remote: &str", "vars: Map", "bool"])
                .with_comments(["/// Renders a minijinja template (from templates/, else the project root) and writes it like write(). The template sees the host's inventory vars and `vars` (the recipe's win) both by name (`{{ port }}`) and in `vars` (`{{ vars.port }}`), and `host` (name, address, groups, vars). An undefined variable is an error that names it."])
                .set_into_module(m, move |ctx: NativeCallContext, h: HostRef, file: &str, remote: &str, vars: Map| {
                    f(&ctx, h, file, remote, vars, Map::new())
                });
        }
    }
}
