//! The app catalog of a project (`catalog/index.json`): which apps exist, the role
//! (a Rhai module in `catalog/roles/`) that installs each, the ports it needs and in
//! which scope, and what it depends on. Every field is checked before anything runs,
//! and a port is only ever used through `ufw::Rule`.

use super::ufw::{self, Rule};
use serde::Deserialize;

pub(crate) const INDEX: &str = "catalog/index.json";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Index {
    apps: Vec<AppSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSpec {
    name: String,
    role: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    ports: Vec<PortSpec>,
    #[serde(default)]
    depends: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortSpec {
    /// A number, or a string: "80", "8000:8010".
    port: serde_json::Value,
    #[serde(default = "tcp")]
    proto: String,
    scope: String,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Allowed from anywhere.
    Public,
    /// Allowed from the RFC 1918 ranges.
    Lan,
    /// Local only: no firewall rule.
    Local,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Port {
    pub(crate) ports: ufw::Ports,
    pub(crate) proto: ufw::Proto,
    pub(crate) scope: Scope,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct App {
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) description: String,
    pub(crate) ports: Vec<Port>,
    pub(crate) depends: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Catalog {
    pub(crate) apps: Vec<App>,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c))
}

/// Why the app catalog cannot be read or the apps asked for cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CatalogError {
    /// The index is malformed; the message names the file, the app and the field.
    #[error("{0}")]
    Index(String),
    #[error("app `{name}` is not in the catalog{suggestion}")]
    Unknown { name: String, suggestion: String },
    #[error("the catalog's depends form a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A host's `apps` var is not a list of names.
    #[error("the var `apps` must be a list of app names like [\"nginx\"]")]
    AppsVar,
}

impl From<String> for CatalogError {
    fn from(message: String) -> Self {
        CatalogError::Index(message)
    }
}

impl Catalog {
    /// Parses and checks the index; errors name the file, the app and the field.
    pub(crate) fn parse(file: &str, text: &str) -> Result<Catalog, CatalogError> {
        let index: Index = serde_json::from_str(text)
            .map_err(|e| format!("{file}:{}:{}: {e}", e.line(), e.column()))?;
        let mut apps = Vec::new();
        for (i, a) in index.apps.into_iter().enumerate() {
            let at = |field: &str| {
                CatalogError::Index(format!("{file}: app `{}` (apps[{i}]): {field}", a.name))
            };
            if !safe_name(&a.name) {
                return Err(format!(
                    "{file}: apps[{i}].name `{}` must be lowercase letters, digits, `-` and `_`",
                    a.name
                )
                .into());
            }
            if apps.iter().any(|x: &App| x.name == a.name) {
                return Err(at("the name is used twice"));
            }
            if !safe_name(&a.role) {
                return Err(at(&format!(
                    "role `{}` must name a file catalog/roles/<role>.rhai (lowercase letters, digits, `-`, `_`)",
                    a.role
                )));
            }
            let mut ports = Vec::new();
            for (k, p) in a.ports.iter().enumerate() {
                let text = match &p.port {
                    serde_json::Value::Number(n) => n.to_string(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let ports_ =
                    ufw::parse_ports(&text).map_err(|e| at(&format!("ports[{k}].port {e}")))?;
                let proto = ufw::Proto::parse(&p.proto).ok_or_else(|| {
                    at(&format!(
                        "ports[{k}].proto `{}` is not tcp, udp or any",
                        p.proto
                    ))
                })?;
                if ports_.from != ports_.to && proto == ufw::Proto::Any {
                    return Err(at(&format!(
                        "ports[{k}]: a port range needs proto tcp or udp"
                    )));
                }
                let scope = match p.scope.as_str() {
                    "public" => Scope::Public,
                    "lan" => Scope::Lan,
                    "local" => Scope::Local,
                    other => {
                        return Err(at(&format!(
                            "ports[{k}].scope `{other}` is not public, lan or local"
                        )));
                    }
                };
                ports.push(Port {
                    ports: ports_,
                    proto,
                    scope,
                });
            }
            apps.push(App {
                name: a.name,
                role: a.role,
                description: a.description,
                ports,
                depends: a.depends,
            });
        }
        let catalog = Catalog { apps };
        for a in &catalog.apps {
            for d in &a.depends {
                if catalog.get(d).is_none() {
                    return Err(format!(
                        "{file}: app `{}` depends on `{d}`, which is not in the catalog{}",
                        a.name,
                        catalog.suggest(d)
                    )
                    .into());
                }
            }
        }
        Ok(catalog)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name == name)
    }

    fn suggest(&self, name: &str) -> String {
        crate::suggest::closest(name, self.apps.iter().map(|a| a.name.as_str()))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default()
    }

    /// The chosen apps and everything they depend on, dependencies first, each once.
    pub(crate) fn resolve(&self, chosen: &[String]) -> Result<Vec<&App>, CatalogError> {
        let mut order: Vec<&App> = Vec::new();
        let mut path: Vec<&str> = Vec::new();
        for name in chosen {
            let app = self.get(name).ok_or_else(|| CatalogError::Unknown {
                name: name.clone(),
                suggestion: self.suggest(name),
            })?;
            self.visit(app, &mut path, &mut order)?;
        }
        Ok(order)
    }

    fn visit<'a>(
        &'a self,
        app: &'a App,
        path: &mut Vec<&'a str>,
        order: &mut Vec<&'a App>,
    ) -> Result<(), CatalogError> {
        if order.iter().any(|a| a.name == app.name) {
            return Ok(());
        }
        if let Some(i) = path.iter().position(|n| *n == app.name) {
            let mut cycle: Vec<String> = path[i..].iter().map(|n| n.to_string()).collect();
            cycle.push(app.name.clone());
            return Err(CatalogError::Cycle(cycle));
        }
        path.push(&app.name);
        for d in &app.depends {
            // parse() made sure every dependency exists.
            if let Some(dep) = self.get(d) {
                self.visit(dep, path, order)?;
            }
        }
        path.pop();
        order.push(app);
        Ok(())
    }
}

impl Scope {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::Public => "public",
            Scope::Lan => "lan",
            Scope::Local => "local",
        }
    }
}

impl Port {
    /// `80/tcp`, `8000:8010/udp`, `53` (any protocol).
    pub(crate) fn spec(&self) -> String {
        match self.proto {
            ufw::Proto::Tcp => format!("{}/tcp", self.ports),
            ufw::Proto::Udp => format!("{}/udp", self.ports),
            ufw::Proto::Any => self.ports.to_string(),
        }
    }
}

/// The apps a host chose in its `apps` var (a list of names), as `fleet configure`
/// reads it (stdlib/configure.rhai: `vars.apps`, else none).
pub(crate) fn chosen_apps(vars: &crate::inventory::Vars) -> Result<Vec<String>, CatalogError> {
    match vars.get("apps") {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| CatalogError::AppsVar),
    }
}

/// Which hosts have each app: the apps each host chose and everything those depend on
/// (what `configure` installs, `Catalog::resolve`), by app name; and, per host whose
/// `apps` cannot be resolved, why.
pub(crate) fn hosts_by_app<'a>(
    catalog: &Catalog,
    hosts: impl IntoIterator<Item = (&'a str, &'a crate::inventory::Vars)>,
) -> (std::collections::BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut by_app: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut problems = Vec::new();
    for (host, vars) in hosts {
        let apps = chosen_apps(vars).and_then(|chosen| {
            catalog
                .resolve(&chosen)
                .map(|apps| apps.iter().map(|a| a.name.clone()).collect::<Vec<_>>())
        });
        match apps {
            Ok(apps) => {
                for app in apps {
                    by_app.entry(app).or_default().push(host.to_string());
                }
            }
            Err(e) => problems.push(format!("host {host}: {e}")),
        }
    }
    (by_app, problems)
}

/// The firewall rules for the apps' ports: public from anywhere, lan from the RFC 1918
/// ranges, local none. `lan_only` narrows public ports to the LAN too.
pub(crate) fn rules(apps: &[&App], lan_only: bool) -> Vec<Rule> {
    let mut out = Vec::new();
    for app in apps {
        for p in &app.ports {
            let sources: Vec<Option<String>> = match (p.scope, lan_only) {
                (Scope::Local, _) => continue,
                (Scope::Public, false) => vec![None],
                _ => ufw::LAN.iter().map(|n| Some(n.to_string())).collect(),
            };
            for source in sources {
                out.push(Rule {
                    action: ufw::Action::Allow,
                    ports: p.ports,
                    proto: p.proto,
                    source,
                    comment: format!("{} app {}", ufw::MARK, app.name),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX_JSON: &str = r#"{"apps": [
  {"name": "nginx", "role": "nginx", "ports": [{"port": 80, "proto": "tcp", "scope": "public"}, {"port": "443", "scope": "public"}]},
  {"name": "postgres", "role": "postgres", "ports": [{"port": 5432, "proto": "tcp", "scope": "lan"}]},
  {"name": "app", "role": "app", "ports": [{"port": "9000:9010", "proto": "udp", "scope": "local"}], "depends": ["postgres", "nginx"]},
  {"name": "worker", "role": "app", "depends": ["app"]}
]}"#;

    fn catalog() -> Catalog {
        Catalog::parse(INDEX, INDEX_JSON).unwrap()
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let c = catalog();
        let names = |apps: Vec<&App>| apps.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(c.resolve(&["worker".into(), "nginx".into()]).unwrap()),
            ["postgres", "nginx", "app", "worker"]
        );
        assert_eq!(
            c.resolve(&["ngnix".into()]).unwrap_err().to_string(),
            "app `ngnix` is not in the catalog (did you mean `nginx`?)"
        );
    }

    #[test]
    fn a_cycle_is_named() {
        let text = r#"{"apps": [
          {"name": "a", "role": "a", "depends": ["b"]},
          {"name": "b", "role": "b", "depends": ["c"]},
          {"name": "c", "role": "c", "depends": ["a"]}]}"#;
        let c = Catalog::parse(INDEX, text).unwrap();
        assert_eq!(
            c.resolve(&["a".into()]).unwrap_err().to_string(),
            "the catalog's depends form a cycle: a -> b -> c -> a"
        );
    }

    #[test]
    fn ports_become_rules_by_scope() {
        let c = catalog();
        let apps = c.resolve(&["app".into()]).unwrap();
        let specs: Vec<String> = rules(&apps, false).iter().map(|r| r.line()).collect();
        assert_eq!(
            specs,
            [
                "ufw allow from 10.0.0.0/8 to any port 5432 proto tcp comment 'fleet: app postgres'",
                "ufw allow from 172.16.0.0/12 to any port 5432 proto tcp comment 'fleet: app postgres'",
                "ufw allow from 192.168.0.0/16 to any port 5432 proto tcp comment 'fleet: app postgres'",
                "ufw allow 80/tcp comment 'fleet: app nginx'",
                "ufw allow 443/tcp comment 'fleet: app nginx'",
            ]
        );
        assert_eq!(rules(&apps, true).len(), 9);
    }

    #[test]
    fn bad_entries_name_the_app_and_field() {
        let bad = |apps: &str| {
            Catalog::parse(INDEX, &format!(r#"{{"apps": [{apps}]}}"#))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(
                r#"{"name": "web", "role": "nginx", "ports": [{"port": "80; reboot", "scope": "public"}]}"#
            ),
            "catalog/index.json: app `web` (apps[0]): ports[0].port `80; reboot` is not a port (1-65535) or a range like 8000:8010"
        );
        assert!(
            bad(r#"{"name": "web", "role": "nginx", "ports": [{"port": 80, "scope": "world"}]}"#)
                .contains("ports[0].scope `world` is not public, lan or local")
        );
        assert!(bad(r#"{"name": "web", "role": "../../etc/x"}"#).contains("role `../../etc/x`"));
        assert!(bad(r#"{"name": "Web", "role": "x"}"#).contains("apps[0].name `Web`"));
        assert!(
            bad(r#"{"name": "web", "role": "x", "depends": ["db"]}"#)
                .contains("app `web` depends on `db`, which is not in the catalog")
        );
        assert!(
            bad(r#"{"name": "web", "role": "x", "port": 80}"#).starts_with("catalog/index.json:1:")
        );
        assert!(
            bad(r#"{"name": "a", "role": "x"}, {"name": "a", "role": "x"}"#).contains("used twice")
        );
    }

    #[test]
    fn catalog_errors_say_what_is_wrong() {
        let cases = [
            (
                CatalogError::Index("apps.toml: app `x` (apps[0]): no name".into()),
                "apps.toml: app `x` (apps[0]): no name",
            ),
            (
                CatalogError::Unknown {
                    name: "ngnix".into(),
                    suggestion: "; did you mean `nginx`?".into(),
                },
                "app `ngnix` is not in the catalog; did you mean `nginx`?",
            ),
            (
                CatalogError::Cycle(vec!["a".into(), "b".into(), "a".into()]),
                "the catalog's depends form a cycle: a -> b -> a",
            ),
            (
                CatalogError::AppsVar,
                "the var `apps` must be a list of app names like [\"nginx\"]",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn hosts_have_their_apps_and_what_those_depend_on() {
        let c = catalog();
        let vars = |apps: serde_json::Value| {
            let mut v = crate::inventory::Vars::default();
            v.insert("apps".into(), apps);
            v
        };
        let (web, db, none, bad, typo) = (
            vars(serde_json::json!(["nginx"])),
            vars(serde_json::json!(["worker"])),
            crate::inventory::Vars::default(),
            vars(serde_json::json!("nginx")),
            vars(serde_json::json!(["ngnix"])),
        );
        let (by_app, problems) = hosts_by_app(
            &c,
            [
                ("web", &web),
                ("db", &db),
                ("plain", &none),
                ("bad", &bad),
                ("typo", &typo),
            ],
        );
        assert_eq!(by_app["nginx"], ["web", "db"]);
        assert_eq!(by_app["postgres"], ["db"]);
        assert_eq!(by_app["worker"], ["db"]);
        assert_eq!(
            problems,
            [
                "host bad: the var `apps` must be a list of app names like [\"nginx\"]",
                "host typo: app `ngnix` is not in the catalog (did you mean `nginx`?)"
            ]
        );
        let ports: Vec<String> = c.get("app").unwrap().ports.iter().map(Port::spec).collect();
        assert_eq!(ports, ["9000:9010/udp"]);
    }
}
