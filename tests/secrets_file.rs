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
    finishes_within(&p, &["peek"], Duration::from_secs(20))
        .code(3)
        .stderr_has("secrets.fifo is not a regular file");
    // A directory is refused the same way, not read as an empty file.
    std::fs::remove_file(p.path().join("secrets.fifo")).unwrap();
    std::fs::create_dir(p.path().join("secrets.fifo")).unwrap();
    finishes_within(&p, &["peek"], Duration::from_secs(20))
        .code(3)
        .stderr_has("secrets.fifo is not a regular file");
}
