//! `fleet api`: the reference of every function a recipe can call, from the engine's
//! own metadata, so it cannot drift from what is registered.

use crate::App;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

pub(crate) fn run(app: &App, definitions: Option<&Path>) -> Result<i32> {
    let engine = &app.scripting.engine;
    if let Some(dir) = definitions {
        std::fs::create_dir_all(dir).map_err(Error::write(dir))?;
        engine
            .definitions()
            .include_standard_packages(false)
            .write_to_dir(dir)
            .map_err(Error::write(dir))?;
        println!("wrote Rhai definition files to {}", dir.display());
        return Ok(0);
    }
    let json = engine
        .gen_fn_metadata_to_json(false)
        .map_err(|e| Error::Internal(format!("cannot read function metadata: {e}")))?;
    let meta: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| Error::Internal(e.to_string()))?;
    let text = if app.global.json {
        json + "\n"
    } else {
        render(&meta)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

fn render(meta: &serde_json::Value) -> String {
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
    let mut out = String::from(
        "Functions a recipe can call (besides Rhai's standard library). A missing key of a map reads as `()`, so `h.vars.port ?? 8080` gives a default; paths of local::, csv:: and h.sync are relative to the project root and stay under it.\n\n",
    );
    for (signature, doc) in entries {
        out.push_str(&signature);
        out.push('\n');
        if !doc.is_empty() {
            out.push_str(&format!("    {doc}\n"));
        }
        out.push('\n');
    }
    out
}
