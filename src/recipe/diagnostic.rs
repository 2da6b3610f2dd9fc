//! Rhai errors as fleet errors: the innermost cause, in the file and line where it
//! happened (not where the outermost function was called), with the source underlined.

use super::resolver::module_key;
use super::sources::SourceMap;
use crate::error::{Error, SourceError};
use crate::outcome::HostError;
use rhai::{EvalAltResult, Position};

/// Where an error happened: source name and 1-based line/column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Location {
    pub(crate) source: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.source, self.line, self.column)
    }
}

/// What an error from a recipe means for the run.
#[derive(Debug)]
pub(crate) enum Cause {
    /// A host function failed (command exit, unreachable host).
    Host(HostError),
    /// `throw` in the recipe: the recipe failed the host or the run on purpose.
    Thrown(String),
    /// A bug in the recipe: wrong type, unknown function, bad index, …
    Script(String),
}

pub(crate) struct Located {
    pub(crate) cause: Cause,
    pub(crate) location: Option<Location>,
}

/// Unwraps nested function-call and module errors to the innermost one, tracking the
/// source it belongs to.
pub(crate) fn locate(err: &EvalAltResult, default_source: &str, sources: &SourceMap) -> Located {
    let mut source = default_source.to_string();
    let mut current = err;
    loop {
        match current {
            EvalAltResult::ErrorInFunctionCall(_, src, inner, _) => {
                if !src.is_empty() {
                    source = src.clone();
                }
                current = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, _) => {
                source = if sources.get(path).is_some() {
                    path.clone()
                } else {
                    sources
                        .get(&module_key(path))
                        .unwrap_or_else(|| path.clone())
                };
                current = inner;
            }
            _ => break,
        }
    }
    let location = to_location(&source, current.position());
    let cause = match current {
        EvalAltResult::ErrorRuntime(value, _) => match value.clone().try_cast::<HostError>() {
            Some(f) => Cause::Host(f),
            None => Cause::Thrown(if value.is_unit() {
                "thrown".to_string()
            } else {
                value.to_string()
            }),
        },
        other => Cause::Script(hide_closure_names(&without_position(other))),
    };
    Located { cause, location }
}

/// Rhai appends ` (line L, position P)` to messages; the location is shown separately.
fn without_position(err: &EvalAltResult) -> String {
    let text = err.to_string();
    let pos = err.position();
    if let (Some(l), Some(p)) = (pos.line(), pos.position()) {
        let suffix = format!(" (line {l}, position {p})");
        if let Some(stripped) = text.strip_suffix(&suffix) {
            return stripped.to_string();
        }
    }
    text
}

fn to_location(source: &str, pos: Position) -> Option<Location> {
    Some(Location {
        source: source.to_string(),
        line: pos.line()?,
        column: pos.position().unwrap_or(1),
    })
}

/// Closures are named `anon$…` inside Rhai; users never wrote that name.
fn hide_closure_names(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find("anon$") {
        out.push_str(&rest[..i]);
        out.push_str("closure");
        let after = &rest[i + 5..];
        let end = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// A positioned error rendered with its source line, or a plain one when the source
/// text is unknown.
pub(crate) fn positioned(
    location: Option<&Location>,
    sources: &SourceMap,
    message: String,
    label: &str,
) -> Error {
    if let Some(loc) = location
        && let Some(text) = sources.get(&loc.source)
    {
        return SourceError::at_line(&loc.source, &text, loc.line, loc.column, message, label)
            .into();
    }
    match location {
        Some(loc) => Error::usage(format!("{loc}: {message}")),
        None => Error::usage(message),
    }
}

/// The error a recipe ended with, as the error of the whole invocation.
pub(crate) fn recipe_error(recipe: &str, located: &Located, sources: &SourceMap) -> Error {
    let (message, label) = match &located.cause {
        Cause::Script(m) => (format!("recipe `{recipe}` failed: {m}"), "error here"),
        Cause::Thrown(m) => (format!("recipe `{recipe}` stopped: {m}"), "thrown here"),
        Cause::Host(f) => (
            format!("recipe `{recipe}` failed: {}", f.message),
            "failed here",
        ),
    };
    let error = positioned(located.location.as_ref(), sources, message, label);
    match (error, &located.location) {
        (Error::Source(mut e), Some(loc)) => {
            e.help = Some(format!("at {loc}"));
            Error::Source(e)
        }
        (e, _) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_names_are_hidden() {
        assert_eq!(
            hide_closure_names("Function not found: foo (in anon$3ab2f)"),
            "Function not found: foo (in closure)"
        );
    }
}
