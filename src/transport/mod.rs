//! How a command reaches a host. One small trait so recipes never know whether a host
//! is this machine (`local`) or a server over SSH (`ssh`).

pub(crate) mod abort;
mod local;
mod master;
mod ssh;

pub(crate) use local::LocalTransport;
pub(crate) use ssh::SshTransport;

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct RunOpts {
    /// Kill the command (and everything it started) after this long.
    pub(crate) timeout: Option<Duration>,
    /// Report output lines as they arrive (off for binary downloads).
    pub(crate) stream: bool,
    /// At most this many bytes of each stream are kept (its head and tail); the rest is
    /// only streamed and counted. None keeps everything (downloads, whose bytes are the
    /// point).
    pub(crate) keep: Option<usize>,
}

/// What a run keeps of one command's output by default (fleet.toml `output_limit`).
pub(crate) const DEFAULT_KEEP: usize = 1024 * 1024;

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts {
            timeout: None,
            stream: true,
            keep: Some(DEFAULT_KEEP),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CmdOutput {
    /// Exit code; 128 + signal number when the command was killed by a signal.
    pub(crate) code: i32,
    /// Raw bytes: downloads are binary. Over the keep limit: head, a marker, tail.
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
    /// Bytes left out of `stdout` / `stderr` by the keep limit.
    pub(crate) stdout_dropped: u64,
    pub(crate) stderr_dropped: u64,
}

impl CmdOutput {
    pub(crate) fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TransportError {
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
pub(crate) trait Transport: Send + Sync {
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

    /// A connection process (an ssh master) is running for the host.
    fn holds_master(&self) -> bool {
        false
    }

    /// Ends the connection process if no command is in flight on it, so that the next
    /// command opens it again with the same options; true when none is left running.
    /// The run's bound on open masters uses it for hosts whose work has ended.
    fn close_idle(&self) -> bool {
        false
    }

    /// The control socket of the host's master connection (opened if it is not yet),
    /// for programs fleet runs on this machine that reach the host over it (`h.sync`'s
    /// rsync); None for a host that is this machine.
    fn control_socket(&self) -> Result<Option<std::path::PathBuf>, TransportError> {
        Ok(None)
    }
}

/// Gathers a command's output as it arrives: keeps a bounded head and tail of each
/// stream, and hands whole lines to `on_line` (stdout only when `stream`; stderr
/// always, it tells progress).
pub(crate) struct Collector {
    stream: bool,
    stdout: Bounded,
    stderr: Bounded,
    lines_out: LineSplitter,
    lines_err: LineSplitter,
}

impl Collector {
    pub(crate) fn new(opts: &RunOpts) -> Self {
        Collector {
            stream: opts.stream,
            stdout: Bounded::new(opts.keep),
            stderr: Bounded::new(opts.keep),
            lines_out: LineSplitter::new(),
            lines_err: LineSplitter::new(),
        }
    }

    pub(crate) fn data(
        &mut self,
        which: Stream,
        data: &[u8],
        on_line: &mut dyn FnMut(Stream, &str),
    ) {
        match which {
            Stream::Stdout => {
                if self.stream {
                    self.lines_out.push(data, |l| on_line(Stream::Stdout, l));
                }
                self.stdout.push(data);
            }
            Stream::Stderr => {
                self.lines_err.push(data, |l| on_line(Stream::Stderr, l));
                self.stderr.push(data);
            }
        }
    }

    /// Flushes unfinished last lines and returns the output with `code`.
    pub(crate) fn finish(mut self, code: i32, on_line: &mut dyn FnMut(Stream, &str)) -> CmdOutput {
        if self.stream {
            self.lines_out.finish(|l| on_line(Stream::Stdout, l));
        }
        self.lines_err.finish(|l| on_line(Stream::Stderr, l));
        let (stdout, stdout_dropped) = self.stdout.into_bytes();
        let (stderr, stderr_dropped) = self.stderr.into_bytes();
        CmdOutput {
            code,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_dropped,
            stderr_dropped,
        }
    }
}

/// One stream's bytes: all of them, or at most `limit` as the first half and a ring of
/// the last half, with a count of what fell between.
struct Bounded {
    limit: Option<usize>,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl Bounded {
    fn new(limit: Option<usize>) -> Self {
        Bounded {
            limit,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        let Some(limit) = self.limit else {
            self.head.extend_from_slice(data);
            return;
        };
        let head_room = (limit / 2).saturating_sub(self.head.len());
        let into_head = head_room.min(data.len());
        self.head.extend_from_slice(&data[..into_head]);
        data = &data[into_head..];
        let tail_limit = limit - limit / 2;
        if data.len() >= tail_limit {
            self.dropped += (self.tail.len() + data.len() - tail_limit) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - tail_limit..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(tail_limit);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(data);
    }

    /// The kept bytes, with a marker line where bytes were left out.
    fn into_bytes(self) -> (Vec<u8>, u64) {
        let mut out = self.head;
        if self.dropped > 0 {
            out.extend_from_slice(
                format!(
                    "\n[fleet: {} bytes of output left out here; the limit is output_limit in fleet.toml]\n",
                    self.dropped
                )
                .as_bytes(),
            );
        }
        out.extend(self.tail);
        (out, self.dropped)
    }
}

/// Splits streamed bytes into whole lines for `on_line`, keeping the unfinished tail.
/// Each byte is looked at once (no rescans of the pending tail), and a line longer than
/// `MAX_LINE` is handed on in pieces, so no output grows memory or time without bound.
struct LineSplitter {
    pending: Vec<u8>,
}

const MAX_LINE: usize = 64 * 1024;

impl LineSplitter {
    pub(crate) fn new() -> Self {
        LineSplitter {
            pending: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, data: &[u8], mut emit: impl FnMut(&str)) {
        let mut rest = data;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let line = &rest[..pos];
            if self.pending.is_empty() {
                emit_line(line, &mut emit);
            } else {
                self.pending.extend_from_slice(line);
                emit_line(&self.pending, &mut emit);
                self.pending.clear();
            }
            rest = &rest[pos + 1..];
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            let piece: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            emit_line(&piece, &mut emit);
        }
    }

    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            emit_line(&self.pending, &mut emit);
            self.pending.clear();
        }
    }
}

fn emit_line(line: &[u8], emit: &mut impl FnMut(&str)) {
    let text = String::from_utf8_lossy(line);
    emit(text.trim_end_matches('\r'));
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

    #[test]
    fn a_long_line_without_newline_is_split_in_linear_time() {
        // 80 MB in 64 KiB chunks: a rescan of the pending bytes per chunk would take
        // minutes (it did); each byte looked at once takes well under a second.
        let mut s = LineSplitter::new();
        let chunk = vec![b'x'; 64 * 1024];
        let (mut pieces, mut bytes) = (0, 0);
        for _ in 0..(80 * 1024 * 1024 / chunk.len()) {
            s.push(&chunk, |l| {
                pieces += 1;
                bytes += l.len();
            });
        }
        s.finish(|l| bytes += l.len());
        assert_eq!(bytes, 80 * 1024 * 1024);
        assert!(pieces >= 80 * 1024 * 1024 / MAX_LINE - 1);
    }

    #[test]
    fn output_over_the_limit_keeps_head_and_tail() {
        let mut b = Bounded::new(Some(10));
        b.push(b"0123");
        b.push(b"456789abcdef");
        b.push(b"ghij");
        let (bytes, dropped) = b.into_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(dropped, 20 - 10);
        assert!(text.starts_with("01234\n[fleet: 10 bytes"), "{text}");
        assert!(text.ends_with("]\nfghij"), "{text}");
        let mut all = Bounded::new(None);
        all.push(&[7; 100]);
        assert_eq!(all.into_bytes(), (vec![7; 100], 0));
        let mut small = Bounded::new(Some(10));
        small.push(b"abc");
        assert_eq!(small.into_bytes(), (b"abc".to_vec(), 0));
    }
}
