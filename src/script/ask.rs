//! The `ask` module of recipes: menus and questions on the operator's terminal, for
//! values a recipe would otherwise take from its arguments. Pure parts (labels shown
//! safely, defaults) are in `ops::menu`; this reads Rhai options and runs dialoguer
//! with the progress bars set aside.

use super::glue::{module_function, runtime_error};
use crate::ops::menu::{self, Choice, MenuError};
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, Dynamic, EvalAltResult, FuncRegistration, Module, NativeCallContext, Position};

/// An option: a string, or #{ value, label } (label optional); anything else is refused.
fn choices(what: &str, options: &Array, pos: Position) -> Result<Vec<Choice>, Box<EvalAltResult>> {
    let bad = |i: usize, why: &str| {
        runtime_error(
            format!("ask `{}`: option {} {why}", menu::shown(what), i + 1),
            pos,
        )
    };
    let mut out = Vec::with_capacity(options.len());
    for (i, o) in options.iter().enumerate() {
        if let Some(s) = o.read_lock::<rhai::ImmutableString>() {
            out.push(Choice {
                value: s.to_string(),
                label: s.to_string(),
            });
            continue;
        }
        let Some(m) = o.read_lock::<rhai::Map>() else {
            return Err(bad(i, "must be a string or #{ value, label }"));
        };
        if let Some(k) = m.keys().find(|k| !["value", "label"].contains(&k.as_str())) {
            return Err(bad(
                i,
                &format!("has the unknown key `{k}` (known: value, label)"),
            ));
        }
        let text = |key: &str| m.get(key).map(|v| v.clone().into_string());
        let value = match text("value") {
            Some(Ok(v)) => v,
            _ => return Err(bad(i, "needs a string `value`")),
        };
        let label = match text("label") {
            None => value.clone(),
            Some(Ok(l)) => l,
            Some(Err(_)) => return Err(bad(i, "has a `label` that is not a string")),
        };
        out.push(Choice { value, label });
    }
    menu::check(what, &out).map_err(|e| runtime_error(e, pos))?;
    Ok(out)
}

/// Runs a question on the terminal, with the run's progress bars set aside.
fn on_terminal<T>(
    c: &ScriptCtx,
    what: &str,
    pos: Position,
    f: impl FnOnce() -> dialoguer::Result<T>,
) -> Result<T, Box<EvalAltResult>> {
    if !crate::recipe::args::on_terminal() {
        return Err(runtime_error(
            MenuError::NoTerminal {
                what: menu::shown(what),
            },
            pos,
        ));
    }
    let answer = match c.current_run() {
        Some(run) => run.ui.suspend(f),
        None => f(),
    };
    answer.map_err(|e| {
        runtime_error(
            MenuError::Terminal {
                what: menu::shown(what),
                error: e.to_string(),
            },
            pos,
        )
    })
}

fn labels(choices: &[Choice]) -> Vec<String> {
    choices.iter().map(|c| menu::shown(&c.label)).collect()
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "interactive",
        ["bool"],
        "True when this run asked the user on a terminal for missing required arguments (stdin and stderr are a terminal): then a recipe may offer menus (`ask::choose`) for the rest. False under cron, in pipes, and when every required argument was on the command line.",
        move || c.asking().interactive && crate::recipe::args::on_terminal()
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "given",
        ["name: &str", "bool"],
        "Whether the recipe argument `name` was typed on the command line (a value there is never asked again).",
        move |name: &str| c.asking().given.iter().any(|g| g == name)
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "choose",
        [
            "question: &str",
            "options: Array",
            "default: &str",
            "String"
        ],
        "Asks on the terminal for one of `options` (strings, or #{ value, label }: the label shown, the value returned); the cursor starts on `default` (the first option when none has that value), Enter accepts. Labels are shown as one line with control characters made visible. Without a terminal an error says to pass the value on the command line.",
        move |ctx: NativeCallContext,
              question: &str,
              options: Array,
              default: &str|
              -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let list = choices(question, &options, pos)?;
            let start = menu::default_index(&list, Some(default));
            let i = on_terminal(&c, question, pos, || {
                dialoguer::Select::new()
                    .with_prompt(menu::shown(question))
                    .items(labels(&list))
                    .default(start)
                    .interact()
            })?;
            Ok(list[i].value.clone())
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "choose_many",
        [
            "question: &str",
            "options: Array",
            "defaults: Array",
            "Array"
        ],
        "Asks on the terminal for any of `options` (as `ask::choose`): a checklist with the options whose value is in `defaults` ticked; Space ticks, Enter accepts. Returns the ticked values in the options' order.",
        move |ctx: NativeCallContext,
              question: &str,
              options: Array,
              defaults: Array|
              -> Result<Array, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let list = choices(question, &options, pos)?;
            let defaults: Vec<String> = super::catalog::names(&defaults, "ask::choose_many", pos)?;
            let ticked = menu::ticked(&list, &defaults);
            let picked = on_terminal(&c, question, pos, || {
                dialoguer::MultiSelect::new()
                    .with_prompt(format!(
                        "{} (Space ticks, Enter accepts)",
                        menu::shown(question)
                    ))
                    .items(labels(&list))
                    .defaults(&ticked)
                    .interact()
            })?;
            Ok(picked
                .into_iter()
                .map(|i| Dynamic::from(list[i].value.clone()))
                .collect())
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "text",
        ["question: &str", "default: &str", "String"],
        "Asks on the terminal for a line of text; Enter accepts `default` (shown). Without a terminal an error says to pass the value on the command line.",
        move |ctx: NativeCallContext,
              question: &str,
              default: &str|
              -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            on_terminal(&c, question, pos, || {
                dialoguer::Input::<String>::new()
                    .with_prompt(menu::shown(question))
                    .default(default.to_string())
                    .allow_empty(true)
                    .interact_text()
            })
        }
    );
    m
}
