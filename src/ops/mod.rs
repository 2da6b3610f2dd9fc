//! fleet's domain in plain Rust, no Rhai: command lines are built and output parsed by
//! pure functions, tested without a host.

pub(crate) mod access;
pub(crate) mod ansible;
pub(crate) mod apt;
pub(crate) mod backup;
pub(crate) mod capture;
pub(crate) mod catalog;
pub(crate) mod clock;
pub(crate) mod cloudinit;
pub(crate) mod facts;
pub(crate) mod files;
pub mod git;
pub(crate) mod local;
pub(crate) mod localfs;
pub(crate) mod menu;
pub(crate) mod nat;
pub(crate) mod options;
pub(crate) mod passwords;
pub(crate) mod paths;
pub(crate) mod pct;
pub(crate) mod proxmox;
pub(crate) mod proxy;
pub(crate) mod remote;
pub(crate) mod rsync;
pub(crate) mod samba;
pub mod secrets;
pub(crate) mod shell;
pub(crate) mod ssh;
pub(crate) mod sudo;
pub(crate) mod sync;
pub(crate) mod template;
pub(crate) mod terminal;
pub(crate) mod testhost;
pub(crate) mod text;
pub(crate) mod ufw;
pub(crate) mod users;
