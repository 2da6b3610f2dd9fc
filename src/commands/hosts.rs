//! `fleet hosts [PATTERN]`: the deployed machines with address, groups and variables.

use super::load_inventory;
use crate::App;
use crate::error::Result;
use crate::inventory::{Connection, ResolvedHost};
use std::io::Write;

pub(crate) fn run(app: &App, pattern: &str) -> Result<i32> {
    let inventory = load_inventory(app)?;
    let mut selected = crate::inventory::select(&inventory, pattern)?;
    if let Some(limit) = &app.global.limit {
        let allowed = crate::inventory::select(&inventory, limit)?;
        selected.retain(|h| allowed.iter().any(|a| a.name == h.name));
    }
    let resolver = inventory.resolver();
    let hosts: Vec<ResolvedHost> = selected
        .iter()
        .filter_map(|h| resolver.resolve(&h.name))
        .collect();
    let text = if app.global.json {
        serde_json::to_string_pretty(&hosts).unwrap_or_default() + "\n"
    } else {
        render(&hosts)
    };
    // `fleet hosts | head` closes the pipe early: that is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

fn render(hosts: &[ResolvedHost]) -> String {
    let header: Vec<String> = ["HOST", "ADDRESS", "GROUPS", "VARS"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            let address = match h.connection {
                Connection::Local => "local".to_string(),
                Connection::Ssh => {
                    let user = h.user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
                    let port = h.port.map(|p| format!(":{p}")).unwrap_or_default();
                    format!("{user}{}{port}", h.address)
                }
            };
            let vars = h
                .vars
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ");
            vec![h.name.clone(), address, h.groups.join(","), vars]
        })
        .collect();
    crate::table::render(&header, &rows)
}
