//! fleet's domain in plain Rust, no Rhai: command lines are built and output parsed by
//! pure functions, tested without a host.

pub mod apt;
pub mod backup;
pub mod capture;
pub mod catalog;
pub mod cloudinit;
pub mod files;
pub mod git;
pub mod localfs;
pub mod options;
pub mod paths;
pub mod proxmox;
pub mod remote;
pub mod rsync;
pub mod secrets;
pub mod shell;
pub mod ssh;
pub mod status;
pub mod template;
pub mod terminal;
pub mod text;
pub mod ufw;
