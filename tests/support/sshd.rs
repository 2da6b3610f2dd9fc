//! Real SSH hosts for the end-to-end tests: several `sshd` processes on loopback, started
//! by `examples/local-fleet/start-fleet` (the same script people use, so there is one
//! implementation) in a temporary directory that is also a fleet project (fleet.toml,
//! inventory.toml, ssh_config, known_hosts, id_ed25519). Dropping a [`TestFleet`] stops
//! its hosts and their sessions with `stop-fleet`.
//!
//! As root the hosts are `127.0.<net>.<i+1>:22` and the login user is `fleettest` (no
//! password, no sudo rights; `root` may log in with the same key). Every fleet of the
//! test process gets its own `net` block, so fleets never collide.
#![allow(dead_code)] // each test uses only part of the harness

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct TestFleet {
    pub dir: tempfile::TempDir,
    pub hosts: Vec<TestHost>,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct TestHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub pid: i32,
}

/// Fleets started by this process so far; with the process id it picks the net block.
static FLEETS: AtomicU32 = AtomicU32::new(0);

/// start-fleet's exit code when an address is already in use.
const ADDRESS_IN_USE: i32 = 3;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/local-fleet")
        .join(name)
}

/// A net block (the `b` in 127.0.b.x) not used by another fleet of this process; blocks
/// start at an offset from the process id so concurrent test processes rarely collide.
/// Block 0 is left to people running start-fleet by hand.
fn next_net() -> u32 {
    let k = FLEETS.fetch_add(1, Ordering::Relaxed);
    1 + (std::process::id() % 200 + k) % 250
}

impl TestFleet {
    /// Starts `n` hosts `s1`..`sn` (group `sshfleet`) with start-fleet in a fresh temp
    /// dir. Panics with the script's output if they do not start: tests never skip.
    pub fn start(n: usize) -> TestFleet {
        Self::start_with_env(n, &[])
    }

    /// `start` with extra environment for start-fleet (e.g. FLEET_TEST_PATH).
    pub fn start_with_env(n: usize, env: &[(&str, &str)]) -> TestFleet {
        let dir = tempfile::Builder::new()
            .prefix("fleet-sshd-")
            .tempdir()
            .expect("temp dir for the test fleet");
        let mut tries = Vec::new();
        for _ in 0..5 {
            let net = next_net();
            let out = Command::new(script("start-fleet"))
                .arg(n.to_string())
                .arg(dir.path())
                .env("FLEET_TEST_NET", net.to_string())
                .env_remove("FLEET_TEST_PORT")
                .envs(env.iter().copied())
                .output()
                .expect("run examples/local-fleet/start-fleet");
            if out.status.success() {
                let hosts = read_pids(dir.path());
                assert_eq!(
                    hosts.len(),
                    n,
                    "start-fleet wrote {} hosts, not {n}",
                    hosts.len()
                );
                let user = read_user(dir.path());
                return TestFleet { dir, hosts, user };
            }
            tries.push(format!(
                "--- FLEET_TEST_NET={net}: {}\n--- stdout\n{}--- stderr\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
            if out.status.code() != Some(ADDRESS_IN_USE) {
                break;
            }
        }
        panic!(
            "start-fleet {n} {} failed:\n{}",
            dir.path().display(),
            tries.join("\n")
        );
    }

    /// The fleet's directory: a fleet project (fleet.toml, inventory.toml, ...).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self, name: &str) -> &TestHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no test host {name:?} in {:?}", self.names()))
    }

    pub fn names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    /// Kills one host for good with SIGKILL: its listening sshd and every process under
    /// it (per-connection sshds and the commands of their sessions), so connections in
    /// flight drop and new ones are refused. Returns once they are gone.
    pub fn kill(&self, name: &str) {
        let host = self.host(name);
        let config = format!("{}/sshd_config-", self.path().display());
        if !cmdline(host.pid).iter().any(|a| a.contains(&config)) {
            return; // already gone (the pid may even belong to someone else by now)
        }
        // Stop the listener first so it forks no new session, then the whole tree
        // (stopped processes fork no children either), then kill everything at once.
        signal(host.pid, libc::SIGSTOP);
        let mut tree = vec![host.pid];
        loop {
            let more: Vec<i32> = descendants(host.pid)
                .into_iter()
                .filter(|p| !tree.contains(p))
                .collect();
            if more.is_empty() {
                break;
            }
            for &p in &more {
                signal(p, libc::SIGSTOP);
            }
            tree.extend(more);
        }
        for &p in &tree {
            signal(p, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while tree.iter().any(|&p| alive(p)) {
            assert!(
                Instant::now() < deadline,
                "{name}: processes {tree:?} survive SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Plain `ssh -F DIR/ssh_config <name> <cmd>` (key, known_hosts and user from DIR).
    pub fn ssh(&self, name: &str, cmd: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.path().join("ssh_config"))
            .arg(name)
            .arg(cmd)
            .output()
            .expect("run ssh")
    }

    /// `ssh` processes still running for this fleet (see [`ssh_masters_for`]).
    pub fn ssh_processes(&self) -> Vec<String> {
        ssh_masters_for(self.path())
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        match Command::new(script("stop-fleet")).arg(self.path()).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "stop-fleet {} failed: {}\n{}{}",
                self.path().display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("stop-fleet {}: {e}", self.path().display()),
        }
    }
}

/// Command lines (`<pid>: <args>`) of running `ssh` client processes that belong to the
/// fleet in `dir`: an argument mentions `dir` (`-F DIR/ssh_config`, `-i DIR/id_ed25519`,
/// a control socket under DIR, ...) or the process runs in `dir`. Used to check that fleet
/// leaves no ssh process (e.g. a ControlMaster) behind after a run.
pub fn ssh_masters_for(dir: &Path) -> Vec<String> {
    let mut needles = vec![dir.display().to_string()];
    if let Ok(real) = dir.canonicalize() {
        needles.push(real.display().to_string());
    }
    let real_dir = dir.canonicalize().ok();
    let mut found = Vec::new();
    for pid in all_pids() {
        let args = cmdline(pid);
        let Some(argv0) = args.first() else { continue }; // zombie or kernel thread
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let is_ssh =
            comm.trim_end() == "ssh" || Path::new(argv0).file_name() == Some("ssh".as_ref());
        if !is_ssh || !alive(pid) {
            continue;
        }
        let mentions = args
            .iter()
            .any(|a| needles.iter().any(|n| a.contains(n.as_str())));
        let runs_in =
            real_dir.is_some() && std::fs::read_link(format!("/proc/{pid}/cwd")).ok() == real_dir;
        if mentions || runs_in {
            found.push(format!("{pid}: {}", args.join(" ")));
        }
    }
    found
}

fn read_pids(dir: &Path) -> Vec<TestHost> {
    let text = std::fs::read_to_string(dir.join("pids")).expect("start-fleet wrote DIR/pids");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 4, "bad line in {}/pids: {line:?}", dir.display());
            TestHost {
                name: f[0].to_string(),
                pid: f[1].parse().expect("pid"),
                address: f[2].to_string(),
                port: f[3].parse().expect("port"),
            }
        })
        .collect()
}

/// The login user start-fleet chose (`user = "..."` in DIR/fleet.toml).
fn read_user(dir: &Path) -> String {
    let text =
        std::fs::read_to_string(dir.join("fleet.toml")).expect("start-fleet wrote fleet.toml");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("user = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("user in fleet.toml")
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// State and parent of a process, from /proc/PID/stat (after the `(comm)` field).
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (a zombie has already closed its sockets and counts as gone).
fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((state, _)) if state != 'Z' && state != 'X')
}

/// Every live process below `root`.
fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = all_pids()
        .into_iter()
        .filter_map(|p| stat(p).filter(|(s, _)| *s != 'Z').map(|(_, pp)| (p, pp)))
        .collect();
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &(child, parent) in &parents {
            if parent == p && !found.contains(&child) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// Command lines (`<pid>: <args>`) of live processes whose arguments, joined by spaces,
/// contain `needle`: a run's commands on the loopback hosts are processes of this machine too.
pub fn processes_with(needle: &str) -> Vec<String> {
    all_pids()
        .into_iter()
        .filter(|p| *p as u32 != std::process::id() && alive(*p))
        .filter_map(|p| {
            let line = cmdline(p).join(" ");
            line.contains(needle).then(|| format!("{p}: {line}"))
        })
        .collect()
}
