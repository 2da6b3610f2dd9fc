//! The `nat` module of recipes: port forwarding on an edge host (nftables table
//! `ip fleet_nat`). The work is in `ops::nat`; here rules are read from option maps and
//! the edge's `nat` var, and targets are looked up in the inventory.

use super::glue::{module_function, raise, runtime_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::nat::{self, Context, EdgeSettings, Forward, NatError, Origin};
use crate::recipe::engine::ScriptCtx;
use rhai::{Array, Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext};

type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// What every function does: the edge's settings and the call's input checked
/// (`check`, before anything is sent), the edge read, the wanted forwards computed from
/// what it has (`wanted`), then applied. `what` names the call in errors.
fn change<T>(
    c: &ScriptCtx,
    ctx: &NativeCallContext,
    h: &HostRef,
    what: &str,
    check: impl FnOnce(&Context) -> Result<T, NatError>,
    wanted: impl FnOnce(T, &str, &[Forward]) -> Result<Vec<Forward>, NatError>,
) -> Fallible<(Vec<String>, usize, usize)> {
    let pos = ctx.call_position();
    let run = c.run()?;
    let edge = &h.0;
    let bad = |e: NatError| runtime_error(format!("{what} on {}: {e}", edge.name), pos);
    let resolve = |name: &str| run.host(name).ok();
    let cx = Context {
        edge,
        resolve: &resolve,
    };
    let settings = EdgeSettings::of(edge).map_err(bad)?;
    let masquerade = settings.masquerade(edge).map_err(bad)?;
    let checked = check(&cx).map_err(bad)?;
    let remote = run.remote(edge);
    let state = nat::read(&remote).map_err(|f| raise(f, ctx))?;
    let forwards = wanted(checked, &edge.name, &state.forwards).map_err(bad)?;
    let changes = nat::apply(&remote, &state, &forwards, &masquerade).map_err(|f| raise(f, ctx))?;
    Ok((changes, state.forwards.len(), forwards.len()))
}

fn changes_map(changes: Vec<String>) -> Map {
    let mut out = Map::new();
    out.insert("changed".into(), (!changes.is_empty()).into());
    out.insert(
        "changes".into(),
        Dynamic::from_array(changes.into_iter().map(Dynamic::from).collect()),
    );
    out
}

fn forward_map(f: Forward) -> Dynamic {
    let mut m = Map::new();
    m.insert("port".into(), (f.port as INT).into());
    m.insert("proto".into(), f.proto.as_str().into());
    m.insert("to_host".into(), f.to_host.into());
    m.insert("to_address".into(), f.to_address.to_string().into());
    m.insert("to_port".into(), (f.to_port as INT).into());
    m.insert("comment".into(), f.comment.into());
    m.insert("from".into(), f.origin.as_str().into());
    m.into()
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "forward",
        ["edge: Host", "rule: Map", "Map"],
        "Forwards a public port of the edge host to an inventory host: #{ port, proto: \"tcp\"|\"udp\" (default tcp), to_host: NAME, to_port (default port), comment }. The target's internal address is its host var `internal_address`, else its `address` when that is an IPv4 literal. Refused before anything changes: a port outside 1-65535, another protocol, a target not in the inventory or without an internal address, the edge's SSH port (its inventory `port`, 22 when unset, and its `ssh.port` var), a port the edge already forwards to another host (remove that first). Adds or updates this one rule in the edge's /etc/fleet/nat.nft, the record of its forwards, which replaces the nftables table `ip fleet_nat` (and only it) in one `nft -f` transaction after `nft -c` accepted it; also sets net.ipv4.ip_forward=1 (now and in /etc/sysctl.d/60-fleet-nat.conf), masquerades the internal network (see the `nat` var), writes fleet-nat.service (enabled where systemd runs) and adds a ufw route rule when ufw is installed. Returns #{ changed, changes }; --check prints the ruleset diff.",
        move |ctx: NativeCallContext, h: HostRef, rule: Map| -> Fallible<Map> {
            let input: nat::ForwardInput =
                read_options(&rule, "nat::forward", ctx.call_position())?;
            let (changes, _, _) = change(
                &c,
                &ctx,
                &h,
                "nat::forward",
                |cx| input.check(cx, Origin::Recipe),
                |f, edge, current| nat::with_forward(current.to_vec(), f, edge),
            )?;
            Ok(changes_map(changes))
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "remove",
        ["edge: Host", "rule: Map", "bool"],
        "Removes the forward of #{ port, proto } (proto default tcp) from the edge, whichever way it came (a forward of the edge's `nat` var comes back with the next nat::apply). True when there was one.",
        move |ctx: NativeCallContext, h: HostRef, rule: Map| -> Fallible<bool> {
            let input: nat::RemoveInput = read_options(&rule, "nat::remove", ctx.call_position())?;
            let (_, before, after) = change(
                &c,
                &ctx,
                &h,
                "nat::remove",
                |_| input.key(),
                |key, _, current| {
                    Ok(current
                        .iter()
                        .filter(|f| (f.port, f.proto) != key)
                        .cloned()
                        .collect())
                },
            )?;
            Ok(after < before)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "remove_target",
        ["edge: Host", "name: &str", "int"],
        "Removes every forward of the edge to host `name` (for a host that goes away); the number removed.",
        move |ctx: NativeCallContext, h: HostRef, name: &str| -> Fallible<INT> {
            let (_, before, after) = change(
                &c,
                &ctx,
                &h,
                "nat::remove_target",
                |_| Ok(()),
                |_, _, current| {
                    Ok(current
                        .iter()
                        .filter(|f| f.to_host != name)
                        .cloned()
                        .collect())
                },
            )?;
            Ok((before - after) as INT)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "apply",
        ["edge: Host", "Map"],
        "Brings the edge's forwards to its host var `nat` = { masquerade = true|false|\"CIDR\" (default true: the network of the edge's internal_address), forwards = [{ port, proto, to_host, to_port, comment }] }: the var's forwards replace those an earlier nat::apply made, forwards added by nat::forward stay (a port both give to different hosts is refused). Applied as nat::forward does; a second run changes nothing. Returns #{ changed, changes }.",
        move |ctx: NativeCallContext, h: HostRef| -> Fallible<Map> {
            let (changes, _, _) = change(
                &c,
                &ctx,
                &h,
                "nat::apply",
                |cx| EdgeSettings::of(cx.edge)?.forwards(cx),
                |inventory, edge, current| nat::merged(current, inventory, edge),
            )?;
            Ok(changes_map(changes))
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "list",
        ["edge: Host", "Array"],
        "The edge's forwards, read from its /etc/fleet/nat.nft: [#{ port, proto, to_host, to_address, to_port, comment, from: \"inventory\"|\"recipe\" }], by port. Only reads.",
        move |ctx: NativeCallContext, h: HostRef| -> Fallible<Array> {
            let run = c.run()?;
            let state = nat::read(&run.remote(&h.0)).map_err(|f| raise(f, &ctx))?;
            Ok(state.forwards.into_iter().map(forward_map).collect())
        }
    );
    m
}
