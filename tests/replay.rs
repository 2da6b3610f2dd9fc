//! `fleet replay RUN`: a journaled run again, with the recipes of its commit, its
//! arguments and its hosts.

use crate::support::Project;

fn hello(version: &str) -> String {
    format!(
        "/// Says hello on each host.\n/// @arg name: string = \"world\"  who\nfn hello(name) {{\n    each(hosts(), |h| {{ h.run(\"true\"); }});\n    print(\"{version} \" + name);\n}}\n"
    )
}

/// A project in a git repository (state and fleet's data ignored), and a function that
/// commits its files.
fn committed_project() -> (Project, impl Fn(&str) -> git2::Oid) {
    let p = Project::new()
        .local_hosts(3)
        .file(".gitignore", "state/\n.fleet/\n")
        .recipe("hello", &hello("version one"));
    let dir = p.path().to_path_buf();
    let repo = git2::Repository::init(&dir).unwrap();
    let commit = move |message: &str| {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.org").unwrap();
        let parents: Vec<git2::Commit> = repo
            .head()
            .ok()
            .map(|h| h.peel_to_commit().unwrap())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    };
    (p, commit)
}

fn last_record(p: &Project) -> serde_json::Value {
    let out = p.fleet(&["show", "last", "--json"]);
    out.code(0);
    serde_json::from_str(&out.stdout).unwrap()
}

fn hosts_of(r: &serde_json::Value) -> Vec<String> {
    r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn replay_reruns_the_committed_recipe_with_its_arguments_on_its_hosts() {
    let (p, commit) = committed_project();
    let v1 = commit("v1");
    p.fleet(&["hello", "--name", "moon", "-l", "h1,h3"])
        .code(0)
        .stdout_has("version one moon");
    let first = last_record(&p);
    let id = first["run_id"].as_str().unwrap().to_string();
    assert_eq!(first["recipe_commit"], v1.to_string());
    assert_eq!(first["recipe_dirty"], false);
    // The recipe changes and is committed; the hosts' group would now match another set.
    std::fs::write(p.path().join("recipes/hello.rhai"), hello("version two")).unwrap();
    commit("v2");
    p.fleet(&["hello"]).code(0).stdout_has("version two world");

    let out = p.fleet(&["replay", &id]);
    out.code(0)
        .stdout_has("version one moon")
        .stdout_lacks("version two");
    let again = last_record(&p);
    assert_eq!(again["replays"], id.as_str());
    assert_eq!(again["recipe_commit"], v1.to_string());
    assert_eq!(again["recipe"], "hello");
    assert_eq!(again["args"], first["args"]);
    assert_eq!(again["params"], first["params"]);
    assert_eq!(hosts_of(&again), ["h1", "h3"]);
    assert_eq!(again["check"], false);
    p.fleet(&["show", "last"])
        .code(0)
        .stdout_has(&format!("replays run {id}"));

    // --check: read-only, nothing that changes runs; the record says check and replays.
    p.fleet(&["replay", &id, "--check"])
        .code(0)
        .stdout_has("version one moon");
    let checked = last_record(&p);
    assert_eq!(checked["check"], true);
    assert_eq!(checked["replays"], id.as_str());
    let executed: Vec<bool> = checked["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["steps"].as_array().unwrap().clone())
        .flat_map(|s| s["commands"].as_array().unwrap().clone())
        .map(|c| c["executed"].as_bool().unwrap())
        .collect();
    assert!(!executed.is_empty());
    assert!(executed.iter().all(|e| !e), "{checked:#}");
    // Options a replay does not take are refused.
    p.fleet(&["replay", &id, "--limit", "h2"]).code(2);
}

#[test]
fn a_run_from_a_dirty_tree_is_refused_unless_allowed() {
    let (p, commit) = committed_project();
    commit("v1");
    std::fs::write(p.path().join("recipes/hello.rhai"), hello("uncommitted")).unwrap();
    p.fleet(&["hello"]).code(0).stdout_has("uncommitted world");
    let dirty = last_record(&p);
    assert_eq!(dirty["recipe_dirty"], true);
    let id = dirty["run_id"].as_str().unwrap().to_string();
    p.fleet(&["replay", &id])
        .code(2)
        .stderr_has("uncommitted changes")
        .stderr_has("--allow-dirty");
    // Allowed: the recipes as committed, said so.
    p.fleet(&["replay", "last", "--allow-dirty"])
        .code(0)
        .stdout_has("version one world")
        .stderr_has("replaying the recipes of commit");
    assert_eq!(last_record(&p)["replays"], id.as_str());
    p.fleet(&["replay", "nosuch"])
        .code(2)
        .stderr_has("no run `nosuch`");
}

#[test]
fn a_run_outside_git_cannot_be_replayed() {
    let p = Project::new().local_hosts(1).recipe("hello", &hello("v"));
    p.fleet(&["hello"]).code(0);
    p.fleet(&["replay", "last"])
        .code(2)
        .stderr_has("not a git repository");
}

#[test]
fn replay_takes_the_hosts_by_name_whatever_the_pattern_matches_now() {
    let (p, commit) = committed_project();
    commit("v1");
    p.fleet(&["hello", "-l", "even"]).code(0);
    let id = last_record(&p)["run_id"].as_str().unwrap().to_string();
    assert_eq!(hosts_of(&last_record(&p)), ["h2"]);
    // Now every host is in `even`: the replay still takes h2 alone.
    let everyone_even = p
        .read("inventory.toml")
        .replace(r#"["local"]"#, r#"["local", "even"]"#);
    std::fs::write(p.path().join("inventory.toml"), &everyone_even).unwrap();
    p.fleet(&["replay", &id]).code(0).stderr_has("on h2");
    assert_eq!(hosts_of(&last_record(&p)), ["h2"]);
    // A host the inventory no longer has is named, not skipped silently.
    let without_h2 = everyone_even.replace("[hosts.h2]", "[hosts.h9]");
    std::fs::write(p.path().join("inventory.toml"), without_h2).unwrap();
    p.fleet(&["replay", &id])
        .code(2)
        .stderr_has("touched h2, which the inventory no longer has");
}
