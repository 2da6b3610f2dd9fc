//! The run journal: one JSON record per run in the state repository
//! (`runs/YYYY/MM/<run id>.json`), committed together with the run's configuration
//! snapshots in one commit, whatever happened to the hosts. `fleet history`, `fleet show`
//! and `--retry-failed` read it back.

use crate::outcome::CommandRecord;
use crate::outcome::HostStatus;
use crate::outcome::PlannedChange;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why the journal could not be written or read, or a run not found in it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error(transparent)]
    Git(#[from] crate::ops::git::GitError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make {} private: {source}", path.display())]
    MakePrivate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing to commit for run {run_id} in {}", state.display())]
    NothingToCommit { run_id: String, state: PathBuf },
    #[error("the journal in {} has no run yet", state.display())]
    NoRun { state: PathBuf },
    #[error("the journal in {} has no run of `{recipe}` yet", state.display())]
    NoRunOf { state: PathBuf, recipe: String },
    #[error("no run `{which}` in the journal in {} (`fleet history` lists them)", state.display())]
    NoSuchRun { which: String, state: PathBuf },
    #[error("`{which}` matches {count} runs; give more of the run id")]
    Ambiguous { which: String, count: usize },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) run_id: String,
    pub(crate) recipe: String,
    /// The command line after `fleet RECIPE`, as typed.
    pub(crate) args: Vec<String>,
    /// The recipe's arguments after conversion, by name: what `--retry-failed` reuses.
    #[serde(default)]
    pub(crate) params: serde_json::Map<String, serde_json::Value>,
    /// Commit of the project (recipes) repository, and whether it had uncommitted changes.
    pub(crate) recipe_commit: Option<String>,
    pub(crate) recipe_dirty: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recipes_rev: Option<String>,
    /// The run this one reran exactly (`fleet replay RUN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replays: Option<String>,
    pub(crate) fleet_version: String,
    pub(crate) user: String,
    pub(crate) controller: String,
    pub(crate) started: String,
    pub(crate) ended: String,
    pub(crate) duration_ms: u64,
    pub(crate) check: bool,
    pub(crate) exit_code: i32,
    /// Why the recipe itself failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// fleet was killed (SIGKILL, a crash) during the run: the next run wrote this record
    /// from the run's log.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) killed: bool,
    /// What the recipe changed (or, in check mode, would change) on the controller
    /// itself: `write out/report.csv`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) local_changes: Vec<String>,
    /// Pull mode with `--require-signed`: why a newer commit was not run (this run is of
    /// the last verified one), `refused: commit abc1234 is not signed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<String>,
    pub(crate) hosts: Vec<HostRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HostRun {
    pub(crate) host: String,
    pub(crate) status: HostStatus,
    pub(crate) duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    pub(crate) steps: Vec<StepRun>,
    /// Structured results of the host's work (e.g. `backup`: snapshot, sizes, error).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub(crate) results: serde_json::Map<String, serde_json::Value>,
    /// Check runs: what the host would change (none when it failed or was not reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) drift: Option<Drift>,
}

/// A host's drift as one check run saw it: the changes it would make, and since when
/// the same set has been seen. An unchanged set is not stored again: `same_as` names
/// the run whose record holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Drift {
    pub(crate) count: usize,
    /// The changes; empty with `same_as` when they are those of that run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) changes: Vec<PlannedChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) same_as: Option<String>,
    /// When a check run first saw this set (RFC 3339); the run's end when it is new.
    pub(crate) since: String,
}

impl Drift {
    pub(crate) fn new(changes: Vec<PlannedChange>, at: &str) -> Drift {
        Drift {
            count: changes.len(),
            changes,
            same_as: None,
            since: at.to_string(),
        }
    }
}

/// A host's drift resolved from the journal: the full set of changes, when first seen,
/// and the run that saw it last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HostDrift {
    pub(crate) recipe: String,
    pub(crate) run_id: String,
    pub(crate) checked_at: String,
    pub(crate) since: String,
    pub(crate) changes: Vec<PlannedChange>,
}

/// The full set of changes of `host` in `run_id`'s record, following `same_as`.
fn changes_of(runs: &[RunRecord], run_id: &str, host: &str) -> Option<Vec<PlannedChange>> {
    let mut id = run_id.to_string();
    // A chain is at most one link (a set is stored in full where it first appears);
    // the bound only guards against a hand-edited loop.
    for _ in 0..runs.len().max(1) {
        let run = runs.iter().find(|r| r.run_id == id)?;
        let d = run.hosts.iter().find(|h| h.host == host)?.drift.as_ref()?;
        match &d.same_as {
            Some(earlier) if d.changes.is_empty() && d.count > 0 => id = earlier.clone(),
            _ => return Some(d.changes.clone()),
        }
    }
    None
}

/// The newest drift of each host (check runs of `recipe`, or of any recipe), resolved.
/// `runs` newest first, as `load_all` returns them.
pub(crate) fn drift_of_hosts(
    runs: &[RunRecord],
    recipe: Option<&str>,
) -> std::collections::BTreeMap<String, HostDrift> {
    let mut out = std::collections::BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.check && recipe.is_none_or(|n| same_recipe(&r.recipe, n)))
    {
        for h in &r.hosts {
            let Some(d) = &h.drift else { continue };
            if out.contains_key(&h.host) {
                continue;
            }
            let changes = changes_of(runs, &r.run_id, &h.host).unwrap_or_default();
            out.insert(
                h.host.clone(),
                HostDrift {
                    recipe: r.recipe.clone(),
                    run_id: r.run_id.clone(),
                    checked_at: r.ended.clone(),
                    since: d.since.clone(),
                    changes,
                },
            );
        }
    }
    out
}

/// Links `record`'s drift to the journal's earlier check runs of the same recipe: a set
/// seen before keeps its `since` and is stored as a reference to the run that holds it.
/// `earlier` newest first.
pub(crate) fn link_drift(record: &mut RunRecord, earlier: &[RunRecord]) {
    let previous = drift_of_hosts(earlier, Some(&record.recipe));
    for h in &mut record.hosts {
        let Some(d) = &mut h.drift else { continue };
        let Some(p) = previous.get(&h.host) else {
            continue;
        };
        if p.changes != d.changes {
            continue;
        }
        d.since = p.since.clone();
        if !d.changes.is_empty() {
            d.changes.clear();
            // The run that holds the set in full.
            d.same_as = earlier
                .iter()
                .find(|r| r.run_id == p.run_id)
                .and_then(|r| r.hosts.iter().find(|x| x.host == h.host))
                .and_then(|x| x.drift.as_ref())
                .and_then(|x| x.same_as.clone())
                .or_else(|| Some(p.run_id.clone()));
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StepRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    pub(crate) commands: Vec<CommandRecord>,
}

/// Seconds from an RFC 3339 time of the journal (`started`, `ended`) to now; None
/// when it does not parse.
pub(crate) fn seconds_since(when: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(when.trim_end_matches('Z')).ok()?;
    Some(
        crate::ops::clock::now()
            .duration_since(t)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

impl RunRecord {
    pub(crate) fn count(&self, status: HostStatus) -> usize {
        self.hosts.iter().filter(|h| h.status == status).count()
    }

    /// The hosts that failed or were unreachable: what `--retry-failed` runs again.
    pub(crate) fn failed_hosts(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.status.is_failure())
            .map(|h| h.host.as_str())
            .collect()
    }

    /// `update --limit web: 3 ok, 1 changed, 0 failed, 0 unreachable`
    pub(crate) fn summary(&self) -> String {
        let args = if self.args.is_empty() {
            String::new()
        } else {
            format!(" {}", self.args.join(" "))
        };
        format!(
            "{}{args}: {} ok, {} changed, {} failed, {} unreachable",
            self.recipe,
            self.count(HostStatus::Ok),
            self.count(HostStatus::Changed),
            self.count(HostStatus::Failed),
            self.count(HostStatus::Unreachable)
        )
    }

    /// Where the record lives in the state repository.
    pub(crate) fn path(&self) -> PathBuf {
        Self::path_of(&self.run_id)
    }

    /// `runs/YYYY/MM/<run id>.json`, relative to the state repository.
    pub(crate) fn path_of(run_id: &str) -> PathBuf {
        let (year, month) = (
            run_id.get(0..4).unwrap_or("0000"),
            run_id.get(4..6).unwrap_or("00"),
        );
        PathBuf::from("runs")
            .join(year)
            .join(month)
            .join(format!("{run_id}.json"))
    }
}

/// Groups a host's commands into consecutive steps.
pub(crate) fn steps(commands: &[CommandRecord]) -> Vec<StepRun> {
    let mut steps: Vec<StepRun> = Vec::new();
    for c in commands {
        let mut c = c.clone();
        let name = c.step.take();
        match steps.last_mut() {
            Some(last) if last.name == name => last.commands.push(c),
            _ => steps.push(StepRun {
                name,
                commands: vec![c],
            }),
        }
    }
    steps
}

/// Writes the record (secrets redacted) and commits it with `staged` (paths relative to
/// the state repository) in one commit; returns the commit id. On failure (a full disk)
/// nothing is left behind: no empty or cut-short record that every later `history`
/// would skip with a note, and nothing staged that a later `git commit` would pick up.
pub(crate) fn write(
    state: &Path,
    record: &RunRecord,
    staged: &[PathBuf],
) -> Result<String, JournalError> {
    open_state(state)?;
    let rel = record.path();
    let file = state.join(&rel);
    let json = serde_json::to_string_pretty(record)?;
    let json = crate::ops::secrets::redact(&json).into_owned();
    crate::ops::localfs::write_private(&file, (json + "\n").as_bytes()).map_err(|source| {
        JournalError::Write {
            path: file.clone(),
            source,
        }
    })?;
    let mut paths = vec![rel];
    paths.extend(staged.iter().cloned());
    let message = crate::ops::secrets::redact(&record.summary()).into_owned();
    let committed = crate::ops::git::commit_paths(state, &paths, &message)
        .map_err(JournalError::from)
        .and_then(|c| {
            c.ok_or_else(|| JournalError::NothingToCommit {
                run_id: record.run_id.clone(),
                state: state.to_path_buf(),
            })
        });
    if committed.is_err() {
        // Best effort: the disk that failed the commit may fail these too.
        let _ = crate::ops::git::unstage(state, &paths);
        let _ = std::fs::remove_file(&file);
    }
    committed
}

/// Opens the state repository, creating it private when it does not exist: the state
/// directory and its `.git` 0700, since run records and git objects hold command output
/// and configuration files (git writes its objects 0444, readable by all, under a
/// directory anyone may enter otherwise).
pub(crate) fn open_state(state: &Path) -> Result<(), JournalError> {
    use std::os::unix::fs::PermissionsExt;
    let git_dir = state.join(".git");
    let new = !git_dir.exists();
    crate::ops::localfs::create_private_dir(state).map_err(|source| JournalError::Create {
        path: state.to_path_buf(),
        source,
    })?;
    crate::ops::git::open_or_init(state)?;
    if new {
        let private = std::fs::Permissions::from_mode(crate::ops::localfs::PRIVATE_DIR);
        std::fs::set_permissions(&git_dir, private).map_err(|source| {
            JournalError::MakePrivate {
                path: git_dir.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// How many of the newest logs the next run looks at for a killed run: enough for any
/// crash since the last good run, few enough to cost nothing on a large log folder.
const RECOVER_WINDOW: usize = 50;

/// Runs killed before they wrote their record (their log has no `run ended`) get a
/// `killed` record now, from their log; returns their ids. Called under the project
/// lock, so no run whose log is read is still going.
pub(crate) fn record_killed_runs(
    log_dir: &Path,
    state: &Path,
) -> Result<Vec<String>, JournalError> {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return Ok(Vec::new());
    };
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    logs.sort();
    let mut recorded = Vec::new();
    for log in logs.iter().rev().take(RECOVER_WINDOW) {
        let Some(run_id) = log.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let probe = RunRecord::path_of(run_id);
        if state.join(&probe).exists() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        if let Some(record) = killed_run_from_log(run_id, &text, &log.display().to_string()) {
            write(state, &record, &[])?;
            recorded.push(record.run_id);
        }
    }
    Ok(recorded)
}

/// The record of a run whose log starts with `run started` and never says `run ended`.
pub(crate) fn killed_run_from_log(run_id: &str, log: &str, log_name: &str) -> Option<RunRecord> {
    // Most logs without a record ended on an error: skip them before parsing every line
    // (the JSON writer puts no space after the colon; output inside a line is escaped).
    if log.contains(r#""message":"run ended""#) {
        return None;
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let field =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    let first = lines.first()?;
    if field(first, "message").as_deref() != Some("run started")
        || lines
            .iter()
            .any(|l| field(l, "message").as_deref() == Some("run ended"))
    {
        return None;
    }
    let mut hosts: indexmap::IndexMap<String, HostRun> = indexmap::IndexMap::new();
    for line in &lines[1..] {
        let Some(host) = field(line, "host").filter(|h| !h.is_empty()) else {
            continue;
        };
        let entry = hosts.entry(host.clone()).or_insert_with(|| HostRun {
            host,
            status: HostStatus::Failed,
            duration_ms: 0,
            error: Some("fleet was killed while this host was in progress".into()),
            steps: Vec::new(),
            results: Default::default(),
            drift: None,
        });
        if field(line, "message").as_deref() == Some("host ended") {
            let status: Option<HostStatus> = line
                .get("status")
                .and_then(|s| serde_json::from_value(s.clone()).ok());
            entry.status = status.unwrap_or(HostStatus::Failed);
            entry.error = field(line, "error");
            entry.duration_ms = line
                .get("duration_ms")
                .and_then(|d| d.as_u64())
                .unwrap_or(0);
        }
    }
    let started = field(first, "timestamp").unwrap_or_default();
    let ended = lines
        .last()
        .and_then(|l| field(l, "timestamp"))
        .unwrap_or_else(|| started.clone());
    let millis = |t: &str| {
        humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
    };
    Some(RunRecord {
        run_id: run_id.to_string(),
        recipe: field(first, "recipe").unwrap_or_default(),
        args: field(first, "args")
            .map(|a| a.split_whitespace().map(String::from).collect())
            .unwrap_or_default(),
        params: Default::default(),
        recipe_commit: None,
        recipe_dirty: false,
        recipes_rev: None,
        replays: None,
        fleet_version: env!("CARGO_PKG_VERSION").to_string(),
        // Who started it (`web:alice` from `fleet serve`); older logs do not say.
        user: field(first, "user").unwrap_or_else(crate::sysinfo::user),
        controller: crate::sysinfo::hostname(),
        duration_ms: millis(&ended)
            .zip(millis(&started))
            .map(|(e, s)| e.saturating_sub(s))
            .unwrap_or(0),
        started: started.split('.').next().unwrap_or_default().to_string() + "Z",
        ended: ended.split('.').next().unwrap_or_default().to_string() + "Z",
        check: first
            .get("check")
            .and_then(|c| c.as_bool())
            .unwrap_or(false),
        exit_code: 128 + 9,
        error: Some(format!(
            "killed: fleet ended without finishing this run (SIGKILL, a crash or a power loss); recorded by a later run from {log_name}"
        )),
        killed: true,
        local_changes: Vec::new(),
        refused: None,
        hosts: hosts.into_values().collect(),
    })
}

/// What `fleet history`'s table shows of a run: read without the hosts' commands,
/// results and errors (most of a large run's record), which the parser skips.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RunSummary {
    pub(crate) run_id: String,
    pub(crate) recipe: String,
    pub(crate) args: Vec<String>,
    pub(crate) started: String,
    pub(crate) exit_code: i32,
    pub(crate) hosts: Vec<HostBrief>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct HostBrief {
    pub(crate) host: String,
    pub(crate) status: HostStatus,
}

impl RunSummary {
    pub(crate) fn count(&self, status: HostStatus) -> usize {
        self.hosts.iter().filter(|h| h.status == status).count()
    }
}

/// What `fleet history`'s table shows of one run: counts, not hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunLine {
    pub(crate) run_id: String,
    pub(crate) recipe: String,
    pub(crate) args: Vec<String>,
    pub(crate) started: String,
    pub(crate) exit_code: i32,
    /// Hosts by status: ok, changed, failed, unreachable, skipped.
    pub(crate) counts: [usize; 5],
}

const COUNTED: [HostStatus; 5] = [
    HostStatus::Ok,
    HostStatus::Changed,
    HostStatus::Failed,
    HostStatus::Unreachable,
    HostStatus::Skipped,
];

impl RunLine {
    pub(crate) fn count(&self, status: HostStatus) -> usize {
        COUNTED
            .iter()
            .position(|s| *s == status)
            .map_or(0, |i| self.counts[i])
    }

    pub(crate) fn of(s: RunSummary) -> RunLine {
        let counts = COUNTED.map(|st| s.count(st));
        RunLine {
            run_id: s.run_id,
            recipe: s.recipe,
            args: s.args,
            started: s.started,
            exit_code: s.exit_code,
            counts,
        }
    }
}

/// One record's line in the cache, valid while the file keeps its size and time.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedLine {
    size: u64,
    modified_ns: u128,
    line: RunLine,
}

/// Every run's line, newest first. Lines are kept in `cache` (a file of this machine,
/// e.g. `.fleet/history-cache.json`, never in the state repository): a record is read
/// again only when it is new or its file changed, so the cost of `fleet history` follows
/// the number of runs, not their hosts. A cache that cannot be read or written is only
/// slower.
pub(crate) fn load_lines(state: &Path, cache: &Path) -> Result<Vec<RunLine>, JournalError> {
    let old: std::collections::HashMap<String, CachedLine> = std::fs::read(cache)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut new = std::collections::HashMap::new();
    let mut changed = false;
    for (path, meta) in record_files(state) {
        let key = path.display().to_string();
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        if let Some(c) = old.get(&key)
            && c.size == meta.len()
            && c.modified_ns == modified_ns
        {
            new.insert(key, c.clone());
            continue;
        }
        changed = true;
        if let Some(s) = read_record::<RunSummary>(&path)? {
            new.insert(
                key,
                CachedLine {
                    size: meta.len(),
                    modified_ns,
                    line: RunLine::of(s),
                },
            );
        }
    }
    if (changed || new.len() != old.len())
        && let Ok(json) = serde_json::to_vec(&new)
    {
        let tmp = cache.with_extension("tmp");
        if crate::ops::localfs::write_private(&tmp, &json).is_ok() {
            let _ = std::fs::rename(&tmp, cache);
        }
    }
    let mut lines: Vec<RunLine> = new.into_values().map(|c| c.line).collect();
    lines.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    Ok(lines)
}

/// Every run's summary, newest first (as `load_all`, without the bulk of each record).
pub(crate) fn load_summaries(state: &Path) -> Result<Vec<RunSummary>, JournalError> {
    let mut records: Vec<RunSummary> = load_each(state)?;
    records.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    Ok(records)
}

/// Every record file under `runs/` (`*.json`, in no order) with its metadata.
fn record_files(state: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut files = Vec::new();
    let mut stack = vec![state.join("runs")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push((path, meta));
            }
        }
    }
    files
}

/// One record file parsed as `T`; None (with a note) when it is not one.
fn read_record<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, JournalError> {
    let text = std::fs::read(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match serde_json::from_slice::<T>(&text) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            eprintln!("note: skipping {}: {e}", path.display());
            Ok(None)
        }
    }
}

/// Every record under `runs/` parsed as `T`, in no order. Unreadable records are skipped
/// with a note.
fn load_each<T: serde::de::DeserializeOwned>(state: &Path) -> Result<Vec<T>, JournalError> {
    let mut records = Vec::new();
    for (path, _) in record_files(state) {
        records.extend(read_record::<T>(&path)?);
    }
    Ok(records)
}

/// Every run in the journal, newest first. Unreadable records are skipped with a note.
pub(crate) fn load_all(state: &Path) -> Result<Vec<RunRecord>, JournalError> {
    let mut records: Vec<RunRecord> = load_each(state)?;
    records.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    Ok(records)
}

/// Whether a journaled recipe name is `name`: a recipe `deploy_site` is the command
/// `deploy-site`, and either spelling finds its runs.
pub(crate) fn same_recipe(journaled: &str, name: &str) -> bool {
    journaled.replace('_', "-") == name.replace('_', "-")
}

/// A run by id, unique id prefix, or `last` (newest, of `recipe` when given).
pub(crate) fn find(
    state: &Path,
    which: &str,
    recipe: Option<&str>,
) -> Result<RunRecord, JournalError> {
    let all = load_all(state)?;
    let mut matching = all
        .into_iter()
        .filter(|r| recipe.is_none_or(|n| same_recipe(&r.recipe, n)));
    if which == "last" {
        return matching.next().ok_or_else(|| match recipe {
            Some(n) => JournalError::NoRunOf {
                state: state.to_path_buf(),
                recipe: n.to_string(),
            },
            None => JournalError::NoRun {
                state: state.to_path_buf(),
            },
        });
    }
    let found: Vec<RunRecord> = matching.filter(|r| r.run_id.starts_with(which)).collect();
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(JournalError::NoSuchRun {
            which: which.to_string(),
            state: state.to_path_buf(),
        }),
        count => Err(JournalError::Ambiguous {
            which: which.to_string(),
            count,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_json(run_id: &str, statuses: &[&str]) -> String {
        let hosts: Vec<String> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(r#"{{"host": "h{i}", "status": "{s}", "steps": [{{"commands": []}}]}}"#)
            })
            .collect();
        format!(
            r#"{{"run_id": "{run_id}", "recipe": "exec", "args": ["all"], "started": "2026-11-30T00:00:00Z", "exit_code": 0, "hosts": [{}]}}"#,
            hosts.join(", ")
        )
    }

    #[test]
    fn history_lines_come_from_the_cache_until_a_record_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let runs = state.join("runs/2026/11");
        std::fs::create_dir_all(&runs).unwrap();
        let cache = tmp.path().join(".fleet/history-cache.json");
        std::fs::write(runs.join("a.json"), summary_json("a", &["ok", "failed"])).unwrap();
        std::fs::write(runs.join("b.json"), summary_json("b", &["changed"])).unwrap();
        let lines = load_lines(&state, &cache).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.run_id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(lines[1].count(HostStatus::Failed), 1);
        assert_eq!(lines[1].count(HostStatus::Ok), 1);
        assert!(cache.exists());
        // From the cache: a record whose file is unchanged is not parsed again (a cache
        // entry edited by hand shows through), a changed or new one is.
        let text = std::fs::read_to_string(&cache).unwrap();
        std::fs::write(
            &cache,
            text.replace(r#""recipe":"exec""#, r#""recipe":"cached""#),
        )
        .unwrap();
        std::fs::write(runs.join("a.json"), summary_json("a", &["ok", "ok", "ok"])).unwrap();
        std::fs::remove_file(runs.join("b.json")).unwrap();
        std::fs::write(runs.join("c.json"), summary_json("c", &["unreachable"])).unwrap();
        let lines = load_lines(&state, &cache).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.run_id.as_str()).collect::<Vec<_>>(),
            ["c", "a"]
        );
        assert_eq!(lines[1].count(HostStatus::Ok), 3);
        assert_eq!(lines[1].recipe, "exec");
        // A broken cache only costs the time to read the records again.
        std::fs::write(&cache, "not json").unwrap();
        assert_eq!(load_lines(&state, &cache).unwrap().len(), 2);
    }

    #[test]
    fn a_cached_line_is_used_while_its_file_is_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let runs = state.join("runs/2026/11");
        std::fs::create_dir_all(&runs).unwrap();
        let cache = tmp.path().join("cache.json");
        std::fs::write(runs.join("a.json"), summary_json("a", &["ok"])).unwrap();
        load_lines(&state, &cache).unwrap();
        let text = std::fs::read_to_string(&cache).unwrap();
        std::fs::write(
            &cache,
            text.replace(r#""recipe":"exec""#, r#""recipe":"cached""#),
        )
        .unwrap();
        assert_eq!(load_lines(&state, &cache).unwrap()[0].recipe, "cached");
    }

    fn command(step: Option<&str>, cmd: &str) -> CommandRecord {
        CommandRecord {
            step: step.map(String::from),
            command: cmd.into(),
            exit_code: Some(0),
            executed: true,
            ..CommandRecord::default()
        }
    }

    fn record(run_id: &str) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            recipe: "exec".into(),
            args: vec![],
            params: Default::default(),
            recipe_commit: None,
            recipe_dirty: false,
            recipes_rev: None,
            replays: None,
            fleet_version: "0".into(),
            user: "u".into(),
            controller: "c".into(),
            started: "2026-01-01T00:00:00Z".into(),
            ended: "2026-01-01T00:00:01Z".into(),
            duration_ms: 1,
            check: false,
            exit_code: 0,
            error: None,
            killed: false,
            local_changes: vec![],
            refused: None,
            hosts: vec![],
        }
    }

    #[test]
    fn records_are_written_atomically_and_unstaged_when_the_commit_fails() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        write(state, &record("20260101T000000.000Z-0001"), &[]).unwrap();
        // The next commit cannot move the branch: as when the disk is full.
        let repo = git2::Repository::open(state).unwrap();
        let branch = repo.head().unwrap().name().unwrap().to_string();
        std::fs::write(repo.path().join(format!("{branch}.lock")), "").unwrap();
        let snapshot = PathBuf::from("hosts/web/etc/motd");
        std::fs::create_dir_all(state.join("hosts/web/etc")).unwrap();
        std::fs::write(state.join(&snapshot), "hello\n").unwrap();

        let second = record("20260101T000001.000Z-0002");
        assert!(write(state, &second, &[PathBuf::from("hosts")]).is_err());

        let index = git2::Repository::open(state).unwrap().index().unwrap();
        assert!(index.get_path(&second.path(), 0).is_none(), "record staged");
        assert!(index.get_path(&snapshot, 0).is_none(), "snapshot staged");
        assert!(!state.join(second.path()).exists());
        let runs = state.join("runs/2026/01");
        let left: Vec<_> = std::fs::read_dir(&runs).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(load_all(state).unwrap().len(), 1);
    }

    fn change(what: &str) -> PlannedChange {
        PlannedChange {
            step: Some("ufw".into()),
            change: what.into(),
            detail: String::new(),
        }
    }

    fn check_run(id: &str, at: &str, changes: Vec<PlannedChange>) -> RunRecord {
        let mut r = record(id);
        r.recipe = "configure".into();
        r.check = true;
        r.ended = at.into();
        r.hosts = vec![HostRun {
            host: "web1".into(),
            status: HostStatus::Changed,
            duration_ms: 0,
            error: None,
            steps: vec![],
            results: Default::default(),
            drift: Some(Drift::new(changes, at)),
        }];
        r
    }

    #[test]
    fn an_unchanged_drift_keeps_its_since_and_is_stored_as_a_reference() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let two = || vec![change("run: ufw allow 80/tcp"), change("write /etc/motd")];
        let first = check_run("20260101T000000.000Z-0001", "2026-01-01T00:00:00Z", two());
        write(state, &first, &[]).unwrap();
        for (id, at) in [
            ("20260101T010000.000Z-0002", "2026-01-01T01:00:00Z"),
            ("20260101T020000.000Z-0003", "2026-01-01T02:00:00Z"),
        ] {
            let mut next = check_run(id, at, two());
            link_drift(&mut next, &load_all(state).unwrap());
            let d = next.hosts[0].drift.clone().unwrap();
            assert_eq!(d.since, "2026-01-01T00:00:00Z");
            assert!(d.changes.is_empty());
            assert_eq!(d.count, 2);
            assert_eq!(d.same_as.as_deref(), Some("20260101T000000.000Z-0001"));
            write(state, &next, &[]).unwrap();
        }
        let all = load_all(state).unwrap();
        let now = drift_of_hosts(&all, Some("configure"));
        assert_eq!(now["web1"].changes, two());
        assert_eq!(now["web1"].run_id, "20260101T020000.000Z-0003");

        // Another set starts a new since; fixed (none) is stored as none.
        let mut other = check_run(
            "20260101T030000.000Z-0004",
            "2026-01-01T03:00:00Z",
            vec![change("x")],
        );
        link_drift(&mut other, &all);
        assert_eq!(
            other.hosts[0].drift.as_ref().unwrap().since,
            "2026-01-01T03:00:00Z"
        );
        assert_eq!(
            other.hosts[0].drift.as_ref().unwrap().changes,
            vec![change("x")]
        );
        let mut fixed = check_run("20260101T040000.000Z-0005", "2026-01-01T04:00:00Z", vec![]);
        link_drift(&mut fixed, &all);
        assert_eq!(fixed.hosts[0].drift.as_ref().unwrap().count, 0);
        assert!(drift_of_hosts(&[fixed], None)["web1"].changes.is_empty());
    }

    #[test]
    fn drift_diffs_are_masked_in_the_journal() {
        crate::ops::secrets::register("s3cret-drift-value");
        let dir = tempfile::tempdir().unwrap();
        let mut c = change("write /etc/app.conf: replace its content (20 bytes)");
        c.detail = "-token=old\n+token=s3cret-drift-value".into();
        let run = check_run("20260101T000000.000Z-0001", "2026-01-01T00:00:00Z", vec![c]);
        write(dir.path(), &run, &[]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(run.path())).unwrap();
        assert!(text.contains("+token=***"), "{text}");
        assert!(!text.contains("s3cret-drift-value"), "{text}");
    }

    #[test]
    fn commands_group_into_consecutive_steps() {
        let s = steps(&[
            command(Some("a"), "1"),
            command(Some("a"), "2"),
            command(None, "3"),
            command(Some("a"), "4"),
        ]);
        let shape: Vec<(Option<&str>, usize)> = s
            .iter()
            .map(|s| (s.name.as_deref(), s.commands.len()))
            .collect();
        assert_eq!(shape, [(Some("a"), 2), (None, 1), (Some("a"), 1)]);
        assert!(s[0].commands[0].step.is_none());
    }

    #[test]
    fn a_killed_run_keeps_the_user_its_log_names() {
        let log = concat!(
            r#"{"timestamp":"2026-11-30T10:00:00.000Z","message":"run started","run_id":"r","recipe":"slow","args":"","check":false,"user":"web:alice"}"#,
            "\n",
            r#"{"timestamp":"2026-11-30T10:00:02.000Z","message":"command","host":"h1","command":"sleep 9"}"#,
            "\n"
        );
        let record = killed_run_from_log("r", log, "r.jsonl").expect("killed");
        assert_eq!(record.user, "web:alice");
        assert!(record.killed);
        let older = log.replace(r#","user":"web:alice""#, "");
        let record = killed_run_from_log("r", &older, "r.jsonl").expect("killed");
        assert_eq!(record.user, crate::sysinfo::user());
    }
}
