//! The controller side of a recipe: `local::` (files of the project), `json::`, `csv::`,
//! and the global `now`, `timestamp` and `duration`. Paths follow `ops::local`: relative
//! to the project root and under it. A write is a change of this machine, recorded in
//! the run's recap and journal (not as a host), and only printed under `--check`.

use super::glue::{function, module_function, runtime_error};
use super::values::read_options;
use crate::exec::run::Run;
use crate::ops::local::{self, ListOpts, WritePlan};
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext};
use std::path::Path;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Makes the local file `shown` (as the recipe named it; `full` resolved) hold
/// `content`: true when it changed (or, under `--check`, would change: then printed
/// with a diff and not written).
fn write_change(
    run: &Run,
    shown: &str,
    full: &Path,
    content: &[u8],
) -> Result<bool, local::LocalError> {
    let plan = local::plan_write(full, content)?;
    if plan == WritePlan::Same {
        return Ok(false);
    }
    if run.options.check {
        run.ui
            .out(None, &local::describe(shown, &plan, content).join("\n"));
    } else {
        local::write(full, content)?;
    }
    run.note_local_change(&format!("write {shown}"));
    Ok(true)
}

fn content_bytes(content: Dynamic, what: &str, ctx: &NativeCallContext) -> Res<Vec<u8>> {
    if content.is_blob() {
        return Ok(content.cast::<rhai::Blob>());
    }
    let t = content.type_name().to_string();
    content.into_string().map(String::into_bytes).map_err(|_| {
        runtime_error(
            format!("{what} takes a string or a blob as content, not {t}"),
            ctx.call_position(),
        )
    })
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    register_list(&mut m, ctx);
    register_files(&mut m, ctx);
    m
}

fn register_list(m: &mut Module, ctx: &ScriptCtx) {
    for with_opts in [false, true] {
        let c = ctx.clone();
        let f = move |ctx: &NativeCallContext, dir: &str, options: Map| -> Res<Array> {
            let pos = ctx.call_position();
            let opts: ListOpts = read_options(&options, "local::list", pos)?;
            let run = c.run()?;
            local::list(&run.options.root, dir, &opts, local::LIST_CAP)
                .map(|v| v.into_iter().map(Dynamic::from).collect())
                .map_err(|e| runtime_error(e, pos))
        };
        if with_opts {
            module_function!(
                m,
                "list",
                ["dir: &str", "options: Map", "Array"],
                "The entries of a project directory (\"\" is the project root), as paths relative to the project root, sorted; directories end with `/`. Options: recursive (descend into directories; symbolic links are listed, never followed), glob (matches each entry's own name: `*` and `?`, e.g. \"*.conf\"). More than 100000 entries is an error.",
                move |ctx: NativeCallContext, dir: &str, options: Map| f(&ctx, dir, options)
            );
        } else {
            module_function!(
                m,
                "list",
                ["dir: &str", "Array"],
                "local::list(dir, #{}): the directory's own entries.",
                move |ctx: NativeCallContext, dir: &str| f(&ctx, dir, Map::new())
            );
        }
    }
}

fn register_files(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "read",
        ["path: &str", "String"],
        "The text of a project file. Local paths are relative to the project root and stay under it: an absolute path, `..` or a symbolic link out of the project is an error (read_local reads files elsewhere, e.g. `~/.ssh/id_ed25519.pub`).",
        move |ctx: NativeCallContext, path: &str| -> Res<String> {
            let pos = ctx.call_position();
            let bytes =
                local::read(&c.run()?.options.root, path).map_err(|e| runtime_error(e, pos))?;
            String::from_utf8(bytes)
                .map_err(|_| runtime_error(format!("{path} is not UTF-8 text"), pos))
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "exists",
        ["path: &str", "bool"],
        "Whether a project file or directory exists (path rules as local::read; a path out of the project is an error, not false).",
        move |ctx: NativeCallContext, path: &str| -> Res<bool> {
            let full = local::resolve(&c.run()?.options.root, path)
                .map_err(|e| runtime_error(e, ctx.call_position()))?;
            Ok(std::fs::symlink_metadata(full).is_ok())
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "write",
        ["path: &str", "content: String|Blob", "bool"],
        "Makes a project file hold `content`: atomic (temporary file, then rename; missing directories made; an existing file keeps its mode), changed only when the bytes differ; returns whether it changed. A change of this machine: the recap's `this machine:` line and the journal's `local_changes` list it (no host row). Under --check it is printed with a diff for text and not written.",
        move |ctx: NativeCallContext, path: &str, content: Dynamic| -> Res<bool> {
            let pos = ctx.call_position();
            let data = content_bytes(content, "local::write", &ctx)?;
            let run = c.run()?;
            let full =
                local::resolve_file(&run.options.root, path).map_err(|e| runtime_error(e, pos))?;
            write_change(&run, path, &full, &data).map_err(|e| runtime_error(e, pos))
        }
    );
}

/// The `json::` module.
pub(crate) fn json_module() -> Module {
    let mut m = Module::new();
    module_function!(
        &mut m,
        "parse",
        ["text: &str", "Dynamic"],
        "A JSON document as Rhai values: objects become maps, arrays arrays, null `()`, numbers int or float. A syntax error names its line and column.",
        |ctx: NativeCallContext, text: &str| -> Res<Dynamic> {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| runtime_error(format!("not JSON: {e}"), ctx.call_position()))?;
            Ok(crate::script::values::from_json(&value))
        }
    );
    for pretty in [false, true] {
        let f = move |ctx: NativeCallContext, value: Dynamic| -> Res<String> {
            let shown = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            };
            shown.map_err(|e| runtime_error(format!("cannot write JSON: {e}"), ctx.call_position()))
        };
        if pretty {
            module_function!(
                &mut m,
                "to_pretty_string",
                ["value: Dynamic", "String"],
                "json::to_string, indented on several lines.",
                f
            );
        } else {
            module_function!(
                &mut m,
                "to_string",
                ["value: Dynamic", "String"],
                "A value as compact JSON: maps are objects, arrays arrays, `()` null. fleet's own types (Host, CmdResult) are an error: take their fields first.",
                f
            );
        }
    }
    m
}

fn cell(value: &Dynamic) -> String {
    if value.is_unit() {
        String::new()
    } else {
        value.to_string()
    }
}

/// The `csv::` module.
pub(crate) fn csv_module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "write",
        ["path: &str", "rows: Array", "columns: Array", "bool"],
        "Writes `rows` (maps) as a CSV file in the project: a header of `columns`, then each row's values in that order (a missing key or `()` is empty). Fields are quoted by RFC 4180 (commas, quotes, line breaks, outer spaces); lines end with \\n. Like local::write: path rules, atomic, a change of this machine only when the bytes differ, printed under --check.",
        move |ctx: NativeCallContext, path: &str, rows: Array, columns: Array| -> Res<bool> {
            let pos = ctx.call_position();
            let columns: Vec<String> = columns.iter().map(cell).collect();
            let mut lines = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                let t = row.type_name().to_string();
                let map = row.try_cast::<Map>().ok_or_else(|| {
                    runtime_error(format!("csv::write: row {i} is {t}, not a map"), pos)
                })?;
                lines.push(
                    columns
                        .iter()
                        .map(|col| map.get(col.as_str()).map(cell).unwrap_or_default())
                        .collect(),
                );
            }
            let text = local::csv_text(&columns, &lines);
            let run = c.run()?;
            let full =
                local::resolve_file(&run.options.root, path).map_err(|e| runtime_error(e, pos))?;
            write_change(&run, path, &full, text.as_bytes()).map_err(|e| runtime_error(e, pos))
        }
    );
    m
}

/// `now`, `timestamp` and `duration`.
pub(crate) fn clock_module() -> Module {
    use crate::ops::clock;
    let mut m = Module::new();
    function!(
        &mut m,
        "now",
        ["int"],
        "The time now as seconds since 1970-01-01 UTC.",
        || -> Res<i64> { Ok(clock::now_unix()) }
    );
    function!(
        &mut m,
        "timestamp",
        ["format: &str", "String"],
        "The time now, formatted in UTC: %Y %m %d %H %M %S, %F (%Y-%m-%d), %T (%H:%M:%S), %s (unix seconds), %j (day of the year), %%. E.g. timestamp(\"%Y%m%dT%H%M%SZ\") for file names.",
        |ctx: NativeCallContext, format: &str| -> Res<String> {
            clock::format(clock::now_unix(), format)
                .map_err(|e| runtime_error(e, ctx.call_position()))
        }
    );
    function!(
        &mut m,
        "timestamp",
        ["unix: int", "format: &str", "String"],
        "timestamp(format) of another time, in seconds since 1970 (e.g. now() - duration(\"7d\")).",
        |ctx: NativeCallContext, unix: i64, format: &str| -> Res<String> {
            clock::format(unix, format).map_err(|e| runtime_error(e, ctx.call_position()))
        }
    );
    function!(
        &mut m,
        "duration",
        ["text: &str", "int"],
        "A duration as whole seconds: \"90s\", \"15m\", \"2h\", \"1h 30m\", \"7days\".",
        |ctx: NativeCallContext, text: &str| -> Res<i64> {
            clock::duration_secs(text).map_err(|e| runtime_error(e, ctx.call_position()))
        }
    );
    m
}
