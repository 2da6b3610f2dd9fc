//! `fleet serve` with users: `--add-user` from stdin, the users file's mode, other
//! addresses than loopback, sign-in, rate limits, sessions, CSRF and sign-out, over
//! plain HTTP from a TCP socket.

use crate::support::web::Reply;
use crate::support::{Project, fleet_bin};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

/// `fleet serve ARGS` on a free port, with sign-in.
struct Server(crate::support::web::WebServer);

impl Server {
    fn start(dir: &std::path::Path, args: &[&str]) -> Server {
        Server(crate::support::web::WebServer::start(dir, args, &[]))
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.0.request(method, path, headers, body)
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        match cookie {
            Some(c) => self.request("GET", path, &[("Cookie", c)], ""),
            None => self.request("GET", path, &[], ""),
        }
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// The sign-in form: (its `fleet_login` cookie, for the Cookie header; its token).
    fn login_form(&self) -> (String, String) {
        let form = self.get("/login", None);
        assert_eq!(form.code, 200, "{form:?}");
        let token = form.header_cookie("fleet_login");
        assert!(
            form.body
                .contains(&format!("name=\"csrf\" value=\"{token}\"")),
            "{form:?}"
        );
        (format!("fleet_login={token}"), token)
    }

    /// POST /login as `user` from client address `from` (a proxy's X-Forwarded-For).
    fn sign_in(&self, user: &str, password: &str, from: &str, next: &str) -> Reply {
        let (cookie, token) = self.login_form();
        let body = format!(
            "user={user}&password={password}&csrf={token}&next={}",
            next.replace('/', "%2F")
        );
        self.request(
            "POST",
            "/login",
            &[("Cookie", &cookie), ("X-Forwarded-For", from)],
            &body,
        )
    }
}

/// `fleet serve --add-user NAME ARGS` with the password as stdin.
fn add_user(dir: &std::path::Path, args: &[&str], stdin: &str) -> crate::support::Output {
    let mut child = Command::new(fleet_bin())
        .args(["serve", "--add-user"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    crate::support::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `fleet ARGS` in a pseudo-terminal (util-linux `script`) answering `answer` to two
/// prompts, a moment apart (a prompt flushes what was typed before it); what it showed.
fn on_terminal_twice(dir: &std::path::Path, args: &str, answer: &str) -> String {
    let command = format!("{} -C {} {args}", fleet_bin().display(), dir.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(800));
        stdin.write_all(answer.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    // Not stuck at a prompt: a third would wait forever.
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = child.kill();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn serve_auth_users_file_is_private_and_needed_beyond_loopback() {
    let p = Project::new().local_hosts(1);
    let dir = p.path();
    let users = dir.join(".fleet/users.toml");

    // Without users: loopback only, the local operator, nothing to sign in to.
    p.fleet(&["serve", "--listen", "0.0.0.0:8080"])
        .code(2)
        .stderr_has("only when users sign in")
        .stderr_has(".fleet/users.toml")
        .stderr_has("--add-user");
    {
        let local = Server::start(dir, &["--listen", "127.0.0.1:0"]);
        let page = local.get("/", None);
        assert_eq!(page.code, 200, "{page:?}");
        assert!(!page.body.contains("Sign out"), "{page:?}");
        assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
        let login = local.get("/login", None);
        assert_eq!(
            (login.code, login.header("location").as_deref()),
            (303, Some("/")),
            "{login:?}"
        );
    }

    add_user(dir, &["alice", "--role", "operator"], "short\n")
        .code(2)
        .stderr_has("at least 8");
    add_user(dir, &["bad/name"], "long enough pw\n")
        .code(2)
        .stderr_has("not valid");
    add_user(
        dir,
        &["alice", "--role", "operator"],
        "s3cret pass phrase\n",
    )
    .code(0)
    .stdout_has("added alice (operator) to .fleet/users.toml");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.contains("[users.alice]"), "{text}");
    assert!(text.contains("role = \"operator\""), "{text}");
    assert!(text.contains("$argon2id$v=19$"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    // On a terminal the password is asked twice, without echo.
    let shown = on_terminal_twice(dir, "serve --add-user bob", "viewer-pass-1\n");
    assert!(shown.contains("Password for bob"), "{shown}");
    assert!(shown.contains("Again"), "{shown}");
    assert!(!shown.contains("viewer-pass-1"), "echoed:\n{shown}");
    assert!(shown.contains("added bob (viewer)"), "{shown}");

    // A users file others may read is refused, by the server and by --add-user.
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    p.fleet(&["serve", "--listen", "127.0.0.1:0"])
        .code(2)
        .stderr_has("users.toml has mode 0644")
        .stderr_has("chmod 600");
    add_user(dir, &["carol"], "another password\n")
        .code(2)
        .stderr_has("chmod 600");
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();

    p.fleet(&["serve", "--remove-user", "bob"])
        .code(0)
        .stdout_has("removed bob");
    p.fleet(&["serve", "--remove-user", "bob"])
        .code(2)
        .stderr_has("no user \"bob\"");

    // A users file inside a git work tree must be ignored there.
    let init = Command::new("git")
        .args(["init", "-q", "."])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(init.success());
    add_user(dir, &["carol"], "another password\n")
        .code(2)
        .stderr_has("not ignored")
        .stderr_has(".gitignore");
    std::fs::write(dir.join(".gitignore"), ".fleet/\n").unwrap();
    add_user(dir, &["carol"], "another password\n").code(0);

    // `serve_users` in fleet.toml names another file.
    std::fs::write(
        dir.join("fleet.toml"),
        "serve_users = \"private/web-users.toml\"\n",
    )
    .unwrap();
    std::fs::write(dir.join(".gitignore"), ".fleet/\nprivate/\n").unwrap();
    add_user(dir, &["dave", "--role", "viewer"], "dave password\n")
        .code(0)
        .stdout_has("added dave (viewer) to private/web-users.toml");
    let other = dir.join("private/web-users.toml");
    assert_eq!(
        std::fs::metadata(&other).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&other)
            .unwrap()
            .contains("[users.dave]")
    );
}

#[test]
fn serve_auth_sign_in_sessions_csrf_rate_limits_and_sign_out() {
    let p = Project::new().local_hosts(1);
    let dir = p.path();
    add_user(dir, &["alice", "--role", "operator"], "alice password\n").code(0);
    add_user(dir, &["bob"], "bob password\n").code(0);
    // With users, any address: this one is reached through loopback here.
    let server = Server::start(dir, &["--listen", "0.0.0.0:0"]);

    // Without a session: pages go to the sign-in page and come back, POSTs are refused.
    let r = server.get("/host/h1?x=1", None);
    assert_eq!(r.code, 303, "{r:?}");
    assert_eq!(
        r.header("location").as_deref(),
        Some("/login?next=%2Fhost%2Fh1%3Fx%3D1")
    );
    assert_eq!(server.request("POST", "/logout", &[], "csrf=x").code, 403);

    let form = server.get("/login?next=/host/h1", None);
    assert_eq!(form.code, 200, "{form:?}");
    for part in [
        "name=\"user\"",
        "name=\"password\"",
        "name=\"csrf\"",
        "name=\"next\" value=\"/host/h1\"",
        ">Sign in</button>",
    ] {
        assert!(form.body.contains(part), "{part}:\n{}", form.body);
    }
    let pre = form.set_cookie("fleet_login");
    assert!(
        pre.contains("HttpOnly") && pre.contains("SameSite=Strict"),
        "{pre}"
    );
    let evil = server.get("/login?next=//evil.example/x", None);
    assert!(evil.body.contains("name=\"next\" value=\"/\""), "{evil:?}");

    // The form's token must be its cookie's.
    let (_, token) = server.login_form();
    let forged = server.request(
        "POST",
        "/login",
        &[],
        &format!("user=bob&password=bob+password&csrf={token}&next=%2F"),
    );
    assert_eq!(forged.code, 403, "{forged:?}");
    assert!(!forged.head.contains("fleet_session="), "{forged:?}");

    // Wrong passwords: the form again with an error; five for a name, then it waits.
    for i in 1..=5 {
        let r = server.sign_in("alice", "wrong", &format!("198.51.100.{i}"), "/");
        assert_eq!(r.code, 403, "{r:?}");
        assert!(
            r.body.contains("Wrong user name or password."),
            "{}",
            r.body
        );
        assert!(r.body.contains(">Sign in</button>"), "{}", r.body);
        assert!(!r.head.contains("fleet_session="), "{r:?}");
    }
    let limited = server.sign_in("alice", "alice+password", "198.51.100.6", "/");
    assert_eq!(limited.code, 429, "{limited:?}");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((250..=300).contains(&wait), "{wait}");
    assert!(
        limited.body.contains("Too many failed sign-ins"),
        "{limited:?}"
    );
    // ... and five from one address, whatever the names.
    for i in 1..=5 {
        let r = server.sign_in(&format!("nobody{i}"), "wrong", "203.0.113.7", "/");
        assert_eq!(r.code, 403, "{r:?}");
    }
    let limited = server.sign_in("bob", "bob+password", "203.0.113.7", "/");
    assert_eq!(limited.code, 429, "{limited:?}");

    // The right password from elsewhere: a strict session cookie, back to `next`.
    let ok = server.sign_in("bob", "bob+password", "192.0.2.1", "/host/h1");
    assert_eq!(ok.code, 303, "{ok:?}");
    assert_eq!(ok.header("location").as_deref(), Some("/host/h1"));
    let set = ok.set_cookie("fleet_session");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "{set}");
    let session = format!("fleet_session={}", ok.header_cookie("fleet_session"));

    let page = server.get("/", Some(&session));
    assert_eq!(page.code, 200, "{page:?}");
    assert!(
        page.body
            .contains("signed in as <b id=\"user\">bob</b> (viewer)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-host=\"h1\""), "{}", page.body);
    assert_eq!(server.get("/host/h1", Some(&session)).code, 200);
    assert_eq!(server.get("/runs", Some(&session)).code, 200);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-out form's token")
        .to_string();

    // Open redirects: `next` elsewhere signs in to the fleet page.
    let away = server.sign_in("alice", "alice+password", "192.0.2.2", "//evil.example");
    // alice is still limited by name: the page says so and sets no session.
    assert_eq!(away.code, 429, "{away:?}");
    add_user(dir, &["carol", "--role", "operator"], "carol password\n").code(0);
    let away = server.sign_in("carol", "carol+password", "192.0.2.2", "//evil.example");
    assert_eq!(away.code, 303, "{away:?}");
    assert_eq!(away.header("location").as_deref(), Some("/"));
    let carol = format!("fleet_session={}", away.header_cookie("fleet_session"));
    let page = server.get("/", Some(&carol));
    assert!(page.body.contains("(operator)"), "{}", page.body);

    // A POST needs the session's own token.
    let cookie = [("Cookie", session.as_str())];
    assert_eq!(server.request("POST", "/logout", &cookie, "").code, 403);
    assert_eq!(
        server.request("POST", "/logout", &cookie, "csrf=0123").code,
        403
    );
    let other = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert_eq!(
        server
            .request("POST", "/logout", &cookie, &format!("csrf={other}"))
            .code,
        403,
        "carol's token is not bob's"
    );
    assert_eq!(server.get("/", Some(&session)).code, 200);
    let out = server.request("POST", "/logout", &cookie, &format!("csrf={csrf}"));
    assert_eq!(out.code, 303, "{out:?}");
    assert_eq!(out.header("location").as_deref(), Some("/login"));
    assert!(
        out.set_cookie("fleet_session").contains("Max-Age=0"),
        "{out:?}"
    );
    let after = server.get("/", Some(&session));
    assert_eq!(after.code, 303, "the session ended: {after:?}");

    // Removing a user ends their sessions at once.
    assert_eq!(server.get("/", Some(&carol)).code, 200);
    p.fleet(&["serve", "--remove-user", "carol"]).code(0);
    assert_eq!(server.get("/", Some(&carol)).code, 303);

    // The server's log has the sign-ins and failures, never a password.
    let log = server.log();
    assert!(log.contains("sign-in failed"), "{log}");
    assert!(log.contains("too many failures"), "{log}");
    assert!(log.contains("signed in"), "{log}");
    assert!(log.contains("198.51.100.1"), "{log}");
    for password in ["alice", "bob", "carol"].map(|u| format!("{u}+password")) {
        assert!(!log.contains(&password), "{log}");
        assert!(!log.contains(&password.replace('+', " ")), "{log}");
    }
    drop(server);

    // Behind a TLS proxy, the cookies are Secure.
    let secure = Server::start(dir, &["--listen", "127.0.0.1:0", "--secure-cookies"]);
    let ok = secure.sign_in("bob", "bob+password", "192.0.2.3", "/");
    assert_eq!(ok.code, 303, "{ok:?}");
    assert!(
        ok.set_cookie("fleet_session").contains("; Secure"),
        "{ok:?}"
    );
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field:\n{page}"))
        .to_string()
}

#[test]
fn operators_run_from_the_host_page_as_themselves_and_viewers_cannot() {
    let p = Project::new().local_hosts(1);
    let dir = p.path();
    add_user(dir, &["alice", "--role", "operator"], "alice password\n").code(0);
    add_user(dir, &["bob"], "bob password\n").code(0);
    let server = Server::start(dir, &[]);
    let session = |user: &str, password: &str| {
        let ok = server.sign_in(user, password, "192.0.2.9", "/");
        assert_eq!(ok.code, 303, "{ok:?}");
        format!("fleet_session={}", ok.header_cookie("fleet_session"))
    };
    let bob = session("bob", "bob+password");
    let alice = session("alice", "alice+password");

    // A viewer sees the host but no run buttons, and a POST with his own token is refused.
    let page = server.get("/host/h1", Some(&bob));
    assert_eq!(page.code, 200, "{page:?}");
    assert!(!page.body.contains("Run on this host"), "{}", page.body);
    let recipes = server.get("/recipes", Some(&bob));
    assert!(!recipes.body.contains(">Run</button>"), "{}", recipes.body);
    let token = csrf_of(&server.get("/", Some(&bob)).body);
    let forged = server.request(
        "POST",
        "/recipes/facts",
        &[("Cookie", &bob)],
        &format!("csrf={token}&hosts=h1&lock=refuse&mode=run"),
    );
    assert_eq!(forged.code, 403, "{forged:?}");

    // The operator's host page runs `facts` there with one click.
    let page = server.get("/host/h1", Some(&alice));
    assert!(page.body.contains("Run on this host"), "{}", page.body);
    let token = csrf_of(&page.body);
    let without = server.request(
        "POST",
        "/recipes/facts",
        &[("Cookie", &alice)],
        "hosts=h1&lock=refuse&mode=run",
    );
    assert_eq!(without.code, 403, "{without:?}");
    let started = server.request(
        "POST",
        "/recipes/facts",
        &[("Cookie", &alice)],
        &format!("csrf={token}&hosts=h1&lock=refuse&mode=run"),
    );
    assert_eq!(started.code, 303, "{started:?}");
    let id = started
        .header("location")
        .and_then(|l| l.strip_prefix("/run/").map(str::to_string))
        .unwrap_or_else(|| panic!("{started:?}"));
    let events = server.get(&format!("/run/{id}/events"), Some(&alice));
    assert!(events.body.contains("event: end\ndata: ok"), "{events:?}");
    let history = crate::support::run_fleet(dir, &["history", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no record of {id}: {runs}"));
    assert_eq!(run["user"], "web:alice", "{run}");
    assert_eq!(run["recipe"], "facts", "{run}");
    assert_eq!(run["exit_code"], 0, "{run}");
    // Only the viewer's refused POST and this run: nothing else started.
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}
