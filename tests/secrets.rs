//! Secrets never show: not on the terminal, in the log, the journal or an error.

use crate::support::{Output, Project};
use std::os::unix::fs::PermissionsExt;

const LEAKY: &str = r#"
/// Does everything a careless recipe could do with secrets.
fn leaky() {
    let long = secret("db-password");
    let short = secret("short");
    let key = secret("key");
    each(hosts(), |h| {
        h.run("printf '%s\\n' " + quote(key));
        h.run(`echo ${long}; echo ${short}; echo "${long}" >&2`);
        print(`printed ${long} and ${short}`);
        h.run(`echo "part one ${short}"; echo "${long}" | tr 'a-z' 'A-Z'`);
        h.run(`test ${long} = nothing`);
    });
}
"#;

fn project() -> Project {
    let p = Project::new()
        .file("fleet.toml", "secrets_file = \"secrets.toml\"\n")
        .file(
            "secrets.toml",
            "short = \"Pa55\"\ndb-password = \"unused-in-file\"\nkey = \"\"\"\n-----BEGIN KEY-----\nAAAAfirstline\nBBBBsecondline\n-----END KEY-----\"\"\"\n",
        )
        .local_hosts(2)
        .recipe("leaky", LEAKY);
    std::fs::set_permissions(
        p.path().join("secrets.toml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    p
}

fn run_with_env(p: &Project, args: &[&str]) -> Output {
    let out = std::process::Command::new(crate::support::fleet_bin())
        .args(args)
        .current_dir(p.path())
        .env("FLEET_SECRET_DB_PASSWORD", "xPa55word-42")
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn all_files_under(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with(".git") {
                    stack.push(p);
                }
            } else {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    text
}

#[test]
fn a_secret_echoed_by_a_command_never_appears_anywhere() {
    let p = project();
    let out = run_with_env(&p, &["leaky", "-v"]);
    out.code(3)
        .stdout_has("h1 | printed *** and ***")
        .stderr_has("h1 |   ***")
        .stderr_has("h1 | FAILED: command `test *** = nothing` on h1 exited with 1");
    for place in [&out.stdout, &out.stderr] {
        // The file's value of db-password is never read: the environment wins.
        assert!(
            !place.contains("Pa55") && !place.contains("word-42"),
            "{out}"
        );
        assert!(
            !place.contains("firstline") && !place.contains("secondline"),
            "{out}"
        );
    }
    let logs = all_files_under(&p.path().join(".fleet/logs"));
    assert!(
        logs.contains("***") && logs.contains("part one ***"),
        "{logs}"
    );
    assert!(
        !logs.contains("Pa55") && !logs.contains("word-42"),
        "{logs}"
    );
    assert!(
        !logs.contains("firstline") && !logs.contains("secondline"),
        "{logs}"
    );
    let journal = all_files_under(&p.path().join("state"));
    assert!(journal.contains("***"), "{journal}");
    assert!(
        !journal.contains("Pa55") && !journal.contains("word-42"),
        "{journal}"
    );
    assert!(
        !journal.contains("firstline") && !journal.contains("secondline"),
        "{journal}"
    );
    let repo = git2::Repository::open(p.path().join("state")).unwrap();
    let message = repo
        .head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .message()
        .unwrap()
        .to_string();
    assert!(!message.contains("Pa55"), "{message}");
}

#[test]
fn a_readable_secrets_file_and_a_missing_secret_are_refused_clearly() {
    let p = project();
    std::fs::set_permissions(
        p.path().join("secrets.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    run_with_env(&p, &["leaky"])
        .code(2)
        .stderr_has("has mode 0644; it must be readable only by its owner");
    let p = project().recipe(
        "missing",
        "/// Missing.\nfn missing() { print(secret(\"api-token\")); }\n",
    );
    run_with_env(&p, &["missing"])
        .code(2)
        .stderr_has("secret `api-token` is not set: add it to")
        .stderr_has("FLEET_SECRET_API_TOKEN");
}
