//! Running work across hosts: the run context, the worker pool, progress, logs and the
//! recap.

pub(crate) mod current;
pub(crate) mod fanout;
pub(crate) mod interrupt;
pub(crate) mod lock;
pub(crate) mod log;
pub(crate) mod max_fail;
pub(crate) mod recap;
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod ui;
