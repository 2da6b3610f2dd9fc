//! One error type for everything that ends a fleet invocation early (its exit code is
//! decided with every other ending in `outcome::exit_code`).
//!
//! Host failures are not errors here: they are outcomes of a run (see `exec::recap`).

use miette::{NamedSource, SourceSpan};
use std::path::{Path, PathBuf};

/// Exit codes, as documented in DESIGN.md and `fleet --help`.
pub(crate) mod exit {
    pub(crate) const OK: i32 = 0;
    pub(crate) const INTERNAL: i32 = 1;
    pub(crate) const USAGE: i32 = 2;
    pub(crate) const HOST_FAILED: i32 = 3;
    pub(crate) const UNREACHABLE: i32 = 4;
    pub(crate) const LOCKED: i32 = 75;
    pub(crate) const TIMEOUT: i32 = 124;
    pub(crate) const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Wrong command line, unknown host or recipe, empty pattern match, missing file.
    #[error("{message}")]
    Usage {
        message: String,
        #[help]
        help: Option<String>,
    },
    /// Anything with a position in a file: recipes, inventories, fleet.toml.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Source(Box<SourceError>),
    /// A file or folder that cannot be read (opened, listed, resolved).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file or folder that cannot be written (created, locked).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A git repository (the state repository, a recipe source) that cannot be read.
    #[error(transparent)]
    Git(#[from] crate::ops::git::GitError),
    /// Another run holds the project's lock.
    #[error("{0}")]
    Locked(String),
    /// A bug or an environment problem in fleet itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn usage_with_help(message: impl Into<String>, help: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            help: Some(help.into()),
        }
    }

    /// `path` could not be read: `.map_err(Error::read(path))`.
    pub(crate) fn read(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// `path` could not be written: `.map_err(Error::write(path))`.
    pub(crate) fn write(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Error::Write {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The error as the terminal may show it: messages quote host output (stderr tails)
    /// and inventory or recipe values, so their control characters are made visible
    /// (`ops::terminal`); a file's text is shown the same way, its span moved along.
    pub(crate) fn for_terminal(self) -> Self {
        // Secrets are masked first: a made-visible control character inside a secret
        // would hide it from the redaction that follows rendering.
        let shown = |t: String| {
            let t = crate::ops::secrets::redact(&t);
            crate::ops::terminal::neutralise(&t).into_owned()
        };
        match self {
            Error::Usage { message, help } => Error::Usage {
                message: shown(message),
                help: help.map(shown),
            },
            Error::Source(e) => Error::Source(Box::new(e.for_terminal())),
            Error::Read { path, source } => Error::Read {
                path: shown(path.display().to_string()).into(),
                source: std::io::Error::new(source.kind(), shown(source.to_string())),
            },
            Error::Write { path, source } => Error::Write {
                path: shown(path.display().to_string()).into(),
                source: std::io::Error::new(source.kind(), shown(source.to_string())),
            },
            Error::Git(e) => Error::Git(crate::ops::git::GitError(shown(e.0))),
            Error::Locked(m) => Error::Locked(shown(m)),
            Error::Internal(m) => Error::Internal(shown(m)),
        }
    }
}

/// A journal that cannot be read or written is a file or git error; a run that is not in
/// it is the user's (as the callers of `journal::find` say).
impl From<crate::journal::JournalError> for Error {
    fn from(e: crate::journal::JournalError) -> Self {
        use crate::journal::JournalError as J;
        match e {
            J::Read { path, source } => Error::Read { path, source },
            J::Write { path, source } => Error::Write { path, source },
            J::Git(e) => Error::Git(e),
            other => Error::usage(other.to_string()),
        }
    }
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        Error::Source(Box::new(e))
    }
}

/// An error at a place in a file, rendered with the source line underlined.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct SourceError {
    pub(crate) message: String,
    #[source_code]
    pub(crate) src: NamedSource<String>,
    #[label("{label}")]
    pub(crate) span: SourceSpan,
    pub(crate) label: String,
    #[help]
    pub(crate) help: Option<String>,
}

impl SourceError {
    /// `line` and `column` are 1-based, as editors and Rhai count them.
    pub(crate) fn at_line(
        name: &str,
        text: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        let offset = offset_of(text, line, column);
        let len = text[offset..]
            .find(['\n', ' ', '\t', '(', ')', ';', ','])
            .unwrap_or(text.len() - offset)
            .max(1)
            .min(text.len().saturating_sub(offset).max(1));
        Self::at_span(name, text, (offset, len).into(), message, label)
    }

    pub(crate) fn at_span(
        name: &str,
        text: &str,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        SourceError {
            message: message.into(),
            src: NamedSource::new(name, text.to_string()),
            span,
            label: label.into(),
            help: None,
        }
    }

    fn for_terminal(self) -> Self {
        use crate::ops::terminal::{neutralise, neutralised_offset};
        let text = self.src.inner();
        let (start, end) = (self.span.offset(), self.span.offset() + self.span.len());
        let (start, end) = (
            neutralised_offset(text, start),
            neutralised_offset(text, end),
        );
        let name = neutralise(self.src.name()).into_owned();
        SourceError {
            message: neutralise(&crate::ops::secrets::redact(&self.message)).into_owned(),
            src: NamedSource::new(name, neutralise(text).into_owned()),
            span: (start, end - start).into(),
            label: neutralise(&self.label).into_owned(),
            help: self.help.map(|h| neutralise(&h).into_owned()),
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Byte offset of a 1-based line/column; clamps to the end of the text.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = column.saturating_sub(1);
            let in_line = l
                .char_indices()
                .nth(col)
                .map(|(b, _)| b)
                .unwrap_or(l.trim_end_matches('\n').len());
            return offset + in_line;
        }
        offset += l.len();
    }
    text.len()
}

/// 1-based line of a byte offset.
#[cfg(test)]
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Declares a domain error whose content is its whole message, already worded for the
/// user (what failed, on which path or host, and what to do): for domains whose
/// failures share no structure a caller acts on, only a type saying where they come
/// from. `From<String>` lets the domain's code build it with `format!` and `?`.
macro_rules! message_error {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("{0}")]
        pub struct $name(pub String);

        impl From<String> for $name {
            fn from(message: String) -> Self {
                $name(message)
            }
        }

        impl From<&str> for $name {
            fn from(message: &str) -> Self {
                $name(message.to_string())
            }
        }
    };
}
pub(crate) use message_error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_lines_and_columns_from_one() {
        let text = "ab\ncde\nf";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 2), 4);
        assert_eq!(offset_of(text, 3, 1), 7);
        assert_eq!(offset_of(text, 9, 1), text.len());
        assert_eq!(line_of(text, 4), 2);
    }

    #[test]
    fn error_messages_and_sources_are_neutralised_for_the_terminal() {
        let err = Error::usage("host web failed: \x1b]52;c;eA==\x07").for_terminal();
        assert_eq!(err.to_string(), "host web failed: ^[]52;c;eA==^G");
        let text = "a = \"\x1b]0;t\x07\"\nb = 1x\n";
        let at = text.find("1x").unwrap();
        let err = SourceError::at_span("f.toml", text, (at, 2).into(), "bad", "here");
        let Error::Source(e) = Error::from(err).for_terminal() else {
            panic!()
        };
        let shown = e.src.inner();
        assert!(!shown.contains('\x1b'));
        assert_eq!(
            &shown[e.span.offset()..e.span.offset() + e.span.len()],
            "1x"
        );
    }

    #[test]
    fn exit_codes_follow_the_design() {
        use crate::outcome::{Ending, exit_code};
        assert_eq!(exit_code(&Ending::Error(&Error::usage("x"))), 2);
        assert_eq!(exit_code(&Ending::Error(&Error::Internal("x".into()))), 1);
        assert_eq!(exit_code(&Ending::Error(&Error::Locked("x".into()))), 75);
        let gone = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let read = Error::read(Path::new("x"))(gone());
        let write = Error::write(Path::new("x"))(gone());
        let git = Error::Git(crate::ops::git::GitError("x".into()));
        for e in [read, write, git] {
            assert_eq!(exit_code(&Ending::Error(&e)), 2, "{e}");
        }
    }

    #[test]
    fn each_variant_says_what_failed() {
        let denied = || std::io::Error::other("permission denied");
        let path = Path::new("/p/inventory.toml");
        let cases = [
            (Error::usage("no host `x`"), "no host `x`"),
            (
                Error::read(path)(denied()),
                "cannot read /p/inventory.toml: permission denied",
            ),
            (
                Error::write(path)(denied()),
                "cannot write /p/inventory.toml: permission denied",
            ),
            (
                Error::Git(crate::ops::git::GitError(
                    "/s is not a git repository".into(),
                )),
                "/s is not a git repository",
            ),
            (Error::Locked("locked by run 1".into()), "locked by run 1"),
            (Error::Internal("bug".into()), "internal error: bug"),
            (
                SourceError::at_line("r.rhai", "x", 1, 1, "bad", "here").into(),
                "bad",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
            assert_eq!(err.for_terminal().to_string(), message);
        }
    }

    #[test]
    fn read_and_write_errors_are_neutralised_for_the_terminal() {
        let err = Error::write(Path::new("/p/\x1b[2Jx"))(std::io::Error::other("no\x07"));
        assert_eq!(
            err.for_terminal().to_string(),
            "cannot write /p/^[[2Jx: no^G"
        );
    }

    #[test]
    fn journal_errors_keep_their_kind() {
        use crate::journal::JournalError;
        let read = JournalError::Read {
            path: "/s/runs/a.json".into(),
            source: std::io::Error::other("gone"),
        };
        assert!(matches!(Error::from(read), Error::Read { .. }));
        let missing = JournalError::NoRun { state: "/s".into() };
        let err = Error::from(missing);
        assert!(matches!(err, Error::Usage { .. }));
        assert_eq!(err.to_string(), "the journal in /s has no run yet");
    }
}
