//! Pull-mode hosts in `fleet serve`: the background results fetch puts them on the
//! Fleet page with last seen and OVERDUE; the webhook POST /hooks/sync refuses a wrong
//! token and fast-forwards the project with the right one, every call journaled; and
//! `fleet pull enroll` sets a container host up for pull mode over SSH.

use crate::pull::{git, site};
use crate::support::run_fleet;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// `fleet serve` on a free loopback port, read as (status code, body).
struct Server(crate::support::web::WebServer);

impl Server {
    fn start(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Server {
        Server(crate::support::web::WebServer::start(dir, args, env))
    }

    fn port(&self) -> u16 {
        self.0.port
    }

    /// (status code, body) of one request with `headers` ("Name: value").
    fn request(&self, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
        let headers: Vec<(&str, &str)> =
            headers.iter().filter_map(|h| h.split_once(": ")).collect();
        let r = self.0.request(method, path, &headers, "");
        (r.code, r.body)
    }
}

/// The journal records of the webhook in the state repository `state`.
fn hook_records(state: &Path) -> Vec<serde_json::Value> {
    fn walk(dir: &Path, out: &mut Vec<serde_json::Value>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                if v["recipe"] == "hooks/sync" {
                    out.push(v);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&state.join("runs"), &mut out);
    out.sort_by_key(|v| v["run_id"].as_str().unwrap_or_default().to_string());
    out
}

/// The row of pull host `host` on the Fleet page.
fn pull_row<'a>(page: &'a str, host: &str) -> &'a str {
    page.lines()
        .find(|l| l.contains(&format!("data-pull-host=\"{host}\"")))
        .unwrap_or_else(|| panic!("no pull row for {host}:\n{page}"))
}

#[test]
fn serve_shows_pull_hosts_after_its_fetch_and_syncs_the_project_on_the_webhook() {
    let (tmp, remote, work) = crate::pull::two_pull_hosts_pushed_results();
    // The project checkout follows its remote's main, as a clone would.
    git(&work, &["branch", "-q", "-u", "origin/main"]);

    // The server's clock is 90 minutes ahead: box-2 (30m) is overdue, box-1 (1h) not.
    let later = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + Duration::from_secs(90 * 60),
    );
    let token = "s3cret-hook-token-0123456789";
    let server = Server::start(
        &work,
        &[
            "--fetch-every",
            "1s",
            "--results-from",
            remote.to_str().unwrap(),
        ],
        &[
            ("FLEET_NOW", later.to_string()),
            ("FLEET_SECRET_WEBHOOK_TOKEN", token.to_string()),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        let (code, page) = server.request("GET", "/", &[]);
        assert_eq!(code, 200, "{page}");
        if page.contains("data-pull-host=\"box-2\"") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the pull hosts never appeared:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let (box1, box2) = (pull_row(&page, "box-1"), pull_row(&page, "box-2"));
    assert!(box1.contains("<td>changed</td>"), "{box1}");
    assert!(box1.contains(">1h 3"), "last seen 1h 30m ago: {box1}");
    assert!(box1.contains("<td>on time</td>"), "{box1}");
    assert!(box2.starts_with("<tr class=\"failed\""), "{box2}");
    assert!(box2.contains("<td>OVERDUE</td>"), "{box2}");
    assert!(box2.contains("<td>30m</td>"), "{box2}");
    assert!(
        page.contains("results fetched at ") && page.contains("the results of 2 pull host(s)"),
        "{page}"
    );
    assert!(!page.contains(token));

    // A wrong token, and none: refused, journaled, nothing fetched.
    let other = tmp.path().join("other");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            remote.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    std::fs::write(other.join("NEWS"), "from the git host\n").unwrap();
    git(&other, &["add", "NEWS"]);
    git(&other, &["commit", "-qm", "news"]);
    git(&other, &["push", "-q", "origin", "HEAD:main"]);
    let (code, body) = server.request("POST", "/hooks/sync", &["Authorization: Bearer wrong"]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("refused: wrong token"), "{body}");
    let (code, body) = server.request("POST", "/hooks/sync", &[]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("refused: no token"), "{body}");
    // Anyone can be refused: the second refusal within a minute is counted, not journaled.
    assert!(body.contains("not journaled"), "{body}");
    assert!(!work.join("NEWS").exists());
    let state = work.join("state");
    let records = hook_records(&state);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["exit_code"], 1, "{records:?}");
    assert_eq!(records[0]["error"], "refused: wrong token", "{records:?}");
    let history = run_fleet(&work, &["history"]);
    history.code(0).stdout_has("hooks/sync");

    // Local changes in the checkout: not pulled, not clobbered.
    std::fs::write(work.join("inventory.toml"), "# edited here\n").unwrap();
    let (code, body) = server.request("POST", "/hooks/sync", &[&format!("X-Fleet-Token: {token}")]);
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("uncommitted changes (inventory.toml)"),
        "{body}"
    );
    assert!(!work.join("NEWS").exists());
    assert_eq!(
        std::fs::read_to_string(work.join("inventory.toml")).unwrap(),
        "# edited here\n"
    );
    git(&work, &["checkout", "-q", "--", "inventory.toml"]);

    // The right token: the new commit is pulled, the results fetched, journaled.
    let (code, body) = server.request(
        "POST",
        "/hooks/sync",
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("project: pulled "), "{body}");
    assert!(
        body.contains("results: the results of 2 pull host(s)"),
        "{body}"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("NEWS")).unwrap(),
        "from the git host\n"
    );
    let records = hook_records(&state);
    assert_eq!(records.len(), 3, "{records:?}");
    let last = records
        .iter()
        .find(|r| r["exit_code"] == 0)
        .expect("a record of the call that synced");
    assert_eq!(last["exit_code"], 0, "{last}");
    assert_eq!(last["user"], "webhook");
    assert!(
        last["local_changes"][0]
            .as_str()
            .unwrap()
            .starts_with("project: pulled "),
        "{last}"
    );
    assert!(!serde_json::to_string(&records).unwrap().contains(token));

    // A body over the limit is refused before anything happens.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let big = vec![b'x'; 100 * 1024];
    let head = format!(
        "POST /hooks/sync HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&big);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.0 413"), "{answer}");
    assert_eq!(hook_records(&state).len(), 3);
    drop(server);

    // Without a token configured the webhook is off: 404, and it says how to turn it on.
    let server = Server::start(&work, &["--fetch-every", "0"], &[]);
    let (code, body) = server.request("POST", "/hooks/sync", &["Authorization: Bearer x"]);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("webhook_token"), "{body}");
    let (_, page) = server.request("GET", "/", &[]);
    assert!(page.contains("results fetch is off"), "{page}");
}

#[test]
fn pull_enroll_sets_a_container_host_up_over_ssh_and_shows_its_first_run() {
    use crate::pull::publish;
    use crate::support::containers::{ContainerHost, TestKey, project_for};
    // The site repository, mounted at the same path in the container: the host pulls
    // from it and pushes its results to it, with no git installed (fleet reads and
    // writes a local repository itself).
    let (tmp, remote, work) =
        site("[hosts.pull-1]\naddress = \"10.9.9.9\"\nvars = { role = \"web\" }\n");
    std::fs::write(
        work.join("recipes/stamp.rhai"),
        "/// Stamp this host.\nfn stamp() {\n    each(hosts(\"all\"), |h| { h.write(\"/root/pulled\", \"pulled as \" + h.vars.role + \"\\n\"); });\n}\n",
    )
    .unwrap();
    publish(&work, "v2");
    let key = TestKey::new();
    let mount = tmp.path().display().to_string();
    let host = ContainerHost::start_with(&key.public(), &["-v".into(), format!("{mount}:{mount}")]);
    let project = project_for(&key, &[("pull-1", &host, "")]);
    let enroll_with = |before: &[&str], after: &[&str]| {
        let mut args = before.to_vec();
        args.extend([
            "pull",
            "enroll",
            "pull-1",
            "--repo",
            remote.to_str().unwrap(),
            "--recipe",
            "stamp",
            "--interval",
            "30m",
            "--push-results",
            "results",
        ]);
        args.extend(after);
        project.fleet(&args)
    };
    let enroll = |before: &[&str]| enroll_with(before, &["--unsigned"]);

    // Enrolled hosts run signed recipes unless told otherwise, out loud.
    let neither = enroll_with(&[], &[]);
    neither.code(2);
    assert!(neither.stderr.contains("--allowed-signers"), "{neither}");

    // Check mode says what would change and changes nothing.
    let check = enroll(&["--check"]);
    check.code(0);
    let said = format!("{}{}", check.stdout, check.stderr);
    assert!(said.contains("would write /usr/local/bin/fleet"), "{check}");
    assert!(
        said.contains("would enroll with cron (/etc/cron.d/fleet-pull"),
        "{check}"
    );
    assert_eq!(host.exec("test -e /usr/local/bin/fleet && echo there"), "");

    let first = enroll(&[]);
    first.code(0);
    let said = format!("{}{}", first.stdout, first.stderr);
    assert!(
        said.contains("enrolled with cron (/etc/cron.d/fleet-pull; runs log to /var/log/fleet-pull.log); first run: exit 0"),
        "{first}"
    );
    assert!(said.contains("first run: exit 0"), "{first}");
    assert!(
        said.contains("journal pushed to") && said.contains("refs/heads/results/pull-1"),
        "{first}"
    );
    // The container has no systemd: the cron fallback, the binary, the first run's work.
    let cron = host.exec("cat /etc/cron.d/fleet-pull");
    assert!(
        cron.contains(&format!(
            " root /usr/local/bin/fleet pull --no-progress --repo {} --dir /var/lib/fleet-pull --host pull-1 --push-results results stamp >>/var/log/fleet-pull.log 2>&1\n",
            remote.display()
        )),
        "{cron}"
    );
    assert!(cron.contains("-59/30 * * * * root"), "{cron}");
    assert_eq!(host.exec("stat -c %a /usr/local/bin/fleet").trim(), "755");
    assert_eq!(host.exec("cat /root/pulled"), "pulled as web\n");

    // The first run's result shows on the central side.
    run_fleet(
        project.path(),
        &["results", "fetch", "--from", remote.to_str().unwrap()],
    )
    .code(0)
    .stdout_has("fetched the results of 1 pull host(s): pull-1");
    let status = run_fleet(project.path(), &["status", "--cached"]);
    status.code(0);
    let row = status
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("pull-1 "))
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        row.contains("stamp") && row.contains("changed") && row.contains("on time"),
        "{row}"
    );

    // And in the view: fleet serve's own fetch puts it on the Fleet page.
    let server = Server::start(
        project.path(),
        &[
            "--fetch-every",
            "1s",
            "--results-from",
            remote.to_str().unwrap(),
        ],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = server.request("GET", "/", &[]);
        if page.contains("data-pull-host=\"pull-1\"") {
            let row = pull_row(&page, "pull-1");
            assert!(
                row.contains(">stamp</a>") && row.contains("<td>on time</td>"),
                "{row}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "pull-1 never appeared:\n{page}");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(server);

    // A second enroll changes nothing.
    let before = host.exec("stat -c %Y /usr/local/bin/fleet /etc/cron.d/fleet-pull");
    let again = enroll(&[]);
    again.code(0);
    let said = format!("{}{}", again.stdout, again.stderr);
    assert!(
        said.contains("unchanged: already enrolled with cron"),
        "{again}"
    );
    assert!(!said.contains("first run"), "{again}");
    assert_eq!(
        host.exec("stat -c %Y /usr/local/bin/fleet /etc/cron.d/fleet-pull"),
        before
    );
    assert!(again.recap_row("pull-1").contains(" ok"), "{again}");
    assert!(
        host.exec("cat /var/lib/fleet-pull/pull.toml")
            .contains("require_signed = false"),
    );

    // Signed from now on: the host gets who may sign, and its next run refuses the
    // repository's unsigned commit (the enroll says so and fails for that host).
    let signer = tmp.path().join("signer");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f"])
        .arg(&signer)
        .status()
        .unwrap();
    assert!(keygen.success());
    let public = std::fs::read_to_string(signer.with_extension("pub")).unwrap();
    let signers = tmp.path().join("allowed_signers");
    std::fs::write(&signers, format!("ops@example.com {public}")).unwrap();
    let signed = enroll_with(&[], &["--allowed-signers", signers.to_str().unwrap()]);
    signed.code(3);
    let said = format!("{}{}", signed.stdout, signed.stderr);
    assert!(said.contains("first run of fleet pull failed"), "{signed}");
    assert!(said.contains("not signed"), "{signed}");
    assert_eq!(
        host.exec("cat /var/lib/fleet-pull/allowed_signers"),
        format!("ops@example.com {public}")
    );
    assert!(
        host.exec("cat /var/lib/fleet-pull/pull.toml")
            .contains("require_signed = true"),
    );
}
