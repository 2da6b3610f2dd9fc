//! One run of a recipe or ad-hoc command: the selected inventory, options, each host's
//! record so far, the transports in use, and running a command on a host with check
//! mode, logging, progress and failure reporting in one place.

use super::current;
use super::log::RunTag;
use super::max_fail::MaxFail;
use super::remote::{ControllerRemote, HostRemote};
use super::ui::Ui;
use crate::error::{Error, Result};
use crate::inventory::{Connection, Inventory, ResolvedHost};
use crate::ops::remote::{CmdResult, CommandOpts};
use crate::ops::shell::Argv;
use crate::ops::ssh::{SshDefaults, target_for};
use crate::ops::text::tail;
use crate::outcome::HostStatus;
use crate::outcome::{CommandRecord, HostError, PlannedChange};
use crate::transport::{
    CmdOutput, LocalTransport, RunOpts, SshTransport, Stream, Transport, TransportError,
};
use indexmap::IndexMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    pub(crate) forks: usize,
    /// `--forks` was given: it wins over a recipe's own `each(…, #{ forks })`.
    pub(crate) forks_given: bool,
    /// Open ssh masters kept at most (fleet.toml `max_masters`); None: 2 × forks.
    pub(crate) max_masters: Option<usize>,
    pub(crate) max_fail: Option<MaxFail>,
    pub(crate) check: bool,
    /// Restricts every host selection of the run (`--limit`).
    pub(crate) limit: Option<String>,
    pub(crate) command_timeout: Option<Duration>,
    /// Bytes kept of each command's stdout and stderr (head and tail).
    pub(crate) output_limit: usize,
    pub(crate) ssh: SshDefaults,
    /// The project root: local paths in recipes (uploads, templates) are relative to it.
    pub(crate) root: std::path::PathBuf,
    /// The secrets file `secret("name")` reads (fleet.toml's `secrets_file`, resolved).
    pub(crate) secrets_file: Option<std::path::PathBuf>,
    /// The secret guest passwords are derived from (fleet.toml's `password_secret`).
    pub(crate) password_secret: Option<String>,
    /// The state repository: journal and configuration snapshots.
    pub(crate) state_dir: std::path::PathBuf,
    /// The inventory file, which `inventory::add`/`remove` edit in place.
    pub(crate) inventory_file: Option<std::path::PathBuf>,
    /// fleet.toml's ACME settings, for `proxy::site`.
    pub(crate) acme: crate::ops::proxy::Acme,
    /// `--require-signed`: the keys `git::checkout` checks the revision against.
    pub(crate) signed: Option<crate::ops::signatures::Keys>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            forks: 10,
            forks_given: false,
            max_masters: None,
            max_fail: None,
            check: false,
            limit: None,
            command_timeout: None,
            output_limit: crate::transport::DEFAULT_KEEP,
            ssh: SshDefaults::default(),
            root: std::path::PathBuf::from("."),
            secrets_file: None,
            password_secret: None,
            state_dir: std::path::PathBuf::from("state"),
            inventory_file: None,
            acme: Default::default(),
            signed: None,
        }
    }
}

/// What the journal records about the request behind a run.
#[derive(Debug, Clone)]
pub(crate) struct RunMeta {
    pub(crate) args: Vec<String>,
    pub(crate) params: serde_json::Map<String, serde_json::Value>,
    pub(crate) recipes_rev: Option<String>,
    /// The run this one replays (`fleet replay RUN`).
    pub(crate) replays: Option<String>,
    pub(crate) started_at: std::time::SystemTime,
}

impl Default for RunMeta {
    fn default() -> Self {
        RunMeta {
            args: Vec::new(),
            params: Default::default(),
            recipes_rev: None,
            replays: None,
            started_at: std::time::SystemTime::now(),
        }
    }
}

/// What a host has done so far in this run.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostRecord {
    pub(crate) ran: bool,
    pub(crate) changed: bool,
    pub(crate) failure: Option<(HostStatus, String)>,
    pub(crate) elapsed: Duration,
    /// Every command, in order, for the journal.
    pub(crate) commands: Vec<CommandRecord>,
    /// Structured results host functions report (e.g. `backup`), for the journal.
    pub(crate) results: serde_json::Map<String, serde_json::Value>,
    /// In check mode, the changes the run would make: the host's drift.
    pub(crate) planned: Vec<PlannedChange>,
}

/// Lines of output the journal keeps per command.
const JOURNAL_TAIL_LINES: usize = 20;

impl HostRecord {
    pub(crate) fn status(&self) -> HostStatus {
        match &self.failure {
            Some((s, _)) => *s,
            None if self.changed => HostStatus::Changed,
            None if self.ran => HostStatus::Ok,
            None => HostStatus::Skipped,
        }
    }
}

pub(crate) struct Run {
    pub(crate) tag: RunTag,
    pub(crate) inventory: Inventory,
    pub(crate) options: RunOptions,
    pub(crate) ui: Ui,
    records: Mutex<IndexMap<String, HostRecord>>,
    pub(super) transports: Mutex<HashMap<String, Arc<dyn Transport>>>,
    /// The bound on open ssh masters and which hosts' masters may be closed.
    masters: Mutex<MasterPool>,
    pub(crate) meta: RunMeta,
    /// Files (relative to the state repository) to commit with the journal record.
    staged: Mutex<Vec<std::path::PathBuf>>,
    /// Changes the recipe made on this machine itself (`local::write`, `csv::write`),
    /// for the recap and the journal: no host row stands for them.
    local_changes: Mutex<Vec<String>>,
    /// Hosts `inventory::add` put into the inventory file during this run: later
    /// calls (`host(NAME)`, a forward's target) know them without a reload.
    added: Mutex<Vec<ResolvedHost>>,
    /// The project lock, held until the run is dropped.
    pub(crate) lock: Option<super::lock::ProjectLock>,
    /// Drives SSH connections; made when the first SSH host is reached.
    runtime: OnceLock<tokio::runtime::Runtime>,
    pub(crate) started: Instant,
    /// `finish_run` logged the run's end.
    pub(crate) ended: std::sync::atomic::AtomicBool,
}

/// The run's open ssh masters under its bound (`max_masters`): which hosts count
/// (open or opening), whose work is going on, and which idle ones may be closed, least
/// recently used first.
#[derive(Default)]
struct MasterPool {
    counted: std::collections::HashSet<String>,
    busy: HashMap<String, usize>,
    idle: indexmap::IndexSet<String>,
    peak: usize,
}

/// How many lines of stderr a failure message shows.
const TAIL_LINES: usize = 5;

/// A run that ends without `finish_run` (an error after it started: a pattern that
/// matches nothing, a bad option) still says so in its log, so the next run does not
/// take it for one that was killed.
impl Drop for Run {
    fn drop(&mut self) {
        if !self.ended.load(std::sync::atomic::Ordering::SeqCst) {
            self.tag.run_ended_early();
        }
    }
}

impl Run {
    /// `host` as a `Remote` for the procedures in `ops/`.
    pub(crate) fn remote<'a>(&'a self, host: &'a ResolvedHost) -> HostRemote<'a> {
        HostRemote { run: self, host }
    }

    /// This machine, working for `host` (see [`ControllerRemote`]).
    pub(crate) fn controller<'a>(&'a self, host: &'a ResolvedHost) -> ControllerRemote<'a> {
        ControllerRemote(self.remote(host))
    }

    pub(crate) fn new(tag: RunTag, inventory: Inventory, options: RunOptions, ui: Ui) -> Run {
        Run {
            tag,
            inventory,
            options,
            ui,
            records: Mutex::new(IndexMap::new()),
            transports: Mutex::new(HashMap::new()),
            masters: Mutex::new(MasterPool::default()),
            runtime: OnceLock::new(),
            lock: None,
            meta: RunMeta::default(),
            staged: Mutex::new(Vec::new()),
            local_changes: Mutex::new(Vec::new()),
            added: Mutex::new(Vec::new()),
            started: Instant::now(),
            ended: Default::default(),
        }
    }

    /// Hosts matching `pattern`, narrowed by `--limit`, in inventory order.
    pub(crate) fn select(&self, pattern: &str) -> Result<Vec<ResolvedHost>> {
        let chosen = crate::inventory::select(&self.inventory, pattern)?;
        let limited: Vec<&str> = match &self.options.limit {
            Some(limit) => {
                let allowed = crate::inventory::select(&self.inventory, limit)?;
                chosen
                    .iter()
                    .filter(|h| allowed.iter().any(|a| a.name == h.name))
                    .map(|h| h.name.as_str())
                    .collect()
            }
            None => chosen.iter().map(|h| h.name.as_str()).collect(),
        };
        if limited.is_empty() {
            return Err(Error::usage(format!(
                "pattern `{pattern}` with --limit `{}` matches no host",
                self.options.limit.as_deref().unwrap_or_default()
            )));
        }
        let resolver = self.inventory.resolver();
        Ok(limited
            .into_iter()
            .filter_map(|n| resolver.resolve(n))
            .collect())
    }

    pub(crate) fn host(&self, name: &str) -> Result<ResolvedHost> {
        let added = self.added.lock().unwrap();
        match added.iter().find(|h| h.name == name) {
            Some(h) => Ok(h.clone()),
            None => self.inventory.require(name),
        }
    }

    /// Whether `inventory::add` wrote hosts during this run (the loaded inventory
    /// lacks them).
    pub(crate) fn added_hosts(&self) -> bool {
        !self.added.lock().unwrap().is_empty()
    }

    /// Makes a host that `inventory::add` wrote known to the rest of this run.
    pub(crate) fn add_host(&self, host: ResolvedHost) {
        let mut added = self.added.lock().unwrap();
        added.retain(|h| h.name != host.name);
        added.push(host);
    }

    pub(crate) fn stage(&self, paths: Vec<std::path::PathBuf>) {
        let mut staged = self.staged.lock().unwrap();
        for p in paths {
            if !staged.contains(&p) {
                staged.push(p);
            }
        }
    }

    pub(crate) fn staged(&self) -> Vec<std::path::PathBuf> {
        self.staged.lock().unwrap().clone()
    }

    /// Records a change (or, under `--check`, a change that would be made) on this
    /// machine, e.g. `write out/report.csv`; it is logged like a command.
    pub(crate) fn note_local_change(&self, what: &str) {
        self.tag
            .host_message(None, current::step().as_deref(), what);
        self.local_changes.lock().unwrap().push(what.to_string());
    }

    pub(crate) fn local_changes(&self) -> Vec<String> {
        self.local_changes.lock().unwrap().clone()
    }

    pub(crate) fn record(&self, host: &str) -> HostRecord {
        self.records
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn records(&self) -> IndexMap<String, HostRecord> {
        self.records.lock().unwrap().clone()
    }

    pub(crate) fn update(&self, host: &str, f: impl FnOnce(&mut HostRecord)) {
        f(self
            .records
            .lock()
            .unwrap()
            .entry(host.to_string())
            .or_default());
    }

    /// Logs a command with its whole output and keeps its tails for the journal.
    pub(crate) fn note_command(
        &self,
        host: &str,
        mut record: CommandRecord,
        stdout: &str,
        stderr: &str,
    ) {
        self.tag.command(host, &record, stdout, stderr);
        record.stdout_tail = tail(stdout, JOURNAL_TAIL_LINES);
        record.stderr_tail = tail(stderr, JOURNAL_TAIL_LINES);
        self.update(host, |r| r.commands.push(record));
    }

    /// Check mode: a message a host's procedure shows. `would …` is a change it would
    /// make; other lines (a diff) belong to the change before them.
    pub(crate) fn note_planned(&self, host: &str, message: &str) {
        let step = current::step();
        self.update(host, |r| match message.strip_prefix("would ") {
            Some(change) => r.planned.push(PlannedChange {
                step,
                change: change.to_string(),
                detail: String::new(),
            }),
            None => {
                if let Some(last) = r.planned.last_mut() {
                    if !last.detail.is_empty() {
                        last.detail.push('\n');
                    }
                    last.detail.push_str(message);
                }
            }
        });
    }

    pub(crate) fn mark_changed(&self, host: &str) {
        self.update(host, |r| {
            r.ran = true;
            r.changed = true
        });
    }

    /// Records a failure; the first one of a host is the one reported.
    pub(crate) fn mark_failed(&self, host: &str, status: HostStatus, message: &str) {
        self.update(host, |r| {
            r.ran = true;
            if r.failure.is_none() {
                r.failure = Some((status, message.to_string()));
            }
        });
    }

    fn runtime(&self) -> std::result::Result<&tokio::runtime::Runtime, TransportError> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| TransportError::Failed(format!("cannot start the I/O runtime: {e}")))?;
        Ok(self.runtime.get_or_init(|| rt))
    }

    /// The host's transport; an SSH connection opens on its first command.
    fn transport(
        &self,
        host: &ResolvedHost,
    ) -> std::result::Result<Arc<dyn Transport>, TransportError> {
        let mut transports = self.transports.lock().unwrap();
        if let Some(t) = transports.get(&host.name) {
            return Ok(t.clone());
        }
        let t: Arc<dyn Transport> = match host.connection {
            Connection::Local => Arc::new(LocalTransport),
            Connection::Ssh => Arc::new(SshTransport::new(
                target_for(host, &self.options.ssh),
                self.runtime()?.handle().clone(),
            )),
        };
        transports.insert(host.name.clone(), t.clone());
        Ok(t)
    }

    /// How many ssh masters the run keeps open at most.
    pub(crate) fn max_masters(&self) -> usize {
        self.options
            .max_masters
            .unwrap_or(2 * self.options.forks)
            .max(1)
    }

    /// `host`'s work in a fan-out begins: its master is not closed for the bound until
    /// the work has ended.
    pub(crate) fn host_started(&self, host: &str) {
        let mut pool = self.masters.lock().unwrap();
        *pool.busy.entry(host.to_string()).or_default() += 1;
        pool.idle.shift_remove(host);
    }

    /// `host`'s work in a fan-out has ended: its master (if open) becomes the most
    /// recently used idle one, and when the bound is reached the least recently used
    /// idle master is closed, so the next host to connect finds room.
    pub(crate) fn host_ended(&self, host: &str) {
        let mut pool = self.masters.lock().unwrap();
        if let Some(n) = pool.busy.get_mut(host) {
            *n -= 1;
            if *n == 0 {
                pool.busy.remove(host);
            }
        }
        if !pool.busy.contains_key(host) && pool.counted.contains(host) {
            pool.idle.insert(host.to_string());
        }
        self.evict(&mut pool, self.max_masters().saturating_sub(1));
    }

    /// Before `host`'s connection is opened: room is made under the bound by closing
    /// idle masters, least recently used first (a host whose work is still going on is
    /// never closed, so with more such hosts than the bound there are more masters).
    fn master_slot(&self, host: &ResolvedHost, t: &Arc<dyn Transport>) {
        if host.connection != Connection::Ssh || t.holds_master() {
            return;
        }
        let mut pool = self.masters.lock().unwrap();
        if pool.counted.contains(&host.name) {
            return;
        }
        self.evict(&mut pool, self.max_masters().saturating_sub(1));
        pool.counted.insert(host.name.clone());
        pool.peak = pool.peak.max(pool.counted.len());
    }

    /// Closes idle masters, least recently used first, until at most `keep` are open.
    fn evict(&self, pool: &mut MasterPool, keep: usize) {
        let mut i = 0;
        while pool.counted.len() > keep && i < pool.idle.len() {
            let name = pool.idle[i].clone();
            let t = self.transports.lock().unwrap().get(&name).cloned();
            if t.is_none_or(|t| t.close_idle()) {
                pool.idle.shift_remove_index(i);
                pool.counted.remove(&name);
            } else {
                i += 1;
            }
        }
    }

    /// The most ssh masters the run had open (or opening) at once.
    pub(crate) fn peak_masters(&self) -> usize {
        self.masters.lock().unwrap().peak
    }

    /// Closes every connection of the run; no ssh process of fleet's outlives it.
    pub(crate) fn close(&self) {
        let transports: Vec<_> = self.transports.lock().unwrap().drain().collect();
        // In parallel: a hundred masters closed one after another would add seconds.
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.options.forks.clamp(1, transports.len().max(1)) {
                s.spawn(|| {
                    while let Some((_, t)) =
                        transports.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
                    {
                        t.close();
                    }
                });
            }
        });
    }
    /// Drops the host's connection; the next command connects anew.
    pub(crate) fn reconnect(&self, host: &ResolvedHost) {
        let t = self.transports.lock().unwrap().remove(&host.name);
        if let Some(t) = t {
            t.close();
        }
        let mut pool = self.masters.lock().unwrap();
        pool.counted.remove(&host.name);
        pool.idle.shift_remove(&host.name);
    }

    /// The control socket of `host`'s master connection, opened if it is not yet (None
    /// for a local host): rsync on this machine reaches the host over it, without a
    /// login of its own.
    pub(crate) fn control_socket(
        &self,
        host: &ResolvedHost,
    ) -> std::result::Result<Option<std::path::PathBuf>, HostError> {
        self.update(&host.name, |r| r.ran = true);
        self.transport(host)
            .and_then(|t| {
                self.master_slot(host, &t);
                t.control_socket()
            })
            .map_err(|e| {
                HostError::unreachable(&host.name, format!("{} is unreachable: {e}", host.name))
            })
    }

    /// Waits until `host` accepts a login (hosts that are still booting).
    pub(crate) fn wait_ready(
        &self,
        host: &ResolvedHost,
        timeout: Duration,
        interval: Duration,
    ) -> std::result::Result<(), HostError> {
        self.ui.host_activity(&host.name, "waiting for SSH");
        self.transport(host)
            .and_then(|t| {
                self.master_slot(host, &t);
                t.wait_ready(timeout, interval)
            })
            .map_err(|e| {
                HostError::unreachable(&host.name, format!("{} is unreachable: {e}", host.name))
            })
    }

    /// Runs `cmd` on `host` and returns its output whatever the exit code: logged,
    /// streamed to the progress line, transport trouble raised as a `HostError`.
    pub(crate) fn exec(
        &self,
        host: &ResolvedHost,
        cmd: &str,
        timeout: Option<Duration>,
        stdin: Option<&[u8]>,
        stream: bool,
    ) -> std::result::Result<CmdOutput, HostError> {
        let step = current::step();
        self.update(&host.name, |r| r.ran = true);
        let verbose = self.ui.options.verbosity >= 1;
        self.ui.host_activity(&host.name, &format!("$ {cmd}"));
        if verbose {
            self.ui.event(Some(&host.name), &format!("$ {cmd}"));
        }
        let fail = |unreachable: bool, message: String| HostError {
            host: host.name.clone(),
            unreachable,
            command: Some(cmd.to_string()),
            code: None,
            stderr: String::new(),
            message,
        };
        let transport = self
            .transport(host)
            .map_err(|e| fail(true, format!("{} is unreachable: {e}", host.name)))?;
        self.master_slot(host, &transport);
        let run_opts = RunOpts {
            timeout: timeout.or(self.options.command_timeout),
            stream,
            // Downloads (not streamed) need every byte; they are files, not chatter.
            keep: stream.then_some(self.options.output_limit),
        };
        let started = Instant::now();
        let result = transport.run(cmd, &run_opts, stdin, &mut |stream, line| {
            if verbose {
                let mark = if stream == Stream::Stderr { "! " } else { "  " };
                self.ui.event(Some(&host.name), &format!("{mark}{line}"));
            }
            self.ui
                .host_activity(&host.name, &format!("$ {cmd}  {line}"));
        });
        let record = |exit_code: Option<i32>| CommandRecord {
            step: step.clone(),
            command: cmd.to_string(),
            exit_code,
            duration_ms: started.elapsed().as_millis() as u64,
            executed: true,
            ..CommandRecord::default()
        };
        let log_failure = |why: &str| self.note_command(&host.name, record(None), "", why);
        if super::interrupt::aborted() {
            log_failure("interrupted");
            return Err(fail(
                false,
                format!("command `{cmd}` on {} was interrupted", host.name),
            ));
        }
        let out = result.map_err(|e| {
            log_failure(&e.to_string());
            match e {
                TransportError::Unreachable(m) => {
                    let during = step
                        .as_deref()
                        .map(|s| format!(" during step `{s}`"))
                        .unwrap_or_default();
                    fail(true, format!("{} is unreachable{during}: {m}", host.name))
                }
                TransportError::Timeout(d) => fail(
                    false,
                    format!(
                        "command `{cmd}` on {} timed out after {}s and was killed",
                        host.name,
                        d.as_secs_f64()
                    ),
                ),
                TransportError::Failed(m) => {
                    fail(false, format!("command `{cmd}` on {}: {m}", host.name))
                }
            }
        })?;
        let stdout_log = if stream {
            out.stdout_text()
        } else {
            format!("({} bytes)", out.stdout.len())
        };
        self.note_command(&host.name, record(Some(out.code)), &stdout_log, &out.stderr);
        Ok(out)
    }

    /// Runs `cmd` on `host`: printed instead in check mode unless read-only, logged,
    /// streamed to the progress line, and raised as a `HostError` on a non-zero exit
    /// unless `allow_fail`.
    pub(crate) fn command(
        &self,
        host: &ResolvedHost,
        cmd: &str,
        opts: CommandOpts,
    ) -> std::result::Result<CmdResult, HostError> {
        let sudo_cmd = crate::ops::shell::sh_c(cmd);
        let wrapped = crate::ops::shell::maybe_sudo(cmd, opts.sudo);
        self.command_line(host, cmd, &wrapped, &sudo_cmd, opts)
    }

    /// Runs one program like [`Run::command`]; under sudo as `sudo -n -- PROGRAM ARGS…`,
    /// without a shell.
    pub(crate) fn program(
        &self,
        host: &ResolvedHost,
        argv: &Argv,
        opts: CommandOpts,
    ) -> std::result::Result<CmdResult, HostError> {
        let wrapped = if opts.sudo {
            argv.sudo_line()
        } else {
            argv.line()
        };
        self.command_line(host, &argv.line(), &wrapped, &argv.words(), opts)
    }

    /// `cmd` as shown and recorded, `wrapped` as run (with sudo when asked), and
    /// `sudo_cmd` what sudo was asked to run, for the message when it refuses.
    fn command_line(
        &self,
        host: &ResolvedHost,
        cmd: &str,
        wrapped: &str,
        sudo_cmd: &str,
        opts: CommandOpts,
    ) -> std::result::Result<CmdResult, HostError> {
        let step = current::step();
        self.update(&host.name, |r| r.ran = true);
        if self.options.check && !opts.read_only {
            let how = if opts.sudo { " (with sudo)" } else { "" };
            self.ui
                .out(Some(&host.name), &format!("would run{how}: {cmd}"));
            let record = CommandRecord {
                step: step.clone(),
                command: cmd.to_string(),
                executed: false,
                ..CommandRecord::default()
            };
            self.note_command(&host.name, record, "", "");
            let changed = opts.changed.unwrap_or(true);
            if changed {
                self.mark_changed(&host.name);
                self.note_planned(&host.name, &format!("would run{how}: {cmd}"));
            }
            return Ok(CmdResult {
                changed,
                ..CmdResult::default()
            });
        }
        let out = self.exec(host, wrapped, opts.timeout, None, true)?;
        if out.code != 0 {
            // sudo refusing to run it fails the command even with allow_fail; a limited
            // sudo is asked what it allows, to say so.
            let problem = opts
                .sudo
                .then(|| {
                    let remote = HostRemote { run: self, host };
                    crate::ops::sudo::explain(&remote, sudo_cmd, &out.stderr)
                })
                .flatten()
                .map(|p| p.to_string());
            if problem.is_some() || !opts.allow_fail {
                let message = problem.unwrap_or_else(|| {
                    let stderr_tail = tail(&out.stderr, TAIL_LINES);
                    let mut message =
                        format!("command `{cmd}` on {} exited with {}", host.name, out.code);
                    if !stderr_tail.is_empty() {
                        message.push_str(":\n");
                        message.push_str(&stderr_tail);
                    }
                    message
                });
                return Err(HostError {
                    host: host.name.clone(),
                    unreachable: false,
                    command: Some(cmd.to_string()),
                    code: Some(out.code),
                    stderr: out.stderr,
                    message,
                });
            }
        }
        let changed = opts.changes_on(out.code);
        if changed {
            self.mark_changed(&host.name);
        }
        Ok(CmdResult::ran(out, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("", 2), "");
    }

    #[test]
    fn records_end_with_the_worst_news() {
        let mut r = HostRecord::default();
        assert_eq!(r.status(), HostStatus::Skipped);
        r.ran = true;
        assert_eq!(r.status(), HostStatus::Ok);
        r.changed = true;
        assert_eq!(r.status(), HostStatus::Changed);
        r.failure = Some((HostStatus::Failed, "x".into()));
        assert_eq!(r.status(), HostStatus::Failed);
    }
}
