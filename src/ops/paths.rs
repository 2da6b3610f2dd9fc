//! The one way a name from outside (a host name, a recipe argument, a path on a host)
//! becomes part of a path fleet writes: each component is checked, and the joined path
//! must still be under its root, so no value can reach a file outside fleet's folders.

use std::path::{Component, Path, PathBuf};

/// Why a name or path from outside cannot become part of a path fleet writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// The name is not a single path component.
    #[error("`{}` cannot be used as a file name: {why}", name.escape_debug())]
    BadName { name: String, why: &'static str },
    /// A relative path with no component at all (`""`, `/`).
    #[error("`{}` names no file under {}", relative.escape_debug(), root.display())]
    NoFile { relative: String, root: PathBuf },
    /// The joined path is not strictly below its root.
    #[error("{} is not inside {}: fleet writes only under its own folders", path.display(), root.display())]
    Outside { path: PathBuf, root: PathBuf },
}

/// `name` as a single path component: not empty, not `.`/`..`, no separator, no NUL.
pub(crate) fn component(name: &str) -> Result<&str, PathError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it names a directory above")
    } else if name.contains('/') || name.contains('\\') {
        Some("it holds a path separator")
    } else if name.contains('\0') {
        Some("it holds a NUL byte")
    } else {
        None
    };
    match why {
        Some(why) => Err(PathError::BadName {
            name: name.to_string(),
            why,
        }),
        None => Ok(name),
    }
}

/// Paths in messages are shown relative to the working directory when possible.
pub(crate) fn display(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    match path.strip_prefix(&cwd) {
        // The working directory itself: `.`, not an empty name.
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// `root/a/b/…` from single components; an error names the bad one.
pub(crate) fn join_under(root: &Path, parts: &[&str]) -> Result<PathBuf, PathError> {
    let mut path = root.to_path_buf();
    for part in parts {
        path.push(component(part)?);
    }
    stays_under(root, &path)?;
    Ok(path)
}

/// `root/etc/ssh/sshd_config` for the relative path `etc/ssh/sshd_config`: every
/// component is checked (`..` refused), empty ones (`a//b`) are skipped.
pub(crate) fn join_relative(root: &Path, relative: &str) -> Result<PathBuf, PathError> {
    let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(PathError::NoFile {
            relative: relative.to_string(),
            root: root.to_path_buf(),
        });
    }
    join_under(root, &parts)
}

/// After joining, the path must still be below `root`, compared component by component.
pub(crate) fn stays_under(root: &Path, path: &Path) -> Result<(), PathError> {
    let escapes = path.components().any(|c| matches!(c, Component::ParentDir));
    if escapes || !path.starts_with(root) || path == root {
        return Err(PathError::Outside {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_as_path_cannot_escape_its_root() {
        let root = Path::new("/state/hosts");
        for bad in ["/tmp/victim", "../../x", "..", ".", "", "a/b", "a\0b"] {
            assert!(join_under(root, &[bad]).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            join_under(root, &["web-1", "x"]).unwrap(),
            Path::new("/state/hosts/web-1/x")
        );
    }

    #[test]
    fn relative_paths_keep_their_depth_but_not_their_dots() {
        let root = Path::new("/s");
        assert_eq!(
            join_relative(root, "etc//ssh/sshd_config").unwrap(),
            Path::new("/s/etc/ssh/sshd_config")
        );
        assert!(join_relative(root, "etc/../../x").is_err());
        assert!(join_relative(root, "/").is_err());
    }

    #[test]
    fn path_error_messages() {
        assert_eq!(
            component("a/b").unwrap_err().to_string(),
            "`a/b` cannot be used as a file name: it holds a path separator"
        );
        assert_eq!(
            join_relative(Path::new("/s"), "/").unwrap_err().to_string(),
            "`/` names no file under /s"
        );
        assert_eq!(
            stays_under(Path::new("/a"), Path::new("/ab"))
                .unwrap_err()
                .to_string(),
            "/ab is not inside /a: fleet writes only under its own folders"
        );
    }

    #[test]
    fn joined_paths_are_checked_lexically() {
        assert!(stays_under(Path::new("/a"), Path::new("/a/b")).is_ok());
        assert!(stays_under(Path::new("/a"), Path::new("/a/../b")).is_err());
        assert!(stays_under(Path::new("/a"), Path::new("/ab")).is_err());
        assert!(stays_under(Path::new("/a"), Path::new("/a")).is_err());
    }
}
