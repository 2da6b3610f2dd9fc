//! The functions written in Rhai that recipes reach: fleet's stdlib modules, the
//! project's `stdlib/` and catalog roles (all through `import`), and the recipes
//! themselves, for `fleet api` and the editor definitions (`fleet api --definitions`).

use super::doc;
use super::index::RecipeIndex;
use super::resolver::StdlibResolver;
use rhai::{AST, Engine, FnAccess};

/// One function of a Rhai module or recipe file.
#[derive(Debug, Clone)]
pub(crate) struct ScriptFn {
    pub(crate) name: String,
    pub(crate) params: Vec<String>,
    /// The doc comment as plain text (empty when there is none).
    pub(crate) doc: String,
}

impl ScriptFn {
    /// `install(h, names)`
    pub(crate) fn signature(&self) -> String {
        format!("{}({})", self.name, self.params.join(", "))
    }
}

/// A module `import "path" as m;` loads, with its public functions.
#[derive(Debug, Clone)]
pub(crate) struct ScriptModule {
    /// The import path: `pkg`, `catalog/roles/web`.
    pub(crate) path: String,
    /// Where it comes from: `<built-in>/stdlib/pkg.rhai`, `stdlib/pkg.rhai`.
    pub(crate) file: String,
    pub(crate) functions: Vec<ScriptFn>,
    /// Why it has no functions: it does not compile.
    pub(crate) problem: Option<String>,
}

/// The public functions of `ast` (not private helpers, not closures), by name.
pub(crate) fn functions_of(ast: &AST) -> Vec<ScriptFn> {
    let mut functions: Vec<ScriptFn> = ast
        .iter_functions()
        .filter(|f| f.access == FnAccess::Public && !f.name.starts_with("anon$"))
        .map(|f| ScriptFn {
            name: f.name.to_string(),
            params: f.params.iter().map(|p| p.to_string()).collect(),
            doc: doc::plain_text(&f.comments),
        })
        .collect();
    functions.sort_by(|a, b| (&a.name, a.params.len()).cmp(&(&b.name, b.params.len())));
    functions
}

/// Every module `import` finds, compiled (not run) to read its functions. A module
/// that does not compile is listed with its problem and no functions (`fleet check`
/// shows where), so one broken file does not hide the others.
pub(crate) fn modules(engine: &Engine, resolver: &StdlibResolver) -> Vec<ScriptModule> {
    resolver
        .module_paths()
        .into_iter()
        .filter_map(|path| resolver.source(&path).map(|file| (path, file)))
        .map(|(path, file)| {
            let (functions, problem) = match engine.compile(&file.text) {
                Ok(ast) => (functions_of(&ast), None),
                Err(e) => (Vec::new(), Some(format!("syntax error: {}", e.err_type()))),
            };
            ScriptModule {
                path,
                file: file.name,
                functions,
                problem,
            }
        })
        .collect()
}

/// The recipes in use as a module of their own: the commands, with their doc.
pub(crate) fn recipes(index: &RecipeIndex) -> Vec<ScriptFn> {
    index
        .recipes
        .values()
        .map(|r| {
            let mut text = r.doc.summary.clone();
            if !r.doc.body.is_empty() {
                text = format!("{text}\n\n{}", r.doc.body);
            }
            text = format!("{text}\n\n`{}` ({})", r.usage(), r.file);
            for p in &r.params {
                text.push_str(&format!("\n@arg {}: {}  {}", p.name, p.ty.name(), p.help));
            }
            ScriptFn {
                name: r.name.clone(),
                params: r.params.iter().map(|p| p.name.clone()).collect(),
                doc: text.trim().to_string(),
            }
        })
        .collect()
}

/// The text of one definition file: `module NAME;` then each function as
/// `/// doc` + `fn name(a: ?, b: ?) -> ?;` (Rhai functions are untyped).
pub(crate) fn definition_file(module: &str, functions: &[ScriptFn]) -> String {
    let mut out = format!("module {module};\n");
    for f in functions {
        out.push('\n');
        for line in f.doc.lines() {
            out.push_str(format!("/// {line}").trim_end());
            out.push('\n');
        }
        let params: Vec<String> = f.params.iter().map(|p| format!("{p}: ?")).collect();
        out.push_str(&format!("fn {}({}) -> ?;\n", f.name, params.join(", ")));
    }
    out
}

/// A module's name in a definition file: its import path, quoted when it is not a
/// plain name (`"catalog/roles/web"`).
pub(crate) fn module_name(path: &str) -> String {
    if path.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        path.to_string()
    } else {
        format!("{path:?}")
    }
}

/// The file a module's definitions go to: `import-pkg.d.rhai`,
/// `import-catalog-roles-web.d.rhai` (never the name of a native module's file).
pub(crate) fn definition_file_name(path: &str) -> String {
    format!("import-{}.d.rhai", path.replace('/', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::resolver::ProjectModules;

    #[test]
    fn every_builtin_stdlib_function_is_documented() {
        let scripting = crate::recipe::engine::build(ProjectModules::None);
        let resolver = StdlibResolver::new(ProjectModules::None, Default::default());
        let modules = modules(&scripting.engine, &resolver);
        assert!(modules.iter().any(|m| m.path == "pkg"), "{modules:?}");
        for m in &modules {
            assert_eq!(m.problem, None, "{}", m.path);
            assert!(!m.functions.is_empty(), "{} has no function", m.path);
            for f in &m.functions {
                assert!(
                    !f.doc.is_empty(),
                    "{}::{} has no doc comment in {}",
                    m.path,
                    f.name,
                    m.file
                );
            }
        }
    }

    #[test]
    fn a_definition_file_lists_functions_with_their_doc() {
        let f = ScriptFn {
            name: "install".into(),
            params: vec!["h".into(), "names".into()],
            doc: "Installs.\nTrue when it did.".into(),
        };
        assert_eq!(
            definition_file("pkg", &[f]),
            "module pkg;\n\n/// Installs.\n/// True when it did.\nfn install(h: ?, names: ?) -> ?;\n"
        );
        assert_eq!(module_name("catalog/roles/web"), "\"catalog/roles/web\"");
        assert_eq!(
            definition_file_name("catalog/roles/web"),
            "import-catalog-roles-web.d.rhai"
        );
    }
}
