//! The one Rhai engine of a process: strict variables, fleet's function modules, the
//! stdlib resolver, and `print` routed to the run's output.

use super::resolver::{ProjectModules, StdlibResolver};
use super::sources::SourceMap;
use crate::exec::current;
use crate::exec::run::Run;
use rhai::{Dynamic, Engine, EvalAltResult};
use std::sync::{Arc, RwLock};

/// What script functions reach: the run in progress (none while only listing recipes),
/// how its arguments were given (for `ask::`) and the source texts for diagnostics.
#[derive(Clone, Default)]
pub(crate) struct ScriptCtx {
    run: Arc<RwLock<Option<Arc<Run>>>>,
    asking: Arc<RwLock<Asking>>,
    pub(crate) sources: SourceMap,
}

/// How the recipe's arguments came: `interactive` when fleet asked the user on a
/// terminal for missing required ones; `given` names those typed on the command line.
#[derive(Clone, Debug, Default)]
pub(crate) struct Asking {
    pub(crate) interactive: bool,
    pub(crate) given: Vec<String>,
}

impl ScriptCtx {
    pub(crate) fn set_asking(&self, asking: Asking) {
        *self.asking.write().unwrap() = asking;
    }

    pub(crate) fn asking(&self) -> Asking {
        self.asking.read().unwrap().clone()
    }

    pub(crate) fn set_run(&self, run: Arc<Run>) {
        *self.run.write().unwrap() = Some(run);
    }

    pub(crate) fn current_run(&self) -> Option<Arc<Run>> {
        self.run.read().unwrap().clone()
    }

    /// The run, or an error for functions called outside one (e.g. `fleet api` tests).
    pub(crate) fn run(&self) -> Result<Arc<Run>, Box<EvalAltResult>> {
        self.current_run()
            .ok_or_else(|| "host functions are only available while a recipe runs".into())
    }
}

pub(crate) struct Scripting {
    pub(crate) engine: Engine,
    pub(crate) ctx: ScriptCtx,
    /// Where `import` finds the project's modules (for `fleet api` and definitions).
    pub(crate) modules: ProjectModules,
}

pub(crate) fn build(project_modules: ProjectModules) -> Scripting {
    let ctx = ScriptCtx::default();
    let mut engine = Engine::new();
    engine.set_strict_variables(true);
    // Debug builds default to shallow limits that nested closures (each + step) exceed.
    engine.set_max_expr_depths(128, 64);
    // Debug builds default to 8 call levels; a configure run nests recipe -> each ->
    // module -> step -> role -> pkg -> filter closure. Release builds' 64, always.
    engine.set_max_call_levels(64);
    // A missing key of a map (`h.vars.port`, a result map) reads as `()`, so
    // `h.vars.port ?? 8080` gives the default instead of ending the host with "Property
    // not found". The price: a misspelt key also reads as `()`; option maps fleet takes
    // are still checked key by key (unknown keys are refused).
    engine.set_fail_on_invalid_map_property(false);
    // `sync` is only reserved by Rhai for a future keyword; fleet's `h.sync(…)` uses it
    // as a plain name (Rhai has no other meaning for it).
    #[allow(deprecated)] // "volatile", not deprecated: see Engine::on_parse_token
    engine.on_parse_token(|token, _, _| match token {
        rhai::Token::Reserved(s) if s.as_str() == "sync" => rhai::Token::Identifier(s),
        other => other,
    });
    let modules = StdlibResolver::new(project_modules.clone(), ctx.sources.clone());
    engine.set_module_resolver(StdlibResolver::new(
        project_modules.clone(),
        ctx.sources.clone(),
    ));
    crate::script::register_all(&mut engine, &ctx, modules);
    super::diagnostic::remember_signatures(&engine, &project_modules);

    // Ctrl-C ends the recipe at its next statement, not only its commands.
    engine.on_progress(|_| crate::exec::interrupt::aborted().then(|| Dynamic::from("interrupted")));
    let print_ctx = ctx.clone();
    engine.on_print(move |text| match print_ctx.current_run() {
        Some(run) => {
            let host = current::host();
            // -q: a cron run prints nothing when all went well (the log keeps it).
            if run.ui.options.verbosity >= 0 {
                run.ui.out(host.as_deref(), text);
            }
            run.tag
                .host_message(host.as_deref(), current::step().as_deref(), text);
        }
        None => println!("{}", crate::ops::terminal::neutralise(text)),
    });
    let debug_ctx = ctx.clone();
    engine.on_debug(move |text, source, pos| {
        let at = match (source, pos.line()) {
            (Some(s), Some(l)) => format!("[{s}:{l}] "),
            _ => String::new(),
        };
        match debug_ctx.current_run() {
            Some(run) => run
                .ui
                .event(current::host().as_deref(), &format!("{at}{text}")),
            None => eprintln!("{at}{}", crate::ops::terminal::neutralise(text)),
        }
    });
    Scripting {
        engine,
        ctx,
        modules: project_modules,
    }
}
