//! `fleet catalog`: the apps of the project's catalog (`catalog/index.json`, or first
//! checked out from `--catalog-repo` as `fleet configure` does) with their ports,
//! scopes and dependencies, and which hosts have each (their `apps` var).

use crate::App;
use crate::error::{Error, Result};
use crate::ops::catalog::{self, Catalog, hosts_by_app};
use std::io::Write;

#[derive(Debug, serde::Serialize)]
struct PortRow {
    port: String,
    proto: &'static str,
    scope: &'static str,
}

#[derive(Debug, serde::Serialize)]
struct AppRow {
    name: String,
    role: String,
    description: String,
    ports: Vec<PortRow>,
    depends: Vec<String>,
    /// Hosts that have the app: chosen in their `apps` var, or needed by one chosen.
    hosts: Vec<String>,
}

pub(crate) fn run(app: &App, repo: Option<&str>, rev: Option<&str>) -> Result<i32> {
    let root = &app.project.root;
    if let Some(url) = repo {
        let url = crate::ops::git::url_under(root, url);
        // --require-signed: the revision is checked in the source, then pinned.
        let verified = match super::signed::keys(app) {
            Some(keys) => Some(super::signed::verified_commit(&url, rev, &keys)?),
            None => None,
        };
        let rev = verified.as_deref().or(rev);
        let out = crate::ops::git::sync(&url, &root.join("catalog"), None, rev)
            .map_err(|e| Error::usage(e.to_string()))?;
        if let Some(w) = &out.warning {
            eprintln!("warning: {}", crate::ops::terminal::neutralise(w));
        }
    }
    let path = root.join(catalog::INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::usage_with_help(
            format!(
                "cannot read the app catalog {}: {e}",
                crate::project::display_path(&path)
            ),
            "create catalog/index.json, or pass --catalog-repo URL",
        )
    })?;
    let catalog = Catalog::parse(catalog::INDEX, &text).map_err(|e| Error::usage(e.to_string()))?;
    let inventory = super::load_inventory(app)?;
    let resolver = inventory.resolver();
    let hosts: Vec<_> = inventory
        .host_names()
        .filter_map(|h| resolver.resolve(h))
        .collect();
    let (mut by_app, problems) =
        hosts_by_app(&catalog, hosts.iter().map(|h| (h.name.as_str(), &h.vars)));
    for p in &problems {
        eprintln!("warning: {}", crate::ops::terminal::neutralise(p));
    }
    let rows: Vec<AppRow> = catalog
        .apps
        .iter()
        .map(|a| AppRow {
            name: a.name.clone(),
            role: a.role.clone(),
            description: a.description.clone(),
            ports: a
                .ports
                .iter()
                .map(|p| PortRow {
                    port: p.ports.to_string(),
                    proto: p.proto.as_str(),
                    scope: p.scope.as_str(),
                })
                .collect(),
            depends: a.depends.clone(),
            hosts: by_app.remove(&a.name).unwrap_or_default(),
        })
        .collect();
    let text = if app.global.json {
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    } else if rows.is_empty() {
        "the catalog has no apps\n".to_string()
    } else {
        render(&catalog, &rows)
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

fn render(catalog: &Catalog, rows: &[AppRow]) -> String {
    let header: Vec<String> = ["APP", "ROLE", "PORTS", "DEPENDS", "HOSTS", "DESCRIPTION"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let or_dash = |list: Vec<String>| {
        if list.is_empty() {
            "-".to_string()
        } else {
            list.join(", ")
        }
    };
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let ports = catalog
                .get(&r.name)
                .map(|a| {
                    a.ports
                        .iter()
                        .map(|p| format!("{} {}", p.spec(), p.scope.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                r.name.clone(),
                r.role.clone(),
                or_dash(ports),
                or_dash(r.depends.clone()),
                or_dash(r.hosts.clone()),
                r.description.clone(),
            ]
        })
        .collect();
    crate::table::render(&header, &lines)
}
