//! `fleet test`: a project's recipe tests (tests/*.rhai) on throwaway containers of the
//! suite's own image (FLEET_TEST_IMAGE, so no second debootstrap), over SSH.

use crate::support::containers::test_image;
use crate::support::{Output, Project};
use std::process::{Child, Command, Stdio};

const WEB_TESTS: &str = r#"
fn hostname_is_known(h) {
    let r = h.read("hostname");
    assert(r.stdout.len() > 1, "a hostname");
    h.run("touch /root/marker");
    assert_eq(h.read("ls /root/marker").stdout, "/root/marker\n");
}

fn echo_says_two(h) {
    let r = h.read("echo one");
    assert_eq(r.stdout, "two\n");
}
"#;

fn fleet_test(p: &Project, args: &[&str]) -> Command {
    let mut cmd = Command::new(crate::support::fleet_bin());
    cmd.arg("test")
        .args(args)
        .current_dir(p.path())
        .env("FLEET_TEST_IMAGE", test_image())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn output(mut cmd: Command) -> (Output, u32) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fleet starts");
    let pid = child.id();
    (finish(child), pid)
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().expect("fleet ends");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The ids of the `fleet test` containers that the fleet process `pid` started.
fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--filter", "label=fleet-testhost"])
        .args(["--format", "{{.ID}} {{.Label \"fleet-testhost\"}}"])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!(":{pid}:")))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn project() -> Project {
    Project::new().local_hosts(1)
}

#[test]
fn a_passing_and_a_failing_test_are_reported_and_their_containers_removed() {
    let p = project().file("tests/web.rhai", WEB_TESTS);
    let (out, pid) = output(fleet_test(&p, &["--no-progress"]));
    out.code(3)
        .stderr_has("test hostname_is_known ... ok")
        .stderr_has("test echo_says_two ... FAILED: assertion failed: left == right")
        .stderr_has("left: \"one\\n\"")
        .stderr_has("(at tests/web.rhai:11:5)")
        .stderr_has("tests: 1 passed, 1 failed");
    assert_eq!(
        containers_of(pid),
        Vec::<String>::new(),
        "containers left\n{out}"
    );
    // A filter runs only the matching tests: the passing one alone exits 0.
    let (out, pid) = output(fleet_test(&p, &["hostname", "--no-progress"]));
    out.code(0).stderr_has("tests: 1 passed, 0 failed");
    assert!(!out.stderr.contains("echo_says_two"), "{out}");
    assert!(containers_of(pid).is_empty());
    // The run is logged and journaled apart from the fleet's own runs.
    assert!(p.path().join(".fleet/test/logs").is_dir());
    p.fleet(&["history", "--json"])
        .code(0)
        .stdout_lacks("hostname_is_known");
    let (out, _) = output(fleet_test(&p, &["nosuch"]));
    out.code(2).stderr_has("no test matches `nosuch`");
    let (out, _) = output(fleet_test(&p, &["-i", "inventory.toml"]));
    out.code(2).stderr_has("leave out -i");
}

#[test]
fn a_test_runs_the_projects_configure_against_a_container() {
    let p = project().file(
        "tests/configure.rhai",
        r#"import "configure" as configure;

/// @vars { ssh = { root_login = "prohibit-password", password_auth = false, port = 22 } }
fn configure_sets_sshd_and_is_idempotent(h) {
    let first = configure::apply(h);
    assert(!first.changed.is_empty(), "the first configure changes the host");
    let conf = h.read("cat /etc/ssh/sshd_config.d/10-fleet.conf").stdout;
    assert(conf.contains("PasswordAuthentication no"), conf);
    let second = configure::apply(h);
    assert(second.changed.is_empty(), `a second configure changes nothing: ${second.changed}`);
}
"#,
    );
    let (out, pid) = output(fleet_test(&p, &["--no-progress"]));
    out.code(0)
        .stderr_has("test configure_sets_sshd_and_is_idempotent ... ok")
        .stderr_has("tests: 1 passed, 0 failed");
    assert!(containers_of(pid).is_empty());
}

#[test]
fn keep_leaves_a_failed_tests_container_for_fleet_connect() {
    let p = project().file(
        "tests/keep.rhai",
        "fn leaves_a_trace(h) { h.run(\"echo kept > /root/trace\"); assert(false, \"look at me\"); }\n",
    );
    let (out, pid) = output(fleet_test(&p, &["--keep", "--no-progress"]));
    out.code(3)
        .stderr_has("FAILED: assertion failed: look at me (at tests/keep.rhai:1:");
    let kept = containers_of(pid);
    assert_eq!(kept.len(), 1, "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("kept the container of leaves_a_trace: fleet -C "))
        .unwrap_or_else(|| panic!("no connect hint\n{out}"));
    let dir = line
        .split("fleet -C ")
        .nth(1)
        .and_then(|r| r.split(" connect").next())
        .unwrap()
        .to_string();
    let connect = Command::new(crate::support::fleet_bin())
        .args([
            "-C",
            &dir,
            "connect",
            "leaves_a_trace",
            "--",
            "cat",
            "/root/trace",
        ])
        .current_dir(p.path())
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["rm", "-f", "-v"])
        .args(&kept)
        .output();
    assert_eq!(
        String::from_utf8_lossy(&connect.stdout).trim(),
        "kept",
        "{}",
        String::from_utf8_lossy(&connect.stderr)
    );
}

#[test]
fn ctrl_c_and_kill_leave_no_container_behind() {
    let p = project().file("tests/slow.rhai", "fn sleeps(h) { h.run(\"sleep 30\"); }\n");
    // Until the test's command runs in its container.
    let wait_for_container = |pid: u32| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let running = containers_of(pid).first().is_some_and(|id| {
                Command::new("docker")
                    .args(["exec", id, "pgrep", "-f", "sleep 30"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
            if running {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the test did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let mut cmd = fleet_test(&p, &["--no-progress"]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    wait_for_container(pid);
    for _ in 0..2 {
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = finish(child);
    out.code(130).stderr_has("test sleeps ... interrupted");
    assert!(containers_of(pid).is_empty(), "{out}");

    // kill -9: the next `fleet test` removes what the dead run left.
    let mut cmd = fleet_test(&p, &["--no-progress"]);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = child.id();
    wait_for_container(killed);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(containers_of(killed).len(), 1);
    std::fs::write(
        p.path().join("tests/slow.rhai"),
        "fn quick(h) { h.run(\"true\"); }\n",
    )
    .unwrap();
    let (out, _) = output(fleet_test(&p, &["--no-progress"]));
    out.code(0)
        .stderr_has("removed 1 container(s) left by an earlier fleet test");
    assert!(containers_of(killed).is_empty());
}

#[test]
fn without_docker_fleet_test_says_what_to_install() {
    let p = project().file("tests/web.rhai", WEB_TESTS);
    let mut cmd = fleet_test(&p, &[]);
    cmd.env("PATH", "/nonexistent");
    let (out, _) = output(cmd);
    out.code(2)
        .stderr_has("fleet test needs Docker, and `docker` is not on PATH")
        .stderr_has("apt-get install docker.io");
    let mut cmd = fleet_test(&p, &[]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let (out, _) = output(cmd);
    out.code(2)
        .stderr_has("the Docker daemon did not answer")
        .stderr_has("DOCKER_HOST");
}

#[test]
fn a_project_without_tests_has_nothing_to_run() {
    let p = project();
    let (out, _) = output(fleet_test(&p, &[]));
    out.code(0).stdout_has("no tests");
    let p = project().file("tests/bad.rhai", "fn two(a, b, c, d, e) {}\n");
    let (out, _) = output(fleet_test(&p, &[]));
    out.code(2).stderr_has("a test receives 1 to 4 hosts");
    let p = project().file("tests/bad.rhai", "fn broken(h) {\n    let = 1;\n}\n");
    let (out, _) = output(fleet_test(&p, &[]));
    out.code(2)
        .stderr_has("syntax error in tests/bad.rhai")
        .stderr_has("tests/bad.rhai:2:");
}

/// The recipe test of docs/recipes.md passes as written, on a throwaway container.
#[test]
fn the_recipes_guide_test_passes() {
    let block = crate::support::guide_block;
    let p = Project::new()
        .file("tests/motd.rhai", &block("// tests/motd.rhai"))
        .file("templates/motd.j2", &block("{# templates/motd.j2 #}"));
    let (out, pid) = output(fleet_test(&p, &["motd"]));
    out.code(0).stderr_has("motd_is_written_once");
    assert!(containers_of(pid).is_empty(), "containers left\n{out}");
}
