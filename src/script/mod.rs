//! Thin Rhai glue: one file per Rhai namespace (the global functions of `host`, `files`,
//! `flow`, `report`, `secret`, `lifecycle` and `sync`; the static modules `ansible::`, `apt::`, `ask::`,
//! `catalog::`, `cloudinit::`, `git::`, `inventory::`, `keys::`, `nat::`, `passwords::`, `pct::`,
//! `proxy::`, `qm::`,
//! `rsync::`, `samba::`, `tls::`, `ufw::`, `users::`, and
//! `local::`, `json::`, `csv::` with `now`/`timestamp`/`duration` of `local`), all registered
//! by `register_all`. No domain logic here; it lives in `exec/`, `inventory/` and `ops/`.

pub(crate) mod ansible;
pub(crate) mod apt;
pub(crate) mod ask;
pub(crate) mod catalog;
pub(crate) mod cloudinit;
pub(crate) mod files;
pub(crate) mod flow;
pub(crate) mod git;
pub(crate) mod glue;
pub(crate) mod host;
pub(crate) mod inventory;
pub(crate) mod keys;
pub(crate) mod lifecycle;
pub(crate) mod local;
pub(crate) mod nat;
pub(crate) mod passwords;
pub(crate) mod pct;
pub(crate) mod proxy;
pub(crate) mod qm;
pub(crate) mod rsync;
pub(crate) mod samba;
pub(crate) mod secret;
pub(crate) mod sync;
pub(crate) mod table;
pub(crate) mod testing;
pub(crate) mod ufw;
pub(crate) mod users;
pub(crate) mod values;

use crate::recipe::engine::ScriptCtx;
use crate::recipe::resolver::StdlibResolver;
use glue::function;
use rhai::{Engine, FuncRegistration, Module};

/// Every function, module and type a recipe can reach: the one place that lists them.
pub(crate) fn register_all(engine: &mut Engine, ctx: &ScriptCtx, modules: StdlibResolver) {
    for module in [
        host::module(ctx),
        files::module(ctx),
        flow::module(ctx),
        table::module(),
        secret::module(ctx),
        lifecycle::module(ctx),
        sync::module(ctx),
        local::clock_module(),
        imports(modules),
    ] {
        engine.register_global_module(module.into());
    }
    for (name, module) in [
        ("git", git::module(ctx)),
        ("rsync", rsync::module(ctx)),
        ("qm", qm::module(ctx)),
        ("pct", pct::module(ctx)),
        ("passwords", passwords::module(ctx)),
        ("cloudinit", cloudinit::module(ctx)),
        ("inventory", inventory::module(ctx)),
        ("ufw", ufw::module(ctx)),
        ("users", users::module(ctx)),
        ("samba", samba::module(ctx)),
        ("nat", nat::module(ctx)),
        ("proxy", proxy::module(ctx)),
        ("tls", proxy::tls_module(ctx)),
        ("catalog", catalog::module(ctx)),
        ("ansible", ansible::module(ctx)),
        ("apt", apt::module(ctx)),
        ("ask", ask::module(ctx)),
        ("keys", keys::module(ctx)),
        ("local", local::module(ctx)),
        ("json", local::json_module()),
        ("csv", local::csv_module(ctx)),
    ] {
        engine.register_static_module(name, module.into());
    }
    register_types(engine);
}

/// `module_exists`, for recipes with optional hooks.
fn imports(modules: StdlibResolver) -> Module {
    let mut m = Module::new();
    function!(
        &mut m,
        "module_exists",
        ["name: &str", "bool"],
        "Whether `import \"name\"` finds a module: the project's `stdlib/name.rhai` or a built-in one. For optional hooks: `if module_exists(\"configure\") { import \"configure\" as c; c::apply(h); }`.",
        move |name: &str| modules.exists(name)
    );
    m
}

/// Names of fleet's types as recipes (and `fleet api`) see them.
fn register_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<host::HostRef>("Host")
        .register_type_with_name::<crate::ops::remote::CmdResult>("CmdResult")
        .register_type_with_name::<crate::outcome::HostError>("HostError");
}
