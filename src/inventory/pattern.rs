//! Ansible host patterns (`web:&prod:!web-3`, `db-*`), so that users of Ansible need
//! nothing new to pick the hosts a command runs on.

use super::vars::Hierarchy;
use super::{Host, Inventory};
use crate::error::{Error, Result};

/// The hosts `pattern` selects, in inventory order. Unions apply first, then `&`
/// intersections, then `!` exclusions, wherever they appear, as in Ansible; a pattern of
/// only `&`/`!` terms starts from `all`.
pub(crate) fn select<'a>(inv: &'a Inventory, pattern: &str) -> Result<Vec<&'a Host>> {
    // A host whose name holds `:` (IPv6) can always be named whole.
    if pattern.contains(':')
        && let Some(host) = inv.hosts.get(pattern.trim())
    {
        return Ok(vec![host]);
    }
    let terms = split_terms(pattern);
    if terms.is_empty() {
        return Err(Error::usage_with_help(
            "empty host pattern",
            "use `all` to select every host",
        ));
    }
    let mut unions = Vec::new();
    let mut intersections = Vec::new();
    let mut exclusions = Vec::new();
    for term in terms {
        let (list, name) = if let Some(name) = term.strip_prefix('!') {
            (&mut exclusions, name)
        } else if let Some(name) = term.strip_prefix('&') {
            (&mut intersections, name)
        } else {
            (&mut unions, term)
        };
        if name.is_empty() {
            return Err(Error::usage(format!(
                "`{term}` in pattern `{pattern}` needs a host or group name after it"
            )));
        }
        list.push(name);
    }
    if unions.is_empty() {
        unions.push("all");
    }

    let matcher = Matcher::new(inv);
    let mut selected = vec![false; inv.hosts.len()];
    for term in unions {
        for (chosen, hit) in selected.iter_mut().zip(matcher.hosts(term)?) {
            *chosen |= hit;
        }
    }
    for term in intersections {
        for (chosen, hit) in selected.iter_mut().zip(matcher.hosts(term)?) {
            *chosen &= hit;
        }
    }
    for term in exclusions {
        for (chosen, hit) in selected.iter_mut().zip(matcher.hosts(term)?) {
            *chosen &= !hit;
        }
    }
    let hosts: Vec<&Host> = inv
        .hosts
        .values()
        .zip(selected)
        .filter_map(|(host, chosen)| chosen.then_some(host))
        .collect();
    if hosts.is_empty() {
        return Err(Error::usage(format!(
            "pattern `{pattern}` matches no host in {}",
            source(inv)
        )));
    }
    Ok(hosts)
}

fn source(inv: &Inventory) -> &str {
    if inv.source.is_empty() {
        "the inventory"
    } else {
        &inv.source
    }
}

/// Splits on `,` and `:`, except inside brackets, where `:` belongs to an IPv6 address.
fn split_terms(pattern: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' | ':' if depth == 0 => {
                terms.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&pattern[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

/// Each host's groups (through child groups too), computed once per selection.
struct Matcher<'a> {
    inv: &'a Inventory,
    memberships: Vec<Vec<&'a str>>,
}

impl<'a> Matcher<'a> {
    fn new(inv: &'a Inventory) -> Self {
        let hierarchy = Hierarchy::new(inv);
        let memberships = inv.hosts.values().map(|h| hierarchy.groups_of(h)).collect();
        Matcher { inv, memberships }
    }

    /// For each host in order, whether `term` names it.
    fn hosts(&self, term: &str) -> Result<Vec<bool>> {
        let inv = self.inv;
        // `[::1]` names the host `::1`.
        let term = term
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .filter(|t| inv.hosts.contains_key(*t))
            .unwrap_or(term);
        if term == "all" || term == "*" {
            return Ok(vec![true; inv.hosts.len()]);
        }
        if !inv.hosts.contains_key(term)
            && !inv.groups.contains_key(term)
            && let Some((base, subscript)) = Subscript::split(term)
        {
            let matched = match inv.groups.get(base) {
                Some(_) if base != "all" => self.group_order(base),
                _ => self
                    .hosts(base)?
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, hit)| hit.then_some(i))
                    .collect(),
            };
            let chosen = subscript.apply(&matched).ok_or_else(|| {
                Error::usage(format!(
                    "`{term}`: `{base}` has {} hosts, counted from 0",
                    matched.len()
                ))
            })?;
            let mut hits = vec![false; inv.hosts.len()];
            for i in chosen {
                hits[i] = true;
            }
            return Ok(hits);
        }
        let hosts = inv.hosts.values().zip(&self.memberships);
        if term.contains(['*', '?']) {
            let groups: Vec<&str> = inv
                .groups
                .keys()
                .map(String::as_str)
                .filter(|g| glob(term, g))
                .collect();
            if groups.contains(&"all") {
                return Ok(vec![true; inv.hosts.len()]);
            }
            let ungrouped_too = glob(term, "ungrouped");
            return Ok(hosts
                .map(|(host, member_of)| {
                    glob(term, &host.name)
                        || member_of.iter().any(|g| groups.contains(g))
                        || (ungrouped_too && ungrouped(host, member_of))
                })
                .collect());
        }
        if term == "ungrouped" && !inv.hosts.contains_key(term) {
            return Ok(hosts
                .map(|(host, member_of)| ungrouped(host, member_of))
                .collect());
        }
        let is_group = inv.groups.contains_key(term);
        if !is_group && !inv.hosts.contains_key(term) {
            return Err(self.unknown(term));
        }
        if term == "all" {
            return Ok(vec![true; inv.hosts.len()]);
        }
        Ok(hosts
            .map(|(host, member_of)| host.name == term || (is_group && member_of.contains(&term)))
            .collect())
    }

    /// A group's hosts in the order Ansible counts them for a subscript: the group's own
    /// hosts, then its children's, breadth first (each group's hosts in inventory order).
    fn group_order(&self, group: &str) -> Vec<usize> {
        let mut groups = vec![group];
        let mut next = 0;
        while next < groups.len() {
            if let Some(g) = self.inv.groups.get(groups[next]) {
                for child in &g.children {
                    if !groups.contains(&child.as_str()) {
                        groups.push(child);
                    }
                }
            }
            next += 1;
        }
        let mut order = Vec::new();
        for group in groups {
            for (i, host) in self.inv.hosts.values().enumerate() {
                if host.groups.iter().any(|g| g == group) && !order.contains(&i) {
                    order.push(i);
                }
            }
        }
        order
    }

    fn unknown(&self, term: &str) -> Error {
        let message = format!("no host or group named `{term}` in {}", source(self.inv));
        let names = self.inv.hosts.keys().chain(self.inv.groups.keys());
        let mut best: Option<(f64, &str)> = None;
        for name in names {
            let score = strsim::jaro_winkler(term, name);
            // Strictly better only, so that the first of equals (a host) is suggested.
            if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, name));
            }
        }
        match best {
            Some((_, name)) => Error::usage_with_help(message, format!("did you mean `{name}`?")),
            None => Error::usage(message),
        }
    }
}

/// Ansible's implicit group `ungrouped`: the hosts in no group (and any put in a group
/// of that name).
fn ungrouped(host: &Host, member_of: &[&str]) -> bool {
    host.groups.is_empty() || member_of.contains(&"ungrouped")
}

/// Ansible's subscripts: `web[0]`, `web[-1]`, `web[1:3]` (the end included), `web[2:]`,
/// counted over the hosts the name matches, in inventory order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Subscript {
    Index(i64),
    Range(usize, Option<usize>),
}

impl Subscript {
    fn split(term: &str) -> Option<(&str, Subscript)> {
        let inner = term.strip_suffix(']')?;
        let open = inner.rfind('[')?;
        let (base, inner) = (&inner[..open], &inner[open + 1..]);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if base.is_empty() {
            return None;
        }
        let subscript = match inner.split_once(':') {
            None => {
                let magnitude = inner.strip_prefix('-').unwrap_or(inner);
                if !digits(magnitude) {
                    return None;
                }
                Subscript::Index(inner.parse().ok()?)
            }
            Some((start, end)) => {
                if !digits(start) || !(end.is_empty() || digits(end)) {
                    return None;
                }
                let end = if end.is_empty() {
                    None
                } else {
                    Some(end.parse().ok()?)
                };
                match end {
                    // As in Ansible, whose `if end:` takes `[n:0]` for `[n]`.
                    Some(0) => Subscript::Index(start.parse().ok()?),
                    end => Subscript::Range(start.parse().ok()?, end),
                }
            }
        };
        Some((base, subscript))
    }

    /// The chosen items of `matched`; `None` when an index is out of range (a range is
    /// cut to what exists, as Python slices are).
    fn apply(self, matched: &[usize]) -> Option<Vec<usize>> {
        let len = matched.len();
        match self {
            Subscript::Index(i) => {
                let i = if i < 0 {
                    len.checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(i).ok()?
                };
                matched.get(i).map(|&m| vec![m])
            }
            Subscript::Range(start, end) => {
                let end = end.map_or(len, |e| e.saturating_add(1)).min(len);
                Some(
                    matched
                        .get(start..end)
                        .map_or_else(Vec::new, <[usize]>::to_vec),
                )
            }
        }
    }
}

/// `*` is any run of characters, `?` any one character; nothing else is special.
fn glob(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was, and how much of the name it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            // Let the `*` take one more character and retry from after it.
            star = Some((star_p, star_n + 1));
            p = star_p + 1;
            n = star_n + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = "\
lb-1
[web]
web-1
web-2
[web:children]
web-eu
[web-eu]
web-3
[db]
db-1
db-2
[prod]
web-1
db-1
";

    fn fleet() -> Inventory {
        Inventory::parse("hosts.ini", FLEET).unwrap()
    }

    fn names(pattern: &str) -> Vec<String> {
        let inv = fleet();
        select(&inv, pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .into_iter()
            .map(|h| h.name.clone())
            .collect()
    }

    fn error(pattern: &str) -> (String, Option<String>) {
        match select(&fleet(), pattern) {
            Err(Error::Usage { message, help }) => (message, help),
            other => panic!("{pattern}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn all_and_star_select_everything_in_order() {
        let every = ["lb-1", "web-1", "web-2", "web-3", "db-1", "db-2"];
        assert_eq!(names("all"), every);
        assert_eq!(names("*"), every);
    }

    #[test]
    fn groups_include_their_child_groups() {
        assert_eq!(names("web"), ["web-1", "web-2", "web-3"]);
        assert_eq!(names("web-eu"), ["web-3"]);
        assert_eq!(names("db-2"), ["db-2"]);
    }

    #[test]
    fn globs_match_hosts_and_groups() {
        assert_eq!(names("web-*"), ["web-1", "web-2", "web-3"]);
        assert_eq!(names("*-eu"), ["web-3"], "through the group web-eu");
        assert_eq!(names("db-?"), ["db-1", "db-2"]);
        assert_eq!(names("pr*d"), ["web-1", "db-1"]);
        assert_eq!(names("a*"), names("all"), "the group all matches");
    }

    #[test]
    fn unions_with_commas_or_colons() {
        let expected = ["web-1", "web-2", "web-3", "db-1", "db-2"];
        assert_eq!(names("web,db"), expected);
        assert_eq!(names("web:db"), expected);
        assert_eq!(
            names("db , web ,, "),
            expected,
            "order of the inventory, not of the pattern"
        );
        assert_eq!(names("web-1:web-1:web"), ["web-1", "web-2", "web-3"]);
    }

    #[test]
    fn intersections_and_exclusions() {
        assert_eq!(names("web:&prod"), ["web-1"]);
        assert_eq!(names("&prod:web"), ["web-1"], "order does not matter");
        assert_eq!(
            names("all:!db-1"),
            ["lb-1", "web-1", "web-2", "web-3", "db-2"]
        );
        assert_eq!(names("!db-1:all"), names("all:!db-1"));
        assert_eq!(
            names("!db-1"),
            names("all:!db-1"),
            "only exclusions start from all"
        );
        assert_eq!(names("all:!db-*"), ["lb-1", "web-1", "web-2", "web-3"]);
        assert_eq!(names("web-*:!*-eu"), ["web-1", "web-2"]);
        assert_eq!(names("all:!web:&prod"), ["db-1"]);
    }

    #[test]
    fn unknown_names_are_errors_with_a_suggestion() {
        let (message, help) = error("web-9");
        assert_eq!(message, "no host or group named `web-9` in hosts.ini");
        assert_eq!(help.as_deref(), Some("did you mean `web-1`?"));
        let (_, help) = error("all:!dbb");
        assert_eq!(help.as_deref(), Some("did you mean `db`?"));
        let (message, help) = error("zzz");
        assert_eq!(message, "no host or group named `zzz` in hosts.ini");
        assert_eq!(help, None);
    }

    #[test]
    fn patterns_matching_nothing_are_errors() {
        let (message, _) = error("web:&db");
        assert_eq!(message, "pattern `web:&db` matches no host in hosts.ini");
        assert_eq!(
            error("nothing-*").0,
            "pattern `nothing-*` matches no host in hosts.ini"
        );
        assert_eq!(
            error("all:!*").0,
            "pattern `all:!*` matches no host in hosts.ini"
        );
        assert_eq!(error(" , ").0, "empty host pattern");
        assert!(error("web:!").0.contains("needs a host or group name"));
    }

    #[test]
    fn ipv6_hosts_keep_their_colons() {
        let inv = Inventory::parse("hosts", "[::1]:22\nfe80::2\nweb-1\n").unwrap();
        let pick = |p: &str| -> Vec<String> {
            select(&inv, p)
                .unwrap()
                .into_iter()
                .map(|h| h.name.clone())
                .collect()
        };
        assert_eq!(pick("::1"), ["::1"]);
        assert_eq!(pick("[fe80::2],web-1"), ["fe80::2", "web-1"]);
        assert_eq!(pick("all:![::1]"), ["fe80::2", "web-1"]);
    }

    #[test]
    fn ungrouped_is_the_hosts_in_no_group() {
        assert_eq!(names("ungrouped"), ["lb-1"]);
        assert_eq!(names("ungr*"), ["lb-1"]);
        assert_eq!(
            names("all:!ungrouped"),
            ["web-1", "web-2", "web-3", "db-1", "db-2"]
        );
    }

    #[test]
    fn subscripts_count_hosts_from_zero_end_included() {
        assert_eq!(names("web[0]"), ["web-1"]);
        assert_eq!(names("web[-1]"), ["web-3"]);
        assert_eq!(names("web[1:2]"), ["web-2", "web-3"]);
        assert_eq!(names("web[1:]"), ["web-2", "web-3"]);
        assert_eq!(names("web[1:9]"), ["web-2", "web-3"]);
        assert_eq!(names("web[2:0]"), ["web-3"], "Ansible's `[n:0]` is `[n]`");
        assert_eq!(names("db-*[1]"), ["db-2"]);
        assert_eq!(names("all:!web[0]:&web"), ["web-2", "web-3"]);
        // A group counts its own hosts first, then its children's, as Ansible does.
        let inv = Inventory::parse("hosts", "[p:children]\nc\n[c]\nc-1\n[p]\np-1\n").unwrap();
        let first: Vec<&str> = select(&inv, "p[0]")
            .unwrap()
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(first, ["p-1"]);
        assert_eq!(
            error("web[3]").0,
            "`web[3]`: `web` has 3 hosts, counted from 0"
        );
        assert_eq!(
            error("web[-4]").0,
            "`web[-4]`: `web` has 3 hosts, counted from 0"
        );
        assert!(error("web[5:]").0.contains("matches no host"));
        assert!(
            error("web[a]")
                .0
                .starts_with("no host or group named `web[a]`")
        );
    }

    #[test]
    fn glob_matcher() {
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("a*d", "abc"));
        assert!(glob("**x", "x"));
        assert!(!glob("web", "web-1"));
    }
}
