//! The `pct` module of recipes: Proxmox LXC containers on a node (an inventory host
//! reached over SSH), and their templates (`pveam`). The work is done by `ops::pct`;
//! this reads recipe values.

use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use super::values::{from_rhai, read_options};
use crate::inventory::ResolvedHost;
use crate::ops::pct::{self, CtSpec, Power, SPEC_KEYS};
use crate::ops::proxmox as pve;
use crate::recipe::engine::ScriptCtx;
use rhai::{
    Array, Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext, Position,
};

fn ctid(id: INT, pos: Position) -> Result<u64, Box<EvalAltResult>> {
    u64::try_from(id)
        .ok()
        .filter(|id| (pve::VMID_MIN..=pve::VMID_MAX).contains(id))
        .ok_or_else(|| runtime_error(format!("CT id {id} is not between 100 and 999999999"), pos))
}

fn node_name(node: &ResolvedHost) -> Option<&str> {
    node.vars.get(pve::NODE_NAME_VAR).and_then(|v| v.as_str())
}

/// What `pct::start_new` reads of `pct::create`'s answer.
#[derive(serde::Deserialize)]
struct NewCt {
    vmid: u64,
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    queries(&mut m, ctx);
    create(&mut m, ctx);
    power(&mut m, ctx);
    inside(&mut m, ctx);
    super::qm::set_function(&mut m, ctx, crate::ops::proxmox::guest::Kind::Ct);
    templates(&mut m, ctx);
    m
}

/// list, status, exists, config.
fn queries(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "list",
        ["node: Host", "Array"],
        "The node's containers from `pct list`: #{ vmid, status, lock, name }, by id.",
        move |ctx: NativeCallContext, node: HostRef| -> Result<Array, Box<EvalAltResult>> {
            let rows = pct::list(&c.run()?.remote(&node.0)).map_err(|f| raise(f, &ctx))?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("vmid".into(), (r.vmid as INT).into());
                    m.insert("status".into(), r.status.into());
                    m.insert("lock".into(), r.lock.into());
                    m.insert("name".into(), r.name.into());
                    Dynamic::from_map(m)
                })
                .collect())
        }
    );
    for (name, doc) in [
        (
            "status",
            "`running`, `stopped`, … from `pct status`; () when the node has no such container.",
        ),
        ("exists", "Whether the node has a container with this id."),
    ] {
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info([
                "node: Host",
                "vmid: int",
                if name == "status" {
                    "String or ()"
                } else {
                    "bool"
                },
            ])
            .with_comments([format!("/// {doc}")])
            .set_into_module(
                m,
                move |ctx: NativeCallContext,
                      node: HostRef,
                      id: INT|
                      -> Result<Dynamic, Box<EvalAltResult>> {
                    let id = ctid(id, ctx.call_position())?;
                    let s =
                        pct::status(&c.run()?.remote(&node.0), id).map_err(|f| raise(f, &ctx))?;
                    Ok(if name == "exists" {
                        Dynamic::from(s.is_some())
                    } else {
                        s.map_or(Dynamic::UNIT, Dynamic::from)
                    })
                },
            );
    }
    let c = ctx.clone();
    module_function!(
        m,
        "config",
        ["node: Host", "vmid: int", "Map"],
        "The container's configuration from `pct config` (`hostname`, `net0`, `rootfs`, `unprivileged`, …).",
        move |ctx: NativeCallContext, node: HostRef, id: INT| -> Result<Map, Box<EvalAltResult>> {
            let id = ctid(id, ctx.call_position())?;
            Ok(pct::config(&c.run()?.remote(&node.0), id)
                .map_err(|f| raise(f, &ctx))?
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect())
        }
    );
}

/// check, create.
fn create(m: &mut Module, ctx: &ScriptCtx) {
    FuncRegistration::new("check")
        .with_params_info(["spec: Map", "()"])
        .with_comments([format!(
            "/// Judges a `pct::create` spec without the node and before any connection: unknown keys, vmid range (0: the node picks one), hostname (a DNS label), template (a `STORAGE:vztmpl/NAME` volume), cores, memory, swap, disk, storage and bridge IDs, ip/gateway, dns, ssh_keys. Every problem is named with its field and value in one recipe error (exit 2); nothing is sent. Spec keys: {SPEC_KEYS}."
        )])
        .set_into_module(
            m,
            |ctx: NativeCallContext, spec: Map| -> Result<(), Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let spec: CtSpec = read_options(&spec, "pct::check", pos)?;
                spec.check().map_err(|e| runtime_error(e, pos))
            },
        );
    let c = ctx.clone();
    FuncRegistration::new("create")
        .with_params_info(["node: Host", "spec: Map", "Map"])
        .with_comments([format!(
            "/// Creates an LXC container from a template (`pct create`; no cloud-init: root's keys, hostname and network are pct's own options, unprivileged by default). First everything `pct::check` judges (a recipe error, exit 2); then, with queries only, what the node must have: id free in the cluster, storage present, active and holding `rootdir`, the template on its `vztmpl` storage (`pveam list`), bridge present (each problem named by field; the host fails and nothing is sent). A failure after `pct create` destroys the container when `cleanup` is true, and says so. Returns #{{ vmid, name }}. Spec keys: {SPEC_KEYS}."
        )])
        .set_into_module(
            m,
            move |ctx: NativeCallContext, node: HostRef, spec: Map| -> Result<Map, Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let mut spec: CtSpec = read_options(&spec, "pct::create", pos)?;
                spec.check().map_err(|e| runtime_error(e, pos))?;
                let run = c.run()?;
                let remote = run.remote(&node.0);
                if spec.vmid == 0 {
                    spec.vmid = pve::next_vmid(&remote).map_err(|f| raise(f, &ctx))?;
                }
                pct::create(&remote, node_name(&node.0), &spec).map_err(|f| raise(f, &ctx))?;
                let mut out = Map::new();
                out.insert("vmid".into(), (spec.vmid as INT).into());
                out.insert("name".into(), spec.hostname.into());
                Ok(out)
            },
        );
}

/// start, stop, start_new, shutdown, destroy.
fn power(m: &mut Module, ctx: &ScriptCtx) {
    for (name, doc) in [
        ("start", "Starts the container (`pct start`)."),
        ("stop", "Stops the container at once (`pct stop`)."),
    ] {
        let c = ctx.clone();
        FuncRegistration::new(name)
            .with_params_info(["node: Host", "vmid: int", "()"])
            .with_comments([format!("/// {doc}")])
            .set_into_module(
                m,
                move |ctx: NativeCallContext,
                      node: HostRef,
                      id: INT|
                      -> Result<(), Box<EvalAltResult>> {
                    let id = ctid(id, ctx.call_position())?;
                    let action = if name == "start" {
                        Power::Start
                    } else {
                        Power::Stop
                    };
                    pct::power(&c.run()?.remote(&node.0), id, action).map_err(|f| raise(f, &ctx))
                },
            );
    }
    let c = ctx.clone();
    module_function!(
        m,
        "start_new",
        ["node: Host", "ct: Map", "()"],
        "Starts the container `pct::create` just made (`ct` is what it returned); one that does not start is destroyed, and the failure says so.",
        move |ctx: NativeCallContext, node: HostRef, ct: Map| -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let ct: NewCt = from_rhai(&Dynamic::from_map(ct), "pct::start_new ct", pos)?;
            let id = ctid(ct.vmid as INT, pos)?;
            pct::start_new(&c.run()?.remote(&node.0), id).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "shutdown",
        ["node: Host", "vmid: int", "options: Map", "()"],
        "Shuts the container down cleanly (`pct shutdown`), stopping it hard after `timeout` seconds (default 60).",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              options: Map|
              -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = ctid(id, pos)?;
            let o: pve::ShutdownOpts = read_options(&options, "pct::shutdown", pos)?;
            let action = Power::Shutdown {
                timeout_s: o.timeout.as_secs().max(1),
            };
            pct::power(&c.run()?.remote(&node.0), id, action).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "destroy",
        ["node: Host", "vmid: int", "options: Map", "()"],
        "Destroys a stopped container and its volumes (`pct destroy`); #{ purge: true } also removes it from backup jobs, replication and HA.",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              options: Map|
              -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = ctid(id, pos)?;
            let o: pve::DestroyOpts = read_options(&options, "pct::destroy", pos)?;
            pct::power(
                &c.run()?.remote(&node.0),
                id,
                Power::Destroy { purge: o.purge },
            )
            .map_err(|f| raise(f, &ctx))
        }
    );
}

/// exec, address.
fn inside(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "exec",
        ["node: Host", "vmid: int", "argv: Array", "Map"],
        "Runs [program, args…] in the container (`pct exec ID -- …`, each word quoted, no shell unless you name one). Returns #{ code, stdout, stderr }; a non-zero exit is no error. Counts as a change; check mode does not run it (code 0, empty output).",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              argv: Array|
              -> Result<Map, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = ctid(id, pos)?;
            let argv: Vec<String> = from_rhai(&Dynamic::from_array(argv), "pct::exec argv", pos)?;
            if argv.is_empty() || argv.iter().any(|w| w.contains('\0')) {
                return Err(runtime_error(
                    "pct::exec: argv must be [program, args…] without NUL bytes",
                    pos,
                ));
            }
            let r = pct::exec(&c.run()?.remote(&node.0), id, &argv).map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("code".into(), r.code.into());
            out.insert("stdout".into(), r.stdout.into());
            out.insert("stderr".into(), r.stderr.into());
            Ok(out)
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "address",
        ["node: Host", "vmid: int", "options: Map", "String"],
        "The container's IPv4 address, read inside it (`pct exec ID -- ip -4 -o addr show eth0`), never loopback or link-local. Asks every `interval` seconds (2) for up to `timeout` (120); a timeout says which stage was reached. Check mode answers \"\".",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              options: Map|
              -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = ctid(id, pos)?;
            let o: pct::AddressOpts = read_options(&options, "pct::address", pos)?;
            pct::wait_address(&c.run()?.remote(&node.0), id, o.timeout, o.interval)
                .map_err(|f| raise(f, &ctx))
        }
    );
}

/// available, download.
fn templates(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "available",
        ["node: Host", "Array"],
        "The container templates the node can download (`pveam available`): #{ section, template }. Run `pveam update` on the node first if the list is empty.",
        move |ctx: NativeCallContext, node: HostRef| -> Result<Array, Box<EvalAltResult>> {
            let rows =
                pct::available(&c.run()?.remote(&node.0), None).map_err(|f| raise(f, &ctx))?;
            Ok(rows
                .into_iter()
                .map(|a| {
                    let mut m = Map::new();
                    m.insert("section".into(), a.section.into());
                    m.insert("template".into(), a.template.into());
                    Dynamic::from_map(m)
                })
                .collect())
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "download",
        [
            "node: Host",
            "storage: String",
            "template: String",
            "String"
        ],
        "Fetches a template `pveam available` lists to a storage holding `vztmpl` (`pveam download`), unless `pveam list` shows it there already (no change then). Returns its volume ID, the `template` of a `pct::create` spec.",
        move |ctx: NativeCallContext,
              node: HostRef,
              storage: &str,
              template: &str|
              -> Result<String, Box<EvalAltResult>> {
            pct::download(&c.run()?.remote(&node.0), storage, template)
                .map(|(volid, _)| volid)
                .map_err(|f| raise(f, &ctx))
        }
    );
}
