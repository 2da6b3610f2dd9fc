//! `fleet catalog`: the apps of the project's catalog with their ports, scopes and
//! dependencies, and the hosts that have each (their `apps` var, dependencies
//! included), as a table and as JSON; also from a catalog repository.

use crate::support::Project;
use std::path::Path;

fn example_catalog() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configure/catalog/index.json"),
    )
    .unwrap()
}

const INVENTORY: &str = r#"
[groups.web]
vars = { apps = ["nginx"] }

[hosts.web-1]
connection = "local"
groups = ["web"]

[hosts.cache-1]
connection = "local"
vars = { apps = ["web-stack"] }

[hosts.plain]
connection = "local"

[hosts.typo]
connection = "local"
vars = { apps = ["ngnix"] }
"#;

#[test]
fn the_catalog_lists_apps_with_ports_dependencies_and_hosts() {
    let p = Project::new()
        .file("catalog/index.json", &example_catalog())
        .file("inventory.toml", INVENTORY);
    let out = p.fleet(&["catalog"]);
    out.code(0).stderr_has(
        "warning: host typo: app `ngnix` is not in the catalog (did you mean `nginx`?)",
    );
    assert_eq!(
        out.stdout,
        "APP        ROLE    PORTS                          DEPENDS       HOSTS           DESCRIPTION\n\
         nginx      nginx   80/tcp public, 443/tcp public  -             web-1, cache-1  web server\n\
         docker     docker  -                              -             -               container engine (Debian's docker.io)\n\
         redis      redis   6379/tcp lan                   -             cache-1         in-memory store, for the LAN only\n\
         web-stack  none    -                              nginx, redis  cache-1         nginx with redis behind it\n",
        "{out:?}"
    );

    let out = p.fleet(&["catalog", "--json"]);
    out.code(0);
    let apps: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(apps.as_array().unwrap().len(), 4);
    assert_eq!(
        apps[0],
        serde_json::json!({
            "name": "nginx",
            "role": "nginx",
            "description": "web server",
            "ports": [
                { "port": "80", "proto": "tcp", "scope": "public" },
                { "port": "443", "proto": "tcp", "scope": "public" }
            ],
            "depends": [],
            "hosts": ["web-1", "cache-1"]
        })
    );
    assert_eq!(apps[3]["depends"], serde_json::json!(["nginx", "redis"]));
    assert_eq!(apps[2]["ports"][0]["scope"], "lan");
    assert_eq!(apps[1]["hosts"], serde_json::json!([]));
}

#[test]
fn the_catalog_can_come_from_a_repository_and_bad_catalogs_are_named() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("index.json"), example_catalog()).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "catalog"]);
    let p = Project::new().file("inventory.toml", INVENTORY);
    p.fleet(&["catalog"])
        .code(2)
        .stderr_has("cannot read the app catalog")
        .stderr_has("--catalog-repo");
    p.fleet(&["catalog", "--catalog-repo", repo.path().to_str().unwrap()])
        .code(0)
        .stdout_has("web-stack  none");
    assert!(p.path().join("catalog/index.json").is_file());

    let p = Project::new().file("inventory.toml", INVENTORY).file(
        "catalog/index.json",
        r#"{"apps": [{"name": "web", "role": "nginx", "ports": [{"port": "80; reboot", "scope": "public"}]}]}"#,
    );
    p.fleet(&["catalog"]).code(2).stderr_has(
        "catalog/index.json: app `web` (apps[0]): ports[0].port `80; reboot` is not a port",
    );
}
