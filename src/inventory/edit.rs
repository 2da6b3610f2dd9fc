//! Adding and removing hosts of a TOML inventory in place (toml_edit): comments,
//! ordering and formatting of everything else stay as the user wrote them.

use toml_edit::{Array, DocumentMut, Item, Table, Value};

/// A host entry as `[hosts.NAME]` holds it; also the entry map of `inventory::add`
/// (an empty `address` is refused by the caller, which names the function).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostEntry {
    #[serde(default)]
    pub(crate) address: String,
    #[serde(default, deserialize_with = "crate::ops::options::some_port")]
    pub(crate) port: Option<u16>,
    #[serde(default)]
    pub(crate) user: Option<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
    #[serde(default)]
    pub(crate) vars: serde_json::Map<String, serde_json::Value>,
}

/// Why an inventory could not be edited; `file` names it as the user gave it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    #[error("{file} is not valid TOML: {source}")]
    NotToml {
        file: String,
        source: toml_edit::TomlError,
    },
    #[error("{file}: `hosts` must be a table of [hosts.NAME] entries")]
    HostsNotATable { file: String },
    #[error("{file}: hosts.{name} must be a table")]
    HostNotATable { file: String, name: String },
    #[error("host {name} is not in {file}: add it first (inventory::add)")]
    NoHost { file: String, name: String },
    #[error("cannot add host `{}` to {file}: {why}", name.escape_debug())]
    BadHost {
        name: String,
        file: String,
        why: super::checks::BadValue,
    },
    #[error(
        "host {name} is already in {file}; remove it first (fleet terminate {name} --force) or pick another name"
    )]
    AlreadyThere { name: String, file: String },
}

fn parse(file: &str, text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|source| EditError::NotToml {
            file: file.to_string(),
            source,
        })
}

fn toml_value(v: &serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64()?),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(a) => Value::Array(a.iter().filter_map(toml_value).collect()),
        J::Object(o) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, v) in o {
                if let Some(v) = toml_value(v) {
                    t.insert(k, v);
                }
            }
            Value::InlineTable(t)
        }
    })
}

/// The `[hosts]` table, made (implicit, so only `[hosts.NAME]` headers show) if missing.
fn hosts_table<'d>(doc: &'d mut DocumentMut, file: &str) -> Result<&'d mut Table, EditError> {
    if !doc.contains_key("hosts") {
        let mut hosts = Table::new();
        hosts.set_implicit(true);
        doc.insert("hosts", Item::Table(hosts));
    }
    doc["hosts"]
        .as_table_mut()
        .ok_or_else(|| EditError::HostsNotATable {
            file: file.to_string(),
        })
}

/// The inventory with `[hosts.NAME]` appended; an existing host is an error.
pub(crate) fn add_host(
    file: &str,
    text: &str,
    name: &str,
    entry: &HostEntry,
) -> Result<String, EditError> {
    let checked = super::checks::host_name(name)
        .and_then(|()| super::checks::address(&entry.address))
        .and_then(|()| entry.user.as_deref().map_or(Ok(()), super::checks::user));
    if let Err(why) = checked {
        return Err(EditError::BadHost {
            name: name.to_string(),
            file: file.to_string(),
            why,
        });
    }
    let mut doc = parse(file, text)?;
    let hosts = hosts_table(&mut doc, file)?;
    if hosts.contains_key(name) {
        return Err(EditError::AlreadyThere {
            name: name.to_string(),
            file: file.to_string(),
        });
    }
    let mut t = Table::new();
    t.insert("address", toml_edit::value(entry.address.as_str()));
    if let Some(p) = entry.port {
        t.insert("port", toml_edit::value(i64::from(p)));
    }
    if let Some(u) = &entry.user {
        t.insert("user", toml_edit::value(u.as_str()));
    }
    if !entry.groups.is_empty() {
        let groups: Array = entry.groups.iter().map(String::as_str).collect();
        t.insert("groups", toml_edit::value(groups));
    }
    if !entry.vars.is_empty()
        && let Some(v) = toml_value(&serde_json::Value::Object(entry.vars.clone()))
    {
        t.insert("vars", toml_edit::value(v));
    }
    hosts.insert(name, Item::Table(t));
    Ok(doc.to_string())
}

/// The inventory with host `name` reached through the local transport (pull mode):
/// its groups and vars stay, its address, port, user and key go; added if missing.
pub(crate) fn make_local(file: &str, text: &str, name: &str) -> Result<String, EditError> {
    let mut doc = parse(file, text)?;
    let hosts = hosts_table(&mut doc, file)?;
    if !hosts.contains_key(name) {
        hosts.insert(name, Item::Table(Table::new()));
    }
    let entry = hosts[name]
        .as_table_mut()
        .ok_or_else(|| EditError::HostNotATable {
            file: file.to_string(),
            name: name.to_string(),
        })?;
    for key in ["address", "port", "user", "identity_file"] {
        entry.remove(key);
    }
    entry.insert("connection", toml_edit::value("local"));
    Ok(doc.to_string())
}

/// The inventory without host `name`: its `[hosts.NAME]` table and its place in every
/// group's `hosts` list. `None` when the name appears nowhere.
pub(crate) fn remove_host(file: &str, text: &str, name: &str) -> Result<Option<String>, EditError> {
    let mut doc = parse(file, text)?;
    let mut found = doc
        .get_mut("hosts")
        .and_then(Item::as_table_like_mut)
        .is_some_and(|t| t.remove(name).is_some());
    if let Some(groups) = doc.get_mut("groups").and_then(Item::as_table_like_mut) {
        for (_, group) in groups.iter_mut() {
            if let Some(list) = group
                .as_table_like_mut()
                .and_then(|g| g.get_mut("hosts"))
                .and_then(Item::as_array_mut)
            {
                let before = list.len();
                list.retain(|v| v.as_str() != Some(name));
                found |= list.len() != before;
            }
        }
    }
    Ok(found.then(|| doc.to_string()))
}

/// The inventory with host `name`'s vars updated in place: each var of `vars` is set,
/// a null one removed. `None` when nothing changes.
pub(crate) fn set_vars(
    file: &str,
    text: &str,
    name: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, EditError> {
    let mut doc = parse(file, text)?;
    let hosts = hosts_table(&mut doc, file)?;
    let Some(item) = hosts.get_mut(name) else {
        return Err(EditError::NoHost {
            file: file.to_string(),
            name: name.to_string(),
        });
    };
    let entry = item
        .as_table_like_mut()
        .ok_or_else(|| EditError::HostNotATable {
            file: file.to_string(),
            name: name.to_string(),
        })?;
    if entry.get("vars").is_none() {
        entry.insert("vars", toml_edit::value(toml_edit::InlineTable::new()));
    }
    let table = entry
        .get_mut("vars")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| EditError::HostNotATable {
            file: file.to_string(),
            name: format!("{name}.vars"),
        })?;
    let mut changed = false;
    for (key, value) in vars {
        match toml_value(value) {
            None => changed |= table.remove(key).is_some(),
            Some(new) => {
                let same = table
                    .get(key)
                    .and_then(Item::as_value)
                    .is_some_and(|old| old.to_string().trim() == new.to_string().trim());
                if !same {
                    table.insert(key, Item::Value(new));
                    changed = true;
                }
            }
        }
    }
    if table.is_empty() {
        entry.remove("vars");
    }
    Ok(changed.then(|| doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"# the lab
[vars]
ssh_port = 22  # everywhere

[hosts.pve1]
address = "10.0.0.2"   # the node
groups = ["proxmox"]

[hosts.web-1]
address = "10.0.0.4"

[groups.web]
hosts = ["web-1", "web-3"]  # both
"#;

    #[test]
    fn adds_a_host_keeping_comments() {
        let entry = HostEntry {
            address: "10.0.0.5".into(),
            port: Some(2222),
            user: Some("admin".into()),
            groups: vec!["vms".into(), "web".into()],
            vars: serde_json::json!({ "proxmox_node": "pve1", "vmid": 105 })
                .as_object()
                .unwrap()
                .clone(),
        };
        let out = add_host("inventory.toml", INVENTORY, "web-3", &entry).unwrap();
        assert!(
            out.contains("# the lab") && out.contains("# the node"),
            "{out}"
        );
        assert!(
            out.contains("hosts = [\"web-1\", \"web-3\"]  # both"),
            "{out}"
        );
        assert!(out.contains(
            "[hosts.web-3]\naddress = \"10.0.0.5\"\nport = 2222\nuser = \"admin\"\ngroups = [\"vms\", \"web\"]\nvars = { proxmox_node = \"pve1\", vmid = 105 }\n"
        ), "{out}");
        let inv = crate::inventory::Inventory::parse("inventory.toml", &out).unwrap();
        let h = inv.resolve("web-3").unwrap();
        assert_eq!((h.address.as_str(), h.port), ("10.0.0.5", Some(2222)));
        let again = add_host("inventory.toml", &out, "web-3", &entry)
            .unwrap_err()
            .to_string();
        assert!(again.contains("already in inventory.toml"), "{again}");
    }

    #[test]
    fn adds_to_an_empty_file() {
        let out = add_host(
            "inventory.toml",
            "",
            "a",
            &HostEntry {
                address: "1.2.3.4".into(),
                ..HostEntry::default()
            },
        )
        .unwrap();
        assert_eq!(out, "[hosts.a]\naddress = \"1.2.3.4\"\n");
    }

    #[test]
    fn removes_the_entry_and_group_membership() {
        let out = remove_host("inventory.toml", INVENTORY, "web-3")
            .unwrap()
            .unwrap();
        assert!(out.contains("hosts = [\"web-1\"]  # both"), "{out}");
        let added = add_host(
            "inventory.toml",
            INVENTORY,
            "web-3",
            &HostEntry {
                address: "10.0.0.5".into(),
                ..HostEntry::default()
            },
        )
        .unwrap();
        let out = remove_host("inventory.toml", &added, "web-3")
            .unwrap()
            .unwrap();
        assert!(!out.contains("10.0.0.5"));
        assert!(out.contains("# the node") && out.contains("ssh_port = 22  # everywhere"));
        assert_eq!(
            remove_host("inventory.toml", INVENTORY, "nope").unwrap(),
            None
        );
        assert!(
            remove_host("inventory.toml", "[x", "a")
                .unwrap_err()
                .to_string()
                .contains("not valid TOML")
        );
    }

    #[test]
    fn sets_and_removes_vars_in_place() {
        let vars = |j: serde_json::Value| j.as_object().unwrap().clone();
        let out = set_vars(
            "inventory.toml",
            INVENTORY,
            "web-1",
            &vars(
                serde_json::json!({ "public_ssh": "203.0.113.5:2203", "domains": ["a.example"] }),
            ),
        )
        .unwrap()
        .unwrap();
        assert!(out.contains("# the node"), "{out}");
        let doc: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            doc["hosts"]["web-1"]["vars"]["public_ssh"].as_str(),
            Some("203.0.113.5:2203")
        );
        // The same again changes nothing; null removes, and an empty vars table goes.
        let same = vars(serde_json::json!({ "public_ssh": "203.0.113.5:2203" }));
        assert_eq!(
            set_vars("inventory.toml", &out, "web-1", &same).unwrap(),
            None
        );
        let gone = vars(serde_json::json!({ "public_ssh": null, "domains": null }));
        let back = set_vars("inventory.toml", &out, "web-1", &gone)
            .unwrap()
            .unwrap();
        assert!(
            back.contains("[hosts.web-1]\naddress = \"10.0.0.4\"\n\n"),
            "{back}"
        );
        assert_eq!(
            set_vars("inventory.toml", INVENTORY, "nope", &same)
                .unwrap_err()
                .to_string(),
            "host nope is not in inventory.toml: add it first (inventory::add)"
        );
    }
}
