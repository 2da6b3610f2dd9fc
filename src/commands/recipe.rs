//! `fleet RECIPE [ARGS]`: runs one recipe function with a run context around it.

use crate::App;
use crate::error::Result;
use crate::journal;
use crate::recipe::diagnostic::{Cause, locate, recipe_error};
use crate::recipe::index::Recipe;
use crate::session::{RunRequest, finish_run, start_run};
use rhai::{CallFnOptions, Dynamic, Scope};
use std::sync::Arc;

/// The recipe's arguments by name, as the journal keeps them for `--retry-failed`.
fn params_of(recipe: &Recipe, values: &[Dynamic]) -> serde_json::Map<String, serde_json::Value> {
    recipe
        .params
        .iter()
        .zip(values)
        .filter_map(|(p, v)| serde_json::to_value(v).ok().map(|v| (p.name.clone(), v)))
        .collect()
}

pub(crate) fn run(
    app: &App,
    recipe: &Recipe,
    values: Vec<Dynamic>,
    raw_args: Vec<String>,
    limit: Option<String>,
) -> Result<i32> {
    let request = RunRequest {
        recipe: recipe.name.clone(),
        args: raw_args,
        params: params_of(recipe, &values),
        limit,
        replays: None,
    };
    run_request(app, recipe, values, request)
}

/// Runs `recipe` with `values` as `request` describes (its hosts, what the journal keeps).
pub(crate) fn run_request(
    app: &App,
    recipe: &Recipe,
    values: Vec<Dynamic>,
    request: RunRequest,
) -> Result<i32> {
    let run = Arc::new(start_run(app, request)?);
    app.scripting.ctx.set_run(run.clone());
    let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
    let result = app.scripting.engine.call_fn_with_options::<Dynamic>(
        options,
        &mut Scope::new(),
        &recipe.ast,
        &recipe.name,
        values,
    );
    let sources = &app.scripting.ctx.sources;
    let mut error = None;
    // After Ctrl-C the recipe ends however it ends: that is not the recipe's fault.
    let failure = result.err().filter(|_| !crate::exec::interrupt::aborted());
    if let Some(err) = failure {
        let located = locate(&err, &recipe.file, sources);
        match &located.cause {
            // A host function failed outside `each`: that host failed, the recipe ended.
            Cause::Host(f) => {
                let at = located
                    .location
                    .as_ref()
                    .map(|l| format!(" (at {l})"))
                    .unwrap_or_default();
                let status = f.status();
                let message = format!("{}{at}", f.message);
                run.mark_failed(&f.host, status, &message);
                run.ui.event(
                    Some(&f.host),
                    &format!("{}: {message}", status.as_str().to_uppercase()),
                );
            }
            Cause::Thrown(_) | Cause::Script(_) => {
                error = error.or(Some(recipe_error(&recipe.name, &located, sources)));
            }
        }
    }
    // The recipe's error is shown once, before the recap; unless the run was stopped
    // (that exit code wins) it decides the exit code.
    Ok(finish_run(app, &run, error))
}

/// `--retry-failed[=RUN]`: the recipe again, with the arguments of RUN (default: its last
/// run), on the hosts that failed or were unreachable there.
pub(crate) fn retry(app: &App, recipe: &Recipe, which: &str) -> Result<i32> {
    let Some((last, failed)) = super::retry_target(app, which, &recipe.name, |_| Ok(()))? else {
        return Ok(0);
    };
    let values = values_of(&last, recipe)?;
    eprintln!(
        "retrying run {} of `{}` on {}",
        last.run_id,
        recipe.name,
        failed.join(", ")
    );
    let mut args = last.args.clone();
    args.push(format!("--retry-failed={}", last.run_id));
    run(app, recipe, values, args, Some(failed.join(",")))
}

/// The recipe's arguments as `record` journaled them, in the order of its parameters.
pub(crate) fn values_of(record: &journal::RunRecord, recipe: &Recipe) -> Result<Vec<Dynamic>> {
    recipe
        .params
        .iter()
        .map(|p| {
            record
                .params
                .get(&p.name)
                .map(crate::script::values::from_json)
                .ok_or_else(|| {
                    crate::error::Error::usage(format!(
                        "run {} has no value for argument `{}` of `{}` (the recipe changed since); run it with its arguments instead",
                        record.run_id, p.name, recipe.name
                    ))
                })
        })
        .collect()
}
