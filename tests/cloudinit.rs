//! Every cloud-init document fleet generates passes cloud-init's own checks on this
//! machine (Debian's cloud-init: `cloud-init schema` for cloud-config, and its network
//! renderer through `cloud-init devel net-convert` for network-config, since the 22.4
//! of bookworm has no network-config schema); a wrong one never gets that far.

use crate::support::Project;
use std::path::Path;
use std::process::Command;

const GENERATE: &str = r#"
/// @arg out: string  directory for the documents
fn generate(out) {
    let h = host("h1");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq3xGcJc0Tq5b6m0yQm6o7ZlJ4W2l8rN5o1fNwzJX6c admin@laptop";
    h.write(`${out}/full.yaml`, cloudinit::user_data(#{
        hostname: "web-3", fqdn: "web-3.lab.example", timezone: "Europe/Berlin",
        users: [#{ name: "admin", ssh_authorized_keys: [key], sudo: true, groups: ["adm", "systemd-journal"] },
                #{ name: "deploy", sudo: "ALL=(root) NOPASSWD: /usr/bin/systemctl", shell: "/bin/sh" }],
        ssh_pwauth: false, disable_root: true, packages: ["qemu-guest-agent", "python3"],
        package_upgrade: false,
        write_files: [#{ path: "/etc/motd", content: "managed by fleet\n", permissions: "0644", owner: "root:root" }],
        runcmd: ["systemctl enable --now qemu-guest-agent", "echo 'it''s done' > /root/done"],
    }));
    h.write(`${out}/minimal.yaml`, cloudinit::user_data(#{ hostname: "a" }));
    h.write(`${out}/static.net`, cloudinit::network_config(#{
        mac: "BC:24:11:0A:0B:0C", ip: "10.0.0.5/24", gateway: "10.0.0.1", dns: ["10.0.0.1", "1.1.1.1"], search: ["lab.example"],
    }));
    h.write(`${out}/dhcp.net`, cloudinit::network_config(#{ mac: "bc:24:11:0a:0b:0d", ip: "dhcp" }));
    h.write(`${out}/meta`, cloudinit::meta_data("fleet-105", "web-3"));
}

/// @arg what: string  which mistake
fn wrong(what) {
    if what == "package" { cloudinit::user_data(#{ packages: ["curl; reboot"] }) }
    else if what == "key" { cloudinit::user_data(#{ hostnme: "x" }) }
    else { cloudinit::network_config(#{ mac: "bc:24:11:0a:0b:0d", ip: "10.0.0.5", gateway: "10.0.0.1" }) }
}
"#;

fn cloud_init(args: &[&str], file: &Path) -> std::process::Output {
    Command::new("cloud-init")
        .args(args)
        .arg(file)
        .output()
        .expect("cloud-init (apt-get install cloud-init; scripts/install-deps --tests does)")
}

#[test]
fn generated_documents_pass_cloud_init_itself() {
    let p = Project::new()
        .local_hosts(1)
        .file("recipes/docs.rhai", GENERATE);
    let out = p.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    crate::support::run_fleet(p.path(), &["generate", out.to_str().unwrap()]).code(0);
    for doc in ["full.yaml", "minimal.yaml"] {
        let r = cloud_init(&["schema", "--config-file"], &out.join(doc));
        assert!(
            r.status.success() && String::from_utf8_lossy(&r.stdout).contains("Valid"),
            "{doc}: {}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
    }
    for (net, expect) in [
        ("static.net", "address 10.0.0.5/24"),
        ("dhcp.net", "iface eth0 inet dhcp"),
    ] {
        let rendered = out.join(format!("{net}.out"));
        let r = Command::new("cloud-init")
            .args([
                "devel",
                "net-convert",
                "-k",
                "yaml",
                "-D",
                "debian",
                "-O",
                "eni",
                "-d",
            ])
            .arg(&rendered)
            .arg("-p")
            .arg(out.join(net))
            .output()
            .expect("cloud-init devel net-convert");
        assert!(
            r.status.success(),
            "{net}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let eni = std::fs::read_to_string(rendered.join("etc/network/interfaces.d/50-cloud-init"))
            .unwrap();
        assert!(eni.contains(expect), "{net} rendered as:\n{eni}");
    }
    assert!(
        std::fs::read_to_string(out.join("meta"))
            .unwrap()
            .contains("instance-id: fleet-105")
    );
    // A document cloud-init rejects really is rejected by this cloud-init (the check
    // above is not vacuous).
    let bad = out.join("bad.yaml");
    std::fs::write(&bad, "#cloud-config\npackages: 5\nusers: yes\n").unwrap();
    assert!(
        !cloud_init(&["schema", "--config-file"], &bad)
            .status
            .success()
    );
}

#[test]
fn wrong_documents_are_refused_by_fleet_first() {
    let p = Project::new()
        .local_hosts(1)
        .file("recipes/docs.rhai", GENERATE);
    crate::support::run_fleet(p.path(), &["wrong", "package"])
        .code(2)
        .stderr_has("user-data is invalid")
        .stderr_has("packages: `curl; reboot` is not a Debian package name");
    crate::support::run_fleet(p.path(), &["wrong", "key"])
        .code(2)
        .stderr_has("unknown field `hostnme`");
    crate::support::run_fleet(p.path(), &["wrong", "net"])
        .code(2)
        .stderr_has("ip: `10.0.0.5` must be `dhcp` or an IPv4 CIDR");
}
