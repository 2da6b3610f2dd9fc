//! Which host and step the current worker thread is on, so that `print`, `step` and log
//! lines inside `each` know whose they are without recipes passing it around.

use std::cell::RefCell;

thread_local! {
    static HOST: RefCell<Option<String>> = const { RefCell::new(None) };
    static STEP: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` as work for `host` on this thread; the step starts empty.
pub(crate) fn with_host<R>(host: &str, f: impl FnOnce() -> R) -> R {
    let old_host = HOST.with(|h| h.replace(Some(host.to_string())));
    let old_step = STEP.with(|s| s.replace(None));
    let r = f();
    HOST.with(|h| h.replace(old_host));
    STEP.with(|s| s.replace(old_step));
    r
}

pub(crate) fn host() -> Option<String> {
    HOST.with(|h| h.borrow().clone())
}

pub(crate) fn step() -> Option<String> {
    STEP.with(|s| s.borrow().clone())
}

/// Sets the step and returns the previous one, for nesting.
pub(crate) fn replace_step(step: Option<String>) -> Option<String> {
    STEP.with(|s| s.replace(step))
}
