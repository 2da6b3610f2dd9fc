//! Thin Rhai glue: one file per group of functions a recipe can call. No domain logic
//! here; it lives in `exec/`, `inventory/` and `ops/`.

pub mod cloudinit;
pub mod files;
pub mod flow;
pub mod git;
pub mod host;
pub mod inventory;
pub mod qm;
pub mod report;
pub mod rsync;
pub mod secret;
pub mod ufw;
pub mod update;
pub mod values;

use crate::recipe::engine::ScriptCtx;
use rhai::{Engine, Module};

pub fn modules(ctx: &ScriptCtx) -> Vec<Module> {
    vec![
        host::module(ctx),
        files::module(ctx),
        flow::module(ctx),
        report::module(),
        secret::module(ctx),
        update::module(ctx),
    ]
}

/// Names of fleet's types as recipes (and `fleet api`) see them.
pub fn register_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<host::HostRef>("Host")
        .register_type_with_name::<crate::ops::remote::CmdResult>("CmdResult")
        .register_type_with_name::<crate::outcome::HostFailure>("HostError");
}
