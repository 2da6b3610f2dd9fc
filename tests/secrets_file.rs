//! The secrets file itself: what kind of file it may be and where it may live.

use crate::support::{Output, Project, spawn_fleet};
use std::time::{Duration, Instant};

const PEEK: &str = "/// Reads a secret.\nfn peek() { each(hosts(), |h| secret(\"db\")); }\n";

/// fleet's output, or a failure when it is still running after `limit`.
fn finishes_within(p: &Project, args: &[&str], limit: Duration) -> Output {
    let mut child = spawn_fleet(p.path(), args);
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("fleet {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn fifo_secrets_file_is_refused() {
    let p = Project::new()
        .file("fleet.toml", "secrets_file = \"secrets.fifo\"\n")
        .local_hosts(1)
        .recipe("peek", PEEK);
    let fifo = std::ffi::CString::new(p.path().join("secrets.fifo").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path in the test's own directory.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // Configured secrets are read (to be masked) before the run starts: a usage error.
    finishes_within(&p, &["peek"], Duration::from_secs(20))
        .code(2)
        .stderr_has("secrets.fifo is not a regular file");
    // A directory is refused the same way, not read as an empty file.
    std::fs::remove_file(p.path().join("secrets.fifo")).unwrap();
    std::fs::create_dir(p.path().join("secrets.fifo")).unwrap();
    finishes_within(&p, &["peek"], Duration::from_secs(20))
        .code(2)
        .stderr_has("secrets.fifo is not a regular file");
}

const WARNING: &str = "secrets file secrets.toml is inside the project and not ignored by git";

/// A `secrets.toml` (mode 0600) in `dir`.
fn secrets_in(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("secrets.toml");
    std::fs::write(&file, "db = \"Sf1-value\"\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn secrets_file_in_project_is_warned() {
    let p = Project::new()
        .file("fleet.toml", "secrets_file = \"secrets.toml\"\n")
        .local_hosts(1)
        .recipe("peek", PEEK);
    secrets_in(p.path());
    // No repository: nothing to commit it to, nothing to say.
    let out = p.fleet(&["peek"]);
    out.code(0);
    assert!(!out.stderr.contains("warning"), "{out}");

    let repo = git2::Repository::init(p.path()).unwrap();
    p.fleet(&["peek"]).code(0).stderr_has(WARNING);
    std::fs::write(p.path().join(".gitignore"), "secrets.toml\n").unwrap();
    let out = p.fleet(&["peek"]);
    out.code(0);
    assert!(!out.stderr.contains("warning"), "{out}");

    // Ignored, but added anyway (`git add -f`): tracked is worse.
    let mut index = repo.index().unwrap();
    index
        .add_path(std::path::Path::new("secrets.toml"))
        .unwrap();
    index.write().unwrap();
    p.fleet(&["peek"])
        .code(0)
        .stderr_has("warning: secrets file secrets.toml is tracked by the git repository")
        .stderr_has("git rm --cached secrets.toml");
}

#[test]
fn fleet_init_ignores_secrets_toml() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("ops");
    crate::support::run_fleet(dir.path(), &["init", "ops"]).code(0);
    assert!(
        std::fs::read_to_string(project.join(".gitignore"))
            .unwrap()
            .lines()
            .any(|l| l == "secrets.toml")
    );
    let config = std::fs::read_to_string(project.join("fleet.toml")).unwrap();
    std::fs::write(
        project.join("fleet.toml"),
        config + "secrets_file = \"secrets.toml\"\n",
    )
    .unwrap();
    secrets_in(&project);
    let out = crate::support::run_fleet(&project, &["exec", "all", "--", "true"]);
    out.code(0);
    assert!(!out.stderr.contains("warning"), "{out}");
}
