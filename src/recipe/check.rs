//! What `fleet check` finds in a Rhai file before anything runs: calls to functions
//! that exist nowhere (or not with that many arguments) and imports of modules that do
//! not exist. Every problem is kept, none ends the check.
//!
//! Known functions are the engine's (fleet's and Rhai's standard library, from its
//! metadata), the file's own, and those of the modules it imports. When a call cannot
//! be judged (a dynamic import, a variable that may hold a function pointer, a method
//! that may be a map's closure), it is not reported: a false alarm about a working
//! recipe costs more than a missed rare case.

use super::resolver::StdlibResolver;
use super::sources::SourceMap;
use crate::error::{Error, SourceError};
use rhai::{AST, ASTNode, Engine, Expr, Position, Stmt};
use std::collections::{BTreeSet, HashMap, HashSet};

/// One problem in one file.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Problem {
    /// syntax, function, arguments, import, doc, name, catalog, role
    pub(crate) kind: &'static str,
    pub(crate) file: String,
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

impl Problem {
    pub(crate) fn new(kind: &'static str, file: &str, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            file: file.to_string(),
            line: None,
            column: None,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn at(mut self, pos: Position) -> Problem {
        self.line = pos.line();
        self.column = pos.position();
        self
    }

    pub(crate) fn at_line(mut self, line: Option<(usize, usize)>) -> Problem {
        if let Some((l, c)) = line {
            self.line = Some(l);
            self.column = Some(c);
        }
        self
    }

    pub(crate) fn help(mut self, help: Option<String>) -> Problem {
        self.help = help;
        self
    }

    /// `file:line:column`, as far as known.
    pub(crate) fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }

    /// The problem as a diagnostic with the source line underlined, when the text is known.
    pub(crate) fn to_error(&self, sources: &SourceMap) -> Error {
        if let (Some(line), Some(text)) = (self.line, sources.get(&self.file)) {
            let mut e = SourceError::at_line(
                &self.file,
                &text,
                line,
                self.column.unwrap_or(1),
                self.message.clone(),
                "here",
            );
            e.help = Some(match &self.help {
                Some(h) => h.clone(),
                None => format!("at {}", self.location()),
            });
            return e.into();
        }
        Error::Usage {
            message: self.message.clone(),
            help: self.help.clone(),
        }
    }
}

/// Where `fn name(` is defined in `text` (1-based line and column), for problems that
/// Rhai's metadata gives no position for.
pub(crate) fn fn_line(text: &str, name: &str) -> Option<(usize, usize)> {
    let needle = format!("fn {name}(");
    text.lines().enumerate().find_map(|(i, l)| {
        let at = l.find(&needle)?;
        let before = &l[..at];
        (before.trim().is_empty() || before.trim() == "private").then_some((i + 1, at + 1))
    })
}

/// The line of `@arg name` in the doc comment just above `fn recipe(`.
pub(crate) fn arg_line(text: &str, recipe: &str, arg: &str) -> Option<(usize, usize)> {
    let (fn_at, _) = fn_line(text, recipe)?;
    let lines: Vec<&str> = text.lines().collect();
    (0..fn_at.saturating_sub(1))
        .rev()
        .take_while(|i| lines[*i].trim_start().starts_with("///"))
        .find_map(|i| {
            let l = lines[i];
            let at = l.find("@arg")?;
            let rest = l[at + 4..].trim_start();
            let name_end = rest.find([':', ' ', '=']).unwrap_or(rest.len());
            (&rest[..name_end] == arg).then_some((i + 1, at + 1))
        })
}

/// Name -> the argument counts it can be called with.
type Arities = HashMap<String, BTreeSet<usize>>;

/// Functions the engine knows: global ones (fleet's and Rhai's standard library) and
/// those of fleet's static modules (`apt::`, `git::`, ...).
pub(crate) struct Known {
    global: Arities,
    modules: HashMap<String, Arities>,
}

/// Built into Rhai's evaluator itself, not into a package: any argument count.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

fn add_functions(into: &mut Arities, functions: &serde_json::Value) {
    for f in functions.as_array().into_iter().flatten() {
        let (Some(name), Some(n)) = (f["name"].as_str(), f["numParams"].as_u64()) else {
            continue;
        };
        into.entry(name.to_string()).or_default().insert(n as usize);
    }
}

impl Known {
    pub(crate) fn of(engine: &Engine) -> Known {
        let json = engine.gen_fn_metadata_to_json(true).unwrap_or_default();
        let meta: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let mut global = Arities::new();
        add_functions(&mut global, &meta["functions"]);
        let mut modules = HashMap::new();
        for (name, m) in meta["modules"].as_object().into_iter().flatten() {
            let mut functions = Arities::new();
            add_functions(&mut functions, &m["functions"]);
            // A static module's functions marked global are callable without `apt::`.
            for f in m["functions"].as_array().into_iter().flatten() {
                if f["namespace"] == "global" {
                    add_functions(&mut global, &serde_json::json!([f]));
                }
            }
            modules.insert(name.clone(), functions);
        }
        Known { global, modules }
    }
}

/// Names worth suggesting: no operators, getters or closures.
fn suggestible(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && !name.contains('$')
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn count(set: &BTreeSet<usize>) -> String {
    let list: Vec<String> = set.iter().map(|n| n.to_string()).collect();
    let text = match list.as_slice() {
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => "no".to_string(),
    };
    let plural = !(set.len() == 1 && set.contains(&1));
    format!("{text} argument{}", if plural { "s" } else { "" })
}

/// The modules that imported files provide, compiled once per path.
pub(crate) struct Modules<'a> {
    engine: &'a Engine,
    resolver: &'a StdlibResolver,
    cache: HashMap<String, Option<Arities>>,
    /// Every module path `import` can name, for "did you mean".
    pub(crate) names: Vec<String>,
}

impl<'a> Modules<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        resolver: &'a StdlibResolver,
        names: Vec<String>,
    ) -> Self {
        Modules {
            engine,
            resolver,
            cache: HashMap::new(),
            names,
        }
    }

    /// The public functions of module `path`; None when it cannot be found or compiled
    /// (then its own check reports why, and calls into it are not judged).
    fn functions(&mut self, path: &str) -> Option<&Arities> {
        if !self.cache.contains_key(path) {
            let found = self.resolver.source(path).and_then(|file| {
                let ast = self.engine.compile(&file.text).ok()?;
                let mut functions = Arities::new();
                for f in ast.iter_functions() {
                    if f.access == rhai::FnAccess::Public {
                        functions
                            .entry(f.name.to_string())
                            .or_default()
                            .insert(f.params.len());
                    }
                }
                Some(functions)
            });
            self.cache.insert(path.to_string(), found);
        }
        self.cache.get(path).and_then(Option::as_ref)
    }
}

/// What one file uses, gathered in one walk of its AST.
#[derive(Default)]
struct Uses {
    /// (namespace, name, argument count, is a method call, position)
    calls: Vec<(Vec<String>, String, usize, bool, Position)>,
    /// import alias -> module path (None: not a constant path)
    imports: Vec<(Option<String>, Option<String>, Position)>,
    /// Names of variables, parameters and constants: `f(x)` may call a function pointer.
    variables: HashSet<String>,
    /// Property names and map keys: `m.f(x)` may call a closure kept in a map.
    properties: HashSet<String>,
}

fn gather(ast: &AST) -> Uses {
    let mut uses = Uses::default();
    for f in ast.iter_functions() {
        uses.variables
            .extend(f.params.iter().map(|p| p.to_string()));
    }
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, pos)))
            | Some(ASTNode::Stmt(Stmt::FnCall(x, pos)))
                if x.op_token.is_none() && is_identifier(&x.name) =>
            {
                let ns = x
                    .namespace
                    .path
                    .iter()
                    .map(|i| i.name.to_string())
                    .collect();
                uses.calls
                    .push((ns, x.name.to_string(), x.args.len(), false, *pos));
            }
            Some(ASTNode::Expr(Expr::MethodCall(x, pos))) if is_identifier(&x.name) => {
                uses.calls
                    .push((Vec::new(), x.name.to_string(), x.args.len(), true, *pos));
            }
            Some(ASTNode::Expr(Expr::Variable(x, ..))) => {
                uses.variables.insert(x.1.to_string());
            }
            Some(ASTNode::Expr(Expr::Property(x, ..))) => {
                uses.properties.insert(x.2.to_string());
            }
            Some(ASTNode::Expr(Expr::Map(x, ..))) => {
                for (key, _) in &x.0 {
                    uses.properties.insert(key.name.to_string());
                }
            }
            Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                uses.variables.insert(x.0.name.to_string());
            }
            Some(ASTNode::Stmt(Stmt::For(x, ..))) => {
                uses.variables.insert(x.0.name.to_string());
                if let Some(counter) = &x.1 {
                    uses.variables.insert(counter.name.to_string());
                }
            }
            Some(ASTNode::Stmt(Stmt::Import(x, pos))) => {
                let path = match &x.0 {
                    Expr::StringConstant(s, _) => Some(s.to_string()),
                    _ => None,
                };
                let alias = (!x.1.name.is_empty()).then(|| x.1.name.to_string());
                uses.imports.push((alias, path, *pos));
            }
            _ => {}
        }
        true
    });
    uses
}

/// Every unknown call and missing import of `ast` (from `file`).
pub(crate) fn calls(ast: &AST, file: &str, known: &Known, modules: &mut Modules) -> Vec<Problem> {
    let uses = gather(ast);
    let mut problems = Vec::new();
    let mut own = Arities::new();
    for f in ast.iter_functions() {
        own.entry(f.name.to_string())
            .or_default()
            .insert(f.params.len());
    }
    // alias -> module functions; None: the module is not known (dynamic, missing, broken).
    let mut aliases: HashMap<String, Option<Arities>> = HashMap::new();
    for (alias, path, pos) in &uses.imports {
        let functions = match path {
            Some(path) if !modules.resolver.exists(path) => {
                let help = crate::suggest::closest(path, modules.names.iter().map(String::as_str))
                    .map(|c| format!("did you mean \"{c}\"?"))
                    .or_else(|| {
                        Some(
                            "modules are the project's stdlib/NAME.rhai or a built-in one"
                                .to_string(),
                        )
                    });
                problems.push(
                    Problem::new(
                        "import",
                        file,
                        format!("import of module \"{path}\", which does not exist"),
                    )
                    .at(*pos)
                    .help(help),
                );
                None
            }
            Some(path) => modules.functions(path).cloned(),
            None => None,
        };
        if let Some(alias) = alias {
            // Imported twice under one alias: know only what both have in common.
            match aliases.get(alias) {
                Some(_) => {
                    aliases.insert(alias.clone(), None);
                }
                None => {
                    aliases.insert(alias.clone(), functions);
                }
            }
        }
    }
    for (ns, name, n, method, pos) in &uses.calls {
        if KEYWORDS.contains(&name.as_str()) {
            continue;
        }
        let problem = if *method {
            method_problem(name, *n, known, &own, &uses)
        } else if ns.is_empty() {
            global_problem(name, *n, known, &own, &uses)
        } else if ns.len() > 1 || ns[0] == "global" {
            None
        } else {
            let root = &ns[0];
            match (aliases.get(root), known.modules.get(root)) {
                (Some(None), _) => None,
                (Some(Some(functions)), _) | (None, Some(functions)) => {
                    module_problem(root, name, *n, functions)
                }
                (None, None) => {
                    let names = aliases
                        .keys()
                        .map(String::as_str)
                        .chain(known.modules.keys().map(String::as_str));
                    Some((
                        "function",
                        format!("call of `{root}::{name}`, but no module is named `{root}` here"),
                        crate::suggest::closest(root, names)
                            .map(|c| format!("did you mean `{c}::{name}`?"))
                            .or(Some(format!(
                                "import it first: import \"{root}\" as {root};"
                            ))),
                    ))
                }
            }
        };
        if let Some((kind, message, help)) = problem {
            problems.push(Problem::new(kind, file, message).at(*pos).help(help));
        }
    }
    problems
}

type Found = Option<(&'static str, String, Option<String>)>;

fn arities(name: &str, known: &Known, own: &Arities) -> BTreeSet<usize> {
    let mut set = BTreeSet::new();
    for table in [&known.global, own] {
        if let Some(s) = table.get(name) {
            set.extend(s.iter().copied());
        }
    }
    set
}

fn suggestion(name: &str, known: &Known, own: &Arities) -> Option<String> {
    let names = known
        .global
        .keys()
        .chain(own.keys())
        .map(String::as_str)
        .filter(|n| suggestible(n));
    crate::suggest::closest(name, names).map(|c| format!("did you mean `{c}`?"))
}

fn global_problem(name: &str, n: usize, known: &Known, own: &Arities, uses: &Uses) -> Found {
    let set = arities(name, known, own);
    if set.contains(&n) || uses.variables.contains(name) {
        return None;
    }
    if set.is_empty() {
        return Some((
            "function",
            format!("call of `{name}`, which is not a function fleet, Rhai or this file defines"),
            suggestion(name, known, own).or(Some(
                "`fleet api` lists the functions a recipe can call".to_string(),
            )),
        ));
    }
    Some((
        "arguments",
        format!("`{name}` takes {}, but is called with {n}", count(&set)),
        Some("`fleet api` shows its parameters".to_string()),
    ))
}

fn method_problem(name: &str, n: usize, known: &Known, own: &Arities, uses: &Uses) -> Found {
    // `x.f(a)` is `f(x, a)` for a native function; a script function takes `this` instead.
    let native = known.global.get(name);
    let script = own.get(name);
    let fits = native.is_some_and(|s| s.contains(&(n + 1)))
        || script.is_some_and(|s| s.contains(&n) || s.contains(&(n + 1)));
    // A map's property may hold a closure: `m.f(a)` calls it.
    if fits || uses.properties.contains(name) {
        return None;
    }
    if native.is_none() && script.is_none() {
        return Some((
            "function",
            format!(
                "call of method `.{name}()`, which is not a function fleet, Rhai or this file defines"
            ),
            suggestion(name, known, own)
                .map(|s| s.replace("did you mean `", "did you mean `."))
                .or(Some(
                    "`fleet api` lists the functions a recipe can call".to_string(),
                )),
        ));
    }
    let set: BTreeSet<usize> = native
        .into_iter()
        .flatten()
        .filter_map(|a| a.checked_sub(1))
        .chain(script.into_iter().flatten().copied())
        .collect();
    Some((
        "arguments",
        format!(
            "method `.{name}()` takes {}, but is called with {n}",
            count(&set)
        ),
        Some(
            "`fleet api` shows its parameters (the first one is the value before the dot)"
                .to_string(),
        ),
    ))
}

fn module_problem(module: &str, name: &str, n: usize, functions: &Arities) -> Found {
    match functions.get(name) {
        Some(set) if set.contains(&n) => None,
        Some(set) => Some((
            "arguments",
            format!(
                "`{module}::{name}` takes {}, but is called with {n}",
                count(set)
            ),
            None,
        )),
        None => Some((
            "function",
            format!("call of `{module}::{name}`, which module `{module}` does not have"),
            crate::suggest::closest(
                name,
                functions
                    .keys()
                    .map(String::as_str)
                    .filter(|n| suggestible(n)),
            )
            .map(|c| format!("did you mean `{module}::{c}`?")),
        )),
    }
}
