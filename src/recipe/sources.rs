//! Where recipe text comes from: the built-in `recipes/` and `stdlib/` embedded in the
//! binary, and the project's own files on disk. Every text is kept by name so errors
//! can show the source line.

use crate::error::{Error, Result};
use include_dir::{Dir, include_dir};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

static BUILTIN_RECIPES: Dir = include_dir!("$CARGO_MANIFEST_DIR/recipes");
static BUILTIN_STDLIB: Dir = include_dir!("$CARGO_MANIFEST_DIR/stdlib");

/// Names of embedded files start with this, so they never look like project files.
pub(crate) const BUILTIN_PREFIX: &str = "<built-in>/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    BuiltIn,
    Project,
}

#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Shown in messages: `recipes/web.rhai` or `<built-in>/recipes/facts.rhai`.
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) origin: Origin,
}

/// Every source text seen in this process, by name, for diagnostics.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceMap(Arc<RwLock<HashMap<String, String>>>);

impl SourceMap {
    pub(crate) fn insert(&self, name: &str, text: &str) {
        self.0
            .write()
            .unwrap()
            .insert(name.to_string(), text.to_string());
    }

    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.0.read().unwrap().get(name).cloned()
    }
}

fn rhai_files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut files: Vec<_> = dir
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "rhai"))
        .collect();
    files.sort_by_key(|f| f.path());
    files
}

pub(crate) fn builtin_recipes() -> Vec<SourceFile> {
    rhai_files(&BUILTIN_RECIPES)
        .into_iter()
        .map(|f| SourceFile {
            name: format!("{BUILTIN_PREFIX}recipes/{}", f.path().display()),
            text: f.contents_utf8().unwrap_or_default().to_string(),
            origin: Origin::BuiltIn,
        })
        .collect()
}

/// A built-in stdlib module by import path (`"facts"` -> `stdlib/facts.rhai`).
pub(crate) fn builtin_module(path: &str) -> Option<SourceFile> {
    let file = BUILTIN_STDLIB.get_file(format!("{path}.rhai"))?;
    Some(SourceFile {
        name: format!("{BUILTIN_PREFIX}stdlib/{path}.rhai"),
        text: file.contents_utf8().unwrap_or_default().to_string(),
        origin: Origin::BuiltIn,
    })
}

/// Import paths of the built-in stdlib modules.
pub(crate) fn builtin_module_names() -> Vec<String> {
    rhai_files(&BUILTIN_STDLIB)
        .into_iter()
        .filter_map(|f| {
            f.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect()
}

/// The git repository holding `root`, and `root`'s path inside it.
pub(crate) fn repo_of(root: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let repo = git2::Repository::discover(root).map_err(|_| {
        Error::usage(format!(
            "--recipes-rev needs the project to be in a git repository, and {} is not",
            crate::project::display_path(root)
        ))
    })?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::usage("--recipes-rev needs a repository with a work tree"))?
        .canonicalize()
        .map_err(Error::read(root))?;
    let root = root.canonicalize().map_err(Error::read(root))?;
    let inside = root
        .strip_prefix(&workdir)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    Ok((workdir, inside))
}

/// The project's `recipes/*.rhai` as they are at git revision `rev` (no checkout).
pub(crate) fn project_recipes_at(root: &Path, rev: &str) -> Result<Vec<SourceFile>> {
    let (repo, inside) = repo_of(root)?;
    crate::ops::git::resolve_rev(&repo, rev).map_err(|e| {
        Error::usage_with_help(
            format!("--recipes-rev {rev}: {e}"),
            "give a tag, branch or commit of the project's repository",
        )
    })?;
    let files = crate::ops::git::list_dir_at(&repo, rev, &inside.join("recipes"))?;
    Ok(files
        .into_iter()
        .filter(|(name, _)| name.ends_with(".rhai"))
        .map(|(name, content)| SourceFile {
            name: format!("recipes/{name}@{rev}"),
            text: String::from_utf8_lossy(&content).into_owned(),
            origin: Origin::Project,
        })
        .collect())
}

/// The project's `recipes/*.rhai`, sorted by name; none when the directory is absent.
pub(crate) fn project_recipes(dir: &Path) -> Result<Vec<SourceFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::read(dir)(e)),
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(Error::read(&p))?;
            Ok(SourceFile {
                name: crate::project::display_path(&p),
                text,
                origin: Origin::Project,
            })
        })
        .collect()
}
