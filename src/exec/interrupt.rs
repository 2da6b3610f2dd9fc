//! Ctrl-C, SIGTERM and `--timeout`. The first Ctrl-C stops starting hosts and lets the
//! running ones finish; a second one (or SIGTERM, SIGHUP, the timeout) aborts them:
//! commands in flight are killed and the recipe ends at its next statement. Either way
//! the recap, log and journal are still written, and the exit code says why (130, or 124
//! for the timeout).

use crate::outcome::Stop;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

const RUNNING: u8 = 0;
const STOPPING: u8 = 1;
const ABORTED: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(RUNNING);
static TIMED_OUT: AtomicU8 = AtomicU8::new(0);

/// Installs the handlers once per process: Ctrl-C stops in two steps, SIGTERM and SIGHUP
/// (a service manager, a closed terminal, `kill`) abort at once, since nobody is there
/// to press Ctrl-C a second time.
pub(crate) fn install() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        use signal_hook::consts::{SIGHUP, SIGTERM};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP]) {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    let name = if signal == SIGTERM {
                        "SIGTERM"
                    } else {
                        "SIGHUP"
                    };
                    eprintln!("{name}: stopping commands in flight");
                    abort();
                }
            });
        }
        let _ = ctrlc::set_handler(|| {
            if LEVEL.load(Ordering::SeqCst) == RUNNING {
                LEVEL.store(STOPPING, Ordering::SeqCst);
                eprintln!(
                    "interrupted: no new hosts are started, running ones finish \
                     (Ctrl-C again to stop them now)"
                );
            } else {
                abort();
            }
        });
    });
}

/// Stops everything now: the second Ctrl-C, or the run's timeout.
pub(crate) fn abort() {
    LEVEL.store(ABORTED, Ordering::SeqCst);
    crate::transport::abort::abort();
}

/// `--timeout`: aborts the run when `limit` has passed.
pub(crate) fn start_timeout(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        if LEVEL.load(Ordering::SeqCst) != ABORTED {
            TIMED_OUT.store(1, Ordering::SeqCst);
            eprintln!(
                "timeout: the run reached its --timeout of {}; stopping it",
                humantime::format_duration(limit)
            );
            abort();
        }
    });
}

/// No new hosts may start.
pub(crate) fn stopping() -> bool {
    LEVEL.load(Ordering::SeqCst) >= STOPPING
}

/// Work in flight must end now.
pub(crate) fn aborted() -> bool {
    LEVEL.load(Ordering::SeqCst) == ABORTED
}

/// Why the run was stopped, if it was.
pub(crate) fn stop() -> Option<Stop> {
    if TIMED_OUT.load(Ordering::SeqCst) == 1 {
        Some(Stop::TimedOut)
    } else if stopping() {
        Some(Stop::Interrupted)
    } else {
        None
    }
}
