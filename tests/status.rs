//! `fleet status` (live, --cached, filters, --json) and `fleet report --html` checked in
//! headless Chromium, on container hosts and one host that cannot be reached.

use crate::support::containers::{ContainerHost, TestKey, project_for};
use crate::support::run_fleet;

fn with_pending_update(host: &ContainerHost) {
    let out = std::process::Command::new("docker")
        .args(["exec", &host.id, "sh", "-c", crate::update::FIXTURE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // apt-get update as fleet update would do it: the simulation reads the lists.
    host.exec("apt-get update -q >/dev/null 2>&1");
}

fn row<'a>(out: &'a str, host: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_else(|| panic!("no row for {host}:\n{out}"))
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn status_live_cached_filtered_and_as_a_report() {
    let key = TestKey::new();
    let fresh = ContainerHost::start(&key.public());
    let stale = ContainerHost::start(&key.public());
    with_pending_update(&stale);
    let p = project_for(&key, &[("fresh", &fresh, ""), ("stale", &stale, "")]);
    // A host nothing answers on.
    let mut inventory = std::fs::read_to_string(p.path().join("inventory.toml")).unwrap();
    inventory.push_str("[hosts.gone]\naddress = \"127.0.0.1\"\nport = 1\n");
    std::fs::write(p.path().join("inventory.toml"), inventory).unwrap();

    let live = run_fleet(p.path(), &["status"]);
    live.code(4);
    let s = row(&live.stdout, "stale");
    assert_eq!(s[1], "yes");
    assert_eq!(s[2], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(s[5], "1 (1 security)", "{live}");
    assert_eq!(&s[6..8], ["no", "full"]);
    assert_eq!(row(&live.stdout, "fresh")[5], "0");
    assert_eq!(&row(&live.stdout, "gone")[1..3], ["NO", "-"]);

    let outdated = run_fleet(p.path(), &["status", "--outdated"]);
    assert!(
        outdated.stdout.contains("stale") && !outdated.stdout.contains("fresh"),
        "{outdated}"
    );
    let unreachable = run_fleet(p.path(), &["status", "--unreachable", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&unreachable.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{unreachable}");
    assert_eq!(rows[0]["host"], "gone");
    assert_eq!(rows[0]["reachable"], false);

    // An update run, then the cached view (no connection, no new run) and the report.
    run_fleet(p.path(), &["update", "--pattern", "stale"]).code(0);
    let runs_before = run_fleet(p.path(), &["history"]).stdout.lines().count();
    let cached = run_fleet(p.path(), &["status", "--cached", "--json"]);
    cached.code(0);
    assert_eq!(
        run_fleet(p.path(), &["history"]).stdout.lines().count(),
        runs_before,
        "--cached made a run"
    );
    let rows: serde_json::Value = serde_json::from_str(&cached.stdout).unwrap();
    let stale_row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "stale")
        .unwrap();
    assert_eq!(stale_row["last_update"]["status"], "changed");
    assert_eq!(stale_row["last_update"]["result"]["upgraded"], 1);

    let html = p.path().join("report.html");
    run_fleet(p.path(), &["report", "--html", html.to_str().unwrap()]).code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "external assets in the report"
    );
    let dom = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (apt-get install chromium; scripts/install-deps --tests does)");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for host in ["fresh", "stale", "gone"] {
        assert!(
            dom.contains(&format!("data-host=\"{host}\"")),
            "{host} missing from the page"
        );
    }
    assert!(
        dom.contains("<tr class=\"failed\" data-host=\"gone\">"),
        "gone is not marked:\n{dom}"
    );
    assert!(
        dom.contains("<span class=\"badge unreachable\">UNREACHABLE</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("<span class=\"badge changed\">CHANGED</span>"),
        "{dom}"
    );
}
