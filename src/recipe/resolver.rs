//! `import "name" as m;` in a recipe: the project's `stdlib/name.rhai` first, then the
//! built-in stdlib. Modules are compiled once per process and shared.

use super::sources::{SourceFile, SourceMap, builtin_module};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where the project's own modules come from.
#[derive(Debug, Clone)]
pub(crate) enum ProjectModules {
    /// Built-in modules only (tests of the resolver).
    #[cfg(test)]
    None,
    /// `stdlib/` on disk.
    Dir(PathBuf),
    /// `stdlib/` at a git revision (`--recipes-rev`): repository, path inside it, rev.
    Rev(PathBuf, PathBuf, String),
}

pub(crate) struct StdlibResolver {
    project: ProjectModules,
    sources: SourceMap,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl StdlibResolver {
    pub(crate) fn new(project: ProjectModules, sources: SourceMap) -> Self {
        StdlibResolver {
            project,
            sources,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `import "path"` would find a module (project or built-in).
    pub(crate) fn exists(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    /// The source `import "path"` would load.
    pub(crate) fn source(&self, path: &str) -> Option<SourceFile> {
        self.find(path)
    }

    fn find(&self, path: &str) -> Option<SourceFile> {
        // `catalog/roles/<role>`: an app's role from the project's catalog (the project
        // root, not stdlib/); a role name is a plain name, never a path out of it.
        let role = path.strip_prefix("catalog/roles/").map(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        });
        if role == Some(false) {
            return None;
        }
        let file = format!("{path}.rhai");
        let found = match &self.project {
            #[cfg(test)]
            ProjectModules::None => None,
            ProjectModules::Dir(dir) if role.is_some() => {
                let file = dir.parent()?.join(&file);
                std::fs::read_to_string(&file)
                    .ok()
                    .map(|text| (crate::project::display_path(&file), text))
            }
            ProjectModules::Rev(repo, inside, rev) if role.is_some() => {
                crate::ops::git::read_file_at(repo, rev, &inside.join(&file))
                    .ok()
                    .flatten()
                    .map(|b| {
                        (
                            format!("{file}@{rev}"),
                            String::from_utf8_lossy(&b).into_owned(),
                        )
                    })
            }
            ProjectModules::Dir(dir) => {
                let file = dir.join(&file);
                std::fs::read_to_string(&file)
                    .ok()
                    .map(|text| (crate::project::display_path(&file), text))
            }
            ProjectModules::Rev(repo, inside, rev) => {
                crate::ops::git::read_file_at(repo, rev, &inside.join("stdlib").join(&file))
                    .ok()
                    .flatten()
                    .map(|b| {
                        (
                            format!("stdlib/{file}@{rev}"),
                            String::from_utf8_lossy(&b).into_owned(),
                        )
                    })
            }
        };
        match found {
            Some((name, text)) => Some(SourceFile {
                name,
                text,
                origin: super::sources::Origin::Project,
            }),
            None => builtin_module(path),
        }
    }
}

impl ModuleResolver for StdlibResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some(m) = self.cache.lock().unwrap().get(path) {
            return Ok(m.clone());
        }
        let file = self
            .find(path)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        self.sources.insert(&file.name, &file.text);
        self.sources.insert(&module_key(path), &file.name);
        let mut ast = engine.compile(&file.text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                file.name.clone(),
                EvalAltResult::ErrorParsing(*e.0, e.1).into(),
                pos,
            ))
        })?;
        ast.set_source(file.name.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(file.name.clone(), e, pos)))?;
        let module: Shared<Module> = module.into();
        self.cache
            .lock()
            .unwrap()
            .insert(path.to_string(), module.clone());
        Ok(module)
    }
}

/// Where the source name of an imported module is kept in the `SourceMap`.
pub(crate) fn module_key(path: &str) -> String {
    format!("import:{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in module loads: compiles, and its imports resolve. (A syntax error
    /// in stdlib/ would otherwise surface only when a recipe first imports it.)
    #[test]
    fn every_builtin_module_loads() {
        let scripting = crate::recipe::engine::build(ProjectModules::None);
        let names = super::super::sources::builtin_module_names();
        assert!(names.contains(&"configure".to_string()), "{names:?}");
        for name in names {
            let script = format!("import \"{name}\" as m;");
            if let Err(e) = scripting.engine.run(&script) {
                panic!("stdlib/{name}.rhai does not load: {e}");
            }
        }
    }

    #[test]
    fn catalog_roles_are_names_not_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("catalog/roles")).unwrap();
        std::fs::create_dir_all(dir.path().join("stdlib")).unwrap();
        std::fs::write(
            dir.path().join("catalog/roles/web.rhai"),
            "fn apply(h, v) { true }",
        )
        .unwrap();
        let r = StdlibResolver::new(
            ProjectModules::Dir(dir.path().join("stdlib")),
            SourceMap::default(),
        );
        assert!(r.exists("catalog/roles/web"));
        assert!(!r.exists("catalog/roles/../roles/web"));
        assert!(!r.exists("catalog/roles/"));
    }
}
