//! The `git` module end to end: `git::head` on the project, `git::commit` into a notes
//! repository, `git::checkout` from a local bare repository, also after it is gone.

use crate::support::{Project, run_fleet};
use git2::{Repository, Signature};
use std::path::Path;

fn sig() -> Signature<'static> {
    Signature::now("Test", "test@example.org").unwrap()
}

/// Commits every file of the work tree of `dir` (a new repository when there is none).
fn commit_all(dir: &Path, message: &str) -> String {
    let repo = Repository::open(dir)
        .or_else(|_| Repository::init(dir))
        .unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig(), &sig(), message, &tree, &parents)
        .unwrap()
        .to_string()
}

/// Commits `lib.txt` with `text` straight into a bare repository, on its HEAD.
fn push_to_bare(bare: &Path, text: &str) -> String {
    let repo = Repository::open_bare(bare)
        .or_else(|_| Repository::init_bare(bare))
        .unwrap();
    let blob = repo.blob(text.as_bytes()).unwrap();
    let mut tree = repo.treebuilder(None).unwrap();
    tree.insert("lib.txt", blob, 0o100644).unwrap();
    let tree = repo.find_tree(tree.write().unwrap()).unwrap();
    let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig(), &sig(), text, &tree, &parents)
        .unwrap()
        .to_string()
}

const RECORD: &str = r#"
/// Records the recipes' version, what the hosts saw, and a library checkout.
/// @arg url: string  the library's repository
fn record(url) {
    let me = git::head(".");
    print(`recipes at ${me.commit} dirty=${me.dirty}`);
    let lib = git::checkout(url, "vendor/lib");
    print(`lib at ${lib.commit} fetched=${lib.fetched} warning=${lib.warning}`);
    each(hosts(), |h| {
        let text = h.read("cat vendor/lib/lib.txt");
        print(`lib says ${text}`);
        h.run(`mkdir -p notes/hosts && echo ${text} > notes/hosts/${h.name}`);
    });
    let id = git::commit("notes", ["hosts"], "what the hosts saw");
    print(`notes commit [${id}]`);
}
"#;

#[test]
fn a_recipe_records_commits_and_checks_out_with_a_fallback() {
    let remote = tempfile::tempdir().unwrap();
    let bare = remote.path().join("lib.git");
    let v1 = push_to_bare(&bare, "v1");
    let p = Project::new()
        .local_hosts(2)
        .recipe("record", RECORD)
        .file(".gitignore", "notes/\nvendor/\n.fleet/\n");
    let project_commit = commit_all(p.path(), "the project");
    let url = bare.to_str().unwrap();
    let notes = p.path().join("notes");

    let out = p.fleet(&["record", url]);
    out.code(0)
        .stdout_has(&format!("recipes at {project_commit} dirty=false"))
        .stdout_has(&format!("lib at {v1} fetched=true warning=\n"))
        .stdout_has("h1 | lib says v1")
        .stdout_has("h2 | lib says v1");
    let notes_repo = Repository::open(&notes).unwrap();
    let head = notes_repo.head().unwrap().peel_to_commit().unwrap();
    out.stdout_has(&format!("notes commit [{}]", head.id()));
    assert_eq!(head.message(), Ok("what the hosts saw"));
    assert_eq!(p.read("notes/hosts/h2"), "v1\n");

    // A new commit in the remote is checked out; unchanged notes is not committed again.
    let v2 = push_to_bare(&bare, "v2");
    p.fleet(&["record", url])
        .code(0)
        .stdout_has(&format!("lib at {v2} fetched=true"))
        .stdout_has("h1 | lib says v2")
        .stdout_has("notes commit [");
    p.fleet(&["record", url])
        .code(0)
        .stdout_has("notes commit []");

    // The remote is gone: the last good checkout is used, with a warning.
    std::fs::rename(&bare, remote.path().join("moved.git")).unwrap();
    std::fs::write(p.path().join("fleet.toml"), "# edited\n").unwrap();
    let out = p.fleet(&["record", url]);
    out.code(0)
        .stdout_has(&format!("recipes at {project_commit} dirty=true"))
        .stdout_has(&format!("lib at {v2} fetched=false warning=using the last good checkout at {v2}: cannot fetch {url}"))
        .stdout_has("h2 | lib says v2")
        .stderr_has(&format!(
            "warning: using the last good checkout at {v2}: cannot fetch {url}: {url} does not exist"
        ));

    // Never checked out and no remote: the recipe stops with the reason.
    let fresh = Project::new()
        .local_hosts(1)
        .recipe("record", RECORD)
        .file(".gitignore", ".fleet/\n");
    commit_all(fresh.path(), "fresh");
    fresh
        .fleet(&["record", url])
        .code(2)
        .stderr_has("cannot clone into")
        .stderr_has("recipes/record.rhai:7:");
    assert!(!fresh.path().join("vendor/lib").exists());
}

const MISUSE: &str = r#"
/// Calls the git module wrongly, as told.
/// @arg what: string  which mistake
fn misuse(what) {
    switch what {
        "outside" => git::head("."),
        "tracked" => git::commit("recipes", ["misuse.rhai"], "no"),
        "option" => git::checkout("lib.git", "vendor/lib", #{ brnach: "main" }),
        "files" => git::commit("notes", [1], "no"),
        "unqualified" => head("."),
    }
}
"#;

#[test]
fn git_functions_explain_their_errors() {
    let p = Project::new()
        .local_hosts(1)
        .recipe("misuse", MISUSE)
        .file(".gitignore", "state/\n.fleet/\n");
    p.fleet(&["misuse", "outside"])
        .code(2)
        .stderr_has("is not in a git repository");
    commit_all(p.path(), "project");
    p.fleet(&["misuse", "outside"]).code(0);
    p.fleet(&["misuse", "tracked"])
        .code(2)
        .stderr_has("is part of the git repository");
    assert!(!p.path().join("recipes/.git").exists());
    p.fleet(&["misuse", "option"])
        .code(2)
        .stderr_has("unknown option `brnach` for git::checkout(); known options: branch, rev");
    p.fleet(&["misuse", "files"])
        .code(2)
        .stderr_has("takes file paths as strings");
    // The module's functions exist only with their prefix.
    p.fleet(&["misuse", "unqualified"])
        .code(2)
        .stderr_has("Function not found: head");
}

const CHECKED: &str = r#"
/// Commits a note, in --check only printed.
fn note() {
    each(hosts(), |h| h.run("mkdir -p notes && echo hi > notes/note"));
    print(`[${git::commit("notes", ["note"], "a note")}]`);
}
"#;

#[test]
fn check_mode_prints_the_commit_it_would_make() {
    let p = Project::new().local_hosts(1).recipe("note", CHECKED);
    std::fs::create_dir(p.path().join("notes")).unwrap();
    std::fs::write(p.path().join("notes/note"), "hi\n").unwrap();
    p.fleet(&["note", "--check"])
        .code(0)
        .stdout_has("would commit note in ")
        .stdout_has(": a note")
        .stdout_has("[]");
    assert!(!p.path().join("notes/.git").exists());
    let out = p.fleet(&["note"]);
    out.code(0).stdout_lacks("[]");
    assert!(Repository::open(p.path().join("notes")).is_ok());
}

#[test]
fn api_lists_the_git_module() {
    let out = run_fleet(Path::new("."), &["api", "--json"]);
    out.code(0);
    let meta: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let signatures: Vec<&str> = meta["modules"]["git"]["functions"]
        .as_array()
        .expect("a git module in `fleet api --json`")
        .iter()
        .map(|f| f["signature"].as_str().unwrap())
        .collect();
    for s in [
        "head(path: &str) -> Map",
        "commit(path: &str, files: Array, message: &str) -> String",
        "checkout(url: &str, dir: &str) -> Map",
        "checkout(url: &str, dir: &str, options: Map) -> Map",
    ] {
        assert!(signatures.contains(&s), "{s} not in {signatures:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    run_fleet(
        Path::new("."),
        &["api", "--definitions", dir.path().to_str().unwrap()],
    )
    .code(0);
    let git = std::fs::read_to_string(dir.path().join("git.d.rhai")).unwrap();
    assert!(git.contains("fn head(path: string) -> map;"), "{git}");
}
