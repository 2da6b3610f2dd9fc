//! Running work across hosts: the run context, the worker pool, progress, logs and the
//! recap.

pub mod backup;
pub mod current;
pub mod fanout;
pub mod files;
pub mod interrupt;
pub mod lock;
pub mod log;
pub mod recap;
pub mod remote;
pub mod run;
pub mod snapshot;
pub mod status;
pub mod ufw;
pub mod ui;
pub mod update;
