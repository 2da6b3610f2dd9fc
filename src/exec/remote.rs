//! The one implementation of `ops::remote::Remote` over a real transport: a host of a
//! run. Check mode, sudo, timeouts, logging, redaction and journal records happen in
//! `Run::command`, once, for every feature.

use super::run::Run;
use crate::inventory::ResolvedHost;
use crate::ops::remote::{CmdOutput, CmdResult, CommandOpts, Remote};
use crate::outcome::HostFailure;
use std::time::Duration;

pub struct HostRemote<'a> {
    pub run: &'a Run,
    pub host: &'a ResolvedHost,
}

impl Run {
    /// `host` as a `Remote` for the procedures in `ops/`.
    pub fn remote<'a>(&'a self, host: &'a ResolvedHost) -> HostRemote<'a> {
        HostRemote { run: self, host }
    }
}

impl Remote for HostRemote<'_> {
    fn name(&self) -> &str {
        &self.host.name
    }

    fn check_mode(&self) -> bool {
        self.run.options.check
    }

    fn command(&self, cmd: &str, opts: CommandOpts) -> Result<CmdResult, HostFailure> {
        self.run.command(self.host, cmd, opts)
    }

    fn exec(
        &self,
        cmd: &str,
        timeout: Option<Duration>,
        input: Option<&[u8]>,
        stream: bool,
    ) -> Result<CmdOutput, HostFailure> {
        self.run.exec(self.host, cmd, timeout, input, stream)
    }

    fn write_file(&self, path: &str, content: &[u8]) -> Result<bool, HostFailure> {
        self.run
            .write_file(self.host, path, content, &super::files::FileOpts::default())
    }

    fn reconnect(&self) {
        self.run.reconnect(self.host);
    }

    fn wait_ready(&self, timeout: Duration, interval: Duration) -> Result<(), HostFailure> {
        self.run.wait_ready(self.host, timeout, interval)
    }

    fn activity(&self, message: &str) {
        self.run.ui.host_activity(&self.host.name, message);
    }

    fn out(&self, message: &str) {
        self.run.ui.out(Some(&self.host.name), message);
    }

    fn mark_changed(&self) {
        self.run.mark_changed(&self.host.name);
    }

    fn aborted(&self) -> bool {
        super::interrupt::aborted()
    }
}
