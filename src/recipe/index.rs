//! Every recipe a project can run: the built-in files, then the project's, compiled once.
//! Public functions become commands; a project recipe replaces a built-in one of the
//! same name.

use super::args::{Param, convert};
use super::check::{Problem, arg_line, fn_line};
use super::doc::{self, Doc};
use super::sources::{Origin, SourceFile, SourceMap};
use crate::error::Error;
use indexmap::IndexMap;
use rhai::{AST, Engine, FnAccess};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(crate) struct Recipe {
    pub(crate) name: String,
    /// Source name of the file that defines it.
    pub(crate) file: String,
    pub(crate) origin: Origin,
    pub(crate) doc: Doc,
    pub(crate) params: Vec<Param>,
    pub(crate) ast: Arc<AST>,
    /// The built-in file this project recipe replaces.
    pub(crate) overrides: Option<String>,
}

impl Recipe {
    /// `fleet provision NAME [--cores INT]`
    pub(crate) fn usage(&self) -> String {
        let mut s = format!("fleet {}", self.name);
        for p in &self.params {
            match &p.default {
                None => s.push_str(&format!(" {}", p.value_name())),
                Some(_) => s.push_str(&format!(" [--{} {}]", p.flag(), p.ty.name().to_uppercase())),
            }
        }
        s
    }
}

/// A recipe file (or one recipe of it) that cannot be used: its commands exist, and
/// running one of them ends with the error; every other command works.
#[derive(Clone)]
pub(crate) struct Broken {
    /// Source name of the file.
    pub(crate) file: String,
    /// The commands the file would have defined (its file stem when it does not parse).
    pub(crate) names: Vec<String>,
    /// The error on one line, for `fleet recipes` and the warning.
    pub(crate) message: String,
    /// The error itself, shown when one of its commands is run.
    error: Arc<Mutex<Option<Error>>>,
}

impl Broken {
    fn new(file: &str, names: Vec<String>, error: Error) -> Broken {
        let message = one_line(&error);
        Broken {
            file: file.to_string(),
            names,
            message,
            error: Arc::new(Mutex::new(Some(error))),
        }
    }

    /// The error the file was refused with (its diagnostic, once; a plain copy after).
    pub(crate) fn error(&self) -> Error {
        self.error
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| Error::usage(self.message.clone()))
    }

    /// The one warning line printed by every other command.
    pub(crate) fn warning(&self) -> String {
        let names: Vec<String> = self.names.iter().map(|n| n.replace('_', "-")).collect();
        let text = format!(
            "warning: {} is broken, so `fleet {}` cannot run ({}); `fleet check` shows why",
            self.file,
            names.join("`, `fleet "),
            self.message
        );
        crate::ops::terminal::neutralise(&crate::ops::secrets::redact(&text)).into_owned()
    }
}

/// An error's message and where it is, on one line.
fn one_line(error: &Error) -> String {
    let text = match error {
        Error::Source(e) => match &e.help {
            Some(at) if at.starts_with("at ") => format!("{} {at}", e.message),
            _ => e.message.clone(),
        },
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Clone, Default)]
pub(crate) struct RecipeIndex {
    /// Recipes in use, by name, sorted.
    pub(crate) recipes: IndexMap<String, Recipe>,
    /// Files (or recipes) that could not be loaded, in load order.
    pub(crate) broken: Vec<Broken>,
}

/// What compiling one recipe file found.
pub(crate) struct Compiled {
    pub(crate) recipes: Vec<Recipe>,
    /// The public functions the file defines (its file stem if it does not parse).
    pub(crate) names: Vec<String>,
    /// The AST, when the file parses.
    pub(crate) ast: Option<Arc<AST>>,
    /// Every problem found; any one of them makes the file unusable.
    pub(crate) problems: Vec<Problem>,
    /// Parameters without an `@arg` line: they work (as strings), `fleet check` asks for one.
    pub(crate) undocumented: Vec<Problem>,
}

impl RecipeIndex {
    /// Compiles `builtin` then `project` files. `reserved` names belong to built-in
    /// commands and cannot be recipes. A file that does not compile (or a recipe that
    /// clashes) is kept as broken instead of failing the others.
    pub(crate) fn load(
        engine: &Engine,
        sources: &SourceMap,
        builtin: Vec<SourceFile>,
        project: Vec<SourceFile>,
        reserved: &[&str],
    ) -> RecipeIndex {
        let mut index = RecipeIndex::default();
        for file in builtin.into_iter().chain(project) {
            let compiled = compile(engine, sources, &file);
            if let Some(first) = compiled.problems.first() {
                let error = first.to_error(sources);
                // A broken project file replaces the built-in recipes it would replace.
                for name in &compiled.names {
                    if index
                        .recipes
                        .get(name)
                        .is_some_and(|r| r.origin == Origin::BuiltIn)
                    {
                        index.recipes.shift_remove(name);
                    }
                }
                index
                    .broken
                    .push(Broken::new(&file.name, compiled.names, error));
                continue;
            }
            for recipe in compiled.recipes {
                index.add(recipe, reserved);
            }
        }
        index.recipes.sort_keys();
        index
    }

    fn add(&mut self, recipe: Recipe, reserved: &[&str]) {
        if reserved.contains(&recipe.name.as_str()) {
            let error = Error::usage_with_help(
                format!(
                    "{}: recipe `{}` has the name of a built-in fleet command",
                    recipe.file, recipe.name
                ),
                "rename the function, or make it `private fn` if it is a helper",
            );
            self.broken
                .push(Broken::new(&recipe.file, vec![recipe.name], error));
            return;
        }
        match self.recipes.get(&recipe.name) {
            Some(old) if old.origin == Origin::Project => {
                let error = Error::usage(format!(
                    "recipe `{}` is defined in both {} and {}; rename one of them",
                    recipe.name, old.file, recipe.file
                ));
                self.recipes.shift_remove(&recipe.name);
                self.broken
                    .push(Broken::new(&recipe.file, vec![recipe.name], error));
            }
            Some(old) => {
                let overrides = Some(old.file.clone());
                self.recipes.insert(
                    recipe.name.clone(),
                    Recipe {
                        overrides,
                        ..recipe
                    },
                );
            }
            None => {
                self.recipes.insert(recipe.name.clone(), recipe);
            }
        }
    }

    /// Makes `name` broken with `error` (a clash found after loading).
    pub(crate) fn set_broken(&mut self, name: &str, error: Error) {
        if let Some(recipe) = self.recipes.shift_remove(name) {
            self.broken
                .push(Broken::new(&recipe.file, vec![recipe.name], error));
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Recipe> {
        self.recipes
            .get(name)
            .or_else(|| self.recipes.get(&name.replace('-', "_")))
    }

    /// The broken file that would define command `name`, when no recipe does.
    pub(crate) fn get_broken(&self, name: &str) -> Option<&Broken> {
        if self.get(name).is_some() || crate::cli::BUILTIN_COMMANDS.contains(&name) {
            return None;
        }
        let name = name.replace('-', "_");
        self.broken.iter().find(|b| b.names.contains(&name))
    }

    /// Names of broken commands that no recipe or built-in command has.
    pub(crate) fn broken_names(&self) -> impl Iterator<Item = &str> {
        self.broken
            .iter()
            .flat_map(|b| b.names.iter().map(String::as_str))
    }
}

/// Public functions of `ast` that are commands.
fn commands(ast: &AST) -> Vec<rhai::ScriptFnMetadata<'_>> {
    let mut functions: Vec<_> = ast
        .iter_functions()
        .filter(|f| {
            f.access == FnAccess::Public
                && f.this_type.is_none()
                && !f.name.starts_with("anon$")
                && !f.name.starts_with('_')
        })
        .collect();
    functions.sort_by_key(|f| f.name);
    functions
}

/// The command a file that does not parse was probably meant to define.
fn stem(file: &SourceFile) -> Vec<String> {
    let name = file.name.split('@').next().unwrap_or(&file.name);
    std::path::Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().replace('-', "_"))
        // Only a name that could be a function's: anything else is no command.
        .filter(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .into_iter()
        .collect()
}

pub(crate) fn compile(engine: &Engine, sources: &SourceMap, file: &SourceFile) -> Compiled {
    sources.insert(&file.name, &file.text);
    let mut ast = match engine.compile(&file.text) {
        Ok(ast) => ast,
        Err(e) => {
            return Compiled {
                recipes: Vec::new(),
                names: stem(file),
                ast: None,
                undocumented: Vec::new(),
                problems: vec![
                    Problem::new(
                        "syntax",
                        &file.name,
                        format!("syntax error in {}: {}", file.name, e.err_type()),
                    )
                    .at(e.position()),
                ],
            };
        }
    };
    ast.set_source(file.name.as_str());
    let ast = Arc::new(ast);
    let mut problems = Vec::new();
    let mut undocumented = Vec::new();
    let mut seen = Vec::new();
    let mut recipes = Vec::new();
    let functions = commands(&ast);
    let names: Vec<String> = functions.iter().map(|f| f.name.to_string()).collect();
    for f in functions {
        if seen.contains(&f.name) {
            problems.push(
                Problem::new(
                    "name",
                    &file.name,
                    format!(
                        "{}: recipe `{}` is defined more than once; give each its own name",
                        file.name, f.name
                    ),
                )
                .at_line(fn_line(&file.text, f.name)),
            );
            continue;
        }
        seen.push(f.name);
        let doc = match doc::parse(&f.comments) {
            Ok(doc) => doc,
            Err(e) => {
                problems.push(
                    Problem::new(
                        "doc",
                        &file.name,
                        format!("{}: doc of recipe `{}`: {e}", file.name, f.name),
                    )
                    .at_line(fn_line(&file.text, f.name)),
                );
                continue;
            }
        };
        for p in &f.params {
            if !doc.args.iter().any(|a| a.name == *p) {
                undocumented.push(
                    Problem::new(
                        "doc",
                        &file.name,
                        format!("parameter `{p}` of recipe `{}` has no @arg line", f.name),
                    )
                    .at_line(fn_line(&file.text, f.name))
                    .help(Some(format!(
                        "say what it is in the doc comment: /// @arg {p}: string  what it is"
                    ))),
                );
            }
        }
        let before = problems.len();
        for arg in &doc.args {
            if !f.params.contains(&arg.name.as_str()) {
                let message = format!(
                    "{}: doc of recipe `{}` describes @arg `{}`, but the function has no such parameter (it has: {})",
                    file.name,
                    f.name,
                    arg.name,
                    if f.params.is_empty() {
                        "none".to_string()
                    } else {
                        f.params.join(", ")
                    }
                );
                let help = crate::suggest::closest(&arg.name, f.params.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"));
                problems.push(
                    Problem::new("doc", &file.name, message)
                        .at_line(arg_line(&file.text, f.name, &arg.name))
                        .help(help),
                );
            }
        }
        let mut params = Vec::new();
        for p in &f.params {
            let arg = doc.args.iter().find(|a| a.name == *p);
            let ty = arg.map_or(doc::ArgType::String, |a| a.ty);
            let default = match arg.and_then(|a| a.default.as_deref()) {
                Some(raw) => match convert(ty, raw) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push(
                            Problem::new(
                                "doc",
                                &file.name,
                                format!(
                                    "{}: default of @arg `{p}` in recipe `{}` {e}",
                                    file.name, f.name
                                ),
                            )
                            .at_line(arg_line(&file.text, f.name, p)),
                        );
                        None
                    }
                },
                None => None,
            };
            params.push(Param {
                name: p.to_string(),
                ty,
                default,
                help: arg.map(|a| a.help.clone()).unwrap_or_default(),
            });
        }
        if problems.len() > before {
            continue;
        }
        recipes.push(Recipe {
            name: f.name.to_string(),
            file: file.name.clone(),
            origin: file.origin,
            doc,
            params,
            ast: ast.clone(),
            overrides: None,
        });
    }
    Compiled {
        recipes,
        names,
        ast: Some(ast),
        problems,
        undocumented,
    }
}
