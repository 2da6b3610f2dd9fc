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
fn a_runtime_error_inside_a_closure_fails_that_host() {
    let p = Project::new().local_hosts(2).recipe(
        "oops",
        "/// Calls what does not exist.\nfn oops() {\n    each(hosts(), |h| {\n        h.name.no_such_method();\n    });\n}\n",
    );
    let out = p.fleet(&["oops"]);
    out.code(3)
        .stderr_has("h1 | FAILED: recipe error: Function not found: no_such_method")
        .stderr_has("recipes/oops.rhai:4:");
    assert!(!out.stderr.contains("anon$"), "{out}");
    assert!(!out.stderr.contains("recipe `oops` failed"), "{out}");
}

/// Two hosts fail with different bugs: both are in the recap and in the journal, each
/// with its position; the host without a bug ends ok; the run exits 3 like any run with
/// a failed host.
#[test]
fn every_host_failed_by_a_runtime_error_is_listed() {
    let p = Project::new().local_hosts(3).recipe(
        "bugs",
        "/// Two kinds of bug.\nfn bugs() {\n    each(hosts(), |h| {\n        if h.name == \"h1\" {\n            let a = [1];\n            print(a[5]);\n        } else if h.name == \"h2\" {\n            print(parse_int(\"junk\"));\n        }\n        h.run(\"true\");\n    });\n}\n",
    );
    let out = p.fleet(&["bugs", "--no-progress"]);
    out.code(3)
        .stderr_has("recipes/bugs.rhai:6:")
        .stderr_has("recipes/bugs.rhai:8:");
    let recap = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("HOST"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        recap.contains("h1    failed") && recap.contains("Array index 5 out of bounds"),
        "{recap}"
    );
    assert!(
        recap.contains("h2    failed") && recap.contains("parsing integer number 'junk'"),
        "{recap}"
    );
    assert!(recap.contains("h3    changed"), "{recap}");
    let history = p.fleet(&["history", "--json"]);
    history.code(0);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let hosts = runs[0]["hosts"].as_array().unwrap();
    let error_of = |name: &str| {
        hosts.iter().find(|h| h["host"] == name).unwrap()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(error_of("h1").contains("recipes/bugs.rhai:6:"), "{hosts:?}");
    assert!(error_of("h2").contains("recipes/bugs.rhai:8:"), "{hosts:?}");
    assert!(
        runs[0]["error"].is_null(),
        "not a recipe error: {:?}",
        runs[0]
    );
}

#[test]
fn a_mistyped_host_method_names_the_closest_and_its_signature() {
    let p = Project::new().local_hosts(1).recipe(
        "up",
        "/// Uploads.\nfn up() {\n    each(hosts(), |h| {\n        h.run(\"true\");\n        h.uplod(\"a\", \"/tmp/b\");\n    });\n}\n",
    );
    p.fleet(&["up"])
        .code(3)
        .stderr_has("Function not found: uplod")
        .stderr_has(
            "did you mean `upload`? upload(h: Host, local: string, remote: string) -> bool",
        );
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

#[test]
fn a_template_sees_vars_by_name_and_in_vars_and_names_an_undefined_one() {
    let p = Project::new()
        .local_hosts(1)
        .file(
            "templates/ok.j2",
            "{{ role }} {{ vars.role }} {{ host.name }}\n",
        )
        .file("templates/typo.j2", "line one\n{{ vars.prot }}\n");
    let out_file = p.path().join("out.txt");
    let p = p.recipe(
        "tpl",
        &format!(
            "/// Templates.\n/// @arg which: string = \"ok\"\nfn tpl(which) {{\n    each(hosts(), |h| h.template(which + \".j2\", \"{}\", #{{ role: \"web\" }}));\n}}\n",
            out_file.display()
        ),
    );
    p.fleet(&["tpl"]).code(0);
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "web web h1\n");
    p.fleet(&["tpl", "--which", "typo"])
        .code(3)
        .stderr_has("`vars.prot` is undefined")
        .stderr_has("typo.j2:2");
}

/// As docs/recipes.md says: `fail()` throws a HostError that `try` catches, with its
/// fields; a caught failure leaves the host ok; a Rhai error is caught as a map.
#[test]
fn a_caught_failure_leaves_the_host_ok() {
    let p = Project::new().local_hosts(1).recipe(
        "caught",
        "/// Catches.\nfn caught() {\n    each(hosts(), |h| {\n        try { fail(h, \"on purpose\"); } catch (e) { print(`fail: ${type_of(e)} ${e.host} ${e.message} ${e.command} ${e.unreachable}`); }\n        try { h.read(\"echo oops >&2; exit 7\"); } catch (e) { print(`read: ${e.command} ${e.code} ${e.stderr}`); }\n        try { let a = [1]; a[3] } catch (e) { print(`bug: ${e.message} line ${e.line}`); }\n    });\n}\n",
    );
    p.fleet(&["caught", "--no-progress"])
        .code(0)
        .stdout_has("fail: HostError h1 on purpose  false")
        .stdout_has("read: echo oops >&2; exit 7 7 oops")
        .stdout_has("bug: Array index 3 out of bounds: only 1 element in array line 6")
        .stderr_has("1 ok, 0 changed, 0 failed");
}

#[test]
fn a_mistyped_helper_or_module_function_names_the_closest_rhai_function() {
    let p = Project::new()
        .local_hosts(1)
        .file("stdlib/tools.rhai", "/// Says hi.\nfn greet(h, whom) { whom }\n")
        .recipe(
            "typos",
            "import \"tools\" as tools;\n/// Typos.\n/// @arg which: string = \"helper\"\nfn typos(which) {\n    each(hosts(), |h| {\n        if which == \"helper\" { helpr(1) } else { tools::gret(h, \"x\") }\n    });\n}\n\nprivate fn helper(x) { x }\n",
        );
    p.fleet(&["typos"])
        .code(3)
        .stderr_has("Function not found: helpr")
        .stderr_has("did you mean `helper`? helper(x)");
    p.fleet(&["typos", "--which", "module"])
        .code(3)
        .stderr_has("Function not found: tools::gret")
        .stderr_has("did you mean `tools::greet`? tools::greet(h, whom)");
}
