//! `fleet check`: every problem of a project in one run, without running anything.

use crate::support::{Project, run_fleet};
use std::path::Path;

/// A project with one problem of each kind `fleet check` finds.
fn one_of_each() -> Project {
    Project::new()
        .local_hosts(1)
        .recipe(
            "web",
            r#"import "facts" as facts;
import "no_such_module" as gone;

/// Deploys the site.
/// @arg pattern: string = "all"  which hosts
/// @arg cores: int = two  CPU cores
/// @arg ghost: string  no such parameter
fn deploy(pattern, cores, extra) {
    each(hosts(pattern), |h| {
        h.runn("true");
        h.run();
        prnt("deploying");
        facts::gathr(h);
        apt::pendingg(h);
        helper(1, 2);
        let f = |x| x + 1;
        f(1);
    });
}

private fn helper(a) { a }

/// Named like a built-in command.
fn hosts() {}

/// Defined twice.
fn twice() {}
"#,
        )
        .recipe("other", "/// Defined twice.\nfn twice() {}\n")
        .recipe("half", "/// Half written.\nfn half() {\n    let x = ;\n}\n")
        .file(
            "stdlib/shaky.rhai",
            "fn helper(h) {\n    h.reed(\"x\");\n}\n",
        )
        .file("catalog/roles/web.rhai", "fn setup(h, vars) { true }\n")
        .file("catalog/roles/db.rhai", "fn apply(h, vars) { false }\n")
        .file(
            "catalog/index.json",
            r#"{"apps": [
  {"name": "web", "role": "web", "description": "", "ports": [], "depends": ["db"]},
  {"name": "db", "role": "db", "description": "", "ports": [], "depends": ["web"]},
  {"name": "cache", "role": "dbs", "description": "", "ports": []}
]}"#,
        )
}

#[test]
fn check_finds_every_kind_of_problem_in_one_run() {
    let p = one_of_each();
    let out = p.fleet(&["check"]);
    out.code(2)
        // syntax
        .stderr_has("syntax error in recipes/half.rhai")
        .stderr_has("recipes/half.rhai:3:13")
        // imports
        .stderr_has("import of module \"no_such_module\", which does not exist")
        // unknown functions, with "did you mean"
        .stderr_has("call of method `.runn()`")
        .stderr_has("did you mean `.run`?")
        .stderr_has("call of `prnt`")
        .stderr_has("did you mean `print`?")
        .stderr_has("call of `facts::gathr`, which module `facts` does not have")
        .stderr_has("did you mean `facts::gather`?")
        .stderr_has("call of `apt::pendingg`")
        .stderr_has("did you mean `apt::pending`?")
        .stderr_has("call of method `.reed()`")
        .stderr_has("stdlib/shaky.rhai:2:")
        // argument counts
        .stderr_has("method `.run()` takes 1 or 2 arguments, but is called with 0")
        .stderr_has("`helper` takes 1 argument, but is called with 2")
        // @arg lines
        .stderr_has("default of @arg `cores` in recipe `deploy` expects an int")
        .stderr_has("recipes/web.rhai:6:5")
        .stderr_has("describes @arg `ghost`, but the function has no such parameter")
        .stderr_has("parameter `extra` of recipe `deploy` has no @arg line")
        // names
        .stderr_has("recipe `hosts` has the name of a built-in fleet command")
        .stderr_has("recipe `twice` is defined in both recipes/other.rhai and recipes/web.rhai")
        // catalog
        .stderr_has("catalog/index.json: the catalog's depends form a cycle")
        .stderr_has("app `cache` has role `dbs`, but catalog/roles/dbs.rhai does not exist")
        .stderr_has("did you mean role `db`?")
        .stderr_has("catalog role catalog/roles/web.rhai has no `fn apply(h, vars)`");
    // A variable holding a closure is not a missing function.
    assert!(!out.stderr.contains("call of `f`"), "{out}");
    // One diagnostic per problem, and the count says so.
    let n = out.stderr.matches("  × ").count();
    assert_eq!(n, 17, "{out}");
    assert!(
        out.stderr
            .contains(&format!("fleet check: {n} problems in ")),
        "{out}"
    );

    let out = p.fleet(&["check", "--json"]);
    out.code(2);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), n, "{}", out.stdout);
    let kinds: std::collections::BTreeSet<&str> =
        problems.iter().filter_map(|p| p["kind"].as_str()).collect();
    for kind in [
        "syntax",
        "function",
        "arguments",
        "import",
        "doc",
        "name",
        "catalog",
        "role",
    ] {
        assert!(kinds.contains(kind), "no {kind} problem: {}", out.stdout);
    }
    let syntax = problems.iter().find(|p| p["kind"] == "syntax").unwrap();
    assert_eq!(syntax["file"], "recipes/half.rhai");
    assert_eq!(syntax["line"], 3);
    assert_eq!(syntax["column"], 13);
    assert!(
        json["checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "<built-in>/recipes/update.rhai"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_is_clean_on_what_fleet_ships_and_a_new_project() {
    // Built-in recipes and stdlib are checked in every project; the examples add theirs.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut projects = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("fleet.toml").exists() {
            continue;
        }
        projects += 1;
        let out = run_fleet(&dir, &["check"]);
        out.code(0).stdout_has("no problems");
    }
    assert!(projects >= 2, "examples with a fleet.toml: {projects}");

    let dir = tempfile::tempdir().unwrap();
    run_fleet(dir.path(), &["init", "new"]).code(0);
    let out = run_fleet(&dir.path().join("new"), &["check", "--json"]);
    out.code(0);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["problems"], serde_json::json!([]), "{}", out.stdout);
    assert!(
        json["checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "recipes/example.rhai"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_pre_commit_hook_of_init_runs_check() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    run_fleet(dir.path(), &["init", "new"]).code(0);
    let project = dir.path().join("new");
    let hook = project.join("hooks/pre-commit");
    let mode = std::fs::metadata(&hook).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "hook not executable: {mode:o}");
    let ci = std::fs::read_to_string(project.join("ci/fleet-check.yml")).unwrap();
    assert!(ci.contains("run: fleet check"), "{ci}");
    let bin_dir = crate::support::fleet_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_hook = || {
        std::process::Command::new(&hook)
            .current_dir(&project)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let out = run_hook();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(project.join("recipes/half.rhai"), "fn half() { let = ; }\n").unwrap();
    let out = run_hook();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("syntax error in recipes/half.rhai"));
}
