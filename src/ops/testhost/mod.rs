//! Throwaway Docker hosts for `fleet test`: the image (built once per machine with
//! debootstrap + `docker import`, no registry), containers labelled with their owner so
//! a dead run's leftovers can be found, and the way in (a throwaway key, sshd published
//! on a loopback port, the host key read from the container for a strict known_hosts).
//! Pure builders of the docker command lines and parsers of their output, plus the few
//! procedures that run them on the controller.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The container's PID 1, given to `sh -c` so that any image with sshd works.
pub(crate) const INIT: &str = include_str!("init.sh");
/// The image builder, run with bash.
pub(crate) const BUILD: &str = include_str!("build.sh");

/// The label every `fleet test` container carries; its value says whose it is.
pub(crate) const LABEL: &str = "fleet-testhost";
/// The name prefix of a container `--keep` left: never swept as a dead run's leftover.
pub(crate) const KEPT_PREFIX: &str = "fleet-testhost-kept-";

/// Why Docker could not do what `fleet test` needs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DockerError {
    #[error("fleet test needs Docker, and `docker` is not on PATH")]
    Missing,
    #[error("fleet test needs Docker, and the Docker daemon did not answer: {0}")]
    NotRunning(String),
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
}

/// Why a started container's sshd did not become usable.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SshdWaitError {
    /// Reading the container's host key failed.
    #[error(transparent)]
    HostKey(#[from] DockerError),
    #[error("the container has no ed25519 host key")]
    NoEd25519Key,
    /// `id` is the short container id.
    #[error(
        "container {id} did not answer with an SSH banner on 127.0.0.1:{port} within 30 s (booted: {booted}); does the image have openssh-server?"
    )]
    NoBanner { id: String, port: u16, booted: bool },
}

impl DockerError {
    /// What the user can do about it.
    pub(crate) fn help(&self) -> Option<&'static str> {
        match self {
            DockerError::Missing => Some(
                "install Docker (Debian: apt-get install docker.io) and start it; fleet test runs each test in a throwaway container",
            ),
            DockerError::NotRunning(_) => Some(
                "start it (systemctl start docker), check DOCKER_HOST, or that you may use /var/run/docker.sock (group docker)",
            ),
            _ => None,
        }
    }
}

/// The default image's tag: `fleet-testhost:bookworm-<hash of the builder and init>`,
/// so a fleet with another builder builds another image.
pub(crate) fn image_tag() -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{BUILD}\0{INIT}").as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("fleet-testhost:bookworm-{hex}")
}

/// The label value of this process's containers: `<controller>:<pid>:<run>`.
pub(crate) fn owner_label(controller: &str, pid: u32, run: &str) -> String {
    format!("{controller}:{pid}:{run}")
}

/// The controller and pid of an owner label, when it has that shape.
pub(crate) fn parse_owner(label: &str) -> Option<(&str, u32)> {
    let mut parts = label.rsplitn(3, ':');
    let _run = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let controller = parts.next()?;
    Some((controller, pid))
}

pub(crate) fn version_argv() -> Vec<String> {
    argv(&["version", "--format", "{{.Server.Version}}"])
}

pub(crate) fn image_exists_argv(tag: &str) -> Vec<String> {
    argv(&["image", "inspect", "--format", "{{.Id}}", "--", tag])
}

/// One test container: labelled, NET_ADMIN (ufw), sshd published on a loopback port,
/// fleet's init as PID 1 with the run's public key.
pub(crate) fn run_argv(image: &str, owner: &str, public_key: &str) -> Vec<String> {
    let mut v = argv(&["run", "-d", "--label"]);
    v.push(format!("{LABEL}={owner}"));
    v.extend(argv(&[
        "--cap-add",
        "NET_ADMIN",
        "-p",
        "127.0.0.1::22",
        "-e",
    ]));
    v.push(format!("FLEET_AUTHORIZED_KEY={}", public_key.trim()));
    v.extend(argv(&["--entrypoint", "/bin/sh", "--", image, "-c", INIT]));
    v
}

/// The containers of one owner (`Some`), or of every `fleet test` (`None`), with their
/// name and owner label: `<id> <name> <owner>` per line.
pub(crate) fn list_argv(owner: Option<&str>) -> Vec<String> {
    let filter = match owner {
        Some(o) => format!("label={LABEL}={o}"),
        None => format!("label={LABEL}"),
    };
    let mut v = argv(&["ps", "-a", "--filter"]);
    v.push(filter);
    v.push("--format".into());
    v.push(format!(
        "{{{{.ID}}}} {{{{.Names}}}} {{{{.Label \"{LABEL}\"}}}}"
    ));
    v
}

/// A container of `list_argv`'s output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) owner: String,
}

pub(crate) fn parse_list(text: &str) -> Vec<Listed> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (id, name, owner) = (words.next()?, words.next()?, words.next()?);
            let hex = id.chars().all(|c| c.is_ascii_hexdigit());
            hex.then(|| Listed {
                id: id.to_string(),
                name: name.to_string(),
                owner: owner.to_string(),
            })
        })
        .collect()
}

/// `--keep`: the container is renamed, so no later sweep takes it for a leftover.
pub(crate) fn keep_argv(id: &str, test: &str) -> Vec<String> {
    let short = &id[..id.len().min(12)];
    argv(&["rename", "--", id, &format!("{KEPT_PREFIX}{test}-{short}")])
}

pub(crate) fn remove_argv(ids: &[String]) -> Vec<String> {
    let mut v = argv(&["rm", "-f", "-v", "--"]);
    v.extend(ids.iter().cloned());
    v
}

pub(crate) fn port_argv(id: &str) -> Vec<String> {
    argv(&["port", "--", id, "22/tcp"])
}

/// The loopback port of `docker port ID 22/tcp`.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("127.0.0.1:"))
        .and_then(|p| p.trim().parse().ok())
}

/// A command in the container, outside SSH (docker exec runs no shell: one program).
pub(crate) fn exec_argv(id: &str, program: &[&str]) -> Vec<String> {
    let mut v = argv(&["exec", "--", id]);
    v.extend(program.iter().map(|s| s.to_string()));
    v
}

/// The known_hosts line of a container's ed25519 host key (`type key [comment]`).
pub(crate) fn known_hosts_line(port: u16, host_key: &str) -> Option<String> {
    let mut parts = host_key.split_whitespace();
    let (kind, key) = (parts.next()?, parts.next()?);
    let base64 = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
    (kind == "ssh-ed25519" && base64).then(|| format!("[127.0.0.1]:{port} {kind} {key}"))
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Docker on the controller: the `docker` program on PATH.
pub(crate) struct Docker;

impl Docker {
    fn output(&self, args: &[String]) -> Result<String, DockerError> {
        let shown = format!("docker {}", args.first().map(String::as_str).unwrap_or(""));
        let out = Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => DockerError::Missing,
                _ => DockerError::Spawn {
                    command: shown.clone(),
                    source: e,
                },
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = crate::ops::terminal::neutralise(stderr.trim());
        Err(DockerError::Failed {
            command: shown,
            message: message.lines().last().unwrap_or("no message").to_string(),
        })
    }

    /// Docker is installed and its daemon answers.
    pub(crate) fn check(&self) -> Result<(), DockerError> {
        match self.output(&version_argv()) {
            Ok(_) => Ok(()),
            Err(DockerError::Failed { message, .. }) => Err(DockerError::NotRunning(message)),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn image_exists(&self, tag: &str) -> Result<bool, DockerError> {
        match self.output(&image_exists_argv(tag)) {
            Ok(_) => Ok(true),
            Err(DockerError::Failed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Builds the default image as `tag` (the builder's progress goes to stderr).
    pub(crate) fn build_image(&self, tag: &str, scratch: &Path) -> Result<(), DockerError> {
        let init = scratch.join("fleet-testhost-init");
        std::fs::write(&init, INIT).map_err(|e| DockerError::Spawn {
            command: "write the image's init".into(),
            source: e,
        })?;
        let status = Command::new("bash")
            .arg("-c")
            .arg(BUILD)
            .arg("fleet-testhost")
            .arg(tag)
            .arg(&init)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| DockerError::Spawn {
                command: "bash (the image builder)".into(),
                source: e,
            })?;
        let _ = std::fs::remove_file(&init);
        if status.success() {
            Ok(())
        } else {
            Err(DockerError::Failed {
                command: format!("building {tag}"),
                message: format!("the builder exited with {status} (its output is above)"),
            })
        }
    }

    /// Removes the containers of owners that are gone: this controller's `fleet test`
    /// runs whose process no longer exists (killed before they could clean up).
    pub(crate) fn remove_leftovers(&self, controller: &str) -> Result<usize, DockerError> {
        let listed = parse_list(&self.output(&list_argv(None))?);
        let dead: Vec<String> = listed
            .into_iter()
            .filter(|c| {
                !c.name.starts_with(KEPT_PREFIX)
                    && parse_owner(&c.owner)
                        .is_some_and(|(ctl, pid)| ctl == controller && !alive(pid))
            })
            .map(|c| c.id)
            .collect();
        if !dead.is_empty() {
            self.output(&remove_argv(&dead))?;
        }
        Ok(dead.len())
    }

    /// Renames a container so that it is kept (see `keep_argv`).
    pub(crate) fn keep(&self, id: &str, test: &str) -> Result<(), DockerError> {
        self.output(&keep_argv(id, test)).map(|_| ())
    }

    /// Removes every container of `owner` but those in `keep`.
    pub(crate) fn remove_owned(&self, owner: &str, keep: &[String]) -> Result<(), DockerError> {
        let ids: Vec<String> = parse_list(&self.output(&list_argv(Some(owner)))?)
            .into_iter()
            .map(|c| c.id)
            .filter(|id| !keep.iter().any(|k| k.starts_with(id.as_str())))
            .collect();
        if !ids.is_empty() {
            self.output(&remove_argv(&ids))?;
        }
        Ok(())
    }

    /// Starts one container and waits until its sshd answers; its id and known_hosts line.
    pub(crate) fn start(
        &self,
        image: &str,
        owner: &str,
        public_key: &str,
    ) -> Result<TestHost, DockerError> {
        let id = self
            .output(&run_argv(image, owner, public_key))?
            .trim()
            .to_string();
        let mut host = TestHost {
            id,
            port: 0,
            known_hosts: String::new(),
        };
        // docker-proxy sometimes never reaches a container under load; a restart (a new
        // published port) has always brought it.
        if let Err(first) = self.wait_for_sshd(&mut host) {
            self.output(&argv(&["restart", "--", &host.id]))?;
            self.wait_for_sshd(&mut host)
                .map_err(|second| DockerError::Failed {
                    command: format!("docker run {image}"),
                    message: format!("{first}; after a restart: {second}"),
                })?;
        }
        Ok(host)
    }

    fn wait_for_sshd(&self, host: &mut TestHost) -> Result<(), SshdWaitError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let booted = self
                .output(&exec_argv(
                    &host.id,
                    &["test", "-e", "/run/fleet-testhost-booted"],
                ))
                .is_ok();
            if booted && let Ok(text) = self.output(&port_argv(&host.id)) {
                host.port = parse_port(&text).unwrap_or(0);
            }
            if booted && host.port != 0 && ssh_banner(host.port) {
                let key = self.output(&exec_argv(
                    &host.id,
                    &["cat", "/etc/ssh/ssh_host_ed25519_key.pub"],
                ))?;
                host.known_hosts =
                    known_hosts_line(host.port, &key).ok_or(SshdWaitError::NoEd25519Key)?;
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(SshdWaitError::NoBanner {
                    id: host.id[..host.id.len().min(12)].to_string(),
                    port: host.port,
                    booted,
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A started container: its id, loopback SSH port and known_hosts line.
#[derive(Debug, Clone)]
pub(crate) struct TestHost {
    pub(crate) id: String,
    pub(crate) port: u16,
    pub(crate) known_hosts: String,
}

/// Whether sshd's banner comes back through the published port: docker-proxy accepts a
/// connection before it has reached the container, so a connect alone proves nothing.
fn ssh_banner(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = [0u8; 4];
    s.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A throwaway ed25519 key pair in `dir` (`id_ed25519`, `id_ed25519.pub`); the public key.
pub(crate) fn make_key(dir: &Path) -> Result<(PathBuf, String), DockerError> {
    let private = dir.join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f"])
        .arg(&private)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DockerError::Spawn {
            command: "ssh-keygen (openssh-client)".into(),
            source: e,
        })?;
    if !out.status.success() {
        return Err(DockerError::Failed {
            command: "ssh-keygen".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let public =
        std::fs::read_to_string(dir.join("id_ed25519.pub")).map_err(|e| DockerError::Spawn {
            command: "read the throwaway public key".into(),
            source: e,
        })?;
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sshd_wait_errors_say_what_failed() {
        let key = SshdWaitError::HostKey(DockerError::Missing);
        assert_eq!(
            key.to_string(),
            "fleet test needs Docker, and `docker` is not on PATH"
        );
        assert_eq!(
            SshdWaitError::NoEd25519Key.to_string(),
            "the container has no ed25519 host key"
        );
        let banner = SshdWaitError::NoBanner {
            id: "0123456789ab".into(),
            port: 32768,
            booted: true,
        };
        assert_eq!(
            banner.to_string(),
            "container 0123456789ab did not answer with an SSH banner on 127.0.0.1:32768 within 30 s (booted: true); does the image have openssh-server?"
        );
    }

    #[test]
    fn the_container_command_line_is_pinned() {
        let v = run_argv(
            "fleet-testhost:bookworm-abc",
            "ctl:42:r1",
            "ssh-ed25519 AAAA k\n",
        );
        let mut shown = v.clone();
        shown.pop(); // the init script, checked below
        assert_eq!(
            shown.join(" "),
            "run -d --label fleet-testhost=ctl:42:r1 --cap-add NET_ADMIN -p 127.0.0.1::22 \
             -e FLEET_AUTHORIZED_KEY=ssh-ed25519 AAAA k --entrypoint /bin/sh -- \
             fleet-testhost:bookworm-abc -c"
        );
        assert_eq!(v.last().map(String::as_str), Some(INIT));
    }

    #[test]
    fn listing_and_removing_are_pinned() {
        assert_eq!(
            list_argv(Some("c:1:r")).join(" "),
            "ps -a --filter label=fleet-testhost=c:1:r --format {{.ID}} {{.Names}} {{.Label \"fleet-testhost\"}}"
        );
        assert_eq!(
            keep_argv("0123456789abcdef", "t_1").join(" "),
            "rename -- 0123456789abcdef fleet-testhost-kept-t_1-0123456789ab"
        );
        assert_eq!(list_argv(None)[3], "label=fleet-testhost");
        assert_eq!(
            remove_argv(&["ab12".into(), "cd34".into()]).join(" "),
            "rm -f -v -- ab12 cd34"
        );
        assert_eq!(port_argv("ab12").join(" "), "port -- ab12 22/tcp");
        assert_eq!(
            exec_argv("ab12", &["test", "-e", "/x"]).join(" "),
            "exec -- ab12 test -e /x"
        );
        assert_eq!(
            image_exists_argv("t:1").join(" "),
            "image inspect --format {{.Id}} -- t:1"
        );
    }

    #[test]
    fn docker_output_is_parsed_warily() {
        let listed =
            parse_list("ab12 n1 ctl:1:r\n\nnot-hex n x\ncd34 n2 other:2:s\nef56 no-owner\n");
        assert_eq!(
            listed,
            [
                Listed {
                    id: "ab12".into(),
                    name: "n1".into(),
                    owner: "ctl:1:r".into()
                },
                Listed {
                    id: "cd34".into(),
                    name: "n2".into(),
                    owner: "other:2:s".into()
                }
            ]
        );
        assert_eq!(parse_port("127.0.0.1:49153\n"), Some(49153));
        assert_eq!(parse_port("0.0.0.0:1\n"), None);
        assert_eq!(parse_owner("my-host:123:2026-abcd"), Some(("my-host", 123)));
        assert_eq!(parse_owner("no-pid"), None);
        assert_eq!(
            known_hosts_line(2222, "ssh-ed25519 AAAAC3Nz+/= root@x\n").as_deref(),
            Some("[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz+/=")
        );
        assert_eq!(known_hosts_line(1, "ssh-rsa AAAA"), None);
        assert_eq!(known_hosts_line(1, "ssh-ed25519 a;rm"), None);
    }

    #[test]
    fn the_image_tag_follows_the_builder() {
        let tag = image_tag();
        assert!(tag.starts_with("fleet-testhost:bookworm-"), "{tag}");
        assert_eq!(tag.len(), "fleet-testhost:bookworm-".len() + 12);
    }

    #[test]
    fn a_dead_process_is_not_alive() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
