//! Doc comments of recipe functions: the first sentence of the first paragraph is the
//! summary shown by `fleet recipes`; `@arg name: type = default  help` lines type the arguments.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgType {
    Int,
    /// A TCP port, 1-65535: refused on the command line, before any connection.
    Port,
    Float,
    Bool,
    String,
}

impl ArgType {
    pub(crate) fn parse(s: &str) -> Option<ArgType> {
        match s {
            "int" | "integer" => Some(ArgType::Int),
            "port" => Some(ArgType::Port),
            "float" | "number" => Some(ArgType::Float),
            "bool" | "boolean" => Some(ArgType::Bool),
            "string" | "str" => Some(ArgType::String),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            ArgType::Int => "int",
            ArgType::Port => "port",
            ArgType::Float => "float",
            ArgType::Bool => "bool",
            ArgType::String => "string",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ArgDoc {
    pub(crate) name: String,
    pub(crate) ty: ArgType,
    /// As written, without quotes; converted to `ty` when the recipe is loaded.
    pub(crate) default: Option<String>,
    pub(crate) help: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Doc {
    pub(crate) summary: String,
    /// The rest of the text, `@arg` lines removed.
    pub(crate) body: String,
    pub(crate) args: Vec<ArgDoc>,
}

/// Strips `///` or `/** */` markers from Rhai's doc-comment strings.
fn plain_lines(comments: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for block in comments {
        if let Some(inner) = block.strip_prefix("/**") {
            let inner = inner.strip_suffix("*/").unwrap_or(inner);
            for l in inner.lines() {
                let l = l.trim();
                lines.push(l.strip_prefix('*').unwrap_or(l).trim().to_string());
            }
        } else {
            for l in block.lines() {
                let l = l.trim();
                let l = l.strip_prefix("///").unwrap_or(l);
                lines.push(l.strip_prefix(' ').unwrap_or(l).trim_end().to_string());
            }
        }
    }
    lines
}

/// A doc comment as plain text, markers removed (for `fleet api` and definitions).
pub(crate) fn plain_text(comments: &[&str]) -> String {
    plain_lines(comments).join("\n").trim().to_string()
}

/// An `@arg` line of a recipe's doc comment that cannot be read; the caller names the
/// file and the recipe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{line}`: {error}")]
pub(crate) struct DocError {
    pub(crate) line: String,
    pub(crate) error: ArgSpecError,
}

/// What is wrong with an `@arg` spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArgSpecError {
    #[error("expected `@arg NAME: TYPE = DEFAULT  HELP`")]
    Syntax,
    #[error("unknown type `{0}`; use int, port, float, bool or string")]
    UnknownType(String),
    #[error("unclosed quote in default")]
    UnclosedQuote,
}

/// The summary is the first sentence of the first paragraph (which may span several
/// lines); the rest of the text is the body.
pub(crate) fn parse(comments: &[&str]) -> Result<Doc, DocError> {
    let mut doc = Doc::default();
    let mut first: Vec<String> = Vec::new();
    let mut body = Vec::new();
    let mut in_first = true;
    for line in plain_lines(comments) {
        if let Some(spec) = line.trim_start().strip_prefix("@arg") {
            let arg = parse_arg(spec.trim()).map_err(|error| DocError {
                line: line.clone(),
                error,
            })?;
            doc.args.push(arg);
            in_first = in_first && first.is_empty();
        } else if in_first && line.trim().is_empty() {
            in_first = first.is_empty();
            if !in_first {
                body.push(String::new());
            }
        } else if in_first {
            first.push(line.trim().to_string());
        } else {
            body.push(line);
        }
    }
    let paragraph = first.join(" ");
    let (summary, rest) = first_sentence(&paragraph);
    doc.summary = summary.to_string();
    if !rest.is_empty() {
        body.insert(0, rest.to_string());
    }
    doc.body = body.join("\n").trim().to_string();
    Ok(doc)
}

/// `("Creates a VM.", "It boots …")`: up to the first `.`, `!` or `?` followed by a
/// space; the whole text when there is none.
fn first_sentence(text: &str) -> (&str, &str) {
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        if matches!(c, '.' | '!' | '?') && bytes.get(i + 1) == Some(&b' ') {
            return (&text[..=i], text[i + 1..].trim());
        }
    }
    (text.trim(), "")
}

/// `cores: int = 2  CPU cores`, `name  VM name`, `pattern: string = "all"  hosts`.
fn parse_arg(spec: &str) -> Result<ArgDoc, ArgSpecError> {
    let name_end = spec
        .find(|c: char| c == ':' || c == '=' || c.is_whitespace())
        .unwrap_or(spec.len());
    let name = &spec[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(ArgSpecError::Syntax);
    }
    let mut rest = spec[name_end..].trim_start();
    let mut ty = ArgType::String;
    if let Some(r) = rest.strip_prefix(':') {
        let r = r.trim_start();
        let end = r
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(r.len());
        ty = ArgType::parse(&r[..end])
            .ok_or_else(|| ArgSpecError::UnknownType(r[..end].to_string()))?;
        rest = r[end..].trim_start();
    }
    let mut default = None;
    if let Some(r) = rest.strip_prefix('=') {
        let r = r.trim_start();
        let (value, after) = if let Some(q) = r.strip_prefix('"') {
            let close = q.find('"').ok_or(ArgSpecError::UnclosedQuote)?;
            (q[..close].to_string(), &q[close + 1..])
        } else {
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            (r[..end].to_string(), &r[end..])
        };
        default = Some(value);
        rest = after.trim_start();
    }
    Ok(ArgDoc {
        name: name.to_string(),
        ty,
        default,
        help: rest.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_summary_body_and_args() {
        let doc = parse(&[
            "/// Create a VM.\n/// Longer text.\n/// @arg name  VM name\n/// @arg cores: int = 2  CPU cores\n/// @arg pattern: string = \"web servers\"  which hosts",
        ])
        .unwrap();
        assert_eq!(doc.summary, "Create a VM.");
        assert_eq!(doc.body, "Longer text.");
        assert_eq!(
            doc.args,
            vec![
                ArgDoc {
                    name: "name".into(),
                    ty: ArgType::String,
                    default: None,
                    help: "VM name".into()
                },
                ArgDoc {
                    name: "cores".into(),
                    ty: ArgType::Int,
                    default: Some("2".into()),
                    help: "CPU cores".into()
                },
                ArgDoc {
                    name: "pattern".into(),
                    ty: ArgType::String,
                    default: Some("web servers".into()),
                    help: "which hosts".into()
                },
            ]
        );
    }

    #[test]
    fn the_summary_is_the_first_sentence_of_a_paragraph_over_several_lines() {
        let doc = parse(&[
            "/// Updates the packages of every host\n/// in the group, one batch at a time. Reboots\n/// when a kernel came.\n///\n/// Details here.\n/// @arg group  which hosts",
        ])
        .unwrap();
        assert_eq!(
            doc.summary,
            "Updates the packages of every host in the group, one batch at a time."
        );
        assert_eq!(doc.body, "Reboots when a kernel came.\n\nDetails here.");
        assert_eq!(doc.args.len(), 1);
        let doc = parse(&["/// No full stop at all\n/// but two lines"]).unwrap();
        assert_eq!(doc.summary, "No full stop at all but two lines");
        assert_eq!(doc.body, "");
        let doc = parse(&["/// Version 1.2 is fine. Rest."]).unwrap();
        assert_eq!(doc.summary, "Version 1.2 is fine.");
    }

    #[test]
    fn block_comments_work_too() {
        let doc = parse(&["/** Gather facts.\n * @arg quick: bool = false\n */"]).unwrap();
        assert_eq!(doc.summary, "Gather facts.");
        assert_eq!(doc.args[0].ty, ArgType::Bool);
    }

    #[test]
    fn an_unknown_type_is_an_error() {
        let err = parse(&["/// @arg cores: integr = 2"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`@arg cores: integr = 2`: unknown type `integr`; use int, port, float, bool or string"
        );
    }

    #[test]
    fn arg_spec_errors_say_what_is_wrong() {
        let cases = [
            (
                ArgSpecError::Syntax,
                "expected `@arg NAME: TYPE = DEFAULT  HELP`",
            ),
            (
                ArgSpecError::UnknownType("integr".into()),
                "unknown type `integr`; use int, port, float, bool or string",
            ),
            (ArgSpecError::UnclosedQuote, "unclosed quote in default"),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
        let err = parse(&["/// @arg name = \"x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`@arg name = \"x`: unclosed quote in default"
        );
    }
}
