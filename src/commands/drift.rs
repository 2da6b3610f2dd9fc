//! `fleet drift [PATTERN] [--recipe NAME]`: runs a recipe (default `configure`) in check
//! mode; what it would change on each host is that host's drift, kept in the journal
//! (see `journal::Drift`). Exit 0 when nothing drifts, 3 when a host drifts, 4 when a
//! host was not reached. `--show HOST` lists a host's pending changes from the journal.

use crate::App;
use crate::error::{Error, Result};
use crate::journal::{self, HostDrift};
use crate::outcome::{Ending, exit_code};
use crate::session::RunRequest;
use rhai::Dynamic;

/// The recipe `fleet drift` checks when none is named.
pub(crate) const DEFAULT_RECIPE: &str = "configure";

pub(crate) fn run(mut app: App, pattern: &str, recipe_name: &str) -> Result<i32> {
    let Some(recipe) = app.recipes.get(recipe_name).cloned() else {
        return Err(Error::usage_with_help(
            format!("no recipe `{recipe_name}` to check for drift"),
            "`fleet recipes` lists them",
        ));
    };
    // The pattern goes to the recipe's `pattern`; every other argument keeps its default.
    let values: Vec<Dynamic> = recipe
        .params
        .iter()
        .map(|p| match (p.name.as_str(), &p.default) {
            ("pattern", _) => Ok(Dynamic::from(pattern.to_string())),
            (_, Some(d)) => Ok(d.clone()),
            (name, None) => Err(Error::usage(format!(
                "recipe `{}` needs the argument `{name}`, which fleet drift cannot give: check recipes whose arguments have defaults",
                recipe.name
            ))),
        })
        .collect::<Result<_>>()?;
    if !recipe.params.iter().any(|p| p.name == "pattern") && pattern != "all" {
        return Err(Error::usage(format!(
            "recipe `{}` has no `pattern` argument: use --limit to choose hosts",
            recipe.name
        )));
    }
    app.global.check = true;
    let params = recipe
        .params
        .iter()
        .zip(&values)
        .filter_map(|(p, v)| serde_json::to_value(v).ok().map(|v| (p.name.clone(), v)))
        .collect();
    let request = RunRequest {
        recipe: recipe.name.clone(),
        args: vec![pattern.to_string()],
        params,
        limit: app.global.limit.clone(),
        replays: None,
    };
    let code = super::recipe::run_request(&app, &recipe, values, request)?;
    // The record just written says which hosts drift.
    let state = app.project.state_dir();
    let drifted = match journal::find(&state, "last", Some(&recipe.name)) {
        Ok(record) => {
            let all = journal::load_all(&state).unwrap_or_default();
            let drift = journal::drift_of_hosts(&all, Some(&recipe.name));
            let mut any = false;
            for h in record.hosts.iter().filter(|h| h.drift.is_some()) {
                if let Some(d) = drift.get(&h.host) {
                    any |= !d.changes.is_empty();
                    if !app.global.json && app.global.verbosity() >= 0 {
                        println!("{}  {}", h.host, summary(d));
                    }
                }
            }
            any
        }
        Err(_) => false,
    };
    Ok(exit_code(&Ending::Drift { code, drifted }))
}

/// `none`, `1 change since 2h 5m`, `3 changes since 2d 1h`.
pub(crate) fn summary(d: &HostDrift) -> String {
    match d.changes.len() {
        0 => "none".into(),
        n => format!(
            "{n} change{} since {}",
            if n == 1 { "" } else { "s" },
            since(&d.since)
        ),
    }
}

fn since(when: &str) -> String {
    journal::seconds_since(when)
        .map(crate::ops::facts::short_duration)
        .unwrap_or_else(|| when.to_string())
}

/// A host's pending changes with their diffs, as the journal keeps them (secrets
/// masked, control sequences replaced).
pub(crate) fn render_show(host: &str, d: &HostDrift) -> String {
    let mut out = format!(
        "{host}: {} (checked by {} in run {}, {})\n",
        summary(d),
        d.recipe,
        d.run_id,
        crate::commands::status::ago(&d.checked_at)
    );
    for c in &d.changes {
        let step = c
            .step
            .as_deref()
            .map(|s| format!("[{s}] "))
            .unwrap_or_default();
        out.push_str(&format!("- {step}{}\n", c.change));
        for line in c.detail.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    let out = crate::ops::secrets::redact(&out).into_owned();
    crate::ops::terminal::neutralise(&out).into_owned()
}

pub(crate) fn show(app: &App, host: &str, recipe: &str) -> Result<i32> {
    let inventory = super::load_inventory(app)?;
    inventory.require(host)?;
    let runs =
        journal::load_all(&app.project.state_dir()).map_err(|e| Error::usage(e.to_string()))?;
    let drift = journal::drift_of_hosts(&runs, Some(recipe));
    let Some(d) = drift.get(host) else {
        return Err(Error::usage_with_help(
            format!("no drift record of `{recipe}` for {host} yet"),
            format!("`fleet drift {host} --recipe {recipe}` makes one"),
        ));
    };
    if app.global.json {
        println!("{}", serde_json::to_string_pretty(d).unwrap_or_default());
    } else {
        print!("{}", render_show(host, d));
    }
    Ok(if d.changes.is_empty() { 0 } else { 3 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::PlannedChange;

    #[test]
    fn show_lists_changes_with_masked_diffs() {
        crate::ops::secrets::register("hunter2-drift-secret");
        let d = HostDrift {
            recipe: "configure".into(),
            run_id: "r1".into(),
            checked_at: "2026-01-01T00:00:00Z".into(),
            since: "2026-01-01T00:00:00Z".into(),
            changes: vec![PlannedChange {
                step: Some("files".into()),
                change: "write /etc/app.conf: replace its content (10 bytes)".into(),
                detail: "-password=hunter2-drift-secret\n+password=\x1b[31mx".into(),
            }],
        };
        let text = render_show("web1", &d);
        assert!(text.contains("web1: 1 change since"), "{text}");
        assert!(text.contains("- [files] write /etc/app.conf"), "{text}");
        assert!(text.contains("    -password=***"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains('\x1b'), "{text}");
    }
}
