//! The `qm` module of recipes: Proxmox VMs on a node (an inventory host reached over
//! SSH). The work is done by `ops::proxmox`; this reads recipe values.

use super::glue::runtime_error;
use super::glue::{module_function, raise};
use super::host::HostRef;
use super::values::from_rhai;
use super::values::read_options;
use crate::inventory::ResolvedHost;
use crate::ops::proxmox::guest::{self, Kind, Settings};
use crate::ops::proxmox::image::{self, Fetch};
use crate::ops::proxmox::{self as pve, CreateOptions, NewVm, Power, SPEC_KEYS};
use crate::ops::remote::Remote;
use crate::recipe::engine::ScriptCtx;
use rhai::{
    Array, Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext, Position,
};

fn vmid(id: INT, pos: Position) -> Result<u64, Box<EvalAltResult>> {
    u64::try_from(id)
        .ok()
        .filter(|id| (pve::VMID_MIN..=pve::VMID_MAX).contains(id))
        .ok_or_else(|| runtime_error(format!("VM id {id} is not between 100 and 999999999"), pos))
}

/// The node's name as Proxmox knows it, when the inventory says (else its hostname).
fn node_name(node: &ResolvedHost) -> Option<&str> {
    node.vars.get(pve::NODE_NAME_VAR).and_then(|v| v.as_str())
}

fn row_map(r: &pve::VmRow) -> Map {
    let mut m = Map::new();
    m.insert("vmid".into(), (r.vmid as INT).into());
    m.insert("name".into(), r.name.clone().into());
    m.insert("status".into(), r.status.clone().into());
    m.insert("mem_mb".into(), (r.mem_mb as INT).into());
    m.insert("bootdisk_gb".into(), Dynamic::from_float(r.bootdisk_gb));
    m.insert("pid".into(), (r.pid as INT).into());
    m
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    queries(&mut m, ctx);
    vm_queries(&mut m, ctx);
    check(&mut m);
    create(&mut m, ctx);
    power(&mut m, ctx);
    stop_and_remove(&mut m, ctx);
    guest_ip(&mut m, ctx);
    set_function(&mut m, ctx, Kind::Vm);
    images(&mut m, ctx);
    choices(&mut m, ctx);
    m
}

/// The options of `qm::fetch_image` and `qm::check_image`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageOptions {
    url: String,
    #[serde(default = "local")]
    storage: String,
    #[serde(default)]
    sha512: String,
}

fn local() -> String {
    "local".into()
}

fn image_fetch(options: &Map, what: &str, pos: Position) -> Result<Fetch, Box<EvalAltResult>> {
    let o: ImageOptions = read_options(options, what, pos)?;
    let sum = (!o.sha512.is_empty()).then_some(o.sha512.as_str());
    Fetch::new(&o.url, &o.storage, sum).map_err(|e| runtime_error(format!("{what}: {e}"), pos))
}

/// check_image, fetch_image.
fn images(m: &mut Module, ctx: &ScriptCtx) {
    module_function!(
        m,
        "check_image",
        ["options: Map", "()"],
        "Judges `qm::fetch_image`'s options without the node: url (http or https, ending in a disk image or container template file name), storage ID, sha512 (128 hex digits). A problem is a recipe error (exit 2).",
        |ctx: NativeCallContext, options: Map| -> Result<(), Box<EvalAltResult>> {
            image_fetch(&options, "qm::check_image", ctx.call_position()).map(|_| ())
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "fetch_image",
        ["node: Host", "options: Map", "Map"],
        "Makes the node hold the file at #{ url, storage (default \"local\"), sha512 } in the storage's directory (template/iso, or template/cache for .tar.* templates): downloaded with curl next to its place, the SHA-512 checked before it is moved in (a wrong one is removed and fails the host). A file already there with that checksum (without sha512: any file of that name) is not fetched again. Judged like `qm::check_image` before any connection. Returns #{ path, volid, downloaded }.",
        move |ctx: NativeCallContext,
              node: HostRef,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let fetch = image_fetch(&options, "qm::fetch_image", ctx.call_position())?;
            let run = c.run()?;
            let got = image::fetch(&run.remote(&node.0), &fetch).map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("path".into(), got.path.into());
            out.insert("volid".into(), got.volid.into());
            out.insert("downloaded".into(), got.downloaded.into());
            Ok(out)
        }
    );
}

/// `set(node, vmid, #{ cores, memory, disk })` for `qm::` (Kind::Vm) or `pct::`
/// (Kind::Ct): the values are judged before any connection, like `qm::create`'s.
pub(crate) fn set_function(m: &mut Module, ctx: &ScriptCtx, kind: Kind) {
    let c = ctx.clone();
    let (tool, noun, disk) = match kind {
        Kind::Vm => ("qm", "VM", "`qm disk resize … scsi0 +NG`"),
        Kind::Ct => ("pct", "container", "`pct resize … rootfs +NG`"),
    };
    let name = format!("{tool}::set");
    FuncRegistration::new("set")
        .with_params_info(["node: Host", "vmid: int", "settings: Map", "Map"])
        .with_comments([format!(
            "/// Changes a {noun}'s size: `cores` (1-1024), `memory` (MiB, 16-268435456) with `{tool} set` where they differ from its config (pending values count), and `disk` (GiB added to the boot disk, {disk}; disks only grow). At least one key; a bad value or an unknown key is a recipe error (exit 2) before anything is sent. Prints what changed and, for a running VM whose `hotplug` lacks cpu/memory, that the change waits for its next start. Returns #{{ changes, pending }}: the changes in words (empty: nothing to do) and the keys that wait for a restart."
        )])
        .set_into_module(
            m,
            move |ctx: NativeCallContext,
                  node: HostRef,
                  id: INT,
                  settings: Map|
                  -> Result<Map, Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let s: Settings = read_options(&settings, &name, pos)?;
                s.check().map_err(|e| runtime_error(format!("{name}: {e}"), pos))?;
                let id = vmid(id, pos)?;
                let run = c.run()?;
                let remote = run.remote(&node.0);
                let done = guest::set(&remote, kind, id, &s).map_err(|f| raise(f, &ctx))?;
                for line in done.describe(
                    &format!("{} {id}", kind.noun()),
                    &format!("`{tool} reboot {id}`"),
                    remote.check_mode(),
                ) {
                    remote.out(&line);
                }
                let list = |v: &[String]| -> Dynamic {
                    Dynamic::from_array(v.iter().cloned().map(Dynamic::from).collect())
                };
                let mut out = Map::new();
                out.insert("changes".into(), list(&done.changes));
                out.insert("pending".into(), list(&done.pending));
                Ok(out)
            },
        );
}

/// next_vmid, list, status: queries of the node.
fn queries(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "next_vmid",
        ["node: Host", "int"],
        "The lowest free VM id of the node's cluster (`pvesh get /cluster/nextid`).",
        move |ctx: NativeCallContext, node: HostRef| -> Result<INT, Box<EvalAltResult>> {
            let run = c.run()?;
            pve::next_vmid(&run.remote(&node.0))
                .map(|id| id as INT)
                .map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "list",
        ["node: Host", "Array"],
        "The node's VMs from `qm list`: #{ vmid, name, status, mem_mb, bootdisk_gb, pid }, by VM id.",
        move |ctx: NativeCallContext, node: HostRef| -> Result<Array, Box<EvalAltResult>> {
            let run = c.run()?;
            let rows = pve::list(&run.remote(&node.0)).map_err(|f| raise(f, &ctx))?;
            Ok(rows.iter().map(|r| Dynamic::from_map(row_map(r))).collect())
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "status",
        ["node: Host", "vmid: int", "String or ()"],
        "`running`, `stopped`, … from `qm status`; () when the node has no such VM.",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT|
              -> Result<Dynamic, Box<EvalAltResult>> {
            let id = vmid(id, ctx.call_position())?;
            let run = c.run()?;
            Ok(pve::status(&run.remote(&node.0), id)
                .map_err(|f| raise(f, &ctx))?
                .map_or(Dynamic::UNIT, Dynamic::from))
        }
    );
}

/// exists, config.
fn vm_queries(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "exists",
        ["node: Host", "vmid: int", "bool"],
        "Whether the node has a VM with this id.",
        move |ctx: NativeCallContext, node: HostRef, id: INT| -> Result<bool, Box<EvalAltResult>> {
            let id = vmid(id, ctx.call_position())?;
            let run = c.run()?;
            Ok(pve::status(&run.remote(&node.0), id)
                .map_err(|f| raise(f, &ctx))?
                .is_some())
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "config",
        ["node: Host", "vmid: int", "Map"],
        "The VM's configuration from `qm config` (`net0`, `memory`, `name`, …).",
        move |ctx: NativeCallContext, node: HostRef, id: INT| -> Result<Map, Box<EvalAltResult>> {
            let id = vmid(id, ctx.call_position())?;
            let run = c.run()?;
            Ok(pve::config(&run.remote(&node.0), id)
                .map_err(|f| raise(f, &ctx))?
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect())
        }
    );
}

/// `qm::check`: the spec judged without the node.
fn check(m: &mut Module) {
    FuncRegistration::new("check")
        .with_params_info(["spec: Map", "()"])
        .with_comments([format!(
            "/// Judges a `qm::create` spec without the node and before any connection: unknown keys, name, vmid range (0: the node picks one), cores, memory, disk, storage and bridge IDs, image path, MAC, ip/gateway (a host address of its subnet, the gateway inside it), dns, search, user, ssh_keys and (snippets mode) user_data. Every problem is named with its field and value in one recipe error (exit 2); nothing is sent. What only the node knows (id free, storage, bridge, image) `qm::create` checks there. Spec keys: {SPEC_KEYS}."
        )])
        .set_into_module(
            m,
            |ctx: NativeCallContext, spec: Map| -> Result<(), Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let input: CreateOptions = read_options(&spec, "qm::check", pos)?;
                input.check().map_err(|e| runtime_error(e, pos))
            },
        );
}

fn create(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    FuncRegistration::new("create")
        .with_params_info(["node: Host", "spec: Map", "Map"])
        .with_comments([format!(
            "/// Creates a VM from a cloud image. First everything `qm::check` judges, before any connection (a recipe error, exit 2); then, with queries only, what the node must have: VM id free in the cluster, storage present, active and holding images, bridge present, image file present (each problem named by field; the host fails and nothing is sent). Then writes cloud-init data, runs `qm create` and `qm disk resize`. A failure after `qm create` destroys the VM and removes the snippets when `cleanup` is true, and says so. Returns #{{ vmid, name, mac, files }} (files: the snippets left on the node for the VM). Spec keys: {SPEC_KEYS}."
        )])
        .set_into_module(
            m,
            move |ctx: NativeCallContext, node: HostRef, spec: Map| -> Result<Map, Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let input: CreateOptions = read_options(&spec, "qm::create", pos)?;
                input.check().map_err(|e| runtime_error(e, pos))?;
                let run = c.run()?;
                let remote = run.remote(&node.0);
                let vmid = match input.vmid {
                    0 => pve::next_vmid(&remote).map_err(|f| raise(f, &ctx))?,
                    id => id,
                };
                let req = input.into_request(vmid);
                let files = pve::create(&remote, node_name(&node.0), &req).map_err(|f| raise(f, &ctx))?;
                let mut out = Map::new();
                out.insert(
                    "files".into(),
                    Dynamic::from_array(files.into_iter().map(Dynamic::from).collect()),
                );
                out.insert("vmid".into(), (vmid as INT).into());
                out.insert("name".into(), req.spec.name.clone().into());
                out.insert("mac".into(), req.spec.mac.clone().into());
                Ok(out)
            },
        );
}

/// start, start_new, stop.
fn power(m: &mut Module, ctx: &ScriptCtx) {
    for (name, doc) in [
        ("start", "Starts the VM (`qm start`)."),
        (
            "stop",
            "Stops the VM at once (`qm stop`); a stopped VM is fine.",
        ),
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
                    let id = vmid(id, ctx.call_position())?;
                    let action = if name == "start" {
                        Power::Start
                    } else {
                        Power::Stop
                    };
                    pve::power(&c.run()?.remote(&node.0), id, action).map_err(|f| raise(f, &ctx))
                },
            );
    }
    let c = ctx.clone();
    module_function!(
        m,
        "start_new",
        ["node: Host", "vm: Map", "()"],
        "Starts the VM `qm::create` just made (`vm` is what it returned). One that does not start is destroyed with its disks and the files `qm::create` left for it (vm.files) are removed; the failure says so.",
        move |ctx: NativeCallContext, node: HostRef, vm: Map| -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let vm: NewVm = from_rhai(&Dynamic::from_map(vm), "qm::start_new vm", pos)?;
            let id = vmid(vm.vmid as INT, pos)?;
            pve::start_new(&c.run()?.remote(&node.0), id, &vm.files).map_err(|f| raise(f, &ctx))
        }
    );
}

/// shutdown, destroy.
fn stop_and_remove(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "shutdown",
        ["node: Host", "vmid: int", "options: Map", "()"],
        "Shuts the VM down cleanly (guest agent or ACPI), stopping it hard after `timeout` seconds (default 60).",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              options: Map|
              -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = vmid(id, pos)?;
            let o: pve::ShutdownOpts = read_options(&options, "qm::shutdown", pos)?;
            let action = Power::Shutdown {
                timeout_s: o.timeout.as_secs().max(1),
            };
            pve::power(&c.run()?.remote(&node.0), id, action).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        m,
        "destroy",
        ["node: Host", "vmid: int", "options: Map", "()"],
        "Destroys a stopped VM and its disks (`qm destroy`); #{ purge: true } also removes it from backup jobs, replication and HA.",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              options: Map|
              -> Result<(), Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = vmid(id, pos)?;
            let o: pve::DestroyOpts = read_options(&options, "qm::destroy", pos)?;
            pve::power(
                &c.run()?.remote(&node.0),
                id,
                Power::Destroy { purge: o.purge },
            )
            .map_err(|f| raise(f, &ctx))
        }
    );
}

fn guest_ip(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "guest_ip",
        ["node: Host", "vmid: int", "options: Map", "String"],
        "The VM's IPv4 address from its guest agent (`qm guest cmd … network-get-interfaces`): the address of the NIC whose MAC is `nic`'s (default \"net0\"), never loopback or link-local. Asks every `interval` seconds (3) for up to `timeout` (120); the progress line shows the wait, and a timeout says which stage was reached.",
        move |ctx: NativeCallContext,
              node: HostRef,
              id: INT,
              options: Map|
              -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let id = vmid(id, pos)?;
            let o: pve::GuestIpOpts = read_options(&options, "qm::guest_ip", pos)?;
            pve::wait_guest_ip(&c.run()?.remote(&node.0), id, &o.nic, o.timeout, o.interval)
                .map_err(|f| raise(f, &ctx))
        }
    );
}

/// choices: what the node offers a new VM, as options for `ask::choose`.
fn choices(m: &mut Module, ctx: &ScriptCtx) {
    let c = ctx.clone();
    module_function!(
        m,
        "choices",
        ["node: Host", "image_dir: &str", "Map"],
        "What the node offers a new VM, read with queries only, as options for `ask::choose`: #{ storages: [#{ value, label }] (active storages that hold disk images, the label with type and free space), bridges: [names], images: [paths of the *.qcow2, *.img and *.raw files directly in `image_dir`, an absolute folder] }.",
        move |ctx: NativeCallContext,
              node: HostRef,
              image_dir: &str|
              -> Result<Map, Box<EvalAltResult>> {
            let run = c.run()?;
            let found =
                pve::choices::node_choices(&run.remote(&node.0), node_name(&node.0), image_dir)
                    .map_err(|f| raise(f, &ctx))?;
            let storages: Array = found
                .storages
                .iter()
                .map(|s| {
                    let mut o = Map::new();
                    o.insert("value".into(), s.id.clone().into());
                    o.insert(
                        "label".into(),
                        format!("{} ({}, {})", s.id, s.kind, pve::choices::free_space(s)).into(),
                    );
                    Dynamic::from_map(o)
                })
                .collect();
            let strings =
                |v: Vec<String>| Dynamic::from_array(v.into_iter().map(Dynamic::from).collect());
            let mut out = Map::new();
            out.insert("storages".into(), Dynamic::from_array(storages));
            out.insert("bridges".into(), strings(found.bridges));
            out.insert("images".into(), strings(found.images));
            Ok(out)
        }
    );
}
