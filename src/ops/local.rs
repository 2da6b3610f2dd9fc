//! Files on the controller for recipes (`local::`, `csv::write`, `h.sync`'s source): every
//! path is relative to the project root and stays under it — an absolute path or `..`
//! is refused, and so is a path that leaves the root through a symbolic link — so a
//! recipe from a repository cannot read `~/.ssh` or write `/etc`. Listing is bounded
//! and never follows links; writes are atomic and changed only when the bytes differ.

use std::path::{Component, Path, PathBuf};

/// Most entries `local::list` looks at before it gives up.
pub(crate) const LIST_CAP: usize = 100_000;

/// Why a local path cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    #[error("`{0}` is absolute: local paths are relative to the project root and stay under it")]
    Absolute(String),
    #[error("`{0}` leaves the project root (`..` is not allowed in local paths)")]
    Parent(String),
    #[error("`{0}` holds a NUL byte")]
    Nul(String),
    #[error("`{path}` leads outside the project root through a symbolic link ({})", target.display())]
    LinkOutside { path: String, target: PathBuf },
    #[error("`{0}` names the project root itself, not a file")]
    Root(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} holds more than {cap} entries: list a smaller directory or narrow it with a glob \
         (without `recursive`)", dir.display()
    )]
    TooMany { dir: PathBuf, cap: usize },
    #[error("bad glob `{0}`: only `*`, `?` and plain characters (no `/`) are understood")]
    Glob(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `root/path` for a recipe's relative path, checked lexically (no absolute path, no
/// `..`, no NUL) and then through the file system: the deepest part of it that exists,
/// links resolved, must still be under the (resolved) root. `""` and `.` are the root.
pub(crate) fn resolve(root: &Path, path: &str) -> Result<PathBuf, LocalError> {
    if path.contains('\0') {
        return Err(LocalError::Nul(path.escape_debug().to_string()));
    }
    if path.starts_with('/') {
        return Err(LocalError::Absolute(path.to_string()));
    }
    let mut joined = root.to_path_buf();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(part) => joined.push(part),
            Component::CurDir => {}
            _ => return Err(LocalError::Parent(path.to_string())),
        }
    }
    if joined != root {
        // The one lexical check of every path fleet makes from outside input.
        crate::ops::paths::stays_under(root, &joined)
            .map_err(|_| LocalError::Parent(path.to_string()))?;
    }
    let real_root = root.canonicalize().map_err(io(root))?;
    let mut existing = joined.as_path();
    loop {
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&real_root) => return Ok(joined),
            Ok(real) => {
                return Err(LocalError::LinkOutside {
                    path: path.to_string(),
                    target: real,
                });
            }
            Err(_) => match existing.parent() {
                Some(p) => existing = p,
                None => return Ok(joined),
            },
        }
    }
}

/// [`resolve`] for a file to read or write: not the root itself.
pub(crate) fn resolve_file(root: &Path, path: &str) -> Result<PathBuf, LocalError> {
    let p = resolve(root, path)?;
    if p == root {
        return Err(LocalError::Root(path.to_string()));
    }
    Ok(p)
}

/// A file-name glob: `*` any run of characters, `?` one character, anything else itself.
pub(crate) fn glob_matches(glob: &str, name: &str) -> bool {
    fn go(g: &[char], n: &[char]) -> bool {
        match g.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    go(&g, &n)
}

/// What `local::list` takes.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListOpts {
    #[serde(default)]
    pub(crate) recursive: bool,
    #[serde(default)]
    pub(crate) glob: Option<String>,
}

/// The entries of `dir` (relative to the root), as paths relative to the root (so they
/// can be given back to `local::read` or `h.upload`), sorted; directories end with `/`.
/// `glob` matches each entry's own name. Links are listed, never followed.
pub(crate) fn list(
    root: &Path,
    dir: &str,
    opts: &ListOpts,
    cap: usize,
) -> Result<Vec<String>, LocalError> {
    if let Some(g) = &opts.glob
        && (g.contains('/') || g.is_empty())
    {
        return Err(LocalError::Glob(g.clone()));
    }
    let start = resolve(root, dir)?;
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut pending = vec![start.clone()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            seen += 1;
            if seen > cap {
                return Err(LocalError::TooMany { dir: start, cap });
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let name = entry.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && opts.recursive {
                pending.push(path.clone());
            }
            if opts.glob.as_ref().is_none_or(|g| glob_matches(g, &name)) {
                out.push(if kind.is_dir() {
                    format!("{rel}/")
                } else {
                    rel
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The content of a file under the root.
pub(crate) fn read(root: &Path, path: &str) -> Result<Vec<u8>, LocalError> {
    let p = resolve_file(root, path)?;
    std::fs::read(&p).map_err(io(&p))
}

/// What writing `content` to a local file would do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WritePlan {
    Same,
    Create,
    /// Replace the content; the old bytes, for the check-mode diff.
    Replace(Vec<u8>),
}

pub(crate) fn plan_write(path: &Path, content: &[u8]) -> Result<WritePlan, LocalError> {
    match std::fs::read(path) {
        Ok(old) if old == content => Ok(WritePlan::Same),
        Ok(old) => Ok(WritePlan::Replace(old)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WritePlan::Create),
        Err(e) => Err(io(path)(e)),
    }
}

/// The lines check mode prints for a planned write of `shown` (the path as the recipe
/// gave it): what would happen, then a diff when old and new are text.
pub(crate) fn describe(shown: &str, plan: &WritePlan, content: &[u8]) -> Vec<String> {
    match plan {
        WritePlan::Same => Vec::new(),
        WritePlan::Create => {
            let mut lines = vec![format!(
                "would write {shown} on this machine: create it ({} bytes)",
                content.len()
            )];
            if let Ok(text) = std::str::from_utf8(content) {
                lines.push(crate::ops::files::transfer::check_diff(shown, "", text));
            }
            lines
        }
        WritePlan::Replace(old) => {
            let mut lines = vec![format!(
                "would write {shown} on this machine: replace its content ({} bytes)",
                content.len()
            )];
            if let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(content)) {
                lines.push(crate::ops::files::transfer::check_diff(shown, old, new));
            }
            lines
        }
    }
}

/// Writes `content` atomically (temporary file + rename, missing directories made); an
/// existing file keeps its mode.
pub(crate) fn write(path: &Path, content: &[u8]) -> Result<(), LocalError> {
    let mode = crate::ops::localfs::mode_of(path).ok();
    crate::ops::localfs::write_atomic(path, content, mode).map_err(io(path))
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote, a line break or
/// leading/trailing space; quotes inside are doubled.
pub(crate) fn csv_field(text: &str) -> String {
    let needs =
        text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ');
    if needs {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A CSV document: the header `columns`, then one line per row (cells in column order;
/// a missing cell is empty). Lines end with `\n`.
pub(crate) fn csv_text(columns: &[String], rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| {
        let mut l = cells
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",");
        l.push('\n');
        l
    };
    let mut text = line(columns);
    for r in rows {
        text.push_str(&line(r));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("data")).unwrap();
        assert_eq!(resolve(root, "data/x").unwrap(), root.join("data/x"));
        assert_eq!(resolve(root, "./a/b").unwrap(), root.join("a/b"));
        assert_eq!(resolve(root, "").unwrap(), root);
        for (bad, why) in [
            ("/etc/passwd", "is absolute"),
            ("../x", "leaves the project root"),
            ("data/../../x", "leaves the project root"),
            ("a\0b", "NUL"),
        ] {
            let e = resolve(root, bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        let e = resolve(root, "out/passwd").unwrap_err().to_string();
        assert!(e.contains("through a symbolic link"), "{e}");
        assert!(resolve_file(root, ".").is_err());
    }

    #[test]
    fn listing_is_sorted_bounded_and_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "site/index.html",
            "site/a.css",
            "site/sub/b.html",
            "top.txt",
        ] {
            crate::ops::localfs::write_local(&root.join(f), b"x").unwrap();
        }
        std::os::unix::fs::symlink("/", root.join("site/escape")).unwrap();
        let flat = list(root, "site", &ListOpts::default(), LIST_CAP).unwrap();
        assert_eq!(
            flat,
            ["site/a.css", "site/escape", "site/index.html", "site/sub/"]
        );
        let html = ListOpts {
            recursive: true,
            glob: Some("*.html".into()),
        };
        assert_eq!(
            list(root, "site", &html, LIST_CAP).unwrap(),
            ["site/index.html", "site/sub/b.html"]
        );
        let all = ListOpts {
            recursive: true,
            glob: None,
        };
        let e = list(root, "", &all, 3).unwrap_err().to_string();
        assert!(e.contains("more than 3 entries"), "{e}");
        assert!(
            list(
                root,
                "site",
                &ListOpts {
                    recursive: false,
                    glob: Some("a/b".into())
                },
                10
            )
            .is_err()
        );
    }

    #[test]
    fn globs_match_names() {
        assert!(glob_matches("*.conf", "nginx.conf"));
        assert!(!glob_matches("*.conf", "nginx.conf.bak"));
        assert!(glob_matches("web-?", "web-1"));
        assert!(!glob_matches("web-?", "web-10"));
        assert!(glob_matches("*", ""));
    }

    #[test]
    fn writes_are_changes_only_when_bytes_differ() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out/report.txt");
        assert_eq!(plan_write(&p, b"a\n").unwrap(), WritePlan::Create);
        write(&p, b"a\n").unwrap();
        assert_eq!(plan_write(&p, b"a\n").unwrap(), WritePlan::Same);
        let plan = plan_write(&p, b"b\n").unwrap();
        assert_eq!(plan, WritePlan::Replace(b"a\n".to_vec()));
        let lines = describe("out/report.txt", &plan, b"b\n");
        assert_eq!(
            lines[0],
            "would write out/report.txt on this machine: replace its content (2 bytes)"
        );
        assert!(
            lines[1].contains("-a") && lines[1].contains("+b"),
            "{lines:?}"
        );
    }

    #[test]
    fn csv_quotes_by_rfc_4180() {
        let text = csv_text(
            &["host".into(), "note".into()],
            &[
                vec!["web-1".into(), "said \"hi\", twice".into()],
                vec!["web-2".into(), "two\nlines".into()],
                vec!["web-3".into(), String::new()],
            ],
        );
        assert_eq!(
            text,
            "host,note\nweb-1,\"said \"\"hi\"\", twice\"\nweb-2,\"two\nlines\"\nweb-3,\n"
        );
        assert_eq!(csv_field(" pad"), "\" pad\"");
    }
}
