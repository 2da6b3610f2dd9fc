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
