//! `fleet connect NAME [-- CMD]`: an interactive session on an inventory host, reached
//! exactly as a run reaches it (same user, port, key, known_hosts and checking).

use super::{load_inventory, ssh_defaults};
use crate::App;
use crate::error::{Error, Result};
use crate::inventory::Connection;
use crate::ops::ssh::{check_identity_file, target_for};
use std::os::unix::process::CommandExt;
use std::process::Command;

pub(crate) fn run(app: &App, name: &str, command: &[String]) -> Result<i32> {
    let inventory = load_inventory(app)?;
    let host = inventory.require(name)?;
    let mut cmd = match host.connection {
        Connection::Local => {
            let mut c = if command.is_empty() {
                Command::new(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()))
            } else {
                let mut c = Command::new("sh");
                c.arg("-c").arg(command.join(" "));
                c
            };
            c.current_dir(&app.project.root);
            c
        }
        Connection::Ssh => {
            let target = target_for(&host, &ssh_defaults(app));
            if let Some(key) = &target.identity_file {
                check_identity_file(key)
                    .map_err(|e| Error::usage(format!("host {}: {e}", host.name)))?;
            }
            let mut c = Command::new("ssh");
            // ssh_args ends with `-- ADDRESS`; after `--` ssh reads no more options, so
            // the command follows as it is.
            c.args(target.ssh_args());
            if !command.is_empty() {
                c.arg(command.join(" "));
            }
            c
        }
    };
    // Replaces fleet, so the terminal, signals and exit code are the session's own.
    let err = cmd.exec();
    Err(Error::Internal(format!(
        "cannot start {:?}: {err}",
        cmd.get_program()
    )))
}
