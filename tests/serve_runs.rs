//! `fleet serve` running recipes: the Recipes page's forms, a POST that starts a run,
//! its output streamed live (Server-Sent Events), the journal's web user, the lock, and
//! bad input refused with the CLI's errors. Plain HTTP over TCP against a real server.

use crate::support::sshd::TestFleet;
use crate::support::web::Reply;
use crate::support::{Project, run_fleet, spawn_fleet};
use std::path::Path;
use std::time::{Duration, Instant};

const SHOUT: &str = r#"
/// Prints a secret on every host.
fn shout() {
    let tok = secret("tok");
    each(hosts(), |h| {
        h.run(`echo "token ${tok}"`);
    });
}
"#;

const COUNT: &str = r#"
/// Counts to N on every host.
/// @arg count: int = 1  how far
/// @arg loud: bool = false  shout it
fn count(count, loud) {
    each(hosts(), |h| h.run(`seq ${count}`));
}
"#;

const SLOW: &str = r#"
/// Holds the lock a while.
fn slow() {
    each(hosts(), |h| h.run("sleep 4; echo slept"));
}
"#;

/// `fleet serve` on a free loopback port, with the forms and streams of web runs.
struct Server(crate::support::web::WebServer);

impl Server {
    fn start(dir: &Path) -> Server {
        Server(crate::support::web::WebServer::start(dir, &[], &[]))
    }

    fn request(&self, text: &str) -> Reply {
        self.0.raw(text.as_bytes())
    }

    fn get(&self, path: &str) -> Reply {
        self.request(&format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"))
    }

    /// POST a form of `fields` (URL-encoded here).
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        let body = body.join("&");
        self.request(&format!(
            "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// The event stream of run `id` up to its `end` event: (data lines, end result).
    fn events(&self, id: &str) -> (Vec<String>, String) {
        let reply = self.get(&format!("/run/{id}/events"));
        assert_eq!(reply.code, 200, "{}", reply.body);
        assert!(
            reply
                .head
                .to_ascii_lowercase()
                .contains("text/event-stream"),
            "{}",
            reply.head
        );
        let mut lines = Vec::new();
        let mut end = None;
        for event in reply.body.split("\n\n") {
            let mut name = None;
            let mut data = Vec::new();
            for l in event.lines() {
                if let Some(n) = l.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = l.strip_prefix("data: ") {
                    data.push(d.to_string());
                }
            }
            match name.as_deref() {
                Some("end") => end = Some(data.join("\n")),
                _ => lines.extend(data),
            }
        }
        let end = end.unwrap_or_else(|| panic!("no end event in:\n{}", reply.body));
        (lines, end)
    }

    fn csrf(&self) -> String {
        let page = self.get("/recipes").body;
        page.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no csrf field:\n{page}"))
            .to_string()
    }
}

fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The run id a POST redirected to.
fn started(reply: &Reply) -> String {
    assert_eq!(reply.code, 303, "{}", reply.body);
    reply
        .location()
        .strip_prefix("/run/")
        .expect("redirect to a run page")
        .to_string()
}

fn journal(dir: &Path) -> Vec<serde_json::Value> {
    let out = run_fleet(dir, &["history", "--json"]);
    out.code(0);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn record(dir: &Path, id: &str) -> serde_json::Value {
    journal(dir)
        .into_iter()
        .find(|r| r["run_id"] == id)
        .unwrap_or_else(|| panic!("no journal record of {id}"))
}

#[test]
fn web_runs_stream_live_are_journaled_as_the_web_user_and_bad_input_starts_nothing() {
    let f = TestFleet::start(2);
    let dir = f.path();
    crate::support::add_secrets_file(dir, "tok = \"Sv9-webrun-42\"\n");
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    std::fs::write(dir.join("recipes/shout.rhai"), SHOUT).unwrap();
    std::fs::write(dir.join("recipes/count.rhai"), COUNT).unwrap();
    let server = Server::start(dir);

    // The forms: typed inputs, defaults, the token, both buttons.
    let page = server.get("/recipes");
    assert_eq!(page.code, 200, "{}", page.body);
    let csrf = server.csrf();
    assert_eq!(csrf.len(), 64, "{csrf}");
    assert!(
        page.body
            .contains("<form class=\"run\" method=\"post\" action=\"/recipes/facts\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<input type=\"number\" step=\"1\" name=\"arg-count\" value=\"1\">"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<input type=\"checkbox\" name=\"arg-loud\" value=\"true\">"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Check first</button>"), "{}", page.body);
    assert!(page.body.contains(">Run</button>"), "{}", page.body);

    // Without the token, or with another one: refused, nothing starts.
    let before = journal(dir).len();
    let forged = server.post("/recipes/facts", &[("hosts", "all"), ("mode", "run")]);
    assert_eq!(forged.code, 403, "{}", forged.body);
    let stale = server.post(
        "/recipes/facts",
        &[("csrf", &"0".repeat(64)), ("mode", "run")],
    );
    assert_eq!(stale.code, 403, "{}", stale.body);

    // Bad input: the CLI's own errors on the form, nothing starts.
    let cli = run_fleet(dir, &["count", "--count=many"]);
    cli.code(2)
        .stderr_has("argument `count` of recipe `count` expects an int, got `many`");
    let wrong = server.post(
        "/recipes/count",
        &[("csrf", &csrf), ("arg-count", "many"), ("mode", "run")],
    );
    assert_eq!(wrong.code, 422, "{}", wrong.body);
    assert!(
        wrong
            .body
            .contains("argument `count` of recipe `count` expects an int, got `many`"),
        "{}",
        wrong.body
    );
    // The form keeps what was typed.
    assert!(
        wrong.body.contains("name=\"arg-count\" value=\"many\""),
        "{}",
        wrong.body
    );
    let nobody = server.post(
        "/recipes/facts",
        &[("csrf", &csrf), ("hosts", "nosuch-*"), ("mode", "run")],
    );
    assert_eq!(nobody.code, 422, "{}", nobody.body);
    assert!(
        nobody.body.contains("pattern `nosuch-*` matches no host"),
        "{}",
        nobody.body
    );
    let unknown = server.post("/recipes/nope", &[("csrf", &csrf), ("mode", "run")]);
    assert_eq!(unknown.code, 404, "{}", unknown.body);
    assert_eq!(journal(dir).len(), before, "bad input started a run");

    // facts from the form: redirected to its page, its output streamed, ends ok.
    let id = started(&server.post(
        "/recipes/facts",
        &[
            ("csrf", &csrf),
            ("hosts", "all"),
            ("lock", "refuse"),
            ("mode", "run"),
        ],
    ));
    let (lines, end) = server.events(&id);
    assert_eq!(end, "ok", "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("run {id} of facts"))),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("s1: ")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("s2: ")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("hostname")), "{lines:#?}");
    let r = record(dir, &id);
    assert_eq!(r["user"], "web:local", "{r:#}");
    assert_eq!(r["recipe"], "facts", "{r:#}");
    assert_eq!(r["exit_code"], 0, "{r:#}");
    // The run page is now the journal's record.
    let run_page = server.get(&format!("/run/{id}"));
    assert_eq!(run_page.code, 200, "{}", run_page.body);
    assert!(run_page.body.contains("by web:local@"), "{}", run_page.body);

    // "Check first": the same recipe with --check, recorded as such.
    let checked = started(&server.post(
        "/recipes/count",
        &[
            ("csrf", &csrf),
            ("arg-count", "3"),
            ("hosts", "s1"),
            ("mode", "check"),
        ],
    ));
    let (lines, end) = server.events(&checked);
    assert_eq!(end, "ok", "{lines:#?}");
    let r = record(dir, &checked);
    assert_eq!(r["check"], true, "{r:#}");
    assert_eq!(r["hosts"].as_array().unwrap().len(), 1, "{r:#}");

    // A configured secret a recipe prints is masked in the stream.
    let shout = started(&server.post("/recipes/shout", &[("csrf", &csrf), ("mode", "run")]));
    let (lines, end) = server.events(&shout);
    assert_eq!(end, "ok", "{lines:#?}");
    assert!(lines.iter().any(|l| l == "s1:   token ***"), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("Sv9-webrun-42")),
        "secret streamed: {lines:#?}"
    );
    let page = server.get(&format!("/run/{shout}"));
    assert!(!page.body.contains("Sv9-webrun-42"), "{}", page.body);
    assert_eq!(journal(dir).len(), before + 3);
}

#[test]
fn the_lock_is_shown_refused_or_waited_for_and_cli_runs_stream_too() {
    let p = Project::new().local_hosts(1).recipe("slow", SLOW);
    let dir = p.path();
    // A first run makes the state repository, so the slow one takes the lock at once.
    run_fleet(dir, &["facts"]).code(0);
    let server = Server::start(dir);
    let csrf = server.csrf();

    let mut cli = spawn_fleet(dir, &["slow", "--no-progress"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let page = server.get("/recipes").body;
        if page.contains("id=\"lock\"") {
            break page;
        }
        assert!(Instant::now() < deadline, "the lock never showed:\n{page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        page.contains("another run holds the lock of this project: `slow` started"),
        "{page}"
    );

    // The CLI's run is on the Runs page as running, and streams.
    let runs = server.get("/runs").body;
    let cli_id = runs
        .split("<tr class=\"running\"><td><a href=\"/run/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no running run:\n{runs}"))
        .to_string();
    assert!(runs.contains("<td>slow</td>"), "{runs}");
    let live = server.get(&format!("/run/{cli_id}"));
    assert_eq!(live.code, 200, "{}", live.body);
    assert!(
        live.body.contains("new EventSource('/run/"),
        "{}",
        live.body
    );

    // Refuse: the holder on the form, nothing starts.
    let refused = server.post(
        "/recipes/facts",
        &[("csrf", &csrf), ("lock", "refuse"), ("mode", "run")],
    );
    assert_eq!(refused.code, 422, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("another run holds the lock of this project: `slow` started"),
        "{}",
        refused.body
    );

    // Wait: starts, waits for the lock, runs after the CLI's run.
    let waiting = started(&server.post(
        "/recipes/facts",
        &[("csrf", &csrf), ("lock", "wait"), ("mode", "run")],
    ));
    let (cli_lines, cli_end) = server.events(&cli_id);
    assert_eq!(cli_end, "ok", "{cli_lines:#?}");
    assert!(
        cli_lines.iter().any(|l| l == "h1:   slept"),
        "{cli_lines:#?}"
    );
    let (lines, end) = server.events(&waiting);
    assert_eq!(end, "ok", "{lines:#?}");
    assert!(cli.wait().unwrap().success());
    let cli_record = record(dir, &cli_id);
    let web_record = record(dir, &waiting);
    assert_eq!(web_record["user"], "web:local");
    assert_ne!(cli_record["user"], "web:local");
    assert!(
        web_record["started"].as_str() >= cli_record["ended"].as_str(),
        "{web_record:#} {cli_record:#}"
    );
}

#[test]
fn a_cli_run_killed_mid_way_ends_its_stream_as_killed() {
    let p = Project::new().local_hosts(1).recipe("slow", SLOW);
    let dir = p.path();
    run_fleet(dir, &["facts"]).code(0);
    let server = Server::start(dir);
    let mut cli = spawn_fleet(dir, &["slow", "--no-progress"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let runs = server.get("/runs").body;
        if let Some(id) = runs
            .split("<tr class=\"running\"><td><a href=\"/run/")
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "no running run:\n{runs}");
        std::thread::sleep(Duration::from_millis(100));
    };
    cli.kill().unwrap();
    cli.wait().unwrap();
    let (lines, end) = server.events(&id);
    assert_eq!(end, "killed", "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("run {id} of slow"))),
        "{lines:#?}"
    );
    // No longer running.
    assert!(!server.get("/runs").body.contains("class=\"running\""));
}
