//! The `proxy` and `tls` modules of recipes: hostname forwarding with nginx on a proxy
//! host and its ACME certificates. The work is in `ops::proxy`; here `to_host` (a Host
//! or an inventory name) becomes the address the proxy reaches it at.

use super::glue::{module_function, raise, runtime_error, usage_error};
use super::host::HostRef;
use super::values::read_options;
use crate::ops::proxy;
use crate::recipe::engine::ScriptCtx;
use rhai::{Dynamic, EvalAltResult, FuncRegistration, INT, Map, Module, NativeCallContext};

/// The site `options` ask for, its target resolved; every check is done here, before
/// anything is sent to a host.
fn wanted(
    c: &ScriptCtx,
    options: &Map,
    ctx: &NativeCallContext,
) -> Result<proxy::Site, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let mut options = options.clone();
    let target = match options.get("to_host") {
        Some(d) if d.is::<HostRef>() => d.clone_cast::<HostRef>().0.name.clone(),
        Some(d) if d.is_string() => d.clone().into_string().unwrap_or_default(),
        _ => {
            return Err(runtime_error(
                "proxy::site: `to_host` must name the host the site forwards to (a Host or an inventory name)",
                pos,
            ));
        }
    };
    options.insert("to_host".into(), target.clone().into());
    let o: proxy::SiteOptions = read_options(&options, "proxy::site", pos)?;
    let run = c.run()?;
    let host = run.host(&target).map_err(|e| usage_error(e, ctx))?;
    let site = proxy::target_address(&host)
        .and_then(|address| proxy::Site::from_options(&o, &address))
        .map_err(|e| runtime_error(format!("proxy::site: {e}"), pos))?;
    run.options
        .acme
        .check()
        .map_err(|e| runtime_error(format!("proxy::site: {e}"), pos))?;
    Ok(site)
}

fn site_map(s: &proxy::Site) -> Map {
    let mut m = Map::new();
    m.insert("domain".into(), s.domain.clone().into());
    m.insert("to_address".into(), s.to_address.clone().into());
    m.insert("to_port".into(), (s.to_port as INT).into());
    m.insert("tls".into(), if s.tls { "acme" } else { "none" }.into());
    m.insert("websocket".into(), s.websocket.into());
    m.insert(
        "max_body".into(),
        s.max_body.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m
}

pub(crate) fn module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "site",
        ["proxy_host: Host", "options: Map", "Map"],
        "Makes nginx on the proxy host forward the hostname `domain` to `to_host` (a Host or an inventory name; reached at its var `internal_address`, else its `address`) on `to_port` (default 80): one server block in /etc/nginx/sites-available/fleet-DOMAIN.conf, enabled by a symlink in sites-enabled. `tls: \"acme\"` gets a certificate with `certbot certonly --webroot` (every fleet site serves /.well-known/acme-challenge/ from /var/lib/fleet/acme) from fleet.toml's `acme_directory` (default Let's Encrypt), with `acme_email` (else without one) and `acme_ca_bundle` (a CA file on the proxy host for the directory's HTTPS), then the site listens on 443 and port 80 redirects there; certbot's timer renews it. `websocket: true` passes upgrades through; `max_body` (\"10m\") sets client_max_body_size. A bad domain, port or target is refused before anything is sent; `nginx -t` checks every change before nginx reloads (started when not running), and a refused change is put back. In --check the file's diff is shown. Returns #{ changed, changes }.",
        move |ctx: NativeCallContext,
              h: HostRef,
              options: Map|
              -> Result<Map, Box<EvalAltResult>> {
            let site = wanted(&c, &options, &ctx)?;
            let run = c.run()?;
            let changes = proxy::site(&run.remote(&h.0), &site, &run.options.acme)
                .map_err(|f| raise(f, &ctx))?;
            let mut out = Map::new();
            out.insert("changed".into(), (!changes.is_empty()).into());
            out.insert(
                "changes".into(),
                Dynamic::from_array(changes.into_iter().map(Dynamic::from).collect()),
            );
            Ok(out)
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "remove",
        ["proxy_host: Host", "domain: &str", "bool"],
        "Removes the site of `domain` from the proxy host (its file and symlink; `nginx -t` checked, nginx reloaded) and, for a TLS site, its certificate (`certbot delete`). Only fleet's own sites. True when there was such a site.",
        move |ctx: NativeCallContext,
              h: HostRef,
              domain: &str|
              -> Result<bool, Box<EvalAltResult>> {
            proxy::remove(&c.run()?.remote(&h.0), domain).map_err(|f| raise(f, &ctx))
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "sites",
        ["proxy_host: Host", "Map"],
        "The sites fleet manages on the proxy host: #{ DOMAIN: #{ domain, to_address, to_port, tls, websocket, max_body } }.",
        move |ctx: NativeCallContext, h: HostRef| -> Result<Map, Box<EvalAltResult>> {
            let sites = proxy::list(&c.run()?.remote(&h.0)).map_err(|f| raise(f, &ctx))?;
            Ok(sites
                .iter()
                .map(|(d, s)| (d.as_str().into(), site_map(s).into()))
                .collect())
        }
    );
    let c = ctx.clone();
    module_function!(
        &mut m,
        "plan",
        ["pattern: &str", "Map"],
        "The sites host vars ask for: every host matching `pattern` with a `domains` var (names like \"web3.example.org\", or maps of proxy::site options without to_host) forwards them through the host its var `proxy` names (e.g. proxy = \"edge\" on its group). Checked over the whole inventory first: a domain claimed by two hosts, a bad domain or a host without a usable address is an error naming it. Returns #{ PROXY_HOST: [site options with to_host] }.",
        move |ctx: NativeCallContext, pattern: &str| -> Result<Map, Box<EvalAltResult>> {
            let pos = ctx.call_position();
            let run = c.run()?;
            let all: Vec<_> = run
                .inventory
                .host_names()
                .filter_map(|n| run.inventory.resolve(n))
                .collect();
            let plan =
                proxy::plan(&all).map_err(|e| runtime_error(format!("proxy::plan: {e}"), pos))?;
            let chosen: Vec<String> = run
                .select(pattern)
                .map_err(|e| usage_error(e, &ctx))?
                .into_iter()
                .map(|h| h.name)
                .collect();
            let mut out = Map::new();
            for (proxy_host, sites) in plan.by_proxy {
                let sites: rhai::Array = sites
                    .into_iter()
                    .filter(|(target, _)| chosen.contains(target))
                    .map(|(target, s)| {
                        let mut m = site_map(&s);
                        m.remove("to_address");
                        m.insert("to_host".into(), target.into());
                        m.into()
                    })
                    .collect();
                if !sites.is_empty() {
                    out.insert(proxy_host.into(), sites.into());
                }
            }
            Ok(out)
        }
    );
    m
}

/// The `tls` module: certificates of the proxy's sites.
pub(crate) fn tls_module(ctx: &ScriptCtx) -> Module {
    let mut m = Module::new();
    let c = ctx.clone();
    module_function!(
        &mut m,
        "expiry",
        ["proxy_host: Host", "domain: &str", "?"],
        "The expiry date (\"2027-03-01\") of the certificate of `domain` on the proxy host (certbot's /etc/letsencrypt/live/DOMAIN), or () when it has none.",
        move |ctx: NativeCallContext,
              h: HostRef,
              domain: &str|
              -> Result<Dynamic, Box<EvalAltResult>> {
            let date = proxy::expiry(&c.run()?.remote(&h.0), domain).map_err(|f| raise(f, &ctx))?;
            Ok(date.map_or(Dynamic::UNIT, Dynamic::from))
        }
    );
    m
}
