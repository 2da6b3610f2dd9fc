//! What users read, pinned word for word: insta snapshots of the recap, `fleet hosts`,
//! `fleet recipes`, `fleet api`, `fleet status`, the journal record and the error
//! renderings. Times, run ids, durations, temp paths and this machine's user and host
//! names are filtered out, so a snapshot changes only when the output does.

use crate::support::{Output, Project, fleet_bin};

/// fleet in `p` with the environment pinned: no terminal (output is piped), no colour
/// preference, a fixed width for clap's help and UTC for any time.
fn fleet(p: &Project, args: &[&str]) -> Output {
    let out = std::process::Command::new(fleet_bin())
        .args(args)
        .current_dir(p.path())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("COLUMNS", "100")
        .env("LINES", "50")
        .env("TZ", "UTC")
        .output()
        .expect("fleet runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The filters every snapshot goes through; the project's own path first, then the
/// patterns of what changes from run to run (run ids before the times inside them).
fn filters(p: &Project) -> Vec<(String, String)> {
    let mut f = Vec::new();
    let mut paths = vec![p.path().to_path_buf()];
    if let Ok(real) = p.path().canonicalize() {
        paths.push(real);
    }
    for path in paths {
        f.push((
            regex_escape(&path.display().to_string()),
            "[PROJECT]".to_string(),
        ));
    }
    for (pattern, with) in [
        (r"/tmp/\.tmp\w+", "[PROJECT]"),
        (r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{4}", "[RUN_ID]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        // Durations keep their width where they are short, so tables stay aligned.
        (r#""duration_ms": \d+"#, r#""duration_ms": [N]"#),
        (r"\b\d+\.\d+s\b", "#.#s"),
        (r"\b\d+ms\b", "#ms"),
        (r#""user": "[^"]*""#, r#""user": "[USER]""#),
        (r#""controller": "[^"]*""#, r#""controller": "[HOST]""#),
        (
            r#""fleet_version": "[^"]*""#,
            r#""fleet_version": "[VERSION]""#,
        ),
        (r"by \S+@\S+,", "by [USER]@[HOST],"),
    ] {
        f.push((pattern.to_string(), with.to_string()));
    }
    f
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Snapshots `text` under `name` with the filters of project `p`.
macro_rules! pin {
    ($p:expr, $name:expr, $text:expr) => {{
        let filters = filters($p);
        let filters: Vec<(&str, &str)> = filters
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        insta::with_settings!({ filters => filters }, {
            insta::assert_snapshot!($name, $text);
        });
    }};
}

/// h1 stays ok, h2 changes, h3 fails in a step.
const MIXED: &str = r#"
/// One host stays ok, one changes, one fails.
fn mixed() {
    each(hosts(), |h| {
        if h.vars.n == 1 {
            h.run("true", #{ changed: false });
        } else if h.vars.n == 2 {
            h.run("echo changing");
        } else {
            step("check", || h.run("echo broken >&2; exit 7"));
        }
    });
}
"#;

#[test]
fn recap_and_journal_record_of_an_ok_a_changed_and_a_failed_host() {
    let p = Project::new().local_hosts(3).recipe("mixed", MIXED);
    // One host at a time, so that the per-host lines come in inventory order.
    let run = fleet(&p, &["mixed", "--forks", "1"]);
    run.code(3);
    pin!(&p, "recap", run.to_string());

    // The record as committed to the state repository, and as `fleet show` gives it.
    let runs = p.path().join("state/runs");
    let file = walk(&runs)
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "json"))
        .expect("a record under state/runs");
    let record = std::fs::read_to_string(&file).unwrap();
    pin!(&p, "journal_record", record.clone());
    let shown = fleet(&p, &["show", "last", "--json"]);
    shown.code(0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&shown.stdout).unwrap(),
        serde_json::from_str::<serde_json::Value>(&record).unwrap(),
        "show --json differs from the record file"
    );
    pin!(&p, "show_last", fleet(&p, &["show", "last"]).to_string());
}

#[test]
fn collapsed_recap_counts_the_hosts_that_ended_well_and_lists_failures() {
    let p = Project::new().local_hosts(3).recipe("mixed", MIXED);
    let run = fleet(&p, &["mixed", "--forks", "1", "--recap", "short"]);
    run.code(3);
    pin!(&p, "recap_short", run.to_string());
    // `--recap full` and the default without a terminal list every host.
    let full = fleet(&p, &["mixed", "--forks", "1", "--recap", "full"]);
    full.code(3);
    for host in ["h1    ok", "h2    changed", "h3    failed"] {
        assert!(full.stderr.contains(host), "{}", full.stderr);
    }
    assert!(!full.stderr.contains("not listed"), "{}", full.stderr);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn hosts_as_a_table_and_as_json() {
    let p = Project::new().local_hosts(3);
    pin!(&p, "hosts", fleet(&p, &["hosts"]).to_string());
    pin!(
        &p,
        "hosts_json",
        fleet(&p, &["hosts", "--json"]).to_string()
    );
}

#[test]
fn recipes_builtin_and_from_the_project() {
    let p = Project::new().local_hosts(1).recipe("mixed", MIXED);
    pin!(&p, "recipes", fleet(&p, &["recipes"]).to_string());
}

#[test]
fn api_reference() {
    let p = Project::new().local_hosts(1);
    pin!(&p, "api", fleet(&p, &["api"]).to_string());
}

/// Facts as a live `fleet status` would have gathered them, written over this machine's
/// own (OS, kernel, uptime and pending updates vary from one machine to the next).
fn pinned_facts(host: &str) -> serde_json::Value {
    match host {
        "h1" => serde_json::json!({
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0-28-amd64",
            "uptime_seconds": 93784,
            "pending": 3,
            "security": 1,
            "reboot_required": true,
            "sudo": true,
            "certs": [],
        }),
        _ => serde_json::json!({
            "os": "Ubuntu 24.04.1 LTS",
            "kernel": "6.8.0-49-generic",
            "uptime_seconds": 420,
            "pending": 0,
            "security": 0,
            "reboot_required": false,
            // h1 keeps the bool of records before `limited` (true: full).
            "sudo": "limited",
            // A proxy: the soonest of its sites' certificates (a missing one first).
            "certs": [
                { "domain": "web3.example.org", "expires": "2027-03-01" },
                { "domain": "api.example.org", "expires": null },
            ],
        }),
    }
}

#[test]
fn status_live_then_cached() {
    let p = Project::new().local_hosts(2);
    // A host nothing answers on.
    let mut inventory = p.read("inventory.toml");
    inventory.push_str("[hosts.gone]\naddress = \"127.0.0.1\"\nport = 1\n");
    std::fs::write(p.path().join("inventory.toml"), inventory).unwrap();

    let live = fleet(&p, &["status"]);
    live.code(4);
    assert!(live.stdout.starts_with("HOST  REACHABLE  OS"), "{live}");

    // The journal's facts replaced by fixed ones, keeping the keys fleet wrote.
    let (file, mut record) = walk(&p.path().join("state/runs"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, serde_json::from_str::<serde_json::Value>(&text).unwrap())
        })
        .find(|(_, r)| r["recipe"] == "status")
        .expect("the status run's record");
    for h in record["hosts"].as_array_mut().unwrap() {
        let name = h["host"].as_str().unwrap().to_string();
        if let Some(facts) = h["results"]["status"].as_object_mut() {
            let pinned = pinned_facts(&name);
            for key in facts.keys().cloned().collect::<Vec<_>>() {
                facts.insert(key.clone(), pinned[&key].clone());
            }
        }
    }
    std::fs::write(&file, serde_json::to_string_pretty(&record).unwrap()).unwrap();

    let cached = fleet(&p, &["status", "--cached"]);
    cached.code(0);
    pin!(&p, "status_cached", cached.to_string());
    pin!(
        &p,
        "status_cached_json",
        fleet(&p, &["status", "--cached", "--json"]).to_string()
    );
}

#[test]
fn error_inventory_syntax() {
    let p = Project::new().file(
        "inventory.toml",
        "[hosts.web]\nconnection = \"local\"\nport = \n",
    );
    pin!(
        &p,
        "error_inventory_syntax",
        fleet(&p, &["hosts"]).to_string()
    );
}

/// Run from the project root, the message names it as `.` (it once printed nothing).
#[test]
fn error_no_inventory() {
    let p = Project::new();
    pin!(&p, "error_no_inventory", fleet(&p, &["hosts"]).to_string());
}

#[test]
fn error_recipe_syntax() {
    let p = Project::new()
        .local_hosts(1)
        .recipe("broken", "/// Broken.\nfn broken() {\n    let x = ;\n}\n");
    pin!(
        &p,
        "error_recipe_syntax",
        fleet(&p, &["broken"]).to_string()
    );
}

#[test]
fn error_recipe_runtime() {
    let p = Project::new().local_hosts(1).recipe(
        "oops",
        "/// Calls what does not exist.\nfn oops() {\n    each(hosts(), |h| {\n        h.name.no_such_method();\n    });\n}\n",
    );
    pin!(&p, "error_recipe_runtime", fleet(&p, &["oops"]).to_string());
}

const TWO_HOSTS: &str =
    "[hosts.webserver]\nconnection = \"local\"\n\n[hosts.db]\nconnection = \"local\"\n";

#[test]
fn error_unknown_host_with_a_suggestion() {
    let p = Project::new().file("inventory.toml", TWO_HOSTS).recipe(
        "one",
        "/// One host by name.\nfn one() {\n    host(\"webservr\").run(\"true\");\n}\n",
    );
    pin!(
        &p,
        "error_unknown_pattern",
        fleet(&p, &["hosts", "webservr"]).to_string()
    );
    pin!(
        &p,
        "error_unknown_host_in_recipe",
        fleet(&p, &["one"]).to_string()
    );
}

#[test]
fn error_bad_cli_arguments() {
    let p = Project::new().local_hosts(1).recipe(
        "deploy",
        "/// Deploys.\n/// @arg batch: int = 1  hosts at once\nfn deploy(batch) { }\n",
    );
    pin!(
        &p,
        "error_bad_option_value",
        fleet(&p, &["--forks", "abc", "hosts"]).to_string()
    );
    pin!(
        &p,
        "error_unknown_option",
        fleet(&p, &["hosts", "--bogus"]).to_string()
    );
    pin!(
        &p,
        "error_unknown_recipe",
        fleet(&p, &["deploi"]).to_string()
    );
    pin!(
        &p,
        "error_bad_recipe_argument",
        fleet(&p, &["deploy", "--batch", "five"]).to_string()
    );
}
