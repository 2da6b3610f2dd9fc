//! What `fleet update` and `fleet status` do on a host: pending updates from apt's
//! simulation, the upgrade itself, and a reboot that waits for the host to come back.

use super::run::Run;
use crate::inventory::ResolvedHost;
use crate::ops::apt::{self, Pending};
use crate::ops::remote::CommandOpts;
use crate::outcome::HostFailure;
use std::time::{Duration, Instant};

impl Run {
    /// Whether commands that change the host need sudo (the login user is not root).
    pub fn needs_sudo(&self, host: &ResolvedHost) -> Result<bool, HostFailure> {
        Ok(self
            .command(host, "id -u", CommandOpts::QUERY)?
            .stdout
            .trim()
            != "0")
    }

    /// The host's pending updates; `refresh` runs `apt-get update` first (not a change).
    pub fn apt_pending(
        &self,
        host: &ResolvedHost,
        refresh: bool,
    ) -> Result<Vec<Pending>, HostFailure> {
        if self
            .command(host, "command -v apt-get", CommandOpts::QUERY)?
            .code
            != 0
        {
            let os = self
                .command(
                    host,
                    ". /etc/os-release 2>/dev/null; echo \"${PRETTY_NAME:-an unknown system}\"",
                    CommandOpts::QUERY,
                )?
                .stdout;
            return Err(HostFailure::new(
                &host.name,
                format!(
                    "{} runs {}, which has no apt-get: fleet update supports Debian and Ubuntu (apt) only",
                    host.name,
                    os.trim()
                ),
            ));
        }
        if refresh {
            let sudo = self.needs_sudo(host)?;
            self.command(
                host,
                apt::REFRESH,
                CommandOpts {
                    sudo,
                    changed: Some(false),
                    timeout: Some(Duration::from_secs(600)),
                    ..CommandOpts::default()
                },
            )?;
        }
        let sim = self.command(host, apt::SIMULATE, CommandOpts::QUERY)?;
        Ok(apt::parse_simulation(&sim.stdout))
    }

    /// Upgrades every package (output streams to the progress line and the log).
    pub fn apt_upgrade(&self, host: &ResolvedHost) -> Result<(), HostFailure> {
        let sudo = self.needs_sudo(host)?;
        self.command(
            host,
            apt::UPGRADE,
            CommandOpts {
                sudo,
                timeout: Some(Duration::from_secs(3600)),
                ..CommandOpts::default()
            },
        )
        .map(|_| ())
    }

    pub fn reboot_required(&self, host: &ResolvedHost) -> Result<bool, HostFailure> {
        Ok(self
            .command(host, apt::REBOOT_REQUIRED, CommandOpts::QUERY)?
            .code
            == 0)
    }

    /// Drops the host's connection; the next command connects anew.
    pub fn reconnect(&self, host: &ResolvedHost) {
        let t = self.transports.lock().unwrap().remove(&host.name);
        if let Some(t) = t {
            t.close();
        }
    }

    /// Reboots the host with `command` and waits until it answers again with a boot
    /// marker (`marker`'s output, by default the kernel's boot id) other than before.
    pub fn reboot(
        &self,
        host: &ResolvedHost,
        command: &str,
        marker: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<Duration, HostFailure> {
        let before = self.command(host, marker, CommandOpts::QUERY)?;
        if before.code != 0 || before.stdout.trim().is_empty() {
            return Err(HostFailure::new(
                &host.name,
                format!(
                    "cannot tell reboots apart on {}: `{marker}` printed nothing",
                    host.name
                ),
            ));
        }
        if self.options.check {
            self.ui
                .out(Some(&host.name), &format!("would reboot: {command}"));
            return Ok(Duration::ZERO);
        }
        let sudo = self.needs_sudo(host)?;
        let started = Instant::now();
        // The connection may drop before the command returns: that is the reboot.
        let _ = self.command(
            host,
            command,
            CommandOpts {
                sudo,
                allow_fail: true,
                timeout: Some(Duration::from_secs(30)),
                ..CommandOpts::default()
            },
        );
        self.mark_changed(&host.name);
        let mut last = String::from("no answer yet");
        loop {
            std::thread::sleep(interval);
            if super::interrupt::aborted() {
                return Err(HostFailure::new(
                    &host.name,
                    format!("waiting for {} to reboot was interrupted", host.name),
                ));
            }
            let waited = started.elapsed();
            if waited > timeout {
                return Err(HostFailure::unreachable(
                    &host.name,
                    format!(
                        "{} did not come back within {}s of the reboot ({last})",
                        host.name,
                        timeout.as_secs()
                    ),
                ));
            }
            self.ui.host_activity(
                &host.name,
                &format!(
                    "rebooting: waiting for it to come back ({}s)",
                    waited.as_secs()
                ),
            );
            self.reconnect(host);
            match self.command(host, marker, CommandOpts::QUERY) {
                Ok(r)
                    if r.code == 0
                        && r.stdout.trim() != before.stdout.trim()
                        && !r.stdout.trim().is_empty() =>
                {
                    return Ok(started.elapsed());
                }
                Ok(_) => last = "it still runs the same boot".into(),
                Err(e) => last = e.message,
            }
        }
    }
}
