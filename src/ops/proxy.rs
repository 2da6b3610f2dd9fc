//! Hostname forwarding on a proxy host with nginx, and its TLS certificates from an ACME
//! CA through certbot. Each domain is one fleet-managed server block
//! (`/etc/nginx/sites-available/fleet-<domain>.conf`, enabled by a symlink); its first
//! comment line records the site, so fleet reads back what it manages. `nginx -t`
//! checks every change before nginx reloads, and a refused change is undone (file and
//! symlink). Every site serves `/.well-known/acme-challenge/` from one webroot, so
//! `certbot certonly --webroot` works for any of them; renewal is certbot's own timer.

use crate::inventory::ResolvedHost;
use crate::ops::files::FileOpts;
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::{Argv, maybe_sudo, quote};
use crate::outcome::HostError;
use std::collections::BTreeMap;

pub(crate) const AVAILABLE: &str = "/etc/nginx/sites-available";
pub(crate) const ENABLED: &str = "/etc/nginx/sites-enabled";
/// Where certbot puts http-01 challenges and nginx serves them from.
pub(crate) const WEBROOT: &str = "/var/lib/fleet/acme";
pub(crate) const LIVE: &str = "/etc/letsencrypt/live";
const HEADER: &str = "# Managed by fleet (proxy::site); changes by hand are lost.\n";
const SITE_MARK: &str = "# fleet-site:";

/// Starts nginx, or has the running one reload: systemd when it runs, else nginx itself.
pub(crate) const RELOAD: &str = "if [ -d /run/systemd/system ]; then systemctl reload-or-restart nginx; \
elif pidof nginx >/dev/null; then nginx -s reload; else nginx; fi";

/// Bad input to a site, found before anything is sent to a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SiteError {
    #[error(
        "`{0}` is not a domain name: use letters, digits and - in dot-separated labels (like web3.example.org)"
    )]
    Domain(String),
    #[error(
        "host `{0}` has no usable address (`{1}`): set its `internal_address` (or `address`) var to an IP address or host name"
    )]
    NoAddress(String, String),
    #[error("the domain {domain} is claimed by both {first} and {second}: one host per domain")]
    Duplicate {
        domain: String,
        first: String,
        second: String,
    },
    #[error("`to_port` {0} is not a port (1-65535)")]
    Port(i64),
    #[error("`tls` must be \"acme\" or \"none\", not `{0}`")]
    Tls(String),
    #[error("`max_body` `{0}` is not a size like 10m, 512k or 1g")]
    MaxBody(String),
    #[error("{0}")]
    Acme(String),
    /// A host's `domains` or `proxy` var.
    #[error("host {host}: {message}")]
    Vars { host: String, message: String },
    #[error("host {0}: {1}")]
    OnHost(String, Box<SiteError>),
}

/// The options map of `proxy::site` (the target comes as `to_host` and is resolved by
/// the glue to [`target_address`]).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteOptions {
    pub(crate) domain: String,
    /// The inventory host (a name, or a Host in recipes) the site forwards to.
    #[serde(default)]
    pub(crate) to_host: Option<String>,
    #[serde(default = "default_port")]
    pub(crate) to_port: i64,
    /// `"acme"` for a certificate through certbot, `"none"` (default) for plain HTTP.
    #[serde(default)]
    pub(crate) tls: Option<String>,
    #[serde(default)]
    pub(crate) websocket: bool,
    /// nginx's `client_max_body_size` (`10m`); nginx's default (1m) when absent.
    #[serde(default)]
    pub(crate) max_body: Option<String>,
}

fn default_port() -> i64 {
    80
}

/// One site as the server block holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Site {
    pub(crate) domain: String,
    /// An IP address or host name (IPv6 without brackets).
    pub(crate) to_address: String,
    pub(crate) to_port: u16,
    pub(crate) tls: bool,
    pub(crate) websocket: bool,
    pub(crate) max_body: Option<String>,
}

/// fleet.toml's ACME settings: the directory URL (certbot's default, Let's Encrypt,
/// when absent), the account email, a CA bundle on the proxy host for the directory's
/// HTTPS (a private CA or a test one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Acme {
    pub(crate) directory: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) ca_bundle: Option<String>,
}

impl Acme {
    /// The settings are plain: an https URL, an address, an absolute path.
    pub(crate) fn check(&self) -> Result<(), SiteError> {
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if let Some(d) = &self.directory
            && (!d.starts_with("https://") || !plain(d))
        {
            return Err(SiteError::Acme(format!(
                "acme_directory `{}` in fleet.toml must be an https:// URL",
                d.escape_debug()
            )));
        }
        if let Some(e) = &self.email
            && (!plain(e) || e.starts_with('-') || !e.contains('@'))
        {
            return Err(SiteError::Acme(format!(
                "acme_email `{}` in fleet.toml is not an email address",
                e.escape_debug()
            )));
        }
        if let Some(p) = &self.ca_bundle
            && (!p.starts_with('/') || !plain(p))
        {
            return Err(SiteError::Acme(format!(
                "acme_ca_bundle `{}` in fleet.toml must be an absolute path on the proxy host",
                p.escape_debug()
            )));
        }
        Ok(())
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner `-`, at most 253
/// characters. `dotted` asks for two labels at least (a public domain).
fn dns_name(name: &str, dotted: bool) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && (!dotted || labels.len() >= 2)
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A site's domain, lower-cased.
pub(crate) fn valid_domain(domain: &str) -> Result<String, SiteError> {
    if dns_name(domain, true) {
        Ok(domain.to_ascii_lowercase())
    } else {
        Err(SiteError::Domain(domain.escape_debug().to_string()))
    }
}

/// Where a proxy reaches `host`: its var `internal_address` when set, else its
/// `address` (the same rule as port forwarding's). An IP address or a host name.
pub(crate) fn target_address(host: &ResolvedHost) -> Result<String, SiteError> {
    let address = match host.vars.get("internal_address") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => host.address.clone(),
    };
    if address.parse::<std::net::IpAddr>().is_ok() || dns_name(&address, false) {
        Ok(address)
    } else {
        Err(SiteError::NoAddress(
            host.name.clone(),
            address.escape_debug().to_string(),
        ))
    }
}

impl Site {
    /// Checks `o` for a site forwarding to `to_address` (from [`target_address`]).
    pub(crate) fn from_options(o: &SiteOptions, to_address: &str) -> Result<Site, SiteError> {
        let domain = valid_domain(&o.domain)?;
        let to_port = u16::try_from(o.to_port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or(SiteError::Port(o.to_port))?;
        let tls = match o.tls.as_deref() {
            None | Some("none") => false,
            Some("acme") => true,
            Some(other) => return Err(SiteError::Tls(other.escape_debug().to_string())),
        };
        if let Some(m) = &o.max_body {
            let digits = m.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
            if digits.is_empty()
                || digits.len() + 1 < m.len()
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(SiteError::MaxBody(m.escape_debug().to_string()));
            }
        }
        Ok(Site {
            domain,
            to_address: to_address.to_string(),
            to_port,
            tls,
            websocket: o.websocket,
            max_body: o.max_body.clone(),
        })
    }

    fn upstream(&self) -> String {
        if self.to_address.contains(':') {
            format!("[{}]:{}", self.to_address, self.to_port)
        } else {
            format!("{}:{}", self.to_address, self.to_port)
        }
    }

    /// The line that records the site in its file.
    fn mark(&self) -> String {
        format!(
            "{SITE_MARK} domain={} to={} tls={} websocket={} max_body={}\n",
            self.domain,
            self.upstream(),
            if self.tls { "acme" } else { "none" },
            if self.websocket { "yes" } else { "no" },
            self.max_body.as_deref().unwrap_or("-"),
        )
    }
}

pub(crate) fn available_path(domain: &str) -> String {
    format!("{AVAILABLE}/fleet-{domain}.conf")
}

pub(crate) fn enabled_path(domain: &str) -> String {
    format!("{ENABLED}/fleet-{domain}.conf")
}

fn proxy_location(s: &Site) -> String {
    let mut text = format!(
        "    location / {{\n        proxy_pass http://{};\n        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_set_header X-Forwarded-Proto $scheme;\n",
        s.upstream()
    );
    if s.websocket {
        text.push_str("        proxy_http_version 1.1;\n        proxy_set_header Upgrade $http_upgrade;\n        proxy_set_header Connection \"upgrade\";\n");
    }
    text.push_str("    }\n");
    text
}

/// The server block(s) of `s`. `with_cert`: the certificate exists, so a TLS site
/// listens on 443 and sends plain HTTP there; without it (or without TLS) the site is
/// served on port 80, where the ACME challenge is answered either way.
pub(crate) fn render(s: &Site, with_cert: bool) -> String {
    let body = s
        .max_body
        .as_ref()
        .map(|m| format!("    client_max_body_size {m};\n"))
        .unwrap_or_default();
    let challenge =
        format!("    location /.well-known/acme-challenge/ {{\n        root {WEBROOT};\n    }}\n");
    let mut text = format!(
        "{HEADER}{}server {{\n    listen 80;\n    server_name {};\n{challenge}",
        s.mark(),
        s.domain
    );
    if s.tls && with_cert {
        text.push_str(&format!(
            "    location / {{\n        return 301 https://$host$request_uri;\n    }}\n}}\n\nserver {{\n    listen 443 ssl;\n    server_name {d};\n    ssl_certificate {LIVE}/{d}/fullchain.pem;\n    ssl_certificate_key {LIVE}/{d}/privkey.pem;\n{body}{}}}\n",
            proxy_location(s),
            d = s.domain
        ));
    } else {
        text.push_str(&format!("{body}{}}}\n", proxy_location(s)));
    }
    text
}

/// The site a file fleet wrote records (None for other files).
pub(crate) fn parse(text: &str) -> Option<Site> {
    let line = text.lines().find_map(|l| l.strip_prefix(SITE_MARK))?;
    let fields: BTreeMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    let to = fields.get("to")?;
    let (address, port) = to.rsplit_once(':')?;
    Some(Site {
        domain: fields.get("domain")?.to_string(),
        to_address: address
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        to_port: port.parse().ok()?,
        tls: fields.get("tls") == Some(&"acme"),
        websocket: fields.get("websocket") == Some(&"yes"),
        max_body: fields
            .get("max_body")
            .filter(|m| **m != "-")
            .map(|m| m.to_string()),
    })
}

/// `certbot certonly --webroot` for `domain`, its certificate named after it.
pub(crate) fn certbot_argv(domain: &str, acme: &Acme) -> Argv {
    let mut argv = Argv::new("certbot").args([
        "certonly",
        "--webroot",
        "-w",
        WEBROOT,
        "--cert-name",
        domain,
        "-d",
        domain,
        "--non-interactive",
        "--agree-tos",
    ]);
    argv = match &acme.email {
        Some(e) => argv.args(["--email", e]),
        None => argv.arg("--register-unsafely-without-email"),
    };
    if let Some(d) = &acme.directory {
        argv = argv.args(["--server", d]);
    }
    if let Some(b) = &acme.ca_bundle {
        argv = argv.env("REQUESTS_CA_BUNDLE", b);
    }
    argv
}

/// `openssl x509 -enddate` of the domain's certificate.
pub(crate) fn expiry_argv(domain: &str) -> Argv {
    Argv::new("openssl").args([
        "x509",
        "-noout",
        "-enddate",
        "-in",
        &format!("{LIVE}/{domain}/cert.pem"),
    ])
}

/// `notAfter=Mar  1 12:00:00 2027 GMT` -> `2027-03-01`.
pub(crate) fn parse_expiry(out: &str) -> Option<String> {
    let rest = out.trim().strip_prefix("notAfter=")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let [month, day, _, year, ..] = words[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == month)? + 1;
    let d: u8 = day.parse().ok()?;
    let y: u16 = year.parse().ok()?;
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

fn fail(r: &dyn Remote, message: String) -> HostError {
    HostError::new(r.name(), message)
}

fn query(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::QUERY
    }
}

fn change(sudo: bool) -> CommandOpts {
    CommandOpts {
        sudo,
        ..CommandOpts::CHANGE
    }
}

fn root_file(sudo: bool) -> FileOpts {
    FileOpts {
        mode: Some("0644".into()),
        owner: Some("root:root".into()),
        sudo,
    }
}

/// A file's text, empty when it does not exist.
fn read(r: &dyn Remote, path: &str, sudo: bool) -> Result<String, HostError> {
    let cmd = format!("if [ -f {p} ]; then cat -- {p}; fi", p = quote(path));
    Ok(r.command(
        &cmd,
        CommandOpts {
            allow_fail: false,
            ..query(sudo)
        },
    )?
    .stdout)
}

/// Whether `test FLAG PATH` holds.
fn test(r: &dyn Remote, flag: &str, path: &str, sudo: bool) -> Result<bool, HostError> {
    let argv = Argv::new("test").args([flag, path]);
    Ok(r.program(&argv, query(sudo))?.code == 0)
}

/// The domain's certificate exists.
fn has_cert(r: &dyn Remote, domain: &str, sudo: bool) -> Result<bool, HostError> {
    test(r, "-f", &format!("{LIVE}/{domain}/fullchain.pem"), sudo)
}

/// Makes the site's file hold `new` and enables it; `nginx -t` checks it, and when it
/// refuses, the old file (or none) and the old symlink (or none) come back. True when
/// something changed (nginx then reloaded).
fn install(
    r: &dyn Remote,
    domain: &str,
    old: &str,
    new: &str,
    sudo: bool,
) -> Result<bool, HostError> {
    let (file, link) = (available_path(domain), enabled_path(domain));
    let was_enabled = test(r, "-L", &link, sudo)?;
    let mut changed = crate::ops::files::write_file(r, &file, new.as_bytes(), &root_file(sudo))?;
    if !was_enabled {
        r.program(
            &Argv::new("ln").args(["-sfn", "--", &file, &link]),
            change(sudo),
        )?;
        changed = true;
    }
    if !changed {
        return Ok(false);
    }
    if r.check_mode() {
        r.out("would check the nginx configuration (nginx -t) and reload nginx");
        return Ok(true);
    }
    let check = r.program(&Argv::new("nginx").arg("-t"), query(sudo))?;
    if check.code != 0 {
        if !was_enabled {
            r.program(&Argv::new("rm").args(["-f", "--", &link]), change(sudo))?;
        }
        if old.is_empty() {
            r.program(&Argv::new("rm").args(["-f", "--", &file]), change(sudo))?;
        } else {
            crate::ops::files::write_file(r, &file, old.as_bytes(), &root_file(sudo))?;
        }
        return Err(fail(
            r,
            format!(
                "nginx -t refused the site {domain}, which was put back as it was: {}",
                crate::ops::text::tail(&format!("{}{}", check.stdout, check.stderr), 5)
            ),
        ));
    }
    r.command(&maybe_sudo(RELOAD, sudo), CommandOpts::CHANGE)?;
    Ok(true)
}

/// Makes the site exist as wanted, with its certificate for TLS; the steps that changed
/// something (`site`, `certificate`).
pub(crate) fn site(r: &dyn Remote, s: &Site, acme: &Acme) -> Result<Vec<String>, HostError> {
    let sudo = r.needs_sudo()?;
    let mut changes = Vec::new();
    let old = read(r, &available_path(&s.domain), sudo)?;
    if !old.is_empty() && parse(&old).is_none() {
        return Err(fail(
            r,
            format!(
                "{} exists and is not fleet's: move it away or give the site another domain",
                available_path(&s.domain)
            ),
        ));
    }
    if !test(r, "-d", WEBROOT, sudo)? {
        r.program(
            &Argv::new("mkdir").args(["-p", "--", WEBROOT]),
            change(sudo),
        )?;
        changes.push("webroot".to_string());
    }
    let cert = s.tls && has_cert(r, &s.domain, sudo)?;
    let first = render(s, cert);
    if install(r, &s.domain, &old, &first, sudo)? {
        changes.push("site".to_string());
    }
    if !s.tls || cert {
        return Ok(changes);
    }
    if r.check_mode() {
        r.out(&format!(
            "would request a certificate for {} (certbot certonly --webroot) and add the 443 listener",
            s.domain
        ));
        r.mark_changed();
        changes.push("certificate".to_string());
        return Ok(changes);
    }
    let out = r.program(
        &certbot_argv(&s.domain, acme),
        CommandOpts {
            allow_fail: true,
            ..change(sudo)
        },
    )?;
    if out.code != 0 {
        return Err(fail(
            r,
            format!(
                "certbot could not get a certificate for {} (the site answers on port 80 meanwhile): {}",
                s.domain,
                crate::ops::text::tail(&format!("{}{}", out.stdout, out.stderr), 5)
            ),
        ));
    }
    changes.push("certificate".to_string());
    install(r, &s.domain, &first, &render(s, true), sudo)?;
    Ok(changes)
}

/// The sites fleet manages on the host, by domain.
pub(crate) fn list(r: &dyn Remote) -> Result<BTreeMap<String, Site>, HostError> {
    let sudo = r.needs_sudo()?;
    let cmd = format!(
        "for f in {AVAILABLE}/fleet-*.conf; do [ -f \"$f\" ] && grep -h '^{SITE_MARK}' -- \"$f\"; done; true"
    );
    let out = r.command(
        &cmd,
        CommandOpts {
            allow_fail: false,
            ..query(sudo)
        },
    )?;
    Ok(out
        .stdout
        .lines()
        .filter_map(parse)
        .map(|s| (s.domain.clone(), s))
        .collect())
}

/// Removes the site (symlink and file; `nginx -t` checked, nginx reloaded) and, for a
/// TLS site, its certificate. True when there was such a site.
pub(crate) fn remove(r: &dyn Remote, domain: &str) -> Result<bool, HostError> {
    let domain = valid_domain(domain).map_err(|e| fail(r, format!("proxy::remove: {e}")))?;
    let sudo = r.needs_sudo()?;
    let (file, link) = (available_path(&domain), enabled_path(&domain));
    let old = read(r, &file, sudo)?;
    let enabled = test(r, "-L", &link, sudo)?;
    if old.is_empty() && !enabled {
        return Ok(false);
    }
    let Some(site) = parse(&old) else {
        return Err(fail(
            r,
            format!("{file} is not fleet's: fleet removes only the sites it made"),
        ));
    };
    r.program(
        &Argv::new("rm").args(["-f", "--", &link, &file]),
        change(sudo),
    )?;
    if !r.check_mode() {
        let check = r.program(&Argv::new("nginx").arg("-t"), query(sudo))?;
        if check.code != 0 {
            install(r, &domain, "", &old, sudo)?;
            return Err(fail(
                r,
                format!(
                    "nginx -t refused the configuration without the site {domain}, which was put back: {}",
                    crate::ops::text::tail(&check.stderr, 5)
                ),
            ));
        }
        r.command(&maybe_sudo(RELOAD, sudo), CommandOpts::CHANGE)?;
    }
    if site.tls && has_cert(r, &domain, sudo)? {
        r.program(
            &Argv::new("certbot").args(["delete", "--non-interactive", "--cert-name", &domain]),
            change(sudo),
        )?;
    }
    Ok(true)
}

/// The expiry date (`2027-03-01`) of the domain's certificate; None without one.
pub(crate) fn expiry(r: &dyn Remote, domain: &str) -> Result<Option<String>, HostError> {
    let domain = valid_domain(domain).map_err(|e| fail(r, format!("tls::expiry: {e}")))?;
    let sudo = r.needs_sudo()?;
    if !has_cert(r, &domain, sudo)? {
        return Ok(None);
    }
    let out = r.program(&expiry_argv(&domain), query(sudo))?;
    Ok(parse_expiry(&out.stdout))
}

/// For `fleet status` (any user; root's files through `sudo -n` when allowed): one line
/// `cert=DOMAIN notAfter=…` (or `cert=DOMAIN none`) per fleet TLS site.
pub(crate) const CERTS_QUERY: &str = r#"for f in /etc/nginx/sites-available/fleet-*.conf; do [ -f "$f" ] || continue
d=$(sed -n 's/^# fleet-site: domain=\([^ ]*\) .* tls=acme .*/\1/p' "$f"); [ -n "$d" ] || continue
c="/etc/letsencrypt/live/$d/cert.pem"
e=$(openssl x509 -noout -enddate -in "$c" 2>/dev/null || sudo -n openssl x509 -noout -enddate -in "$c" 2>/dev/null)
echo "cert=$d ${e:-none}"; done"#;

/// A TLS site's certificate as `fleet status` sees it: its expiry date, None when the
/// certificate is missing (or unreadable).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CertExpiry {
    pub(crate) domain: String,
    pub(crate) expires: Option<String>,
}

/// The `cert=` lines of [`CERTS_QUERY`]'s output (host output: only valid domains).
pub(crate) fn parse_certs(text: &str) -> Vec<CertExpiry> {
    text.lines()
        .filter_map(|l| l.strip_prefix("cert="))
        .filter_map(|l| {
            let (domain, rest) = l.split_once(' ')?;
            Some(CertExpiry {
                domain: valid_domain(domain).ok()?,
                expires: parse_expiry(rest),
            })
        })
        .collect()
}

/// The status cell: the soonest expiry (a missing certificate first), `-` without sites.
pub(crate) fn certs_cell(certs: &[CertExpiry]) -> String {
    let Some(first) = certs
        .iter()
        .min_by_key(|c| (c.expires.is_some(), c.expires.clone()))
    else {
        return "-".into();
    };
    let more = match certs.len() {
        1 => String::new(),
        n => format!(" (+{})", n - 1),
    };
    match &first.expires {
        Some(date) => format!("{date} {}{more}", first.domain),
        None => format!("NONE {}{more}", first.domain),
    }
}

/// The sites that host vars ask for: every host with `domains` (names, or maps of
/// `proxy::site` options) forwards them through the proxy host its var `proxy` names.
/// Keyed by proxy host, each site with its target host; a domain claimed twice is
/// refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) by_proxy: BTreeMap<String, Vec<(String, Site)>>,
}

/// One entry of `domains`: a name, or a map of site options without `to_host`.
fn entry_options(host: &str, entry: &serde_json::Value) -> Result<SiteOptions, SiteError> {
    let vars = |message: String| SiteError::Vars {
        host: host.to_string(),
        message,
    };
    match entry {
        serde_json::Value::String(d) => Ok(SiteOptions {
            domain: d.clone(),
            to_port: default_port(),
            ..SiteOptions::default()
        }),
        serde_json::Value::Object(_) => {
            let o: SiteOptions = serde_json::from_value(entry.clone())
                .map_err(|e| vars(format!("an entry of `domains`: {e}")))?;
            if o.to_host.is_some() {
                return Err(vars(
                    "`to_host` has no place in `domains` (the host itself is the target)".into(),
                ));
            }
            Ok(o)
        }
        _ => Err(vars(
            "`domains` holds names or maps like { domain = \"web3.example.org\", to_port = 8080, tls = \"acme\" }".into(),
        )),
    }
}

/// The plan for `hosts` (every host with a `domains` var needs a `proxy` var).
pub(crate) fn plan(hosts: &[ResolvedHost]) -> Result<Plan, SiteError> {
    let mut plan = Plan::default();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for h in hosts {
        let Some(domains) = h.vars.get("domains") else {
            continue;
        };
        let serde_json::Value::Array(entries) = domains else {
            return Err(SiteError::Vars {
                host: h.name.clone(),
                message: "`domains` must be a list like [\"web3.example.org\"]".into(),
            });
        };
        let proxy = match h.vars.get("proxy") {
            Some(serde_json::Value::String(p)) if !p.is_empty() => p.clone(),
            _ => {
                return Err(SiteError::Vars {
                    host: h.name.clone(),
                    message: "it has `domains` but no `proxy` var naming the proxy host (e.g. proxy = \"edge\" on its group)".into(),
                });
            }
        };
        let address = target_address(h)?;
        for entry in entries {
            let o = entry_options(&h.name, entry)?;
            let site = Site::from_options(&o, &address)
                .map_err(|e| SiteError::OnHost(h.name.clone(), Box::new(e)))?;
            if let Some(first) = owner.insert(site.domain.clone(), h.name.clone()) {
                return Err(SiteError::Duplicate {
                    domain: site.domain,
                    first,
                    second: h.name.clone(),
                });
            }
            plan.by_proxy
                .entry(proxy.clone())
                .or_default()
                .push((h.name.clone(), site));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::fake::Scripted;

    fn site(tls: bool) -> Site {
        Site {
            domain: "web3.example.org".into(),
            to_address: "10.0.0.5".into(),
            to_port: 8080,
            tls,
            websocket: false,
            max_body: None,
        }
    }

    #[test]
    fn domains_are_host_names() {
        assert_eq!(
            valid_domain("Web3.Example.org").unwrap(),
            "web3.example.org"
        );
        for bad in [
            "",
            "web3",
            "-a.org",
            "a-.org",
            "a..org",
            "*.example.org",
            "a.org;",
            "a.org\n",
            "a b.org",
            "a/../b.org",
            "$host.org",
        ] {
            assert!(valid_domain(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            valid_domain("a;b.org").unwrap_err().to_string(),
            "`a;b.org` is not a domain name: use letters, digits and - in dot-separated labels (like web3.example.org)"
        );
    }

    #[test]
    fn options_are_checked() {
        let o = |f: fn(&mut SiteOptions)| {
            let mut o = SiteOptions {
                domain: "a.org".into(),
                to_port: 80,
                ..Default::default()
            };
            f(&mut o);
            Site::from_options(&o, "10.0.0.5")
        };
        assert!(o(|_| {}).is_ok());
        assert_eq!(o(|o| o.to_port = 0).unwrap_err(), SiteError::Port(0));
        assert_eq!(
            o(|o| o.to_port = 70000).unwrap_err(),
            SiteError::Port(70000)
        );
        assert!(matches!(
            o(|o| o.tls = Some("yes".into())).unwrap_err(),
            SiteError::Tls(_)
        ));
        let body = |m: &str| {
            let opts = SiteOptions {
                domain: "a.org".into(),
                to_port: 80,
                max_body: Some(m.into()),
                ..Default::default()
            };
            Site::from_options(&opts, "10.0.0.5")
        };
        for good in ["10m", "512k", "1G", "0"] {
            assert!(body(good).is_ok(), "{good:?}");
        }
        for bad in ["", "m", "10mm", "10 m", "10m;", "-1"] {
            assert!(matches!(body(bad), Err(SiteError::MaxBody(_))), "{bad:?}");
        }
    }

    #[test]
    fn the_target_is_the_internal_address_else_the_address() {
        let mut h = ResolvedHost {
            name: "vm".into(),
            address: "127.0.0.1".into(),
            port: None,
            user: None,
            identity_file: None,
            connection: crate::inventory::Connection::default_for("127.0.0.1"),
            groups: vec![],
            vars: Default::default(),
        };
        assert_eq!(target_address(&h).unwrap(), "127.0.0.1");
        h.vars.insert("internal_address".into(), "10.0.0.5".into());
        assert_eq!(target_address(&h).unwrap(), "10.0.0.5");
        h.vars.insert("internal_address".into(), "".into());
        assert_eq!(
            target_address(&h).unwrap_err().to_string(),
            "host `vm` has no usable address (``): set its `internal_address` (or `address`) var to an IP address or host name"
        );
        h.vars.insert("internal_address".into(), "1.2.3.4;x".into());
        assert!(target_address(&h).is_err());
    }

    #[test]
    fn a_plain_site_forwards_port_80() {
        let mut s = site(false);
        s.websocket = true;
        s.max_body = Some("10m".into());
        let text = render(&s, false);
        assert_eq!(
            text,
            "# Managed by fleet (proxy::site); changes by hand are lost.
# fleet-site: domain=web3.example.org to=10.0.0.5:8080 tls=none websocket=yes max_body=10m
server {
    listen 80;
    server_name web3.example.org;
    location /.well-known/acme-challenge/ {
        root /var/lib/fleet/acme;
    }
    client_max_body_size 10m;
    location / {
        proxy_pass http://10.0.0.5:8080;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection \"upgrade\";
    }
}
"
        );
        assert_eq!(parse(&text), Some(s));
    }

    #[test]
    fn a_tls_site_with_its_certificate_listens_on_443() {
        let s = site(true);
        let text = render(&s, true);
        assert_eq!(
            text,
            "# Managed by fleet (proxy::site); changes by hand are lost.
# fleet-site: domain=web3.example.org to=10.0.0.5:8080 tls=acme websocket=no max_body=-
server {
    listen 80;
    server_name web3.example.org;
    location /.well-known/acme-challenge/ {
        root /var/lib/fleet/acme;
    }
    location / {
        return 301 https://$host$request_uri;
    }
}

server {
    listen 443 ssl;
    server_name web3.example.org;
    ssl_certificate /etc/letsencrypt/live/web3.example.org/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/web3.example.org/privkey.pem;
    location / {
        proxy_pass http://10.0.0.5:8080;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
"
        );
        assert_eq!(parse(&text), Some(s.clone()));
        // Before the certificate: port 80 only, so nginx -t passes and ACME can answer.
        assert!(!render(&s, false).contains("443"));
        let mut v6 = site(false);
        v6.to_address = "fd00::5".into();
        assert!(render(&v6, false).contains("proxy_pass http://[fd00::5]:8080;"));
        assert_eq!(parse(&render(&v6, false)), Some(v6));
        assert_eq!(parse("server {}\n"), None);
    }

    #[test]
    fn certbot_gets_the_acme_settings() {
        let acme = Acme {
            directory: Some("https://10.1.0.2:14000/dir".into()),
            email: None,
            ca_bundle: Some("/etc/fleet/ca.pem".into()),
        };
        assert_eq!(
            certbot_argv("web3.test", &acme).line(),
            "REQUESTS_CA_BUNDLE=/etc/fleet/ca.pem certbot certonly --webroot -w /var/lib/fleet/acme --cert-name web3.test -d web3.test --non-interactive --agree-tos --register-unsafely-without-email --server https://10.1.0.2:14000/dir"
        );
        let mail = Acme {
            email: Some("ops@example.org".into()),
            ..Acme::default()
        };
        assert!(
            certbot_argv("a.org", &mail)
                .line()
                .ends_with("--agree-tos --email ops@example.org")
        );
        assert!(acme.check().is_ok());
        for bad in [
            Acme {
                directory: Some("http://x/dir".into()),
                ..Acme::default()
            },
            Acme {
                email: Some("--server=x@y".into()),
                ..Acme::default()
            },
            Acme {
                ca_bundle: Some("ca.pem".into()),
                ..Acme::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_dates_are_read() {
        assert_eq!(
            parse_expiry("notAfter=Mar  1 12:00:00 2027 GMT\n").as_deref(),
            Some("2027-03-01")
        );
        assert_eq!(parse_expiry("garbage"), None);
    }

    #[test]
    fn status_reads_the_certificates() {
        let certs = parse_certs(
            "cert=web3.test notAfter=Mar  1 12:00:00 2027 GMT\ncert=api.test none\ncert=a;b.test notAfter=Mar  1 12:00:00 2027 GMT\nother\n",
        );
        assert_eq!(
            certs,
            [
                CertExpiry {
                    domain: "web3.test".into(),
                    expires: Some("2027-03-01".into())
                },
                CertExpiry {
                    domain: "api.test".into(),
                    expires: None
                }
            ]
        );
        assert_eq!(certs_cell(&certs), "NONE api.test (+1)");
        assert_eq!(certs_cell(&certs[..1]), "2027-03-01 web3.test");
        assert_eq!(certs_cell(&[]), "-");
        // The query finds the domain in the mark line render() writes.
        let line = site(true).mark();
        assert!(
            line.starts_with("# fleet-site: domain=web3.example.org ")
                && line.contains(" tls=acme ")
        );
    }

    #[test]
    fn a_refused_site_is_put_back() {
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            ("if [ -f", 0, ""),
            ("test -d /var/lib/fleet/acme", 0, ""),
            (
                "test -L /etc/nginx/sites-enabled/fleet-web3.example.org.conf",
                1,
                "",
            ),
            ("if [ -f /etc/nginx/sites-available/", 0, "absent\n"),
            ("", 0, ""),
            ("ln -sfn", 0, ""),
            ("nginx -t", 1, ""),
            (
                "rm -f -- /etc/nginx/sites-enabled/fleet-web3.example.org.conf",
                0,
                "",
            ),
            (
                "rm -f -- /etc/nginx/sites-available/fleet-web3.example.org.conf",
                0,
                "",
            ),
        ]);
        let e = super::site(&r, &site(false), &Acme::default()).unwrap_err();
        assert!(
            e.message
                .starts_with("nginx -t refused the site web3.example.org, which was put back"),
            "{}",
            e.message
        );
        assert!(!r.ran().iter().any(|c| c.contains("reload")));
    }

    #[test]
    fn an_unchanged_site_changes_nothing_and_reloads_nothing() {
        let s = site(true);
        let text = render(&s, true);
        let inspect = format!(
            "{}\n644 root:root\n",
            crate::ops::files::sha256_hex(text.as_bytes())
        );
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            ("if [ -f", 0, &text),
            ("test -d", 0, ""),
            (
                "test -f /etc/letsencrypt/live/web3.example.org/fullchain.pem",
                0,
                "",
            ),
            ("test -L", 0, ""),
            ("if [ -f /etc/nginx/sites-available/", 0, &inspect),
        ]);
        assert!(super::site(&r, &s, &Acme::default()).unwrap().is_empty());
        assert!(!r.marked());
    }

    #[test]
    fn a_new_tls_site_gets_its_certificate_then_the_443_listener() {
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            ("if [ -f", 0, ""),
            ("test -d", 1, ""),
            ("mkdir -p -- /var/lib/fleet/acme", 0, ""),
            (
                "test -f /etc/letsencrypt/live/web3.example.org/fullchain.pem",
                1,
                "",
            ),
            ("test -L", 1, ""),
            ("if [ -f /etc/nginx/sites-available/", 0, "absent\n"),
            ("", 0, ""),
            ("ln -sfn", 0, ""),
            ("nginx -t", 0, ""),
            ("if [ -d /run/systemd/system ]", 0, ""),
            ("certbot certonly", 0, ""),
            ("test -L", 0, ""),
            ("if [ -f /etc/nginx/sites-available/", 0, "absent\n"),
            ("", 0, ""),
            ("nginx -t", 0, ""),
            ("if [ -d /run/systemd/system ]", 0, ""),
        ]);
        let changes = super::site(&r, &site(true), &Acme::default()).unwrap();
        assert_eq!(changes, ["webroot", "site", "certificate"]);
        assert!(r.ran().iter().any(|c| c.starts_with("certbot certonly")));
    }

    #[test]
    fn check_mode_says_a_certificate_would_be_requested() {
        let mut r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            ("if [ -f", 0, ""),
            ("test -d", 0, ""),
            ("test -f", 1, ""),
            ("test -L", 1, ""),
            ("if [ -f /etc/nginx/sites-available/", 0, "absent\n"),
        ]);
        r.check = true;
        let changes = super::site(&r, &site(true), &Acme::default()).unwrap();
        assert_eq!(changes, ["site", "certificate"]);
        assert!(!r.ran().iter().any(|c| c.starts_with("certbot")));
        assert!(
            r.printed()
                .iter()
                .any(|l| l.starts_with("would request a certificate for web3.example.org"))
        );
    }

    #[test]
    fn removal_takes_the_certificate_along() {
        let text = render(&site(true), true);
        let r = Scripted::new(&[
            ("id -u", 0, "0\n"),
            ("if [ -f", 0, &text),
            ("test -L", 0, ""),
            (
                "rm -f -- /etc/nginx/sites-enabled/fleet-web3.example.org.conf /etc/nginx/sites-available/fleet-web3.example.org.conf",
                0,
                "",
            ),
            ("nginx -t", 0, ""),
            ("if [ -d /run/systemd/system ]", 0, ""),
            ("test -f", 0, ""),
            (
                "certbot delete --non-interactive --cert-name web3.example.org",
                0,
                "",
            ),
        ]);
        assert!(super::remove(&r, "web3.example.org").unwrap());
        let r = Scripted::new(&[("id -u", 0, "0\n"), ("if [ -f", 0, ""), ("test -L", 1, "")]);
        assert!(!super::remove(&r, "web3.example.org").unwrap());
    }

    fn host(name: &str, vars: serde_json::Value) -> ResolvedHost {
        ResolvedHost {
            name: name.into(),
            address: name.into(),
            port: None,
            user: None,
            identity_file: None,
            connection: crate::inventory::Connection::default_for(name),
            groups: vec![],
            vars: serde_json::from_value(vars).unwrap(),
        }
    }

    #[test]
    fn host_vars_make_a_plan() {
        use serde_json::json;
        let hosts = [
            host("edge", json!({})),
            host(
                "vm",
                json!({"proxy": "edge", "internal_address": "10.0.0.5", "domains": ["web3.test", {"domain": "api.test", "to_port": 8080, "tls": "acme"}]}),
            ),
        ];
        let plan = plan(&hosts).unwrap();
        let sites = &plan.by_proxy["edge"];
        assert_eq!(sites.len(), 2);
        assert_eq!((sites[1].1.to_port, sites[1].1.tls), (8080, true));
        assert_eq!(sites[0].0, "vm");
        let twice = [
            hosts[1].clone(),
            host("vm2", json!({"proxy": "edge", "domains": ["WEB3.test"]})),
        ];
        assert_eq!(
            super::plan(&twice).unwrap_err().to_string(),
            "the domain web3.test is claimed by both vm and vm2: one host per domain"
        );
        let no_proxy = [host("vm", json!({"domains": ["a.test"]}))];
        assert!(
            super::plan(&no_proxy)
                .unwrap_err()
                .to_string()
                .contains("no `proxy` var")
        );
        let bad = [host("vm", json!({"proxy": "edge", "domains": ["a;b"]}))];
        assert!(
            super::plan(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("host vm: `a;b` is not a domain name")
        );
    }
}
