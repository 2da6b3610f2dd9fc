//! How hosts end a run (ok, changed, failed, unreachable, skipped), why a host stopped,
//! and the exit code a set of endings maps to. Shared by exec, the journal, the Rhai
//! glue and the domain procedures in `ops/`, so it depends on none of them.

use crate::error::exit;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HostStatus {
    Skipped,
    Ok,
    Changed,
    Unreachable,
    Failed,
}

impl HostStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HostStatus::Skipped => "skipped",
            HostStatus::Ok => "ok",
            HostStatus::Changed => "changed",
            HostStatus::Unreachable => "unreachable",
            HostStatus::Failed => "failed",
        }
    }

    /// Failed and unreachable hosts both count against `--max-fail`.
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, HostStatus::Failed | HostStatus::Unreachable)
    }
}

/// Why a run stopped before its hosts were done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// `--timeout` expired.
    TimedOut,
}

/// How one invocation of fleet ended: everything its exit code is decided from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending<'a> {
    /// A run over hosts.
    Run {
        hosts: &'a [HostStatus],
        stop: Option<Stop>,
        /// The recipe itself failed (a bug in it, not a host).
        recipe_failed: bool,
    },
    /// A run that ended with `code` and whose journal record was then not written (or,
    /// in pull mode, not pushed).
    JournalLost { code: i32 },
    /// A `fleet drift` run that ended with `code`; `drifted`: a host would change.
    Drift { code: i32, drifted: bool },
    /// An error that ended fleet before or outside a run.
    Error(&'a crate::error::Error),
    /// The command line could not be parsed, or only help was asked for.
    Cli { help: bool },
}

/// The one place the documented exit codes are decided: 0 all hosts ok or changed,
/// 1 fleet's own failure (or a lost journal of an otherwise clean run), 2 usage, config
/// or recipe error, 3 a host failed (or, for `fleet drift`, drifted), 4 a host
/// unreachable (none failed), 75 locked, 124 `--timeout`, 130 interrupted.
pub(crate) fn exit_code(ending: &Ending) -> i32 {
    use crate::error::Error;
    match *ending {
        Ending::Run {
            hosts,
            stop,
            recipe_failed,
        } => match stop {
            Some(Stop::TimedOut) => exit::TIMEOUT,
            Some(Stop::Interrupted) => exit::INTERRUPTED,
            None if recipe_failed => exit::USAGE,
            None => match hosts.iter().copied().max() {
                Some(HostStatus::Failed) => exit::HOST_FAILED,
                Some(HostStatus::Unreachable) => exit::UNREACHABLE,
                _ => exit::OK,
            },
        },
        // Never a silent loss: a clean run whose record is lost does not exit 0.
        Ending::JournalLost { code: exit::OK } => exit::INTERNAL,
        Ending::JournalLost { code } => code,
        // Drift is as bad as a failed host: cron and monitoring alert on it.
        Ending::Drift {
            code: exit::OK | exit::UNREACHABLE,
            drifted: true,
        } => exit::HOST_FAILED,
        Ending::Drift { code, .. } => code,
        Ending::Error(e) => match e {
            Error::Usage { .. }
            | Error::Source(_)
            | Error::Read { .. }
            | Error::Write { .. }
            | Error::Git(_) => exit::USAGE,
            Error::Internal(_) => exit::INTERNAL,
            Error::Locked(_) => exit::LOCKED,
        },
        Ending::Cli { help: true } => exit::OK,
        Ending::Cli { help: false } => exit::USAGE,
    }
}

/// The exit code of a run that only its hosts decide (no stop, no recipe error).
#[cfg(test)]
pub(crate) fn hosts_exit_code(hosts: &[HostStatus]) -> i32 {
    exit_code(&Ending::Run {
        hosts,
        stop: None,
        recipe_failed: false,
    })
}

/// Why a host stopped: raised by host functions and carried through the recipe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostError {
    pub(crate) host: String,
    pub(crate) unreachable: bool,
    pub(crate) command: Option<String>,
    pub(crate) code: Option<i32>,
    pub(crate) stderr: String,
    pub(crate) message: String,
}

impl HostError {
    /// A failure that is not about one command's exit code.
    pub(crate) fn new(host: &str, message: String) -> HostError {
        HostError {
            host: host.to_string(),
            unreachable: false,
            command: None,
            code: None,
            stderr: String::new(),
            message,
        }
    }

    /// How the host ends: unreachable, or failed.
    pub(crate) fn status(&self) -> HostStatus {
        if self.unreachable {
            HostStatus::Unreachable
        } else {
            HostStatus::Failed
        }
    }

    pub(crate) fn unreachable(host: &str, message: String) -> HostError {
        HostError {
            unreachable: true,
            ..HostError::new(host, message)
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A change a check run would make on a host: `run (with sudo): ufw allow 80/tcp`,
/// `write /etc/motd: replace its content (12 bytes)` with its diff. The set of them is
/// the host's drift.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PlannedChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) step: Option<String>,
    pub(crate) change: String,
    /// What check mode showed under it (a file's diff), lines joined.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) detail: String,
}

/// One command as the journal keeps it: output reduced to its last lines.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CommandRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) step: Option<String>,
    pub(crate) command: String,
    /// None when the command did not run to an exit (check mode, timeout, lost host).
    pub(crate) exit_code: Option<i32>,
    pub(crate) duration_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) stdout_tail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) stderr_tail: String,
    /// False when check mode only printed it.
    pub(crate) executed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostStatus::*;

    #[test]
    fn exit_codes_map_the_worst_ending() {
        assert_eq!(hosts_exit_code(&[]), 0);
        assert_eq!(hosts_exit_code(&[Ok, Changed, Skipped]), 0);
        assert_eq!(hosts_exit_code(&[Ok, Unreachable]), 4);
        assert_eq!(hosts_exit_code(&[Unreachable, Failed, Ok]), 3);
    }

    #[test]
    fn every_ending_has_its_documented_code() {
        use crate::error::Error;
        let run = |stop, recipe_failed| {
            exit_code(&Ending::Run {
                hosts: &[Ok, Failed],
                stop,
                recipe_failed,
            })
        };
        let lost = |code| exit_code(&Ending::JournalLost { code });
        assert_eq!(run(None, false), 3);
        assert_eq!(run(None, true), 2);
        assert_eq!(run(Some(Stop::Interrupted), true), 130);
        assert_eq!(lost(run(Some(Stop::TimedOut), false)), 124);
        assert_eq!(lost(hosts_exit_code(&[Ok])), 1);
        assert_eq!(exit_code(&Ending::Error(&Error::usage("x"))), 2);
        assert_eq!(exit_code(&Ending::Error(&Error::Internal("x".into()))), 1);
        assert_eq!(exit_code(&Ending::Error(&Error::Locked("x".into()))), 75);
        assert_eq!(lost(0), 1);
        assert_eq!(lost(3), 3);
        assert_eq!(exit_code(&Ending::Cli { help: true }), 0);
        let drift = |code, drifted| exit_code(&Ending::Drift { code, drifted });
        assert_eq!(drift(0, false), 0);
        assert_eq!(drift(0, true), 3);
        assert_eq!(drift(4, false), 4);
        assert_eq!(drift(4, true), 3);
        assert_eq!(drift(2, true), 2);
        assert_eq!(drift(130, true), 130);
        assert_eq!(exit_code(&Ending::Cli { help: false }), 2);
    }
}
