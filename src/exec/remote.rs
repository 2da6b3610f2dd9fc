//! The one implementation of `ops::remote::Remote` over a real transport: a host of a
//! run. Check mode, sudo, timeouts, logging, redaction and journal records happen in
//! `Run::command`, once, for every feature. [`ControllerRemote`] is the same handle for
//! work fleet does on this machine on a host's behalf (rsync to or from it).

use super::run::Run;
use crate::inventory::ResolvedHost;
use crate::ops::remote::{CmdOutput, CmdResult, CommandOpts, Remote};
use crate::ops::shell::Argv;
use crate::outcome::CommandRecord;
use crate::outcome::HostError;
use crate::transport::{LocalTransport, RunOpts, Transport};
use std::time::{Duration, Instant};

pub(crate) struct HostRemote<'a> {
    pub(crate) run: &'a Run,
    pub(crate) host: &'a ResolvedHost,
}

impl Remote for HostRemote<'_> {
    fn name(&self) -> &str {
        &self.host.name
    }

    fn check_mode(&self) -> bool {
        self.run.options.check
    }

    fn command(&self, cmd: &str, opts: CommandOpts) -> Result<CmdResult, HostError> {
        self.run.command(self.host, cmd, opts)
    }

    fn program(&self, argv: &Argv, opts: CommandOpts) -> Result<CmdResult, HostError> {
        self.run.program(self.host, argv, opts)
    }

    fn exec(
        &self,
        cmd: &str,
        timeout: Option<Duration>,
        input: Option<&[u8]>,
        stream: bool,
    ) -> Result<CmdOutput, HostError> {
        self.run.exec(self.host, cmd, timeout, input, stream)
    }

    fn write_file(&self, path: &str, content: &[u8]) -> Result<bool, HostError> {
        crate::ops::files::write_file(self, path, content, &Default::default())
    }

    fn reconnect(&self) {
        self.run.reconnect(self.host);
    }

    fn activity(&self, message: &str) {
        self.run.ui.host_activity(&self.host.name, message);
    }

    fn out(&self, message: &str) {
        self.run.ui.out(Some(&self.host.name), message);
        if self.run.options.check {
            self.run.note_planned(&self.host.name, message);
        }
    }

    fn event(&self, message: &str) {
        self.run.ui.event(Some(&self.host.name), message);
    }

    fn note_result(&self, key: &str, value: serde_json::Value) {
        self.run.update(&self.host.name, |r| {
            r.results.insert(key.to_string(), value);
        });
    }

    fn mark_changed(&self) {
        self.run.mark_changed(&self.host.name);
    }

    fn aborted(&self) -> bool {
        super::interrupt::aborted()
    }
}

/// Commands that run on the controller on `host`'s behalf (rsync pulling from it or
/// pushing to it): shown on its progress line and noted in its journal record; messages,
/// results and changes count for `host`.
pub(crate) struct ControllerRemote<'a>(pub HostRemote<'a>);

impl Remote for ControllerRemote<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn write_file(&self, path: &str, content: &[u8]) -> Result<bool, HostError> {
        crate::ops::files::write_file(self, path, content, &Default::default())
    }

    fn check_mode(&self) -> bool {
        self.0.check_mode()
    }

    /// Printed in check mode unless read-only; a non-zero exit is raised unless
    /// `allow_fail`. Never through sudo: fleet runs as the operator here.
    fn command(&self, cmd: &str, opts: CommandOpts) -> Result<CmdResult, HostError> {
        if self.check_mode() && !opts.read_only {
            self.out(&format!("would run on this machine: {cmd}"));
            return Ok(CmdResult {
                changed: opts.changed.unwrap_or(true),
                ..CmdResult::default()
            });
        }
        let out = self.exec(cmd, opts.timeout, None, true)?;
        if out.code != 0 && !opts.allow_fail {
            return Err(HostError {
                command: Some(cmd.to_string()),
                code: Some(out.code),
                ..HostError::new(
                    self.name(),
                    format!(
                        "command `{cmd}` on this machine exited with {}: {}",
                        out.code,
                        crate::ops::text::tail(&out.stderr, 5)
                    ),
                )
            });
        }
        let changed = opts.changes_on(out.code);
        if changed {
            self.mark_changed();
        }
        Ok(CmdResult::ran(out, changed))
    }

    /// Runs `cmd` here; a command that cannot start comes back as exit -1 with the
    /// reason on stderr, like any failed command.
    fn exec(
        &self,
        cmd: &str,
        timeout: Option<Duration>,
        input: Option<&[u8]>,
        stream: bool,
    ) -> Result<CmdOutput, HostError> {
        let (run, host) = (self.0.run, &self.0.host.name);
        let program = cmd.split_whitespace().next().unwrap_or_default();
        let opts = RunOpts {
            timeout,
            stream,
            ..RunOpts::default()
        };
        let started = Instant::now();
        let out = LocalTransport
            .run(cmd, &opts, input, &mut |_, line| {
                run.ui.host_activity(host, &format!("{program}  {line}"))
            })
            .unwrap_or_else(|e| CmdOutput {
                code: -1,
                stderr: e.to_string(),
                ..Default::default()
            });
        let record = CommandRecord {
            step: super::current::step(),
            command: cmd.to_string(),
            exit_code: Some(out.code),
            duration_ms: started.elapsed().as_millis() as u64,
            executed: true,
            ..CommandRecord::default()
        };
        run.note_command(host, record, &out.stdout_text(), &out.stderr);
        Ok(out)
    }

    fn activity(&self, message: &str) {
        self.0.activity(message)
    }

    fn out(&self, message: &str) {
        self.0.out(message)
    }

    fn event(&self, message: &str) {
        self.0.event(message)
    }

    fn note_result(&self, key: &str, value: serde_json::Value) {
        self.0.note_result(key, value)
    }

    fn mark_changed(&self) {
        self.0.mark_changed()
    }

    fn aborted(&self) -> bool {
        self.0.aborted()
    }
}
