//! Backups with real rsync over real sshd: snapshots, hard links, restore, interruption,
//! refused destinations, unreachable sources.

use crate::support::sshd::TestFleet;
use crate::support::{Output, run_fleet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const ODD: &str = "a file with spaces\nand a newline";

/// A source tree with the awkward cases, readable by root on the "host".
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join(ODD), "odd name\n").unwrap();
    std::fs::write(root.join("stable.txt"), "unchanged\n".repeat(100)).unwrap();
    std::fs::write(root.join("sub/changing.txt"), "version 1\n").unwrap();
    std::fs::write(root.join("secret.key"), "private\n").unwrap();
    std::fs::set_permissions(
        root.join("secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("stable.txt", root.join("link-to-stable")).unwrap();
    std::fs::hard_link(root.join("stable.txt"), root.join("stable-hardlink.txt")).unwrap();
}

/// The fleet dir as a project whose hosts log in as root (to read every file).
fn project(f: &TestFleet, recipe: &str) {
    let inv = std::fs::read_to_string(f.path().join("inventory.toml")).unwrap();
    let inv = inv.replace(
        "groups = [\"sshfleet\"]",
        "groups = [\"sshfleet\"]\nuser = \"root\"",
    );
    std::fs::write(f.path().join("inventory.toml"), inv).unwrap();
    std::fs::create_dir_all(f.path().join("recipes")).unwrap();
    std::fs::write(f.path().join("recipes/bk.rhai"), recipe).unwrap();
}

fn fleet(f: &TestFleet, args: &[&str]) -> Output {
    let out = run_fleet(f.path(), args);
    assert!(f.ssh_processes().is_empty(), "ssh left after {args:?}");
    out
}

fn snapshots(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".partial"))
        .collect();
    v.sort();
    v
}

fn recipe_for(src: &Path) -> String {
    format!(
        r#"
/// Backs up the test tree.
/// @arg to: string = ""  restore target
fn bk(to) {{
    each(hosts(), |h| {{
        let r = rsync::snapshot(h, ["{src}"], #{{ dest_dir: "backups", retention: #{{ last: 10 }} }});
        if to != "" {{ rsync::restore(r.snapshot, h, "{src}", #{{ to: to }}); }}
        print(`${{h.name}} ${{r.files_transferred}} files, ${{r.total_size}} bytes`);
    }});
}}
"#,
        src = src.display()
    )
}

#[test]
fn snapshots_hard_link_unchanged_files_and_restore_byte_identical() {
    let f = TestFleet::start(1);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, &recipe_for(&src));
    fleet(&f, &["bk"]).code(0).stdout_has("s1 | s1 4 files");
    // rsync's quick check compares size and whole-second mtimes: the change gets a
    // later second (set, not waited for; a second snapshot in the same second gets the
    // next second's name from fleet itself).
    std::fs::write(src.join("sub/changing.txt"), "version 2\n").unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(src.join("sub/changing.txt"))
        .and_then(|f| f.set_modified(later))
        .unwrap();
    let restored = f.path().join("restored");
    fleet(&f, &["bk", "--to", restored.to_str().unwrap()])
        .code(0)
        .stdout_has("s1 | s1 1 files");
    let host_dir = f.path().join("backups/s1");
    assert!(f.path().join("backups/.fleet-backups").is_file());
    let snaps = snapshots(&host_dir);
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let inside = |snap: &Path, rel: &str| snap.join(src.strip_prefix("/").unwrap()).join(rel);
    let ino = |p: PathBuf| std::fs::metadata(p).unwrap().ino();
    assert_eq!(
        ino(inside(&snaps[0], "stable.txt")),
        ino(inside(&snaps[1], "stable.txt")),
        "unchanged: hard link"
    );
    assert_ne!(
        ino(inside(&snaps[0], "sub/changing.txt")),
        ino(inside(&snaps[1], "sub/changing.txt"))
    );
    assert_eq!(
        std::fs::read_to_string(inside(&snaps[1], "sub/changing.txt")).unwrap(),
        "version 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(inside(&snaps[0], "sub/changing.txt")).unwrap(),
        "version 1\n"
    );
    assert_eq!(
        ino(inside(&snaps[1], "stable.txt")),
        ino(inside(&snaps[1], "stable-hardlink.txt")),
        "hard links kept"
    );
    // The restore is the tree, byte for byte, with modes and the symlink.
    for rel in [
        ODD,
        "stable.txt",
        "sub/changing.txt",
        "secret.key",
        "stable-hardlink.txt",
    ] {
        assert_eq!(
            std::fs::read(src.join(rel)).unwrap(),
            std::fs::read(restored.join(rel)).unwrap(),
            "{rel}"
        );
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(src.join(rel)), mode(restored.join(rel)), "{rel}");
    }
    assert_eq!(
        std::fs::read_link(restored.join("link-to-stable")).unwrap(),
        Path::new("stable.txt")
    );
    // The journal keeps the results; `fleet backups` shows them.
    fleet(&f, &["backups"])
        .code(0)
        .stdout_has("s1    ok")
        .stdout_has("backups/s1/");
}

#[test]
fn an_interrupted_backup_leaves_the_previous_snapshot_intact() {
    let f = TestFleet::start(1);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, &recipe_for(&src));
    fleet(&f, &["bk"]).code(0);
    let host_dir = f.path().join("backups/s1");
    let before = snapshots(&host_dir);
    // A big (sparse) file makes the next transfer take seconds; the run's timeout cuts it.
    let big = std::fs::File::create(src.join("big.img")).unwrap();
    big.set_len(3 << 30).unwrap();
    let out = fleet(&f, &["bk", "--timeout", "1s"]);
    out.code(124).stderr_has(
        "s1 | FAILED: backup of s1 failed: interrupted; the previous snapshots are untouched",
    );
    assert_eq!(
        snapshots(&host_dir),
        before,
        "no new complete snapshot, the old one kept"
    );
    let old = before[0].join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read_to_string(old.join("sub/changing.txt")).unwrap(),
        "version 1\n"
    );
    // The next good run removes the stale partial and completes.
    std::fs::remove_file(src.join("big.img")).unwrap();
    fleet(&f, &["bk"]).code(0);
    let names: Vec<String> = std::fs::read_dir(&host_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
    assert_eq!(snapshots(&host_dir).len(), 2);
    fleet(&f, &["backups"]).code(0).stdout_has("s1    ok");
}

#[test]
fn a_foreign_destination_is_refused_and_untouched() {
    let f = TestFleet::start(1);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, &recipe_for(&src));
    std::fs::create_dir_all(f.path().join("backups")).unwrap();
    std::fs::write(f.path().join("backups/precious.db"), "do not delete").unwrap();
    fleet(&f, &["bk"])
        .code(3)
        .stderr_has("is not empty and has no .fleet-backups marker");
    let names: Vec<_> = std::fs::read_dir(f.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["precious.db"]);
    assert_eq!(
        std::fs::read_to_string(f.path().join("backups/precious.db")).unwrap(),
        "do not delete"
    );
}

#[test]
fn an_unreachable_source_is_recorded_and_the_others_back_up() {
    let f = TestFleet::start(3);
    let src = f.path().join("src");
    make_tree(&src);
    let inv = std::fs::read_to_string(f.path().join("inventory.toml")).unwrap();
    let inv = inv.replace(
        "groups = [\"sshfleet\"]",
        &format!(
            "groups = [\"sshfleet\"]\nvars = {{ backup_paths = [\"{}\"] }}",
            src.display()
        ),
    );
    std::fs::write(f.path().join("inventory.toml"), inv).unwrap();
    project(&f, "/// Nothing.\nfn bk() {}\n");
    f.kill("s2");
    let out = fleet(&f, &["backup"]);
    out.code(4)
        .stderr_has("s2 | UNREACHABLE: backup of s2 failed: rsync exited with")
        .stderr_has("Connection refused");
    assert_eq!(snapshots(&f.path().join("backups/s1")).len(), 1);
    assert_eq!(snapshots(&f.path().join("backups/s3")).len(), 1);
    let status = fleet(&f, &["backups"]);
    status.code(0).stdout_has("s1    ok").stdout_has("s3    ok");
    let s2 = status.stdout.lines().find(|l| l.starts_with("s2")).unwrap();
    assert!(
        s2.contains("FAILED") && s2.contains("rsync exited with"),
        "{s2}"
    );
}

#[test]
fn a_backup_host_pulls_from_the_source_itself() {
    let f = TestFleet::start(2);
    let src = f.path().join("src");
    make_tree(&src);
    let dest = f.path().join("on-backup-host");
    let key = f.path().join("id_ed25519");
    let known = f.path().join("known_hosts");
    project(
        &f,
        &format!(
            r#"
/// s2 backs up s1.
fn bk() {{
    let r = rsync::snapshot(host("s1"), ["{src}"], #{{
        dest_host: "s2",
        dest_dir: "{dest}",
        ssh_options: "-i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known}",
        retention: #{{ last: 5 }},
    }});
    print(`snapshot ${{r.snapshot}} ${{r.files_transferred}}`);
}}
"#,
            src = src.display(),
            dest = dest.display(),
            key = key.display(),
            known = known.display()
        ),
    );
    fleet(&f, &["bk"])
        .code(0)
        .stdout_has(&format!("snapshot s2:{}/s1/", dest.display()))
        .stdout_has(" 4");
    fleet(&f, &["bk"]).code(0).stdout_has(" 0");
    let snaps = snapshots(&dest.join("s1"));
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert!(dest.join(".fleet-backups").is_file());
    let stable = |s: &PathBuf| {
        std::fs::metadata(s.join(src.strip_prefix("/").unwrap()).join("stable.txt"))
            .unwrap()
            .ino()
    };
    assert_eq!(stable(&snaps[0]), stable(&snaps[1]));
    // The same refusal as on the controller for a foreign directory.
    std::fs::remove_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("theirs"), "x").unwrap();
    fleet(&f, &["bk"])
        .code(3)
        .stderr_has("is not empty and has no .fleet-backups marker");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 1);
}

/// The inventory of `f` with `vars` (TOML inline-table keys) for host `name`, and
/// every other host as it was.
fn set_vars(f: &TestFleet, name: &str, vars: &str) {
    let inv = std::fs::read_to_string(f.path().join("inventory.toml")).unwrap();
    let header = format!("[hosts.{name}]\n");
    let inv = inv.replace(&header, &format!("{header}vars = {{ {vars} }}\n"));
    std::fs::write(f.path().join("inventory.toml"), inv).unwrap();
}

#[test]
fn backups_show_failed_and_never_run_hosts_and_status_agrees() {
    let f = TestFleet::start(3);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, "/// Nothing.\nfn bk() {}\n");
    set_vars(&f, "s1", &format!("backup_paths = [\"{}\"]", src.display()));
    // A path that does not exist: rsync exits 23, the host fails (it is reachable).
    set_vars(&f, "s2", "backup_paths = [\"/nonexistent-fleet-test\"]");
    // s3 is never backed up.
    fleet(&f, &["backup", "--pattern", "all:!s3"])
        .code(3)
        .stderr_has("s2 | FAILED: backup of s2 failed: rsync exited with 23");
    let out = fleet(&f, &["backups"]);
    out.code(0);
    let line = |host: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(host))
            .unwrap_or_else(|| panic!("no {host} in {out:?}"))
            .to_string()
    };
    assert!(
        line("s1").starts_with("s1    ok      backups/s1/"),
        "{out:?}"
    );
    let s2 = line("s2");
    assert!(
        s2.starts_with("s2    FAILED  none") && s2.contains("rsync exited with 23"),
        "{s2}"
    );
    assert_eq!(line("s3"), "s3    never   none");
    // Not a terminal: no colour.
    assert!(!out.stdout.contains('\x1b'));

    let out = fleet(&f, &["backups", "--json"]);
    out.code(0);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let states: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("s1", "ok"), ("s2", "failed"), ("s3", "never")]);
    assert!(
        list[0]["last_snapshot"]
            .as_str()
            .unwrap()
            .contains("backups/s1/")
    );
    assert!(list[0]["total_size"].as_u64().unwrap() > 0);
    assert!(list[0]["last_error"].is_null());
    assert!(
        list[1]["last_error"]
            .as_str()
            .unwrap()
            .contains("exited with 23")
    );
    assert!(list[1]["last_error_at"].is_string());
    assert!(list[2]["last_snapshot"].is_null() && list[2]["job"].is_null());
    // Only the hosts asked for.
    fleet(&f, &["backups", "s3"]).code(0).stdout_lacks("s1");

    let status = fleet(&f, &["status", "--cached"]);
    status.code(0);
    // Without the last column (CERT EXPIRY: `-` for hosts without TLS sites).
    let row = |host: &str| {
        let line = status.stdout.lines().find(|l| l.starts_with(host)).unwrap();
        let line = line.trim_end().strip_suffix('-').unwrap_or(line);
        line.trim_end().to_string()
    };
    assert!(row("s1").ends_with(" ago"), "{}", row("s1"));
    assert!(!row("s1").contains("FAILED"), "{}", row("s1"));
    assert!(row("s2").contains("FAILED ("), "{}", row("s2"));
    assert!(row("s3").ends_with("never"), "{}", row("s3"));
    let json = fleet(&f, &["status", "--cached", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rows[1]["last_backup"]["status"], "failed");
    assert!(
        rows[1]["last_backup"]["error"]
            .as_str()
            .unwrap()
            .contains("rsync exited with 23")
    );
    assert_eq!(rows[0]["last_backup"]["status"], "ok");
    assert!(rows[2]["last_backup"].is_null());
}

#[test]
fn named_jobs_keep_their_own_snapshots_and_results() {
    let f = TestFleet::start(1);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, "/// Nothing.\nfn bk() {}\n");
    let (a, b) = (src.join("sub"), src.join("secret.key"));
    set_vars(
        &f,
        "s1",
        &format!(
            "backups = [{{ name = \"sub\", paths = [\"{}\"], retention = {{ last = 5 }} }}, \
             {{ name = \"key\", paths = [\"{}\"], excludes = [\"nothing\"] }}, \
             {{ name = \"broken\", paths = [\"/nonexistent-fleet-test\"] }}]",
            a.display(),
            b.display()
        ),
    );
    // Every job runs; the host fails with the broken one.
    let out = fleet(&f, &["backup"]);
    out.code(3)
        .stderr_has("s1 | FAILED: backup `broken` of s1 failed: rsync exited with 23")
        .stdout_has("backups/s1/sub/")
        .stdout_has("backups/s1/key/");
    let sub = snapshots(&f.path().join("backups/s1/sub"));
    let key = snapshots(&f.path().join("backups/s1/key"));
    assert_eq!((sub.len(), key.len()), (1, 1));
    assert!(
        sub[0]
            .join(a.strip_prefix("/").unwrap())
            .join("changing.txt")
            .is_file()
    );
    assert!(key[0].join(b.strip_prefix("/").unwrap()).is_file());
    assert!(!key[0].join(a.strip_prefix("/").unwrap()).exists());
    let out = fleet(&f, &["backups"]);
    out.code(0).stdout_has("HOST  JOB     STATE");
    let lines: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0].starts_with("s1    broken  FAILED  none"),
        "{out:?}"
    );
    assert!(
        lines[1].starts_with("s1    key     ok      backups/s1/key/"),
        "{out:?}"
    );
    assert!(
        lines[2].starts_with("s1    sub     ok      backups/s1/sub/"),
        "{out:?}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&fleet(&f, &["backups", "--json"]).stdout).unwrap();
    assert_eq!(json[1]["job"], "key");
    assert_eq!(json[1]["state"], "ok");

    // Bad job definitions are refused before anything runs, naming host and var.
    let inv = std::fs::read_to_string(f.path().join("inventory.toml")).unwrap();
    let fresh: String = inv
        .lines()
        .filter(|l| !l.starts_with("vars = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(f.path().join("inventory.toml"), &fresh).unwrap();
    for (vars, why) in [
        (
            "backups = [{ name = \"a\", paths = [\"/etc\"] }, { name = \"a\", paths = [\"/srv\"] }]",
            "host s1: the var `backups`: job name `a` is used twice",
        ),
        (
            "backups = [{ name = \"../x\", paths = [\"/etc\"] }]",
            "job name `../x` must be lowercase letters",
        ),
        (
            "backups = [{ name = \"a\", paths = [\"/etc\"], rm = true }]",
            "host s1: the var `backups`: unknown field `rm`",
        ),
        (
            "backups = [{ name = \"a\", paths = [\"/etc\"] }], backup_paths = [\"/etc\"]",
            "both `backups` and `backup_paths` are set",
        ),
        (
            "backups = [{ name = \"a\", paths = [\"/etc\"], dest_host = \"s1\" }]",
            "with dest_host, dest_dir must be given",
        ),
    ] {
        std::fs::write(f.path().join("inventory.toml"), &fresh).unwrap();
        set_vars(&f, "s1", vars);
        fleet(&f, &["backup"]).code(3).stderr_has(why);
    }
    assert_eq!(snapshots(&f.path().join("backups/s1/sub")).len(), 1);
}

#[test]
fn restore_from_the_command_line_asks_first_and_takes_the_newest_snapshot() {
    let f = TestFleet::start(1);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, "/// Nothing.\nfn bk() {}\n");
    set_vars(
        &f,
        "s1",
        &format!(
            "backup_paths = [\"{}\"], backup_retention = {{ last = 5 }}",
            src.display()
        ),
    );
    let path = src.display().to_string();
    // Nothing to restore from yet.
    fleet(&f, &["restore", "s1", &path, "--yes"])
        .code(2)
        .stderr_has("the journal has no good backup of s1");
    fleet(&f, &["backup"]).code(0);
    let first = snapshots(&f.path().join("backups/s1"));
    std::fs::write(src.join("sub/changing.txt"), "version 2\n").unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(src.join("sub/changing.txt"))
        .and_then(|f| f.set_modified(later))
        .unwrap();
    fleet(&f, &["backup"]).code(0);
    std::fs::write(src.join("sub/changing.txt"), "damaged\n").unwrap();
    std::fs::remove_file(src.join("stable.txt")).unwrap();

    // No terminal: it needs --yes, and changes nothing without it.
    fleet(&f, &["restore", "s1", &path])
        .code(2)
        .stderr_has("no terminal to ask on")
        .stderr_has("pass --yes");
    // --check shows what would happen and changes nothing.
    fleet(&f, &["--check", "restore", "s1", &path])
        .code(0)
        .stdout_has("would restore ");
    assert_eq!(
        std::fs::read_to_string(src.join("sub/changing.txt")).unwrap(),
        "damaged\n"
    );
    // The newest good snapshot by default.
    fleet(&f, &["restore", "s1", &path, "--yes"])
        .code(0)
        .stdout_has("s1 | restored ");
    assert_eq!(
        std::fs::read_to_string(src.join("sub/changing.txt")).unwrap(),
        "version 2\n"
    );
    assert!(src.join("stable.txt").is_file());
    // An older snapshot by name, to another directory.
    let name = first[0].file_name().unwrap().to_str().unwrap();
    let elsewhere = f.path().join("elsewhere");
    fleet(
        &f,
        &[
            "restore",
            "s1",
            name,
            &format!("{path}/sub"),
            "--to",
            elsewhere.to_str().unwrap(),
            "-y",
        ],
    )
    .code(0);
    assert_eq!(
        std::fs::read_to_string(elsewhere.join("changing.txt")).unwrap(),
        "version 1\n"
    );
    // A path the snapshot does not hold; a relative path.
    fleet(&f, &["restore", "s1", "/nonexistent-fleet-test", "--yes"])
        .code(3)
        .stderr_has("/nonexistent-fleet-test is not in snapshot");
    fleet(&f, &["restore", "s1", "etc", "--yes"])
        .code(2)
        .stderr_has("PATH `etc` must be an absolute path");
    // The journal records the restore like any run.
    fleet(&f, &["history"]).code(0).stdout_has("restore");
    // A backup made from elsewhere (-C) is named relative to the project, so the
    // restore finds it from anywhere.
    let elsewhere = std::process::Command::new(crate::support::fleet_bin())
        .args(["-C", f.path().to_str().unwrap(), "backup"])
        .current_dir("/")
        .output()
        .unwrap();
    assert!(elsewhere.status.success(), "{elsewhere:?}");
    std::fs::write(src.join("sub/changing.txt"), "damaged again\n").unwrap();
    fleet(&f, &["backups"])
        .code(0)
        .stdout_has("s1    ok     backups/s1/");
    fleet(&f, &["restore", "s1", &format!("{path}/sub"), "--yes"]).code(0);
    assert_eq!(
        std::fs::read_to_string(src.join("sub/changing.txt")).unwrap(),
        "version 2\n"
    );
}

#[test]
fn a_backup_host_reaches_the_source_its_own_way_with_backup_ssh() {
    let f = TestFleet::start(2);
    let src = f.path().join("src");
    make_tree(&src);
    project(&f, "/// Nothing.\nfn bk() {}\n");
    let dest = f.path().join("on-backup-host");
    let s1 = f.host("s1").clone();
    // The controller's way to s1 goes nowhere (nothing listens there) and as another
    // user; only backup_ssh, the backup host's way, reaches it.
    let inv = std::fs::read_to_string(f.path().join("inventory.toml")).unwrap();
    let unused = format!("{}.250", s1.address.rsplit_once('.').unwrap().0);
    let inv = inv
        .replacen(
            &format!("address = \"{}\"", s1.address),
            &format!("address = \"{unused}\""),
            1,
        )
        .replacen("user = \"root\"", "user = \"nobody\"", 1);
    std::fs::write(f.path().join("inventory.toml"), inv).unwrap();
    let backup_ssh = format!(
        "-p {} -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} root@{}",
        s1.port,
        f.path().join("id_ed25519").display(),
        f.path().join("known_hosts").display(),
        s1.address
    );
    let job = format!(
        "backups = [{{ name = \"tree\", paths = [\"{}\"], dest_host = \"s2\", dest_dir = \"{}\" }}]",
        src.display(),
        dest.display()
    );
    set_vars(&f, "s1", &format!("{job}, backup_ssh = \"{backup_ssh}\""));
    fleet(&f, &["backup", "--pattern", "s1"])
        .code(0)
        .stdout_has(&format!("s2:{}/s1/tree/", dest.display()));
    let snaps = snapshots(&dest.join("s1/tree"));
    assert_eq!(snaps.len(), 1);
    assert!(
        snaps[0]
            .join(src.strip_prefix("/").unwrap())
            .join("stable.txt")
            .is_file()
    );
    fleet(&f, &["backups", "s1"])
        .code(0)
        .stdout_has("s1    tree  ok     s2:");

    // fleet restore from the backup host: it pushes back the same way.
    let back = f.path().join("restored-from-s2");
    fleet(
        &f,
        &[
            "restore",
            "s1",
            &src.display().to_string(),
            "--job",
            "tree",
            "--to",
            back.to_str().unwrap(),
            "--yes",
        ],
    )
    .code(0);
    assert_eq!(
        std::fs::read(back.join("stable.txt")).unwrap(),
        std::fs::read(src.join("stable.txt")).unwrap()
    );

    // Hostile connection strings never become options: refused before rsync runs.
    let pwned = f.path().join("pwned");
    for (bad, why) in [
        (
            format!(
                "-oProxyCommand=touch {} root@{}",
                pwned.display(),
                s1.address
            ),
            "`-oProxyCommand=touch` is not allowed",
        ),
        (
            format!("-o ProxyCommand=touch {}", pwned.display()),
            "`-o ProxyCommand=touch` is not allowed",
        ),
        ("root@-oProxyCommand=x".to_string(), "bad address"),
        ("-l -oProxyCommand=x edge".to_string(), "bad user"),
    ] {
        let inv = std::fs::read_to_string(f.path().join("inventory.toml")).unwrap();
        let inv: String = inv
            .lines()
            .filter(|l| !l.starts_with("vars = "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(f.path().join("inventory.toml"), inv).unwrap();
        set_vars(&f, "s1", &format!("{job}, backup_ssh = \"{bad}\""));
        fleet(&f, &["backup", "--pattern", "s1"])
            .code(3)
            .stderr_has("host s1: the var `backup_ssh`")
            .stderr_has(why);
        assert!(!pwned.exists());
    }
    assert_eq!(snapshots(&dest.join("s1/tree")).len(), 1);
}

#[test]
fn on_a_terminal_restore_asks_first_and_bad_backups_are_red() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("tree");
    make_tree(&src);
    let p = crate::support::Project::new().file(
        "inventory.toml",
        &format!(
            "[hosts.h1]\nconnection = \"local\"\nvars = {{ backup_paths = [\"{}\"] }}\n\n\
             [hosts.h2]\nconnection = \"local\"\n",
            src.display()
        ),
    );
    p.fleet(&["backup", "--pattern", "h1"]).code(0);
    let shown = crate::support::on_terminal(p.path(), "backups", None);
    assert!(shown.contains("\x1b[31m\x1b[1mnever\x1b[0m"), "{shown:?}");
    assert!(shown.contains("h1    ok  "), "{shown:?}");

    std::fs::write(src.join("stable.txt"), "damaged\n").unwrap();
    let path = src.display().to_string();
    let args = format!("restore h1 {path} --no-progress");
    let shown = crate::support::on_terminal(p.path(), &args, Some("n\r"));
    assert!(
        shown.contains(&format!("Restore {path} from backups/h1/")),
        "{shown}"
    );
    assert!(
        shown.contains("restore not confirmed; nothing was changed"),
        "{shown}"
    );
    assert_eq!(
        std::fs::read_to_string(src.join("stable.txt")).unwrap(),
        "damaged\n"
    );
    let shown = crate::support::on_terminal(p.path(), &args, Some("y\r"));
    assert!(shown.contains("h1 | restored "), "{shown}");
    assert_eq!(
        std::fs::read_to_string(src.join("stable.txt")).unwrap(),
        "unchanged\n".repeat(100)
    );
}
