//! Runs commands on this machine through `sh -c`: the quick start's transport, and a
//! faithful stand-in for a host in tests of everything above the transport.

use super::{CmdOutput, Collector, RunOpts, Stream, Transport, TransportError};
use crate::ops::shell::{WATCHER, WATCHER_NAME};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct LocalTransport;

enum Event {
    Data(Stream, Vec<u8>),
    Closed,
}

fn pump(stream: Stream, mut reader: impl Read, tx: mpsc::SyncSender<Event>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(Event::Data(stream, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx.send(Event::Closed);
}

/// Stops the command's whole process group: the watcher shell traps TERM and stops the
/// command's own group, so `sleep` under `sh -c` dies with it.
fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group we created.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGTERM);
    }
}

impl Transport for LocalTransport {
    fn run(
        &self,
        cmd: &str,
        opts: &RunOpts,
        stdin: Option<&[u8]>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<CmdOutput, TransportError> {
        // As on SSH hosts, a command without input runs under the watcher: when fleet
        // dies (even by SIGKILL) its stdin closes and the watcher stops the command.
        let mut sh = Command::new("sh");
        match stdin {
            None => sh.args(["-c", WATCHER, WATCHER_NAME, "0", cmd]),
            Some(_) => sh.args(["-c", cmd]),
        };
        let mut child = sh
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| TransportError::Failed(format!("cannot start sh: {e}")))?;
        let _in_flight = super::abort::Guard::new(child.id() as i32);
        // Bounded: a command that prints faster than fleet handles its lines waits
        // for fleet (the pipe fills), instead of queueing its output in fleet's memory.
        let (tx, rx) = mpsc::sync_channel(8);
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        let tx2 = tx.clone();
        std::thread::spawn(move || pump(Stream::Stdout, out, tx));
        std::thread::spawn(move || pump(Stream::Stderr, err, tx2));
        // Held until the command ends (see above); for input, written and closed.
        let _held_stdin = match (stdin, child.stdin.take()) {
            (Some(data), Some(mut pipe)) => {
                let data = data.to_vec();
                // A command that stops reading early is not an error; its exit code is.
                std::thread::spawn(move || {
                    let _ = pipe.write_all(&data);
                });
                None
            }
            (_, pipe) => pipe,
        };

        let deadline = opts.timeout.map(|t| Instant::now() + t);
        let mut output = Collector::new(opts);
        let mut open = 2;
        while open > 0 {
            let event = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                        Ok(e) => e,
                        Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= d => {
                            kill_group(child.id());
                            let _ = child.wait();
                            return Err(TransportError::Timeout(opts.timeout.unwrap_or_default()));
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(e) => e,
                    Err(_) => break,
                },
            };
            match event {
                Event::Data(which, data) => output.data(which, &data, on_line),
                Event::Closed => open -= 1,
            }
        }
        let status = child
            .wait()
            .map_err(|e| TransportError::Failed(format!("cannot wait for sh: {e}")))?;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(output.finish(code, on_line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        cmd: &str,
        timeout: Option<Duration>,
        stdin: Option<&[u8]>,
    ) -> (Result<CmdOutput, TransportError>, Vec<String>) {
        let mut lines = Vec::new();
        let opts = RunOpts {
            timeout,
            ..RunOpts::default()
        };
        let r = LocalTransport.run(cmd, &opts, stdin, &mut |s, l| {
            lines.push(format!("{s:?}:{l}"))
        });
        (r, lines)
    }

    #[test]
    fn captures_both_streams_and_the_exit_code() {
        let (r, lines) = run("echo out; echo err >&2; exit 3", None, None);
        let r = r.unwrap();
        assert_eq!(r.code, 3);
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr, "err\n");
        assert!(lines.contains(&"Stdout:out".to_string()));
        assert!(lines.contains(&"Stderr:err".to_string()));
    }

    #[test]
    fn stdin_reaches_the_command() {
        let data = vec![7u8; 3 * 1024 * 1024];
        let (r, _) = run("wc -c", None, Some(&data));
        assert_eq!(r.unwrap().stdout_text().trim(), "3145728");
    }

    #[test]
    fn a_timeout_kills_the_command_and_its_children() {
        let start = Instant::now();
        let (r, _) = run("sleep 5; echo late", Some(Duration::from_millis(200)), None);
        assert_eq!(
            r.unwrap_err(),
            TransportError::Timeout(Duration::from_millis(200))
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
