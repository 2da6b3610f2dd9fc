//! Pull mode: a host runs a recipe from a repository (a bare repo here) on itself,
//! keeps its journal, survives a broken remote with the last good checkout, and pushes
//! its journal to a results branch.

use crate::support::run_fleet;
use std::path::Path;
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

fn publish(work: &Path, version: &str) {
    std::fs::write(
        work.join("recipes/apply.rhai"),
        format!(
            "/// Apply the site's settings to this host.\n/// @arg target: string  file to write\nfn apply(target) {{\n    each(hosts(\"all\"), |h| {{ h.write(target, \"{version} \" + h.vars.role + \"\\n\"); }});\n}}\n"
        ),
    )
    .unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", version]);
    git(work, &["push", "-q", "origin", "main"]);
}

#[test]
fn pull_runs_the_repositorys_recipe_here_and_survives_a_broken_remote() {
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
        "[hosts.box-1]\naddress = \"10.9.9.9\"\nuser = \"nobody\"\nvars = { role = \"web\" }\n\n[hosts.other]\naddress = \"10.9.9.8\"\n",
    )
    .unwrap();
    std::fs::write(work.join(".gitignore"), ".fleet/\n").unwrap();
    publish(&work, "v1");

    let base = tmp.path().join("pull");
    let target = tmp.path().join("applied");
    let here = tmp.path();
    let pull = |extra: &[&str]| {
        let mut args = vec![
            "pull",
            "--repo",
            remote.to_str().unwrap(),
            "--dir",
            base.to_str().unwrap(),
            "--host",
            "box-1",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["apply", target.to_str().unwrap()]);
        run_fleet(here, &args)
    };

    // The host's own entry (made local) and its vars apply; `other` is never touched.
    pull(&[]).code(0).stderr_has("pulled ").stderr_has("box-1");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v1 web\n");

    publish(&work, "v2");
    pull(&[]).code(0);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v2 web\n");

    // The remote is gone: the last good checkout runs, and says so.
    std::fs::rename(&remote, tmp.path().join("moved.git")).unwrap();
    std::fs::remove_file(&target).unwrap();
    pull(&[])
        .code(0)
        .stderr_has("warning: running the last good checkout");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "v2 web\n");
    std::fs::rename(tmp.path().join("moved.git"), &remote).unwrap();

    // The journal stays here and goes to the results branch.
    pull(&["--push-results", "results"])
        .code(0)
        .stderr_has("journal pushed to");
    let files = git(&remote, &["ls-tree", "-r", "--name-only", "results/box-1"]);
    assert_eq!(
        files.lines().filter(|f| f.ends_with(".json")).count(),
        4,
        "{files}"
    );
    let history = run_fleet(
        &base.join("checkout"),
        &[
            "--state-dir",
            base.join("state").to_str().unwrap(),
            "history",
        ],
    );
    history.code(0).stdout_has("apply");
}
