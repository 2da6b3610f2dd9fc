//! `fleet update` against container hosts with real apt. The updates come from a local
//! apt repository made in the container (offline and deterministic): a package at 1.0
//! installed, its 1.1 in a repository labelled Debian-Security, whose postinst asks for
//! a reboot as a kernel update does.

use crate::support::containers::{ContainerHost, TestKey, project_for};
use crate::support::run_fleet;

pub const FIXTURE: &str = r#"set -e
for v in 1.0 1.1; do
  d=/tmp/pkg/$v; mkdir -p $d/DEBIAN $d/usr/share/fleet-test
  printf 'Package: fleet-test-pkg\nVersion: %s\nArchitecture: all\nMaintainer: fleet <fleet@example.com>\nDescription: fleet test package\n' $v > $d/DEBIAN/control
  echo $v > $d/usr/share/fleet-test/version
done
printf '#!/bin/sh\ntouch /var/run/reboot-required\n' > /tmp/pkg/1.1/DEBIAN/postinst
chmod 755 /tmp/pkg/1.1/DEBIAN/postinst
mkdir -p /srv/fleet-repo
dpkg-deb --build /tmp/pkg/1.0 /tmp/fleet-test-pkg_1.0_all.deb >/dev/null
dpkg-deb --build /tmp/pkg/1.1 /srv/fleet-repo/fleet-test-pkg_1.1_all.deb >/dev/null
dpkg -i /tmp/fleet-test-pkg_1.0_all.deb >/dev/null
cd /srv/fleet-repo
{ cat /tmp/pkg/1.1/DEBIAN/control
  echo "Filename: ./fleet-test-pkg_1.1_all.deb"
  echo "Size: $(stat -c %s fleet-test-pkg_1.1_all.deb)"
  echo "SHA256: $(sha256sum fleet-test-pkg_1.1_all.deb | cut -d' ' -f1)"; } > Packages
printf 'Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\nDate: %s\nArchitectures: all amd64\nDescription: fleet test\nSHA256:\n %s %s Packages\n' \
  "$(date -Ru)" "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)" > Release
mv /etc/apt/sources.list /etc/apt/sources.list.off
echo 'deb [trusted=yes] file:/srv/fleet-repo ./' > /etc/apt/sources.list.d/fleet-test.list
"#;

/// "Reboots" the test host by restarting its sshd (and emptying /run's reboot flag, as
/// a boot's fresh tmpfs does): the boot marker is sshd's pid.
const REBOOT_VARS: &str = r#"update_reboot = true, reboot_command = "(sleep 1; kill $(cat /run/sshd.pid); rm -f /run/reboot-required; sleep 2; /usr/sbin/sshd) >/dev/null 2>&1 &", reboot_marker = "cat /run/sshd.pid", health_check = "test -e /usr/share/fleet-test/version""#;

#[test]
fn update_upgrades_reboots_checks_health_and_records_it_all() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    let out = std::process::Command::new("docker")
        .args(["exec", &host.id, "sh", "-c", FIXTURE])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fixture: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sshd_before = host.exec("cat /run/sshd.pid");
    let p = project_for(&key, &[("u1", &host, REBOOT_VARS)]);

    let run = run_fleet(p.path(), &["update", "--reboot-timeout", "30"]);
    run.code(0);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("u1 ") && !l.starts_with("u1 |"))
        .unwrap_or_else(|| panic!("{run}"))
        .to_string();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // host pending security upgraded reboot_required rebooted health
    assert_eq!(cols, ["u1", "1", "1", "1", "false", "true", "ok"], "{run}");
    assert_eq!(host.exec("cat /usr/share/fleet-test/version").trim(), "1.1");
    assert_ne!(
        host.exec("cat /run/sshd.pid"),
        sshd_before,
        "sshd was not restarted"
    );
    assert!(run.stdout.contains("back after"), "{run}");

    // The journal has every number.
    let journal = run_fleet(p.path(), &["show", "last", "--json"]);
    journal.code(0);
    let record: serde_json::Value = serde_json::from_str(&journal.stdout).unwrap();
    let update = &record["hosts"][0]["results"]["update"];
    assert_eq!(update["pending"], 1);
    assert_eq!(update["security"], 1);
    assert_eq!(update["rebooted"], true);
    assert_eq!(update["health"], "ok");
    assert_eq!(update["packages"][0], "fleet-test-pkg 1.1");

    // Nothing left: the second run is quiet, and cron can tell (exit 0, ok).
    let again = run_fleet(p.path(), &["update", "--no-progress"]);
    again.code(0);
    assert!(
        again
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["u1", "0", "0", "0", "false", "false", "ok"]),
        "{again}"
    );
    assert!(again.stderr.contains("u1    ok"), "{again}");
    // From cron with -q, an all-ok run prints nothing at all.
    let quiet = run_fleet(p.path(), &["-q", "update"]);
    quiet.code(0);
    assert_eq!(
        (quiet.stdout.as_str(), quiet.stderr.as_str()),
        ("", ""),
        "{quiet}"
    );
}

#[test]
fn a_failing_batch_stops_the_rollout_and_the_rest_is_skipped() {
    let key = TestKey::new();
    let hosts: Vec<ContainerHost> = (0..3)
        .map(|_| ContainerHost::start(&key.public()))
        .collect();
    let p = project_for(
        &key,
        &[
            (
                "r1",
                &hosts[0],
                r#"health_check = "echo unhealthy >&2; false""#,
            ),
            ("r2", &hosts[1], ""),
            ("r3", &hosts[2], ""),
        ],
    );
    let out = run_fleet(p.path(), &["update", "--serial", "1", "--refresh=false"]);
    out.code(3).stderr_has(
        "health check 'echo unhealthy >&2; false' failed after the update (exit 1): unhealthy",
    );
    // -q: the failing host with its error and the summary, nothing of the others.
    let quiet = run_fleet(p.path(), &["-q", "update", "r1", "--refresh=false"]);
    quiet
        .code(3)
        .stderr_has("r1    failed")
        .stderr_has("unhealthy")
        .stderr_has("0 ok, 0 changed, 1 failed, 0 unreachable");
    assert!(quiet.stdout.is_empty(), "{quiet}");
    for skipped in ["r2", "r3"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(skipped) && l.contains("skipped")),
            "{skipped} not skipped:\n{out}"
        );
    }
}

#[test]
fn a_host_without_apt_is_named() {
    let key = TestKey::new();
    let host = ContainerHost::start(&key.public());
    host.exec("mv /usr/bin/apt-get /usr/bin/apt-get.off");
    let p = project_for(&key, &[("n1", &host, "")]);
    run_fleet(p.path(), &["update"])
        .code(3)
        .stderr_has("n1 runs Debian GNU/Linux 12 (bookworm), which has no apt-get");
}
