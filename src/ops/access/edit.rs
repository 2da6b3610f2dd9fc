//! The edit `fleet user add` makes to `access.toml`, as a pure function of its text:
//! the person with the new key, a group `user-NAME` of that person, and a rule giving
//! the group the account NAME on the hosts of a pattern. Comments and layout are kept
//! (toml_edit); the result is read back through [`Access::parse`] so a bad edit is an
//! error instead of a written file.

use super::keyline::{KeyError, parse_key_line};
use super::{Access, KeyFileFn, OwnerKind, Problem};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, Value};

/// What to add for one user.
#[derive(Debug, Clone)]
pub(crate) struct UserAdd<'a> {
    /// The person and the account (the same name).
    pub(crate) name: &'a str,
    /// A public key line to give the person, if any.
    pub(crate) key: Option<&'a str>,
    /// The host pattern of the rule.
    pub(crate) hosts: &'a str,
}

/// Why `fleet user add` cannot edit access.toml.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    #[error("access.toml is not valid:\n{}", super::lines(.0))]
    Invalid(Vec<Problem>),
    #[error(
        "the edited access.toml would not be valid (nothing written):\n{}",
        super::lines(.0)
    )]
    EditInvalid(Vec<Problem>),
    #[error("`{0}` is a server in access.toml, not a person")]
    Server(String),
    #[error("the key does not parse: {0}")]
    Key(#[from] KeyError),
    #[error("this key ({fingerprint}) already belongs to {owner} in access.toml")]
    KeyTaken { fingerprint: String, owner: String },
    #[error("access.toml has no key for {0}: pass --key FILE (their public key)")]
    NoKey(String),
    #[error("access.toml has no group `{0}`: add it under [groups] first")]
    NoGroup(String),
    #[error("access.toml: {0}")]
    Toml(#[from] toml_edit::TomlError),
    /// `path` is shown as it is (`people.alice`, or a top-level key in backquotes);
    /// `shape` is "a table", "a list" or "a list of tables".
    #[error("access.toml: {path} is not {shape}")]
    Shape { path: String, shape: &'static str },
}

/// The group `fleet user add` gives a person's account.
pub(crate) fn group_of(name: &str) -> String {
    format!("user-{name}")
}

/// The new text of access.toml (`text` is "" when there is none yet), or why not.
pub(crate) fn add_user(text: &str, u: &UserAdd, key_file: &KeyFileFn) -> Result<String, EditError> {
    let before = Access::parse(text, key_file).map_err(EditError::Invalid)?;
    let owner = before.owners.get(u.name);
    if owner.is_some_and(|o| o.kind == OwnerKind::Server) {
        return Err(EditError::Server(u.name.to_string()));
    }
    let mut new_key = None;
    match u.key {
        Some(line) => {
            let key = parse_key_line(line.trim(), false)?;
            match before.owner_of(&key.key_id()) {
                Some(o) if o.name != u.name => {
                    return Err(EditError::KeyTaken {
                        fingerprint: key.fingerprint(),
                        owner: o.name.clone(),
                    });
                }
                Some(_) => {}
                None => new_key = Some(line.trim().to_string()),
            }
        }
        None => {
            if owner.is_none_or(|o| o.keys.is_empty()) {
                return Err(EditError::NoKey(u.name.to_string()));
            }
        }
    }
    let mut doc: DocumentMut = text.parse()?;
    let root = doc.as_table_mut();

    // [people.NAME] keys = [..., KEY]
    let people = table_in(root, "people")?;
    if !people.contains_key(u.name) {
        let mut t = Table::new();
        t.insert("keys", Item::Value(Value::Array(Array::new())));
        people.insert(u.name, Item::Table(t));
    }
    if let Some(key) = new_key {
        let person = people
            .get_mut(u.name)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| shape(format!("people.{}", u.name), "a table"))?;
        if !person.contains_key("keys") {
            person.insert("keys", Item::Value(Value::Array(Array::new())));
        }
        let keys = person
            .get_mut("keys")
            .and_then(Item::as_array_mut)
            .ok_or_else(|| shape(format!("people.{}.keys", u.name), "a list"))?;
        keys.push(key);
    }

    // [groups] user-NAME = ["NAME"]
    let group = group_of(u.name);
    let groups = table_in(root, "groups")?;
    match groups.get_mut(&group) {
        None => {
            let mut a = Array::new();
            a.push(u.name);
            groups.insert(&group, Item::Value(Value::Array(a)));
        }
        Some(item) => {
            let members = item
                .as_array_mut()
                .ok_or_else(|| shape(format!("groups.{group}"), "a list"))?;
            if !members.iter().any(|m| m.as_str() == Some(u.name)) {
                members.push(u.name);
            }
        }
    }

    // [[rules]] group = "user-NAME", hosts = PATTERN, accounts = ["NAME"]
    let exists = before.rules.iter().any(|r| {
        r.group == group && r.hosts == u.hosts && r.accounts == [u.name] && r.options.is_empty()
    });
    if !exists {
        let mut rule = Table::new();
        rule.insert("group", toml_edit::value(group.as_str()));
        rule.insert("hosts", toml_edit::value(u.hosts));
        let mut accounts = Array::new();
        accounts.push(u.name);
        rule.insert("accounts", toml_edit::value(accounts));
        push_rule(root, rule)?;
    }
    let after = doc.to_string();
    Access::parse(&after, key_file).map_err(EditError::EditInvalid)?;
    Ok(after)
}

/// Appends a `[[rules]]` entry, in whichever form the file keeps its rules.
fn push_rule(root: &mut Table, rule: Table) -> Result<(), EditError> {
    match root.get_mut("rules") {
        None => {
            let mut list = ArrayOfTables::new();
            list.push(rule);
            root.insert("rules", Item::ArrayOfTables(list));
        }
        Some(Item::ArrayOfTables(list)) => list.push(rule),
        Some(Item::Value(Value::Array(list))) => {
            list.push(Value::InlineTable(rule.into_inline_table()));
        }
        Some(_) => return Err(shape("`rules`".into(), "a list of tables")),
    }
    Ok(())
}

/// access.toml with a rule giving `group` the host `host` (`fleet provision --keys`);
/// `None` when such a rule is there already. An unknown group is an error.
pub(crate) fn grant_host(
    text: &str,
    group: &str,
    host: &str,
    key_file: &KeyFileFn,
) -> Result<Option<String>, EditError> {
    let before = Access::parse(text, key_file).map_err(EditError::Invalid)?;
    if !before.groups.contains_key(group) {
        return Err(EditError::NoGroup(group.to_string()));
    }
    if before.rules.iter().any(|r| {
        r.group == group && r.hosts == host && r.accounts.is_empty() && r.options.is_empty()
    }) {
        return Ok(None);
    }
    let mut doc: DocumentMut = text.parse()?;
    let mut rule = Table::new();
    rule.insert("group", toml_edit::value(group));
    rule.insert("hosts", toml_edit::value(host));
    push_rule(doc.as_table_mut(), rule)?;
    let after = doc.to_string();
    Access::parse(&after, key_file).map_err(EditError::EditInvalid)?;
    Ok(Some(after))
}

/// access.toml without the rules whose hosts are exactly `host` (a host that goes
/// away: `fleet terminate`); `None` when there are none.
pub(crate) fn revoke_host(text: &str, host: &str) -> Result<Option<String>, EditError> {
    let mut doc: DocumentMut = text.parse()?;
    let only = |hosts: Option<&Item>| hosts.and_then(Item::as_str) == Some(host);
    let removed = match doc.get_mut("rules") {
        Some(Item::ArrayOfTables(list)) => {
            let before = list.len();
            list.retain(|t| !only(t.get("hosts")));
            before - list.len()
        }
        Some(Item::Value(Value::Array(list))) => {
            let before = list.len();
            list.retain(|v| {
                v.as_inline_table()
                    .and_then(|t| t.get("hosts"))
                    .and_then(Value::as_str)
                    != Some(host)
            });
            before - list.len()
        }
        _ => 0,
    };
    Ok((removed > 0).then(|| doc.to_string()))
}

fn shape(path: String, shape: &'static str) -> EditError {
    EditError::Shape { path, shape }
}

/// The table `key` of `root`, created (as a header-less parent) when missing.
fn table_in<'t>(
    root: &'t mut Table,
    key: &str,
) -> Result<&'t mut dyn toml_edit::TableLike, EditError> {
    if !root.contains_key(key) {
        let mut t = Table::new();
        t.set_implicit(true);
        root.insert(key, Item::Table(t));
    }
    root.get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| shape(format!("`{key}`"), "a table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ops::access::keyline::tests::{ED as ALICE, ED2 as BOB};

    fn add(text: &str, key: Option<&str>, hosts: &str) -> Result<String, EditError> {
        let u = UserAdd {
            name: "alice",
            key,
            hosts,
        };
        add_user(text, &u, &|_| None)
    }

    #[test]
    fn a_new_file_gets_the_person_the_group_and_the_rule() {
        let after = add("", Some(ALICE), "web-*").unwrap();
        assert_eq!(
            after,
            format!(
                "[people.alice]\nkeys = [\"{ALICE}\"]\n\n[groups]\nuser-alice = [\"alice\"]\n\n\
                 [[rules]]\ngroup = \"user-alice\"\nhosts = \"web-*\"\naccounts = [\"alice\"]\n"
            )
        );
        // Adding the same again changes nothing.
        assert_eq!(add(&after, Some(ALICE), "web-*").unwrap(), after);
        assert_eq!(add(&after, None, "web-*").unwrap(), after);
    }

    #[test]
    fn an_existing_person_gets_the_key_appended_and_comments_are_kept() {
        let before = format!(
            "# who may log in where\n[people.alice]\nkeys = [\"{BOB}\"] # old laptop\n\n[people.carol]\nkeys = []\n\n\
             [groups]\nadmins = [\"alice\"]\n\n[[rules]]\ngroup = \"admins\"\nhosts = \"all\"\n"
        );
        // BOB's key line is given to alice here, so the new one is ALICE's own.
        let after = add(&before, Some(ALICE), "db-1").unwrap();
        assert_eq!(
            after,
            format!(
                "# who may log in where\n[people.alice]\nkeys = [\"{BOB}\", \"{ALICE}\"] # old laptop\n\n[people.carol]\nkeys = []\n\n\
                 [groups]\nadmins = [\"alice\"]\nuser-alice = [\"alice\"]\n\n[[rules]]\ngroup = \"admins\"\nhosts = \"all\"\n\n\
                 [[rules]]\ngroup = \"user-alice\"\nhosts = \"db-1\"\naccounts = [\"alice\"]\n"
            )
        );
    }

    #[test]
    fn an_existing_rule_is_not_added_twice() {
        let before = format!(
            "rules = [{{ group = \"user-alice\", hosts = \"web-1\", accounts = [\"alice\"] }}]\n\n\
             [people.alice]\nkeys = [\"{ALICE}\"]\n\n[groups]\nuser-alice = [\"alice\"]\n"
        );
        assert_eq!(add(&before, None, "web-1").unwrap(), before);
        // Another pattern is another rule, added to the inline list.
        let after = add(&before, None, "web-3").unwrap();
        assert!(after.contains("hosts = \"web-3\""), "{after}");
        assert_eq!(
            after.matches("group = \"user-alice\"").count(),
            2,
            "{after}"
        );
    }

    #[test]
    fn a_key_of_someone_else_or_no_key_at_all_is_an_error() {
        let before = format!("[people.bob]\nkeys = [\"{BOB}\"]\n");
        let e = add(&before, Some(BOB), "all").unwrap_err().to_string();
        assert!(e.contains("already belongs to bob"), "{e}");
        let e = add(&before, None, "all").unwrap_err().to_string();
        assert!(e.contains("pass --key FILE"), "{e}");
        let e = add("[servers.alice]\nkeys = []\n", Some(ALICE), "all")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a server"), "{e}");
        let e = add("[people.alice\n", Some(ALICE), "all")
            .unwrap_err()
            .to_string();
        assert!(e.contains("access.toml:1: error"), "{e}");
    }

    #[test]
    fn edit_errors_say_what_is_wrong() {
        let problem = || Problem {
            file: "access.toml".into(),
            line: 3,
            message: "bad".into(),
            warning: false,
        };
        let shape = |path: &str, shape| EditError::Shape {
            path: path.into(),
            shape,
        };
        let toml = "[a\n".parse::<DocumentMut>().unwrap_err();
        let toml_text = format!("access.toml: {toml}");
        let key = parse_key_line("nonsense", false).unwrap_err();
        let key_text = format!("the key does not parse: {key}");
        let cases = [
            (
                EditError::Invalid(vec![problem(), problem()]),
                "access.toml is not valid:\naccess.toml:3: error: bad\naccess.toml:3: error: bad",
            ),
            (
                EditError::EditInvalid(vec![problem()]),
                "the edited access.toml would not be valid (nothing written):\naccess.toml:3: error: bad",
            ),
            (
                EditError::Server("backup".into()),
                "`backup` is a server in access.toml, not a person",
            ),
            (EditError::Key(key), &key_text),
            (
                EditError::KeyTaken {
                    fingerprint: "SHA256:x".into(),
                    owner: "bob".into(),
                },
                "this key (SHA256:x) already belongs to bob in access.toml",
            ),
            (
                EditError::NoKey("alice".into()),
                "access.toml has no key for alice: pass --key FILE (their public key)",
            ),
            (
                EditError::NoGroup("admins".into()),
                "access.toml has no group `admins`: add it under [groups] first",
            ),
            (EditError::Toml(toml), &toml_text),
            (
                shape("people.alice", "a table"),
                "access.toml: people.alice is not a table",
            ),
            (
                shape("people.alice.keys", "a list"),
                "access.toml: people.alice.keys is not a list",
            ),
            (
                shape("`rules`", "a list of tables"),
                "access.toml: `rules` is not a list of tables",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn a_group_is_granted_one_host_and_the_rule_goes_with_the_host() {
        let text = format!(
            "# the team\n[people.alice]\nkeys = [\"{ALICE}\"]\n\n[groups]\nadmins = [\"alice\"]\n\n[[rules]]\ngroup = \"admins\"\nhosts = \"web\"\n"
        );
        let granted = grant_host(&text, "admins", "web-3", &|_| None)
            .unwrap()
            .unwrap();
        assert!(granted.starts_with("# the team\n"), "{granted}");
        assert!(
            granted.ends_with("[[rules]]\ngroup = \"admins\"\nhosts = \"web-3\"\n"),
            "{granted}"
        );
        // Granted already: nothing to write; an unknown group is refused.
        assert!(
            grant_host(&granted, "admins", "web-3", &|_| None)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            grant_host(&text, "nobody", "web-3", &|_| None),
            Err(EditError::NoGroup(g)) if g == "nobody"
        ));
        // Revoking takes only the rules of exactly that host.
        let revoked = revoke_host(&granted, "web-3").unwrap().unwrap();
        assert_eq!(revoked, text);
        assert!(revoke_host(&text, "web-3").unwrap().is_none());
    }

    #[test]
    fn a_result_that_does_not_read_back_is_refused() {
        let e = add("", Some(ALICE), "web-\u{1b}[2J")
            .unwrap_err()
            .to_string();
        assert!(e.contains("would not be valid (nothing written)"), "{e}");
        assert!(e.contains("`hosts` must be a host pattern"), "{e}");
    }
}
