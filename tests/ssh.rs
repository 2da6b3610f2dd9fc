//! fleet over SSH against real sshd hosts on loopback (tests/support/sshd.rs).

use crate::support::sshd::TestFleet;
use crate::support::{Output, run_fleet};
use std::time::Duration;

fn fleet(f: &TestFleet, args: &[&str]) -> Output {
    let out = run_fleet(f.path(), args);
    // After every run, whatever its outcome: no ssh process of fleet's is left.
    let left = f.ssh_processes();
    assert!(
        left.is_empty(),
        "ssh processes left after {args:?}: {left:?}\n{out}"
    );
    out
}

fn recipe(f: &TestFleet, name: &str, text: &str) {
    let dir = f.path().join("recipes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.rhai")), text).unwrap();
}

fn recap_row<'a>(out: &'a Output, host: &str) -> &'a str {
    out.stderr
        .lines()
        .find(|l| l.starts_with(&format!("{host} ")))
        .unwrap_or_else(|| panic!("no recap row for {host}\n{out}"))
}

const WHO: &str = r#"
/// Who and where each host is.
fn who() {
    let rows = each(hosts(), |h| {
        let r = h.read("echo $(id -un) $FLEET_TEST_HOST");
        #{ host: h.name, who: r.to_string() }
    });
    print(table(rows, ["host", "who"]));
}
"#;

#[test]
fn a_recipe_runs_on_five_sshd_hosts() {
    let f = TestFleet::start(5);
    recipe(&f, "who", WHO);
    let out = fleet(&f, &["who"]);
    out.code(0).stderr_has("5 ok, 0 changed, 0 failed");
    for i in 1..=5 {
        out.stdout_has(&format!("s{i}    {} s{i}", f.user));
    }
    let out = fleet(
        &f,
        &["exec", "sshfleet", "--", "echo hi from $FLEET_TEST_HOST"],
    );
    out.code(0).stdout_has("s3 | hi from s3");
}

#[test]
fn an_unreachable_host_among_good_ones_ends_unreachable() {
    let f = TestFleet::start(3);
    recipe(&f, "who", WHO);
    f.kill("s2");
    let out = fleet(&f, &["who"]);
    out.code(4)
        .stderr_has("s2 | UNREACHABLE: s2 is unreachable: connect to host")
        .stderr_has("Connection refused")
        .stderr_has("2 ok, 0 changed, 0 failed, 1 unreachable");
    assert!(recap_row(&out, "s2").contains("unreachable"));
}

#[test]
fn unknown_and_changed_host_keys_are_refused() {
    let f = TestFleet::start(3);
    recipe(&f, "who", WHO);
    let known = f.path().join("known_hosts");
    let text = std::fs::read_to_string(&known).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (s1, s2, s3) = (f.host("s1"), f.host("s2"), f.host("s3"));
    let key_of = |addr: &str| -> String {
        let l = lines
            .iter()
            .find(|l| l.starts_with(&format!("{addr} ")))
            .unwrap();
        l.split_once(' ').unwrap().1.to_string()
    };
    // s1 now "presents" s2's key; s3 is not known at all.
    let edited = format!(
        "{} {}\n{} {}\n",
        s1.address,
        key_of(&s2.address),
        s2.address,
        key_of(&s2.address)
    );
    std::fs::write(&known, edited).unwrap();
    let out = fleet(&f, &["who"]);
    out.code(4)
        .stderr_has(&format!(
            "s1 | UNREACHABLE: s1 is unreachable: host key of s1 ({}) has CHANGED",
            s1.address
        ))
        .stderr_has(&format!("{}:1", known.display()))
        .stderr_has(&format!(
            "s3 | UNREACHABLE: s3 is unreachable: no ED25519 host key for s3 ({})",
            s3.address
        ))
        .stderr_has("--accept-new-host-keys");
    assert!(recap_row(&out, "s2").contains("ok"));

    // Accepting new keys records s3's key, and still refuses s1's changed one.
    let out = fleet(&f, &["who", "--accept-new-host-keys"]);
    out.code(4)
        .stderr_has("s1 | UNREACHABLE")
        .stderr_has("2 ok");
    let after = std::fs::read_to_string(&known).unwrap();
    assert!(after.contains(&s3.address), "{after}");
    fleet(&f, &["who", "--limit", "s3"]).code(0);
}

#[test]
fn an_identity_file_readable_by_others_is_refused_before_connecting() {
    use std::os::unix::fs::PermissionsExt;
    let f = TestFleet::start(1);
    recipe(&f, "who", WHO);
    let key = f.path().join("id_ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = fleet(&f, &["who"]);
    out.code(2)
        .stderr_has(&format!(
            "host s1: identity file {} has mode 0644",
            key.display()
        ))
        .stderr_has("chmod 600");
    assert!(
        !out.stderr.contains("RECAP") && !out.stderr.contains("s1 |"),
        "{out}"
    );
    assert!(!f.path().join(".fleet/logs").exists(), "no run started");
}

#[test]
fn a_host_killed_mid_run_ends_unreachable_at_its_step() {
    let f = TestFleet::start(3);
    recipe(
        &f,
        "long",
        r#"
/// Works in two steps.
fn long() {
    each(hosts(), |h| {
        step("prepare", || h.run("true"));
        step("long work", || h.run("sleep 3"));
    });
}
"#,
    );
    let child = crate::support::spawn_fleet(f.path(), &["long"]);
    std::thread::sleep(Duration::from_millis(1500));
    f.kill("s2");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(
            "s2 | UNREACHABLE: s2 is unreachable during step `long work`: connection lost"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 changed, 0 failed, 1 unreachable"),
        "{stderr}"
    );
    assert!(f.ssh_processes().is_empty(), "{:?}", f.ssh_processes());
}

#[test]
fn a_host_behind_a_proxyjump_is_reached_through_it() {
    let f = TestFleet::start(2);
    let s2 = f.host("s2").clone();
    // `behind` is s2's sshd, reachable for fleet only through s1 (ssh_config, not fleet).
    let mut config = std::fs::read_to_string(f.path().join("ssh_config")).unwrap();
    config = format!(
        "Host behind\n    HostName {}\n    ProxyJump s1\n\n{config}",
        s2.address
    );
    std::fs::write(f.path().join("ssh_config"), config).unwrap();
    let known = std::fs::read_to_string(f.path().join("known_hosts")).unwrap();
    let s2_key = known
        .lines()
        .find(|l| l.starts_with(&format!("{} ", s2.address)))
        .unwrap();
    std::fs::write(
        f.path().join("known_hosts"),
        format!("{known}{}\n", s2_key.replacen(&s2.address, "behind", 1)),
    )
    .unwrap();
    std::fs::write(
        f.path().join("inventory.toml"),
        "[hosts.behind]\naddress = \"behind\"\n",
    )
    .unwrap();
    recipe(&f, "who", WHO);
    fleet(&f, &["who"])
        .code(0)
        .stdout_has(&format!("behind  {} s2", f.user));
    // Without the jump host, `behind` cannot be reached: the jump was really used.
    f.kill("s1");
    fleet(&f, &["who"])
        .code(4)
        .stderr_has("behind | UNREACHABLE");
}

#[test]
fn upload_and_download_round_trip_byte_identical() {
    let f = TestFleet::start(1);
    let mut big = vec![0u8; 10 * 1024 * 1024];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for b in big.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let odd_name = "it's a \"file\" $name.bin";
    std::fs::write(f.path().join("big.bin"), &big).unwrap();
    std::fs::write(f.path().join(odd_name), b"odd\x00bytes\n").unwrap();
    let remote = format!("/tmp/fleet-e2e-{}", std::process::id());
    recipe(
        &f,
        "copy",
        &format!(
            r#"
/// Round trip.
fn copy() {{
    let h = host("s1");
    h.run("mkdir -p {remote}");
    print(`first ${{h.upload("big.bin", "{remote}/big.bin")}}`);
    print(`again ${{h.upload("big.bin", "{remote}/big.bin")}}`);
    h.upload(`it's a "file" $name.bin`, `{remote}/it's a "file" $name.bin`, #{{ mode: "0600" }});
    h.download("{remote}/big.bin", "back/big.bin");
    h.download(`{remote}/it's a "file" $name.bin`, `back/it's a "file" $name.bin`);
    print(h.read(`stat -c %a {remote}/` + quote(`it's a "file" $name.bin`)).to_string());
    h.run("rm -rf {remote}");
}}
"#
        ),
    );
    let out = fleet(&f, &["copy"]);
    out.code(0)
        .stdout_has("first true")
        .stdout_has("again false")
        .stdout_has("600");
    assert!(
        std::fs::read(f.path().join("back/big.bin")).unwrap() == big,
        "10 MB differ"
    );
    assert_eq!(
        std::fs::read(f.path().join("back").join(odd_name)).unwrap(),
        b"odd\x00bytes\n"
    );
}

#[test]
fn write_reports_changed_then_ok() {
    let f = TestFleet::start(2);
    let remote = format!("/tmp/fleet-write-{}", std::process::id());
    std::fs::create_dir_all(f.path().join("templates")).unwrap();
    std::fs::write(
        f.path().join("templates/motd.j2"),
        "Welcome to {{ host.name }} ({{ role }}), port {{ port }}\n",
    )
    .unwrap();
    recipe(
        &f,
        "conf",
        &format!(
            r#"
/// Writes a file and a template.
/// @arg text: string = "hello"  content
fn conf(text) {{
    each(hosts(), |h| {{
        h.write(`{remote}-${{h.name}}`, text + "\n", #{{ mode: "0640" }});
        h.template("motd.j2", `{remote}-${{h.name}}.motd`, #{{ role: "web", port: 8080 }});
        h.read(`cat {remote}-${{h.name}}.motd`).to_string()
    }});
}}
"#
        ),
    );
    let out = fleet(&f, &["conf"]);
    out.code(0).stderr_has("0 ok, 2 changed");
    fleet(&f, &["conf"]).code(0).stderr_has("2 ok, 0 changed");
    let check = fleet(&f, &["conf", "--text", "bye", "--check", "--limit", "s1"]);
    check
        .code(0)
        .stdout_has(&format!(
            "s1 | would write {remote}-s1: replace its content (4 bytes)"
        ))
        .stdout_has("s1 | -hello")
        .stdout_has("s1 | +bye");
    assert_eq!(f.ssh("s1", &format!("cat {remote}-s1")).stdout, b"hello\n");
    assert_eq!(
        f.ssh(
            "s2",
            &format!("cat {remote}-s2.motd; stat -c %a {remote}-s2")
        )
        .stdout,
        b"Welcome to s2 (web), port 8080\n640\n"
    );
    f.ssh("s1", &format!("rm -f {remote}-*"));
}

#[test]
fn a_command_timeout_kills_it_on_the_host_too() {
    let f = TestFleet::start(1);
    let marker = format!("{}.25", 40 + std::process::id() % 50);
    recipe(
        &f,
        "slow",
        &format!(
            "/// Too slow.\nfn slow() {{\n    each(hosts(), |h| h.run(\"sleep {marker}\", #{{ timeout: 1 }}));\n}}\n"
        ),
    );
    let out = fleet(&f, &["slow"]);
    out.code(3).stderr_has(&format!(
        "command `sleep {marker}` on s1 timed out after 1s and was killed"
    ));
    std::thread::sleep(Duration::from_millis(300));
    // The command itself (fleet's watcher may still hold its text for a moment).
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("^sleep {marker}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "still running on the host: {:?}",
        left
    );
}

#[test]
fn sudo_that_needs_a_password_fails_clearly() {
    let f = TestFleet::start(1);
    recipe(
        &f,
        "root",
        "/// Needs root.\nfn root() {\n    each(hosts(), |h| h.sudo(\"true\"));\n}\n",
    );
    fleet(&f, &["root"])
        .code(3)
        .stderr_has("s1 | FAILED: sudo needs a password on s1");
}

#[test]
fn wait_for_ssh_waits_and_gives_up() {
    let f = TestFleet::start(2);
    f.kill("s2");
    recipe(
        &f,
        "boot",
        "/// Waits.\nfn boot() {\n    each(hosts(), |h| { wait_for_ssh(h, #{ timeout: 2, interval: 0.5 }); h.read(\"true\") });\n}\n",
    );
    let out = fleet(&f, &["boot"]);
    out.code(4)
        .stderr_has("s2 | UNREACHABLE: s2 is unreachable: no SSH login within 2s")
        .stderr_has("1 ok");
}

#[test]
fn connect_runs_a_command_with_the_run_s_options() {
    let f = TestFleet::start(1);
    let out = fleet(&f, &["connect", "s1", "--", "echo", "$FLEET_TEST_HOST"]);
    out.code(0).stdout_has("s1");
    fleet(&f, &["connect", "s11"])
        .code(2)
        .stderr_has("no host named `s11`")
        .stderr_has("did you mean `s1`?");
}

#[test]
fn output_streams_while_a_command_runs() {
    let f = TestFleet::start(1);
    recipe(
        &f,
        "stream",
        "/// Prints slowly.\nfn stream() {\n    each(hosts(), |h| h.run(\"echo first; sleep 1.5; echo second\"));\n}\n",
    );
    let mut child = crate::support::spawn_fleet(f.path(), &["stream", "-v"]);
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let started = std::time::Instant::now();
    let mut first_at = None;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains("s1 |   first") {
            first_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    assert!(child.wait().unwrap().success());
    let first_at = first_at.expect("the first line was shown");
    assert!(
        total - first_at > Duration::from_millis(1000),
        "first line came at {first_at:?} of {total:?}"
    );
}

#[test]
fn ctrl_c_over_ssh_leaves_no_ssh_process() {
    let f = TestFleet::start(3);
    recipe(
        &f,
        "slow",
        "/// Sleeps.\nfn slow() {\n    each(hosts(), |h| h.run(\"sleep 20\"));\n}\n",
    );
    let child = crate::support::spawn_fleet(f.path(), &["slow", "--forks", "2"]);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..2 {
        // SAFETY: signals the child we just started; twice aborts commands in flight.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("was interrupted"), "{stderr}");
    assert!(stderr.contains("1 skipped"), "{stderr}");
    let left = f.ssh_processes();
    assert!(left.is_empty(), "ssh processes left after Ctrl-C: {left:?}");
}
