//! Commands over SSH: one multiplexed master connection per host (started by
//! `master`, spoken to through openssh's native mux), opened on first use, reused by
//! every command of the run, closed at its end, or earlier by `close_idle` when the
//! run's bound on open masters needs the room (the next command opens it again).

use super::master::Master;
use super::{CmdOutput, Collector, RunOpts, Stream, Transport, TransportError};
use crate::ops::shell::remote_line;
use crate::ops::ssh::{SshTarget, explain_connect_error};
use openssh::{Session, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Handle;

enum State {
    New,
    Connected(Arc<Session>, Master),
    /// Connecting failed: later commands fail at once with the same reason.
    Failed(ConnectError),
    Closed,
}

crate::error::message_error!(
    /// Why the connection to a host could not be made: ssh's words explained for the
    /// user (`ops::ssh::explain_connect_error`); every command on the host fails with it
    /// as `Unreachable`.
    ConnectError
);

pub(crate) struct SshTransport {
    target: SshTarget,
    runtime: Handle,
    state: tokio::sync::Mutex<State>,
    /// Commands (and control-socket users) on the host right now: a master with one in
    /// flight is never closed by `close_idle`.
    in_flight: AtomicUsize,
    /// A master is running (read without the state lock: the warm path stays cheap).
    open: AtomicBool,
}

/// Counts a use of the host's connection while it lasts.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Extra time the local side waits beyond a command's timeout for the host's own
/// `timeout` to kill it and report back.
const TIMEOUT_GRACE: Duration = Duration::from_secs(10);

fn error_text(e: &openssh::Error) -> String {
    match e {
        openssh::Error::Connect(io) | openssh::Error::Master(io) => io.to_string(),
        other => other.to_string(),
    }
}

impl SshTransport {
    pub(crate) fn new(target: SshTarget, runtime: Handle) -> SshTransport {
        SshTransport {
            target,
            runtime,
            state: tokio::sync::Mutex::new(State::New),
            in_flight: AtomicUsize::new(0),
            open: AtomicBool::new(false),
        }
    }

    async fn connect(&self) -> Result<(Session, Master), ConnectError> {
        let t = &self.target;
        // ssh's own ConnectTimeout covers TCP; this also covers a stalled handshake.
        let limit = t.connect_timeout * 3 + Duration::from_secs(5);
        let master = Master::start(t, limit)
            .await
            .map_err(|said| ConnectError(explain_connect_error(t, &said.to_string())))?;
        let session = Session::resume_mux(
            master.control.clone().into_boxed_path(),
            Some(master.log.clone().into_boxed_path()),
        );
        Ok((session, master))
    }

    async fn session(&self, retry_failed: bool) -> Result<Arc<Session>, TransportError> {
        let mut state = self.state.lock().await;
        match &*state {
            State::Connected(s, _) => return Ok(s.clone()),
            State::Failed(m) if !retry_failed => {
                return Err(TransportError::Unreachable(m.to_string()));
            }
            State::Closed => {
                return Err(TransportError::Unreachable(
                    "the connection was already closed".into(),
                ));
            }
            _ => {}
        }
        match self.connect().await {
            Ok((s, master)) => {
                let s = Arc::new(s);
                *state = State::Connected(s.clone(), master);
                self.open.store(true, Ordering::SeqCst);
                Ok(s)
            }
            Err(e) => {
                let message = e.to_string();
                *state = State::Failed(e);
                Err(TransportError::Unreachable(message))
            }
        }
    }

    async fn exec(
        &self,
        cmd: &str,
        opts: &RunOpts,
        stdin: Option<&[u8]>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<CmdOutput, TransportError> {
        let _in_flight = InFlight::enter(&self.in_flight);
        let session = self.session(false).await?;
        let remote = remote_line(cmd, opts.timeout, stdin.is_some());
        let lost = |e: openssh::Error| {
            TransportError::Unreachable(format!("connection lost: {}", error_text(&e)))
        };
        let mut child = session
            .raw_command(&remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(lost)?;
        let mut out = child.stdout().take().expect("stdout is piped");
        let mut err = child.stderr().take().expect("stderr is piped");
        // Held until the command has ended: its closing is the watcher's stop signal,
        // also when this future is dropped (abort) or fleet dies.
        let mut held_stdin = child.stdin().take();
        let writer = async {
            if let Some(data) = stdin
                && let Some(mut pipe) = held_stdin.take()
            {
                // A command that stops reading early is not an error; its exit code is.
                let _ = pipe.write_all(data).await;
                let _ = pipe.shutdown().await;
            }
        };
        let reader = async {
            let mut output = Collector::new(opts);
            let (mut buf_out, mut buf_err) = (vec![0u8; 64 * 1024], vec![0u8; 16 * 1024]);
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                tokio::select! {
                    r = out.read(&mut buf_out), if out_open => match r {
                        Ok(0) | Err(_) => out_open = false,
                        Ok(n) => output.data(Stream::Stdout, &buf_out[..n], on_line),
                    },
                    r = err.read(&mut buf_err), if err_open => match r {
                        Ok(0) | Err(_) => err_open = false,
                        Ok(n) => output.data(Stream::Stderr, &buf_err[..n], on_line),
                    },
                }
            }
            output
        };
        let ((), output) = tokio::join!(writer, reader);
        let code = match child.wait().await {
            Ok(status) => status.code().unwrap_or(255),
            // The mux reports exit 127 as an error; for `sh -c` it is "command not found".
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => 127,
            // No exit status: killed by a signal on the host, or the host is gone.
            Err(openssh::Error::RemoteProcessTerminated) => {
                if let Err(e) = session.check().await {
                    return Err(lost(e));
                }
                255
            }
            Err(e) => return Err(lost(e)),
        };
        drop(held_stdin);
        if let Some(t) = opts.timeout
            && (code == 124 || code == 137)
        {
            return Err(TransportError::Timeout(t));
        }
        Ok(output.finish(code, on_line))
    }
}

/// Resolves when the run is interrupted (Ctrl-C), so a command in flight is abandoned.
async fn interrupted() {
    while !super::abort::aborted() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Transport for SshTransport {
    fn run(
        &self,
        cmd: &str,
        opts: &RunOpts,
        stdin: Option<&[u8]>,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<CmdOutput, TransportError> {
        self.runtime.block_on(async {
            let work = self.exec(cmd, opts, stdin, on_line);
            let limit = opts.timeout.map(|t| t + TIMEOUT_GRACE);
            tokio::select! {
                r = async {
                    match limit {
                        Some(l) => tokio::time::timeout(l, work)
                            .await
                            .unwrap_or(Err(TransportError::Timeout(opts.timeout.unwrap_or_default()))),
                        None => work.await,
                    }
                } => r,
                () = interrupted() => Err(TransportError::Failed("interrupted".into())),
            }
        })
    }

    fn wait_ready(&self, timeout: Duration, interval: Duration) -> Result<(), TransportError> {
        self.runtime.block_on(async {
            let deadline = Instant::now() + timeout;
            loop {
                let last = match self.session(true).await {
                    Ok(_) => return Ok(()),
                    Err(e) => e.to_string(),
                };
                if Instant::now() + interval > deadline || super::abort::aborted() {
                    return Err(TransportError::Unreachable(format!(
                        "no SSH login within {}s: {last}",
                        timeout.as_secs()
                    )));
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    fn control_socket(&self) -> Result<Option<std::path::PathBuf>, TransportError> {
        self.runtime.block_on(async {
            let _in_flight = InFlight::enter(&self.in_flight);
            self.session(false).await?;
            match &*self.state.lock().await {
                State::Connected(_, master) => Ok(Some(master.control.clone())),
                _ => Err(TransportError::Unreachable(
                    "the connection was already closed".into(),
                )),
            }
        })
    }

    fn close(&self) {
        self.runtime.block_on(async {
            let mut state = self.state.lock().await;
            self.open.store(false, Ordering::SeqCst);
            if let State::Connected(session, mut master) =
                std::mem::replace(&mut *state, State::Closed)
            {
                // Sessions still open (commands abandoned after an abort) end with the
                // master; their watchers on the host then stop what is left there.
                drop(session);
                master.stop().await;
            }
        });
    }

    fn holds_master(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    fn close_idle(&self) -> bool {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return false;
        }
        // Held by a command that is connecting: busy, not idle.
        let Ok(mut state) = self.state.try_lock() else {
            return false;
        };
        // A command that started after the first look waits for the lock and then
        // connects anew; one that is past it keeps its master.
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return false;
        }
        match std::mem::replace(&mut *state, State::New) {
            State::Connected(session, mut master) => {
                self.open.store(false, Ordering::SeqCst);
                drop(session);
                self.runtime.block_on(master.stop());
                true
            }
            // A host that could not be reached stays so; nothing runs for it.
            failed @ State::Failed(_) => {
                *state = failed;
                true
            }
            State::Closed => {
                *state = State::Closed;
                true
            }
            State::New => true,
        }
    }
}
