//! The `ufw` module of recipes: a firewall from a preset, rules and the ports of catalog
//! apps. Work is done by `ops::ufw` (rules, plan, apply).

use super::catalog::load_catalog;
use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::catalog;
use crate::ops::ufw;
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext};

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "apply",
        ["h: Host", "options: Map", "Map"],
        "Brings ufw on the host to the wanted state: SSH allowed first (the port fleet is connected on and `ssh_port`), default deny incoming / allow outgoing, the preset's rules (`server-minimal`: SSH only, `web`: 80 and 443, `lan-only`: SSH and app ports from 10/8, 172.16/12, 192.168/16 only, `custom`: `rules`), the ports of catalog `apps` (public: anywhere, lan: RFC 1918, local: none) when `allow_app_ports` (default true), then enabled. Rules fleet added earlier (comment `fleet: …`) that are no longer wanted are deleted; rules added by hand are left alone. Rules: [#{ action: allow|deny|reject|limit, port: 80 or \"8000:8010\", proto: tcp|udp|any, source: any|lan|CIDR, comment }]. Each ufw command is one program, run as `sudo -n -- ufw …` when not root (a sudoers rule for /usr/sbin/ufw is enough). Returns #{ changed, commands, ssh_ports }; in --check the commands are printed, and on a host without ufw yet (installed just before by a real run) the plan starts from an empty firewall.",
        move |ctx: NativeCallContext,
              h: HostRef,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let o: ufw::ApplyOptions = read_options(&options, "ufw::apply", pos)?;
            let mut custom = Vec::new();
            for (i, r) in o.rules.iter().enumerate() {
                custom.extend(
                    r.to_rules()
                        .map_err(|e| runtime_error(format!("ufw::apply rules[{i}]: {e}"), pos))?,
                );
            }
            let mut app_rules = Vec::new();
            if o.allow_app_ports && !o.apps.is_empty() {
                let catalog = load_catalog(&c, pos)?;
                let apps = catalog
                    .resolve(&o.apps)
                    .map_err(|e| runtime_error(e, pos))?;
                app_rules = catalog::rules(&apps, false);
            }
            let wanted =
                ufw::preset(&o.preset, &custom, &app_rules).map_err(|e| runtime_error(e, pos))?;
            let lan_only = o.preset == "lan-only";
            let run = c.run()?;
            let applied = ufw::apply(&run.remote(&h.0), &wanted, o.ssh_port, lan_only)
                .map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("changed".into(), (!applied.commands.is_empty()).into());
            out.insert(
                "commands".into(),
                Dynamic::from_array(applied.commands.into_iter().map(Dynamic::from).collect()),
            );
            out.insert(
                "ssh_ports".into(),
                Dynamic::from_array(
                    applied
                        .ssh_ports
                        .into_iter()
                        .map(|p| Dynamic::from(p as INT))
                        .collect(),
                ),
            );
            Ok(out)
        }
    );
    m
}
