//! Existing Ansible roles run against fleet's hosts (`ansible::playbook`): the inventory
//! fleet writes for one call (the same addresses, users, ports, identity file,
//! ssh_config and known_hosts as fleet's own connections; groups and vars passed
//! through), the `ansible-playbook` command line, and reading the per-host results that
//! fleet's callback plugin writes at the end of the play.
//!
//! Inventory values and recipe values are data for Ansible, never code: every string
//! goes into the YAML tagged `!unsafe`, so a `{{ lookup('pipe', …) }}` in a var is text,
//! not a command on this machine; `ansible_*` vars that steer the connection (and so
//! could run a program here) are not passed; every value on the command line sits after
//! its flag as `--flag=value`, and the playbook after `--`.

use crate::ops::shell::{Argv, quote};
use crate::ops::ssh::SshTarget;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The program fleet runs.
pub(crate) const PROGRAM: &str = "ansible-playbook";

/// Most bytes of the results document fleet reads; a play recap is far smaller.
pub(crate) const RESULTS_CAP: u64 = 4 * 1024 * 1024;

/// `ansible_*` vars of the inventory that reach Ansible; the others (connection,
/// ssh arguments, executables, the shell) are fleet's to set or could run a program on
/// this machine.
pub(crate) const PASSED_ANSIBLE_VARS: &[&str] = &[
    "ansible_python_interpreter",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_method",
    "ansible_become_password",
];

/// The callback plugin that writes the play recap and each host's first failure as JSON
/// (the `stats` shape of Ansible's `json` callback, which ansible-core does not ship) to
/// `$FLEET_ANSIBLE_RESULTS`; stdout keeps Ansible's usual output for the progress line
/// and the log.
pub(crate) const CALLBACK_NAME: &str = "fleet_results";
pub(crate) const CALLBACK_PY: &str = r#"# Written by fleet for one ansible-playbook run.
import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: fleet_results
    type: aggregate
    short_description: per-host results for fleet
    description: writes the play recap and each host's first failure as JSON to $FLEET_ANSIBLE_RESULTS
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'fleet_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failures = {}

    def _first(self, result, kind):
        host = getattr(result, 'host', None) or result._host
        task = getattr(result, 'task', None) or result._task
        data = getattr(result, 'result', None) or result._result
        name = host.get_name()
        if name not in self.failures:
            msg = data.get('msg') or data.get('stderr') or kind
            self.failures[name] = '%s: %s' % (task.get_name(), str(msg)[:2000])

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._first(result, 'failed')

    def v2_runner_on_unreachable(self, result):
        self._first(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        out = {'stats': {h: stats.summarize(h) for h in hosts}, 'fleet_failures': self.failures}
        with open(os.environ['FLEET_ANSIBLE_RESULTS'], 'w') as f:
            json.dump(out, f)
"#;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AnsibleError {
    #[error(
        "ansible-playbook is not installed (not found on PATH): install ansible-core, e.g. \
         `python3 -m pip install --user ansible-core` or `apt-get install ansible-core`"
    )]
    NotInstalled,
    #[error("ansible::playbook: no hosts given")]
    NoHosts,
    #[error("ansible::playbook: tag `{}` is empty or holds a comma, a line break or a NUL", .0.escape_debug())]
    BadTag(String),
    #[error(
        "ansible::playbook: extra var `{0}` would steer Ansible's connection, which fleet sets \
         from its inventory and fleet.toml (address, user, port, identity file, ssh_config); \
         of the `ansible_*` vars only {passed} are passed", passed = PASSED_ANSIBLE_VARS.join(", ")
    )]
    ConnectionVar(String),
    #[error("ansible::playbook: `limit` is empty or holds a line break or a NUL")]
    BadLimit,
    #[error(
        "ansible::playbook: the playbook `{0}` does not exist in the project (a path relative to the project root, e.g. \"site.yml\")"
    )]
    NoPlaybook(String),
    #[error("cannot prepare the ansible run in {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ansible-playbook exited with {code} before any play recap{}", tail_of(.tail))]
    NoResults { code: i32, tail: String },
    #[error("ansible's results are larger than {RESULTS_CAP} bytes")]
    ResultsTooLarge,
    #[error("ansible's results are not the expected JSON: {0}")]
    BadResults(serde_json::Error),
}

fn tail_of(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(":\n{tail}")
    }
}

/// The options map of `ansible::playbook`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaybookOptions {
    /// Passed with `-e @file`, every string `!unsafe`.
    #[serde(default)]
    pub(crate) extra_vars: serde_json::Map<String, Value>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    /// An Ansible host pattern narrowing the play.
    #[serde(default)]
    pub(crate) limit: Option<String>,
    /// Ansible's `--check` (also on under fleet's `--check`).
    #[serde(default)]
    pub(crate) check: bool,
}

impl PlaybookOptions {
    pub(crate) fn validate(&self) -> Result<(), AnsibleError> {
        for t in &self.tags {
            if t.is_empty() || t.contains([',', '\n', '\r', '\0']) {
                return Err(AnsibleError::BadTag(t.clone()));
            }
        }
        if let Some(k) = self.extra_vars.keys().find(|k| !passed(k)) {
            return Err(AnsibleError::ConnectionVar(k.clone()));
        }
        if let Some(l) = &self.limit
            && (l.is_empty() || l.contains(['\n', '\r', '\0']))
        {
            return Err(AnsibleError::BadLimit);
        }
        Ok(())
    }
}

/// Whether a var reaches Ansible: not an `ansible_*` var, or one of [`PASSED_ANSIBLE_VARS`].
fn passed(key: &str) -> bool {
    !key.starts_with("ansible_") || PASSED_ANSIBLE_VARS.contains(&key)
}

/// One host of the generated inventory.
pub(crate) struct InventoryHost<'a> {
    pub(crate) target: SshTarget,
    /// The host is this machine (`connection = "local"`).
    pub(crate) local: bool,
    pub(crate) groups: &'a [String],
    pub(crate) vars: &'a crate::inventory::Vars,
}

/// `value` as YAML flow text with every string scalar tagged `!unsafe` (Ansible never
/// templates it). JSON's string escapes are YAML's double-quoted ones.
pub(crate) fn unsafe_yaml(value: &Value) -> String {
    let s = |t: &str| serde_json::to_string(t).unwrap_or_default();
    match value {
        Value::String(t) => format!("!unsafe {}", s(t)),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(unsafe_yaml).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", s(k), unsafe_yaml(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// `ansible_ssh_common_args`: fleet's ssh policy, each value shell-quoted (Ansible
/// splits the text with shlex).
pub(crate) fn ssh_common_args(t: &SshTarget) -> String {
    let mut args = Vec::new();
    if let Some(f) = &t.config_file {
        args.push(format!("-F {}", quote(&f.display().to_string())));
    }
    let checking = if t.accept_new { "accept-new" } else { "yes" };
    args.push(format!("-o StrictHostKeyChecking={checking}"));
    if let Some(k) = &t.known_hosts {
        args.push(format!(
            "-o {}",
            quote(&format!("UserKnownHostsFile={}", k.display()))
        ));
    }
    args.push(format!(
        "-o ConnectTimeout={}",
        t.connect_timeout.as_secs().max(1)
    ));
    if t.identity_file.is_some() {
        args.push("-o IdentitiesOnly=yes".into());
    }
    args.push("-o BatchMode=yes".into());
    args.join(" ")
}

/// One host's inventory vars: the passed inventory vars, then fleet's connection.
fn host_vars(h: &InventoryHost) -> serde_json::Map<String, Value> {
    let mut vars: serde_json::Map<String, Value> = h
        .vars
        .iter()
        .filter(|(k, _)| passed(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let t = &h.target;
    if h.local {
        vars.insert("ansible_connection".into(), "local".into());
        return vars;
    }
    vars.insert("ansible_connection".into(), "ssh".into());
    vars.insert("ansible_host".into(), t.address.clone().into());
    if let Some(p) = t.port {
        vars.insert("ansible_port".into(), p.into());
    }
    if let Some(u) = &t.user {
        vars.insert("ansible_user".into(), u.clone().into());
    }
    if let Some(i) = &t.identity_file {
        vars.insert(
            "ansible_ssh_private_key_file".into(),
            i.display().to_string().into(),
        );
    }
    vars.insert("ansible_ssh_common_args".into(), ssh_common_args(t).into());
    vars
}

/// The inventory for one call: every host under `all` with its vars, and every group
/// it is in (as a child of `all`) listing it.
pub(crate) fn inventory(hosts: &[InventoryHost]) -> Value {
    let mut all_hosts = serde_json::Map::new();
    let mut groups: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for h in hosts {
        all_hosts.insert(h.target.host.clone(), Value::Object(host_vars(h)));
        for g in h.groups {
            groups
                .entry(g)
                .or_default()
                .insert(h.target.host.clone(), Value::Object(Default::default()));
        }
    }
    let children: serde_json::Map<String, Value> = groups
        .into_iter()
        .map(|(g, members)| (g.to_string(), serde_json::json!({ "hosts": members })))
        .collect();
    let mut all = serde_json::Map::new();
    all.insert("hosts".into(), Value::Object(all_hosts));
    if !children.is_empty() {
        all.insert("children".into(), Value::Object(children));
    }
    serde_json::json!({ "all": all })
}

/// The files of one call, in its private directory.
pub(crate) struct Files {
    pub(crate) inventory: PathBuf,
    pub(crate) extra_vars: Option<PathBuf>,
    pub(crate) playbook: PathBuf,
    /// Where the callback plugin lives.
    pub(crate) plugins: PathBuf,
    pub(crate) results: PathBuf,
}

/// The command line: every value after its flag as `--flag=value` (a value that starts
/// with `-` stays a value), the playbook after `--`, and the environment that makes
/// Ansible plain (no colour, no retry files, no cowsay), enables fleet's callback and
/// keeps no ssh master running after the play.
pub(crate) fn argv(program: &Path, files: &Files, o: &PlaybookOptions, check: bool) -> Argv {
    let mut a = Argv::new(&program.display().to_string())
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .env("ANSIBLE_NOCOWS", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")
        .env(
            "ANSIBLE_CALLBACK_PLUGINS",
            &files.plugins.display().to_string(),
        )
        .env("ANSIBLE_CALLBACKS_ENABLED", CALLBACK_NAME)
        .env(
            "FLEET_ANSIBLE_RESULTS",
            &files.results.display().to_string(),
        )
        .arg(format!("--inventory={}", files.inventory.display()));
    if let Some(e) = &files.extra_vars {
        a = a.arg(format!("--extra-vars=@{}", e.display()));
    }
    if !o.tags.is_empty() {
        a = a.arg(format!("--tags={}", o.tags.join(",")));
    }
    if let Some(l) = &o.limit {
        a = a.arg(format!("--limit={l}"));
    }
    if check || o.check {
        a = a.args(["--check", "--diff"]);
    }
    a.args(["--".to_string(), files.playbook.display().to_string()])
}

/// `ansible-playbook` on `path` (the PATH variable), or why not.
pub(crate) fn find_program(path: Option<&std::ffi::OsStr>) -> Result<PathBuf, AnsibleError> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path.unwrap_or_default())
        .map(|d| d.join(PROGRAM))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or(AnsibleError::NotInstalled)
}

/// A host's line of the play recap.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub(crate) struct HostStats {
    #[serde(default)]
    pub(crate) ok: u64,
    #[serde(default)]
    pub(crate) changed: u64,
    #[serde(default)]
    pub(crate) failures: u64,
    #[serde(default)]
    pub(crate) unreachable: u64,
    #[serde(default)]
    pub(crate) skipped: u64,
    #[serde(default)]
    pub(crate) rescued: u64,
    #[serde(default)]
    pub(crate) ignored: u64,
}

/// How a host ended the play, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Unreachable,
    Failed,
    Changed,
    Ok,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Unreachable => "unreachable",
            Outcome::Failed => "failed",
            Outcome::Changed => "changed",
            Outcome::Ok => "ok",
        }
    }
}

impl HostStats {
    pub(crate) fn outcome(&self) -> Outcome {
        if self.unreachable > 0 {
            Outcome::Unreachable
        } else if self.failures > 0 {
            Outcome::Failed
        } else if self.changed > 0 {
            Outcome::Changed
        } else {
            Outcome::Ok
        }
    }
}

/// The results of one run: each host's recap and, for a host that failed, the first
/// failing task and its message.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub(crate) struct Results {
    pub(crate) stats: BTreeMap<String, HostStats>,
    #[serde(default, rename = "fleet_failures")]
    pub(crate) failures: BTreeMap<String, String>,
}

/// Reads the results document (the `stats` of Ansible's json callback, plus fleet's
/// `fleet_failures`); at most [`RESULTS_CAP`] bytes.
pub(crate) fn parse_results(text: &str) -> Result<Results, AnsibleError> {
    if text.len() as u64 > RESULTS_CAP {
        return Err(AnsibleError::ResultsTooLarge);
    }
    serde_json::from_str(text).map_err(AnsibleError::BadResults)
}

/// The host a line of Ansible's default output is about (`ok: [web-1]`,
/// `fatal: [web-1]: FAILED! => …`, `changed: [web-1] => (item=…)`), if any.
pub(crate) fn line_host(line: &str) -> Option<&str> {
    let (status, rest) = line.split_once(": [")?;
    if !matches!(
        status,
        "ok" | "changed" | "fatal" | "failed" | "skipping" | "unreachable" | "included"
    ) {
        return None;
    }
    let end = rest.find(']')?;
    // `[a -> b]` under delegation: the task's own host comes first.
    Some(rest[..end].split(" -> ").next().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn target(name: &str) -> SshTarget {
        SshTarget {
            host: name.into(),
            address: "10.0.0.5".into(),
            user: Some("deploy".into()),
            port: Some(2222),
            identity_file: Some("/p/id key".into()),
            known_hosts: Some("/p/known_hosts".into()),
            config_file: Some("/p/ssh_config".into()),
            connect_timeout: Duration::from_secs(10),
            accept_new: false,
        }
    }

    #[test]
    fn the_inventory_carries_fleets_connection_groups_and_vars_as_data() {
        let mut vars = crate::inventory::Vars::new();
        vars.insert("motto".into(), "{{ lookup('pipe', 'id') }}".into());
        vars.insert("ports".into(), serde_json::json!([80, "443"]));
        vars.insert("ansible_ssh_common_args".into(), "-o ProxyCommand=x".into());
        vars.insert("ansible_connection".into(), "local".into());
        vars.insert(
            "ansible_python_interpreter".into(),
            "/usr/bin/python3".into(),
        );
        let groups = vec!["web".to_string()];
        let inv = inventory(&[InventoryHost {
            target: target("web-1"),
            local: false,
            groups: &groups,
            vars: &vars,
        }]);
        insta::assert_snapshot!(unsafe_yaml(&inv), @r#"{"all": {"children": {"web": {"hosts": {"web-1": {}}}}, "hosts": {"web-1": {"ansible_connection": !unsafe "ssh", "ansible_host": !unsafe "10.0.0.5", "ansible_port": 2222, "ansible_python_interpreter": !unsafe "/usr/bin/python3", "ansible_ssh_common_args": !unsafe "-F /p/ssh_config -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/p/known_hosts -o ConnectTimeout=10 -o IdentitiesOnly=yes -o BatchMode=yes", "ansible_ssh_private_key_file": !unsafe "/p/id key", "ansible_user": !unsafe "deploy", "motto": !unsafe "{{ lookup('pipe', 'id') }}", "ports": [80, !unsafe "443"]}}}}"#);
    }

    #[test]
    fn strings_are_escaped_and_tagged() {
        let v = serde_json::json!({"a\"b": "line\nnext \u{1b}[31m", "n": null, "t": true});
        assert_eq!(
            unsafe_yaml(&v),
            r#"{"a\"b": !unsafe "line\nnext \u001b[31m", "n": null, "t": true}"#
        );
    }

    #[test]
    fn ssh_args_quote_paths_with_spaces() {
        let mut t = target("x");
        t.config_file = Some("/my dir/ssh_config".into());
        t.accept_new = true;
        assert!(
            ssh_common_args(&t)
                .starts_with("-F '/my dir/ssh_config' -o StrictHostKeyChecking=accept-new")
        );
    }

    #[test]
    fn a_local_host_runs_locally() {
        let vars = crate::inventory::Vars::new();
        let inv = inventory(&[InventoryHost {
            target: target("me"),
            local: true,
            groups: &[],
            vars: &vars,
        }]);
        assert_eq!(
            inv,
            serde_json::json!({"all": {"hosts": {"me": {"ansible_connection": "local"}}}})
        );
    }

    fn files() -> Files {
        Files {
            inventory: "/r/inventory.yml".into(),
            extra_vars: Some("/r/extra_vars.yml".into()),
            playbook: "/p/-site.yml".into(),
            plugins: "/r/plugins".into(),
            results: "/r/results.json".into(),
        }
    }

    #[test]
    fn the_command_line_keeps_values_after_their_flags() {
        let o = PlaybookOptions {
            tags: vec!["-x".into(), "web".into()],
            limit: Some("--become".into()),
            ..Default::default()
        };
        o.validate().unwrap();
        insta::assert_snapshot!(argv(Path::new("/venv/bin/ansible-playbook"), &files(), &o, true).line(), @"ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOWS=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_SSH_ARGS='-o ControlMaster=no' ANSIBLE_CALLBACK_PLUGINS=/r/plugins ANSIBLE_CALLBACKS_ENABLED=fleet_results FLEET_ANSIBLE_RESULTS=/r/results.json /venv/bin/ansible-playbook --inventory=/r/inventory.yml --extra-vars=@/r/extra_vars.yml --tags=-x,web --limit=--become --check --diff -- /p/-site.yml");
        let plain = argv(
            Path::new("ansible-playbook"),
            &files(),
            &Default::default(),
            false,
        );
        assert!(!plain.line().contains("--check"));
        assert!(!plain.line().contains("--tags"));
    }

    #[test]
    fn bad_tags_and_limits_are_refused() {
        for tag in ["", "a,b", "a\nb"] {
            let o = PlaybookOptions {
                tags: vec![tag.into()],
                ..Default::default()
            };
            assert!(
                matches!(o.validate(), Err(AnsibleError::BadTag(_))),
                "{tag:?}"
            );
        }
        let o = PlaybookOptions {
            limit: Some(String::new()),
            ..Default::default()
        };
        assert!(matches!(o.validate(), Err(AnsibleError::BadLimit)));
        let mut o = PlaybookOptions::default();
        o.extra_vars
            .insert("ansible_ssh_common_args".into(), "-o ProxyCommand=x".into());
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("extra var `ansible_ssh_common_args`"), "{e}");
        o.extra_vars.clear();
        o.extra_vars.insert("ansible_become".into(), true.into());
        o.validate().unwrap();
    }

    /// As fleet's callback wrote it for a play where s2's task failed.
    const RECORDED: &str = r#"{"stats": {"s1": {"ok": 2, "failures": 0, "unreachable": 0, "changed": 1, "skipped": 1, "rescued": 0, "ignored": 0}, "s2": {"ok": 1, "failures": 1, "unreachable": 0, "changed": 1, "skipped": 0, "rescued": 0, "ignored": 0}, "s3": {"ok": 0, "failures": 0, "unreachable": 1, "changed": 0, "skipped": 0, "rescued": 0, "ignored": 0}, "s4": {"ok": 2, "failures": 0, "unreachable": 0, "changed": 0, "skipped": 0, "rescued": 0, "ignored": 0}}, "fleet_failures": {"s2": "fail where asked: asked to fail", "s3": "write the motd: Failed to connect to the host via ssh"}}"#;

    #[test]
    fn results_become_each_hosts_outcome() {
        let r = parse_results(RECORDED).unwrap();
        let outcomes: Vec<_> = r
            .stats
            .iter()
            .map(|(h, s)| (h.as_str(), s.outcome().as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("s1", "changed"),
                ("s2", "failed"),
                ("s3", "unreachable"),
                ("s4", "ok")
            ]
        );
        assert_eq!(r.failures["s2"], "fail where asked: asked to fail");
        assert!(matches!(
            parse_results("{\"stats\": 3}"),
            Err(AnsibleError::BadResults(_))
        ));
        let huge = " ".repeat(RESULTS_CAP as usize + 1);
        assert!(matches!(
            parse_results(&huge),
            Err(AnsibleError::ResultsTooLarge)
        ));
    }

    #[test]
    fn output_lines_name_their_host() {
        assert_eq!(line_host("ok: [web-1]"), Some("web-1"));
        assert_eq!(
            line_host("fatal: [web-2]: FAILED! => {\"msg\": \"x\"}"),
            Some("web-2")
        );
        assert_eq!(line_host("changed: [a -> b] => (item=1)"), Some("a"));
        assert_eq!(line_host("TASK [motd : write]"), None);
        assert_eq!(line_host("note: [x]"), None);
    }

    #[test]
    fn a_missing_program_says_what_to_install() {
        let dir = tempfile::tempdir().unwrap();
        let e = find_program(Some(dir.path().as_os_str())).unwrap_err();
        assert!(e.to_string().contains("install ansible-core"), "{e}");
        let p = dir.path().join(PROGRAM);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program(Some(dir.path().as_os_str())).unwrap(), p);
    }
}
