//! The controller side of recipes: `local::`, `json::`, `csv::`, time, `h.sync`, and
//! maps whose missing keys read as `()`.

use crate::support::sshd::TestFleet;
use crate::support::{Project, run_fleet};

fn records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let out = run_fleet(dir, &["history", "--json"]);
    out.code(0);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The newest journal record.
fn last_record(dir: &std::path::Path) -> serde_json::Value {
    let mut all = records(dir);
    all.sort_by_key(|r| r["run_id"].as_str().unwrap_or_default().to_string());
    all.pop().expect("a journal record")
}

/// Every command the journal recorded for `host` in `record`.
fn commands_of(record: &serde_json::Value, host: &str) -> Vec<String> {
    let h = record["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("no {host} in {record:#}"));
    h["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["commands"].as_array().unwrap().clone())
        .map(|c| c["command"].as_str().unwrap().to_string())
        .collect()
}

const REPORT: &str = r#"
/// Writes a report of the hosts on this machine.
/// @arg note: string = "first"  a note
fn hosts_report(note) {
    let rows = each(hosts(), |h| #{ host: h.name, port: h.vars.port ?? 1, note: note });
    csv::write("out/hosts.csv", rows, ["host", "port", "note"]);
    local::write("out/hosts.json", json::to_string(rows) + "\n");
    let back = json::parse(local::read("out/hosts.json"));
    print(`parsed ${back.len()} rows, first port ${back[0].port}`);
    print(`listed ${local::list("out")}`);
    print(`csv only ${local::list("", #{ recursive: true, glob: "*.csv" })}`);
    print(`exists ${local::exists("out/hosts.csv")} ${local::exists("out/nope")}`);
    print(`missing ${host("h1").vars.missing ?? 1}`);
    print(`day ${timestamp(0, "%F %T")} ${duration("1h 30m")} ${now() > 1700000000}`);
    print(`stamp ${timestamp("%Y").len()}`);
}
"#;

#[test]
fn local_files_json_csv_and_time_from_a_recipe() {
    let p = Project::new().local_hosts(2).recipe("hosts_report", REPORT);
    let out = p.fleet(&["hosts-report"]);
    out.code(0)
        .stdout_has("parsed 2 rows, first port 1")
        .stdout_has(r#"listed ["out/hosts.csv", "out/hosts.json"]"#)
        .stdout_has(r#"csv only ["out/hosts.csv"]"#)
        .stdout_has("exists true false")
        .stdout_has("missing 1")
        .stdout_has("day 1970-01-01 00:00:00 5400 true")
        .stdout_has("stamp 4")
        // The writes are changes of this machine, not of a host.
        .stderr_has("this machine: 2 changes (write out/hosts.csv, write out/hosts.json)")
        .stderr_has("2 ok, 0 changed");
    assert_eq!(
        p.read("out/hosts.csv"),
        "host,port,note\nh1,1,first\nh2,1,first\n"
    );
    let record = last_record(p.path());
    assert_eq!(
        record["local_changes"],
        serde_json::json!(["write out/hosts.csv", "write out/hosts.json"])
    );
    // The same content again: no change.
    let again = p.fleet(&["hosts-report"]);
    again.code(0);
    assert!(!again.stderr.contains("this machine"), "{again}");
    assert!(last_record(p.path()).get("local_changes").is_none());
    // --check: printed with a diff, not written.
    let check = p.fleet(&["hosts-report", "--note", "a, \"b\"", "--check"]);
    check
        .code(0)
        .stdout_has("would write out/hosts.csv on this machine: replace its content")
        .stdout_has("-h1,1,first")
        .stdout_has(r#"+h1,1,"a, ""b""""#)
        .stderr_has("this machine: 2 changes (would be made)");
    assert_eq!(
        p.read("out/hosts.csv"),
        "host,port,note\nh1,1,first\nh2,1,first\n"
    );
}

#[test]
fn local_paths_cannot_leave_the_project() {
    let outside = tempfile::tempdir().unwrap();
    let p = Project::new().local_hosts(1).recipe(
        "escape",
        r#"
/// Tries to leave the project.
/// @arg path: string = "x"  where
fn escape(path) {
    local::write(path, "owned\n");
}
"#,
    );
    std::os::unix::fs::symlink(outside.path(), p.path().join("link")).unwrap();
    for (path, why) in [
        ("/tmp/fleet-escape", "is absolute"),
        ("../escape", "leaves the project root"),
        ("link/x", "through a symbolic link"),
    ] {
        p.fleet(&["escape", "--path", path]).code(2).stderr_has(why);
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

const SYNC: &str = r#"
/// Syncs the site.
/// @arg pattern: string = "all"  hosts
/// @arg dest: string = "/tmp/x"  where
/// @arg delete: bool = false  remove extra files
fn site(pattern, dest, delete) {
    each(hosts(pattern), |h| {
        let r = h.sync("site", dest, #{ delete: delete, exclude: ["*.tmp"], mode: "D755,F644" });
        print(`changed ${r.changed} created ${r.created.len()} updated ${r.updated.len()} deleted ${r.deleted.len()}`);
    });
}
"#;

fn site(dir: &std::path::Path) {
    for (f, text) in [
        ("site/index.html", "<h1>hi</h1>\n"),
        ("site/css/a.css", "body {}\n"),
        ("site/it's a file.txt", "odd\n"),
        ("site/junk.tmp", "never sent\n"),
    ] {
        let path = dir.join(f);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn a_directory_syncs_over_the_master_in_one_command_then_is_unchanged() {
    let f = TestFleet::start(1);
    std::fs::create_dir_all(f.path().join("recipes")).unwrap();
    std::fs::write(f.path().join("recipes/site.rhai"), SYNC).unwrap();
    site(f.path());
    let dest = format!("/tmp/fleet-sync-{}", std::process::id());
    let out = run_fleet(f.path(), &["site", "s1", "--dest", &dest]);
    out.code(0)
        .stdout_has("changed true created 5")
        .stderr_has("0 ok, 1 changed");
    // One command for the whole directory: rsync over the host's master connection.
    let commands = commands_of(&last_record(f.path()), "s1");
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert!(
        commands[0].starts_with("rsync ") && commands[0].contains("ControlPath="),
        "{commands:?}"
    );
    let listing = f.ssh(
        "s1",
        &format!("cd {dest} && find . -type f | sort && stat -c %a css/a.css"),
    );
    assert_eq!(
        String::from_utf8_lossy(&listing.stdout),
        "./css/a.css\n./index.html\n./it's a file.txt\n644\n"
    );
    // Nothing differs: unchanged, still one command.
    let again = run_fleet(f.path(), &["site", "s1", "--dest", &dest]);
    again
        .code(0)
        .stdout_has("changed false created 0 updated 0 deleted 0")
        .stderr_has("1 ok, 0 changed");
    assert_eq!(commands_of(&last_record(f.path()), "s1").len(), 1);
    // --check: the names that would change, and nothing changes.
    std::fs::write(f.path().join("site/index.html"), "<h1>bye</h1>\n").unwrap();
    std::fs::remove_file(f.path().join("site/css/a.css")).unwrap();
    std::fs::write(f.path().join("site/new.txt"), "new\n").unwrap();
    let check = run_fleet(
        f.path(),
        &["site", "s1", "--dest", &dest, "--delete", "--check"],
    );
    check
        .code(0)
        .stdout_has(&format!("s1 | would sync site/ to s1:{dest}/:"))
        .stdout_has("s1 |   + new.txt")
        .stdout_has("s1 |   ~ index.html")
        .stdout_has("s1 |   - css/a.css")
        .stderr_has("0 ok, 1 changed");
    let after = f.ssh(
        "s1",
        &format!("cd {dest} && find . -type f | sort && cat index.html"),
    );
    assert_eq!(
        String::from_utf8_lossy(&after.stdout),
        "./css/a.css\n./index.html\n./it's a file.txt\n<h1>hi</h1>\n"
    );
    // For real, with delete.
    run_fleet(f.path(), &["site", "s1", "--dest", &dest, "--delete"])
        .code(0)
        .stdout_has("changed true created 1 updated")
        .stdout_has("deleted 1");
    assert!(f.ssh_processes().is_empty());
    f.ssh("s1", &format!("rm -rf {dest}"));
}

#[test]
fn a_local_host_syncs_with_plain_rsync_and_bad_inputs_are_refused() {
    let p = Project::new().local_hosts(1).recipe("site", SYNC);
    site(p.path());
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().join("www");
    let d = d.to_str().unwrap();
    p.fleet(&["site", "--dest", d])
        .code(0)
        .stdout_has("changed true");
    assert_eq!(
        std::fs::read_to_string(dest.path().join("www/index.html")).unwrap(),
        "<h1>hi</h1>\n"
    );
    assert!(!dest.path().join("www/junk.tmp").exists());
    p.fleet(&["site", "--dest", d])
        .code(0)
        .stdout_has("changed false")
        .stderr_has("1 ok, 0 changed");
    p.fleet(&["site", "--dest", "relative/dir"])
        .code(3)
        .stderr_has("must be an absolute path");
}
