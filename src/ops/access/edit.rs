//! The edit `fleet user add` makes to `access.toml`, as a pure function of its text:
//! the person with the new key, a group `user-NAME` of that person, and a rule giving
//! the group the account NAME on the hosts of a pattern. Comments and layout are kept
//! (toml_edit); the result is read back through [`Access::parse`] so a bad edit is an
//! error instead of a written file.

use super::keyline::parse_key_line;
use super::{Access, KeyFileFn, OwnerKind};
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

fn problems(what: &str, p: Vec<super::Problem>) -> String {
    let lines: Vec<String> = p.iter().map(ToString::to_string).collect();
    format!("{what}:\n{}", lines.join("\n"))
}

/// The group `fleet user add` gives a person's account.
pub(crate) fn group_of(name: &str) -> String {
    format!("user-{name}")
}

/// The new text of access.toml (`text` is "" when there is none yet), or why not.
pub(crate) fn add_user(text: &str, u: &UserAdd, key_file: &KeyFileFn) -> Result<String, String> {
    let before =
        Access::parse(text, key_file).map_err(|p| problems("access.toml is not valid", p))?;
    let owner = before.owners.get(u.name);
    if owner.is_some_and(|o| o.kind == OwnerKind::Server) {
        return Err(format!(
            "`{}` is a server in access.toml, not a person",
            u.name
        ));
    }
    let mut new_key = None;
    match u.key {
        Some(line) => {
            let key = parse_key_line(line.trim(), false)
                .map_err(|e| format!("the key does not parse: {e}"))?;
            match before.owner_of(&key.key_id()) {
                Some(o) if o.name != u.name => {
                    return Err(format!(
                        "this key ({}) already belongs to {} in access.toml",
                        key.fingerprint(),
                        o.name
                    ));
                }
                Some(_) => {}
                None => new_key = Some(line.trim().to_string()),
            }
        }
        None => {
            if owner.is_none_or(|o| o.keys.is_empty()) {
                return Err(format!(
                    "access.toml has no key for {}: pass --key FILE (their public key)",
                    u.name
                ));
            }
        }
    }
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("access.toml: {e}"))?;
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
            .ok_or_else(|| format!("access.toml: people.{} is not a table", u.name))?;
        if !person.contains_key("keys") {
            person.insert("keys", Item::Value(Value::Array(Array::new())));
        }
        let keys = person
            .get_mut("keys")
            .and_then(Item::as_array_mut)
            .ok_or_else(|| format!("access.toml: people.{}.keys is not a list", u.name))?;
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
                .ok_or_else(|| format!("access.toml: groups.{group} is not a list"))?;
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
            Some(_) => return Err("access.toml: `rules` is not a list of tables".into()),
        }
    }
    let after = doc.to_string();
    Access::parse(&after, key_file).map_err(|p| {
        problems(
            "the edited access.toml would not be valid (nothing written)",
            p,
        )
    })?;
    Ok(after)
}

/// The table `key` of `root`, created (as a header-less parent) when missing.
fn table_in<'t>(
    root: &'t mut Table,
    key: &str,
) -> Result<&'t mut dyn toml_edit::TableLike, String> {
    if !root.contains_key(key) {
        let mut t = Table::new();
        t.set_implicit(true);
        root.insert(key, Item::Table(t));
    }
    root.get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| format!("access.toml: `{key}` is not a table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ops::access::keyline::tests::{ED as ALICE, ED2 as BOB};

    fn add(text: &str, key: Option<&str>, hosts: &str) -> Result<String, String> {
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
        let e = add(&before, Some(BOB), "all").unwrap_err();
        assert!(e.contains("already belongs to bob"), "{e}");
        let e = add(&before, None, "all").unwrap_err();
        assert!(e.contains("pass --key FILE"), "{e}");
        let e = add("[servers.alice]\nkeys = []\n", Some(ALICE), "all").unwrap_err();
        assert!(e.contains("is a server"), "{e}");
        let e = add("[people.alice\n", Some(ALICE), "all").unwrap_err();
        assert!(e.contains("access.toml:1: error"), "{e}");
    }

    #[test]
    fn a_result_that_does_not_read_back_is_refused() {
        let e = add("", Some(ALICE), "web-\u{1b}[2J").unwrap_err();
        assert!(e.contains("would not be valid (nothing written)"), "{e}");
        assert!(e.contains("`hosts` must be a host pattern"), "{e}");
    }
}
