//! placeholder
use super::*;
pub fn parse(name: &str, text: &str) -> crate::error::Result<Inventory> {
    let v: ::toml::Table =
        ::toml::from_str(text).map_err(|e| crate::error::Error::usage(e.to_string()))?;
    let mut inv = Inventory {
        source: name.to_string(),
        ..Default::default()
    };
    inv.groups.insert(
        "all".into(),
        Group {
            name: "all".into(),
            ..Default::default()
        },
    );
    if let Some(hosts) = v.get("hosts").and_then(|h| h.as_table()) {
        for (n, h) in hosts {
            let mut host = Host::new(n);
            if let Some(c) = h.get("connection").and_then(|c| c.as_str()) {
                host.connection = if c == "local" {
                    Connection::Local
                } else {
                    Connection::Ssh
                };
            }
            if let Some(g) = h.get("groups").and_then(|c| c.as_array()) {
                host.groups = g
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
            }
            if let Some(vars) = h.get("vars").and_then(|c| c.as_table()) {
                for (k, v) in vars {
                    host.vars
                        .insert(k.clone(), serde_json::to_value(v).unwrap());
                }
            }
            inv.hosts.insert(n.clone(), host);
        }
    }
    Ok(inv)
}
