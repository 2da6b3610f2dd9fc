//! Files on hosts, over `Remote`: write (atomic, changed only when different), upload,
//! download, and the check-mode diff. Command lines come from `ops::files`.

use super::{self as files, Existing};
use crate::ops::remote::Remote;
use crate::ops::shell::maybe_sudo;
use crate::outcome::HostError;
use std::path::Path;

/// Largest file whose old and new text a check-mode diff shows.
const DIFF_LIMIT: usize = 256 * 1024;

/// Shown instead of the check-mode diff of a file that holds a secret.
pub(crate) const SECRET_HIDDEN: &str = "(content hidden: holds a secret)";

/// The check-mode diff from `old` to `new`, or [`SECRET_HIDDEN`] when either holds a
/// configured secret: lines next to a masked one (or an old value of it) give too much
/// away.
pub(crate) fn check_diff(path: &str, old: &str, new: &str) -> String {
    use crate::ops::secrets::holds_secret;
    if holds_secret(old.as_bytes()) || holds_secret(new.as_bytes()) {
        return SECRET_HIDDEN.to_string();
    }
    let diff = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .header(&format!("{path} (now)"), &format!("{path} (after)"))
        .to_string();
    diff.trim_end().to_string()
}

/// How a file is written; also the options map of `h.write`, `h.upload`, `h.template`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileOpts {
    #[serde(default, deserialize_with = "crate::ops::options::some_mode")]
    pub(crate) mode: Option<String>,
    #[serde(default, deserialize_with = "crate::ops::options::some_owner")]
    pub(crate) owner: Option<String>,
    /// Run the file commands through `sudo -n`.
    #[serde(default)]
    pub(crate) sudo: bool,
}

/// The options map of `h.download`: `sudo` to read a file only root can read, `mode`
/// for the local file instead of the remote one's.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DownloadOpts {
    #[serde(default)]
    pub(crate) sudo: bool,
    #[serde(default, deserialize_with = "crate::ops::options::some_mode")]
    pub(crate) mode: Option<String>,
}

impl DownloadOpts {
    /// The mode as a number (its digits were checked as octal when read).
    pub(crate) fn mode_bits(&self) -> Option<u32> {
        self.mode
            .as_ref()
            .map(|m| u32::from_str_radix(m, 8).unwrap_or(0o600))
    }
}

fn failure(r: &dyn Remote, message: String) -> HostError {
    HostError::new(r.name(), message)
}

/// Why a file command failed: sudo's problem in words (naming what a limited sudo
/// allows when `sudo_cmd`, the shell text it ran through `sudo -n sh -c`, was refused),
/// else the end of its stderr.
pub(crate) fn why_failed(r: &dyn Remote, sudo_cmd: Option<&str>, stderr: &str) -> String {
    let problem = match sudo_cmd {
        Some(cmd) => crate::ops::sudo::explain(r, &crate::ops::shell::sh_c(cmd), stderr),
        None => crate::ops::sudo::problem(r.name(), stderr),
    };
    problem.map_or_else(|| crate::ops::text::tail(stderr, 3), |p| p.to_string())
}

/// Makes `path` on `host` hold `content` (and mode/owner); true when it changed.
/// Content that holds a configured secret is 0600 unless `opts` give a mode.
pub(crate) fn write_file(
    r: &dyn Remote,
    path: &str,
    content: &[u8],
    opts: &FileOpts,
) -> Result<bool, HostError> {
    let secret = crate::ops::secrets::holds_secret(content);
    let opts = &FileOpts {
        mode: files::default_mode(opts.mode.as_deref(), secret).map(str::to_string),
        ..opts.clone()
    };
    let step_failure = |what: &str, cmd: &str, out: &crate::transport::CmdOutput| {
        let why = why_failed(r, opts.sudo.then_some(cmd), &out.stderr);
        failure(r, format!("cannot {what} {path} on {}: {why}", r.name()))
    };
    let inspect_cmd = files::inspect_cmd(path);
    let inspect = r.exec(&maybe_sudo(&inspect_cmd, opts.sudo), None, None, true)?;
    if inspect.code != 0 {
        return Err(step_failure("inspect", &inspect_cmd, &inspect));
    }
    let existing = files::parse_inspect(&inspect.stdout_text())
        .map_err(|e| failure(r, format!("cannot inspect {path} on {}: {e}", r.name())))?;
    if existing == Existing::NotAFile {
        return Err(failure(
            r,
            format!(
                "{path} on {} exists and is not a regular file; fleet will not replace it",
                r.name()
            ),
        ));
    }
    let sha = files::sha256_hex(content);
    let plan = files::plan(&existing, &sha, opts.mode.as_deref(), opts.owner.as_deref());
    if !plan.changes() {
        return Ok(false);
    }
    if r.check_mode() {
        show_planned_write(r, path, content, &existing, &plan, opts)?;
        r.mark_changed();
        return Ok(true);
    }
    let cmd = if plan.content {
        let tmp = files::temp_path(path, &format!("{:08x}", fastrand::u32(..)));
        files::install_cmd(path, &tmp, opts.mode.as_deref(), opts.owner.as_deref())
    } else {
        files::attrs_cmd(path, opts.mode.as_deref(), opts.owner.as_deref()).unwrap_or_default()
    };
    let stdin = plan.content.then_some(content);
    let out = r.exec(&maybe_sudo(&cmd, opts.sudo), None, stdin, true)?;
    if out.code != 0 {
        return Err(step_failure("write", &cmd, &out));
    }
    r.mark_changed();
    Ok(true)
}

/// Check mode: what a write would do, with a diff for text files.
fn show_planned_write(
    r: &dyn Remote,
    path: &str,
    content: &[u8],
    existing: &Existing,
    plan: &files::Plan,
    opts: &FileOpts,
) -> Result<(), HostError> {
    let mut what = Vec::new();
    if plan.content {
        what.push(match existing {
            Existing::Absent => format!("create it ({} bytes)", content.len()),
            _ => format!("replace its content ({} bytes)", content.len()),
        });
    }
    if plan.mode {
        what.push(format!(
            "set mode {}",
            opts.mode.as_deref().unwrap_or_default()
        ));
    }
    if plan.owner {
        what.push(format!(
            "set owner {}",
            opts.owner.as_deref().unwrap_or_default()
        ));
    }
    r.out(&format!("would write {path}: {}", what.join(", ")));
    if !plan.content {
        return Ok(());
    }
    // The old content is not even read when the new one holds a secret: a rotated
    // secret's old value is no configured secret, so masking would not hide it.
    if crate::ops::secrets::holds_secret(content) {
        r.out(SECRET_HIDDEN);
        return Ok(());
    }
    let new_text = std::str::from_utf8(content)
        .ok()
        .filter(|t| t.len() <= DIFF_LIMIT);
    if let Some(new_text) = new_text {
        let old = match existing {
            Existing::File { .. } => {
                let out = r.exec(
                    &maybe_sudo(&files::cat_cmd(path), opts.sudo),
                    None,
                    None,
                    false,
                )?;
                String::from_utf8(out.stdout).ok()
            }
            _ => Some(String::new()),
        };
        if let Some(old) = old.filter(|o| o.len() <= DIFF_LIMIT) {
            r.out(&check_diff(path, &old, new_text));
        }
    }
    Ok(())
}

/// Runs a read-only file command (raw output, through sudo when asked); a non-zero
/// exit fails with `cannot {what} {path} on HOST` and why.
pub(crate) fn query(
    r: &dyn Remote,
    cmd: &str,
    sudo: bool,
    what: &str,
    path: &str,
) -> Result<crate::transport::CmdOutput, HostError> {
    let out = r.exec(&maybe_sudo(cmd, sudo), None, None, false)?;
    if out.code != 0 {
        let why = why_failed(r, sudo.then_some(cmd), &out.stderr);
        return Err(failure(
            r,
            format!("cannot {what} {path} on {}: {why}", r.name()),
        ));
    }
    Ok(out)
}

/// Copies `remote` from `host` to `local` (atomically), with the remote file's mode
/// or `mode` when given (a private key stays private); true when the local file
/// changed.
pub(crate) fn download(
    r: &dyn Remote,
    remote: &str,
    local: &Path,
    sudo: bool,
    mode: Option<u32>,
) -> Result<bool, HostError> {
    let out = query(r, &files::read_with_mode_cmd(remote), sudo, "read", remote)?;
    let (remote_mode, data) = files::parse_mode_and_content(&out.stdout)
        .map_err(|e| failure(r, format!("cannot read {remote} on {}: {e}", r.name())))?;
    let mode = mode.unwrap_or(remote_mode);
    let same_data = std::fs::read(local).is_ok_and(|old| old == data);
    if same_data && crate::ops::localfs::mode_of(local).is_ok_and(|m| m == mode) {
        return Ok(false);
    }
    if r.check_mode() {
        r.out(&format!(
            "would download {remote} to {} ({} bytes, mode {mode:04o})",
            local.display(),
            data.len()
        ));
        return Ok(true);
    }
    crate::ops::localfs::write_atomic(local, data, Some(mode)).map_err(|e| {
        failure(
            r,
            format!(
                "cannot write {} for {remote} of {}: {e}",
                local.display(),
                r.name()
            ),
        )
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_wraps_the_whole_command() {
        assert_eq!(
            maybe_sudo("cat > x && mv x y", true),
            "sudo -n sh -c 'cat > x && mv x y'"
        );
        assert_eq!(maybe_sudo("true", false), "true");
    }

    #[test]
    fn check_diff_hides_old_secret_lines() {
        crate::ops::secrets::register("Qd1-new-password");
        // The old value is no configured secret: only hiding the whole diff hides it.
        let old = "user = app\npassword = Qd1-old-password\n";
        let new = "user = app\npassword = Qd1-new-password\n";
        assert_eq!(check_diff("/etc/app.conf", old, new), SECRET_HIDDEN);
        assert_eq!(
            check_diff("/etc/app.conf", new, "user = b\n"),
            SECRET_HIDDEN
        );
        let plain = check_diff("/etc/app.conf", "port = 1\n", "port = 2\n");
        assert!(
            plain.contains("-port = 1") && plain.contains("+port = 2"),
            "{plain}"
        );
    }
}
