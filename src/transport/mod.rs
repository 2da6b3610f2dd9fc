//! How a command reaches a host. One small trait so recipes never know whether a host
//! is this machine (`local`) or a server over SSH.

mod local;

pub use local::LocalTransport;

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// Kill the command (and everything it started) after this long.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code; 128 + signal number when the command was killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host cannot be reached at all: the run goes on without it.
    #[error("{0}")]
    Unreachable(String),
    #[error("timed out after {}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The command could not be started on a reachable host.
    #[error("{0}")]
    Failed(String),
}

/// Streams each output line to `on_line` as it arrives, then returns the whole output.
pub trait Transport: Send + Sync {
    fn run(
        &self,
        cmd: &str,
        opts: &RunOpts,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<CmdOutput, TransportError>;
}
