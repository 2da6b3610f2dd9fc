//! Backups of hosts into rsync snapshots on the controller: `<dest>/<host>/<time>`, each
//! made as `<time>.partial` with `--link-dest` to the newest complete one and renamed
//! only when rsync succeeded; then pruned by the retention policy. Only directories
//! fleet named are ever removed, and never in a destination without fleet's marker.

use super::run::{CommandRecord, HostFailure, Run};
use crate::inventory::{Connection, ResolvedHost};
use crate::ops::rsync::{self, MARKER, PARTIAL, Retention, Source};
use crate::ops::shell::quote;
use crate::transport::{LocalTransport, RunOpts, Transport};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct BackupOpts {
    pub dest_dir: PathBuf,
    pub excludes: Vec<String>,
    pub one_file_system: bool,
    pub retention: Retention,
}

/// What one backup of one host did, as the journal and `fleet backups` keep it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct BackupResult {
    pub snapshot: Option<String>,
    pub files_transferred: u64,
    pub bytes_transferred: u64,
    pub total_size: u64,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
}

/// A destination must be empty, missing, or carry fleet's marker: rsync `--delete`
/// inside someone else's directory would destroy it.
pub fn prepare_destination(dest: &Path) -> Result<(), String> {
    let marker = dest.join(MARKER);
    if marker.is_file() {
        return Ok(());
    }
    if dest.exists() {
        let mut entries = std::fs::read_dir(dest)
            .map_err(|e| format!("cannot read backup destination {}: {e}", dest.display()))?;
        if entries.next().is_some() {
            return Err(format!(
                "backup destination {} is not empty and has no {MARKER} marker: fleet will not \
                 write into a directory it did not create; choose an empty directory (or a new \
                 path) for backups",
                dest.display()
            ));
        }
    }
    std::fs::create_dir_all(dest)
        .and_then(|_| {
            std::fs::write(
                &marker,
                "This directory holds fleet's backup snapshots; fleet prunes only what it made.\n",
            )
        })
        .map_err(|e| format!("cannot prepare backup destination {}: {e}", dest.display()))
}

/// Complete snapshots of one host (name, time), and stale partial ones, by fleet's names.
fn list_snapshots(dir: &Path) -> (Vec<(String, i64)>, Vec<String>) {
    let (mut complete, mut partial) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(t) = rsync::parse_snapshot_name(&name) {
            complete.push((name, t));
        } else if let Some(stem) = name.strip_suffix(PARTIAL)
            && rsync::parse_snapshot_name(stem).is_some()
        {
            partial.push(name);
        }
    }
    complete.sort_by_key(|(_, t)| *t);
    (complete, partial)
}

/// The `ssh` command rsync uses: the run's own options for that host.
fn ssh_command(run: &Run, host: &ResolvedHost) -> (String, String) {
    let target = crate::ops::ssh::target_for(host, &run.options.ssh);
    let mut args = target.ssh_args();
    let address = args.pop().unwrap_or_default();
    let mut cmd = vec!["ssh".to_string(), "-o".into(), "BatchMode=yes".into()];
    cmd.extend(args);
    let login = match &target.user {
        Some(u) => format!("{u}@{address}"),
        None => address,
    };
    let ssh = cmd.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    (login, ssh)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Run {
    /// Runs rsync on the controller, noted in the host's journal record.
    fn controller_rsync(&self, host: &str, args: &[String]) -> crate::transport::CmdOutput {
        let cmd = std::iter::once("rsync".to_string())
            .chain(args.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        let started = Instant::now();
        let out = LocalTransport
            .run(&cmd, &RunOpts::default(), None, &mut |_, line| {
                self.ui.host_activity(host, &format!("rsync  {line}"))
            })
            .unwrap_or_else(|e| crate::transport::CmdOutput {
                code: -1,
                stdout: Vec::new(),
                stderr: e.to_string(),
            });
        let record = CommandRecord {
            step: super::current::step(),
            command: cmd,
            exit_code: Some(out.code),
            duration_ms: started.elapsed().as_millis() as u64,
            executed: true,
            ..CommandRecord::default()
        };
        self.note_command(host, record, &out.stdout_text(), &out.stderr);
        out
    }

    /// One snapshot of `paths` of `host`; an error leaves every complete snapshot as it was.
    pub fn backup(
        &self,
        host: &ResolvedHost,
        paths: &[String],
        opts: &BackupOpts,
    ) -> Result<BackupResult, HostFailure> {
        let started = Instant::now();
        let fail = |result: &BackupResult, message: String| {
            let mut result = result.clone();
            result.error = Some(message.clone());
            result.duration_ms = started.elapsed().as_millis() as u64;
            self.record_backup(&host.name, &result);
            HostFailure {
                host: host.name.clone(),
                // rsync's 255 is ssh's: the source could not be reached.
                unreachable: result.exit_code == Some(255),
                command: None,
                code: result.exit_code,
                stderr: String::new(),
                message: format!("backup of {} failed: {message}", host.name),
            }
        };
        let mut result = BackupResult::default();
        if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
            return Err(fail(
                &result,
                format!("backup paths must be absolute, got {paths:?}"),
            ));
        }
        if self.options.check {
            self.ui.out(
                Some(&host.name),
                &format!(
                    "would back up {} to {}",
                    paths.join(" "),
                    opts.dest_dir.display()
                ),
            );
            return Ok(result);
        }
        prepare_destination(&opts.dest_dir).map_err(|e| fail(&result, e))?;
        let dir = opts.dest_dir.join(&host.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail(&result, format!("cannot create {}: {e}", dir.display())))?;
        let (complete, stale) = list_snapshots(&dir);
        for name in stale {
            // A partial snapshot is one fleet started and never finished: its own.
            let _ = std::fs::remove_dir_all(dir.join(name));
        }
        let mut time = now_unix();
        while complete.iter().any(|(_, t)| *t == time) {
            time += 1;
        }
        let name = rsync::snapshot_name(time);
        let partial = dir.join(format!("{name}{PARTIAL}"));
        let link_dest = complete.last().map(|(n, _)| dir.join(n));
        let (login, ssh) = match host.connection {
            Connection::Local => (None, None),
            Connection::Ssh => {
                let (login, ssh) = ssh_command(self, host);
                (Some(login), Some(ssh))
            }
        };
        let source = Source {
            login,
            ssh,
            paths: paths.to_vec(),
        };
        let args = rsync::snapshot_args(
            &source,
            &partial.display().to_string(),
            link_dest
                .as_ref()
                .map(|p| p.display().to_string())
                .as_deref(),
            &opts.excludes,
            opts.one_file_system,
        );
        let out = self.controller_rsync(&host.name, &args);
        result.exit_code = Some(out.code);
        let stats = rsync::parse_stats(&out.stdout_text());
        result.files_transferred = stats.files_transferred;
        result.bytes_transferred = stats.bytes_transferred;
        result.total_size = stats.total_size;
        if crate::exec::interrupt::aborted() {
            return Err(fail(
                &result,
                "interrupted; the previous snapshots are untouched".into(),
            ));
        }
        if !rsync::succeeded(out.code) {
            let why = crate::exec::run::tail(&out.stderr, 3);
            return Err(fail(
                &result,
                format!(
                    "rsync exited with {}: {why}; the previous snapshots are untouched",
                    out.code
                ),
            ));
        }
        let done = dir.join(&name);
        std::fs::rename(&partial, &done)
            .map_err(|e| fail(&result, format!("cannot complete {}: {e}", done.display())))?;
        result.snapshot = Some(crate::project::display_path(&done));
        if stats.total_size == 0 {
            result.warning = Some(format!(
                "the snapshot of {} is empty (total size 0)",
                host.name
            ));
            self.ui.event(
                Some(&host.name),
                "warning: the snapshot is empty (total size 0)",
            );
        }
        let mut all = complete;
        all.push((name.clone(), time));
        let times: Vec<i64> = all.iter().map(|(_, t)| *t).collect();
        let kept = rsync::keep(&times, &opts.retention);
        for (old, t) in &all {
            if !kept.contains(t) && *old != name {
                std::fs::remove_dir_all(dir.join(old))
                    .map_err(|e| fail(&result, format!("cannot prune snapshot {old}: {e}")))?;
                result.pruned.push(old.clone());
            }
        }
        result.duration_ms = started.elapsed().as_millis() as u64;
        self.record_backup(&host.name, &result);
        Ok(result)
    }

    fn record_backup(&self, host: &str, result: &BackupResult) {
        let value = serde_json::to_value(result).unwrap_or_default();
        self.update(host, |r| {
            r.results.insert("backup".into(), value);
        });
    }

    /// Copies `path` of a snapshot back to `host` (at `to`, default the same path).
    pub fn restore(
        &self,
        snapshot: &Path,
        host: &ResolvedHost,
        path: &str,
        to: Option<&str>,
    ) -> Result<(), HostFailure> {
        let fail = |message: String| HostFailure {
            host: host.name.clone(),
            unreachable: false,
            command: None,
            code: None,
            stderr: String::new(),
            message,
        };
        let from = snapshot.join(path.trim_start_matches('/'));
        if !from.exists() {
            return Err(fail(format!(
                "{} is not in snapshot {}",
                path,
                snapshot.display()
            )));
        }
        let target = to.unwrap_or(path);
        let slash = if from.is_dir() { "/" } else { "" };
        if self.options.check {
            self.ui.out(
                Some(&host.name),
                &format!(
                    "would restore {}{slash} to {}:{target}",
                    from.display(),
                    host.name
                ),
            );
            return Ok(());
        }
        let mut args: Vec<String> = [
            "--archive",
            "--hard-links",
            "--numeric-ids",
            "--protect-args",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("{}{slash}", from.display()));
        match host.connection {
            Connection::Local => args.push(format!("{target}{slash}")),
            Connection::Ssh => {
                let (login, ssh) = ssh_command(self, host);
                args.insert(0, ssh);
                args.insert(0, "-e".into());
                args.push(format!("{login}:{target}{slash}"));
            }
        }
        let out = self.controller_rsync(&host.name, &args);
        if out.code != 0 {
            return Err(fail(format!(
                "restore of {path} to {} failed: rsync exited with {}: {}",
                host.name,
                out.code,
                crate::exec::run::tail(&out.stderr, 3)
            )));
        }
        self.mark_changed(&host.name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmarked_non_empty_destination_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious"), "keep me").unwrap();
        let err = prepare_destination(dir.path()).unwrap_err();
        assert!(
            err.contains("is not empty and has no .fleet-backups marker"),
            "{err}"
        );
        assert!(!dir.path().join(MARKER).exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("precious")).unwrap(),
            "keep me"
        );
        let fresh = dir.path().join("new/backups");
        prepare_destination(&fresh).unwrap();
        assert!(fresh.join(MARKER).is_file());
        prepare_destination(&fresh).unwrap();
    }

    #[test]
    fn only_fleet_named_directories_are_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "20261125T020000Z",
            "20261124T020000Z",
            "20261125T030000Z.partial",
            "mine",
            "2026",
        ] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let (complete, partial) = list_snapshots(dir.path());
        let names: Vec<&str> = complete.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["20261124T020000Z", "20261125T020000Z"]);
        assert_eq!(partial, ["20261125T030000Z.partial"]);
    }
}
