//! Stopping commands in flight: the run (exec::interrupt) decides when, this layer only
//! keeps the flag that transports check and the local process groups to kill, so the
//! transports depend on nothing above them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static ABORTED: AtomicBool = AtomicBool::new(false);

/// Commands in flight must end now: sets the flag and kills local process groups.
pub(crate) fn abort() {
    ABORTED.store(true, Ordering::SeqCst);
    kill_in_flight();
}

/// Whether [`abort`] was called: a command in flight is abandoned, a wait gives up.
pub(crate) fn aborted() -> bool {
    ABORTED.load(Ordering::SeqCst)
}

/// Process groups of local commands in flight, killed on abort.
fn in_flight() -> &'static Mutex<HashSet<i32>> {
    static SET: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

fn kill_in_flight() {
    for pgid in in_flight().lock().unwrap().iter() {
        // SAFETY: signals a process group fleet started for a command.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
    }
}

/// Registers a command's process group while it runs; a group started after an abort is
/// killed at once.
pub(crate) struct Guard(i32);

impl Guard {
    pub(crate) fn new(pgid: i32) -> Guard {
        in_flight().lock().unwrap().insert(pgid);
        if aborted() {
            // SAFETY: as above.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
        }
        Guard(pgid)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        in_flight().lock().unwrap().remove(&self.0);
    }
}
