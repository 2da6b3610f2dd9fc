//! `h.sync(local_dir, remote_dir, #{ delete, exclude, mode })`: a whole directory of the
//! project copied to a host by one rsync on the controller, over the host's existing
//! master connection (one session, no login of its own). rsync's `--itemize-changes`
//! says what it changed, so the host is *changed* only when a file differed, and under
//! `--check` the same command runs with `--dry-run` and its names are listed.
//!
//! Not through sudo: the files are written as the login user (a directory only root
//! may write needs a sync to a staging directory, then `h.sudo("cp -a …")`).

use crate::ops::remote::{CommandOpts, Remote};
use crate::outcome::HostError;

/// The options map of `h.sync`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyncOpts {
    /// Remove files on the host that are not in the local directory (excluded ones stay).
    #[serde(default)]
    pub(crate) delete: bool,
    /// rsync exclude patterns, relative to the directory (`"*.tmp"`, `"/cache/"`).
    #[serde(default)]
    pub(crate) exclude: Vec<String>,
    /// rsync's `--chmod` (`"D755,F644"`, `"u=rwX,go=rX"`) for what is written.
    #[serde(default)]
    pub(crate) mode: Option<String>,
}

/// Why `h.sync`'s inputs cannot become an rsync command line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum SyncInputError {
    #[error("remote directory `{0}` must be an absolute path without `..`, NUL or line breaks")]
    Remote(String),
    #[error("exclude pattern `{0}` must be non-empty, on one line")]
    Exclude(String),
    #[error(
        "mode `{0}` is not an rsync --chmod (e.g. \"D755,F644\" or \"u=rwX,go=rX\": letters DFugoa, +-=, rwxXst, octal digits, commas)"
    )]
    Mode(String),
}

impl SyncOpts {
    pub(crate) fn check(&self) -> Result<(), SyncInputError> {
        for e in &self.exclude {
            if e.is_empty() || e.contains(['\n', '\r', '\0']) {
                return Err(SyncInputError::Exclude(e.escape_debug().to_string()));
            }
        }
        if let Some(m) = &self.mode {
            let ok = !m.is_empty() && m.chars().all(|c| "DFugoa+-=rwxXst01234567,".contains(c));
            if !ok {
                return Err(SyncInputError::Mode(m.escape_debug().to_string()));
            }
        }
        Ok(())
    }
}

/// A directory on the host as rsync may be given it.
pub(crate) fn check_remote_dir(dir: &str) -> Result<(), SyncInputError> {
    let bad = !dir.starts_with('/')
        || dir.contains(['\n', '\r', '\0'])
        || dir.split('/').any(|c| c == "..");
    if bad {
        return Err(SyncInputError::Remote(dir.escape_debug().to_string()));
    }
    Ok(())
}

/// The rsync arguments of one sync: `local_dir`'s content into `remote_dir` on the host,
/// reached through `via` (its login and the `ssh …` for `-e`), or on this machine.
/// `--itemize-changes` lists what changed; `dry_run` only says so.
pub(crate) fn sync_args(
    local_dir: &str,
    remote_dir: &str,
    via: Option<&(String, String)>,
    opts: &SyncOpts,
    dry_run: bool,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--recursive",
        "--links",
        "--perms",
        "--times",
        "--itemize-changes",
        "--protect-args",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if dry_run {
        args.push("--dry-run".into());
    }
    if opts.delete {
        args.push("--delete".into());
    }
    for e in &opts.exclude {
        args.push(format!("--exclude={e}"));
    }
    if let Some(m) = &opts.mode {
        args.push(format!("--chmod={m}"));
    }
    if let Some((_, ssh)) = via {
        args.push("-e".into());
        args.push(ssh.clone());
    }
    // Whatever the paths or the login hold, they are never options.
    args.push("--".into());
    args.push(format!("{}/", local_dir.trim_end_matches('/')));
    let dest = format!("{}/", remote_dir.trim_end_matches('/'));
    args.push(match via {
        Some((login, _)) => format!("{login}:{dest}"),
        None => dest,
    });
    args
}

/// What rsync changed (or, with `--dry-run`, would change), by name relative to the
/// directory.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(crate) struct SyncChanges {
    pub(crate) created: Vec<String>,
    pub(crate) updated: Vec<String>,
    pub(crate) deleted: Vec<String>,
}

impl SyncChanges {
    pub(crate) fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }

    pub(crate) fn count(&self) -> usize {
        self.created.len() + self.updated.len() + self.deleted.len()
    }

    /// One line per name: `+ new`, `~ updated`, `- deleted`.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mark = |m: &str, names: &[String]| {
            names
                .iter()
                .map(|n| format!("{m} {}", crate::ops::terminal::neutralise(n)))
                .collect::<Vec<_>>()
        };
        [
            mark("+", &self.created),
            mark("~", &self.updated),
            mark("-", &self.deleted),
        ]
        .concat()
    }
}

/// Reads rsync's `--itemize-changes` lines (`YXcstpoguax name`, `*deleting   name`):
/// an item whose attributes are all `+` is new, `*deleting` removed, anything else
/// updated (content, mode or time). Other lines are not items and are skipped.
pub(crate) fn parse_itemized(stdout: &str) -> SyncChanges {
    let mut c = SyncChanges::default();
    for line in stdout.lines() {
        let Some(code) = line.get(..11) else { continue };
        let Some(name) = line.get(12..).filter(|_| line.as_bytes()[11] == b' ') else {
            continue;
        };
        if code.starts_with("*deleting") {
            c.deleted.push(name.to_string());
            continue;
        }
        let mut chars = code.chars();
        let (Some(y), Some(x)) = (chars.next(), chars.next()) else {
            continue;
        };
        if !"<>ch.".contains(y) || !"fdLDS".contains(x) {
            continue;
        }
        let attrs = &code[2..];
        if attrs.trim_end().chars().all(|a| a == '+') && !attrs.trim().is_empty() {
            c.created.push(name.to_string());
        } else {
            c.updated.push(name.to_string());
        }
    }
    c
}

/// What `h.sync` reports back.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(crate) struct SyncResult {
    pub(crate) changed: bool,
    #[serde(flatten)]
    pub(crate) changes: SyncChanges,
}

/// Runs the sync on the controller (`controller`, which prints, logs and marks `host`
/// changed): `shown` is the direction for messages (`site/ to web-1:/srv/site/`). Under
/// check mode rsync runs with `--dry-run`, the names that would change are printed and
/// the host counts as changed (as for any command `--check` would run).
pub(crate) fn sync(
    controller: &dyn Remote,
    args_for: &dyn Fn(bool) -> Vec<String>,
    shown: &str,
) -> Result<SyncResult, HostError> {
    let dry_run = controller.check_mode();
    let cmd = crate::ops::rsync::command(&args_for(dry_run));
    let out = controller.command(
        &cmd,
        CommandOpts {
            allow_fail: true,
            read_only: dry_run,
            changed: Some(false),
            ..CommandOpts::CHANGE
        },
    )?;
    if out.code != 0 {
        let code = out.code as i32;
        let message = format!(
            "sync of {shown} failed: rsync exited with {code}: {}",
            crate::ops::text::tail(&out.stderr, 3)
        );
        let error = HostError {
            command: Some(cmd),
            code: Some(code),
            ..HostError::new(controller.name(), message)
        };
        return Err(
            match crate::ops::rsync::source_unreachable(code, &out.stderr) {
                true => HostError {
                    unreachable: true,
                    ..error
                },
                false => error,
            },
        );
    }
    let changes = parse_itemized(&out.stdout);
    if changes.is_empty() {
        return Ok(SyncResult::default());
    }
    if dry_run {
        let mut text = format!("would sync {shown}: {} changes", changes.count());
        for l in changes.lines() {
            text.push_str("\n  ");
            text.push_str(&l);
        }
        controller.out(&text);
    }
    // As for any command under --check, a change that would be made counts.
    controller.mark_changed();
    Ok(SyncResult {
        changed: !changes.is_empty(),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::fake::Scripted;

    #[test]
    fn the_command_line_over_the_master() {
        let via = (
            "ops@10.0.0.5".to_string(),
            "ssh -o BatchMode=yes -o ControlMaster=no -o ControlPath=/run/fleet/3 -p 2222"
                .to_string(),
        );
        let opts = SyncOpts {
            delete: true,
            exclude: vec!["*.tmp".into(), "/cache/".into()],
            mode: Some("D755,F644".into()),
        };
        assert_eq!(
            crate::ops::rsync::command(&sync_args("/p/site/", "/srv/-x", Some(&via), &opts, true)),
            "rsync --recursive --links --perms --times --itemize-changes --protect-args \
             --dry-run --delete '--exclude=*.tmp' --exclude=/cache/ --chmod=D755,F644 \
             -e 'ssh -o BatchMode=yes -o ControlMaster=no -o ControlPath=/run/fleet/3 -p 2222' \
             -- /p/site/ ops@10.0.0.5:/srv/-x/"
        );
        assert_eq!(
            sync_args("/p/a b", "/srv/a b", None, &SyncOpts::default(), false).join(" "),
            "--recursive --links --perms --times --itemize-changes --protect-args -- /p/a b/ /srv/a b/"
        );
    }

    #[test]
    fn inputs_are_checked() {
        assert!(check_remote_dir("/srv/site").is_ok());
        for bad in ["srv", "/srv/../etc", "/a\nb", ""] {
            assert!(check_remote_dir(bad).is_err(), "{bad:?}");
        }
        let bad_mode = SyncOpts {
            mode: Some("755; rm".into()),
            ..SyncOpts::default()
        };
        assert!(bad_mode.check().is_err());
        let bad_exclude = SyncOpts {
            exclude: vec!["a\nb".into()],
            ..SyncOpts::default()
        };
        assert!(bad_exclude.check().is_err());
    }

    #[test]
    fn itemized_changes_become_names() {
        let out = "cd+++++++++ ./\n>f+++++++++ index.html\n>f.st...... css/a.css\n\
                   .d..t...... css/\n*deleting   old name.txt\ncL+++++++++ link -> x\n\
                   sending incremental file list\n";
        let c = parse_itemized(out);
        assert_eq!(c.created, ["./", "index.html", "link -> x"]);
        assert_eq!(c.updated, ["css/a.css", "css/"]);
        assert_eq!(c.deleted, ["old name.txt"]);
        assert!(parse_itemized("").is_empty());
        assert_eq!(c.lines()[1], "+ index.html");
        // A file name is host-independent but still hostile: no escape reaches a terminal.
        let evil = parse_itemized(">f+++++++++ a\u{1b}[2Jb\n");
        assert!(!evil.lines()[0].contains('\u{1b}'), "{:?}", evil.lines());
    }

    #[test]
    fn changed_only_when_rsync_itemized_something() {
        let args = |dry: bool| vec![if dry { "--dry-run" } else { "--x" }.to_string()];
        let r = Scripted::new(&[("rsync --x", 0, ">f+++++++++ a\n")]);
        let got = sync(&r, &args, "site/ to h:/srv/").unwrap();
        assert!(got.changed && r.marked());
        let r = Scripted::new(&[("rsync --x", 0, "")]);
        let got = sync(&r, &args, "site/ to h:/srv/").unwrap();
        assert!(!got.changed && !r.marked());
        let r = Scripted::new(&[("rsync", 255, "")]);
        assert!(sync(&r, &args, "x").unwrap_err().unreachable);
    }

    #[test]
    fn check_mode_runs_a_dry_run_and_lists_the_names() {
        let args = |dry: bool| vec![if dry { "--dry-run" } else { "--x" }.to_string()];
        let mut r = Scripted::new(&[("rsync --dry-run", 0, ">f+++++++++ a\n*deleting   b\n")]);
        r.check = true;
        let got = sync(&r, &args, "site/ to h:/srv/").unwrap();
        assert!(
            got.changed && r.marked(),
            "would change: changed, as under --check"
        );
        assert_eq!(r.ran(), ["rsync --dry-run"]);
        assert_eq!(
            r.printed(),
            ["would sync site/ to h:/srv/: 2 changes\n  + a\n  - b"]
        );
    }
}
