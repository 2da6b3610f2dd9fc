//! `fleet replay RUN`: a journaled run again, exactly: the same recipe as committed when
//! it ran (through `--recipes-rev`), the same arguments, the same hosts by name.

use crate::App;
use crate::error::{Error, Result};
use crate::journal::{self, RunRecord};
use crate::session::RunRequest;

/// Why `record` cannot be replayed as it ran; None when it can. `allow_dirty`: a run
/// from a work tree with uncommitted changes replays its commit instead.
pub(crate) fn refusal(record: &RunRecord, allow_dirty: bool) -> Option<Error> {
    let id = &record.run_id;
    let Some(commit) = &record.recipe_commit else {
        return Some(Error::usage_with_help(
            format!(
                "run {id} has no recipe commit: the project was not a git repository when it ran, so what ran cannot be found again"
            ),
            format!("run `fleet {}` with its arguments instead", record.recipe),
        ));
    };
    if record.recipe_dirty && !allow_dirty {
        return Some(Error::usage_with_help(
            format!(
                "run {id} was made from a work tree with uncommitted changes: the recipes that ran are not in commit {}, so it cannot be replayed exactly",
                short(commit)
            ),
            format!(
                "`fleet replay {id} --allow-dirty` replays it with the recipes as committed in {}",
                short(commit)
            ),
        ));
    }
    if record.hosts.is_empty() {
        return Some(Error::usage(format!(
            "run {id} touched no host: there is nothing to replay"
        )));
    }
    None
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// The `--limit` that names exactly `hosts` (`[…]` around a name with `:`, an IPv6
/// address, which would otherwise split the pattern).
pub(crate) fn limit_of(hosts: &[&str]) -> String {
    hosts
        .iter()
        .map(|h| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn run(mut app: App, which: &str, allow_dirty: bool) -> Result<i32> {
    let record = journal::find(&app.project.state_dir(), which, None)
        .map_err(|e| Error::usage(e.to_string()))?;
    if let Some(refused) = refusal(&record, allow_dirty) {
        return Err(refused);
    }
    let commit = record.recipe_commit.clone().unwrap_or_default();
    let id = record.run_id.clone();
    // --require-signed: the commit that ran must be signed, or the tag it ran from
    // (`--recipes-rev v1`) when that still names the same commit.
    if let Some(keys) = crate::commands::signed::keys(&app) {
        let (repo, _) = crate::recipe::sources::repo_of(&app.project.root)?;
        let rev = record
            .recipes_rev
            .as_deref()
            .filter(|rev| crate::ops::git::resolve_rev(&repo, rev).ok().as_deref() == Some(&commit))
            .unwrap_or(&commit);
        let quiet = app.global.verbosity() < 0;
        crate::commands::signed::require(&repo, rev, &keys, &format!("run {id}"), quiet)?;
    }
    // The recipes and stdlib modules as they were committed when the run was made.
    let (scripting, recipes) = crate::load_recipes(&app.project, Some(&commit))?;
    app.scripting = scripting;
    app.recipes = recipes;
    app.global.recipes_rev = Some(commit.clone());
    // A run in check mode is replayed in check mode.
    app.global.check |= record.check;
    let Some(recipe) = app.recipes.get(&record.recipe).cloned() else {
        return Err(Error::usage_with_help(
            format!(
                "run {id} was of `{}`, which is not a recipe at commit {}: fleet replay reruns recipe runs",
                record.recipe,
                short(&commit)
            ),
            format!("`fleet show {id}` shows what it did"),
        ));
    };
    // The same hosts by name, whatever the inventory's patterns match now.
    let inventory = crate::commands::load_inventory(&app)?;
    let names: Vec<&str> = record.hosts.iter().map(|h| h.host.as_str()).collect();
    let gone: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !inventory.hosts.contains_key(*n))
        .collect();
    if !gone.is_empty() {
        return Err(Error::usage_with_help(
            format!(
                "run {id} touched {}, which the inventory no longer has",
                gone.join(", ")
            ),
            "add them back to the inventory to replay the run",
        ));
    }
    let values = crate::commands::recipe::values_of(&record, &recipe)?;
    if record.recipe_dirty {
        eprintln!(
            "warning: run {id} was made with uncommitted changes; replaying the recipes of commit {}",
            short(&commit)
        );
    }
    eprintln!(
        "replaying run {id} of `{}` (recipes at {}) on {}",
        recipe.name,
        short(&commit),
        names.join(", ")
    );
    let request = RunRequest {
        recipe: recipe.name.clone(),
        args: record.args.clone(),
        params: record.params.clone(),
        limit: Some(limit_of(&names)),
        replays: Some(id),
    };
    crate::commands::recipe::run_request(&app, &recipe, values, request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(commit: Option<&str>, dirty: bool, hosts: &[&str]) -> RunRecord {
        let mut r: RunRecord = serde_json::from_value(serde_json::json!({
            "run_id": "20261130T000000.000Z-abcd", "recipe": "hello", "args": [],
            "recipe_commit": commit, "recipe_dirty": dirty, "fleet_version": "0",
            "user": "u", "controller": "c", "started": "", "ended": "",
            "duration_ms": 0, "check": false, "exit_code": 0, "hosts": []
        }))
        .unwrap();
        r.hosts = hosts
            .iter()
            .map(|h| journal::HostRun {
                host: h.to_string(),
                status: crate::outcome::HostStatus::Ok,
                duration_ms: 0,
                error: None,
                steps: vec![],
                results: Default::default(),
                drift: None,
            })
            .collect();
        r
    }

    #[test]
    fn a_dirty_run_is_refused_unless_allowed() {
        let dirty = record(Some("0123456789abcdef"), true, &["h1"]);
        let refused = refusal(&dirty, false).expect("refused").to_string();
        assert!(refused.contains("uncommitted changes"), "{refused}");
        assert!(refused.contains("0123456789"), "{refused}");
        assert!(refusal(&dirty, true).is_none());
        assert!(refusal(&record(Some("abc"), false, &["h1"]), false).is_none());
    }

    #[test]
    fn runs_without_a_commit_or_hosts_cannot_be_replayed() {
        let none = refusal(&record(None, false, &["h1"]), true).unwrap();
        assert!(none.to_string().contains("not a git repository"));
        let empty = refusal(&record(Some("abc"), false, &[]), false).unwrap();
        assert!(empty.to_string().contains("touched no host"));
    }

    #[test]
    fn the_limit_names_each_host() {
        assert_eq!(limit_of(&["web-1", "web-3"]), "web-1,web-3");
        assert_eq!(limit_of(&["::1", "db"]), "[::1],db");
    }
}
