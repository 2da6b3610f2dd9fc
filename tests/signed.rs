//! Signed recipes (`--require-signed`) with real git and `ssh-keygen -Y` signatures:
//! pull mode runs a signed commit, refuses an unsigned one or one signed by a key not
//! in allowed_signers (and runs the last verified commit instead), follows a rewritten
//! history whose head is signed; `fleet pull verify` says who signed; `--recipes-rev`
//! runs a signed tag and refuses an unsigned commit; `fleet replay` too.

use crate::support::run_fleet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// git with an SSH signing key.
fn git_signed(dir: &Path, key: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "-c".to_string(),
        "gpg.format=ssh".to_string(),
        "-c".to_string(),
        format!("user.signingkey={}", key.display()),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    git(dir, &refs)
}

/// An ed25519 key pair without passphrase: the private key's path.
fn key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn allowed_signers(file: &Path, principal: &str, key: &Path) {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(file, format!("{principal} {}", public.trim())).unwrap();
}

fn write_recipe(work: &Path, version: &str) {
    std::fs::write(
        work.join("recipes/apply.rhai"),
        format!(
            "/// Apply the site's settings to this host.\n/// @arg target: string  file to write\nfn apply(target) {{\n    each(hosts(\"all\"), |h| {{ h.write(target, \"{version}\\n\"); }});\n}}\n"
        ),
    )
    .unwrap();
    git(work, &["add", "-A"]);
}

/// A new version of the recipe, committed (signed with `key` when given) and pushed.
fn publish(work: &Path, version: &str, key: Option<&Path>) -> String {
    write_recipe(work, version);
    match key {
        Some(k) => git_signed(work, k, &["commit", "-S", "-qm", version]),
        None => git(work, &["commit", "-qm", version]),
    };
    git(work, &["push", "-q", "--force", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"]).trim().to_string()
}

struct Site {
    tmp: tempfile::TempDir,
    remote: PathBuf,
    work: PathBuf,
    alice: PathBuf,
    mallory: PathBuf,
}

fn site() -> Site {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("site.git");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("recipes")).unwrap();
    git(
        tmp.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(&work, &["init", "-q"]);
    git(
        &work,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    std::fs::write(work.join("fleet.toml"), "").unwrap();
    std::fs::write(
        work.join("inventory.toml"),
        "[hosts.box]\nconnection = \"local\"\n",
    )
    .unwrap();
    std::fs::write(work.join(".gitignore"), ".fleet/\nstate/\n").unwrap();
    let keys = tmp.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let alice = key(&keys, "alice");
    let mallory = key(&keys, "mallory");
    Site {
        tmp,
        remote,
        work,
        alice,
        mallory,
    }
}

/// Every journal record under `state`, as text.
fn journal(state: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![state.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with(".git") {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn pull_runs_only_commits_signed_by_an_allowed_key() {
    let s = site();
    let v1 = publish(&s.work, "v1", Some(&s.alice));
    let base = s.tmp.path().join("pull");
    std::fs::create_dir(&base).unwrap();
    // Deployed with the host: DIR/allowed_signers, found without an option.
    allowed_signers(&base.join("allowed_signers"), "alice@example.com", &s.alice);
    let target = s.tmp.path().join("applied");
    let here = s.tmp.path();
    let repo = s.remote.to_str().unwrap();
    let dir = base.to_str().unwrap();
    let pull = |extra: &[&str]| {
        let mut args = vec!["pull", "--repo", repo, "--dir", dir, "--host", "box"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["apply", target.to_str().unwrap()]);
        run_fleet(here, &args)
    };
    let verify = || {
        run_fleet(
            here,
            &["pull", "verify", "--repo", repo, "--dir", dir, "apply"],
        )
    };

    // A signed commit runs, and verify says who signed it.
    verify()
        .code(0)
        .stdout_has(&format!("commit:     {v1}"))
        .stdout_has("subject:    v1")
        .stdout_has("recipe:     apply")
        .stdout_has("signed:     commit by alice@example.com")
        .stdout_has("key:        ED25519 SHA256:");
    pull(&["--require-signed"])
        .code(0)
        .stderr_has("signed by alice@example.com");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");
    assert_eq!(
        std::fs::read_to_string(base.join("verified"))
            .unwrap()
            .trim(),
        v1
    );

    // The repository is gone: the last verified commit runs, as the last good checkout
    // does without --require-signed.
    let moved = s.tmp.path().join("moved.git");
    std::fs::rename(&s.remote, &moved).unwrap();
    pull(&["--require-signed"])
        .code(0)
        .stderr_has(&format!("running the last verified commit {}", &v1[..10]));
    std::fs::rename(&moved, &s.remote).unwrap();

    // An unsigned commit on top is refused: v1 runs again, the journal says why, exit 2.
    let v2 = publish(&s.work, "v2", None);
    let refusal = format!("refused: commit {} is not signed", &v2[..10]);
    verify().code(2).stdout_has(&refusal);
    std::fs::remove_file(&target).unwrap();
    pull(&["--require-signed"])
        .code(2)
        .stderr_has(&refusal)
        .stderr_has(&format!("running the last verified commit {}", &v1[..10]));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");
    let records = journal(&base.join("state"));
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(
        records
            .iter()
            .any(|r| r.contains("\"refused\"") && r.contains(&refusal)),
        "{records:?}"
    );
    run_fleet(
        &base.join("checkout"),
        &[
            "--state-dir",
            base.join("state").to_str().unwrap(),
            "show",
            "last",
        ],
    )
    .code(0)
    .stdout_has(&format!("{refusal}: the last verified commit ran"))
    .stdout_has(&format!("recipes at {v1}"));
    // The checkout never moved to the unsigned commit.
    assert_eq!(
        git(&base.join("checkout"), &["rev-parse", "HEAD"]).trim(),
        v1
    );

    // Signed by a key not in allowed_signers: refused, the key named.
    let v3 = publish(&s.work, "v3", Some(&s.mallory));
    pull(&["--require-signed"]).code(2).stderr_has(&format!(
        "refused: commit {} is signed by an unknown key (ED25519 SHA256:",
        &v3[..10]
    ));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");

    // The host's own pull.toml (never the repository's fleet.toml) may require it.
    std::fs::write(base.join("pull.toml"), "require_signed = true\n").unwrap();
    pull(&[]).code(2).stderr_has("is signed by an unknown key");

    // A rewritten (force-pushed) history whose head is signed by alice runs: the
    // signature of the commit that runs is trusted, not the history behind it.
    git(&s.work, &["reset", "-q", "--hard", &v1]);
    let v4 = publish(&s.work, "v4", Some(&s.alice));
    pull(&[]).code(0).stderr_has("signed by alice@example.com");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v4\n");
    assert_eq!(
        std::fs::read_to_string(base.join("verified"))
            .unwrap()
            .trim(),
        v4
    );

    // A tag signed by alice on an unsigned commit, pinned with --rev, runs.
    let v5 = publish(&s.work, "v5", None);
    git_signed(
        &s.work,
        &s.alice,
        &["tag", "-s", "-m", "release 5", "rel-5"],
    );
    git(&s.work, &["push", "-q", "origin", "rel-5"]);
    pull(&["--rev", "rel-5"])
        .code(0)
        .stderr_has("tag rel-5 signed by alice@example.com");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v5\n");
    assert_eq!(
        git(&base.join("checkout"), &["rev-parse", "HEAD"]).trim(),
        v5
    );
}

#[test]
fn a_host_with_no_verified_commit_runs_nothing() {
    let s = site();
    publish(&s.work, "v1", None);
    let base = s.tmp.path().join("pull");
    std::fs::create_dir(&base).unwrap();
    let signers = s.tmp.path().join("signers");
    allowed_signers(&signers, "alice@example.com", &s.alice);
    let target = s.tmp.path().join("applied");
    run_fleet(
        s.tmp.path(),
        &[
            "pull",
            "--require-signed",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--repo",
            s.remote.to_str().unwrap(),
            "--dir",
            base.to_str().unwrap(),
            "--host",
            "box",
            "apply",
            target.to_str().unwrap(),
        ],
    )
    .code(2)
    .stderr_has("is not signed; no commit was verified on this host before, so nothing runs");
    assert!(!target.exists());
    assert!(!base.join("checkout").exists());
}

#[test]
fn recipes_rev_and_replay_run_only_signed_revisions() {
    let s = site();
    let signers = s.tmp.path().join("signers");
    allowed_signers(&signers, "alice@example.com", &s.alice);
    let signers = signers.to_str().unwrap();
    // v1: an unsigned commit with a signed annotated tag; v2: an unsigned commit.
    publish(&s.work, "v1", None);
    git_signed(&s.work, &s.alice, &["tag", "-s", "-m", "v1", "v1"]);
    git(&s.work, &["tag", "plain-v1"]);
    publish(&s.work, "v2", None);
    let target = s.tmp.path().join("applied");
    let t = target.to_str().unwrap();
    let w = &s.work;
    run_fleet(
        w,
        &[
            "--recipes-rev",
            "v1",
            "--require-signed",
            "--allowed-signers",
            signers,
            "apply",
            t,
        ],
    )
    .code(0)
    .stderr_has("verified --recipes-rev v1")
    .stderr_has("tag v1 signed by alice@example.com");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");

    // A lightweight tag of the same commit carries no signature; HEAD is unsigned.
    for rev in ["plain-v1", "HEAD"] {
        run_fleet(
            w,
            &[
                "--recipes-rev",
                rev,
                "--require-signed",
                "--allowed-signers",
                signers,
                "apply",
                t,
            ],
        )
        .code(2)
        .stderr_has(&format!("--recipes-rev {rev}: refused: commit "))
        .stderr_has("is not signed");
    }
    // The work tree is never signed.
    run_fleet(
        w,
        &["apply", t, "--require-signed", "--allowed-signers", signers],
    )
    .code(2)
    .stderr_has("the recipes of the work tree are not signed");

    // fleet.toml's require_signed holds every run to it; replay checks the run's commit.
    run_fleet(w, &["apply", t]).code(0);
    std::fs::write(
        w.join("fleet.toml"),
        format!("require_signed = true\nallowed_signers = \"{signers}\"\n"),
    )
    .unwrap();
    run_fleet(w, &["replay", "last"])
        .code(2)
        .stderr_has("refused: commit ")
        .stderr_has("is not signed");
    run_fleet(w, &["--recipes-rev", "v1", "apply", t])
        .code(0)
        .stderr_has("signed by alice@example.com");
    // A run of the signed tag replays: its tag still names the commit that ran.
    std::fs::remove_file(&target).unwrap();
    run_fleet(w, &["replay", "last"])
        .code(0)
        .stderr_has("tag v1 signed by alice@example.com");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");
}

#[test]
fn catalog_repo_checkouts_are_held_to_signatures_too() {
    let s = site();
    let signers = s.tmp.path().join("signers");
    allowed_signers(&signers, "alice@example.com", &s.alice);
    let signers = signers.to_str().unwrap();
    let catalog = s.tmp.path().join("catalog-src");
    std::fs::create_dir(&catalog).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configure/catalog/index.json"),
        catalog.join("index.json"),
    )
    .unwrap();
    git(&catalog, &["init", "-q"]);
    git(&catalog, &["add", "."]);
    git(&catalog, &["commit", "-qm", "unsigned catalog"]);
    let url = catalog.to_str().unwrap();
    let w = &s.work;
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "catalog",
            "--catalog-repo",
            url,
            "--allowed-signers",
            signers,
        ];
        a.extend_from_slice(extra);
        a
    };
    run_fleet(w, &args(&["--require-signed"]))
        .code(2)
        .stderr_has("is not signed");
    assert!(!w.join("catalog").exists(), "the catalog was checked out");
    let signed = {
        git_signed(
            &catalog,
            &s.alice,
            &["commit", "-S", "--allow-empty", "-qm", "signed"],
        );
        git(&catalog, &["rev-parse", "HEAD"]).trim().to_string()
    };
    run_fleet(w, &args(&["--require-signed"]))
        .code(0)
        .stdout_has("nginx");
    assert_eq!(
        git(&w.join("catalog"), &["rev-parse", "HEAD"]).trim(),
        signed
    );
}

/// gpg in a private home: (status ok, stdout).
fn gpg(home: &Path, args: &[&str]) -> String {
    let out = Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--quiet"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the gpg-agent gpg started for a home when dropped (also when a test fails).
struct Agent(PathBuf);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.0)
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

#[test]
fn openpgp_signatures_are_checked_against_the_keyring() {
    if Command::new("gpg").arg("--version").output().is_err()
        || Command::new("gpgv").arg("--version").output().is_err()
    {
        eprintln!("skipped: gpg and gpgv are not installed");
        return;
    }
    let s = site();
    let keyring = |name: &str, uid: &str| {
        let home = s.tmp.path().join(format!("gnupg-{name}"));
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        gpg(
            &home,
            &[
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                "ed25519",
                "sign",
                "never",
            ],
        );
        let fpr = gpg(&home, &["--with-colons", "--list-keys"])
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .unwrap();
        let ring = s.tmp.path().join(format!("{name}.gpg"));
        let out = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--output"])
            .arg(&ring)
            .arg("--export")
            .output()
            .unwrap();
        assert!(out.status.success());
        (home, fpr, ring)
    };
    let (alice_home, alice_fpr, alice_ring) = keyring("alice", "Alice <alice@example.com>");
    let _alice_agent = Agent(alice_home.clone());
    let (mallory_home, mallory_fpr, _) = keyring("mallory", "Mallory <m@example.com>");
    let _mallory_agent = Agent(mallory_home.clone());
    let commit_as = |home: &Path, fpr: &str, version: &str| {
        write_recipe(&s.work, version);
        let out = Command::new("git")
            .env("GNUPGHOME", home)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .arg("-c")
            .arg(format!("user.signingkey={fpr}"))
            .args(["commit", "-S", "-qm", version])
            .current_dir(&s.work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let target = s.tmp.path().join("applied");
    let t = target.to_str().unwrap();
    let ring = alice_ring.to_str().unwrap();
    commit_as(&alice_home, &alice_fpr, "v1");
    run_fleet(
        &s.work,
        &[
            "--recipes-rev",
            "HEAD",
            "--require-signed",
            "--gpg-keyring",
            ring,
            "apply",
            t,
        ],
    )
    .code(0)
    .stderr_has(&format!(
        "commit signed by Alice <alice@example.com> ({alice_fpr})"
    ));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");

    commit_as(&mallory_home, &mallory_fpr, "v2");
    run_fleet(
        &s.work,
        &[
            "--recipes-rev",
            "HEAD",
            "--require-signed",
            "--gpg-keyring",
            ring,
            "apply",
            t,
        ],
    )
    .code(2)
    .stderr_has("is signed by an unknown key");
    // Without a keyring an OpenPGP signature cannot be checked: refused, and said so.
    run_fleet(
        &s.work,
        &["--recipes-rev", "HEAD", "--require-signed", "apply", t],
    )
    .code(2)
    .stderr_has("is signed with OpenPGP, and no keys for it are configured");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1\n");
}
