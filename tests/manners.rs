//! Issue 15, the everyday manners of the commands people type daily: a pattern as the
//! first argument, quiet cron runs, errors in reading order, `exec --retry-failed`,
//! options only where they apply, one spelling of a recipe's name.

use crate::support::{Project, on_terminal};

const WHO: &str = r#"
/// Says which hosts it ran on.
/// @arg pattern: string = "all"  which hosts
/// @arg fail: string = ""  a host that fails
fn who(pattern, fail) {
    each(hosts(pattern), |h| {
        h.run("true");
        if h.name == fail { h.run("echo broken-on-purpose >&2; exit 2") }
        print(`ran on ${h.name}`);
    });
}
"#;

const BROKEN: &str = r#"
/// Touches every host, then breaks.
fn broken() {
    each(hosts(), |h| h.read("true"));
    throw "the recipe broke";
}
"#;

/// Two local hosts, `h1` and `h2` (also in group `even`).
fn project() -> Project {
    Project::new()
        .local_hosts(2)
        .recipe("who", WHO)
        .recipe("broken", BROKEN)
}

/// And a host that no ssh reaches (port 1 of loopback).
fn with_unreachable(p: Project) -> Project {
    let mut inventory = p.read("inventory.toml");
    inventory.push_str("[hosts.gone]\naddress = \"127.0.0.1\"\nport = 1\n");
    p.file("inventory.toml", &inventory)
}

#[test]
fn a_pattern_is_the_first_argument_of_the_workflows() {
    let p = project();
    let out = p.fleet(&["who", "h1"]);
    out.code(0)
        .stdout_has("ran on h1")
        .stdout_lacks("ran on h2");
    p.fleet(&["who", "--pattern", "even"])
        .code(0)
        .stdout_has("ran on h2")
        .stdout_lacks("ran on h1");
    // -l narrows the pattern further.
    p.fleet(&["who", "local", "-l", "h2"])
        .code(0)
        .stdout_has("ran on h2")
        .stdout_lacks("ran on h1");
    p.fleet(&["who", "h1", "--pattern", "h2"])
        .code(2)
        .stderr_has("cannot be used with");
    // The built-in workflows take it too.
    for workflow in ["configure", "update", "backup"] {
        p.fleet(&[workflow, "--help"])
            .code(0)
            .stdout_has(&format!("Usage: fleet {workflow} [OPTIONS] [PATTERN]"));
    }
    for command in ["status", "backups", "hosts"] {
        p.fleet(&[command, "--help"])
            .code(0)
            .stdout_has(&format!("Usage: fleet {command} [OPTIONS] [PATTERN]"));
    }
}

#[test]
fn quiet_prints_nothing_on_success_and_only_failures_otherwise() {
    let p = project();
    let out = p.fleet(&["-q", "who"]);
    out.code(0);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", ""),
        "{out}"
    );
    let out = p.fleet(&["who", "-q", "--fail", "h2"]);
    out.code(3)
        .stderr_has("h2    failed")
        .stderr_has("exited with 2: broken-on-purpose")
        .stderr_has("0 ok, 1 changed, 1 failed");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(!out.stderr.contains("h1 "), "{out}");
    // Without -q, every host and the recipe's output.
    p.fleet(&["who"])
        .code(0)
        .stdout_has("ran on h1")
        .stderr_has("h1    changed");
}

#[test]
fn a_recipe_error_reads_before_the_run_line() {
    let p = project();
    let out = p.fleet(&["broken"]);
    out.code(2);
    let error = out
        .stderr
        .find("stopped: the recipe broke")
        .expect("the error");
    let run_line = out.stderr.find(": 2 ok, 0 changed").expect("the run line");
    assert!(error < run_line, "{out}");
    // Retrying it says what happened instead of "nothing to retry".
    p.fleet(&["broken", "--retry-failed"])
        .code(2)
        .stderr_has("stopped with an error of the recipe, not of hosts: ")
        .stderr_has("fix the recipe");
}

#[test]
fn exec_retry_failed_runs_only_the_hosts_that_failed() {
    let p = with_unreachable(project());
    let first = p.fleet(&["exec", "all", "--", "echo", "hello"]);
    first.code(4).stdout_has("h1 | hello");
    let retried = p.fleet(&["exec", "--retry-failed"]);
    retried
        .code(4)
        .stderr_has("of `exec` on gone")
        .stderr_has("gone  unreachable");
    assert!(!retried.stdout.contains("h1 | hello"), "{retried}");
    assert!(!retried.stderr.contains("h1 "), "{retried}");
    // The same pattern and command may be given; another command may not.
    p.fleet(&["exec", "all", "--retry-failed", "--", "echo", "hello"])
        .code(4)
        .stderr_has("of `exec` on gone");
    p.fleet(&["exec", "all", "--retry-failed", "--", "uptime"])
        .code(2)
        .stderr_has("ran `echo hello` on `all`, not what is given here");
    p.fleet(&["exec"])
        .code(2)
        .stderr_has("needs a host pattern and a command");
}

#[test]
fn each_command_takes_only_the_options_it_uses() {
    let p = project();
    let help = p.fleet(&["history", "--help"]);
    help.code(0).stdout_has("--json");
    for run_option in ["--forks", "--check", "--retry-failed", "--max-fail"] {
        help.stdout_lacks(run_option);
        p.fleet(&["who", "--help"]).stdout_has(run_option);
    }
    p.fleet(&["history", "--check"])
        .code(2)
        .stderr_has("unexpected argument '--check'");
    p.fleet(&["--check", "history"])
        .code(2)
        .stderr_has("--check does not apply to `fleet history`");
    // Before or after the command, for the commands that use them.
    p.fleet(&["--check", "who"])
        .code(0)
        .stderr_has("(check mode)");
    p.fleet(&["who", "--check"])
        .code(0)
        .stderr_has("(check mode)");
}

#[test]
fn show_honours_the_limit_and_history_cuts_long_arguments_on_a_terminal() {
    let p = project();
    p.fleet(&["who"]).code(0);
    let shown = p.fleet(&["show", "last", "-l", "h2"]);
    shown.code(0).stdout_has("\nh2 changed");
    assert!(!shown.stdout.contains("\nh1 "), "{shown}");
    let long = "x".repeat(200);
    p.fleet(&["exec", "all", "--", "echo", &long]).code(0);
    let table = on_terminal(p.path(), "history", None);
    assert!(table.contains("all echo xxxx"), "{table}");
    assert!(!table.contains(&long), "{table}");
    assert!(table.contains('…'), "{table}");
    // Not on a terminal, and in --json, the arguments stay whole.
    p.fleet(&["history"]).code(0).stdout_has(&long);
    p.fleet(&["history", "--json"]).code(0).stdout_has(&long);
}

#[test]
fn a_recipe_answers_to_both_spellings_of_its_name() {
    let p = project().recipe(
        "site",
        "/// Deploys.\nfn deploy_site() { each(hosts(), |h| h.read(\"true\")); }\n",
    );
    p.fleet(&["recipes"]).code(0).stdout_has("deploy-site");
    p.fleet(&["deploy-site"]).code(0);
    p.fleet(&["deploy_site"]).code(0);
    for spelling in ["deploy-site", "deploy_site"] {
        let runs = p.fleet(&["history", "--recipe", spelling, "--json"]);
        runs.code(0);
        let records: serde_json::Value = serde_json::from_str(&runs.stdout).unwrap();
        assert_eq!(records.as_array().map(Vec::len), Some(2), "{runs}");
    }
    p.fleet(&["history", "--recipe", "deploy_site"])
        .code(0)
        .stdout_has("deploy-site");
    p.fleet(&["deploy-site", "--retry-failed"])
        .code(0)
        .stdout_has("nothing to retry");
}
