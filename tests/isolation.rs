//! One broken recipe file never takes the others down: its commands fail with its
//! error, everything else works and warns once.

use crate::support::Project;

const HEALTHY: &str = "/// Says hi.\nfn hi() {\n    each(hosts(), |h| h.run(\"true\"));\n}\n";
const BROKEN: &str = "/// Half written.\nfn half() {\n    let x = ;\n}\n";

#[test]
fn a_broken_sibling_leaves_update_and_healthy_recipes_working() {
    let p = Project::new()
        .local_hosts(1)
        .recipe("hi", HEALTHY)
        .recipe("half", BROKEN);
    let warning = "warning: recipes/half.rhai is broken, so `fleet half` cannot run (syntax error in recipes/half.rhai";

    let out = p.fleet(&["update", "--check", "--refresh=false", "--no-progress"]);
    out.code(0).stderr_has(warning).stdout_has("h1");
    assert_eq!(out.stderr.matches("warning:").count(), 1, "{out}");
    assert!(!out.stdout.contains("warning"), "{out}");

    let out = p.fleet(&["hi", "--no-progress"]);
    out.code(0).stderr_has(warning);
    assert_eq!(out.stderr.matches("warning:").count(), 1, "{out}");

    // --json stdout stays JSON: the warning is on stderr.
    let out = p.fleet(&["hosts", "--json"]);
    out.code(0).stderr_has(warning);
    serde_json::from_str::<serde_json::Value>(&out.stdout).expect("hosts --json is JSON");

    // Running the broken one shows its diagnostic, exit 2, and no warning about itself.
    let out = p.fleet(&["half"]);
    out.code(2)
        .stderr_has("syntax error in recipes/half.rhai")
        .stderr_has("recipes/half.rhai:3:13")
        .stderr_has("let x = ;");
    assert!(!out.stderr.contains("warning:"), "{out}");
}

#[test]
fn recipes_lists_broken_files_with_their_error() {
    let p = Project::new()
        .recipe("hi", HEALTHY)
        .recipe("half", BROKEN)
        .recipe(
            "odd",
            "/// Odd.\n/// @arg cores: int = two  CPU cores\nfn odd(cores) {}\n\n/// Fine.\nfn even() {}\n",
        );
    let out = p.fleet(&["recipes"]);
    out.code(0)
        .stdout_has("hi ")
        .stdout_has("BROKEN: syntax error in recipes/half.rhai")
        .stdout_has("BROKEN: recipes/odd.rhai: default of @arg `cores` in recipe `odd`")
        .stdout_has("update");
    // The whole file is broken: both of its commands are listed, and neither runs.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("even") && l.contains("BROKEN")),
        "{out}"
    );
    p.fleet(&["even"])
        .code(2)
        .stderr_has("default of @arg `cores`");

    let out = p.fleet(&["recipes", "--json"]);
    out.code(0);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let half = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "half")
        .expect("half is listed");
    assert_eq!(half["broken"], true, "{half}");
    assert_eq!(half["file"], "recipes/half.rhai", "{half}");
    assert!(
        half["error"].as_str().unwrap().contains("syntax error"),
        "{half}"
    );
}

#[test]
fn a_recipe_named_like_a_builtin_or_twice_is_broken_alone() {
    let p = Project::new()
        .local_hosts(1)
        .recipe(
            "mine",
            "/// Clashes.\nfn hosts() {}\n\n/// Fine.\nfn mine() { print(\"mine ran\"); }\n",
        )
        .recipe("a", "/// One.\nfn twice() {}\n")
        .recipe("b", "/// Two.\nfn twice() {}\n");
    // The built-in `hosts` still works; the clash is named once.
    let out = p.fleet(&["hosts"]);
    out.code(0)
        .stdout_has("h1")
        .stderr_has("recipes/mine.rhai: recipe `hosts` has the name of a built-in fleet command");
    p.fleet(&["mine", "--no-progress"])
        .code(0)
        .stdout_has("mine ran");
    p.fleet(&["twice"])
        .code(2)
        .stderr_has("recipe `twice` is defined in both recipes/a.rhai and recipes/b.rhai");
}

#[test]
fn a_broken_project_recipe_replaces_the_builtin_it_overrides() {
    // A half-written project update must not silently run the built-in one instead.
    let p = Project::new()
        .local_hosts(1)
        .recipe("update", "/// Mine.\nfn update() {\n    let = 1;\n}\n");
    p.fleet(&["update"])
        .code(2)
        .stderr_has("syntax error in recipes/update.rhai");
    p.fleet(&["hosts"])
        .code(0)
        .stderr_has("warning: recipes/update.rhai is broken");
}

#[test]
fn a_broken_stdlib_module_fails_only_the_recipes_that_import_it() {
    let p = Project::new()
        .local_hosts(1)
        .file("stdlib/shaky.rhai", "fn helper() {\n    let = ;\n}\n")
        .recipe(
            "uses",
            "import \"shaky\" as shaky;\n\n/// Uses shaky.\nfn uses() { shaky::helper(); }\n",
        )
        .recipe("hi", HEALTHY);
    p.fleet(&["hi", "--no-progress"]).code(0);
    p.fleet(&["uses", "--no-progress"])
        .code(2)
        .stderr_has("stdlib/shaky.rhai");
    let out = p.fleet(&["hosts"]);
    out.code(0);
    assert!(!out.stderr.contains("warning"), "{out}");
}

#[test]
fn a_broken_file_with_an_odd_name_still_warns_and_breaks_nothing() {
    let p = Project::new()
        .local_hosts(1)
        .recipe("9 odd\u{1b}[31m", "fn x( {\n");
    let out = p.fleet(&["recipes"]);
    out.code(0).stdout_has("update");
    assert!(!out.stderr.contains('\u{1b}'), "{out}");
    assert_eq!(out.stderr.matches("warning:").count(), 1, "{out}");
}
