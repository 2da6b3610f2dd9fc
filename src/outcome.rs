//! How hosts end a run (ok, changed, failed, unreachable, skipped), why a host stopped,
//! and the exit code a set of endings maps to. Shared by exec, the journal, the Rhai
//! glue and the domain procedures in `ops/`, so it depends on none of them.

use crate::error::exit;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    Skipped,
    Ok,
    Changed,
    Unreachable,
    Failed,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Skipped => "skipped",
            HostStatus::Ok => "ok",
            HostStatus::Changed => "changed",
            HostStatus::Unreachable => "unreachable",
            HostStatus::Failed => "failed",
        }
    }

    /// Failed and unreachable hosts both count against `--max-fail`.
    pub fn is_failure(self) -> bool {
        matches!(self, HostStatus::Failed | HostStatus::Unreachable)
    }
}

/// 0 when every host is ok, changed or skipped; 3 when any failed; else 4 when any was
/// unreachable.
pub fn exit_code<'a>(statuses: impl IntoIterator<Item = &'a HostStatus>) -> i32 {
    let worst = statuses.into_iter().copied().max();
    match worst {
        Some(HostStatus::Failed) => exit::HOST_FAILED,
        Some(HostStatus::Unreachable) => exit::UNREACHABLE,
        _ => exit::OK,
    }
}

/// Why a host stopped: raised by host functions and carried through the recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFailure {
    pub host: String,
    pub unreachable: bool,
    pub command: Option<String>,
    pub code: Option<i32>,
    pub stderr: String,
    pub message: String,
}

impl HostFailure {
    /// A failure that is not about one command's exit code.
    pub fn new(host: &str, message: String) -> HostFailure {
        HostFailure {
            host: host.to_string(),
            unreachable: false,
            command: None,
            code: None,
            stderr: String::new(),
            message,
        }
    }

    /// How the host ends: unreachable, or failed.
    pub fn status(&self) -> HostStatus {
        if self.unreachable {
            HostStatus::Unreachable
        } else {
            HostStatus::Failed
        }
    }

    pub fn unreachable(host: &str, message: String) -> HostFailure {
        HostFailure {
            unreachable: true,
            ..HostFailure::new(host, message)
        }
    }
}

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One command as the journal keeps it: output reduced to its last lines.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub command: String,
    /// None when the command did not run to an exit (check mode, timeout, lost host).
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout_tail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    /// False when check mode only printed it.
    pub executed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostStatus::*;

    #[test]
    fn exit_codes_map_the_worst_ending() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[Ok, Changed, Skipped]), 0);
        assert_eq!(exit_code(&[Ok, Unreachable]), 4);
        assert_eq!(exit_code(&[Unreachable, Failed, Ok]), 3);
    }
}
