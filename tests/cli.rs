//! Listing, help, suggestions and the commands around recipes.

use crate::support::{Project, run_fleet};
use std::path::Path;

const DEPLOY: &str = r#"
/// Deploy the app to web servers.
/// Longer description of deploying.
/// @arg version  release to deploy
/// @arg batch: int = 2  hosts per batch
/// @arg dry_run: bool = false  only show what would happen
fn deploy(version, batch, dry_run) {
    print(`deploy ${version} batch=${batch} dry_run=${dry_run} ${type_of(batch)}`);
}

/// Replaces the built-in facts recipe.
fn facts() { print("project facts"); }

private fn helper() {}
"#;

#[test]
fn recipes_lists_builtin_and_project_recipes_with_their_summary() {
    let p = Project::new().recipe("deploy", DEPLOY);
    let out = p.fleet(&["recipes"]);
    out.code(0)
        .stdout_has("deploy")
        .stdout_has("Deploy the app to web servers.")
        .stdout_has("recipes/deploy.rhai")
        .stdout_lacks("helper");
    let facts = out.stdout.lines().find(|l| l.starts_with("facts")).unwrap();
    assert!(
        facts.contains("recipes/deploy.rhai (replaces built-in)"),
        "{facts}"
    );
}

#[test]
fn a_project_recipe_replaces_the_builtin_one() {
    let p = Project::new().recipe("deploy", DEPLOY).local_hosts(1);
    p.fleet(&["facts"]).code(0).stdout_has("project facts");
}

#[test]
fn help_shows_arguments_types_and_defaults() {
    let p = Project::new().recipe("deploy", DEPLOY);
    let out = p.fleet(&["help", "deploy"]);
    out.code(0)
        .stdout_has("Usage: fleet deploy [OPTIONS] <VERSION>")
        .stdout_has("release to deploy (string)")
        .stdout_has("--batch <BATCH>")
        .stdout_has("hosts per batch (int)")
        .stdout_has("[default: 2]")
        .stdout_has("--dry-run")
        .stdout_has("Longer description of deploying.")
        .stdout_has("Recipe defined in recipes/deploy.rhai");
}

#[test]
fn arguments_are_converted_to_their_declared_types() {
    let p = Project::new().recipe("deploy", DEPLOY).local_hosts(1);
    p.fleet(&["deploy", "v1.2", "--batch", "5", "--dry-run"])
        .code(0)
        .stdout_has("deploy v1.2 batch=5 dry_run=true i64");
}

#[test]
fn a_bad_argument_value_names_recipe_and_argument() {
    let p = Project::new().recipe("deploy", DEPLOY).local_hosts(1);
    p.fleet(&["deploy", "v1", "--batch", "five"])
        .code(2)
        .stderr_has("argument `batch` of recipe `deploy` expects an int, got `five`");
}

#[test]
fn a_missing_argument_shows_the_usage() {
    let p = Project::new().recipe("deploy", DEPLOY).local_hosts(1);
    p.fleet(&["deploy"])
        .code(2)
        .stderr_has("<VERSION>")
        .stderr_has("Usage: fleet deploy");
}

#[test]
fn a_typo_suggests_the_closest_recipe() {
    let p = Project::new().recipe("deploy", DEPLOY);
    p.fleet(&["deplyo"])
        .code(2)
        .stderr_has("unrecognized subcommand 'deplyo'")
        // (`replay` is as close to `deplyo` as `deploy` is: clap names both.)
        .stderr_has("similar subcommand")
        .stderr_has("'deploy'");
    p.fleet(&["help", "deplyo"])
        .code(2)
        .stderr_has("no recipe or command named `deplyo`")
        .stderr_has("did you mean `deploy`?");
}

#[test]
fn hosts_lists_address_groups_and_vars() {
    let p = Project::new().local_hosts(3);
    let out = p.fleet(&["hosts"]);
    out.code(0).stdout_has("HOST").stdout_has("h3");
    let h2 = out.stdout.lines().find(|l| l.starts_with("h2")).unwrap();
    assert!(h2.contains("even,local") && h2.contains("n=2"), "{h2}");
    let out = p.fleet(&["list", "even", "--json"]);
    let hosts: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 1);
    assert_eq!(hosts[0]["name"], "h2");
    assert_eq!(hosts[0]["vars"]["n"], 2);
    assert_eq!(hosts[0]["connection"], "local");
}

#[test]
fn another_inventory_is_used_with_dash_i() {
    let p = Project::new()
        .local_hosts(1)
        .file("other.toml", "[hosts.elsewhere]\nconnection = \"local\"\n");
    p.fleet(&["-i", "other.toml", "hosts"])
        .code(0)
        .stdout_has("elsewhere")
        .stdout_lacks("h1");
}

#[test]
fn the_project_is_found_from_a_subdirectory() {
    let p = Project::new().local_hosts(2).file("deep/down/.keep", "");
    let out = run_fleet(&p.path().join("deep/down"), &["hosts"]);
    out.code(0).stdout_has("h2");
}

#[test]
fn init_creates_a_project_that_runs() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("myfleet");
    let out = run_fleet(dir.path(), &["init", "myfleet"]);
    out.code(0).stdout_has("Created a fleet project");
    for f in [
        "fleet.toml",
        "inventory.toml",
        "recipes/example.rhai",
        ".gitignore",
        "hooks/pre-commit",
        "ci/fleet-check.yml",
    ] {
        assert!(target.join(f).is_file(), "{f} missing");
    }
    let repo = git2::Repository::open(&target).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.message().unwrap(), "New fleet project");
    // Editor definitions from the first minute: fleet's functions, the stdlib modules
    // and the project's own recipes, ignored by git.
    let defs = target.join("definitions");
    assert!(
        std::fs::read_to_string(defs.join("__static__.d.rhai"))
            .unwrap()
            .contains("fn each(")
    );
    assert!(
        std::fs::read_to_string(defs.join("import-pkg.d.rhai"))
            .unwrap()
            .contains("fn install(h: ?, names: ?)")
    );
    assert!(
        std::fs::read_to_string(defs.join("recipes.d.rhai"))
            .unwrap()
            .contains("fn hello(greeting: ?)")
    );
    assert!(
        repo.status_should_ignore(std::path::Path::new("definitions/recipes.d.rhai"))
            .unwrap()
    );
    let mut opts = git2::StatusOptions::new();
    opts.include_ignored(false).include_untracked(true);
    assert!(
        repo.statuses(Some(&mut opts)).unwrap().is_empty(),
        "init leaves a clean work tree"
    );
    let out = run_fleet(&target, &["hello", "--greeting", "hi"]);
    out.code(0)
        .stdout_has("localhost | hi from localhost")
        .stdout_has("kernel");
    assert!(
        std::fs::read_dir(target.join(".fleet/logs"))
            .unwrap()
            .count()
            == 1
    );
    run_fleet(dir.path(), &["init", "myfleet"])
        .code(2)
        .stderr_has("already a fleet project");
}

#[test]
fn api_documents_every_host_function() {
    let out = run_fleet(Path::new("."), &["api"]);
    out.code(0);
    for f in [
        "hosts(pattern: &str) -> Array",
        "each(hosts: Array, f: FnPtr)",
        "step(name: &str",
        "run(h: Host, cmd: &str)",
        "read(h: Host",
        "table(rows: Array",
    ] {
        out.stdout_has(f);
    }
    out.stdout_has("allow_fail");
    let dir = tempfile::tempdir().unwrap();
    run_fleet(
        Path::new("."),
        &["api", "--definitions", dir.path().to_str().unwrap()],
    )
    .code(0);
    let all: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(all.contains("fn each("), "{all}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let p = Project::new().recipe("deploy", DEPLOY);
    for shell in ["bash", "zsh", "fish"] {
        p.fleet(&["completions", shell])
            .code(0)
            .stdout_has("deploy");
    }
}

#[test]
fn the_quickstart_example_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_fleet(
        root,
        &["-C", "examples/quickstart", "survey", "--no-progress"],
    );
    out.code(0)
        .stdout_has("hostname")
        .stdout_has("kernel")
        .stdout_has("uptime")
        .stdout_has("disk_used")
        .stdout_has("localhost");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let p = Project::new().local_hosts(200);
    let bin = crate::support::fleet_bin();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' hosts | head -n 1; echo \"status=${{PIPESTATUS:-ok}}\"",
            bin.display()
        ))
        .current_dir(p.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}

#[test]
fn a_project_stdlib_module_replaces_the_builtin_one() {
    let p = Project::new().local_hosts(1).file(
        "stdlib/facts.rhai",
        "fn gather(h) { #{ host: h.name, hostname: \"from project\" } }\n",
    );
    p.fleet(&["facts"]).code(0).stdout_has("from project");
    let p = Project::new().local_hosts(1).recipe(
        "imp",
        "import \"nosuch\" as n;\n/// Imports what is not there.\nfn imp() { n::f(); }\n",
    );
    p.fleet(&["imp"])
        .code(2)
        .stderr_has("Module not found: nosuch");
}

/// On a terminal (a pty from util-linux `script`), a missing required argument makes
/// fleet ask for it; the others keep their defaults (a recipe may offer menus, `ask::`).
#[test]
fn on_a_terminal_missing_arguments_are_asked_for() {
    let p = Project::new().local_hosts(1).recipe(
        "greet",
        "/// Greet.\n/// @arg name: string  who\n/// @arg greeting: string = \"hello\"  how\n/// @arg times: int = 1  how often\nfn greet(name, greeting, times) { print(`${greeting} ${name} x${times}`); }\n",
    );
    let command = format!(
        "{} -C {} greet --no-progress",
        crate::support::fleet_bin().display(),
        p.path().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    std::io::Write::write_all(&mut stdin, b"world\r").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("name: who (string)"), "{text}");
    assert!(!text.contains("greeting:"), "{text}");
    assert!(text.contains("hello world x1"), "{text}");
}

#[test]
fn a_recipe_argument_named_like_a_global_option_is_refused() {
    let p = Project::new().local_hosts(1).recipe(
        "slow",
        "/// Slow.\n/// @arg timeout: int = 5  how long\nfn slow(timeout) { }\n",
    );
    p.fleet(&["slow"])
        .code(2)
        .stderr_has("argument `timeout` of recipe `slow` would be --timeout, which is one of fleet's own options");
}

#[test]
fn forks_zero_names_the_file() {
    let p = Project::new()
        .file("fleet.toml", "forks = 0\n")
        .local_hosts(1);
    let out = p.fleet(&["exec", "all", "--", "true"]);
    out.code(2)
        .stderr_has("invalid fleet.toml: `forks` must be at least 1")
        .stderr_has("fleet.toml:1:9");
    assert!(!out.stderr.contains("--forks"), "{out}");
    // On the command line it is the flag that is named.
    let p = Project::new().local_hosts(1);
    p.fleet(&["exec", "all", "--forks", "0", "--", "true"])
        .code(2)
        .stderr_has("--forks must be at least 1");
}

#[test]
fn private_helpers_are_not_commands_and_a_long_summary_is_its_first_sentence() {
    let p = Project::new().local_hosts(1).recipe(
        "site",
        "/// Deploys the site to every web host,\n/// one host after another. Then it\n/// checks the pages.\n///\n/// More words.\nfn site() {\n    print(helper());\n}\n\nprivate fn helper() {\n    \"from the helper\"\n}\n",
    );
    let out = p.fleet(&["recipes"]);
    out.code(0)
        .stdout_has("Deploys the site to every web host, one host after another.")
        .stdout_lacks("helper")
        .stdout_lacks("Then it");
    p.fleet(&["site", "--help"])
        .code(0)
        .stdout_has("Then it checks the pages.")
        .stdout_has("More words.");
    p.fleet(&["site"]).code(0).stdout_has("from the helper");
    p.fleet(&["helper"])
        .code(2)
        .stderr_has("unrecognized subcommand 'helper'");
}

#[test]
fn api_and_definitions_cover_the_stdlib_the_project_modules_roles_and_recipes() {
    let p = Project::new()
        .recipe("deploy", DEPLOY)
        .file(
            "stdlib/mine.rhai",
            "/// Greets the host.\nfn greet(h) { 1 }\nprivate fn zq_private_helper() {}\n",
        )
        .file(
            "catalog/roles/web.rhai",
            "/// Installs the web role.\nfn apply(h, vars) { true }\n",
        );
    let out = p.fleet(&["api"]);
    out.code(0)
        .stdout_has("https://rhai.rs/book/ref/")
        .stdout_has("pkg::install(h, names)")
        .stdout_has("facts::gather(h)")
        .stdout_has("host, hostname, kernel, uptime, uptime_seconds, disk_used, disk_free")
        .stdout_has("mine::greet(h)\n    Greets the host.")
        .stdout_has("catalog/roles/web::apply(h, vars)")
        .stdout_lacks("zq_private_helper");
    p.fleet(&["api", "--definitions", "defs"])
        .code(0)
        .stdout_has("Rhai definition files to defs");
    let read = |f: &str| p.read(&format!("defs/{f}"));
    assert!(read("import-pkg.d.rhai").starts_with("// `import \"pkg\" as m;`"));
    assert!(read("import-pkg.d.rhai").contains("module pkg;"));
    assert!(read("import-mine.d.rhai").contains("/// Greets the host.\nfn greet(h: ?) -> ?;"));
    assert!(!read("import-mine.d.rhai").contains("zq_private_helper"));
    assert!(read("import-catalog-roles-web.d.rhai").contains("fn apply(h: ?, vars: ?) -> ?;"));
    let recipes = read("recipes.d.rhai");
    assert!(
        recipes.contains("/// Deploy the app to web servers."),
        "{recipes}"
    );
    assert!(recipes.contains("fn deploy(version"), "{recipes}");
    assert!(read("git.d.rhai").contains("fn head(path: string) -> map;"));
}

/// The worked example of docs/recipes.md runs as written.
#[test]
fn the_recipes_guide_example_runs() {
    let block = crate::support::guide_block;
    let p = Project::new()
        .local_hosts(2)
        .recipe("motd", &block("// recipes/motd.rhai"))
        .file("templates/motd.j2", &block("{# templates/motd.j2 #}"));
    let dest = p.path().join("motd.txt");
    let dest = dest.to_str().unwrap();
    p.fleet(&["recipes"])
        .code(0)
        .stdout_has(
            "Writes the message of the day on each host and prints their kernels and uptimes.",
        )
        .stdout_lacks("motd_state");
    p.fleet(&["motd", "--check", "--dest", dest]).code(0);
    assert!(!Path::new(dest).exists());
    let out = p.fleet(&["motd", "h1", "--owner", "alice", "--dest", dest]);
    out.code(0).stdout_has("written").stdout_has("uptime");
    let text = std::fs::read_to_string(dest).unwrap();
    assert!(text.contains("h1 is managed by fleet"), "{text}");
    assert!(
        text.contains("Questions about it: alice (in a template also alice)."),
        "{text}"
    );
    p.fleet(&["motd", "h1", "--owner", "alice", "--dest", dest])
        .code(0)
        .stdout_has("unchanged");
}
