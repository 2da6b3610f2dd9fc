//! `fleet serve`: the read-only web view, fetched with a plain HTTP client from a
//! project whose journal holds real runs on loopback sshd hosts.

use crate::support::run_fleet;
use crate::support::sshd::TestFleet;

const SHOUT: &str = r#"
/// Prints hostile text and a secret on every host.
/// @arg loud: bool = false  Shout louder
fn shout(loud) {
    let tok = secret("tok");
    each(hosts(), |h| {
        h.run(`echo '<script>alert(1)</script>'; echo "token ${tok}"`);
    });
}
"#;

/// `fleet serve` on a free loopback port, read as (status code, body).
struct Server(crate::support::web::WebServer);

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        Server(crate::support::web::WebServer::start(dir, &[], &[]))
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self.0.get(path);
        (r.code, r.body)
    }
}

fn row<'a>(page: &'a str, host: &str) -> &'a str {
    page.lines()
        .find(|l| l.contains(&format!("data-host=\"{host}\"")))
        .unwrap_or_else(|| panic!("no row for {host}:\n{page}"))
}

#[test]
fn serve_shows_hosts_runs_and_recipes_escaped_and_redacted() {
    let f = TestFleet::start(2);
    let dir = f.path();
    crate::support::add_secrets_file(dir, "tok = \"Sv9-hunter2\"\n");
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    std::fs::write(dir.join("recipes/shout.rhai"), SHOUT).unwrap();

    run_fleet(dir, &["shout"]).code(0);
    f.kill("s2");
    let failed = run_fleet(dir, &["exec", "all", "--", "true"]);
    assert_ne!(failed.code, 0, "{failed:?}");

    let server = Server::start(dir);
    let (code, fleet) = server.get("/");
    assert_eq!(code, 200, "{fleet}");
    assert!(
        fleet.contains("<span id=\"count-all\">2 hosts</span>"),
        "{fleet}"
    );
    assert!(
        fleet.contains("<span id=\"count-failed\">1 failed</span>"),
        "{fleet}"
    );
    assert!(
        fleet.contains("<span id=\"count-unreachable\">1 unreachable</span>"),
        "{fleet}"
    );
    assert!(
        row(&fleet, "s1").contains("changed <a href=\"/run/"),
        "{fleet}"
    );
    assert!(
        row(&fleet, "s2").contains("unreachable <a href=\"/run/"),
        "{fleet}"
    );

    let (_, only_failed) = server.get("/?show=failed");
    assert!(only_failed.contains("data-host=\"s2\""), "{only_failed}");
    assert!(!only_failed.contains("data-host=\"s1\""), "{only_failed}");

    // The host page: groups, both runs newest first, the last run's output escaped.
    let (code, host) = server.get("/host/s1");
    assert_eq!(code, 200, "{host}");
    assert!(host.contains("groups: sshfleet"), "{host}");
    let listed = &host[host.find("id=\"runs\"").expect("a runs table")..];
    let exec_at = listed.find("<td>exec").expect("exec run listed");
    let shout_at = listed.find("<td>shout").expect("shout run listed");
    assert!(exec_at < shout_at, "runs not newest first:\n{host}");
    assert_eq!(server.get("/host/nobody").0, 404);

    // The run page of shout: output escaped, the secret masked.
    let (_, runs) = server.get("/runs?recipe=shout");
    assert!(!runs.contains("<td>exec"), "{runs}");
    let id = runs
        .split("href=\"/run/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a run link");
    let (code, run) = server.get(&format!("/run/{id}"));
    assert_eq!(code, 200, "{run}");
    assert!(
        run.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{run}"
    );
    assert!(!run.contains("<script>alert"), "{run}");
    assert!(run.contains("token ***"), "{run}");
    let (_, failed_runs) = server.get("/runs?result=unreachable");
    assert!(failed_runs.contains("s2 unreachable"), "{failed_runs}");
    assert!(!failed_runs.contains("<td>shout"), "{failed_runs}");

    let (_, recipes) = server.get("/recipes");
    assert!(recipes.contains("Prints hostile text"), "{recipes}");
    assert!(
        recipes.contains("<td>--loud</td><td>bool</td><td>false</td>"),
        "{recipes}"
    );
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("success rate of the last 2 runs: 50%"),
        "{metrics}"
    );

    for page in [fleet, host, run, recipes, metrics] {
        assert!(!page.contains("Sv9-hunter2"), "secret shown:\n{page}");
    }
}

#[test]
fn serve_refuses_addresses_other_than_loopback() {
    let p = crate::support::Project::new().local_hosts(1);
    p.fleet(&["serve", "--listen", "0.0.0.0:8080"])
        .code(2)
        .stderr_has("only when users sign in")
        .stderr_has("--add-user");
}
