//! `import "name" as m;` in a recipe: the project's `stdlib/name.rhai` first, then the
//! built-in stdlib. Modules are compiled once per process and shared.

use super::sources::{SourceFile, SourceMap, builtin_module};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct StdlibResolver {
    project_dir: Option<PathBuf>,
    sources: SourceMap,
    cache: Mutex<HashMap<String, Shared<Module>>>,
}

impl StdlibResolver {
    pub fn new(project_dir: Option<PathBuf>, sources: SourceMap) -> Self {
        StdlibResolver {
            project_dir,
            sources,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn find(&self, path: &str) -> Option<SourceFile> {
        if let Some(dir) = &self.project_dir {
            let file = dir.join(format!("{path}.rhai"));
            if let Ok(text) = std::fs::read_to_string(&file) {
                return Some(SourceFile {
                    name: crate::project::display_path(&file),
                    text,
                    origin: super::sources::Origin::Project,
                });
            }
        }
        builtin_module(path)
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
pub fn module_key(path: &str) -> String {
    format!("import:{path}")
}
