//! Commands over SSH: one multiplexed master connection per host (openssh's native mux),
//! opened on first use, reused by every command of the run, closed at its end.

use super::{CmdOutput, Collector, RunOpts, Stream, Transport, TransportError};
use crate::ops::shell::sh_c;
use crate::ops::ssh::{SshTarget, explain_connect_error};
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Handle;

enum State {
    New,
    Connected(Arc<Session>),
    /// Connecting failed: later commands fail at once with the same reason.
    Failed(String),
    Closed,
}

pub struct SshTransport {
    target: SshTarget,
    runtime: Handle,
    state: tokio::sync::Mutex<State>,
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
    pub fn new(target: SshTarget, runtime: Handle) -> SshTransport {
        SshTransport {
            target,
            runtime,
            state: tokio::sync::Mutex::new(State::New),
        }
    }

    async fn connect(&self) -> Result<Session, String> {
        let t = &self.target;
        let mut b = SessionBuilder::default();
        b.known_hosts_check(if t.accept_new {
            KnownHosts::Add
        } else {
            KnownHosts::Strict
        })
        .connect_timeout(t.connect_timeout)
        .server_alive_interval(Duration::from_secs(15))
        .control_directory(std::env::temp_dir());
        if let Some(u) = &t.user {
            b.user(u.clone());
        }
        if let Some(p) = t.port {
            b.port(p);
        }
        if let Some(k) = &t.identity_file {
            b.keyfile(k);
        }
        if let Some(f) = &t.config_file {
            b.config_file(f);
        }
        if let Some(k) = &t.known_hosts {
            b.user_known_hosts_file(k);
        }
        // ssh's own ConnectTimeout covers TCP; this also covers a stalled handshake.
        let limit = t.connect_timeout * 3 + Duration::from_secs(5);
        match tokio::time::timeout(limit, b.connect_mux(&t.address)).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(e)) => Err(explain_connect_error(t, &error_text(&e))),
            Err(_) => Err(format!(
                "no SSH answer from {} within {}s",
                t.address,
                limit.as_secs()
            )),
        }
    }

    async fn session(&self, retry_failed: bool) -> Result<Arc<Session>, TransportError> {
        let mut state = self.state.lock().await;
        match &*state {
            State::Connected(s) => return Ok(s.clone()),
            State::Failed(m) if !retry_failed => {
                return Err(TransportError::Unreachable(m.clone()));
            }
            State::Closed => {
                return Err(TransportError::Unreachable(
                    "the connection was already closed".into(),
                ));
            }
            _ => {}
        }
        match self.connect().await {
            Ok(s) => {
                let s = Arc::new(s);
                *state = State::Connected(s.clone());
                Ok(s)
            }
            Err(m) => {
                *state = State::Failed(m.clone());
                Err(TransportError::Unreachable(m))
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
        let session = self.session(false).await?;
        // The host's own `timeout` kills the command there too, with its process group.
        // `exec` spares the login shell's extra fork (dash does not exec its last command).
        let remote = match opts.timeout {
            Some(t) => format!("exec timeout -k 5 {:.3} {}", t.as_secs_f64(), sh_c(cmd)),
            None => format!("exec {}", sh_c(cmd)),
        };
        let lost = |e: openssh::Error| {
            TransportError::Unreachable(format!("connection lost: {}", error_text(&e)))
        };
        let mut child = session
            .raw_command(&remote)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(lost)?;
        let mut out = child.stdout().take().expect("stdout is piped");
        let mut err = child.stderr().take().expect("stderr is piped");
        let writer = async {
            if let (Some(data), Some(mut pipe)) = (stdin, child.stdin().take()) {
                // A command that stops reading early is not an error; its exit code is.
                let _ = pipe.write_all(data).await;
                let _ = pipe.shutdown().await;
            }
        };
        let reader = async {
            let mut output = Collector::new(opts.stream);
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
        if let Some(t) = opts.timeout
            && (code == 124 || code == 137)
        {
            return Err(TransportError::Timeout(t));
        }
        Ok(output.finish(code, on_line))
    }
}

/// The master's pid, from the mux protocol's alive check.
async fn master_pid(session: &Session) -> Option<u32> {
    let mut conn = openssh_mux_client::Connection::connect(session.control_socket())
        .await
        .ok()?;
    conn.send_alive_check().await.ok().map(|p| p.get())
}

/// Gives a stopped master a moment to exit on its own, then terminates it.
async fn end_master(pid: u32) {
    // A zombie is gone too (daemonized masters may wait for a reaper that never comes).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    };
    for _ in 0..20 {
        if !alive() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        // SAFETY: the pid is the ssh master this transport started.
        unsafe {
            libc::kill(pid as i32, signal);
        }
        for _ in 0..100 {
            if !alive() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Resolves when the run is interrupted (Ctrl-C), so a command in flight is abandoned.
async fn interrupted() {
    while !crate::exec::interrupt::aborted() {
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
                if Instant::now() + interval > deadline || crate::exec::interrupt::aborted() {
                    return Err(TransportError::Unreachable(format!(
                        "no SSH login within {}s: {last}",
                        timeout.as_secs()
                    )));
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    fn close(&self) {
        self.runtime.block_on(async {
            let mut state = self.state.lock().await;
            if let State::Connected(session) = std::mem::replace(&mut *state, State::Closed) {
                // A stopped master exits a moment later, or never while sessions are
                // still open (after an abort): its pid lets close wait for it or end it.
                let pid = master_pid(&session).await;
                match Arc::try_unwrap(session) {
                    Ok(s) => {
                        let _ = s.close().await;
                    }
                    // Dropping the last handle also stops the master.
                    Err(shared) => drop(shared),
                }
                // A stopped master waits for its sessions; after Ctrl-C those are
                // commands still running on the host, and fleet leaves no ssh behind.
                if let Some(pid) = pid {
                    end_master(pid).await;
                }
            }
        });
    }
}
