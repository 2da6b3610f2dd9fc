//! The `ufw` module of recipes: a firewall from a preset, rules and the ports of catalog
//! apps. Work is done by `ops::ufw` (rules, plan, apply).

use super::catalog::{load_catalog, names};
use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use super::values::Options;
use super::values::from_rhai;
use crate::ops::catalog;
use crate::ops::ufw::{self, Rule};
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleInput {
    #[serde(default = "allow")]
    action: String,
    port: serde_json::Value,
    #[serde(default = "tcp")]
    proto: String,
    #[serde(default = "any")]
    source: String,
    #[serde(default)]
    comment: String,
}

fn allow() -> String {
    "allow".into()
}
fn tcp() -> String {
    "tcp".into()
}
fn any() -> String {
    "any".into()
}

pub fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "apply",
        ["h: Host", "options: Map", "Map"],
        "Brings ufw on the host to the wanted state: SSH allowed first (the port fleet is connected on and `ssh_port`), default deny incoming / allow outgoing, the preset's rules (`server-minimal`: SSH only, `web`: 80 and 443, `lan-only`: SSH and app ports from 10/8, 172.16/12, 192.168/16 only, `custom`: `rules`), the ports of catalog `apps` (public: anywhere, lan: RFC 1918, local: none) when `allow_app_ports` (default true), then enabled. Rules fleet added earlier (comment `fleet: …`) that are no longer wanted are deleted; rules added by hand are left alone. Rules: [#{ action: allow|deny|reject|limit, port: 80 or \"8000:8010\", proto: tcp|udp|any, source: any|lan|CIDR, comment }]. Returns #{ changed, commands, ssh_ports }; in --check the commands are printed.",
        move |ctx: NativeCallContext,
              h: HostRef,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let o = Options::new(
                &options,
                "ufw::apply",
                &["preset", "rules", "apps", "allow_app_ports", "ssh_port"],
                pos,
            )?;
            let preset = o
                .string("preset")?
                .unwrap_or_else(|| "server-minimal".into());
            let mut custom = Vec::new();
            if let Some(list) = options.get("rules") {
                let inputs: Vec<RuleInput> = from_rhai(list, "ufw::apply rules", pos)?;
                for (i, r) in inputs.into_iter().enumerate() {
                    let port = match &r.port {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let comment = if r.comment.is_empty() {
                        format!("{} rule", ufw::MARK)
                    } else {
                        format!("{} {}", ufw::MARK, r.comment)
                    };
                    custom.extend(
                        Rule::build(&r.action, &port, &r.proto, &r.source, &comment).map_err(
                            |e| runtime_error(format!("ufw::apply rules[{i}]: {e}"), pos),
                        )?,
                    );
                }
            }
            let lan_only = preset == "lan-only";
            let mut app_rules = Vec::new();
            if o.bool("allow_app_ports")?.unwrap_or(true)
                && let Some(list) = options.get("apps")
            {
                let list = list.clone().into_array().map_err(|_| {
                    runtime_error("ufw::apply apps must be an array of app names".into(), pos)
                })?;
                let chosen = names(&list, "ufw::apply apps", pos)?;
                if !chosen.is_empty() {
                    let catalog = load_catalog(&c, pos)?;
                    let apps = catalog
                        .resolve(&chosen)
                        .map_err(|e| runtime_error(e, pos))?;
                    app_rules = catalog::rules(&apps, false);
                }
            }
            let wanted =
                ufw::preset(&preset, &custom, &app_rules).map_err(|e| runtime_error(e, pos))?;
            let ssh_port = o.port("ssh_port")?;
            let run = c.run()?;
            let applied = ufw::apply(&run.remote(&h.0), &wanted, ssh_port, lan_only)
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
