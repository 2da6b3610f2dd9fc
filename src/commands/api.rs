//! `fleet api`: the reference of every function a recipe can call, from the engine's
//! own metadata and the stdlib's source, so it cannot drift from what is registered.

use crate::App;
use crate::error::{Error, Result};
use crate::recipe::engine::Scripting;
use crate::recipe::index::RecipeIndex;
use crate::recipe::reference::{self, ScriptModule};
use crate::recipe::resolver::StdlibResolver;
use std::io::Write;
use std::path::Path;

/// Where Rhai's own standard library (strings, arrays, maps, …) is documented.
pub(crate) const RHAI_BOOK: &str = "https://rhai.rs/book/ref/";

pub(crate) fn run(app: &App, definitions: Option<&Path>) -> Result<i32> {
    if let Some(dir) = definitions {
        let count = write_definitions(&app.scripting, &app.recipes, dir)?;
        println!(
            "wrote {count} Rhai definition files to {}",
            crate::project::display_path(dir)
        );
        return Ok(0);
    }
    let engine = &app.scripting.engine;
    let json = engine
        .gen_fn_metadata_to_json(false)
        .map_err(|e| Error::Internal(format!("cannot read function metadata: {e}")))?;
    let mut meta: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| Error::Internal(e.to_string()))?;
    let modules = script_modules(&app.scripting);
    let text = if app.global.json {
        meta["scriptModules"] = modules_json(&modules);
        meta["rhaiBook"] = RHAI_BOOK.into();
        serde_json::to_string_pretty(&meta).map_err(|e| Error::Internal(e.to_string()))? + "\n"
    } else {
        format!("{}{}", render(&meta), render_modules(&modules))
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

fn script_modules(scripting: &Scripting) -> Vec<ScriptModule> {
    let resolver = StdlibResolver::new(scripting.modules.clone(), scripting.ctx.sources.clone());
    reference::modules(&scripting.engine, &resolver)
}

/// Writes the `.d.rhai` files an editor's Rhai language server reads: fleet's native
/// functions and modules, every module `import` finds (`import-pkg.d.rhai`) and the
/// recipes (`recipes.d.rhai`). Earlier `.d.rhai` files in `dir` are replaced.
pub(crate) fn write_definitions(
    scripting: &Scripting,
    recipes: &RecipeIndex,
    dir: &Path,
) -> Result<usize> {
    std::fs::create_dir_all(dir).map_err(Error::write(dir))?;
    for entry in std::fs::read_dir(dir).map_err(Error::read(dir))?.flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with(".d.rhai") && path.is_file() {
            std::fs::remove_file(&path).map_err(Error::write(&path))?;
        }
    }
    let mut files: Vec<(String, String)> = scripting
        .engine
        .definitions()
        .include_standard_packages(false)
        .iter_files()
        .collect();
    for m in script_modules(scripting) {
        let header = format!("// `import \"{}\" as m;` ({})\n", m.path, m.file);
        files.push((
            reference::definition_file_name(&m.path),
            format!(
                "{header}{}",
                reference::definition_file(&reference::module_name(&m.path), &m.functions)
            ),
        ));
    }
    files.push((
        "recipes.d.rhai".to_string(),
        format!(
            "// The recipes of this project: each is a command, `fleet NAME`.\n{}",
            reference::definition_file("recipes", &reference::recipes(recipes))
        ),
    ));
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(Error::write(&path))?;
    }
    Ok(files.len())
}

fn modules_json(modules: &[ScriptModule]) -> serde_json::Value {
    modules
        .iter()
        .map(|m| {
            serde_json::json!({
                "path": m.path,
                "file": m.file,
                "problem": m.problem,
                "functions": m.functions.iter().map(|f| serde_json::json!({
                    "name": f.name,
                    "params": f.params,
                    "signature": format!("{}::{}", m.path, f.signature()),
                    "doc": f.doc,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// The Rhai modules, after the native functions: `pkg::install(h, names)` and its doc.
fn render_modules(modules: &[ScriptModule]) -> String {
    let mut out = String::from(
        "Modules written in Rhai (`import \"NAME\" as NAME;` then `NAME::function(…)`; a project's stdlib/NAME.rhai replaces the built-in one):\n\n",
    );
    for m in modules {
        out.push_str(&format!("import \"{}\"  ({})\n\n", m.path, m.file));
        if let Some(problem) = &m.problem {
            out.push_str(&format!(
                "    does not compile ({problem}); `fleet check` shows where\n\n"
            ));
        }
        for f in &m.functions {
            out.push_str(&format!("{}::{}\n", m.path, f.signature()));
            let doc = f.doc.split_whitespace().collect::<Vec<_>>().join(" ");
            if !doc.is_empty() {
                out.push_str(&format!("    {doc}\n"));
            }
            out.push('\n');
        }
    }
    out
}

/// The native functions, one entry per signature, sorted.
fn entries(meta: &serde_json::Value) -> Vec<(String, String)> {
    // Global functions, then those of static modules (`git::head`) with their prefix.
    let global = meta["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| ("", f));
    let modules = meta["modules"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(name, m)| {
            m["functions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |f| (name.as_str(), f))
        });
    let mut entries: Vec<(String, String)> = global
        .chain(modules)
        .map(|(module, f)| {
            let mut signature = f["signature"].as_str().unwrap_or_default().to_string();
            if !module.is_empty() {
                signature = format!("{module}::{signature}");
            }
            // Property getters read better as `Host.name -> String`.
            if let Some(prop) = f["name"].as_str().and_then(|n| n.strip_prefix("get$")) {
                let params = f["params"].as_array();
                let ty = params
                    .and_then(|p| p.first())
                    .and_then(|p| p["type"].as_str())
                    .unwrap_or("?");
                let ret = f["returnType"].as_str().unwrap_or("?");
                signature = format!("{ty}.{prop} -> {ret}");
            }
            let doc = f["docComments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
                .flat_map(|d| d.lines())
                .map(|l| l.trim_start_matches("///").trim().to_string())
                .collect::<Vec<_>>()
                .join(" ");
            // Rhai's metadata drops the spaces of `String or ()`.
            (signature.replace("or()", " or ()"), doc)
        })
        .collect();
    entries.sort();
    entries.dedup();
    entries
}

fn render(meta: &serde_json::Value) -> String {
    let mut out = format!(
        "Functions a recipe can call. Rhai's own language and standard library (strings, arrays, maps, …) are in the Rhai book: {RHAI_BOOK}\nA missing key of a map reads as `()`, so `h.vars.port ?? 8080` gives a default; paths of local::, csv:: and h.sync are relative to the project root and stay under it.\n\n"
    );
    for (signature, doc) in entries(meta) {
        out.push_str(&signature);
        out.push('\n');
        if !doc.is_empty() {
            out.push_str(&format!("    {doc}\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::resolver::ProjectModules;

    /// Every function registered with the engine is in `fleet api` and in the
    /// definitions, and so is every function of every stdlib module.
    #[test]
    fn every_function_is_in_the_reference_and_the_definitions() {
        let scripting = crate::recipe::engine::build(ProjectModules::None);
        let json = scripting.engine.gen_fn_metadata_to_json(false).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&json).unwrap();
        let modules = script_modules(&scripting);
        let text = format!("{}{}", render(&meta), render_modules(&modules));
        let dir = tempfile::tempdir().unwrap();
        write_definitions(&scripting, &RecipeIndex::default(), dir.path()).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();

        let mut checked = 0;
        let global = meta["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (None, f));
        let in_modules = meta["modules"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(m, v)| {
                v["functions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |f| (Some(m.clone()), f))
            });
        for (module, f) in global.chain(in_modules) {
            let name = f["name"].as_str().unwrap();
            let defs = match &module {
                Some(m) => read(&format!("{m}.d.rhai")),
                None => read("__static__.d.rhai"),
            };
            let (in_text, in_defs) = match name.strip_prefix("get$") {
                Some(prop) => (format!(".{prop} -> "), format!("fn get {prop}(")),
                None => (
                    match &module {
                        Some(m) => format!("{m}::{name}("),
                        None => format!("{name}("),
                    },
                    format!("fn {name}("),
                ),
            };
            assert!(text.contains(&in_text), "`{in_text}` not in fleet api");
            // Rhai writes a function named by a reserved word (`sync`) as `op sync(…)`.
            let as_op = format!("op {name}(");
            assert!(
                defs.contains(&in_defs) || defs.contains(&as_op),
                "`{in_defs}` not in the definitions"
            );
            checked += 1;
        }
        assert!(checked > 50, "only {checked} functions");
        for m in &modules {
            let defs = read(&reference::definition_file_name(&m.path));
            assert!(
                defs.starts_with(&format!("// `import \"{}\"", m.path)),
                "{defs}"
            );
            for f in &m.functions {
                let call = format!("{}::{}(", m.path, f.name);
                assert!(text.contains(&call), "`{call}` not in fleet api");
                assert!(
                    defs.contains(&format!("fn {}(", f.name)),
                    "{} not in {defs}",
                    f.name
                );
            }
        }
        assert!(text.contains("pkg::install(h, names)"), "{text}");
        assert!(text.contains(RHAI_BOOK));
    }
}
