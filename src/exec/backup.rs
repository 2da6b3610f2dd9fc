//! Backups of hosts into rsync snapshots on the controller: `<dest>/<host>/<time>`, each
//! made as `<time>.partial` with `--link-dest` to the newest complete one and renamed
//! only when rsync succeeded; then pruned by the retention policy. Only directories
//! fleet named are ever removed, and never in a destination without fleet's marker.

use super::run::Run;
use crate::inventory::{Connection, ResolvedHost};
use crate::ops::paths;
use crate::ops::rsync::{self, MARKER, PARTIAL, Retention, Source};
use crate::ops::shell::quote;
use crate::outcome::CommandRecord;
use crate::outcome::HostFailure;
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
    /// ssh could not reach the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
}

impl BackupResult {
    /// A host's `backup` result as the journal keeps it.
    pub fn from_journal(results: &serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        serde_json::from_value(results.get("backup")?.clone()).ok()
    }

    /// A snapshot was made and completed.
    pub fn succeeded(&self) -> bool {
        self.snapshot.is_some() && self.error.is_none()
    }
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

/// Complete snapshots of one host (name, time), and stale partial ones, by fleet's names
/// among the entries of its directory.
fn sort_snapshots(names: Vec<String>) -> (Vec<(String, i64)>, Vec<String>) {
    let (mut complete, mut partial) = (Vec::new(), Vec::new());
    for name in names {
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

/// Where snapshots are kept: on this machine (rsync runs here), or on a backup host
/// that pulls from the source itself, as backup servers do.
pub enum Store {
    Local(PathBuf),
    Remote {
        host: Box<ResolvedHost>,
        dir: String,
        /// Extra options for the backup host's own `ssh` to the source (`-i KEY …`).
        ssh_options: String,
    },
}

impl Store {
    /// `<dest>/<source>`: the host name must be one path component, so a host called
    /// `/tmp/victim` or `..` cannot send snapshots (or their pruning) elsewhere.
    fn host_dir(&self, source: &str) -> Result<String, String> {
        let source = paths::component(source).map_err(|e| format!("host name {e}"))?;
        Ok(match self {
            Store::Local(d) => paths::join_under(d, &[source])?.display().to_string(),
            Store::Remote { dir, .. } => format!("{}/{source}", dir.trim_end_matches('/')),
        })
    }

    /// Checks the marker (or makes the destination) and lists the source's directory.
    fn prepare(&self, run: &Run, source: &str) -> Result<Vec<String>, String> {
        match self {
            Store::Local(dest) => {
                let dir = PathBuf::from(self.host_dir(source)?);
                prepare_destination(dest)?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok(std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect())
            }
            Store::Remote { host, dir, .. } => {
                let (d, m) = (quote(dir), quote(&format!("{dir}/{MARKER}")));
                let h = quote(&self.host_dir(source)?);
                let script = format!(
                    "if [ ! -f {m} ]; then if [ -e {d} ] && [ -n \"$(ls -A {d})\" ]; then exit 3; fi; \
                     mkdir -p {d} && echo 'fleet backup snapshots' > {m} || exit 1; fi; \
                     mkdir -p {h} && cd {h} && for n in *; do [ -d \"$n\" ] && printf '%s\\n' \"$n\"; done; true"
                );
                let out = run
                    .exec(host, &script, None, None, true)
                    .map_err(|f| f.message)?;
                match out.code {
                    0 => Ok(out.stdout_text().lines().map(String::from).collect()),
                    3 => Err(format!(
                        "backup destination {}:{dir} is not empty and has no {MARKER} marker: fleet \
                         will not write into a directory it did not create",
                        host.name
                    )),
                    c => Err(format!(
                        "cannot prepare {}:{dir} (exit {c}): {}",
                        host.name,
                        crate::ops::text::tail(&out.stderr, 2)
                    )),
                }
            }
        }
    }

    fn remove(&self, run: &Run, source: &str, name: &str) -> Result<(), String> {
        let path = format!("{}/{name}", self.host_dir(source)?);
        match self {
            Store::Local(_) => {
                std::fs::remove_dir_all(&path).map_err(|e| format!("cannot remove {path}: {e}"))
            }
            Store::Remote { host, .. } => {
                self.remote(run, host, &format!("rm -rf -- {}", quote(&path)))
            }
        }
    }

    fn rename(&self, run: &Run, source: &str, from: &str, to: &str) -> Result<(), String> {
        let dir = self.host_dir(source)?;
        let (a, b) = (format!("{dir}/{from}"), format!("{dir}/{to}"));
        match self {
            Store::Local(_) => {
                std::fs::rename(&a, &b).map_err(|e| format!("cannot complete {b}: {e}"))
            }
            Store::Remote { host, .. } => {
                self.remote(run, host, &format!("mv -T -- {} {}", quote(&a), quote(&b)))
            }
        }
    }

    fn remote(&self, run: &Run, host: &ResolvedHost, cmd: &str) -> Result<(), String> {
        let out = run
            .exec(host, cmd, None, None, true)
            .map_err(|f| f.message)?;
        match out.code {
            0 => Ok(()),
            c => Err(format!(
                "`{cmd}` on {} exited with {c}: {}",
                host.name,
                crate::ops::text::tail(&out.stderr, 2)
            )),
        }
    }

    /// How the snapshot is named in results: a local path, or `host:/path`.
    fn display(&self, source: &str, name: &str) -> String {
        match self {
            Store::Local(d) => crate::project::display_path(&d.join(source).join(name)),
            Store::Remote { host, .. } => {
                let dir = self.host_dir(source).unwrap_or_default();
                format!("{}:{dir}/{name}", host.name)
            }
        }
    }
}

/// The `ssh` command rsync uses: the run's own options for that host.
fn ssh_command(run: &Run, host: &ResolvedHost) -> (String, String) {
    let target = crate::ops::ssh::target_for(host, &run.options.ssh);
    let mut args = target.ssh_args();
    let address = args.pop().unwrap_or_default();
    // rsync puts `-l USER` and the host after this command itself.
    if args.last().is_some_and(|a| a == "--") {
        args.pop();
    }
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
                stderr: e.to_string(),
                ..Default::default()
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
        store: &Store,
    ) -> Result<BackupResult, HostFailure> {
        let started = Instant::now();
        let fail = |result: &BackupResult, message: String| {
            let mut result = result.clone();
            result.error = Some(message.clone());
            result.duration_ms = started.elapsed().as_millis() as u64;
            self.record_backup(&host.name, &result);
            HostFailure {
                host: host.name.clone(),
                unreachable: result.unreachable,
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
        let names = store
            .prepare(self, &host.name)
            .map_err(|e| fail(&result, e))?;
        let (complete, stale) = sort_snapshots(names);
        for name in stale {
            // A partial snapshot is one fleet started and never finished: its own.
            store
                .remove(self, &host.name, &name)
                .map_err(|e| fail(&result, e))?;
        }
        let dir = store.host_dir(&host.name).map_err(|e| fail(&result, e))?;
        let mut time = now_unix();
        while complete.iter().any(|(_, t)| *t == time) {
            time += 1;
        }
        let name = rsync::snapshot_name(time);
        let partial = format!("{dir}/{name}{PARTIAL}");
        let link_dest = complete.last().map(|(n, _)| format!("{dir}/{n}"));
        let (login, ssh) = match (store, host.connection) {
            (Store::Local(_), Connection::Local) => (None, None),
            (Store::Local(_), Connection::Ssh) => {
                let (login, ssh) = ssh_command(self, host);
                (Some(login), Some(ssh))
            }
            // The backup host reaches the source with its own ssh, key and known_hosts.
            (Store::Remote { ssh_options, .. }, _) => {
                let login = match &host.user {
                    Some(u) => format!("{u}@{}", host.address),
                    None => host.address.clone(),
                };
                let port = host.port.map(|p| format!(" -p {p}")).unwrap_or_default();
                let extra = if ssh_options.is_empty() {
                    String::new()
                } else {
                    format!(" {ssh_options}")
                };
                (
                    Some(login),
                    Some(format!("ssh -o BatchMode=yes{port}{extra}")),
                )
            }
        };
        let source = Source {
            login,
            ssh,
            paths: paths.to_vec(),
        };
        let args = rsync::snapshot_args(
            &source,
            &partial,
            link_dest.as_deref(),
            &opts.excludes,
            opts.one_file_system,
        );
        let out = match store {
            Store::Local(_) => self.controller_rsync(&host.name, &args),
            Store::Remote {
                host: backup_host, ..
            } => {
                let cmd = std::iter::once("rsync".to_string())
                    .chain(args.iter().map(|a| quote(a)))
                    .collect::<Vec<_>>()
                    .join(" ");
                self.exec(backup_host, &cmd, None, None, true)
                    .map_err(|f| fail(&result, f.message))?
            }
        };
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
            result.unreachable = rsync::source_unreachable(out.code, &out.stderr);
            let why = crate::ops::text::tail(&out.stderr, 3);
            return Err(fail(
                &result,
                format!(
                    "rsync exited with {}: {why}; the previous snapshots are untouched",
                    out.code
                ),
            ));
        }
        store
            .rename(self, &host.name, &format!("{name}{PARTIAL}"), &name)
            .map_err(|e| fail(&result, e))?;
        result.snapshot = Some(store.display(&host.name, &name));
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
                store
                    .remove(self, &host.name, old)
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
        let fail = |message: String| HostFailure::new(&host.name, message);
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
        args.push("--".into());
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
                crate::ops::text::tail(&out.stderr, 3)
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
        let names = [
            "20261125T020000Z",
            "20261124T020000Z",
            "20261125T030000Z.partial",
            "mine",
            "2026",
        ];
        let (complete, partial) = sort_snapshots(names.iter().map(|s| s.to_string()).collect());
        let names: Vec<&str> = complete.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["20261124T020000Z", "20261125T020000Z"]);
        assert_eq!(partial, ["20261125T030000Z.partial"]);
    }
}
