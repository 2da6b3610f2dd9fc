//! Ctrl-C, SIGTERM and `--timeout`. The first Ctrl-C stops starting hosts and lets the
//! running ones finish; a second one (or SIGTERM, SIGHUP, the timeout) aborts them:
//! commands in flight are killed and the recipe ends at its next statement. Either way
//! the recap, log and journal are still written, and the exit code says why (130, or 124
//! for the timeout).

use crate::outcome::Stop;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The first Ctrl-C. Aborting is the one flag of `transport::abort`, which the
/// transports check too.
static STOPPING: AtomicBool = AtomicBool::new(false);
static TIMED_OUT: AtomicBool = AtomicBool::new(false);

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
            if !STOPPING.swap(true, Ordering::SeqCst) {
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
    crate::transport::abort::abort();
}

/// `--timeout`: aborts the run when `limit` has passed.
pub(crate) fn start_timeout(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        if !aborted() {
            TIMED_OUT.store(true, Ordering::SeqCst);
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
    STOPPING.load(Ordering::SeqCst) || aborted()
}

/// Work in flight must end now.
pub(crate) fn aborted() -> bool {
    crate::transport::abort::aborted()
}

/// Why the run was stopped, if it was.
pub(crate) fn stop() -> Option<Stop> {
    if TIMED_OUT.load(Ordering::SeqCst) {
        Some(Stop::TimedOut)
    } else if stopping() {
        Some(Stop::Interrupted)
    } else {
        None
    }
}
