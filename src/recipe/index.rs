//! Every recipe a project can run: the built-in files, then the project's, compiled once.
//! Public functions become commands; a project recipe replaces a built-in one of the
//! same name.

use super::args::{Param, convert};
use super::diagnostic::parse_error;
use super::doc::{self, Doc};
use super::sources::{Origin, SourceFile, SourceMap};
use crate::error::{Error, Result};
use indexmap::IndexMap;
use rhai::{AST, Engine, FnAccess};
use std::sync::Arc;

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

#[derive(Clone, Default)]
pub(crate) struct RecipeIndex {
    /// Recipes in use, by name, sorted.
    pub(crate) recipes: IndexMap<String, Recipe>,
}

impl RecipeIndex {
    /// Compiles `builtin` then `project` files. `reserved` names belong to built-in
    /// commands and cannot be recipes.
    pub(crate) fn load(
        engine: &Engine,
        sources: &SourceMap,
        builtin: Vec<SourceFile>,
        project: Vec<SourceFile>,
        reserved: &[&str],
    ) -> Result<RecipeIndex> {
        let mut recipes: IndexMap<String, Recipe> = IndexMap::new();
        for file in builtin.into_iter().chain(project) {
            for recipe in compile(engine, sources, &file)? {
                if reserved.contains(&recipe.name.as_str()) {
                    return Err(Error::usage_with_help(
                        format!(
                            "{}: recipe `{}` has the name of a built-in fleet command",
                            recipe.file, recipe.name
                        ),
                        "rename the function, or make it `private fn` if it is a helper",
                    ));
                }
                match recipes.get(&recipe.name) {
                    Some(old) if old.origin == Origin::Project => {
                        return Err(Error::usage(format!(
                            "recipe `{}` is defined in both {} and {}; rename one of them",
                            recipe.name, old.file, recipe.file
                        )));
                    }
                    Some(old) => {
                        let overrides = Some(old.file.clone());
                        recipes.insert(
                            recipe.name.clone(),
                            Recipe {
                                overrides,
                                ..recipe
                            },
                        );
                    }
                    None => {
                        recipes.insert(recipe.name.clone(), recipe);
                    }
                }
            }
        }
        recipes.sort_keys();
        Ok(RecipeIndex { recipes })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Recipe> {
        self.recipes
            .get(name)
            .or_else(|| self.recipes.get(&name.replace('-', "_")))
    }
}

fn compile(engine: &Engine, sources: &SourceMap, file: &SourceFile) -> Result<Vec<Recipe>> {
    sources.insert(&file.name, &file.text);
    let mut ast = engine
        .compile(&file.text)
        .map_err(|e| parse_error(&file.name, &file.text, &e))?;
    ast.set_source(file.name.as_str());
    let ast = Arc::new(ast);
    let mut seen = Vec::new();
    let mut recipes = Vec::new();
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
    for f in functions {
        if seen.contains(&f.name) {
            return Err(Error::usage(format!(
                "{}: recipe `{}` is defined more than once; give each its own name",
                file.name, f.name
            )));
        }
        seen.push(f.name);
        let doc = doc::parse(&f.comments)
            .map_err(|e| Error::usage(format!("{}: doc of recipe `{}`: {e}", file.name, f.name)))?;
        for arg in &doc.args {
            if !f.params.contains(&arg.name.as_str()) {
                return Err(Error::usage(format!(
                    "{}: doc of recipe `{}` describes @arg `{}`, but the function has no such parameter (it has: {})",
                    file.name,
                    f.name,
                    arg.name,
                    if f.params.is_empty() {
                        "none".to_string()
                    } else {
                        f.params.join(", ")
                    }
                )));
            }
        }
        let params = f
            .params
            .iter()
            .map(|p| {
                let arg = doc.args.iter().find(|a| a.name == *p);
                let ty = arg.map_or(doc::ArgType::String, |a| a.ty);
                let default = match arg.and_then(|a| a.default.as_deref()) {
                    Some(raw) => Some(convert(ty, raw).map_err(|e| {
                        Error::usage(format!(
                            "{}: default of @arg `{p}` in recipe `{}` {e}",
                            file.name, f.name
                        ))
                    })?),
                    None => None,
                };
                Ok(Param {
                    name: p.to_string(),
                    ty,
                    default,
                    help: arg.map(|a| a.help.clone()).unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
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
    Ok(recipes)
}
