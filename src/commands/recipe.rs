//! `fleet RECIPE [ARGS]`: runs one recipe function with a run context around it.

use super::{finish_run, start_run};
use crate::App;
use crate::error::{Result, exit};
use crate::exec::status::HostStatus;
use crate::recipe::catalog::Recipe;
use crate::recipe::diagnostic::{Cause, locate, recipe_error};
use rhai::{CallFnOptions, Dynamic, Scope};
use std::sync::Arc;

pub fn run(app: &App, recipe: &Recipe, values: Vec<Dynamic>, raw_args: Vec<String>) -> Result<i32> {
    let run = Arc::new(start_run(app, &recipe.name, &raw_args)?);
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
    let mut error = run.take_recipe_error();
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
                let status = if f.unreachable {
                    HostStatus::Unreachable
                } else {
                    HostStatus::Failed
                };
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
    let code = finish_run(app, &run);
    match error {
        Some(e) => {
            run.tag.run_ended(exit::USAGE);
            Err(e)
        }
        None => Ok(code),
    }
}
