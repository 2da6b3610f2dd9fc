//! Errors users make: each gets one clear message naming the place, and exit code 2.

use crate::support::Project;

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let p = Project::new()
        .local_hosts(1)
        .recipe("broken", "/// Broken.\nfn broken() {\n    let x = ;\n}\n");
    p.fleet(&["broken"])
        .code(2)
        .stderr_has("syntax error in recipes/broken.rhai")
        .stderr_has("recipes/broken.rhai:3:13")
        .stderr_has("let x = ;");
}

#[test]
fn a_runtime_error_names_file_and_line_inside_a_closure() {
    let p = Project::new().local_hosts(2).recipe(
        "oops",
        "/// Calls what does not exist.\nfn oops() {\n    each(hosts(), |h| {\n        h.name.no_such_method();\n    });\n}\n",
    );
    let out = p.fleet(&["oops"]);
    out.code(2)
        .stderr_has("recipe `oops` failed: Function not found: no_such_method")
        .stderr_has("recipes/oops.rhai:4:")
        .stderr_has("h1 | FAILED: recipe error");
    assert!(!out.stderr.contains("anon$"), "{out}");
}

#[test]
fn a_runtime_error_at_top_level_names_its_line() {
    let p = Project::new().local_hosts(1).recipe(
        "top",
        "/// Divides by zero.\nfn top() {\n    let n = 0;\n    print(1 / n);\n}\n",
    );
    p.fleet(&["top"])
        .code(2)
        .stderr_has("recipe `top` failed")
        .stderr_has("recipes/top.rhai:4:");
}

#[test]
fn a_failed_command_outside_each_fails_its_host() {
    let p = Project::new().local_hosts(1).recipe(
        "one",
        "/// One host.\nfn one() {\n    host(\"h1\").run(\"exit 9\");\n}\n",
    );
    p.fleet(&["one"])
        .code(3)
        .stderr_has("h1 | FAILED: command `exit 9` on h1 exited with 9 (at recipes/one.rhai:3:");
}

#[test]
fn an_undefined_variable_is_caught_before_running() {
    let p = Project::new().local_hosts(1).recipe(
        "typo",
        "/// Typo.\nfn typo() {\n    let hots = hosts();\n    print(hots_count);\n}\n",
    );
    p.fleet(&["typo"])
        .code(2)
        .stderr_has("recipes/typo.rhai:4:")
        .stderr_has("hots_count");
}

#[test]
fn an_unknown_host_suggests_the_closest() {
    let p = Project::new().local_hosts(2).recipe(
        "one",
        "/// One host.\nfn one() {\n    host(\"h11\").run(\"true\");\n}\n",
    );
    p.fleet(&["one"])
        .code(2)
        .stderr_has("no host named `h11`")
        .stderr_has("did you mean `h1`?");
}

#[test]
fn a_pattern_matching_nothing_is_one_clear_sentence() {
    let p = Project::new().local_hosts(2);
    p.fleet(&["exec", "db-*", "--", "true"])
        .code(2)
        .stderr_has("pattern `db-*` matches no host in inventory.toml");
}

#[test]
fn a_missing_inventory_says_what_to_do() {
    let p = Project::new();
    p.fleet(&["hosts"])
        .code(2)
        .stderr_has("no inventory found")
        .stderr_has("pass -i FILE");
    p.fleet(&["-i", "nope.toml", "hosts"])
        .code(2)
        .stderr_has("inventory nope.toml does not exist");
}

#[test]
fn a_bad_fleet_toml_names_its_line() {
    let p = Project::new().file("fleet.toml", "forks = 3\nforsk = 4\n");
    p.fleet(&["hosts"])
        .code(2)
        .stderr_has("unknown field `forsk`")
        .stderr_has("fleet.toml:2:1");
}

#[test]
fn a_doc_arg_for_a_missing_parameter_is_refused() {
    let p = Project::new().recipe(
        "odd",
        "/// Odd.\n/// @arg cores: int = 2\nfn odd(name) {}\n",
    );
    p.fleet(&["odd", "x"])
        .code(2)
        .stderr_has("recipes/odd.rhai: doc of recipe `odd` describes @arg `cores`, but the function has no such parameter (it has: name)");
}

#[test]
fn an_unknown_run_option_is_refused() {
    let p = Project::new().local_hosts(1).recipe(
        "opt",
        "/// Opt.\nfn opt() {\n    host(\"h1\").run(\"true\", #{ allow_fial: true });\n}\n",
    );
    p.fleet(&["opt"]).code(2).stderr_has(
        "unknown option `allow_fial` for run(); known options: allow_fail, timeout, changed",
    );
}

#[test]
fn a_command_timeout_fails_the_host() {
    let p = Project::new()
        .local_hosts(1)
        .recipe("slow", "/// Slow.\nfn slow() {\n    each(hosts(), |h| h.run(\"sleep 5\", #{ timeout: 0.3 }));\n}\n");
    p.fleet(&["slow"])
        .code(3)
        .stderr_has("command `sleep 5` on h1 timed out after 0.3s and was killed");
}
