//! `fleet serve` in a real browser: headless chromium (tests/support/browser.rs) on a
//! fixture project with a local host and loopback sshd hosts whose journal holds real
//! runs. Also makes the screenshots of docs/screenshots (scripts/screenshots).

use crate::support::browser::{Browser, WAIT};
use crate::support::run_fleet;
use crate::support::sshd::TestFleet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Output that would run script in a page that did not escape it: it sets
/// `window.fleetPwned` and opens an alert.
const HOSTILE: &str =
    "<script>window.fleetPwned=1;alert(1)</script><img src=x onerror=\"window.fleetPwned=2\">";

const SECRET: &str = "Sv9-hunter2";

/// A recipe that prints hostile text and a configured secret on every host.
fn shout_recipe() -> String {
    format!(
        r#"
/// Prints what a host says about itself, and the deploy token.
/// @arg loud: bool = false  Shout louder
fn shout(loud) {{
    let tok = secret("tok");
    each(hosts(), |h| {{
        h.run(`uname -s; echo '{HOSTILE}'; echo "token ${{tok}}"`);
    }});
}}
"#
    )
}

/// A recipe that says hello (and the secret), then waits for the file `gate` before it
/// ends: the test sees its output live while it runs, then opens the gate.
const GATED: &str = r#"
/// Says hello, waits for a file, says goodbye.
/// @arg gate: string  the file to wait for (at most a minute)
fn gated(gate) {
    let tok = secret("tok");
    each(hosts(), |h| {
        h.run(`echo hello from the web; echo "token ${tok}"`);
        h.run(`i=0; while [ ! -e '${gate}' ]; do i=$((i+1)); [ $i -gt 600 ] && exit 1; sleep 0.1; done; echo gate open`);
    });
}
"#;

/// `fleet serve` on a free loopback port, killed on drop. The fixture has no pull hosts:
/// their background fetch is off.
struct Serve(crate::support::web::WebServer);

impl Serve {
    fn start(dir: &Path) -> Serve {
        Serve(crate::support::web::WebServer::start(
            dir,
            &["--fetch-every", "0"],
            &[],
        ))
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.0.port)
    }
}

/// The fixture: local host `desk` and sshd hosts s1..s3; s1 has two updates waiting (one
/// for security), s3 is down since the last run. Its journal: `fleet status` (facts),
/// `fleet exec all -- uptime`, then `fleet shout` after s3 died.
struct Fixture {
    fleet: TestFleet,
    _fake_bin: tempfile::TempDir,
}

impl Fixture {
    fn path(&self) -> &Path {
        self.fleet.path()
    }
}

fn fixture() -> Fixture {
    // apt-get as the hosts see it: updates waiting on s1 only (the sshd hosts are this
    // machine; which one a session is on is in SSH_CONNECTION), none on the local host.
    let fake_bin = tempfile::Builder::new()
        .prefix("fleet-browser-bin-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(fake_bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", fake_bin.path().display());
    let fleet = TestFleet::start_with_env(3, &[("FLEET_TEST_PATH", &path)]);
    let s1 = &fleet.host("s1").address;
    let apt = format!(
        "#!/bin/sh\n\
         case \" $SSH_CONNECTION \" in *\" {s1} \"*)\n\
         echo 'Inst openssl [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])'\n\
         echo 'Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])';;\n\
         esac\n"
    );
    let apt_path = fake_bin.path().join("apt-get");
    std::fs::write(&apt_path, apt).unwrap();
    std::fs::set_permissions(&apt_path, std::fs::Permissions::from_mode(0o755)).unwrap();

    let dir = fleet.path();
    crate::support::add_secrets_file(dir, &format!("tok = \"{SECRET}\"\n"));
    let mut inventory = std::fs::read_to_string(dir.join("inventory.toml")).unwrap();
    inventory.push_str("\n[hosts.desk]\nconnection = \"local\"\ngroups = [\"office\"]\n");
    std::fs::write(dir.join("inventory.toml"), inventory).unwrap();
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    std::fs::write(dir.join("recipes/shout.rhai"), shout_recipe()).unwrap();
    std::fs::write(dir.join("recipes/gated.rhai"), GATED).unwrap();

    // Facts of every host; the local one runs fleet's own PATH, so it gets the fake too.
    let status = std::process::Command::new(crate::support::fleet_bin())
        .arg("status")
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                fake_bin.path().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "fleet status: {}\n{}",
        String::from_utf8_lossy(&status.stdout),
        String::from_utf8_lossy(&status.stderr)
    );
    run_fleet(dir, &["exec", "all", "--", "uptime"]).code(0);
    fleet.kill("s3");
    let shout = run_fleet(dir, &["shout"]);
    assert_ne!(shout.code, 0, "shout reached the dead s3:\n{shout}");
    Fixture {
        fleet,
        _fake_bin: fake_bin,
    }
}

/// The host names of the rows of the Fleet table the page displays.
fn shown_hosts(b: &Browser) -> Vec<String> {
    let mut hosts = b.attributes("#hosts tr[data-host]", "data-host");
    let shown = b.visible_texts("#hosts tr[data-host] td:first-child");
    hosts.retain(|h| shown.contains(h));
    hosts
}

/// The text of the LAST RUN cell of `host`'s row.
fn last_run_cell(b: &Browser, host: &str) -> String {
    b.text(&format!("#hosts tr[data-host=\"{host}\"] td.status"))
}

/// Where scripts/screenshots wants the pictures (FLEET_SCREENSHOTS), else a temp dir.
fn screenshot_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("FLEET_SCREENSHOTS") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            (dir, None)
        }
        None => {
            let tmp = tempfile::tempdir().unwrap();
            (tmp.path().to_path_buf(), Some(tmp))
        }
    }
}

/// A PNG of a plausible size for a page: the signature, a 1280-wide header, < 200 KB.
fn assert_png(path: &Path) {
    let png = std::fs::read(path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is no PNG",
        path.display()
    );
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, crate::support::browser::WIDTH, "{}", path.display());
    assert!(
        png.len() > 10_000 && png.len() < 200_000,
        "{} is {} bytes",
        path.display(),
        png.len()
    );
}

#[test]
fn browser_fleet_host_and_run_pages_filters_search_escaping_and_screenshots() {
    let f = fixture();
    let serve = Serve::start(f.path());
    let b = Browser::start();
    let (shots, _tmp) = screenshot_dir();

    // The Fleet page: every host, with the status of its last run.
    b.open(&serve.url("/")).wait_for("#hosts tr[data-host]");
    assert_eq!(shown_hosts(&b), ["s1", "s2", "s3", "desk"]);
    assert_eq!(b.text("#count-all"), "4 hosts");
    assert_eq!(b.text("#count-outdated"), "1 outdated");
    assert_eq!(b.text("#count-unreachable"), "1 unreachable");
    assert_eq!(b.text("#count-failed"), "1 failed");
    for host in ["s1", "s2", "desk"] {
        assert_eq!(last_run_cell(&b, host), "changed shout", "{host}");
    }
    assert_eq!(last_run_cell(&b, "s3"), "unreachable shout");
    let s1 = b.text("#hosts tr[data-host=\"s1\"]");
    assert!(s1.contains("2 (1 security)"), "s1's row: {s1}");
    b.save_screenshot(&shots.join("fleet.png"));

    // The Outdated filter, clicked like a user: s1 only.
    b.follow("Outdated");
    assert!(b.url().ends_with("/?show=outdated"), "{}", b.url());
    b.wait_for("#hosts");
    assert_eq!(shown_hosts(&b), ["s1"]);
    b.follow("Unreachable");
    assert_eq!(shown_hosts(&b), ["s3"]);
    b.follow("All");
    assert_eq!(shown_hosts(&b).len(), 4);

    // The search box narrows the list as one types.
    b.fill("#search", "desk");
    assert_eq!(shown_hosts(&b), ["desk"]);
    b.fill("#search", "s");
    assert_eq!(shown_hosts(&b).len(), 4, "every row says shout");
    b.fill("#search", "nothing-like-this");
    assert!(shown_hosts(&b).is_empty());
    b.fill("#search", "");

    // A host page: its last run with the output, the hostile part as text.
    b.follow("s1");
    assert!(b.url().ends_with("/host/s1"), "{}", b.url());
    let last = b.wait_text("body", "Last run: shout");
    assert!(last.contains("groups: sshfleet"), "{last}");
    assert!(last.contains(HOSTILE), "output not shown as text:\n{last}");
    assert!(last.contains("token ***"), "{last}");
    let runs = b.text("#runs");
    let (shout_at, exec_at) = (runs.find("shout"), runs.find("exec"));
    assert!(
        shout_at.is_some() && exec_at.is_some() && shout_at < exec_at,
        "runs not newest first:\n{runs}"
    );
    b.save_screenshot(&shots.join("host.png"));

    // The run page of shout, from the host's list of runs.
    let run_id = b.attributes("#runs a[href^=\"/run/\"]", "href")[0].clone();
    b.click(&format!("#runs a[href=\"{run_id}\"]"));
    let run = b.wait_text("h1", "Run ");
    assert!(run.contains("shout"), "{run}");
    let page = b.wait_text("body", "token ***");
    assert!(page.contains(HOSTILE), "{page}");
    assert!(page.contains("s3 unreachable"), "{page}");
    assert!(!page.contains(SECRET), "secret shown:\n{page}");
    assert!(
        !b.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap_or_default()
            .contains(SECRET),
        "secret in the run page's HTML"
    );
    b.save_screenshot(&shots.join("run.png"));

    // Nothing the hosts printed ran as script on any page.
    assert_eq!(b.eval("typeof window.fleetPwned"), "undefined");
    assert_eq!(
        b.eval("document.querySelectorAll('pre img, pre script').length"),
        0
    );
    assert_eq!(b.dialogs(), 0, "a page opened a JavaScript dialog");

    for name in ["fleet.png", "host.png", "run.png"] {
        assert_png(&shots.join(name));
    }
}

/// The journal's record of run `id` (`fleet history --json`).
fn record(dir: &Path, id: &str) -> serde_json::Value {
    let out = run_fleet(dir, &["history", "--json"]);
    out.code(0);
    let runs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    runs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no journal record of {id}:\n{out}"))
}

#[test]
fn browser_runs_a_recipe_from_its_form_and_sees_its_output_live() {
    let f = fixture();
    let serve = Serve::start(f.path());
    let b = Browser::start();
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = gate_dir.path().join("open");

    // The Recipes page: the form of `gated`, filled and sent like a user.
    b.open(&serve.url("/recipes")).wait_for("#run-gated");
    b.fill("#run-gated input[name=\"hosts\"]", "desk");
    b.fill(
        "#run-gated input[name=\"arg-gate\"]",
        &gate.display().to_string(),
    );
    b.click("#run-gated button[value=\"run\"]");

    // Its page streams the output while the run waits for the gate.
    let out = b.wait_text("#out", "hello from the web");
    let page = b.url();
    assert!(page.contains("/run/") && !page.contains("ended"), "{page}");
    let id = page
        .rsplit("/run/")
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let state = b.text("#state");
    assert!(!state.starts_with("ended"), "{state}\n{out}");
    let out = b.wait_text("#out", "token ***");
    // Lines streaming: the line above them says the run is running.
    assert_eq!(b.text("#state"), "running", "{out}");
    assert!(!out.contains(SECRET), "secret in the live stream:\n{out}");
    assert!(!out.contains("gate open"), "the run did not wait:\n{out}");

    // Opened: the stream ends and the page becomes the journal's record, ended ok.
    std::fs::write(&gate, "").unwrap();
    let run = b.wait_text("body", "by web:local@");
    assert!(b.url().contains("ended=1"), "{}", b.url());
    assert!(run.contains("exit 0"), "{run}");
    assert!(run.contains("desk changed"), "{run}");
    assert!(run.contains("gate open"), "{run}");
    assert!(run.contains("token ***") && !run.contains(SECRET), "{run}");

    let r = record(f.path(), &id);
    assert_eq!(r["user"], "web:local", "{r:#}");
    assert_eq!(r["recipe"], "gated", "{r:#}");
    assert_eq!(r["exit_code"], 0, "{r:#}");
    assert_eq!(b.dialogs(), 0);
}

/// `fleet serve --add-user NAME --role ROLE` with the password on stdin.
fn add_user(dir: &Path, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::support::fleet_bin())
        .args(["serve", "--add-user", name, "--role", role])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "add-user {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fills the sign-in form and sends it with its button, like a person.
fn sign_in(b: &Browser, user: &str, password: &str) {
    b.wait_for("form.login");
    b.fill("form.login input[name=\"user\"]", user);
    b.fill("form.login input[name=\"password\"]", password);
    b.click("form.login button[type=\"submit\"]");
    b.wait_text("#user", user);
}

#[test]
fn browser_sign_in_operator_runs_viewer_sees_and_no_session_goes_to_login() {
    let f = fixture();
    add_user(f.path(), "alice", "operator", "alice password 1");
    add_user(f.path(), "bob", "viewer", "bob password 1");
    let serve = Serve::start(f.path());
    let b = Browser::start();

    // No session: every page sends the browser to the sign-in form, and back after.
    b.open(&serve.url("/host/s1"));
    b.wait_for("form.login");
    assert!(b.url().contains("/login?next="), "{}", b.url());
    assert!(shown_hosts(&b).is_empty());
    b.fill("form.login input[name=\"user\"]", "alice");
    b.fill("form.login input[name=\"password\"]", "not her password");
    b.click("form.login button[type=\"submit\"]");
    b.wait_for("#error");
    assert!(!b.body_text().contains("Last run"), "{}", b.body_text());
    sign_in(&b, "alice", "alice password 1");
    assert!(b.url().ends_with("/host/s1"), "{}", b.url());
    b.wait_text("body", "Last run: shout");
    // The session cookie is HttpOnly: scripts in the page cannot read it.
    let cookies = b.eval("document.cookie");
    assert!(
        !cookies
            .as_str()
            .unwrap_or_default()
            .contains("fleet_session"),
        "{cookies}"
    );

    // A POST from the page without the form's CSRF token is refused, nothing starts.
    let forged = b.eval_await(&post_from_page(
        "hosts=desk&arg-gate=%2Fnone&mode=run&lock=refuse",
    ));
    assert_eq!(forged, 403);

    // The operator starts gated from its form; it streams and is journaled as web:alice.
    let gate_dir = tempfile::tempdir().unwrap();
    let gate = gate_dir.path().join("open");
    b.follow("Recipes");
    b.fill("#run-gated input[name=\"hosts\"]", "desk");
    b.fill(
        "#run-gated input[name=\"arg-gate\"]",
        &gate.display().to_string(),
    );
    b.click("#run-gated button[value=\"run\"]");
    b.wait_text("#out", "hello from the web");
    let id = b
        .url()
        .rsplit("/run/")
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    std::fs::write(&gate, "").unwrap();
    let run = b.wait_text("body", "by web:alice@");
    assert!(run.contains("exit 0"), "{run}");
    assert_eq!(record(f.path(), &id)["user"], "web:alice");

    // Signed out, the pages are closed again.
    b.click("nav button[type=\"submit\"], form[action=\"/logout\"] button");
    b.wait_for("form.login");
    b.open(&serve.url("/recipes"));
    b.wait_for("form.login");
    assert!(b.url().contains("/login"), "{}", b.url());

    // A viewer sees the fleet and the recipes, but no run form or button.
    sign_in(&b, "bob", "bob password 1");
    assert!(b.url().ends_with("/recipes"), "{}", b.url());
    b.wait_text("body", "Says hello, waits for a file");
    assert_eq!(
        b.eval("document.querySelectorAll('form.run, button[value=\"run\"]').length"),
        0
    );
    assert!(
        !b.visible_texts("button").iter().any(|t| t == "Run"),
        "{:?}",
        b.visible_texts("button")
    );
    // Forged by the viewer with a valid session and token: 403, nothing starts.
    let token = b.attributes("form[action=\"/logout\"] input[name=\"csrf\"]", "value");
    assert_eq!(token.len(), 1, "{token:?}");
    let forged = b.eval_await(&post_from_page(&format!(
        "csrf={}&hosts=desk&arg-gate=%2Fnone&mode=run&lock=refuse",
        token[0]
    )));
    assert_eq!(forged, 403);
    b.open(&serve.url("/"));
    assert_eq!(shown_hosts(&b), ["s1", "s2", "s3", "desk"]);
    assert_eq!(b.dialogs(), 0);

    let out = run_fleet(f.path(), &["history", "--json"]);
    let gated: Vec<serde_json::Value> = serde_json::from_str::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap()
        .into_iter()
        .filter(|r| r["recipe"] == "gated")
        .collect();
    assert_eq!(gated.len(), 1, "a refused POST started a run: {gated:#?}");
}

/// JavaScript that POSTs `body` (a urlencoded form) to /recipes/gated from the page,
/// with its cookies, and gives the response's status.
fn post_from_page(body: &str) -> String {
    format!(
        "fetch('/recipes/gated', {{method: 'POST', headers: \
         {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: {}}}).then(r => r.status)",
        crate::support::browser::js_str(body)
    )
}

/// The harness sees JavaScript dialogs, and kills chromium (all its processes) when a
/// test fails, too.
#[test]
fn browser_sees_dialogs_and_is_killed_when_a_test_panics() {
    let profile = std::thread::spawn(|| {
        let b = Browser::start();
        // The harness sees a JavaScript dialog (and dismisses it).
        b.open("data:text/html,<p>x</p><script>alert('hi')</script>");
        let start = std::time::Instant::now();
        while b.dialogs() == 0 {
            assert!(start.elapsed() < WAIT, "no dialog seen");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(b.text("p"), "x", "the page is stuck behind its alert");
        let profile = b.profile().display().to_string();
        assert!(
            !crate::support::sshd::processes_with(&profile).is_empty(),
            "no chromium process with {profile} on its command line"
        );
        std::panic::resume_unwind(Box::new(profile));
    })
    .join()
    .expect_err("the thread panicked")
    .downcast::<String>()
    .map(|p| *p)
    .expect("the profile in the panic");
    let start = std::time::Instant::now();
    loop {
        let left = crate::support::sshd::processes_with(&profile);
        if left.is_empty() {
            break;
        }
        assert!(start.elapsed() < WAIT, "chromium left running:\n{left:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !Path::new(&profile).exists(),
        "profile {profile} left behind"
    );
}
