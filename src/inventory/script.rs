//! Dynamic inventories: an executable that prints Ansible's `--list` JSON, as
//! `ansible-inventory --list` does and the Proxmox and cloud inventory scripts people
//! already run.
//!
//! The script is started as a program (no shell), with `--list` as its only argument,
//! stdin closed, in a process group of its own that is killed when it overruns its time.
//! Its output is bounded. Like Ansible, when the JSON has no `_meta.hostvars` the script
//! is asked for each host's variables with `--host NAME`.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::Value;

use super::ansible::{Field, SetOnHost, apply_group_fields, implicit_group};
use super::vars::find_cycle;
use super::{Host, Inventory};
use crate::error::{Error, Result, SourceError};

/// How long a script may take when fleet.toml does not say (`inventory_timeout`).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// More JSON than this is surely not an inventory fleet should hold in memory.
const MAX_STDOUT: usize = 64 * 1024 * 1024;
/// What is kept of the script's stderr to show when it fails.
const MAX_STDERR: usize = 8 * 1024;

/// A script inventory that could not be run or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScriptError {
    #[error("cannot run inventory script {script}: {source}")]
    Start {
        script: String,
        source: std::io::Error,
    },
    #[error("inventory script {script} did not finish within {after}{stderr}")]
    Timeout {
        script: String,
        after: String,
        stderr: String,
    },
    #[error("inventory script {script} printed more than {limit} MiB", limit = MAX_STDOUT >> 20)]
    TooLarge { script: String },
    #[error("inventory script {script} ({args}) {status}{stderr}")]
    Failed {
        script: String,
        args: String,
        status: String,
        stderr: String,
    },
}

impl From<ScriptError> for Error {
    fn from(err: ScriptError) -> Error {
        let help = match &err {
            ScriptError::Timeout { .. } => {
                "make the script faster, or raise `inventory_timeout` (seconds) in fleet.toml"
            }
            ScriptError::Start { .. } => {
                "it is executable and starts with `#!`, so fleet runs it as a dynamic inventory: check that the interpreter its `#!` line names exists"
            }
            _ => "run the script by hand with --list to see what it does",
        };
        Error::usage_with_help(err.to_string(), help)
    }
}

/// Runs `script --list` and reads its JSON; hosts without `_meta.hostvars` are asked
/// for with `--host NAME`, as Ansible does.
pub(crate) fn load(script: &Path, shown: &str, timeout: Duration) -> Result<Inventory> {
    let output = run(script, shown, &["--list"], timeout)?;
    let name = format!("{shown} --list");
    let mut list = parse_list(&name, &output)?;
    if list.missing_meta {
        let hosts: Vec<String> = list.inv.hosts.keys().cloned().collect();
        for host in hosts {
            // Names are checked before they become an argument.
            if let Err(e) = super::checks::host_name(&host) {
                return Err(Error::usage(format!("{name}: host `{host}`: {e}")));
            }
            let output = run(script, shown, &["--host", &host], timeout)?;
            let vars_name = format!("{shown} --host {host}");
            let vars = host_vars(&vars_name, &output)?;
            list.set_host_vars(&host, vars, &vars_name, &output)?;
        }
    }
    let inventory = list.finish()?;
    inventory.check_connection_values(&output)?;
    Ok(inventory)
}

/// Runs the script with `args`, giving its stdout, or an error naming it with its stderr.
pub(crate) fn run(script: &Path, shown: &str, args: &[&str], timeout: Duration) -> Result<String> {
    // A bare name would be looked up in PATH: the inventory is this file.
    let program: PathBuf = if script.is_relative() {
        Path::new(".").join(script)
    } else {
        script.to_path_buf()
    };
    let mut command = Command::new(&program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; it makes the script end if fleet dies while
    // it runs (before a run installs its Ctrl-C handling).
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| ScriptError::Start {
        script: shown.to_string(),
        source,
    })?;
    let pgid = child.id() as i32;
    let _in_flight = crate::transport::abort::Guard::new(pgid);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || read_bounded(stdout, MAX_STDOUT + 1, false));
    let err = std::thread::spawn(move || read_bounded(stderr, MAX_STDERR, true));

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline || crate::transport::abort::aborted() => {
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => break None,
        }
    };
    if status.is_none() || !out.is_finished() {
        // Its children may hold the pipes open: the whole group goes.
        // SAFETY: signals the process group fleet created for the script.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.wait();
    let stdout = out.join().unwrap_or_default();
    let stderr_text = stderr_tail(&err.join().unwrap_or_default());
    let Some(status) = status else {
        return Err(ScriptError::Timeout {
            script: shown.to_string(),
            after: humantime::format_duration(timeout).to_string(),
            stderr: stderr_text,
        }
        .into());
    };
    if stdout.len() > MAX_STDOUT {
        return Err(ScriptError::TooLarge {
            script: shown.to_string(),
        }
        .into());
    }
    if !status.success() {
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => "failed".to_string(),
        };
        return Err(ScriptError::Failed {
            script: shown.to_string(),
            args: args.join(" "),
            status,
            stderr: stderr_text,
        }
        .into());
    }
    String::from_utf8(stdout).map_err(|_| {
        Error::usage(format!(
            "inventory script {shown} ({}) printed output that is not UTF-8",
            args.join(" ")
        ))
    })
}

/// Reads up to `limit` bytes (the first ones, or with `tail` the last ones) and drains
/// the rest, so that the script never blocks on a full pipe.
fn read_bounded(mut reader: impl Read, limit: usize, tail: bool) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > limit {
                    if tail {
                        kept.drain(..kept.len() - limit);
                    } else {
                        kept.truncate(limit);
                    }
                }
            }
        }
    }
    kept
}

/// The script's stderr as the end of an error message: its last lines, or nothing.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let shown = &lines[lines.len().saturating_sub(20)..];
    format!("; its stderr:\n  {}", shown.join("\n  "))
}

/// An inventory read from `--list`, before `--host` answers and group fields are applied.
pub(crate) struct List {
    inv: Inventory,
    set_on_host: SetOnHost,
    /// No `_meta.hostvars`: variables come from `--host NAME`.
    missing_meta: bool,
}

fn json_error(name: &str, text: &str, err: &serde_json::Error) -> SourceError {
    let at = crate::error::offset_of(text, err.line().max(1), err.column().max(1));
    let message = err.to_string();
    let message = match message.find(" at line ") {
        Some(cut) => &message[..cut],
        None => &message,
    };
    SourceError::at_span(
        name,
        text,
        (at.min(text.len().saturating_sub(1)), 1).into(),
        format!("not the JSON of a dynamic inventory: {message}"),
        "here",
    )
}

/// Where `needle` (a JSON string) first appears in `text`, for pointing at it.
fn span_of(text: &str, needle: &str) -> (usize, usize) {
    let quoted = serde_json::to_string(needle).unwrap_or_default();
    match text.find(&quoted) {
        Some(at) => (at, quoted.len()),
        None => (0, 1),
    }
}

/// Reads Ansible's `--list` JSON: every key but `_meta` is a group, given as a list of
/// hosts or as `{hosts, vars, children}`; `_meta.hostvars` holds each host's variables.
pub(crate) fn parse_list(name: &str, text: &str) -> Result<List> {
    let doc: IndexMap<String, Value> =
        serde_json::from_str(text).map_err(|e| json_error(name, text, &e))?;
    let bad = |needle: &str, message: String| -> Error {
        let (at, len) = span_of(text, needle);
        SourceError::at_span(name, text, (at, len).into(), message, "here").into()
    };
    let mut list = List {
        inv: Inventory::empty(name),
        set_on_host: SetOnHost::new(),
        missing_meta: true,
    };
    let mut hostvars = None;
    for (group, data) in doc {
        if group == "_meta" {
            if let Some(vars) = data.get("hostvars") {
                let Value::Object(vars) = vars else {
                    return Err(bad("hostvars", "`_meta.hostvars` must be an object".into()));
                };
                hostvars = Some(vars.clone());
                list.missing_meta = false;
            }
            continue;
        }
        if group.trim().is_empty() {
            return Err(bad(&group, "empty group name".into()));
        }
        list.inv.group_entry(&group);
        // As Ansible: a list is the group's hosts; an object with none of the known keys
        // is a host of the group's name with those variables.
        let data = match data {
            Value::Array(hosts) => {
                serde_json::json!({ "hosts": hosts })
            }
            Value::Object(map)
                if !["hosts", "vars", "children"]
                    .iter()
                    .any(|k| map.contains_key(*k)) =>
            {
                serde_json::json!({ "hosts": [group.clone()], "vars": map })
            }
            Value::Object(map) => Value::Object(map),
            Value::Null => continue,
            _ => {
                return Err(bad(
                    &group,
                    format!("group `{group}` must be a list of hosts or an object"),
                ));
            }
        };
        if let Some(hosts) = data.get("hosts") {
            let Value::Array(hosts) = hosts else {
                return Err(bad(
                    &group,
                    format!("`hosts` of group `{group}` must be a list"),
                ));
            };
            for host in hosts {
                let Value::String(host) = host else {
                    return Err(bad(
                        &group,
                        format!("group `{group}` lists a host that is not a string: {host}"),
                    ));
                };
                let entry = list
                    .inv
                    .hosts
                    .entry(host.clone())
                    .or_insert_with(|| Host::new(host));
                if !implicit_group(&group) && !entry.groups.contains(&group) {
                    entry.groups.push(group.clone());
                }
            }
        }
        if let Some(vars) = data.get("vars") {
            let Value::Object(vars) = vars else {
                return Err(bad(
                    &group,
                    format!("`vars` of group `{group}` must be an object"),
                ));
            };
            for (key, value) in vars {
                if let Some(Err(e)) = Field::from_var(key, value) {
                    return Err(bad(key, format!("group `{group}`: {e}")));
                }
                list.inv
                    .group_entry(&group)
                    .vars
                    .insert(key.clone(), value.clone());
            }
        }
        if let Some(children) = data.get("children") {
            let Value::Array(children) = children else {
                return Err(bad(
                    &group,
                    format!("`children` of group `{group}` must be a list"),
                ));
            };
            for child in children {
                let Value::String(child) = child else {
                    return Err(bad(
                        &group,
                        format!("group `{group}` lists a child that is not a string: {child}"),
                    ));
                };
                if child == "all" {
                    return Err(bad(child, "`all` cannot be a child group".into()));
                }
                list.inv.group_entry(child);
                let parent = list.inv.group_entry(&group);
                if !parent.children.contains(child) {
                    parent.children.push(child.clone());
                }
            }
        }
    }
    if let Some(hostvars) = hostvars {
        // Only hosts of some group count, as in Ansible.
        let hosts: Vec<String> = list.inv.hosts.keys().cloned().collect();
        for host in hosts {
            match hostvars.get(&host) {
                None => {}
                Some(Value::Object(vars)) => list.set_host_vars(&host, vars.clone(), name, text)?,
                Some(_) => {
                    return Err(bad(
                        &host,
                        format!("`_meta.hostvars` of `{host}` must be an object"),
                    ));
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&list.inv) {
        let child = &cycle[cycle.len() - 1];
        return Err(bad(
            child,
            format!("child groups form a cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(list)
}

/// The object `--host NAME` printed.
fn host_vars(name: &str, text: &str) -> Result<serde_json::Map<String, Value>> {
    match serde_json::from_str(text).map_err(|e| json_error(name, text, &e))? {
        Value::Object(vars) => Ok(vars),
        _ => Err(SourceError::at_span(
            name,
            text,
            (0, 1).into(),
            "expected an object of the host's variables".to_string(),
            "here",
        )
        .into()),
    }
}

impl List {
    fn set_host_vars(
        &mut self,
        host: &str,
        vars: serde_json::Map<String, Value>,
        name: &str,
        text: &str,
    ) -> Result<()> {
        let entry = &mut self.inv.hosts[host];
        let set = self.set_on_host.entry(host.to_string()).or_default();
        for (key, value) in vars {
            match Field::from_var(&key, &value) {
                Some(Ok(field)) => {
                    set.insert(field.kind());
                    field.apply(entry);
                }
                Some(Err(message)) => {
                    let (at, len) = span_of(text, &key);
                    let message = format!("host `{host}`: {message}");
                    return Err(SourceError::at_span(
                        name,
                        text,
                        (at, len).into(),
                        message,
                        "here",
                    )
                    .into());
                }
                None => {
                    entry.vars.insert(key, value);
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Inventory> {
        apply_group_fields(&mut self.inv, &self.set_on_host);
        Ok(self.inv)
    }
}

/// For tests and callers that have the `--list` JSON already.
#[cfg(test)]
pub(crate) fn parse(name: &str, text: &str) -> Result<Inventory> {
    parse_list(name, text)?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Connection;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    const LIST: &str = r#"{
  "web": {"hosts": ["web-1", "web-2"], "vars": {"http_port": 80, "ansible_user": "deploy"}},
  "db": ["db-1"],
  "prod": {"children": ["web", "db"], "vars": {"tier": 1}},
  "all": {"vars": {"ntp": "pool.ntp.org", "tier": 0}},
  "solo": {"answer": 42},
  "_meta": {"hostvars": {
    "web-1": {"ansible_host": "10.0.0.11", "ansible_port": 2222, "role": "frontend"},
    "db-1": {"ansible_connection": "local", "tier": 3},
    "stray": {"x": 1}
  }}
}"#;

    #[test]
    fn reads_groups_children_vars_and_hostvars() {
        let inv = parse("inv.py --list", LIST).unwrap();
        assert_eq!(
            inv.host_names().collect::<Vec<_>>(),
            ["web-1", "web-2", "db-1", "solo"],
            "hosts only in _meta.hostvars are not hosts, as in Ansible"
        );
        let web1 = inv.resolve("web-1").unwrap();
        assert_eq!(web1.address, "10.0.0.11");
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.groups, ["prod", "web"]);
        assert_eq!(web1.vars["tier"], json!(1));
        assert_eq!(web1.vars["http_port"], json!(80));
        assert_eq!(web1.vars["ntp"], json!("pool.ntp.org"));
        let db1 = inv.resolve("db-1").unwrap();
        assert_eq!(db1.connection, Connection::Local);
        assert_eq!(db1.vars["tier"], json!(3), "the host wins");
        let solo = inv.resolve("solo").unwrap();
        assert_eq!(solo.groups, ["solo"]);
        assert_eq!(solo.vars["answer"], json!(42));
    }

    fn error_message(text: &str) -> String {
        match parse("inv --list", text) {
            Err(Error::Source(e)) => e.message,
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    #[test]
    fn bad_json_and_bad_shapes_are_named() {
        assert!(error_message("{\"web\": [}").starts_with("not the JSON of a dynamic inventory"));
        assert!(error_message("[1]").starts_with("not the JSON"));
        assert_eq!(
            error_message("{\"web\": {\"hosts\": \"a\"}}"),
            "`hosts` of group `web` must be a list"
        );
        assert_eq!(
            error_message("{\"web\": 3}"),
            "group `web` must be a list of hosts or an object"
        );
        assert_eq!(
            error_message(
                "{\"web\": [\"a\"], \"_meta\": {\"hostvars\": {\"a\": {\"ansible_port\": \"x\"}}}}"
            ),
            "host `a`: bad port `x`: expected a number from 1 to 65535"
        );
        assert!(
            error_message("{\"a\": {\"children\": [\"b\"]}, \"b\": {\"children\": [\"a\"]}}")
                .contains("cycle")
        );
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("inv.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn usage_message(err: Error) -> String {
        match err {
            Error::Usage { message, .. } => message,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn runs_the_script_with_list_and_asks_host_without_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            r#"case "$1" in
--list) echo '{"web": ["a", "b"]}' ;;
--host) echo "{\"me\": \"$2\"}" ;;
*) exit 9 ;;
esac
"#,
        );
        let inv = load(&path, "inv.sh", DEFAULT_TIMEOUT).unwrap();
        assert_eq!(inv.hosts["a"].vars["me"], json!("a"));
        assert_eq!(inv.hosts["b"].vars["me"], json!("b"));
    }

    #[test]
    fn failures_name_the_script_and_show_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "echo 'no API token' >&2\nexit 3\n");
        let message = usage_message(load(&path, "inv.sh", DEFAULT_TIMEOUT).unwrap_err());
        assert_eq!(
            message,
            "inventory script inv.sh (--list) exited with status 3; its stderr:\n  no API token"
        );

        let path = script(dir.path(), "echo starting >&2\nsleep 30 &\nsleep 30\n");
        let started = Instant::now();
        let message = usage_message(load(&path, "inv.sh", Duration::from_millis(300)).unwrap_err());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the group was killed"
        );
        assert_eq!(
            message,
            "inventory script inv.sh did not finish within 300ms; its stderr:\n  starting"
        );

        let path = script(dir.path(), "echo 'not json'\n");
        match load(&path, "inv.sh", DEFAULT_TIMEOUT) {
            Err(Error::Source(e)) => {
                assert!(e.message.starts_with("not the JSON"), "{}", e.message);
                assert_eq!(e.src.name(), "inv.sh --list");
            }
            other => panic!("{other:?}"),
        }

        let message = usage_message(
            load(&dir.path().join("missing"), "missing", DEFAULT_TIMEOUT).unwrap_err(),
        );
        assert!(
            message.starts_with("cannot run inventory script missing"),
            "{message}"
        );
    }
}
