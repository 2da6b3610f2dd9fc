//! The JSON-lines log of a run (`.fleet/logs/<run id>.jsonl`), written through `tracing`.
//! Each record carries run id, recipe, host, step, command, exit code and output, so the
//! full output of every host is there after the run.

use crate::ops::localfs;
use crate::ops::secrets::redact;
use std::path::Path;
use std::sync::Mutex;

/// Installs the log file as the process's tracing subscriber. Once per process.
///
/// The log holds every command's whole output: its directory is created 0700 and the
/// file 0600, whatever the umask.
pub(crate) fn init(path: &Path) -> Result<(), LogError> {
    if let Some(dir) = path.parent() {
        localfs::create_private_dir(dir).map_err(|source| LogError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let file = localfs::create_private_file(path).map_err(|source| LogError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(Mutex::new(file))
        .finish();
    tracing::subscriber::set_global_default(subscriber).map_err(LogError::Install)
}

/// Why the run log cannot be written; the run goes on without it (a warning).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogError {
    #[error("cannot create log directory {}: {source}", dir.display())]
    Dir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create log {}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install the run log: {0}")]
    Install(tracing::subscriber::SetGlobalDefaultError),
}

/// Identifies the run in every record.
#[derive(Debug, Clone)]
pub(crate) struct RunTag {
    pub(crate) run_id: String,
    pub(crate) recipe: String,
}

impl RunTag {
    pub(crate) fn run_started(&self, args: &[String], check: bool) {
        tracing::info!(
            run_id = %self.run_id,
            recipe = %self.recipe,
            args = %redact(&args.join(" ")),
            check,
            user = %crate::sysinfo::run_user(),
            "run started"
        );
    }

    /// The run stopped on an error before it had a recap or a journal record.
    pub(crate) fn run_ended_early(&self) {
        tracing::info!(
            run_id = %self.run_id,
            recipe = %self.recipe,
            recorded = false,
            "run ended"
        );
    }

    pub(crate) fn run_ended(&self, exit_code: i32) {
        tracing::info!(run_id = %self.run_id, recipe = %self.recipe, exit_code, "run ended");
    }

    /// One command with its whole output (the journal keeps only tails).
    pub(crate) fn command(
        &self,
        host: &str,
        record: &crate::outcome::CommandRecord,
        stdout: &str,
        stderr: &str,
    ) {
        tracing::info!(
            run_id = %self.run_id,
            recipe = %self.recipe,
            host,
            step = record.step.as_deref().unwrap_or(""),
            command = %redact(&record.command),
            exit_code = record.exit_code,
            stdout = %redact(stdout),
            stderr = %redact(stderr),
            duration_ms = record.duration_ms,
            executed = record.executed,
            "command"
        );
    }

    pub(crate) fn host_message(&self, host: Option<&str>, step: Option<&str>, message: &str) {
        tracing::info!(
            run_id = %self.run_id,
            recipe = %self.recipe,
            host = host.unwrap_or(""),
            step = step.unwrap_or(""),
            message = %redact(message)
        );
    }

    pub(crate) fn host_ended(
        &self,
        host: &str,
        status: &str,
        error: Option<&str>,
        duration_ms: u128,
    ) {
        let level_error = error.is_some();
        if level_error {
            tracing::error!(
                run_id = %self.run_id,
                recipe = %self.recipe,
                host,
                status,
                error = %redact(error.unwrap_or("")),
                duration_ms = duration_ms as u64,
                "host ended"
            );
        } else {
            tracing::info!(
                run_id = %self.run_id,
                recipe = %self.recipe,
                host,
                status,
                duration_ms = duration_ms as u64,
                "host ended"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `Install` is left out: its error comes only from tracing installing a second
    // global subscriber, which a test must not do to the test process.
    #[test]
    fn log_errors_say_what_failed() {
        let denied = || std::io::Error::other("permission denied");
        let dir = LogError::Dir {
            dir: "/p/.fleet/logs".into(),
            source: denied(),
        };
        assert_eq!(
            dir.to_string(),
            "cannot create log directory /p/.fleet/logs: permission denied"
        );
        let file = LogError::File {
            path: "/p/.fleet/logs/r.jsonl".into(),
            source: denied(),
        };
        assert_eq!(
            file.to_string(),
            "cannot create log /p/.fleet/logs/r.jsonl: permission denied"
        );
    }
}
