//! fleet: run versioned Rhai recipes against a fleet of servers.

pub mod cli;
pub mod commands;
pub mod error;
pub mod exec;
pub mod inventory;
pub mod journal;
pub mod ops;
pub mod outcome;
pub mod project;
pub mod recipe;
pub mod script;
pub mod session;
pub mod suggest;
pub mod sysinfo;
pub mod table;
pub mod transport;

use clap::FromArgMatches;
use cli::{Builtin, Cli, GlobalArgs};
use error::{Error, Result};
use recipe::index::RecipeIndex;
use std::ffi::OsString;

/// Everything a command needs: the project, the engine and its recipes.
pub(crate) struct App {
    pub project: project::Project,
    pub scripting: recipe::engine::Scripting,
    pub recipes: RecipeIndex,
    pub global: GlobalArgs,
}

/// The project's scripting engine and recipes, at `recipes_rev` when given.
pub(crate) fn load_recipes(
    project: &project::Project,
    recipes_rev: Option<&str>,
) -> Result<(recipe::engine::Scripting, RecipeIndex)> {
    // Recipes depend on the project and revision, so both are read before parsing.
    let (modules, project_recipes) = match recipes_rev {
        Some(rev) => {
            let (repo, inside) = recipe::sources::repo_of(&project.root)?;
            (
                recipe::resolver::ProjectModules::Rev(repo, inside, rev.to_string()),
                recipe::sources::project_recipes_at(&project.root, rev)?,
            )
        }
        None => (
            recipe::resolver::ProjectModules::Dir(project.stdlib_dir()),
            recipe::sources::project_recipes(&project.recipes_dir())?,
        ),
    };
    let scripting = recipe::engine::build(modules);
    let mut recipes = RecipeIndex::load(
        &scripting.engine,
        &scripting.ctx.sources,
        recipe::sources::builtin_recipes(),
        project_recipes,
        cli::BUILTIN_COMMANDS,
    );
    for (name, error) in cli::recipe_flag_clashes(&recipes) {
        recipes.set_broken(&name, error);
    }
    Ok((scripting, recipes))
}

/// One line on stderr per broken recipe file, for every command but those that show
/// the problem themselves (running a broken recipe, `fleet check`).
fn warn_broken(recipes: &RecipeIndex) {
    for broken in &recipes.broken {
        eprintln!("{}", broken.warning());
    }
}

/// One recipe run asked for without a command line of fleet's own: pull mode, which
/// has synced a checkout and runs one recipe of it on this host.
pub(crate) struct Invocation {
    /// The project: the checkout.
    pub directory: std::path::PathBuf,
    /// Fleet's options for the run (inventory, limit, state directory, check, ...).
    pub global: GlobalArgs,
    pub recipe: String,
    /// The recipe's own arguments, as typed after its name.
    pub args: Vec<String>,
}

/// Runs `inv` as `fleet RECIPE ARGS` would with its options; returns the exit code.
pub(crate) fn run_invocation(inv: Invocation) -> Result<i32> {
    let project = project::Project::locate(Some(&inv.directory), &inv.directory)?;
    let (scripting, recipes) = load_recipes(&project, inv.global.recipes_rev.as_deref())?;
    let mut app = App {
        project,
        scripting,
        recipes,
        global: inv.global,
    };
    apply_state_dir(&mut app);
    if let Some(broken) = app.recipes.get_broken(&inv.recipe) {
        return Err(broken.error());
    }
    warn_broken(&app.recipes);
    let Some(recipe) = app.recipes.get(&inv.recipe).cloned() else {
        return Err(Error::usage_with_help(
            format!("the repository has no recipe `{}`", inv.recipe),
            "`fleet recipes` in a checkout of it lists them",
        ));
    };
    let sub = cli::recipe_command(&recipe, !recipe::args::on_terminal());
    let argv = std::iter::once(recipe.name.clone()).chain(inv.args.iter().cloned());
    let matches = match sub.try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return Ok(outcome::exit_code(&outcome::Ending::Cli {
                help: !e.use_stderr(),
            }));
        }
    };
    let values = recipe::args::bind(&recipe.name, &recipe.params, &matches, None)
        .map_err(|e| Error::usage(e.to_string()))?;
    let limit = app.global.limit.clone();
    commands::recipe::run(&app, &recipe, values, inv.args, limit)
}

/// `--state-dir`, made absolute so that Project::state_dir's join keeps it as it is.
fn apply_state_dir(app: &mut App) {
    if let Some(dir) = app.global.state_dir.clone() {
        app.project.config.state_dir = Some(std::path::absolute(&dir).unwrap_or(dir));
    }
}

/// Runs fleet with these arguments; returns the exit code of a finished run.
pub fn run(args: Vec<OsString>) -> Result<i32> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::Internal(format!("no working directory: {e}")))?;
    let project = project::Project::locate(cli::prescan_directory(&args).as_deref(), &cwd)?;
    let (scripting, recipes) = load_recipes(
        &project,
        cli::prescan_value(&args, "--recipes-rev").as_deref(),
    )?;
    let retrying = args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a.to_string_lossy().starts_with("--retry-failed"));
    let command = cli::command(&recipes, retrying);
    let matches = match command.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return Ok(outcome::exit_code(&outcome::Ending::Cli {
                help: !e.use_stderr(),
            }));
        }
    };
    if let Some((name, _)) = matches.subcommand() {
        if let Some(broken) = recipes.get_broken(name) {
            return Err(broken.error());
        }
        if name != "check" {
            warn_broken(&recipes);
        }
    }
    let global = match matches.subcommand() {
        Some((name, sub)) => cli::scoped_options(&matches, name, recipes.get(name).is_some(), sub)?,
        None => {
            GlobalArgs::from_arg_matches(&matches).map_err(|e| Error::Internal(e.to_string()))?
        }
    };
    let mut app = App {
        project,
        scripting,
        recipes,
        global,
    };
    apply_state_dir(&mut app);
    if let Some((name, sub)) = matches.subcommand()
        && let Some(recipe) = app.recipes.get(name)
    {
        let recipe = recipe.clone();
        commands::signed::require_recipes(&app, app.global.recipes_rev.as_deref())?;
        if let Some(which) = app.global.retry_failed.as_deref() {
            return commands::recipe::retry(&app, &recipe, which);
        }
        let ask: Option<recipe::args::Ask> =
            recipe::args::on_terminal().then_some(&recipe::args::ask_on_terminal);
        let values = recipe::args::bind(&recipe.name, &recipe.params, sub, ask)
            .map_err(|e| Error::usage(e.to_string()))?;
        let given = recipe::args::from_command_line(&recipe.params, sub);
        // Asked only when a required argument was missing: then the recipe may offer
        // menus for the rest (`ask::interactive`).
        let interactive = ask.is_some()
            && recipe
                .params
                .iter()
                .any(|p| p.default.is_none() && !given.contains(&p.name));
        app.scripting
            .ctx
            .set_asking(recipe::engine::Asking { interactive, given });
        // The command line as typed, without `fleet` and the recipe's name.
        let mut raw: Vec<String> = args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(i) = raw.iter().position(|a| *a == recipe.name || *a == name) {
            raw.remove(i);
        }
        let limit = app.global.limit.clone();
        return commands::recipe::run(&app, &recipe, values, raw, limit);
    }
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Error::Internal(e.to_string()))?;
    match cli.command {
        Some(Builtin::Hosts { pattern }) => commands::hosts::run(&app, &pattern),
        Some(Builtin::Exec { pattern, command }) => {
            let command = (!command.is_empty()).then(|| command.join(" "));
            match app.global.retry_failed.clone() {
                Some(which) => commands::adhoc::retry(&app, &which, pattern, command),
                None => match (pattern, command) {
                    (Some(pattern), Some(command)) => {
                        let limit = app.global.limit.clone();
                        commands::adhoc::run(&app, &pattern, &command, limit, Vec::new())
                    }
                    _ => Err(Error::usage_with_help(
                        "fleet exec needs a host pattern and a command after `--`",
                        "for example: fleet exec all -- uptime",
                    )),
                },
            }
        }
        Some(Builtin::Connect { host, command }) => commands::connect::run(&app, &host, &command),
        Some(Builtin::History {
            host,
            recipe,
            since,
        }) => {
            commands::history::history(&app, host.as_deref(), recipe.as_deref(), since.as_deref())
        }
        Some(Builtin::Show { run }) => commands::history::show(&app, &run),
        Some(Builtin::ConfigDiff { host, runs }) => {
            commands::history::config_diff(&app, &host, &runs)
        }
        Some(Builtin::Backups { pattern }) => commands::backups::run(&app, &pattern),
        Some(Builtin::Restore {
            host,
            args,
            to,
            job,
            yes,
        }) => commands::restore::run(
            &app,
            commands::restore::RestoreArgs {
                host,
                args,
                to,
                job,
                yes,
            },
        ),
        Some(Builtin::Catalog {
            catalog_repo,
            catalog_rev,
        }) => commands::catalog::run(&app, catalog_repo.as_deref(), catalog_rev.as_deref()),
        Some(Builtin::Status {
            pattern,
            cached,
            outdated,
            unreachable,
            drifted,
        }) => commands::status::run(
            &app,
            &pattern,
            cached,
            commands::status::Filters {
                outdated,
                unreachable,
                drifted,
            },
        ),
        Some(Builtin::Drift {
            pattern,
            recipe,
            show,
        }) => match show {
            Some(host) => commands::drift::show(&app, &host, &recipe),
            None => commands::drift::run(app, &pattern, &recipe),
        },
        Some(Builtin::Results {
            action,
            from,
            prefix,
            controllers,
        }) => commands::results::run(&app, action, from.as_deref(), &prefix, &controllers),
        Some(Builtin::Report { html, runs }) => commands::report::run(&app, &html, runs),
        Some(Builtin::Serve {
            listen,
            add_user,
            role,
            remove_user,
            secure_cookies,
            pull,
        }) => match (add_user, remove_user) {
            (Some(name), _) => commands::serve::add_user(&app, &name, role.as_deref()),
            (None, Some(name)) => commands::serve::remove_user(&app, &name),
            (None, None) => commands::serve::run(&app, &listen, secure_cookies, &pull),
        },
        Some(Builtin::Pull {
            enroll:
                Some(cli::PullCommand::Enroll {
                    pattern,
                    repo,
                    recipe,
                    interval,
                    push_results,
                    print,
                    allowed_signers,
                    unsigned: _,
                }),
            ..
        }) => commands::pull::enroll(
            &app,
            &commands::pull::EnrollArgs {
                pattern: &pattern,
                repo: &repo,
                recipe: &recipe,
                interval: &interval,
                push_results: push_results.as_deref(),
                print,
                allowed_signers: allowed_signers.as_deref(),
            },
        ),
        Some(Builtin::Pull {
            enroll: Some(cli::PullCommand::Verify(v)),
            ..
        }) => commands::pull_signed::verify(&app, *v),
        Some(Builtin::Pull {
            enroll: None,
            repo,
            rev,
            dir,
            host,
            push_results,
            recipe,
            args,
        }) => commands::pull::run(
            &app,
            commands::pull::PullArgs {
                // clap requires both without a subcommand.
                repo: repo.unwrap_or_default(),
                rev,
                dir,
                host,
                push_results,
                recipe: recipe.unwrap_or_default(),
                args,
            },
        ),
        Some(Builtin::Replay { run, allow_dirty }) => commands::replay::run(app, &run, allow_dirty),
        Some(Builtin::Test {
            filter,
            keep,
            build_image,
            image,
        }) => {
            // The command line after `fleet test`, for the run's log and journal.
            let mut raw: Vec<String> = args
                .iter()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if let Some(i) = raw.iter().position(|a| a == "test") {
                raw.remove(i);
            }
            let args = commands::test::TestArgs {
                filter,
                keep,
                build_image,
                image,
            };
            commands::test::run(app, args, raw)
        }
        Some(Builtin::Keys {
            action,
            target,
            live,
        }) => commands::keys::run(&app, action, target, live),
        Some(Builtin::User {
            action,
            name,
            on,
            sudo,
            key,
        }) => commands::user::run(
            &app,
            action,
            &commands::user::AddArgs {
                name,
                on,
                sudo,
                key,
            },
        ),
        Some(Builtin::Guest {
            action,
            names,
            cores,
            memory,
            disk,
        }) => commands::guest::run(
            &app,
            &commands::guest::GuestArgs {
                action,
                names,
                cores,
                memory,
                disk,
            },
        ),
        Some(Builtin::Image {
            action,
            url,
            node,
            storage,
            sha512,
        }) => commands::image::run(
            &app,
            &commands::image::ImageArgs {
                action,
                url,
                node,
                storage,
                sha512,
            },
        ),
        Some(Builtin::Recipes) => commands::recipes::list(&app),
        Some(Builtin::Check) => commands::check::run(&app),
        Some(Builtin::Help { name }) => commands::recipes::help(&app, name.as_deref()),
        Some(Builtin::Init { dir }) => commands::init::run(&dir),
        Some(Builtin::Api { definitions }) => commands::api::run(&app, definitions.as_deref()),
        Some(Builtin::Completions { shell }) => {
            let mut cmd = cli::command(&app.recipes, false);
            clap_complete::generate(shell, &mut cmd, "fleet", &mut std::io::stdout());
            Ok(0)
        }
        None => {
            let _ = cli::command(&app.recipes, false).print_help();
            Ok(outcome::exit_code(&outcome::Ending::Cli { help: false }))
        }
    }
}
