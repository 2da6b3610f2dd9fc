//! Applying a firewall with ufw on a host: read its state in one round trip, plan with
//! `ops::ufw::plan` (SSH rules before anything that could lock fleet out), run the plan.

use super::files::maybe_sudo;
use super::run::Run;
use crate::inventory::ResolvedHost;
use crate::ops::remote::CommandOpts;
use crate::ops::ufw::{self, Rule};
use crate::outcome::HostFailure;

const SEPARATOR: &str = "---fleet-ufw---";

/// What applying did: the commands run (or, in --check, printed).
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub commands: Vec<String>,
    /// The SSH ports kept open.
    pub ssh_ports: Vec<u16>,
}

impl Run {
    /// Makes ufw on `host` hold `wanted` plus SSH rules for the port fleet is connected
    /// on and `ssh_port`, deny incoming by default, enabled.
    pub fn ufw_apply(
        &self,
        host: &ResolvedHost,
        wanted: &[Rule],
        ssh_port: Option<u16>,
        lan_only_ssh: bool,
    ) -> Result<Applied, HostFailure> {
        let read = CommandOpts {
            read_only: true,
            ..CommandOpts::default()
        };
        let probe = self.command(
            host,
            "id -u; command -v ufw || echo no-ufw; echo \"${SSH_CONNECTION:-}\"",
            read,
        )?;
        let mut lines = probe.stdout.lines();
        let root = lines.next().map(str::trim) == Some("0");
        if lines.next().map(str::trim) == Some("no-ufw") {
            return Err(HostFailure::new(
                &host.name,
                format!(
                    "ufw is not installed on {}: install it first (the baseline_tools module does)",
                    host.name
                ),
            ));
        }
        // SSH_CONNECTION: client address, client port, server address, server port.
        let connected = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|p| p.parse::<u16>().ok());
        let ssh_ports: Vec<u16> = connected.into_iter().chain(ssh_port).collect();
        let state_cmd = format!(
            "ufw status; echo {SEPARATOR}; cat /etc/default/ufw; echo {SEPARATOR}; ufw show added"
        );
        let state = self.command(
            host,
            &maybe_sudo(&state_cmd, !root),
            CommandOpts {
                sudo: false,
                ..read
            },
        )?;
        let parts: Vec<&str> = state.stdout.split(&format!("{SEPARATOR}\n")).collect();
        if parts.len() != 3 {
            return Err(HostFailure::new(
                &host.name,
                format!(
                    "unexpected answer from ufw on {}: {:?}",
                    host.name, state.stdout
                ),
            ));
        }
        let current = ufw::parse_state(parts[0], parts[1]);
        let added = ufw::parse_show_added(parts[2]);
        let ssh = ufw::ssh_rules(&ssh_ports, lan_only_ssh);
        let commands = ufw::plan(&current, &added, wanted, &ssh);
        for cmd in &commands {
            self.command(
                host,
                cmd,
                CommandOpts {
                    sudo: !root,
                    ..CommandOpts::default()
                },
            )?;
        }
        Ok(Applied {
            commands,
            ssh_ports,
        })
    }
}
