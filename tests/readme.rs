//! README.md is a test: every `fleet …` command line in its code blocks runs, in README
//! order, against a fixture project made by `fleet init` (local hosts `web-1` and
//! `web-3`). Each must parse — no usage error from the command line — and exit as the
//! README implies: 0, unless the table below says why this fixture cannot (no Proxmox
//! node, no VM). Commands that would change this machine get `--check`; placeholders
//! (a URL, `/etc`, `/tmp/lf`) are mapped into the fixture. When someone renames a flag,
//! this test names the README line.

use crate::support::fleet_bin;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lines that cannot end well in the fixture, by a piece of the line: the exit code
/// expected and why.
const EXPECTED: &[(&str, i32, &str)] = &[
    (
        "provision web-3",
        2,
        "no Proxmox node in the fixture's inventory",
    ),
    ("fleet vms", 2, "no Proxmox node in the fixture's inventory"),
    (
        "fleet pull verify",
        2,
        "the fixture's commits are not signed and it has no allowed_signers",
    ),
    (
        "provision ct-1",
        2,
        "no Proxmox node in the fixture's inventory",
    ),
    ("terminate web-3", 2, "web-3 is not a VM fleet made"),
    (
        "20261124T020000Z",
        3,
        "no snapshot of that name: the host fails",
    ),
    ("config-diff web-3", 2, "no captured configuration yet"),
    (
        "fleet guest ",
        2,
        "the fixture's hosts are not Proxmox guests",
    ),
    (
        "fleet image fetch",
        2,
        "no Proxmox node in the fixture's inventory",
    ),
];

/// Commands that change a machine; their README lines run with `--check` here.
const CHANGING: &[&str] = &[
    "configure",
    "update",
    "provision",
    "terminate",
    "restore",
    "keys",
    "user",
    "guest",
    "image",
];

/// `fleet …` lines of README.md's code blocks, with their line numbers; `a && b` is two.
fn readme_commands() -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut in_block = false;
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        for part in without_comment(line).split("&&") {
            let part = part.trim();
            if part.starts_with("fleet ") {
                found.push((i + 1, part.to_string()));
            }
        }
    }
    found
}

/// The line before its `# comment` (a `#` after a space, outside quotes).
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

/// Words as a POSIX shell splits them (quotes removed), without `> FILE` redirections.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    out.extend(word);
    if let Some(at) = out.iter().position(|w| w == ">") {
        out.truncate(at);
    }
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    parent: PathBuf,
    project: PathBuf,
    data: PathBuf,
    catalog_repo: PathBuf,
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// The README's first line makes the project; the fixture then gives it hosts.
fn make_fixture_inventory(f: &Fixture) {
    let data = f.data.display();
    std::fs::create_dir_all(f.data.join("nginx")).unwrap();
    std::fs::write(f.data.join("nginx/nginx.conf"), "worker_processes 1;\n").unwrap();
    std::fs::write(
        f.project.join("inventory.toml"),
        format!(
            "[hosts.web-1]\nconnection = \"local\"\ngroups = [\"web\", \"prod\"]\n\
             [hosts.web-1.vars]\nbackups = [{{ name = \"etc\", paths = [\"{data}\"] }}]\n\n\
             [hosts.web-3]\nconnection = \"local\"\ngroups = [\"web\"]\n\
             vars = {{ backup_paths = [\"{data}/nginx\"] }}\n"
        ),
    )
    .unwrap();
    // An ed25519 key made with ssh-keygen for this fixture.
    std::fs::write(
        f.project.join("access.toml"),
        "[people.alice]\nkeys = [\"ssh-ed25519 \
         AAAAC3NzaC1lZDI1NTE5AAAAID5KYsBV69aoMbhLnJc60Xc22SHXaLqlHv7Np+LlVV0b alice@laptop\"]\n\n\
         [groups]\nadmins = [\"alice\"]\n\n[[rules]]\ngroup = \"admins\"\nhosts = \"web\"\n",
    )
    .unwrap();
    // bob's public key, for `fleet user add bob … --key bob.pub` (another ssh-keygen key).
    std::fs::write(
        f.project.join("bob.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6HUq5IJ7t0CWjmf2ZVrKkhJlf5zUssa3I2+KnkDXck bob@desk\n",
    )
    .unwrap();
    // Who may sign, for `fleet pull enroll … --allowed-signers allowed_signers`.
    std::fs::write(
        f.project.join("allowed_signers"),
        "alice@example.com ssh-ed25519 \
         AAAAC3NzaC1lZDI1NTE5AAAAID5KYsBV69aoMbhLnJc60Xc22SHXaLqlHv7Np+LlVV0b\n",
    )
    .unwrap();
    git(&f.project, &["add", "-A"]);
    git(&f.project, &["commit", "-qm", "fixture hosts"]);
    git(&f.project, &["tag", "v1.4"]);
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_path_buf();
    let catalog_repo = parent.join("catalog.git");
    std::fs::create_dir_all(catalog_repo.join("catalog")).unwrap();
    std::fs::write(catalog_repo.join("catalog/index.json"), "{\"apps\": []}\n").unwrap();
    git(&catalog_repo, &["init", "-q"]);
    git(&catalog_repo, &["add", "-A"]);
    git(&catalog_repo, &["commit", "-qm", "catalog"]);
    Fixture {
        project: parent.join("myfleet"),
        data: parent.join("data"),
        parent,
        catalog_repo,
        _dir: dir,
    }
}

/// The README's words for this fixture: placeholders mapped, `--check` added where the
/// command would change a machine.
fn adapt(f: &Fixture, words: &[String]) -> Vec<String> {
    let mut out: Vec<String> = words[1..]
        .iter()
        .map(|w| match w.as_str() {
            "/tmp/lf" => f.project.display().to_string(),
            "[PATTERN]" => "web".to_string(),
            "/etc" => f.data.display().to_string(),
            "/etc/nginx" => f.data.join("nginx").display().to_string(),
            "/tmp/nginx" => f.parent.join("restored").display().to_string(),
            "/var/www/fleet.html" => f.parent.join("fleet.html").display().to_string(),
            url if url.starts_with("https://git.example.com/ops/catalog") => {
                f.catalog_repo.display().to_string()
            }
            url if url.starts_with("https://git.example.com/") => f.project.display().to_string(),
            other => other.to_string(),
        })
        .collect();
    // The command: the first word that is not an option or an option's value.
    let mut at = 0;
    while at < out.len() && out[at].starts_with('-') {
        at += if out[at] == "-C" || out[at] == "--recipes-rev" {
            2
        } else {
            1
        };
    }
    let changing = out
        .get(at)
        .is_some_and(|c| CHANGING.contains(&c.as_str()) || c == "pull");
    if changing && !out.iter().any(|w| w == "--check") {
        out.insert(at + 1, "--check".to_string());
    }
    out
}

#[test]
fn every_fleet_line_of_the_readme_parses_and_exits_as_it_says() {
    let commands = readme_commands();
    assert!(
        commands.len() >= 30,
        "README.md should show fleet's commands; found {commands:?}"
    );
    let f = fixture();
    let mut failures = Vec::new();
    for (line, text) in &commands {
        let words = words(text);
        let args = adapt(&f, &words);
        let cwd = if words.get(1).map(String::as_str) == Some("init") {
            &f.parent
        } else {
            &f.project
        };
        let out = Command::new(fleet_bin())
            .args(&args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("fleet runs");
        if words.get(1).map(String::as_str) == Some("init") {
            make_fixture_inventory(&f);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        let (expected, why) = EXPECTED
            .iter()
            .find(|(piece, _, _)| text.contains(piece))
            .map(|(_, code, why)| (*code, *why))
            .unwrap_or((0, "the README shows it working"));
        let clap_error = stderr.contains("\nUsage: fleet") || stderr.starts_with("error: ");
        if clap_error || code != expected {
            failures.push(format!(
                "README.md:{line}: `{text}` (run as fleet {args:?}) exited {code}, expected \
                 {expected} ({why}){}\n{stderr}",
                if clap_error {
                    "; the command line was refused"
                } else {
                    ""
                }
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_readme_splitter_reads_lines_as_a_shell_does() {
    assert_eq!(
        words("fleet hosts 'web:&prod' --json"),
        ["fleet", "hosts", "web:&prod", "--json"]
    );
    assert_eq!(
        words("fleet completions bash > /etc/bash_completion.d/fleet"),
        ["fleet", "completions", "bash"]
    );
    assert_eq!(
        without_comment("fleet exec all -- 'a # b'  # note"),
        "fleet exec all -- 'a # b'  "
    );
}
