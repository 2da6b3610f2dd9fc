//! `fleet recipes` and `fleet help RECIPE`.

use crate::App;
use crate::error::{Error, Result};
use crate::recipe::sources::Origin;
use std::io::Write;

pub(crate) fn list(app: &App) -> Result<i32> {
    let recipes = app.recipes.recipes.values();
    // Broken files' commands, once each, unless a working recipe has the name.
    let mut broken: Vec<(&str, &crate::recipe::index::Broken)> = Vec::new();
    for b in &app.recipes.broken {
        for name in &b.names {
            if app.recipes.get(name).is_none() && !broken.iter().any(|(n, _)| n == name) {
                broken.push((name, b));
            }
        }
    }
    let text = if app.global.json {
        let mut list: Vec<_> = recipes
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "summary": r.doc.summary,
                    "file": r.file,
                    "origin": match r.origin { Origin::BuiltIn => "built-in", Origin::Project => "project" },
                    "overrides": r.overrides,
                    "usage": r.usage(),
                })
            })
            .collect();
        list.extend(broken.iter().map(|(name, b)| {
            serde_json::json!({
                "name": name,
                "file": b.file,
                "broken": true,
                "error": b.message,
            })
        }));
        serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
    } else {
        let header: Vec<String> = ["RECIPE", "SUMMARY", "FROM"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut rows: Vec<Vec<String>> = recipes
            .map(|r| {
                let from = match (r.origin, &r.overrides) {
                    (Origin::BuiltIn, _) => "built-in".to_string(),
                    (Origin::Project, None) => r.file.clone(),
                    (Origin::Project, Some(_)) => format!("{} (replaces built-in)", r.file),
                };
                vec![r.name.replace('_', "-"), r.doc.summary.clone(), from]
            })
            .collect();
        rows.extend(broken.iter().map(|(name, b)| {
            vec![
                name.replace('_', "-"),
                format!("BROKEN: {}", b.message),
                b.file.clone(),
            ]
        }));
        crate::table::render(&header, &rows)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

pub(crate) fn help(app: &App, name: Option<&str>) -> Result<i32> {
    let mut cmd = crate::cli::command(&app.recipes, false);
    let Some(name) = name else {
        let _ = cmd.print_long_help();
        return Ok(0);
    };
    let canonical = app
        .recipes
        .get(name)
        .map(|r| r.name.clone())
        .unwrap_or(name.to_string());
    match cmd.find_subcommand_mut(&canonical) {
        Some(sub) => {
            let mut sub = sub.clone().bin_name(format!("fleet {canonical}"));
            let _ = sub.print_long_help();
            Ok(0)
        }
        None => {
            let names = app
                .recipes
                .recipes
                .keys()
                .map(String::as_str)
                .chain(crate::cli::BUILTIN_COMMANDS.iter().copied());
            Err(match crate::suggest::closest(name, names) {
                Some(c) => Error::usage_with_help(
                    format!("no recipe or command named `{name}`"),
                    format!("did you mean `{c}`? `fleet recipes` lists them all"),
                ),
                None => Error::usage_with_help(
                    format!("no recipe or command named `{name}`"),
                    "`fleet recipes` lists them all",
                ),
            })
        }
    }
}
