//! How a command reaches a host. One small trait so recipes never know whether a host
//! is this machine (`local`) or a server over SSH (`ssh`).

mod local;
mod master;
mod ssh;

pub use local::LocalTransport;
pub use ssh::SshTransport;

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RunOpts {
    /// Kill the command (and everything it started) after this long.
    pub timeout: Option<Duration>,
    /// Report output lines as they arrive (off for binary downloads).
    pub stream: bool,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            timeout: None,
            stream: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code; 128 + signal number when the command was killed by a signal.
    pub code: i32,
    /// Raw bytes: downloads are binary.
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl CmdOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host cannot be reached (or was lost): the run goes on without it.
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
        stdin: Option<&[u8]>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<CmdOutput, TransportError>;

    /// Waits until the host answers (a booting VM), trying every `interval`.
    fn wait_ready(&self, _timeout: Duration, _interval: Duration) -> Result<(), TransportError> {
        Ok(())
    }

    /// Ends the connection; called once at the end of a run.
    fn close(&self) {}
}

/// Gathers a command's output as it arrives: keeps every byte, and hands whole lines to
/// `on_line` (stdout only when `stream`; stderr always, it is small and tells progress).
pub(crate) struct Collector {
    stream: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    lines_out: LineSplitter,
    lines_err: LineSplitter,
}

impl Collector {
    pub fn new(stream: bool) -> Self {
        Collector {
            stream,
            stdout: Vec::new(),
            stderr: Vec::new(),
            lines_out: LineSplitter::new(),
            lines_err: LineSplitter::new(),
        }
    }

    pub fn data(&mut self, which: Stream, data: &[u8], on_line: &mut dyn FnMut(Stream, &str)) {
        match which {
            Stream::Stdout => {
                if self.stream {
                    self.lines_out.push(data, |l| on_line(Stream::Stdout, l));
                }
                self.stdout.extend_from_slice(data);
            }
            Stream::Stderr => {
                self.lines_err.push(data, |l| on_line(Stream::Stderr, l));
                self.stderr.extend_from_slice(data);
            }
        }
    }

    /// Flushes unfinished last lines and returns the output with `code`.
    pub fn finish(mut self, code: i32, on_line: &mut dyn FnMut(Stream, &str)) -> CmdOutput {
        if self.stream {
            self.lines_out.finish(|l| on_line(Stream::Stdout, l));
        }
        self.lines_err.finish(|l| on_line(Stream::Stderr, l));
        CmdOutput {
            code,
            stdout: self.stdout,
            stderr: String::from_utf8_lossy(&self.stderr).into_owned(),
        }
    }
}

/// Splits streamed bytes into whole lines for `on_line`, keeping the unfinished tail.
struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> Self {
        LineSplitter {
            pending: Vec::new(),
        }
    }

    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&str)) {
        self.pending.extend_from_slice(data);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            emit(text.trim_end_matches(['\n', '\r']));
        }
    }

    pub fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            emit(text.trim_end_matches('\r'));
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_whatever_the_chunks() {
        let mut s = LineSplitter::new();
        let mut lines = Vec::new();
        s.push(b"ab", |l| lines.push(l.to_string()));
        s.push(b"c\nde\r\nf", |l| lines.push(l.to_string()));
        s.finish(|l| lines.push(l.to_string()));
        assert_eq!(lines, ["abc", "de", "f"]);
    }
}
