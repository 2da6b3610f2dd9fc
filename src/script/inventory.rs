//! The `inventory` module of recipes: whether a host is there (any inventory format),
//! and hosts that a recipe brings into being (a new VM) or retires, added to and removed
//! from a TOML inventory in place.

use super::glue::module_function;
use super::glue::runtime_error;
use super::host::HostRef;
use super::values::{from_rhai, read_options};
use crate::inventory::Format;
use crate::inventory::edit::{self, HostEntry};
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext, Position};
use std::path::PathBuf;
use std::sync::Arc;

/// The host var that lets the first connection to a brand-new host record its key.
pub(crate) const ACCEPT_NEW_KEY: &str = "ssh_accept_new_host_key";

/// The run's inventory file: its path, its name as the user gave it, and its text.
fn inventory_file(
    c: &ScriptCtx,
    pos: Position,
) -> Result<(PathBuf, String, String), Box<EvalAltResult>> {
    let run = c.run()?;
    let path = run
        .options
        .inventory_file
        .clone()
        .ok_or_else(|| runtime_error("this run has no inventory file", pos))?;
    let shown = crate::project::display_path(&path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| runtime_error(format!("cannot read {shown}: {e}"), pos))?;
    Ok((path, shown, text))
}

/// The run's inventory as its file now reads, when `inventory::add` wrote hosts during
/// the run (access rules and host patterns must see them), else as it was loaded.
pub(crate) fn current_inventory(
    c: &ScriptCtx,
    pos: Position,
) -> Result<crate::inventory::Inventory, Box<EvalAltResult>> {
    let run = c.run()?;
    if !run.added_hosts() {
        return Ok(run.inventory.clone());
    }
    let (_, shown, text) = inventory_file(c, pos)?;
    crate::inventory::Inventory::parse(&shown, &text)
        .map_err(|e| runtime_error(format!("cannot read {shown} again: {e}"), pos))
}

/// The inventory file, when fleet can edit it in place (a TOML inventory).
fn editable_file(
    c: &ScriptCtx,
    pos: Position,
) -> Result<(PathBuf, String, String), Box<EvalAltResult>> {
    let (path, shown, text) = inventory_file(c, pos)?;
    let kind = match crate::inventory::detect_format(&path.to_string_lossy(), &text) {
        _ if text.starts_with("#!") => "a dynamic inventory script",
        Format::Toml => return Ok((path, shown, text)),
        Format::Yaml => "an Ansible YAML inventory",
        Format::Ini => "an Ansible INI inventory",
        Format::Plain => "a plain list of hosts",
    };
    Err(runtime_error(
        format!(
            "{shown} is {kind}, not a TOML inventory: fleet adds and removes hosts only in inventory.toml files; add or remove the host in {shown} by hand, or move to an inventory.toml"
        ),
        pos,
    ))
}

fn write(
    path: &std::path::Path,
    shown: &str,
    text: &str,
    pos: Position,
) -> Result<(), Box<EvalAltResult>> {
    crate::ops::localfs::write_local(path, text.as_bytes())
        .map_err(|e| runtime_error(format!("cannot write {shown}: {e}"), pos))
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    has(&mut m, ctx);
    check_editable(&mut m, ctx);
    add(&mut m, ctx);
    forget_host_key(&mut m, ctx);
    remove(&mut m, ctx);
    set_vars(&mut m, ctx);
    m
}

/// `inventory::has`.
fn has(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "has",
        ["name: &str", "bool"],
        "Whether the inventory has host NAME, in any inventory format (TOML, Ansible YAML or INI, a dynamic inventory script, a plain list); read anew, so hosts added in this run count. Only reads.",
        move |ctx: NativeCallContext, name: &str| -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let (path, shown, _) = inventory_file(&c, pos)?;
            // As a run reads it: a dynamic inventory script is run with --list.
            let timeout = crate::inventory::script::DEFAULT_TIMEOUT;
            let inventory = crate::inventory::Inventory::load(&path, &shown, timeout)
                .map_err(|e| runtime_error(e.to_string(), pos))?;
            Ok(inventory.hosts.contains_key(name))
        }
    );
}

/// `inventory::check_editable`.
fn check_editable(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "check_editable",
        ["()"],
        "Raises the error `inventory::add` and `inventory::remove` would raise because the inventory file cannot be edited (it is not a TOML inventory, or there is none), so a recipe can refuse before it changes anything. Reads only.",
        move |ctx: NativeCallContext| -> Result<(), Box<EvalAltResult>> {
            editable_file(&c, ctx.call_position()).map(|_| ())
        }
    );
}

/// `inventory::add`.
fn add(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "add",
        ["name: &str", "entry: Map", "Host"],
        "Adds `[hosts.NAME]` to the TOML inventory in place (comments and layout kept) and returns the host for this run. Entry: address (required), port, user, groups ([…]), vars (#{…}). A name already there is an error. In --check the file is not touched. The first connection to the new host records its SSH host key (it has never been seen); later runs check it strictly.",
        move |ctx: NativeCallContext,
              name: &str,
              entry: Map|
              -> Result<HostRef, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let new: HostEntry = read_options(&entry, "inventory::add", pos)?;
            if new.address.is_empty() {
                return Err(runtime_error(
                    "inventory::add needs #{ address: \"…\" }",
                    pos,
                ));
            }
            let (path, shown, text) = editable_file(&c, pos)?;
            let edited = edit::add_host(&shown, &text, name, &new)
                .map_err(|e| runtime_error(e.to_string(), pos))?;
            let inventory = crate::inventory::Inventory::parse(&shown, &edited).map_err(|e| {
                runtime_error(format!("the edited {shown} would not parse: {e}"), pos)
            })?;
            if run.options.check {
                run.ui
                    .out(Some(name), &format!("would add host {name} to {shown}"));
            } else {
                write(&path, &shown, &edited, pos)?;
                run.ui.event(Some(name), &format!("added to {shown}"));
            }
            let mut host = inventory.resolve(name).ok_or_else(|| {
                runtime_error(format!("{name} is missing from the edited {shown}"), pos)
            })?;
            host.vars.insert(ACCEPT_NEW_KEY.into(), true.into());
            run.add_host(host.clone());
            Ok(HostRef(Arc::new(host)))
        }
    );
}

/// `inventory::forget_host_key`.
fn forget_host_key(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "forget_host_key",
        ["h: Host", "bool"],
        "Removes the host's key from the known_hosts file fleet uses (fleet.toml's [ssh] known_hosts, else ~/.ssh/known_hosts) with `ssh-keygen -R`, so that a new machine at the same address later is not refused as an impostor. True when a key was removed.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let target = crate::ops::ssh::target_for(&h.0, &run.options.ssh);
            let file = target.known_hosts.clone().unwrap_or_else(|| {
                crate::ops::ssh::resolve_path(
                    &run.options.root,
                    std::path::Path::new("~/.ssh/known_hosts"),
                )
            });
            let pattern = crate::ops::ssh::known_hosts_name(&target);
            if !file.exists() {
                return Ok(false);
            }
            if run.options.check {
                run.ui.out(
                    Some(&h.0.name),
                    &format!("would remove the key of {pattern} from {}", file.display()),
                );
                return Ok(false);
            }
            let out = std::process::Command::new("ssh-keygen")
                .arg("-R")
                .arg(&pattern)
                .arg("-f")
                .arg(&file)
                .output()
                .map_err(|e| runtime_error(format!("cannot run ssh-keygen: {e}"), pos))?;
            if !out.status.success() {
                return Err(runtime_error(
                    format!(
                        "ssh-keygen -R {pattern} -f {} failed: {}",
                        file.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                    pos,
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).contains("updated"))
        }
    );
}

/// `inventory::remove`.
fn remove(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "remove",
        ["name: &str", "bool"],
        "Removes host NAME from the TOML inventory in place: its `[hosts.NAME]` entry and its place in every group's `hosts` list. False when it was not there. In --check the file is not touched.",
        move |ctx: NativeCallContext, name: &str| -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let (path, shown, text) = editable_file(&c, pos)?;
            let Some(edited) = edit::remove_host(&shown, &text, name)
                .map_err(|e| runtime_error(e.to_string(), pos))?
            else {
                return Ok(false);
            };
            if run.options.check {
                run.ui.out(
                    Some(name),
                    &format!("would remove host {name} from {shown}"),
                );
            } else {
                write(&path, &shown, &edited, pos)?;
                run.ui.event(Some(name), &format!("removed from {shown}"));
            }
            Ok(true)
        }
    );
}

/// `inventory::set_vars`.
fn set_vars(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "set_vars",
        ["name: &str", "vars: Map", "bool"],
        "Sets vars of host NAME in the TOML inventory in place (comments and layout kept); a var set to `()` is removed. True when the file changed. The running recipe's hosts keep the vars they were loaded with. In --check the file is not touched.",
        move |ctx: NativeCallContext, name: &str, vars: Map| -> Result<bool, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let vars: serde_json::Map<String, serde_json::Value> =
                from_rhai(&Dynamic::from_map(vars), "inventory::set_vars", pos)?;
            let (path, shown, text) = editable_file(&c, pos)?;
            let Some(edited) = edit::set_vars(&shown, &text, name, &vars)
                .map_err(|e| runtime_error(e.to_string(), pos))?
            else {
                return Ok(false);
            };
            crate::inventory::Inventory::parse(&shown, &edited).map_err(|e| {
                runtime_error(format!("the edited {shown} would not parse: {e}"), pos)
            })?;
            let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
            if run.options.check {
                run.ui.out(
                    Some(name),
                    &format!("would set {} in {shown}", keys.join(", ")),
                );
            } else {
                write(&path, &shown, &edited, pos)?;
                run.ui
                    .event(Some(name), &format!("{} set in {shown}", keys.join(", ")));
            }
            Ok(true)
        }
    );
}
