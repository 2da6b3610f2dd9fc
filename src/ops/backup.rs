//! Backups of hosts into rsync snapshots: `<dest>/<host>/<time>`, each made as
//! `<time>.partial` with `--link-dest` to the newest complete one and renamed only when
//! rsync succeeded; then pruned by the retention policy. Only directories fleet named
//! are ever removed, and never in a destination without fleet's marker.
//!
//! The procedures work over [`Remote`]s: the host backed up (`source`: check mode,
//! messages, its journal record) and the store's own one, where rsync runs — this
//! machine working on the source's behalf (`exec::remote::ControllerRemote`) for a
//! local store, the backup host for a remote one. The rules and every shell line are in
//! `ops::rsync`.

use crate::inventory::{Connection, ResolvedHost};
use crate::ops::paths;
use crate::ops::remote::{CmdOutput, Remote};
use crate::ops::rsync::{self, BackupSsh, MARKER, PARTIAL, Retention, Source};
use crate::ops::ssh::{SshDefaults, target_for};
use crate::ops::text::tail;
use crate::outcome::HostError;
use std::path::{Path, PathBuf};
use std::time::Instant;

crate::error::message_error!(
    /// Why the backup store (its destination, a host's folder, a snapshot) could not be
    /// prepared or changed, or rsync not run.
    StoreError
);

#[derive(Debug, Clone, Default)]
pub(crate) struct BackupOpts {
    /// As the operator gave it, for check mode's message.
    pub(crate) dest_dir: PathBuf,
    pub(crate) excludes: Vec<String>,
    pub(crate) one_file_system: bool,
    /// Read the host's files through `sudo -n rsync`.
    pub(crate) sudo: bool,
    pub(crate) retention: Retention,
    /// The job's name when a host has several (`backups = [{ name, … }]`): its
    /// snapshots are `<dest>/<host>/<job>/<time>`, its result `backup:<job>`.
    pub(crate) job: Option<String>,
}

/// What one backup of one host did, as the journal and `fleet backups` keep it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct BackupResult {
    pub(crate) snapshot: Option<String>,
    pub(crate) files_transferred: u64,
    pub(crate) bytes_transferred: u64,
    pub(crate) total_size: u64,
    pub(crate) duration_ms: u64,
    pub(crate) exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) pruned: Vec<String>,
    /// ssh could not reach the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unreachable: bool,
    /// The named job this is the result of (None: the host's only, unnamed backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) job: Option<String>,
}

/// The key of a host's journal results under which its backup is kept; a named job's
/// is `backup:<name>`.
const RESULT_KEY: &str = "backup";

fn result_key(job: Option<&str>) -> String {
    match job {
        Some(name) => format!("{RESULT_KEY}:{name}"),
        None => RESULT_KEY.to_string(),
    }
}

impl BackupResult {
    /// A host's backup results of one run as the journal keeps them, one per job (the
    /// unnamed one first, then by name).
    pub(crate) fn all_from_journal(
        results: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<Self> {
        let mut out: Vec<Self> = results
            .iter()
            .filter_map(|(key, value)| {
                let job = match key.strip_prefix(RESULT_KEY)? {
                    "" => None,
                    rest => Some(rest.strip_prefix(':')?.to_string()),
                };
                let mut r: BackupResult = serde_json::from_value(value.clone()).ok()?;
                r.job = job;
                Some(r)
            })
            .collect();
        out.sort_by(|a, b| a.job.cmp(&b.job));
        out
    }

    /// The job's name as tables show it.
    pub(crate) fn job_name(job: Option<&str>) -> &str {
        job.unwrap_or("-")
    }
}

/// A destination must be empty, missing, or carry fleet's marker: rsync `--delete`
/// inside someone else's directory would destroy it.
pub(crate) fn prepare_destination(dest: &Path) -> Result<(), StoreError> {
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
            )
            .into());
        }
    }
    std::fs::create_dir_all(dest)
        .and_then(|_| {
            std::fs::write(
                &marker,
                "This directory holds fleet's backup snapshots; fleet prunes only what it made.\n",
            )
        })
        .map_err(|e| format!("cannot prepare backup destination {}: {e}", dest.display()).into())
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

/// Whose snapshots: a host's, or one of its named jobs'.
#[derive(Clone, Copy)]
struct Folder<'a> {
    host: &'a str,
    job: Option<&'a str>,
}

/// Where snapshots are kept: on this machine (rsync runs here, for the source), or on a
/// backup host that pulls from the source itself, as backup servers do.
pub(crate) enum Store<'a> {
    Local {
        dir: PathBuf,
        /// The project root: snapshots are named relative to it (as `rsync::restore`
        /// and `fleet restore` read them), wherever fleet was started from.
        root: PathBuf,
        /// This machine, working on the source's behalf: runs rsync, notes it.
        controller: &'a dyn Remote,
    },
    Remote {
        /// The backup host: keeps the snapshots and runs rsync.
        host: &'a dyn Remote,
        dir: String,
        /// Extra options for the backup host's own `ssh` to the source (`-i KEY …`).
        ssh_options: String,
    },
}

impl Store<'_> {
    /// `<dest>/<source>` (or `<dest>/<source>/<job>`): the host and job names must be
    /// one path component each, so a host called `/tmp/victim` or `..` cannot send
    /// snapshots (or their pruning) elsewhere.
    fn host_dir(&self, source: &Folder) -> Result<String, StoreError> {
        let mut parts = vec![paths::component(source.host).map_err(|e| format!("host name {e}"))?];
        if let Some(job) = source.job {
            parts.push(paths::component(job).map_err(|e| format!("backup job name {e}"))?);
        }
        Ok(match self {
            Store::Local { dir, .. } => paths::join_under(dir, &parts)
                .map_err(|e| e.to_string())?
                .display()
                .to_string(),
            Store::Remote { dir, .. } => {
                format!("{}/{}", dir.trim_end_matches('/'), parts.join("/"))
            }
        })
    }

    /// Where rsync runs.
    fn runner(&self) -> &dyn Remote {
        match self {
            Store::Local { controller, .. } => *controller,
            Store::Remote { host, .. } => *host,
        }
    }

    /// Checks the marker (or makes the destination) and lists the source's directory.
    fn prepare(&self, source: &Folder) -> Result<Vec<String>, StoreError> {
        let host_dir = self.host_dir(source)?;
        match self {
            Store::Local { dir: dest, .. } => {
                let dir = PathBuf::from(host_dir);
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
                let script = rsync::prepare_store_script(dir, &host_dir);
                let out = host
                    .exec(&script, None, None, true)
                    .map_err(|f| f.message)?;
                match out.code {
                    0 => Ok(out.stdout_text().lines().map(String::from).collect()),
                    rsync::NOT_OURS => Err(format!(
                        "backup destination {}:{dir} is not empty and has no {MARKER} marker: fleet \
                         will not write into a directory it did not create",
                        host.name()
                    )
                    .into()),
                    c => Err(format!(
                        "cannot prepare {}:{dir} (exit {c}): {}",
                        host.name(),
                        tail(&out.stderr, 2)
                    )
                    .into()),
                }
            }
        }
    }

    fn remove(&self, source: &Folder, name: &str) -> Result<(), StoreError> {
        let path = format!("{}/{name}", self.host_dir(source)?);
        match self {
            Store::Local { .. } => std::fs::remove_dir_all(&path)
                .map_err(|e| format!("cannot remove {path}: {e}").into()),
            Store::Remote { host, .. } => run_on(*host, &rsync::remove_command(&path)),
        }
    }

    fn rename(&self, source: &Folder, from: &str, to: &str) -> Result<(), StoreError> {
        let dir = self.host_dir(source)?;
        let (a, b) = (format!("{dir}/{from}"), format!("{dir}/{to}"));
        match self {
            Store::Local { .. } => {
                std::fs::rename(&a, &b).map_err(|e| format!("cannot complete {b}: {e}").into())
            }
            Store::Remote { host, .. } => run_on(*host, &rsync::rename_command(&a, &b)),
        }
    }

    /// How the snapshot is named in results: a local path, or `host:/path`.
    fn display(&self, source: &Folder, name: &str) -> String {
        let dir = self.host_dir(source).unwrap_or_default();
        match self {
            Store::Local { root, .. } => {
                let path = Path::new(&dir).join(name);
                match path.strip_prefix(root) {
                    Ok(rel) => rel.display().to_string(),
                    Err(_) => path.display().to_string(),
                }
            }
            Store::Remote { host, .. } => format!("{}:{dir}/{name}", host.name()),
        }
    }
}

/// Runs a store command on the backup host; a non-zero exit is an error.
fn run_on(host: &dyn Remote, cmd: &str) -> Result<(), StoreError> {
    let out = host.exec(cmd, None, None, true).map_err(|f| f.message)?;
    match out.code {
        0 => Ok(()),
        c => Err(format!(
            "`{cmd}` on {} exited with {c}: {}",
            host.name(),
            tail(&out.stderr, 2)
        )
        .into()),
    }
}

/// Runs rsync with `args` on `at`; trouble reaching `at` itself is an error message.
fn run_rsync(at: &dyn Remote, args: &[String]) -> Result<CmdOutput, StoreError> {
    at.exec(&rsync::command(args), None, None, true)
        .map_err(|f| StoreError(f.message))
}

/// Seconds since 1970, the time a snapshot is named after.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// One snapshot of `paths` of `host` (reached as `source`, with fleet's own ssh options
/// `ssh`) into `store`, named after the time `clock` tells once the store is ready (or
/// the next free second); an error leaves
/// every complete snapshot as it was. The result is kept in the source's journal record
/// either way.
pub(crate) fn backup(
    source: &dyn Remote,
    host: &ResolvedHost,
    ssh: &SshDefaults,
    store: &Store,
    paths: &[String],
    opts: &BackupOpts,
    clock: &dyn Fn() -> i64,
) -> Result<BackupResult, HostError> {
    let started = Instant::now();
    let what = match &opts.job {
        Some(job) => format!("backup `{job}` of {}", host.name),
        None => format!("backup of {}", host.name),
    };
    let fail = |result: &BackupResult, message: String| {
        let mut result = result.clone();
        result.error = Some(message.clone());
        result.duration_ms = started.elapsed().as_millis() as u64;
        record(source, &result);
        HostError {
            host: host.name.clone(),
            unreachable: result.unreachable,
            command: None,
            code: result.exit_code,
            stderr: String::new(),
            message: format!("{what} failed: {message}"),
        }
    };
    let mut result = BackupResult {
        job: opts.job.clone(),
        ..BackupResult::default()
    };
    let folder = Folder {
        host: &host.name,
        job: opts.job.as_deref(),
    };
    if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
        return Err(fail(
            &result,
            format!("backup paths must be absolute, got {paths:?}"),
        ));
    }
    // A bad connection string is refused in --check too.
    let via = match store {
        Store::Remote { .. } => backup_ssh_of(host).map_err(|e| fail(&result, e.to_string()))?,
        Store::Local { .. } => None,
    };
    if source.check_mode() {
        source.out(&format!(
            "would back up {} to {}",
            paths.join(" "),
            opts.dest_dir.display()
        ));
        return Ok(result);
    }
    let names = store
        .prepare(&folder)
        .map_err(|e| fail(&result, e.to_string()))?;
    let (complete, stale) = sort_snapshots(names);
    for name in stale {
        // A partial snapshot is one fleet started and never finished: its own.
        store
            .remove(&folder, &name)
            .map_err(|e| fail(&result, e.to_string()))?;
    }
    let dir = store
        .host_dir(&folder)
        .map_err(|e| fail(&result, e.to_string()))?;
    let mut time = clock();
    while complete.iter().any(|(_, t)| *t == time) {
        time += 1;
    }
    let name = rsync::snapshot_name(time);
    let partial = format!("{dir}/{name}{PARTIAL}");
    let link_dest = complete.last().map(|(n, _)| format!("{dir}/{n}"));
    let (login, ssh) = match (store, host.connection) {
        (Store::Local { .. }, Connection::Local) => (None, None),
        (Store::Local { .. }, Connection::Ssh) => {
            let (login, ssh) = rsync::controller_ssh(&target_for(host, ssh));
            (Some(login), Some(ssh))
        }
        // The backup host reaches the source with its own ssh, key and known_hosts, and
        // its own way there when the host says (`backup_ssh`).
        (Store::Remote { ssh_options, .. }, _) => {
            let (login, ssh) = rsync::backup_host_ssh(host, via.as_ref(), ssh_options);
            (Some(login), Some(ssh))
        }
    };
    let from = Source {
        login,
        ssh,
        paths: paths.to_vec(),
        sudo: opts.sudo,
    };
    let args = rsync::snapshot_args(
        &from,
        &partial,
        link_dest.as_deref(),
        &opts.excludes,
        opts.one_file_system,
    );
    let out = run_rsync(store.runner(), &args).map_err(|e| fail(&result, e.to_string()))?;
    result.exit_code = Some(out.code);
    let stats = rsync::parse_stats(&out.stdout_text());
    result.files_transferred = stats.files_transferred;
    result.bytes_transferred = stats.bytes_transferred;
    result.total_size = stats.total_size;
    if source.aborted() {
        return Err(fail(
            &result,
            "interrupted; the previous snapshots are untouched".into(),
        ));
    }
    if !rsync::succeeded(out.code) {
        result.unreachable = rsync::source_unreachable(out.code, &out.stderr);
        let why = tail(&out.stderr, 3);
        return Err(fail(
            &result,
            format!(
                "rsync exited with {}: {why}; the previous snapshots are untouched",
                out.code
            ),
        ));
    }
    store
        .rename(&folder, &format!("{name}{PARTIAL}"), &name)
        .map_err(|e| fail(&result, e.to_string()))?;
    result.snapshot = Some(store.display(&folder, &name));
    if stats.total_size == 0 {
        result.warning = Some(format!(
            "the snapshot of {} is empty (total size 0)",
            host.name
        ));
        source.event("warning: the snapshot is empty (total size 0)");
    }
    let mut all = complete;
    all.push((name.clone(), time));
    let times: Vec<i64> = all.iter().map(|(_, t)| *t).collect();
    let kept = rsync::keep(&times, &opts.retention);
    for (old, t) in &all {
        if !kept.contains(t) && *old != name {
            store
                .remove(&folder, old)
                .map_err(|e| fail(&result, format!("cannot prune snapshot {old}: {e}")))?;
            result.pruned.push(old.clone());
        }
    }
    result.duration_ms = started.elapsed().as_millis() as u64;
    record(source, &result);
    Ok(result)
}

fn record(source: &dyn Remote, result: &BackupResult) {
    source.note_result(
        &result_key(result.job.as_deref()),
        serde_json::to_value(result).unwrap_or_default(),
    );
}

/// A host's backup var (`backup_ssh`, `backups`, `backup_paths`, ...) that fleet refuses.
#[derive(Debug, thiserror::Error)]
#[error("host {host}: {problem}")]
pub(crate) struct BackupVarError {
    pub(crate) host: String,
    pub(crate) problem: BackupVarProblem,
}

/// What is wrong with the var; `job` names the job of `backups`, if it has one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupVarProblem {
    #[error("the var `backup_ssh` must be a string like \"-p 2203 root@edge\"")]
    BackupSshNotAString,
    #[error(
        "the var `backup_ssh`: {0}; expected `[-p PORT] [-l USER] [-i KEYFILE] [-o OPTION=VALUE] [user@]host`"
    )]
    BackupSsh(rsync::BackupSshError),
    /// `backups` and one of the single-job vars.
    #[error(
        "both `backups` and `{0}` are set; list every job in `backups` (name, paths, excludes, retention) and remove `{0}`"
    )]
    Both(&'static str),
    #[error("the var `{var}`: {error}")]
    Json {
        var: &'static str,
        error: serde_json::Error,
    },
    /// `n` counts the jobs from 1.
    #[error("the var `backups`: job {0} has no `name`")]
    NoName(usize),
    #[error(
        "the var `backups`: job name `{}` must be lowercase letters, digits, `-` and `_`",
        crate::ops::terminal::neutralise(.0)
    )]
    JobName(String),
    #[error("the var `backups`: job name `{0}` is used twice")]
    DuplicateName(String),
    #[error("the var `{var}`: {}paths must be absolute, got {paths:?}", job_label(.job))]
    Paths {
        var: &'static str,
        job: Option<String>,
        paths: Vec<String>,
    },
    #[error(
        "the var `{var}`: {}with dest_host, dest_dir must be given, an absolute path on that host",
        job_label(.job)
    )]
    DestDir {
        var: &'static str,
        job: Option<String>,
    },
}

fn job_label(job: &Option<String>) -> String {
    job.as_deref()
        .map(|n| format!("job `{n}`: "))
        .unwrap_or_default()
}

/// The host var `backup_ssh`, read strictly: how a backup host reaches this host.
pub(crate) fn backup_ssh_of(host: &ResolvedHost) -> Result<Option<BackupSsh>, BackupVarError> {
    let bad = |problem| BackupVarError {
        host: host.name.clone(),
        problem,
    };
    let Some(value) = host.vars.get("backup_ssh") else {
        return Ok(None);
    };
    let text = value
        .as_str()
        .ok_or_else(|| bad(BackupVarProblem::BackupSshNotAString))?;
    BackupSsh::parse(text)
        .map(Some)
        .map_err(|e| bad(BackupVarProblem::BackupSsh(e)))
}

/// Copies `path` of a snapshot back to `host` (at `to`, default the same path), with
/// rsync on this machine (`controller`, working on the host's behalf).
pub(crate) fn restore(
    controller: &dyn Remote,
    host: &ResolvedHost,
    ssh: &SshDefaults,
    snapshot: &Path,
    path: &str,
    to: Option<&str>,
) -> Result<(), HostError> {
    let fail = |message: String| HostError::new(&host.name, message);
    let from = snapshot.join(path.trim_start_matches('/'));
    if !from.exists() {
        return Err(fail(format!(
            "{} is not in snapshot {}",
            path,
            snapshot.display()
        )));
    }
    let target = to.unwrap_or(path);
    let dir = from.is_dir();
    if controller.check_mode() {
        let slash = if dir { "/" } else { "" };
        controller.out(&format!(
            "would restore {}{slash} to {}:{target}",
            from.display(),
            host.name
        ));
        return Ok(());
    }
    let via = match host.connection {
        Connection::Local => None,
        Connection::Ssh => Some(rsync::controller_ssh(&target_for(host, ssh))),
    };
    let args = rsync::restore_args(&from.display().to_string(), dir, target, via);
    let out = run_rsync(controller, &args).map_err(|e| fail(e.to_string()))?;
    if out.code != 0 {
        return Err(fail(format!(
            "restore of {path} to {} failed: rsync exited with {}: {}",
            host.name,
            out.code,
            tail(&out.stderr, 3)
        )));
    }
    controller.mark_changed();
    Ok(())
}

/// Copies `path` of a snapshot kept on a backup host (`at`, the directory `snapshot`
/// there) back to `host`, with rsync on the backup host pushing over its own ssh (the
/// host's `backup_ssh` when set, as the backup reached it). `target` is the host's
/// remote for check mode, messages and the change mark.
pub(crate) fn restore_from_store(
    at: &dyn Remote,
    target: &dyn Remote,
    host: &ResolvedHost,
    snapshot: &str,
    path: &str,
    to: Option<&str>,
) -> Result<(), HostError> {
    let fail = |message: String| HostError::new(&host.name, message);
    if !snapshot.starts_with('/') || snapshot.split('/').any(|c| c == "..") {
        return Err(fail(format!(
            "snapshot {}:{snapshot} must be an absolute path without `..`",
            at.name()
        )));
    }
    let from = format!(
        "{}/{}",
        snapshot.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let probe = at
        .exec(&rsync::probe_command(&from), None, None, true)
        .map_err(|f| fail(f.message))?;
    let dir = match probe.stdout_text().trim() {
        "dir" => true,
        "file" => false,
        _ => {
            return Err(fail(format!(
                "{path} is not in snapshot {}:{snapshot}",
                at.name()
            )));
        }
    };
    let dest = to.unwrap_or(path);
    if target.check_mode() {
        let slash = if dir { "/" } else { "" };
        target.out(&format!(
            "would restore {}:{from}{slash} to {}:{dest}",
            at.name(),
            host.name
        ));
        return Ok(());
    }
    let via = backup_ssh_of(host).map_err(|e| fail(e.to_string()))?;
    let args = rsync::restore_args(
        &from,
        dir,
        dest,
        Some(rsync::backup_host_ssh(host, via.as_ref(), "")),
    );
    let out = run_rsync(at, &args).map_err(|e| fail(e.to_string()))?;
    if out.code != 0 {
        return Err(fail(format!(
            "restore of {path} to {} from {} failed: rsync exited with {}: {}",
            host.name,
            at.name(),
            out.code,
            tail(&out.stderr, 3)
        )));
    }
    target.mark_changed();
    Ok(())
}

/// One backup job of a host: the host var `backups = [{ name, paths, excludes,
/// dest_host, dest_dir, retention, one_file_system, sudo }]`, or the single unnamed job
/// of `backup_paths` (default ["/etc"]), `backup_excludes`, `backup_retention` and
/// `backup_sudo`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) excludes: Vec<String>,
    /// An inventory host that keeps the snapshots and pulls from this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dest_host: Option<String>,
    /// Absolute on `dest_host`; relative to the project on the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dest_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retention: Option<RetentionSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) one_file_system: Option<bool>,
    /// Read the host's files through `sudo -n rsync` (a login that is not root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sudo: Option<bool>,
}

/// `rsync::snapshot`'s options map, as a recipe writes it.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct SnapshotOptions {
    pub(crate) dest_dir: String,
    #[serde(default)]
    pub(crate) dest_host: Option<String>,
    #[serde(default)]
    pub(crate) ssh_options: Option<String>,
    #[serde(default)]
    pub(crate) excludes: Vec<String>,
    #[serde(default)]
    pub(crate) one_file_system: bool,
    #[serde(default)]
    pub(crate) sudo: bool,
    #[serde(default)]
    pub(crate) retention: Option<RetentionSpec>,
    #[serde(default)]
    pub(crate) job: Option<String>,
}

/// A retention policy as an inventory writes it; missing counts keep their default.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hourly_every: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hourly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) monthly: Option<u32>,
}

impl RetentionSpec {
    /// The policy: what is given, the defaults for the rest (an hourly bucket is at least
    /// one hour long).
    pub(crate) fn policy(&self) -> Retention {
        let d = Retention::default();
        let count = |v: Option<u32>, default: usize| v.map_or(default, |n| n as usize);
        Retention {
            last: count(self.last, d.last),
            hourly_every: self
                .hourly_every
                .map_or(d.hourly_every, |n| i64::from(n.max(1))),
            hourly: count(self.hourly, d.hourly),
            daily: count(self.daily, d.daily),
            weekly: count(self.weekly, d.weekly),
            monthly: count(self.monthly, d.monthly),
        }
    }
}

/// A job name: also a directory name and a journal key.
pub(crate) fn job_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
        && !name.starts_with('-')
}

/// The backup jobs a host's vars declare, checked; errors name the host and the var.
pub(crate) fn jobs_of(host: &ResolvedHost) -> Result<Vec<BackupJob>, BackupVarError> {
    use BackupVarProblem as P;
    let vars = &host.vars;
    let legacy = [
        "backup_paths",
        "backup_excludes",
        "backup_retention",
        "backup_sudo",
    ];
    let bad = |problem| BackupVarError {
        host: host.name.clone(),
        problem,
    };
    let json = |var| move |error| bad(P::Json { var, error });
    let jobs = match vars.get("backups") {
        Some(list) => {
            if let Some(old) = legacy.iter().find(|k| vars.contains_key(**k)) {
                return Err(bad(P::Both(old)));
            }
            let jobs: Vec<BackupJob> =
                serde_json::from_value(list.clone()).map_err(json("backups"))?;
            let mut seen = std::collections::BTreeSet::new();
            for (i, job) in jobs.iter().enumerate() {
                let name = job.name.as_deref().ok_or_else(|| bad(P::NoName(i + 1)))?;
                if !job_name_ok(name) {
                    return Err(bad(P::JobName(name.to_string())));
                }
                if !seen.insert(name) {
                    return Err(bad(P::DuplicateName(name.to_string())));
                }
            }
            jobs
        }
        None => {
            let field = |key: &str| vars.get(key).cloned();
            let paths = match field("backup_paths") {
                Some(v) => serde_json::from_value(v).map_err(json("backup_paths"))?,
                None => vec!["/etc".to_string()],
            };
            let excludes = match field("backup_excludes") {
                Some(v) => serde_json::from_value(v).map_err(json("backup_excludes"))?,
                None => Vec::new(),
            };
            let retention = match field("backup_retention") {
                Some(v) => Some(serde_json::from_value(v).map_err(json("backup_retention"))?),
                None => None,
            };
            let sudo = match field("backup_sudo") {
                Some(v) => Some(serde_json::from_value(v).map_err(json("backup_sudo"))?),
                None => None,
            };
            vec![BackupJob {
                paths,
                excludes,
                retention,
                sudo,
                ..BackupJob::default()
            }]
        }
    };
    for job in &jobs {
        let var = if job.name.is_some() {
            "backups"
        } else {
            "backup_paths"
        };
        if job.paths.is_empty() || job.paths.iter().any(|p| !p.starts_with('/')) {
            return Err(bad(P::Paths {
                var,
                job: job.name.clone(),
                paths: job.paths.clone(),
            }));
        }
        if job.dest_host.is_some() && !job.dest_dir.as_deref().is_some_and(|d| d.starts_with('/')) {
            return Err(bad(P::DestDir {
                var,
                job: job.name.clone(),
            }));
        }
    }
    Ok(jobs)
}

/// The options map of `rsync::restore`: where on the host the files go (default: where
/// they came from).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreOpts {
    pub(crate) to: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_var_errors_say_what_is_wrong() {
        use BackupVarProblem as P;
        let json = serde_json::from_str::<Vec<String>>("{}").unwrap_err();
        let json_text = format!("host web-1: the var `backup_paths`: {json}");
        let cases = [
            (
                P::BackupSshNotAString,
                "host web-1: the var `backup_ssh` must be a string like \"-p 2203 root@edge\"".to_string(),
            ),
            (
                P::BackupSsh(rsync::BackupSshError::NoHost),
                "host web-1: the var `backup_ssh`: no host: expected `[-p PORT] [user@]host`; expected `[-p PORT] [-l USER] [-i KEYFILE] [-o OPTION=VALUE] [user@]host`".into(),
            ),
            (
                P::Both("backup_paths"),
                "host web-1: both `backups` and `backup_paths` are set; list every job in `backups` (name, paths, excludes, retention) and remove `backup_paths`".into(),
            ),
            (
                P::Json {
                    var: "backup_paths",
                    error: json,
                },
                json_text,
            ),
            (
                P::NoName(2),
                "host web-1: the var `backups`: job 2 has no `name`".into(),
            ),
            (
                P::JobName("-x\x1b".into()),
                "host web-1: the var `backups`: job name `-x^[` must be lowercase letters, digits, `-` and `_`".into(),
            ),
            (
                P::DuplicateName("etc".into()),
                "host web-1: the var `backups`: job name `etc` is used twice".into(),
            ),
            (
                P::Paths {
                    var: "backups",
                    job: Some("a".into()),
                    paths: vec!["etc".into()],
                },
                "host web-1: the var `backups`: job `a`: paths must be absolute, got [\"etc\"]".into(),
            ),
            (
                P::Paths {
                    var: "backup_paths",
                    job: None,
                    paths: vec![],
                },
                "host web-1: the var `backup_paths`: paths must be absolute, got []".into(),
            ),
            (
                P::DestDir {
                    var: "backups",
                    job: Some("db".into()),
                },
                "host web-1: the var `backups`: job `db`: with dest_host, dest_dir must be given, an absolute path on that host".into(),
            ),
        ];
        for (problem, message) in cases {
            let err = BackupVarError {
                host: "web-1".into(),
                problem,
            };
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn a_retention_spec_keeps_the_defaults_it_does_not_name() {
        let spec: RetentionSpec =
            serde_json::from_value(serde_json::json!({ "last": 3, "hourly_every": 0 })).unwrap();
        let policy = spec.policy();
        assert_eq!((policy.last, policy.hourly_every), (3, 1));
        assert_eq!(
            (policy.hourly, policy.daily, policy.weekly, policy.monthly),
            (6, 7, 4, 3)
        );
        assert_eq!(RetentionSpec::default().policy(), Retention::default());
    }
    use crate::ops::remote::fake::Scripted;
    use crate::ops::remote::{CmdResult, CommandOpts};
    use std::time::Duration;

    #[test]
    fn an_unmarked_non_empty_destination_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious"), "keep me").unwrap();
        let err = prepare_destination(dir.path()).unwrap_err().to_string();
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

    /// 2026-11-25 02:00:00 UTC, the time of every new snapshot here.
    const NOW: &str = "20261125T020000Z";
    const STATS: &str = "Number of regular files transferred: 3\nTotal file size: 1,000 bytes\n";

    fn now() -> i64 {
        rsync::parse_snapshot_name(NOW).unwrap()
    }

    fn source(connection: Connection) -> ResolvedHost {
        ResolvedHost {
            name: "web-1".into(),
            address: "10.0.0.5".into(),
            port: None,
            user: Some("root".into()),
            identity_file: None,
            connection,
            groups: Vec::new(),
            vars: Default::default(),
        }
    }

    fn newest_only() -> BackupOpts {
        BackupOpts {
            dest_dir: "/srv/b".into(),
            sudo: false,
            retention: Retention {
                last: 1,
                hourly_every: 1,
                hourly: 0,
                daily: 0,
                weekly: 0,
                monthly: 0,
            },
            ..BackupOpts::default()
        }
    }

    /// A backup into `/srv/b` on the scripted backup host `at`.
    fn remote_backup(at: &Scripted, from: &Scripted) -> Result<BackupResult, HostError> {
        let store = Store::Remote {
            host: at,
            dir: "/srv/b/".into(),
            ssh_options: "-i /root/.ssh/backup".into(),
        };
        backup(
            from,
            &source(Connection::Ssh),
            &SshDefaults::default(),
            &store,
            &["/etc".into()],
            &newest_only(),
            &now,
        )
    }

    fn kept(from: &Scripted) -> Vec<serde_json::Value> {
        let results = from.results.lock().unwrap();
        assert!(results.iter().all(|(k, _)| k == "backup"));
        results.iter().map(|(_, v)| v.clone()).collect()
    }

    #[test]
    fn a_remote_snapshot_is_completed_then_the_old_ones_are_pruned() {
        let at = Scripted::new(&[
            (
                "if [ ! -f ",
                0,
                "20261120T020000Z\n20261121T020000Z\n20261122T030000Z.partial\nmine\n2026\n",
            ),
            ("rm -rf -- /srv/b/web-1/20261122T030000Z.partial", 0, ""),
            ("rsync ", 0, STATS),
            ("mv -T -- ", 0, ""),
            ("rm -rf -- /srv/b/web-1/20261120T020000Z", 0, ""),
            ("rm -rf -- /srv/b/web-1/20261121T020000Z", 0, ""),
        ]);
        let from = Scripted::new(&[]);
        let result = remote_backup(&at, &from).unwrap();
        assert_eq!(
            result.snapshot.as_deref(),
            Some("fake:/srv/b/web-1/20261125T020000Z")
        );
        assert_eq!(result.pruned, ["20261120T020000Z", "20261121T020000Z"]);
        assert_eq!((result.files_transferred, result.total_size), (3, 1000));
        assert_eq!(result.exit_code, Some(0));
        let ran = at.ran();
        assert_eq!(
            ran[2],
            "rsync --archive --hard-links --numeric-ids --relative --delete --delete-excluded \
             --stats --protect-args --link-dest=/srv/b/web-1/20261121T020000Z -e \
             'ssh -o BatchMode=yes -i /root/.ssh/backup' -- root@10.0.0.5:/etc \
             /srv/b/web-1/20261125T020000Z.partial/"
        );
        assert_eq!(
            ran[3],
            "mv -T -- /srv/b/web-1/20261125T020000Z.partial /srv/b/web-1/20261125T020000Z"
        );
        // `mine` and `2026` are not fleet's names: never removed.
        assert!(
            !ran.iter()
                .any(|c| c.contains("mine") || c.ends_with("/2026"))
        );
        assert!(from.ran().is_empty(), "nothing runs on the source itself");
        let kept = kept(&from);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["snapshot"], "fake:/srv/b/web-1/20261125T020000Z");
        assert!(from.events.lock().unwrap().is_empty());
    }

    #[test]
    fn a_failed_rsync_leaves_the_partial_unrenamed_and_prunes_nothing() {
        let at = Scripted::new(&[
            ("if [ ! -f ", 0, "20261120T020000Z\n20261121T020000Z\n"),
            ("rsync ", 23, STATS),
        ]);
        let from = Scripted::new(&[]);
        let failure = remote_backup(&at, &from).unwrap_err();
        assert!(
            failure
                .message
                .starts_with("backup of web-1 failed: rsync exited with 23"),
            "{}",
            failure.message
        );
        assert!(
            failure
                .message
                .ends_with("the previous snapshots are untouched")
        );
        assert!(!failure.unreachable);
        assert_eq!(failure.code, Some(23));
        assert_eq!(at.ran().len(), 2, "no mv, no rm: {:?}", at.ran());
        let kept = kept(&from);
        assert_eq!(kept.len(), 1, "a failure is kept in the journal too");
        assert_eq!(kept[0]["snapshot"], serde_json::Value::Null);
        assert!(
            kept[0]["error"]
                .as_str()
                .unwrap()
                .contains("exited with 23")
        );
    }

    #[test]
    fn a_source_ssh_cannot_reach_is_unreachable() {
        let at = Scripted::new(&[("if [ ! -f ", 0, ""), ("rsync ", 255, "")]);
        let from = Scripted::new(&[]);
        let failure = remote_backup(&at, &from).unwrap_err();
        assert!(failure.unreachable);
        assert_eq!(kept(&from)[0]["unreachable"], true);
        // The first snapshot of a host has nothing to link to.
        assert!(!at.ran()[1].contains("--link-dest"));
    }

    #[test]
    fn a_named_job_with_backup_ssh_pulls_its_own_way_into_its_own_folder() {
        let at = Scripted::new(&[
            ("if [ ! -f ", 0, ""),
            ("rsync ", 0, STATS),
            ("mv -T -- ", 0, ""),
        ]);
        let from = Scripted::new(&[]);
        let mut host = source(Connection::Ssh);
        host.vars
            .insert("backup_ssh".into(), "-p 2203 -l backup edge.example".into());
        let store = Store::Remote {
            host: &at,
            dir: "/srv/b".into(),
            ssh_options: String::new(),
        };
        let opts = BackupOpts {
            job: Some("db".into()),
            ..newest_only()
        };
        let result = backup(
            &from,
            &host,
            &SshDefaults::default(),
            &store,
            &["/var/lib/db".into()],
            &opts,
            &now,
        )
        .unwrap();
        assert_eq!(
            result.snapshot.as_deref(),
            Some("fake:/srv/b/web-1/db/20261125T020000Z")
        );
        let ran = at.ran();
        assert!(ran[0].contains("mkdir -p /srv/b/web-1/db &&"), "{}", ran[0]);
        assert!(
            ran[1].ends_with(
                "-e 'ssh -o BatchMode=yes -p 2203' -- backup@edge.example:/var/lib/db \
                 /srv/b/web-1/db/20261125T020000Z.partial/"
            ),
            "{}",
            ran[1]
        );
        let results = from.results.lock().unwrap();
        assert_eq!(results[0].0, "backup:db");
        assert_eq!(results[0].1["job"], "db");
        drop(results);

        // A hostile connection string fails the job before anything runs, in --check too.
        for check in [false, true] {
            let at = Scripted::new(&[]);
            let mut from = Scripted::new(&[]);
            from.check = check;
            host.vars
                .insert("backup_ssh".into(), "-oProxyCommand=sh edge".into());
            let store = Store::Remote {
                host: &at,
                dir: "/srv/b".into(),
                ssh_options: String::new(),
            };
            let err = backup(
                &from,
                &host,
                &SshDefaults::default(),
                &store,
                &["/etc".into()],
                &opts,
                &now,
            )
            .unwrap_err();
            assert!(
                err.message.starts_with("backup `db` of web-1 failed: host web-1: the var `backup_ssh`: `-oProxyCommand=sh` is not allowed"),
                "{}",
                err.message
            );
            assert!(at.ran().is_empty());
        }
    }

    #[test]
    fn jobs_come_from_backups_or_the_single_backup_paths_form() {
        let mut host = source(Connection::Ssh);
        let jobs = jobs_of(&host).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(
            (jobs[0].name.as_deref(), jobs[0].paths.as_slice()),
            (None, &["/etc".to_string()][..])
        );
        host.vars
            .insert("backup_paths".into(), serde_json::json!(["/srv", "/home"]));
        host.vars
            .insert("backup_retention".into(), serde_json::json!({ "last": 3 }));
        let jobs = jobs_of(&host).unwrap();
        assert_eq!(jobs[0].paths, ["/srv", "/home"]);
        assert_eq!(jobs[0].retention.as_ref().unwrap().last, Some(3));
        host.vars.insert(
            "backup_retention".into(),
            serde_json::json!({ "forever": 3 }),
        );
        assert!(
            jobs_of(&host)
                .unwrap_err()
                .to_string()
                .contains("host web-1: the var `backup_retention`: unknown field `forever`")
        );
        host.vars.clear();
        host.vars.insert(
            "backups".into(),
            serde_json::json!([
                { "name": "etc", "paths": ["/etc"] },
                { "name": "db", "paths": ["/var/lib/db"], "dest_host": "bk", "dest_dir": "/srv/b", "retention": { "daily": 7 } }
            ]),
        );
        let jobs = jobs_of(&host).unwrap();
        let names: Vec<_> = jobs.iter().map(|j| j.name.clone().unwrap()).collect();
        assert_eq!(names, ["etc", "db"]);
        for (bad, why) in [
            (
                serde_json::json!([{ "paths": ["/etc"] }]),
                "job 1 has no `name`",
            ),
            (
                serde_json::json!([{ "name": "-x", "paths": ["/etc"] }]),
                "job name `-x` must be",
            ),
            (
                serde_json::json!([{ "name": "a", "paths": ["etc"] }]),
                "job `a`: paths must be absolute",
            ),
            (
                serde_json::json!([{ "name": "a", "paths": [] }]),
                "paths must be absolute",
            ),
            (
                serde_json::json!([{ "name": "a", "paths": ["/etc"], "dest_host": "bk", "dest_dir": "rel" }]),
                "dest_dir must be given, an absolute path",
            ),
            (
                serde_json::json!({ "name": "a" }),
                "the var `backups`: invalid type",
            ),
        ] {
            host.vars.insert("backups".into(), bad);
            let err = jobs_of(&host).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.starts_with("host web-1: "),
                "{err}"
            );
        }
    }

    #[test]
    fn a_remote_destination_without_the_marker_is_refused() {
        let at = Scripted::new(&[("if [ ! -f ", 3, "")]);
        let from = Scripted::new(&[]);
        let failure = remote_backup(&at, &from).unwrap_err();
        assert!(
            failure
                .message
                .contains("fake:/srv/b/ is not empty and has no .fleet-backups marker"),
            "{}",
            failure.message
        );
        assert_eq!(at.ran().len(), 1);
    }

    #[test]
    fn a_failed_completion_or_prune_is_an_error() {
        let at = Scripted::new(&[
            ("if [ ! -f ", 0, ""),
            ("rsync ", 0, STATS),
            ("mv -T ", 1, ""),
        ]);
        let failure = remote_backup(&at, &Scripted::new(&[])).unwrap_err();
        assert!(
            failure.message.contains("`mv -T -- "),
            "{}",
            failure.message
        );

        let at = Scripted::new(&[
            ("if [ ! -f ", 0, "20261120T020000Z\n"),
            ("rsync ", 0, STATS),
            ("mv -T ", 0, ""),
            ("rm -rf -- /srv/b/web-1/20261120T020000Z", 1, ""),
        ]);
        let failure = remote_backup(&at, &Scripted::new(&[])).unwrap_err();
        assert!(
            failure
                .message
                .contains("cannot prune snapshot 20261120T020000Z"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn a_second_snapshot_in_the_same_second_takes_the_next_name() {
        let at = Scripted::new(&[
            ("if [ ! -f ", 0, "20261125T020000Z\n"),
            ("rsync ", 0, ""),
            (
                "mv -T -- /srv/b/web-1/20261125T020001Z.partial /srv/b/web-1/20261125T020001Z",
                0,
                "",
            ),
            ("rm -rf -- /srv/b/web-1/20261125T020000Z", 0, ""),
        ]);
        let from = Scripted::new(&[]);
        let result = remote_backup(&at, &from).unwrap();
        assert_eq!(result.pruned, ["20261125T020000Z"]);
        // Nothing was copied: kept, with a warning.
        assert!(result.warning.unwrap().contains("is empty"));
        assert_eq!(
            from.events.lock().unwrap().as_slice(),
            ["warning: the snapshot is empty (total size 0)"]
        );
    }

    #[test]
    fn check_mode_and_bad_input_run_nothing() {
        let (at, mut from) = (Scripted::new(&[]), Scripted::new(&[]));
        from.check = true;
        let result = remote_backup(&at, &from).unwrap();
        assert!(result.snapshot.is_none());
        assert!(kept(&from).is_empty(), "check mode keeps no backup result");

        let from = Scripted::new(&[]);
        let store = Store::Remote {
            host: &at,
            dir: "/srv/b".into(),
            ssh_options: String::new(),
        };
        let run = |host: &ResolvedHost, paths: &[String]| {
            backup(
                &from,
                host,
                &SshDefaults::default(),
                &store,
                paths,
                &newest_only(),
                &now,
            )
        };
        let err = run(&source(Connection::Ssh), &["etc".into()]).unwrap_err();
        assert!(err.message.contains("must be absolute"), "{}", err.message);
        let mut evil = source(Connection::Ssh);
        evil.name = "..".into();
        let err = run(&evil, &["/etc".into()]).unwrap_err();
        assert!(err.message.contains("host name `..`"), "{}", err.message);
        assert!(at.ran().is_empty());
    }

    /// The controller's rsync, scripted: it makes the directory it was told to fill.
    struct LocalRsync(Scripted);

    impl Remote for LocalRsync {
        fn name(&self) -> &str {
            "web-1"
        }
        fn check_mode(&self) -> bool {
            false
        }
        fn command(&self, _: &str, _: CommandOpts) -> Result<CmdResult, HostError> {
            unreachable!("backups run commands with exec")
        }
        fn write_file(&self, _: &str, _: &[u8]) -> Result<bool, HostError> {
            unreachable!("backups write no files on hosts")
        }
        fn exec(
            &self,
            cmd: &str,
            timeout: Option<Duration>,
            input: Option<&[u8]>,
            stream: bool,
        ) -> Result<CmdOutput, HostError> {
            let out = self.0.exec(cmd, timeout, input, stream)?;
            if out.code == 0 {
                let dest = cmd.rsplit(' ').next().unwrap().trim_end_matches('/');
                std::fs::create_dir_all(dest).unwrap();
            }
            Ok(out)
        }
    }

    #[test]
    fn a_local_store_renames_on_success_and_keeps_foreign_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("backups");
        let host_dir = dest.join("web-1");
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(dest.join(MARKER), "").unwrap();
        for d in ["20261120T020000Z", "20261122T030000Z.partial", "mine"] {
            std::fs::create_dir(host_dir.join(d)).unwrap();
        }
        let controller = LocalRsync(Scripted::new(&[("rsync ", 0, STATS)]));
        let store = Store::Local {
            dir: dest.clone(),
            root: tmp.path().to_path_buf(),
            controller: &controller,
        };
        let from = Scripted::new(&[]);
        let result = backup(
            &from,
            &source(Connection::Local),
            &SshDefaults::default(),
            &store,
            &["/etc".into()],
            &newest_only(),
            &now,
        )
        .unwrap();
        assert_eq!(result.pruned, ["20261120T020000Z"]);
        // Named relative to the project, whatever the working directory.
        assert_eq!(result.snapshot.unwrap(), format!("backups/web-1/{NOW}"));
        let mut left: Vec<String> = std::fs::read_dir(&host_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [NOW, "mine"]);
        let rsync = &controller.0.ran()[0];
        assert!(
            rsync.ends_with(&format!("-- /etc {}/{NOW}.partial/", host_dir.display())),
            "{rsync}"
        );
        assert!(!rsync.contains(" -e "), "a local source needs no ssh");

        // A failed rsync: the partial stays (the next backup removes it), nothing else goes.
        let controller = LocalRsync(Scripted::new(&[("rsync ", 12, "")]));
        let store = Store::Local {
            dir: dest.clone(),
            root: tmp.path().to_path_buf(),
            controller: &controller,
        };
        let later = || now() + 3_600;
        backup(
            &from,
            &source(Connection::Local),
            &SshDefaults::default(),
            &store,
            &["/etc".into()],
            &newest_only(),
            &later,
        )
        .unwrap_err();
        assert!(host_dir.join(NOW).is_dir());
        assert!(host_dir.join("mine").is_dir());
    }

    #[test]
    fn a_local_store_refuses_someone_elses_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious"), "").unwrap();
        let controller = LocalRsync(Scripted::new(&[]));
        let store = Store::Local {
            dir: tmp.path().to_path_buf(),
            root: tmp.path().to_path_buf(),
            controller: &controller,
        };
        let err = backup(
            &Scripted::new(&[]),
            &source(Connection::Local),
            &SshDefaults::default(),
            &store,
            &["/etc".into()],
            &newest_only(),
            &now,
        )
        .unwrap_err();
        assert!(err.message.contains("has no .fleet-backups marker"));
        assert!(!tmp.path().join("web-1").exists());
    }

    #[test]
    fn a_restore_pushes_from_the_controller_and_counts_as_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc/app")).unwrap();
        let controller = Scripted::new(&[("rsync ", 0, "")]);
        let host = source(Connection::Ssh);
        let ssh = SshDefaults::default();
        restore(&controller, &host, &ssh, tmp.path(), "/etc/app", None).unwrap();
        let ran = controller.ran();
        assert!(
            ran[0].ends_with(&format!(
                "-- {}/etc/app/ root@10.0.0.5:/etc/app/",
                tmp.path().display()
            )),
            "{}",
            ran[0]
        );
        let err = restore(&controller, &host, &ssh, tmp.path(), "/nope", None).unwrap_err();
        assert!(err.message.contains("/nope is not in snapshot"));
        let controller = Scripted::new(&[("rsync ", 23, "")]);
        let err = restore(&controller, &host, &ssh, tmp.path(), "/etc", Some("/x")).unwrap_err();
        assert!(
            err.message.contains("rsync exited with 23"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_restore_from_a_backup_host_pushes_from_there_its_own_way() {
        let at = Scripted::new(&[("if [ -d ", 0, "dir\n"), ("rsync ", 0, "")]);
        let target = Scripted::new(&[]);
        let mut host = source(Connection::Ssh);
        host.vars
            .insert("backup_ssh".into(), "-p 2203 root@edge".into());
        restore_from_store(&at, &target, &host, "/srv/b/web-1/T", "/etc/app", None).unwrap();
        let ran = at.ran();
        assert_eq!(
            ran[0],
            "if [ -d /srv/b/web-1/T/etc/app ]; then echo dir; elif [ -e /srv/b/web-1/T/etc/app ] \
             || [ -L /srv/b/web-1/T/etc/app ]; then echo file; else echo missing; fi"
        );
        assert_eq!(
            ran[1],
            "rsync -e 'ssh -o BatchMode=yes -p 2203' --archive --hard-links --numeric-ids \
             --protect-args -- /srv/b/web-1/T/etc/app/ root@edge:/etc/app/"
        );
        let at = Scripted::new(&[("if [ -d ", 0, "missing\n")]);
        let err =
            restore_from_store(&at, &target, &host, "/srv/b/web-1/T", "/nope", None).unwrap_err();
        assert!(
            err.message
                .contains("/nope is not in snapshot fake:/srv/b/web-1/T")
        );
        assert_eq!(at.ran().len(), 1);
        let err = restore_from_store(&at, &target, &host, "/srv/../etc", "/x", None).unwrap_err();
        assert!(err.message.contains("without `..`"), "{}", err.message);
    }
}
