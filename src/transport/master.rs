//! The one ssh master connection per host, started by fleet itself rather than by the
//! openssh crate: in the foreground (no `-f`, so it never becomes a daemon), in its own
//! process group (a Ctrl-C at the terminal is fleet's to handle, not ssh's), with the
//! kernel's parent-death signal (so `kill -9` of fleet ends it too), and `--` before
//! the destination. Its control sockets live in a folder of this process that the next
//! run removes if this one could not.

use crate::ops::ssh::SshTarget;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

const DIR_PREFIX: &str = "fleet-ssh.";

/// A running master: its process, control socket and log.
pub(crate) struct Master {
    child: Child,
    pub(crate) control: PathBuf,
    pub(crate) log: PathBuf,
}

/// Guards the control folder: made (0700) before a master's log is created in it,
/// removed only while empty, never both at once.
static DIR_LOCK: Mutex<()> = Mutex::new(());

/// This process's folder of control sockets; stale folders of fleet processes that no
/// longer exist are removed the first time.
fn control_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir();
        remove_stale_dirs(&base);
        base.join(format!("{DIR_PREFIX}{}", std::process::id()))
    })
}

/// Folders `fleet-ssh.<pid>` whose process is gone (killed before it could clean up).
pub(crate) fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Why an ssh master did not start: ssh's own message, or why there is none.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MasterError {
    #[error("cannot create ssh control folder {}: {source}", dir.display())]
    ControlFolder {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run ssh: {0}")]
    Spawn(std::io::Error),
    /// What ssh wrote to its log before it exited.
    #[error("{0}")]
    Said(String),
    #[error("ssh exited with {0} without a message")]
    Silent(std::process::ExitStatus),
    #[error("no SSH answer from {address} within {secs}s")]
    NoAnswer { address: String, secs: u64 },
}

/// A master's log, created in the control folder (made again if the last master to
/// close removed it).
fn create_log(n: u32) -> Result<(PathBuf, std::fs::File), MasterError> {
    let _guard = DIR_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = control_dir();
    crate::ops::localfs::create_private_dir(dir).map_err(|source| MasterError::ControlFolder {
        dir: dir.to_path_buf(),
        source,
    })?;
    let log = dir.join(format!("{n}.log"));
    let file = std::fs::File::create(&log).map_err(|source| MasterError::Log {
        path: log.clone(),
        source,
    })?;
    Ok((log, file))
}

/// Removes this process's control folder once its masters are gone (`remove_dir` fails
/// while another host's log or socket is still there).
fn remove_dir_if_empty() {
    let _guard = DIR_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _ = std::fs::remove_dir(control_dir());
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts `cmd` from one thread that lives as long as fleet: the parent-death signal
/// follows the thread that forked, and run threads come and go.
fn spawn_from_lasting_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("ssh-masters".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the thread that starts ssh masters");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("the ssh master thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("the ssh master thread is gone"))?
}

impl Master {
    /// Starts the master and waits until it is logged in (its control socket appears)
    /// or has failed; `Err` is ssh's own message, or why there is none.
    pub(crate) async fn start(target: &SshTarget, limit: Duration) -> Result<Master, MasterError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let (log, log_file) = create_log(n)?;
        let control = control_dir().join(n.to_string());
        let mut cmd = Command::new("ssh");
        cmd.args(target.master_args(&control, &log))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // What ssh says before it reads `-E` (a bad option) lands in the log too.
            .stderr(log_file)
            .process_group(0);
        let parent = std::process::id() as i32;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                // fleet died before the signal was armed.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = spawn_from_lasting_thread(cmd).map_err(MasterError::Spawn)?;
        let mut master = Master {
            child,
            control,
            log,
        };
        let deadline = Instant::now() + limit;
        loop {
            match master.child.try_wait() {
                Ok(Some(status)) => {
                    let said = std::fs::read_to_string(&master.log).unwrap_or_default();
                    master.remove_files();
                    return Err(if said.trim().is_empty() {
                        MasterError::Silent(status)
                    } else {
                        MasterError::Said(said)
                    });
                }
                Ok(None) if master.control.exists() => return Ok(master),
                Ok(None) | Err(_) => {}
            }
            if Instant::now() >= deadline || super::abort::aborted() {
                master.stop().await;
                return Err(MasterError::NoAnswer {
                    address: target.address.clone(),
                    secs: limit.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Ends the master (and with it every session still open on the host) and reaps it.
    pub(crate) async fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // ssh ends within a few milliseconds of SIGTERM: short waits first (masters
        // closed for the run's bound are closed on a worker's way to its next host).
        'signals: for signal in [libc::SIGTERM, libc::SIGKILL] {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            // SAFETY: the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, signal);
            }
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut wait = Duration::from_micros(250);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    break 'signals;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(10));
            }
        }
        self.remove_files();
    }

    fn remove_files(&self) {
        let _ = std::fs::remove_file(&self.control);
        let _ = std::fs::remove_file(&self.log);
        remove_dir_if_empty();
    }
}

/// A transport dropped without `close` (an early error) still ends its master.
impl Drop for Master {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let _ = self.child.wait();
            self.remove_files();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_control_folders_of_dead_processes_are_removed() {
        let base = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22: this pid never exists.
        let dead = base.path().join(format!("{DIR_PREFIX}99999999"));
        let live = base
            .path()
            .join(format!("{DIR_PREFIX}{}", std::process::id()));
        let other = base.path().join("fleet-ssh.not-a-pid");
        for d in [&dead, &live, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(dead.join("0.log"), "x").unwrap();
        remove_stale_dirs(base.path());
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }
}
