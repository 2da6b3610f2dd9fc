//! Host output on the operator's terminal: escape sequences are shown, never obeyed.

use crate::support::{Output, Project};

/// Writes the clipboard (OSC 52) and the window title (OSC 0), then clears the screen.
const HOSTILE: &str = r"printf '\033]52;c;ZXZpbA==\007\033]0;title\007 out\n'; printf '\033[2J\033]0;err\007 bad\n' >&2";

const EVIL: &str = r#"
/// Prints what a host said, then fails with it.
fn evil() {
    let said = each(hosts(), |h| h.run(`printf '\033]0;said\007'`).stdout);
    print(said[0]);
    throw said[0];
}
"#;

#[track_caller]
fn no_escape(out: &Output) {
    assert!(
        !out.stdout.contains('\x1b')
            && !out.stderr.contains('\x1b')
            && !out.stderr.contains('\x07'),
        "{}",
        format!("{out}").replace('\x1b', "<ESC>")
    );
}

#[test]
fn host_output_escape_sequences_are_neutralised() {
    let p = Project::new().local_hosts(1).recipe("evil", EVIL);
    let cmd = format!("{HOSTILE}; exit 3");
    // Live output, verbose streaming, the failure line and the recap.
    for verbose in [false, true] {
        let mut args = vec!["exec", "h1"];
        args.extend(verbose.then_some("-v"));
        args.extend(["--", &cmd]);
        let out = p.fleet(&args);
        out.code(3)
            .stdout_has("h1 | ^[]52;c;ZXZpbA==^G^[]0;title^G out")
            .stderr_has("^[[2J^[]0;err^G bad");
        no_escape(&out);
    }
    // The journal read back: `show` and `history`.
    let out = p.fleet(&["show", "last"]);
    out.code(0).stdout_has("| ^[]52;c;ZXZpbA==^G");
    no_escape(&out);
    no_escape(p.fleet(&["history"]).code(0));
    // A recipe's print and its error message.
    let out = p.fleet(&["evil"]);
    out.code(2)
        .stdout_has("^[]0;said^G")
        .stderr_has("^[]0;said^G");
    no_escape(&out);

    // The log and the journal keep the raw bytes, escaped as JSON.
    let logs = std::fs::read_dir(p.path().join(".fleet/logs")).unwrap();
    let raw = logs
        .flatten()
        .map(|f| std::fs::read_to_string(f.path()).unwrap())
        .collect::<String>();
    assert!(!raw.contains('\x1b'), "the log file holds a raw ESC");
    assert!(raw.contains(r"\u001b]52;c;ZXZpbA==\u0007"), "{raw}");
    let history = p.fleet(&["history", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    let tails = runs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["hosts"][0]["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|s| s["commands"].as_array().cloned().unwrap_or_default())
        .map(|c| c["stdout_tail"].as_str().unwrap_or_default().to_string())
        .collect::<String>();
    assert!(tails.contains("\x1b]52;c;ZXZpbA==\x07"), "{tails:?}");
}

const MENU: &str = r#"
/// Asks for a storage, from options a host could have printed.
fn menu() {
    print(`interactive: ${ask::interactive()}`);
    let picked = ask::choose("Storage", ["local", #{ value: "tank", label: "tank\x1b]52;c;ZXZpbA==\x07 evil" }], "tank");
    print(`picked ${picked}`);
}
/// An option with a misspelt key.
fn typo() { ask::choose("Storage", [#{ valeu: "tank" }], ""); }
"#;

#[test]
fn menus_show_hostile_labels_and_refuse_without_a_terminal() {
    let p = Project::new().local_hosts(1).recipe("menu", MENU);
    // No terminal: a clear error, nothing asked.
    p.fleet(&["menu"])
        .code(2)
        .stdout_has("interactive: false")
        .stderr_has("cannot ask `Storage`: there is no terminal (stdin or stderr is not one); pass the value on the command line");
    p.fleet(&["typo"])
        .code(2)
        .stderr_has("ask `Storage`: option 1 has the unknown key `valeu` (known: value, label)");
    // On a terminal the default is pre-selected and Enter takes it; the label's escape
    // sequence is shown, not obeyed.
    let shown = crate::support::on_terminal(p.path(), "menu", Some("\r"));
    assert!(shown.contains("picked tank"), "{shown}");
    assert!(shown.contains("tank^[]52;c;ZXZpbA==^G evil"), "{shown}");
    assert!(!shown.contains("\x1b]52"), "{shown}");
    // Every required argument was given: no menus are wanted.
    assert!(shown.contains("interactive: false"), "{shown}");
}
