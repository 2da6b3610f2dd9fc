//! Configuration capture: files copied from a host into the state repository
//! (`hosts/<host>/<path>`, with their modes in `hosts/<host>/.modes`), staged into the
//! run's one commit, so the repository holds how each machine was configured at each
//! run and `git log -p hosts/web-3` shows how that changed.

use crate::ops::remote::Remote;
use crate::ops::shell::quote;
use crate::outcome::HostError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a file could not be captured or where it would be kept is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CaptureError {
    #[error("unexpected output: no first line")]
    NoFirstLine,
    #[error("unexpected mode `{0}`")]
    BadMode(String),
    #[error("snapshot_config needs absolute paths without `..`, not `{0}`")]
    NotAbsolute(String),
    #[error("cannot keep configuration of host {}: {source}", host.escape_debug())]
    BadHost {
        host: String,
        source: crate::ops::paths::PathError,
    },
    #[error(transparent)]
    Path(#[from] crate::ops::paths::PathError),
}

/// The options map of `snapshot_config`: `sudo` for files only root can read.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptureOpts {
    #[serde(default)]
    pub(crate) sudo: bool,
}

/// One round trip per file: `absent`, or its mode on the first line and then its bytes.
pub(crate) fn capture_cmd(path: &str) -> String {
    let p = quote(path);
    format!("if [ -f {p} ]; then stat -c %a -- {p} && cat -- {p}; else echo absent; fi")
}

#[derive(Debug, PartialEq)]
pub(crate) enum Captured {
    Absent,
    File { mode: String, content: Vec<u8> },
}

pub(crate) fn parse_capture(out: &[u8]) -> Result<Captured, CaptureError> {
    let nl = out
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(CaptureError::NoFirstLine)?;
    let first = String::from_utf8_lossy(&out[..nl]).trim().to_string();
    if first == "absent" {
        return Ok(Captured::Absent);
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CaptureError::BadMode(first));
    }
    Ok(Captured::File {
        mode: first,
        content: out[nl + 1..].to_vec(),
    })
}

/// `hosts/web-1/etc/ssh/sshd_config` for `/etc/ssh/sshd_config`.
pub(crate) fn snapshot_path(host: &str, path: &str) -> Result<PathBuf, CaptureError> {
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(CaptureError::NotAbsolute(path.to_string()));
    }
    let host_dir = host_dir(host)?;
    Ok(crate::ops::paths::join_relative(&host_dir, path)?)
}

/// `hosts/<host>`: the host name is one path component, or the snapshot is refused.
pub(crate) fn host_dir(host: &str) -> Result<PathBuf, CaptureError> {
    crate::ops::paths::join_under(Path::new("hosts"), &[host]).map_err(|source| {
        CaptureError::BadHost {
            host: host.to_string(),
            source,
        }
    })
}

fn read_modes(file: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(m, p)| (p.to_string(), m.to_string()))
        .collect()
}

fn write_modes(file: &Path, modes: &BTreeMap<String, String>) -> std::io::Result<()> {
    let text: String = modes.iter().map(|(p, m)| format!("{m} {p}\n")).collect();
    crate::ops::localfs::write_private(file, text.as_bytes())
}

/// Copies `paths` from the host into the state repository `state`; returns the files
/// (relative to `state`) for the run to stage into its one commit.
pub(crate) fn config(
    r: &dyn Remote,
    state: &Path,
    paths: &[String],
    sudo: bool,
) -> Result<Vec<PathBuf>, HostError> {
    let host = r.name();
    let fail = |message: String| HostError::new(host, message);
    let modes_rel = host_dir(host)
        .map_err(|e| fail(e.to_string()))?
        .join(".modes");
    let mut modes = read_modes(&state.join(&modes_rel));
    let mut staged = vec![modes_rel.clone()];
    for path in paths {
        let rel = snapshot_path(host, path).map_err(|e| fail(e.to_string()))?;
        let out = crate::ops::files::query(r, &capture_cmd(path), sudo, "capture", path)?;
        let local = state.join(&rel);
        match parse_capture(&out.stdout)
            .map_err(|e| fail(format!("cannot capture {path} on {host}: {e}")))?
        {
            Captured::Absent => {
                let _ = std::fs::remove_file(&local);
                modes.remove(path);
            }
            Captured::File { mode, content } => {
                // No configured secret reaches the state repository (git keeps every
                // version for good), read by the recipe or not, text or binary.
                let content = crate::ops::secrets::redact_bytes(&content);
                crate::ops::localfs::write_private(&local, &content).map_err(|e| {
                    fail(format!(
                        "cannot store {path} of {host} in {}: {e}",
                        local.display()
                    ))
                })?;
                modes.insert(path.clone(), mode);
            }
        }
        staged.push(rel);
    }
    write_modes(&state.join(&modes_rel), &modes)
        .map_err(|e| fail(format!("cannot write {}: {e}", modes_rel.display())))?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_are_parsed_with_binary_content() {
        assert_eq!(parse_capture(b"absent\n").unwrap(), Captured::Absent);
        assert_eq!(
            parse_capture(b"640\na\0b\n").unwrap(),
            Captured::File {
                mode: "640".into(),
                content: b"a\0b\n".to_vec()
            }
        );
        assert!(parse_capture(b"garbage").is_err());
    }

    #[test]
    fn snapshot_paths_stay_under_the_host() {
        assert_eq!(
            snapshot_path("web-1", "/etc/ssh/sshd_config").unwrap(),
            Path::new("hosts/web-1/etc/ssh/sshd_config")
        );
        assert!(snapshot_path("web-1", "etc/x").is_err());
        assert!(snapshot_path("web-1", "/etc/../../x").is_err());
        for host in ["../../x", "/abs", "..", "a/b"] {
            assert!(snapshot_path(host, "/etc/hosts").is_err(), "{host}");
        }
    }

    #[test]
    fn config_capture_stores_files_and_modes_and_drops_absent_ones() {
        use crate::ops::remote::fake::Scripted;
        let state = tempfile::tempdir().unwrap();
        let r = Scripted::new(&[
            ("if [ -f /etc/hosts ]", 0, "644\n127.0.0.1 localhost\n"),
            ("sudo -n sh -c 'if [ -f /etc/gone ]", 0, "absent\n"),
        ]);
        let staged = config(&r, state.path(), &["/etc/hosts".into()], false).unwrap();
        assert_eq!(
            staged,
            [
                Path::new("hosts/fake/.modes"),
                Path::new("hosts/fake/etc/hosts")
            ]
        );
        let stored = std::fs::read_to_string(state.path().join("hosts/fake/etc/hosts")).unwrap();
        assert_eq!(stored, "127.0.0.1 localhost\n");
        config(&r, state.path(), &["/etc/gone".into()], true).unwrap();
        let modes = std::fs::read_to_string(state.path().join("hosts/fake/.modes")).unwrap();
        assert_eq!(modes, "644 /etc/hosts\n");
    }
}
