//! `fleet check`: compile every recipe, stdlib module, catalog role and the catalog's
//! index without running anything, and report every problem found (not the first).

use crate::App;
use crate::error::{Error, Result};
use crate::ops::catalog::{Catalog, CatalogError, INDEX};
use crate::recipe::check::{self, Known, Modules, Problem, fn_line};
use crate::recipe::index::{Recipe, RecipeIndex, compile};
use crate::recipe::resolver::{ProjectModules, StdlibResolver};
use crate::recipe::sources::{self, Origin, SourceFile, SourceMap};
use rhai::Engine;
use std::io::Write;
use std::path::Path;

/// Everything the check looked at and what it found.
struct Report {
    checked: Vec<String>,
    problems: Vec<Problem>,
}

pub(crate) fn run(app: &App) -> Result<i32> {
    let report = check_project(app)?;
    let sources = &app.scripting.ctx.sources;
    let n = report.problems.len();
    if app.global.json {
        let json = serde_json::json!({
            "checked": report.checked,
            "problems": report.problems,
        });
        let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    } else if n == 0 {
        println!("fleet check: {} files, no problems", report.checked.len());
    } else {
        for p in &report.problems {
            crate::commands::report_error(p.to_error(sources));
        }
        let files = {
            let mut f: Vec<&str> = report.problems.iter().map(|p| p.file.as_str()).collect();
            f.dedup();
            f.len()
        };
        eprintln!(
            "fleet check: {n} problem{} in {files} of {} files",
            if n == 1 { "" } else { "s" },
            report.checked.len()
        );
    }
    Ok(if n == 0 {
        crate::error::exit::OK
    } else {
        crate::error::exit::USAGE
    })
}

fn check_project(app: &App) -> Result<Report> {
    let engine = &app.scripting.engine;
    let sources = &app.scripting.ctx.sources;
    let root = &app.project.root;
    let resolver = StdlibResolver::new(
        ProjectModules::Dir(app.project.stdlib_dir()),
        sources.clone(),
    );
    let project_modules = rhai_files(&app.project.stdlib_dir(), "")?;
    let roles = rhai_files(&root.join("catalog/roles"), "")?;
    let mut names = sources::builtin_module_names();
    names.extend(project_modules.iter().map(|(path, _)| path.clone()));
    names.extend(roles.iter().map(|(r, _)| format!("catalog/roles/{r}")));
    names.sort();
    names.dedup();
    let known = Known::of(engine);
    let mut modules = Modules::new(engine, &resolver, names);
    let mut report = Report {
        checked: Vec::new(),
        problems: Vec::new(),
    };

    let mut compiled_recipes = Vec::new();
    let builtin = sources::builtin_recipes();
    let project = sources::project_recipes(&app.project.recipes_dir())?;
    for file in builtin.iter().chain(&project) {
        report.checked.push(file.name.clone());
        let compiled = compile(engine, sources, file);
        compiled_recipes.extend(
            compiled
                .recipes
                .iter()
                .map(|r| (r.clone(), file.text.clone())),
        );
        let mut found = compiled.problems;
        if let Some(ast) = &compiled.ast {
            found.extend(check::calls(ast, &file.name, &known, &mut modules));
        }
        found.extend(compiled.undocumented);
        for name in &compiled.names {
            if crate::cli::BUILTIN_COMMANDS.contains(&name.as_str()) {
                found.push(
                    Problem::new(
                        "name",
                        &file.name,
                        format!(
                            "{}: recipe `{name}` has the name of a built-in fleet command",
                            file.name
                        ),
                    )
                    .at_line(fn_line(&file.text, name))
                    .help(Some(
                        "rename the function, or make it `private fn` if it is a helper"
                            .to_string(),
                    )),
                );
            }
        }
        report.add(found);
    }
    report.add(clashes(compiled_recipes));

    for name in sources::builtin_module_names() {
        if let Some(file) = sources::builtin_module(&name) {
            report.module(engine, sources, &file, &known, &mut modules, false);
        }
    }
    for (_, file) in &project_modules {
        let file = SourceFile {
            name: crate::project::display_path(file),
            text: read(file)?,
            origin: Origin::Project,
        };
        report.module(engine, sources, &file, &known, &mut modules, false);
    }
    for (_, file) in &roles {
        let file = SourceFile {
            name: crate::project::display_path(file),
            text: read(file)?,
            origin: Origin::Project,
        };
        report.module(engine, sources, &file, &known, &mut modules, true);
    }
    let access = root.join(crate::ops::access::ACCESS_FILE);
    if access.exists() {
        report
            .checked
            .push(crate::ops::access::ACCESS_FILE.to_string());
        if let Err(found) = crate::ops::access::Access::load(root) {
            report.add(found.into_iter().map(access_problem).collect());
        }
    }
    let index = root.join(INDEX);
    if index.exists() {
        report.checked.push(INDEX.to_string());
        let text = read(&index)?;
        report.add(catalog(&text, &roles));
    }
    Ok(report)
}

impl Report {
    /// Adds one file's problems, in the order of their lines.
    fn add(&mut self, mut found: Vec<Problem>) {
        found.sort_by_key(|p| (p.line, p.column));
        self.problems.extend(found);
    }

    /// A stdlib module or a catalog role (`role`: it must have `fn apply(h, vars)`).
    fn module(
        &mut self,
        engine: &Engine,
        sources: &SourceMap,
        file: &SourceFile,
        known: &Known,
        modules: &mut Modules,
        role: bool,
    ) {
        self.checked.push(file.name.clone());
        sources.insert(&file.name, &file.text);
        let ast = match engine.compile(&file.text) {
            Ok(ast) => ast,
            Err(e) => {
                self.add(vec![
                    Problem::new(
                        "syntax",
                        &file.name,
                        format!("syntax error in {}: {}", file.name, e.err_type()),
                    )
                    .at(e.position()),
                ]);
                return;
            }
        };
        let mut found = check::calls(&ast, &file.name, known, modules);
        if role
            && !ast
                .iter_functions()
                .any(|f| f.name == "apply" && f.params.len() == 2)
        {
            found.push(
                Problem::new(
                    "role",
                    &file.name,
                    format!("catalog role {} has no `fn apply(h, vars)`", file.name),
                )
                .at_line(fn_line(&file.text, "apply"))
                .help(Some(
                    "`fleet configure` calls the role's apply(h, vars) for each host that has its app"
                        .to_string(),
                )),
            );
        }
        self.add(found);
    }
}

/// Recipes defined in two project files, and recipe arguments that would be one of
/// fleet's own options. `recipes`: every recipe that compiled, with its file's text.
fn clashes(recipes: Vec<(Recipe, String)>) -> Vec<Problem> {
    let mut found = Vec::new();
    let mut index = RecipeIndex::default();
    for (i, (recipe, text)) in recipes.iter().enumerate() {
        let first = recipes[..i]
            .iter()
            .find(|(r, _)| r.name == recipe.name && r.origin == Origin::Project);
        if let (Some((first, _)), Origin::Project) = (first, recipe.origin) {
            found.push(
                Problem::new(
                    "name",
                    &recipe.file,
                    format!(
                        "recipe `{}` is defined in both {} and {}; rename one of them",
                        recipe.name, first.file, recipe.file
                    ),
                )
                .at_line(fn_line(text, &recipe.name)),
            );
        }
        index.recipes.insert(recipe.name.clone(), recipe.clone());
    }
    for (name, error) in crate::cli::recipe_flag_clashes(&index) {
        if let Some((recipe, text)) = recipes.iter().find(|(r, _)| r.name == name) {
            found
                .push(problem_of("name", &recipe.file, error).at_line(fn_line(text, &recipe.name)));
        }
    }
    found
}

fn problem_of(kind: &'static str, file: &str, error: Error) -> Problem {
    match error {
        Error::Usage { message, help } => Problem::new(kind, file, message).help(help),
        other => Problem::new(kind, file, other.to_string()),
    }
}

/// An error of access.toml or keys/*.pub (warnings need the inventory: `fleet keys plan`).
fn access_problem(p: crate::ops::access::Problem) -> Problem {
    Problem {
        kind: "access",
        file: p.file.clone(),
        line: Some(p.line),
        column: None,
        // The location in the message: the source is not in the engine's source map.
        message: format!("{}:{}: {}", p.file, p.line, p.message),
        help: Some("README, section Access, shows the format".into()),
    }
}

/// The catalog's index: its fields, its depends (cycles), and a role file for each app.
fn catalog(text: &str, roles: &[(String, std::path::PathBuf)]) -> Vec<Problem> {
    let catalog = match Catalog::parse(INDEX, text) {
        Ok(c) => c,
        Err(e) => return vec![Problem::new("catalog", INDEX, e.to_string())],
    };
    let mut found = Vec::new();
    let all: Vec<String> = catalog.apps.iter().map(|a| a.name.clone()).collect();
    if let Err(e @ CatalogError::Cycle(_)) = catalog.resolve(&all) {
        found.push(Problem::new("catalog", INDEX, format!("{INDEX}: {e}")));
    }
    for app in &catalog.apps {
        if !roles.iter().any(|(r, _)| *r == app.role) {
            let help = crate::suggest::closest(&app.role, roles.iter().map(|(r, _)| r.as_str()))
                .map(|c| format!("did you mean role `{c}`?"))
                .or(Some(format!(
                    "create catalog/roles/{}.rhai with fn apply(h, vars)",
                    app.role
                )));
            found.push(
                Problem::new(
                    "catalog",
                    INDEX,
                    format!(
                        "{INDEX}: app `{}` has role `{}`, but catalog/roles/{}.rhai does not exist",
                        app.name, app.role, app.role
                    ),
                )
                .help(help),
            );
        }
    }
    found
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(Error::read(path))
}

/// `*.rhai` files under `dir` (recursively), as (import path without `.rhai`, file),
/// sorted; none when the directory does not exist.
fn rhai_files(dir: &Path, prefix: &str) -> Result<Vec<(String, std::path::PathBuf)>> {
    // Deep enough for any real layout; a symlink loop ends here.
    if prefix.matches('/').count() > 8 {
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::read(dir)(e)),
    };
    let mut found = Vec::new();
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if path.is_dir() {
            found.extend(rhai_files(&path, &format!("{prefix}{name}/"))?);
        } else if let Some(stem) = name.strip_suffix(".rhai") {
            found.push((format!("{prefix}{stem}"), path));
        }
    }
    Ok(found)
}
