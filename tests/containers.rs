//! The container tier itself: a host from the test image, reached by fleet over SSH on
//! its published loopback port, with the tools later issues change machines with.

use crate::support::containers::{ContainerHost, TestKey, project_for};

#[test]
fn a_container_host_is_a_real_debian_machine_and_goes_away_after() {
    let key = TestKey::new();
    let id;
    {
        let host = ContainerHost::start(&key.public());
        id = host.id.clone();
        let p = project_for(&key, &[("c1", &host, "")]);
        crate::support::run_fleet(
            p.path(),
            &["exec", "c1", "--", "id -un; . /etc/os-release; echo $ID; for c in ufw rsync sudo python3 cloud-init; do command -v $c; done"],
        )
        .code(0)
        .stdout_has("c1 | root")
        .stdout_has("c1 | debian")
        .stdout_has("/usr/sbin/ufw")
        .stdout_has("/usr/bin/cloud-init");
        // Changes stay in the container.
        crate::support::run_fleet(p.path(), &["exec", "c1", "--", "touch /etc/fleet-was-here"])
            .code(0);
        assert_eq!(
            host.exec("ls /etc/fleet-was-here").trim(),
            "/etc/fleet-was-here"
        );
        assert!(!std::path::Path::new("/etc/fleet-was-here").exists());
    }
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("id={id}")])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "container {id} outlived its test");
}
