//! Running work across hosts: the run context, the worker pool, progress, logs and the
//! recap.

pub mod current;
pub mod fanout;
pub mod interrupt;
pub mod lock;
pub mod log;
pub mod max_fail;
pub mod recap;
pub mod remote;
pub mod run;
pub mod ui;
