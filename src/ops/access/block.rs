//! The fleet-managed block of an `authorized_keys` file. fleet owns only the lines
//! between its BEGIN and END markers; every line outside (keys added by hand, other
//! tools' keys) is kept as it is. Each managed key is preceded by a `# fleet: OWNER`
//! line, so a later plan (and `fleet keys who --live`) knows whose key it removes.
//! The plan is a pure function of the current text and the granted keys.

use super::keyline::{PublicKey, parse_key_line};
use super::{Grant, OwnerKind};

pub(crate) const BEGIN: &str =
    "# BEGIN fleet managed keys: edits between these markers are replaced by `fleet keys apply`";
pub(crate) const END: &str = "# END fleet managed keys";
const OWNER_PREFIX: &str = "# fleet: ";

/// A key line of the file, with its owner when the block says it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct KeyEntry {
    /// `alice`, `backup (server)`; None for a key outside the block.
    pub(crate) owner: Option<String>,
    pub(crate) fingerprint: String,
    pub(crate) comment: String,
    pub(crate) options: Vec<String>,
    #[serde(skip)]
    pub(crate) key_id: String,
    /// In fleet's block.
    pub(crate) managed: bool,
}

/// What the file holds now.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Current {
    pub(crate) keys: Vec<KeyEntry>,
    /// Lines outside the block, kept as they are.
    before: Vec<String>,
    after: Vec<String>,
    has_block: bool,
}

/// Why the file is left alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BlockError {
    #[error("it has fleet's BEGIN marker without the END marker (line {0}); fix the file by hand")]
    Unterminated(usize),
    #[error("it has more than one fleet block (line {0}); fix the file by hand")]
    TwoBlocks(usize),
    #[error("it has an END marker without BEGIN (line {0}); fix the file by hand")]
    StrayEnd(usize),
}

fn entry(key: &PublicKey, owner: Option<String>, managed: bool) -> KeyEntry {
    KeyEntry {
        owner,
        fingerprint: key.fingerprint(),
        comment: crate::ops::text::shown(&key.comment),
        options: key.options.clone(),
        key_id: key.key_id(),
        managed,
    }
}

/// How a grant's owner is written in the block.
pub(crate) fn owner_label(g: &Grant) -> String {
    match g.kind {
        OwnerKind::Person => g.owner.clone(),
        OwnerKind::Server => format!("{} (server)", g.owner),
    }
}

/// Reads an `authorized_keys` text. Lines that are not keys are kept, never judged.
pub(crate) fn read(text: &str) -> Result<Current, BlockError> {
    let mut cur = Current::default();
    let mut inside = false;
    let mut owner: Option<String> = None;
    let mut begin_line = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line == BEGIN {
            if inside || cur.has_block {
                return Err(BlockError::TwoBlocks(n));
            }
            inside = true;
            cur.has_block = true;
            begin_line = n;
            continue;
        }
        if line == END {
            if !inside {
                return Err(BlockError::StrayEnd(n));
            }
            inside = false;
            continue;
        }
        if inside {
            if let Some(o) = line.strip_prefix(OWNER_PREFIX) {
                owner = Some(crate::ops::text::shown(o.trim()));
            } else if let Ok(k) = parse_key_line(line, true) {
                cur.keys.push(entry(&k, owner.take(), true));
            }
            continue;
        }
        if let Ok(k) = parse_key_line(line, true) {
            cur.keys.push(entry(&k, None, false));
        }
        if cur.has_block {
            cur.after.push(line.to_string());
        } else {
            cur.before.push(line.to_string());
        }
    }
    if inside {
        return Err(BlockError::Unterminated(begin_line));
    }
    Ok(cur)
}

/// The new file and what changes in fleet's block.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Plan {
    #[serde(skip)]
    pub(crate) text: String,
    pub(crate) added: Vec<KeyEntry>,
    pub(crate) removed: Vec<KeyEntry>,
    /// Whether the text differs from the current one.
    pub(crate) changes: bool,
}

/// The file with `grants` as fleet's block (placed where the block was, else at the
/// end). A key line is identified by its whole text (options, key, comment): a key
/// whose options change is removed and added.
pub(crate) fn plan(current_text: &str, grants: &[Grant]) -> Result<Plan, BlockError> {
    let cur = read(current_text)?;
    let mut out = String::new();
    for l in &cur.before {
        out.push_str(l);
        out.push('\n');
    }
    let mut wanted = Vec::new();
    if !grants.is_empty() || cur.has_block {
        out.push_str(BEGIN);
        out.push('\n');
        for g in grants {
            out.push_str(OWNER_PREFIX);
            out.push_str(&owner_label(g));
            out.push('\n');
            out.push_str(&g.key.line());
            out.push('\n');
            wanted.push((g.key.line(), entry(&g.key, Some(owner_label(g)), true)));
        }
        out.push_str(END);
        out.push('\n');
    }
    for l in &cur.after {
        out.push_str(l);
        out.push('\n');
    }
    let old_lines: Vec<(String, &KeyEntry)> = managed_lines(current_text)
        .into_iter()
        .zip(cur.keys.iter().filter(|k| k.managed))
        .collect();
    let added = wanted
        .iter()
        .filter(|(line, _)| !old_lines.iter().any(|(l, _)| l == line))
        .map(|(_, e)| e.clone())
        .collect();
    let removed = old_lines
        .iter()
        .filter(|(line, _)| !wanted.iter().any(|(l, _)| l == line))
        .map(|(_, e)| (*e).clone())
        .collect();
    let changes = out != current_text;
    Ok(Plan {
        text: out,
        added,
        removed,
        changes,
    })
}

/// The key lines inside the block, normalised as fleet writes them.
fn managed_lines(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line == BEGIN {
            inside = true;
        } else if line == END {
            inside = false;
        } else if inside
            && !line.starts_with(OWNER_PREFIX)
            && let Ok(k) = parse_key_line(line, true)
        {
            out.push(k.line());
        }
    }
    out
}

/// fleet's own key in a file: whether a line gives `key_id` a plain login.
pub(crate) fn logs_in(text: &str, key_id: &str) -> bool {
    text.lines()
        .any(|l| parse_key_line(l, true).is_ok_and(|k| k.key_id() == key_id && !k.limits_shell()))
}

#[cfg(test)]
mod tests {
    use super::super::keyline::tests::{ED, ED2, ED3};
    use super::*;

    fn grant(owner: &str, kind: OwnerKind, line: &str, options: &[&str]) -> Grant {
        let mut key = parse_key_line(line, false).unwrap();
        key.options = options.iter().map(|s| s.to_string()).collect();
        Grant {
            owner: owner.into(),
            kind,
            key,
            rule_line: 1,
        }
    }

    #[test]
    fn the_block_is_added_after_hand_written_keys_and_kept_there() {
        let hand = format!("# my own\n{ED2}\n");
        let grants = [
            grant("alice", OwnerKind::Person, ED, &[]),
            grant(
                "backup",
                OwnerKind::Server,
                ED3,
                &["restrict", r#"command="rrsync /""#],
            ),
        ];
        let p = plan(&hand, &grants).unwrap();
        let expected = format!(
            "# my own\n{ED2}\n{BEGIN}\n# fleet: alice\n{ED}\n# fleet: backup (server)\nrestrict,command=\"rrsync /\" {ED3}\n{END}\n"
        );
        assert_eq!(p.text, expected);
        assert_eq!(p.added.len(), 2);
        assert_eq!(p.added[1].owner.as_deref(), Some("backup (server)"));
        assert!(p.removed.is_empty());
        // Idempotent: the same grants on the written file change nothing.
        let again = plan(&p.text, &grants).unwrap();
        assert!(!again.changes && again.added.is_empty() && again.removed.is_empty());
        // A key taken away is removed with its owner; the hand-written key stays.
        let after = format!("{}# after\n", p.text);
        let less = plan(&after, &grants[1..]).unwrap();
        assert_eq!(less.removed.len(), 1);
        assert_eq!(less.removed[0].owner.as_deref(), Some("alice"));
        assert!(less.text.starts_with(&hand));
        assert!(less.text.ends_with(&format!("{END}\n# after\n")));
        assert!(!less.text.contains(ED));
        let cur = read(&less.text).unwrap();
        assert_eq!(cur.keys.iter().filter(|k| !k.managed).count(), 1);
    }

    #[test]
    fn nothing_to_grant_on_a_file_without_block_changes_nothing() {
        let p = plan(&format!("{ED}\n"), &[]).unwrap();
        assert!(!p.changes);
        let p = plan("", &[]).unwrap();
        assert!(!p.changes);
    }

    #[test]
    fn broken_blocks_are_refused() {
        assert_eq!(
            plan(&format!("{BEGIN}\n{ED}\n"), &[]).unwrap_err(),
            BlockError::Unterminated(1)
        );
        assert_eq!(
            plan(&format!("{BEGIN}\n{END}\n{BEGIN}\n{END}\n"), &[]).unwrap_err(),
            BlockError::TwoBlocks(3)
        );
        assert_eq!(
            plan(&format!("{END}\n"), &[]).unwrap_err(),
            BlockError::StrayEnd(1)
        );
    }

    #[test]
    fn fleets_login_is_seen_only_without_a_forced_command() {
        let id = parse_key_line(ED, false).unwrap().key_id();
        assert!(logs_in(&format!("{ED}\n"), &id));
        assert!(!logs_in(&format!("command=\"true\" {ED}\n"), &id));
        assert!(!logs_in(&format!("{ED2}\n"), &id));
    }
}
