//! A temporary fleet project and a way to run the real `fleet` binary in it.

pub mod acme;
pub mod browser;
pub mod containers;
pub mod proxmox;
pub mod sshd;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Project {
    dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "exit code\n{self}");
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(self.stdout.contains(text), "stdout lacks {text:?}\n{self}");
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}\n{self}");
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, text: &str) -> &Self {
        assert!(!self.stdout.contains(text), "stdout has {text:?}\n{self}");
        self
    }

    /// The recap's row of `host` (its line with ok, changed or failed).
    #[track_caller]
    pub fn recap_row(&self, host: &str) -> String {
        self.stderr
            .lines()
            .find(|l| {
                l.starts_with(host)
                    && (l.contains(" ok") || l.contains(" changed") || l.contains(" failed"))
            })
            .unwrap_or_else(|| panic!("no recap row for {host}: {self}"))
            .to_string()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- code {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Project {
    /// An empty project: a fleet.toml and nothing else.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("fleet.toml"), "").unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, name: &str, text: &str) -> Project {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn recipe(self, name: &str, text: &str) -> Project {
        self.file(&format!("recipes/{name}.rhai"), text)
    }

    /// An inventory of `n` local hosts `h1`..`hn`, all in group `local`, the even ones
    /// also in `even`.
    pub fn local_hosts(self, n: usize) -> Project {
        let mut text = String::new();
        for i in 1..=n {
            let groups = if i % 2 == 0 {
                r#"["local", "even"]"#
            } else {
                r#"["local"]"#
            };
            text.push_str(&format!(
                "[hosts.h{i}]\nconnection = \"local\"\ngroups = {groups}\nvars = {{ n = {i} }}\n\n"
            ));
        }
        self.file("inventory.toml", &text)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    pub fn fleet(&self, args: &[&str]) -> Output {
        run_fleet(self.dir.path(), args)
    }
}

/// Gives the project in `dir` a secrets file (`secrets.toml`, mode 0600, holding
/// `lines`) named by its fleet.toml, so runs mask those values.
pub fn add_secrets_file(dir: &Path, lines: &str) {
    use std::os::unix::fs::PermissionsExt;
    let toml = std::fs::read_to_string(dir.join("fleet.toml")).unwrap();
    std::fs::write(
        dir.join("fleet.toml"),
        format!("secrets_file = \"secrets.toml\"\n{toml}"),
    )
    .unwrap();
    std::fs::write(dir.join("secrets.toml"), lines).unwrap();
    std::fs::set_permissions(
        dir.join("secrets.toml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

pub fn fleet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fleet"))
}

pub fn run_fleet(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(fleet_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("fleet runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// fleet started in the background (to signal it, or to kill a host under it), with
/// stdout and stderr piped.
pub fn spawn_fleet(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(fleet_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fleet starts")
}

/// `fleet …` in a pseudo-terminal (util-linux `script`), answering `answer` when asked;
/// what the terminal showed.
pub fn on_terminal(dir: &Path, args: &str, answer: Option<&str>) -> String {
    let command = format!("{} -C {} {args}", fleet_bin().display(), dir.display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(answer) = answer {
        std::thread::sleep(std::time::Duration::from_millis(700));
        std::io::Write::write_all(&mut stdin, answer.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of docs/recipes.md from the line `first_line` to the end of its code block.
pub fn guide_block(first_line: &str) -> String {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes.md"))
            .unwrap();
    let start = guide
        .find(first_line)
        .unwrap_or_else(|| panic!("no block {first_line} in docs/recipes.md"));
    let rest = &guide[start..];
    rest[..rest.find("```").unwrap()].to_string()
}
