//! Secrets never show: not on the terminal, in the log, the journal, an error, a child's
//! environment or a snapshot, and fleet's own files and the files it writes for secrets
//! are private.

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

/// fleet in `p` with `env` added, under umask 022 (the usual one, that makes new files
/// readable by every local user unless fleet sets their mode).
fn run_umask_022(p: &Project, env: &[(&str, &str)], args: &[&str]) -> Output {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(crate::support::fleet_bin())
        .args(args)
        .current_dir(p.path())
        .envs(env.iter().copied())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A project with one local host and a secrets file (0600) holding `secrets`.
fn with_secrets(secrets: &str) -> Project {
    let p = Project::new()
        .file("fleet.toml", "secrets_file = \"secrets.toml\"\n")
        .file("secrets.toml", secrets)
        .local_hosts(1);
    std::fs::set_permissions(
        p.path().join("secrets.toml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    p
}

/// Terminal output, every log and the journal (git objects aside: they are compressed).
fn everywhere(p: &Project, out: &Output) -> String {
    format!(
        "{out}\n{}\n{}",
        all_files_under(&p.path().join(".fleet/logs")),
        all_files_under(&p.path().join("state"))
    )
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn local_commands_do_not_inherit_fleet_secrets() {
    let p = with_secrets("api = \"FileOnly-7731\"\n");
    let out = run_umask_022(
        &p,
        &[("FLEET_SECRET_UNREAD", "EnvOnly-5512")],
        &["exec", "h1", "--", "env; echo \"[$FLEET_SECRET_UNREAD]\""],
    );
    out.code(0).stdout_has("[]");
    let seen = everywhere(&p, &out);
    assert!(!seen.contains("FLEET_SECRET_UNREAD="), "{seen}");
    assert!(!seen.contains("EnvOnly-5512"), "{seen}");
}

#[test]
fn configured_secrets_are_masked_without_being_read() {
    // No recipe calls secret(): the host's file still shows *** for both.
    let p = with_secrets("api = \"FileOnly-7731\"\n")
        .file("on-host.txt", "token FileOnly-7731 and EnvOnly-5512\n");
    let out = run_umask_022(
        &p,
        &[("FLEET_SECRET_UNREAD", "EnvOnly-5512")],
        &["exec", "h1", "--", "cat on-host.txt; cat on-host.txt >&2"],
    );
    out.code(0).stdout_has("token *** and ***");
    let seen = everywhere(&p, &out);
    assert!(seen.contains("token *** and ***"), "{seen}");
    assert!(
        !seen.contains("FileOnly-7731") && !seen.contains("EnvOnly-5512"),
        "{seen}"
    );
}

#[test]
fn check_diff_hides_old_secret_lines() {
    let p = with_secrets("db = \"NewPass-4410\"\n")
        .file("app.conf", "user = app\npassword = OldPass-3309\n");
    let conf = p.path().join("app.conf");
    let p = p.recipe(
        "rotate",
        &format!(
            "/// Rotates the password.\nfn rotate() {{\n    each(hosts(), |h| {{\n        \
             h.write(\"{}\", \"user = app\\npassword = \" + secret(\"db\") + \"\\n\");\n    \
             }});\n}}\n",
            conf.display()
        ),
    );
    let out = run_umask_022(&p, &[], &["--check", "rotate"]);
    out.code(0)
        .stdout_has("would write")
        .stdout_has("(content hidden: holds a secret)");
    let seen = everywhere(&p, &out);
    assert!(!seen.contains("OldPass-3309"), "{seen}");
    assert!(!seen.contains("NewPass-4410"), "{seen}");
    assert_eq!(p.read("app.conf"), "user = app\npassword = OldPass-3309\n");
}

/// Snapshots `on-host.conf` and `on-host.bin` of the project (the local host's files).
fn snapshot_project(p: Project) -> Project {
    let dir = p.path().display().to_string();
    p.recipe(
        "snap",
        &format!(
            "/// Snapshots.\nfn snap() {{\n    each(hosts(), |h| {{\n        \
             h.snapshot_config([\"{dir}/on-host.conf\", \"{dir}/on-host.bin\"]);\n    \
             }});\n}}\n"
        ),
    )
}

/// Every blob of the state repository's HEAD, concatenated.
fn head_blobs(state: &std::path::Path) -> Vec<u8> {
    let repo = git2::Repository::open(state).unwrap();
    let tree = repo.head().unwrap().peel_to_tree().unwrap();
    let mut all = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if let Ok(blob) = entry.to_object(&repo).and_then(|o| o.peel_to_blob()) {
            all.extend_from_slice(blob.content());
        }
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    all
}

#[test]
fn snapshot_config_masks_secrets() {
    let p = snapshot_project(with_secrets("api = \"FileSnap-6620\"\n")).file(
        "on-host.conf",
        "key = FileSnap-6620\npassword = EnvSnap-8812\n",
    );
    std::fs::write(
        p.path().join("on-host.bin"),
        b"\xff\x00EnvSnap-8812\xfe\x00FileSnap-6620\n",
    )
    .unwrap();
    let out = run_umask_022(&p, &[("FLEET_SECRET_DB", "EnvSnap-8812")], &["snap"]);
    out.code(0);
    let stored = p
        .path()
        .join("state/hosts/h1")
        .join(p.path().strip_prefix("/").unwrap().join("on-host.conf"));
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap(),
        "key = ***\npassword = ***\n"
    );
    let blobs = String::from_utf8_lossy(&head_blobs(&p.path().join("state"))).into_owned();
    assert!(blobs.contains("\u{fffd}\0***\u{fffd}\0***"), "{blobs:?}");
    assert!(
        !blobs.contains("EnvSnap-8812") && !blobs.contains("FileSnap-6620"),
        "{blobs:?}"
    );
}

#[test]
fn logs_and_state_are_private() {
    let p = snapshot_project(with_secrets("api = \"x-unused-1\"\n"))
        .file("on-host.conf", "port = 22\n")
        .file("on-host.bin", "bin\n");
    run_umask_022(&p, &[], &["snap"]).code(0);
    let root = p.path();
    for dir in [".fleet", ".fleet/logs", "state", "state/.git"] {
        assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
    }
    let in_dir = |dir: &str| -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                match e.path() {
                    p if p.is_dir() => stack.push(p),
                    p => found.push(p),
                }
            }
        }
        found
    };
    let logs = in_dir(".fleet/logs");
    let records = in_dir("state/runs");
    let snapshots = in_dir("state/hosts");
    assert!(!logs.is_empty() && !records.is_empty() && snapshots.len() == 3);
    for file in logs.iter().chain(&records).chain(&snapshots) {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
}

#[test]
fn download_keeps_remote_mode() {
    let p = Project::new().local_hosts(1).file("key", "private\n");
    std::fs::set_permissions(p.path().join("key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = p.path().join("key");
    let p = p.recipe(
        "fetch",
        &format!(
            "/// Downloads.\nfn fetch() {{\n    each(hosts(), |h| {{\n        \
             h.download(\"{k}\", \"got/key\");\n        \
             h.download(\"{k}\", \"got/shared\", #{{ mode: \"0640\" }});\n    }});\n}}\n",
            k = key.display()
        ),
    );
    run_umask_022(&p, &[], &["fetch"]).code(0);
    assert_eq!(p.read("got/key"), "private\n");
    assert_eq!(mode(&p.path().join("got/key")), 0o600);
    assert_eq!(mode(&p.path().join("got/shared")), 0o640);
    // A mode that differs is a change to make even when the bytes are the same.
    std::fs::set_permissions(
        p.path().join("got/key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    run_umask_022(&p, &[], &["fetch"]).code(0);
    assert_eq!(mode(&p.path().join("got/key")), 0o600);
}

#[test]
fn write_of_secret_content_is_0600() {
    let p = with_secrets("db = \"WritePass-2290\"\n").file("was-public.conf", "old\n");
    let dir = p.path().display().to_string();
    let p = p.recipe(
        "deploy",
        &format!(
            "/// Writes.\nfn deploy() {{\n    each(hosts(), |h| {{\n        \
             h.write(\"{dir}/new.conf\", \"pw = \" + secret(\"db\") + \"\\n\");\n        \
             h.write(\"{dir}/was-public.conf\", \"pw = \" + secret(\"db\") + \"\\n\");\n        \
             h.write(\"{dir}/asked.conf\", \"pw = \" + secret(\"db\") + \"\\n\", #{{ mode: \"0640\" }});\n        \
             h.write(\"{dir}/plain.conf\", \"port = 22\\n\");\n    }});\n}}\n"
        ),
    );
    std::fs::set_permissions(
        p.path().join("was-public.conf"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    run_umask_022(&p, &[], &["deploy"]).code(0);
    assert_eq!(p.read("new.conf"), "pw = WritePass-2290\n");
    assert_eq!(mode(&p.path().join("new.conf")), 0o600);
    assert_eq!(mode(&p.path().join("was-public.conf")), 0o600);
    assert_eq!(mode(&p.path().join("asked.conf")), 0o640);
    assert_eq!(mode(&p.path().join("plain.conf")), 0o644);
}
