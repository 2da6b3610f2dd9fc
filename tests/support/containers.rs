//! The container tier of the test fleet (DESIGN.md): Docker containers of fleet's own
//! Debian test image (tests/image/build: debootstrap + docker import, never pulled),
//! for tests that change a machine: packages, config files, firewall, users, "VMs".
//! Every container carries the label `fleet-test=<owner>` and is removed when its
//! owner is dropped, also when the test fails.
#![allow(dead_code)] // each test uses only part of the harness

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The test image's tag, built once per machine (and per change of tests/image).
pub fn test_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/image/build");
        let out = Command::new(&script)
            .output()
            .expect("run tests/image/build");
        assert!(
            out.status.success(),
            "tests/image/build failed ({}); it needs docker and debootstrap (scripts/install-deps --tests installs them):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// A label value unique to this test process and call.
pub fn unique_label(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), fastrand::u32(..))
}

/// Removes every container labelled `fleet-test=<label>`.
pub fn remove_labelled(label: &str) {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=fleet-test={label}"),
        ])
        .output()
        .expect("docker ps");
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .output();
    }
}

/// One container host: root logs in with `authorized_key`, sshd published on a loopback port.
pub struct ContainerHost {
    pub id: String,
    pub label: String,
    pub address: String,
    pub port: u16,
}

impl ContainerHost {
    /// Starts a container with NET_ADMIN (ufw needs it) and waits until sshd answers.
    pub fn start(authorized_key: &str) -> ContainerHost {
        ContainerHost::start_with(authorized_key, &[])
    }

    /// [`ContainerHost::start`] with more `docker run` options (networks, security).
    pub fn start_with(authorized_key: &str, extra: &[String]) -> ContainerHost {
        let label = unique_label("host");
        let out = Command::new("docker")
            .args(["run", "-d", "--label", &format!("fleet-test={label}")])
            .args(["--cap-add", "NET_ADMIN", "-p", "127.0.0.1::22"])
            .args(extra)
            .args([
                "-e",
                &format!("FLEET_AUTHORIZED_KEY={}", authorized_key.trim()),
            ])
            .arg(test_image())
            .output()
            .expect("docker run");
        assert!(
            out.status.success(),
            "docker run {} failed: {}",
            test_image(),
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let mut host = ContainerHost {
            id,
            label,
            address: "127.0.0.1".into(),
            port: 0,
        };
        host.port = host.published_port();
        // Under load the path through docker-proxy sometimes never comes up; a restart
        // of the container (a new published port) has always brought it.
        if let Err(first) = host.wait_for_sshd() {
            eprintln!("{first}; restarting the container once");
            let _ = Command::new("docker").args(["restart", &host.id]).output();
            host.port = host.published_port();
            if let Err(second) = host.wait_for_sshd() {
                panic!("{second}");
            }
        }
        host
    }

    fn published_port(&self) -> u16 {
        let out = Command::new("docker")
            .args(["port", &self.id, "22/tcp"])
            .output()
            .expect("docker port");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no published ssh port for {}: {text:?}", self.id))
    }

    /// Whether sshd's banner comes back through the published port: docker-proxy
    /// accepts a connection before it has reached the container, so a connect alone
    /// proves nothing about the path to sshd.
    fn ssh_banner(&self) -> bool {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect((self.address.as_str(), self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let mut banner = [0u8; 4];
        s.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
    }

    fn wait_for_sshd(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let up = Command::new("docker")
                .args(["exec", &self.id, "test", "-e", "/run/fleet-test-booted"])
                .status()
                .is_ok_and(|s| s.success());
            if up && self.ssh_banner() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "container {} did not answer with an SSH banner on 127.0.0.1:{} within 30 s (booted: {up}); in the container: {}",
                    self.id,
                    self.port,
                    self.exec("ip -br addr; ss -ltnp; tail -n 5 /var/log/fleet-test-init.log")
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Runs a command in the container (as root, outside SSH) and returns its stdout.
    pub fn exec(&self, cmd: &str) -> String {
        let out = Command::new("docker")
            .args(["exec", &self.id, "sh", "-c", cmd])
            .output()
            .expect("docker exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The host's public key line, for a known_hosts file.
    pub fn known_hosts_line(&self) -> String {
        let key = self.exec("cat /etc/ssh/ssh_host_ed25519_key.pub");
        let mut parts = key.split_whitespace();
        format!(
            "[{}]:{} {} {}",
            self.address,
            self.port,
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default()
        )
    }
}

impl Drop for ContainerHost {
    fn drop(&mut self) {
        remove_labelled(&self.label);
    }
}

/// A key pair for logging into container hosts, in its own temp dir.
pub struct TestKey {
    pub dir: tempfile::TempDir,
}

impl TestKey {
    pub fn new() -> TestKey {
        let dir = tempfile::tempdir().expect("temp dir for the key");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.path().join("id_ed25519"))
            .status()
            .expect("ssh-keygen");
        assert!(status.success());
        TestKey { dir }
    }

    pub fn private(&self) -> std::path::PathBuf {
        self.dir.path().join("id_ed25519")
    }

    pub fn public(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("id_ed25519.pub")).unwrap()
    }
}

/// A fleet project that logs into `hosts` (name, host, inventory vars) as root.
pub fn project_for(key: &TestKey, hosts: &[(&str, &ContainerHost, &str)]) -> super::Project {
    let mut known = String::new();
    let mut inventory = String::new();
    for (name, host, vars) in hosts {
        known.push_str(&host.known_hosts_line());
        known.push('\n');
        inventory.push_str(&format!(
            "[hosts.{name}]\naddress = \"{}\"\nport = {}\nvars = {{ {vars} }}\n\n",
            host.address, host.port
        ));
    }
    super::Project::new()
        .file(
            "fleet.toml",
            &format!(
                "[ssh]\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts = \"known_hosts\"\n",
                key.private().display()
            ),
        )
        .file("known_hosts", &known)
        .file("inventory.toml", &inventory)
}

/// `ssh` as `user` with `key`, running `cmd`; (success, stdout + stderr).
pub fn ssh_as(
    p: &std::path::Path,
    host: &ContainerHost,
    key: &TestKey,
    user: &str,
    cmd: &str,
) -> (bool, String) {
    let out = std::process::Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            p.join("known_hosts").display()
        ))
        .arg("-i")
        .arg(key.private())
        .args([
            "-p",
            &host.port.to_string(),
            "-l",
            user,
            "--",
            &host.address,
            cmd,
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A Docker network of one test (label `fleet-test=<name>`), removed when dropped:
/// drop the containers on it first (declare them before it in a struct).
pub struct TestNetwork {
    pub name: String,
}

impl TestNetwork {
    /// A network with a subnet of its own configuration (Docker's choice, then pinned):
    /// only such networks let a container have an address given to it (a simulator's VM
    /// with ipconfig0's static address).
    pub fn new(prefix: &str) -> TestNetwork {
        let name = unique_label(prefix);
        let create = |subnet: Option<&str>| {
            let mut cmd = Command::new("docker");
            cmd.args(["network", "create", "--label"])
                .arg(format!("fleet-test={name}"));
            if let Some(s) = subnet {
                cmd.args(["--subnet", s]);
            }
            cmd.arg(&name).output().expect("docker network create")
        };
        for _ in 0..5 {
            let out = create(None);
            assert!(
                out.status.success(),
                "docker network create {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let subnet = Command::new("docker")
                .args([
                    "network",
                    "inspect",
                    "-f",
                    "{{(index .IPAM.Config 0).Subnet}}",
                    &name,
                ])
                .output()
                .expect("docker network inspect");
            let subnet = String::from_utf8_lossy(&subnet.stdout).trim().to_string();
            let _ = Command::new("docker")
                .args(["network", "rm", &name])
                .output();
            // Another test may take the subnet in between: then ask Docker again.
            if create(Some(&subnet)).status.success() {
                return TestNetwork { name };
            }
        }
        panic!("docker network create {name}: no subnet could be pinned in five tries");
    }

    /// The network's subnet ("172.20.0.0/16").
    pub fn subnet(&self) -> String {
        let out = Command::new("docker")
            .args([
                "network",
                "inspect",
                "-f",
                "{{(index .IPAM.Config 0).Subnet}}",
                &self.name,
            ])
            .output()
            .expect("docker network inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.name])
            .output();
    }
}

impl ContainerHost {
    /// A host on these networks (the first one at start, the others connected after),
    /// its sshd published on loopback as with [`ContainerHost::start`]. `router` hosts
    /// may write /proc/sys (`net.ipv4.ip_forward`), as an edge host's NAT needs.
    pub fn start_on(
        authorized_key: &str,
        networks: &[&TestNetwork],
        router: bool,
    ) -> ContainerHost {
        let (first, rest) = networks.split_first().expect("at least one network");
        let mut extra = vec!["--network".to_string(), first.name.clone()];
        if router {
            extra.extend([
                "--security-opt".to_string(),
                "systempaths=unconfined".to_string(),
            ]);
        }
        let mut host = ContainerHost::start_with(authorized_key, &extra);
        for net in rest {
            let out = Command::new("docker")
                .args(["network", "connect", &net.name, &host.id])
                .output()
                .expect("docker network connect");
            assert!(
                out.status.success(),
                "docker network connect {} failed: {}",
                net.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !rest.is_empty() {
            // Docker maps the published port anew when a network is connected.
            host.port = host.published_port();
            if let Err(e) = host.wait_for_sshd() {
                panic!("{e}");
            }
        }
        host
    }

    /// A handle on a container something else started (a simulator's VM), for `exec`;
    /// dropping it leaves the container alone (its label matches nothing).
    pub fn existing(id: &str) -> ContainerHost {
        ContainerHost {
            id: id.to_string(),
            label: unique_label("not-owned"),
            address: String::new(),
            port: 0,
        }
    }

    /// The container's address on `net`.
    pub fn ip_on(&self, net: &TestNetwork) -> String {
        let format = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            net.name
        );
        let out = Command::new("docker")
            .args(["inspect", "-f", &format, &self.id])
            .output()
            .expect("docker inspect");
        let ip = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!ip.is_empty(), "{} has no address on {}", self.id, net.name);
        ip
    }

    /// Runs a command in the container and returns (success, stdout + stderr).
    pub fn try_exec(&self, cmd: &str) -> (bool, String) {
        let out = Command::new("docker")
            .args(["exec", &self.id, "sh", "-c", cmd])
            .output()
            .expect("docker exec");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// The network edge of issue 18 (README "Network edge"): an `edge` host on a
/// "public" and an "internal" network, a `vm` on the internal one only, routing
/// through the edge as its default gateway (as a Proxmox VM does through its host),
/// and a `client` on the public one only. fleet logs into edge and vm over their
/// published sshd; the client is driven with `docker exec`.
/// The client's address "on the internet" (see [`EdgeTopology::client_on_the_internet`]).
pub const CLIENT_ADDRESS: &str = "198.51.100.10";

pub struct EdgeTopology {
    pub edge: ContainerHost,
    pub vm: ContainerHost,
    pub client: ContainerHost,
    pub key: TestKey,
    pub public: TestNetwork,
    pub internal: TestNetwork,
}

impl EdgeTopology {
    pub fn start() -> EdgeTopology {
        let key = TestKey::new();
        let public = TestNetwork::new("public");
        let internal = TestNetwork::new("internal");
        let edge = ContainerHost::start_on(&key.public(), &[&public, &internal], true);
        let vm = ContainerHost::start_on(&key.public(), &[&internal], false);
        let client = ContainerHost::start_on(&key.public(), &[&public], false);
        let via = edge.ip_on(&internal);
        let (ok, out) = vm.try_exec(&format!("ip route replace default via {via}"));
        assert!(ok, "vm: default route via the edge ({via}): {out}");
        EdgeTopology {
            edge,
            vm,
            client,
            key,
            public,
            internal,
        }
    }

    /// Gives the client an address "on the internet", routed through the edge like any
    /// address outside: Docker drops a packet bound for a container's address that
    /// comes from another of its networks (a VM's answer to the client), so the client
    /// speaks from [`CLIENT_ADDRESS`], which is no container's.
    pub fn client_on_the_internet(&self) {
        let public = self.edge.ip_on(&self.public);
        let client_ip = self.client.ip_on(&self.public);
        let (ok, out) = self.client.try_exec(&format!(
            "ip addr add {CLIENT_ADDRESS}/32 dev eth0 && ip route replace {public}/32 dev eth0 src {CLIENT_ADDRESS}"
        ));
        assert!(ok, "client: {out}");
        let (ok, out) = self.edge.try_exec(&format!(
            "ip route replace {CLIENT_ADDRESS}/32 via {client_ip}"
        ));
        assert!(ok, "edge: {out}");
    }

    /// A fleet project with `edge` and `vm` (each with `internal_address`, its address
    /// on the internal network) and the extra inventory vars given for each.
    pub fn project(&self, edge_vars: &str, vm_vars: &str) -> super::Project {
        let with_internal = |host: &ContainerHost, vars: &str| {
            let internal = format!("internal_address = \"{}\"", host.ip_on(&self.internal));
            if vars.is_empty() {
                internal
            } else {
                format!("{internal}, {vars}")
            }
        };
        let edge = with_internal(&self.edge, edge_vars);
        let vm = with_internal(&self.vm, vm_vars);
        project_for(
            &self.key,
            &[("edge", &self.edge, &edge), ("vm", &self.vm, &vm)],
        )
    }
}
