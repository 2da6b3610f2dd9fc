//! The `catalog` module of recipes: the project's apps in dependency order. Work is
//! done by `ops::catalog`.

use super::glue::{module_function, runtime_error};
use super::values::from_rhai;
use crate::ops::catalog::{self, Catalog};
use crate::recipe::engine::ScriptCtx;
use rhai::{
    Array, Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext, Position,
};

/// The project's catalog, read now (a recipe may have just updated it with git).
pub(crate) fn load_catalog(c: &ScriptCtx, pos: Position) -> Result<Catalog, Box<EvalAltResult>> {
    let run = c.run()?;
    let path = run.options.root.join(catalog::INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        runtime_error(
            format!(
                "cannot read the app catalog {}: {e}",
                crate::project::display_path(&path)
            ),
            pos,
        )
    })?;
    Catalog::parse(catalog::INDEX, &text).map_err(|e| runtime_error(e, pos))
}

pub(super) fn names(
    list: &Array,
    what: &str,
    pos: Position,
) -> Result<Vec<String>, Box<EvalAltResult>> {
    from_rhai(&Dynamic::from_array(list.clone()), what, pos)
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "apps",
        ["names: Array", "Array"],
        "The chosen apps of the project's catalog (catalog/index.json) and everything they depend on, dependencies first, each once: [#{ name, role, description, ports: [#{ port, proto, scope }] }]. An unknown app or a dependency cycle is an error that names it; so is any bad field of the catalog.",
        move |ctx: NativeCallContext, chosen: Array| -> Result<Array, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let chosen = names(&chosen, "catalog::apps", pos)?;
            let catalog = load_catalog(&c, pos)?;
            let apps = catalog
                .resolve(&chosen)
                .map_err(|e| runtime_error(e, pos))?;
            Ok(apps
                .into_iter()
                .map(|a| {
                    let mut m = Map::new();
                    m.insert("name".into(), a.name.clone().into());
                    m.insert("role".into(), a.role.clone().into());
                    m.insert("description".into(), a.description.clone().into());
                    let ports: Array = a
                        .ports
                        .iter()
                        .map(|p| {
                            let mut pm = Map::new();
                            pm.insert("port".into(), p.ports.to_string().into());
                            pm.insert("proto".into(), p.proto.as_str().into());
                            pm.insert("scope".into(), p.scope.as_str().into());
                            Dynamic::from_map(pm)
                        })
                        .collect();
                    m.insert("ports".into(), Dynamic::from_array(ports));
                    Dynamic::from_map(m)
                })
                .collect())
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "list",
        ["Array"],
        "Every app of the project's catalog (catalog/index.json), in its order: [#{ name, description, depends }]; [] when the project has no catalog (e.g. for a menu of apps).",
        move |ctx: NativeCallContext| -> Result<Array, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            if !c.run()?.options.root.join(catalog::INDEX).exists() {
                return Ok(Array::new());
            }
            Ok(load_catalog(&c, pos)?
                .apps
                .iter()
                .map(|a| {
                    let mut m = Map::new();
                    m.insert("name".into(), a.name.clone().into());
                    m.insert("description".into(), a.description.clone().into());
                    m.insert(
                        "depends".into(),
                        Dynamic::from_array(a.depends.iter().cloned().map(Dynamic::from).collect()),
                    );
                    Dynamic::from_map(m)
                })
                .collect())
        }
    );
    m
}
