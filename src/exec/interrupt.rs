//! Ctrl-C and SIGTERM: stop starting hosts, kill the commands in flight, and still
//! print the recap and write the log, then exit 130.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Process groups of local commands in flight, killed on interrupt.
fn running() -> &'static Mutex<HashSet<i32>> {
    static RUNNING: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();
    RUNNING.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Installs the handler once; a second Ctrl-C while the recap is written is ignored.
pub fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            INTERRUPTED.store(true, Ordering::SeqCst);
            for pgid in running().lock().unwrap().iter() {
                // SAFETY: signals a process group fleet started for a command.
                unsafe {
                    libc::kill(-pgid, libc::SIGTERM);
                }
            }
        });
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Registers a command's process group while it runs; a group started after an
/// interrupt is killed at once.
pub struct Guard(i32);

impl Guard {
    pub fn new(pgid: i32) -> Guard {
        running().lock().unwrap().insert(pgid);
        if interrupted() {
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
        running().lock().unwrap().remove(&self.0);
    }
}
