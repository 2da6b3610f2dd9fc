//! The `cloudinit` module of recipes: NoCloud documents from maps, validated by
//! `ops::cloudinit`, and waiting for a fresh host's cloud-init to finish.

use super::glue::runtime_error;
use super::glue::{module_function, raise};
use super::host::HostRef;
use super::values::from_rhai;
use super::values::read_options;
use crate::ops::cloudinit::{self, NetworkSpec, UserDataSpec};
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, Map, Module, NativeCallContext, Position};

fn problems(what: &str, p: Vec<cloudinit::Problem>, pos: Position) -> Box<EvalAltResult> {
    runtime_error(
        format!(
            "{what} is invalid:\n  - {}",
            p.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n  - ")
        ),
        pos,
    )
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    module_function!(
        &mut m,
        "user_data",
        ["spec: Map", "String"],
        "A `#cloud-config` document from #{ hostname, fqdn, timezone, users: [#{ name, ssh_authorized_keys, sudo (true or a rule), groups, shell }], ssh_pwauth, disable_root, packages, package_upgrade, write_files: [#{ path, content, permissions, owner }], runcmd: [\"…\"], chpasswd: [#{ name, hash }] (crypt hashes only, e.g. passwords::guest(name).hash) }. Unknown keys, bad names, keys, paths and modes are errors naming the field.",
        |ctx: NativeCallContext, spec: Map| -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let spec: UserDataSpec =
                from_rhai(&Dynamic::from_map(spec), "cloudinit::user_data", pos)?;
            spec.render().map_err(|p| problems("user-data", p, pos))
        }
    );
    module_function!(
        &mut m,
        "network_config",
        ["spec: Map", "String"],
        "network-config version 2 for one NIC matched by MAC: #{ mac, ip: \"dhcp\" or CIDR, gateway (inside the ip's subnet), dns: […], search: […], name (\"eth0\") }. Bad values are errors naming the field.",
        |ctx: NativeCallContext, spec: Map| -> Result<String, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let spec: NetworkSpec =
                from_rhai(&Dynamic::from_map(spec), "cloudinit::network_config", pos)?;
            spec.render()
                .map_err(|p| problems("network-config", p, pos))
        }
    );
    module_function!(
        &mut m,
        "meta_data",
        ["instance_id: &str", "hostname: &str", "String"],
        "NoCloud meta-data: a new instance-id makes cloud-init run its first-boot modules again.",
        |instance_id: &str, hostname: &str| cloudinit::meta_data(instance_id, hostname)
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "wait",
        ["h: Host", "options: Map", "Map"],
        "Waits for cloud-init on a fresh host (`cloud-init status --wait --long`, up to `timeout` seconds, default 600) and returns #{ status, detail, errors }; a cloud-init that failed fails the host with its errors.",
        move |ctx: NativeCallContext,
              h: HostRef,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let o: cloudinit::WaitOpts = read_options(&options, "cloudinit::wait", pos)?;
            let s =
                cloudinit::wait(&c.run()?.remote(&h.0), o.timeout).map_err(|f| raise(f, &ctx))?;
            let mut m = Map::new();
            m.insert("status".into(), s.status.into());
            m.insert("detail".into(), s.detail.into());
            m.insert(
                "errors".into(),
                Dynamic::from_array(s.errors.into_iter().map(Dynamic::from).collect()),
            );
            Ok(m)
        }
    );
    m
}
