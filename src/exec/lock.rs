//! One run at a time per project: an exclusive OS file lock on `.fleet/lock`. The kernel
//! releases it when fleet exits however it exits, so a crash or Ctrl-C never leaves a
//! stale lock. The file also says who holds it, for the run that has to wait.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) user: String,
    pub(crate) host: String,
    pub(crate) recipe: String,
    pub(crate) started: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` started {} by {}@{} (pid {})",
            self.recipe, self.started, self.user, self.host, self.pid
        )
    }
}

/// Held for the whole run; dropping it (or exiting) releases the lock.
#[derive(Debug)]
pub(crate) struct ProjectLock {
    _file: File,
}

fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Takes the lock in `dir` (the project's `.fleet/`), waiting up to `wait` for another run.
pub(crate) fn acquire(dir: &Path, recipe: &str, wait: Duration) -> Result<ProjectLock> {
    // `.fleet/` holds the logs: private when fleet creates it.
    crate::ops::localfs::create_private_dir(dir).map_err(Error::write(dir))?;
    let path = dir.join("lock");
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(Error::write(&path))?;
    let deadline = Instant::now() + wait;
    loop {
        if try_lock(&file).map_err(Error::write(&path))? {
            break;
        }
        if Instant::now() >= deadline {
            let mut text = String::new();
            let _ = (&file).read_to_string(&mut text);
            let holder = serde_json::from_str::<Holder>(&text)
                .map(|h| h.to_string())
                .unwrap_or_else(|_| "another fleet run".to_string());
            return Err(Error::Locked(format!(
                "another run holds the lock of this project: {holder}; \
                 {} (use --lock-wait SECS to wait for it)",
                if wait.is_zero() {
                    "not waiting".to_string()
                } else {
                    format!("waited {}s", wait.as_secs())
                }
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let holder = Holder {
        pid: std::process::id(),
        user: crate::sysinfo::run_user(),
        host: crate::sysinfo::hostname(),
        recipe: recipe.to_string(),
        started: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(
        serde_json::to_string(&holder)
            .unwrap_or_default()
            .as_bytes(),
    );
    let _ = file.flush();
    Ok(ProjectLock { _file: file })
}

/// Who holds the lock in `dir` now, without touching the lock (taking it, even for a
/// moment, could refuse a run starting then): the process named in the file, when it
/// still has the lock file open. None when nobody holds it or the file says nothing.
pub(crate) fn current_holder(dir: &Path) -> Option<Holder> {
    let path = dir.join("lock");
    let mut text = String::new();
    File::open(&path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let holder: Holder = serde_json::from_str(&text).ok()?;
    let lock = path.canonicalize().ok()?;
    let held = match std::fs::read_dir(format!("/proc/{}/fd", holder.pid)) {
        Ok(fds) => fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == lock)),
        // Another user's process: its open files are not ours to see; a fleet with
        // that pid is taken to be the holder.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            std::fs::read_to_string(format!("/proc/{}/comm", holder.pid))
                .is_ok_and(|comm| comm.trim_end() == "fleet")
        }
        Err(_) => false,
    };
    held.then_some(holder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_details() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "update", Duration::ZERO).unwrap();
        let err = acquire(dir.path(), "backup", Duration::from_millis(200)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`update` started"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("waited 0s"), "{text}");
        assert_eq!(
            crate::outcome::exit_code(&crate::outcome::Ending::Error(&err)),
            75
        );
        drop(first);
        acquire(dir.path(), "backup", Duration::ZERO).unwrap();
    }

    #[test]
    fn the_holder_is_known_while_it_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert!(current_holder(dir.path()).is_none());
        let held = acquire(dir.path(), "update", Duration::ZERO).unwrap();
        let holder = current_holder(dir.path()).expect("held");
        assert_eq!(holder.recipe, "update");
        assert_eq!(holder.pid, std::process::id());
        drop(held);
        // The file still names the last holder; it no longer holds the lock.
        assert!(current_holder(dir.path()).is_none());
    }
}
