//! A guest's lifecycle and size, for VMs (`qm`) and containers (`pct`) alike: the argv
//! of start/stop/shutdown/reboot, set and disk resize (pure, with golden tests), and the
//! procedures over [`Remote`]. Each is idempotent: a guest already in the wanted state,
//! or already of the wanted size, is left alone.

use super::procedures::fail;
use super::{MEMORY_MB, VMID_MAX, VMID_MIN, parse_config, parse_qm_status, resize_failed};
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::Argv;
use crate::outcome::HostError;

/// Why a guest cannot be acted on; found before anything is sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum GuestError {
    #[error("{field} `{value}`: {problem}")]
    Bad {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("give at least one of --cores, --memory, --disk")]
    NothingToSet,
}

fn bad(field: &'static str, value: impl ToString, problem: &'static str) -> GuestError {
    GuestError::Bad {
        field,
        value: crate::ops::text::shown(&value.to_string()),
        problem,
    }
}

/// A QEMU VM (`qm`) or an LXC container (`pct`), from the host var `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Vm,
    Ct,
}

impl Kind {
    /// The host var `kind`: absent or `vm` is a VM, `ct` a container.
    pub(crate) fn from_var(value: Option<&str>) -> Result<Kind, GuestError> {
        match value {
            None | Some("vm") => Ok(Kind::Vm),
            Some("ct") => Ok(Kind::Ct),
            Some(other) => Err(bad("kind", other, "must be `vm` or `ct`")),
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Kind::Vm => "qm",
            Kind::Ct => "pct",
        }
    }

    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Vm => "VM",
            Kind::Ct => "CT",
        }
    }

    /// The disk `--disk` grows: the boot disk fleet provisions.
    fn disk(self) -> &'static str {
        match self {
            Kind::Vm => "scsi0",
            Kind::Ct => "rootfs",
        }
    }

    fn argv(self, verb: &str, vmid: u64) -> Argv {
        Argv::new(self.tool()).arg(verb).arg(vmid.to_string())
    }
}

pub(crate) fn check_vmid(vmid: i64) -> Result<u64, GuestError> {
    u64::try_from(vmid)
        .ok()
        .filter(|id| (VMID_MIN..=VMID_MAX).contains(id))
        .ok_or_else(|| bad("vmid", vmid, "must be between 100 and 999999999"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Stop,
    /// Cleanly, stopped hard after `timeout_s`.
    Shutdown {
        timeout_s: u64,
    },
    Reboot,
}

impl Action {
    pub(crate) fn argv(self, kind: Kind, vmid: u64) -> Argv {
        match self {
            Action::Start => kind.argv("start", vmid),
            Action::Stop => kind.argv("stop", vmid),
            Action::Shutdown { timeout_s } => kind
                .argv("shutdown", vmid)
                .arg("--timeout")
                .arg(timeout_s.to_string())
                .arg("--forceStop")
                .arg("1"),
            Action::Reboot => kind.argv("reboot", vmid),
        }
    }
}

/// What `set` changes; None leaves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    pub(crate) cores: Option<i64>,
    /// MiB.
    pub(crate) memory: Option<i64>,
    /// GiB added to the boot disk.
    pub(crate) disk: Option<i64>,
}

/// Proxmox's limits (`cores`: 1-1024 for qm; `disk`: fleet's sanity bound, 64 TiB).
const CORES_MAX: i64 = 1024;
const DISK_ADD_MAX_GB: i64 = 65_536;

impl Settings {
    pub(crate) fn check(&self) -> Result<(), GuestError> {
        if self.cores.is_none() && self.memory.is_none() && self.disk.is_none() {
            return Err(GuestError::NothingToSet);
        }
        if let Some(c) = self.cores
            && !(1..=CORES_MAX).contains(&c)
        {
            return Err(bad("cores", c, "must be between 1 and 1024"));
        }
        if let Some(m) = self.memory
            && !MEMORY_MB.contains(&m)
        {
            return Err(bad("memory", m, "must be between 16 and 268435456 (MiB)"));
        }
        if let Some(d) = self.disk
            && !(1..=DISK_ADD_MAX_GB).contains(&d)
        {
            return Err(bad(
                "disk",
                d,
                "must add between 1 and 65536 GiB (disks only grow)",
            ));
        }
        Ok(())
    }
}

/// `+10` or `+10G` (GiB to add), as `--disk` takes it.
pub(crate) fn parse_disk_add(text: &str) -> Result<i64, GuestError> {
    let problem = "must be +GiB, e.g. +10 (disks only grow)";
    let n = text
        .strip_prefix('+')
        .map(|t| t.strip_suffix('G').unwrap_or(t))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("disk", text, problem))?;
    n.parse().map_err(|_| bad("disk", text, problem))
}

/// `qm set ID --cores N --memory M` (`pct set` alike); None when neither changes.
pub(crate) fn set_argv(
    kind: Kind,
    vmid: u64,
    cores: Option<i64>,
    memory: Option<i64>,
) -> Option<Argv> {
    if cores.is_none() && memory.is_none() {
        return None;
    }
    let mut argv = kind.argv("set", vmid);
    if let Some(c) = cores {
        argv = argv.arg("--cores").arg(c.to_string());
    }
    if let Some(m) = memory {
        argv = argv.arg("--memory").arg(m.to_string());
    }
    Some(argv)
}

/// `qm disk resize ID scsi0 +NG`, `pct resize ID rootfs +NG`.
pub(crate) fn resize_argv(kind: Kind, vmid: u64, add_gb: i64) -> Argv {
    let verb = match kind {
        Kind::Vm => Argv::new("qm").arg("disk").arg("resize"),
        Kind::Ct => Argv::new("pct").arg("resize"),
    };
    verb.arg(vmid.to_string())
        .arg(kind.disk())
        .arg(format!("+{add_gb}G"))
}

pub(crate) fn status_argv(kind: Kind, vmid: u64) -> Argv {
    kind.argv("status", vmid)
}

pub(crate) fn config_argv(kind: Kind, vmid: u64) -> Argv {
    kind.argv("config", vmid)
}

pub(crate) fn pending_argv(vmid: u64) -> Argv {
    Argv::new("qm").arg("pending").arg(vmid.to_string())
}

/// Keys of `qm pending` output whose value waits for the next start (`new KEY: V`).
pub(crate) fn parse_pending(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("new "))
        .filter_map(|l| l.split_once(": ").map(|(k, _)| k.to_string()))
        .collect()
}

/// An unknown VM or CT, in `qm`'s and `pct`'s words.
fn is_missing(stderr: &str) -> bool {
    stderr.contains("does not exist") && stderr.contains(".conf")
}

/// `running`, `stopped`, …; a missing guest is an error naming it.
pub(crate) fn status(node: &dyn Remote, kind: Kind, vmid: u64) -> Result<String, HostError> {
    let argv = status_argv(kind, vmid);
    let r = node.program(&argv, CommandOpts::QUERY)?;
    if r.code != 0 {
        let why = if is_missing(&r.stderr) {
            format!("{} {vmid} does not exist on {}", kind.noun(), node.name())
        } else {
            format!(
                "`{}` failed on {}: {}",
                argv.line(),
                node.name(),
                r.stderr.trim()
            )
        };
        return Err(fail(node, why));
    }
    parse_qm_status(&r.stdout).ok_or_else(|| {
        fail(
            node,
            format!("`{}` printed {:?}, not a status", argv.line(), r.stdout),
        )
    })
}

/// Brings the guest to the state `action` means; false when it already was there.
/// `label` names the guest in what is printed (its inventory name).
pub(crate) fn power(
    node: &dyn Remote,
    kind: Kind,
    vmid: u64,
    label: &str,
    action: Action,
) -> Result<bool, HostError> {
    let state = status(node, kind, vmid)?;
    let running = state == "running";
    let what = format!("{label} ({} {vmid})", kind.noun());
    let already = match action {
        Action::Start => running.then_some("running"),
        Action::Stop | Action::Shutdown { .. } => (state == "stopped").then_some("stopped"),
        Action::Reboot if !running => {
            return Err(fail(
                node,
                format!(
                    "{what} is {state}, so it cannot reboot: start it (fleet guest start {label})"
                ),
            ));
        }
        Action::Reboot => None,
    };
    if let Some(s) = already {
        node.out(&format!("{what} is already {s}"));
        return Ok(false);
    }
    node.program(&action.argv(kind, vmid), CommandOpts::CHANGE)?;
    Ok(true)
}

/// What `set` did: the changes in words, and whether they wait for a restart.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SetOutcome {
    pub(crate) changes: Vec<String>,
    /// Keys that apply at the next start of the guest (`qm pending`).
    pub(crate) pending: Vec<String>,
}

impl SetOutcome {
    /// What to print about guest `label`; `restart` says how to restart it.
    pub(crate) fn describe(&self, label: &str, restart: &str, check: bool) -> Vec<String> {
        if self.changes.is_empty() {
            return vec![format!("{label} already has these settings")];
        }
        let (changed, apply) = if check {
            ("would change", "would apply")
        } else {
            ("changed", "apply")
        };
        let mut out = vec![format!("{label} {changed}: {}", self.changes.join(", "))];
        if !self.pending.is_empty() {
            out.push(format!(
                "{label}: {} {apply} at its next start: restart it ({restart})",
                self.pending.join(" and ")
            ));
        }
        out
    }
}

/// The defaults for keys a config leaves out: a VM has 1 core, a container without
/// `cores` may use all of the node's; both have 512 MiB.
fn current(kind: Kind, config: &[(String, String)], key: &str) -> Option<i64> {
    let default = match (kind, key) {
        (Kind::Vm, "cores") => Some(1),
        (_, "memory") => Some(512),
        _ => None,
    };
    config
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .or(default)
}

/// Whether a running VM takes `key` at once: only with `cpu`/`memory` in its `hotplug`
/// (default `network,disk,usb`); a container always does.
fn hot(kind: Kind, config: &[(String, String)], key: &str) -> bool {
    if kind == Kind::Ct {
        return true;
    }
    let plug = config
        .iter()
        .find(|(k, _)| k == "hotplug")
        .map_or("network,disk,usb", |(_, v)| v.as_str());
    let want = if key == "cores" { "cpu" } else { "memory" };
    plug == "1" || plug.split(',').any(|p| p == want)
}

/// Sets cores and memory where they differ from the config (pending values count) and
/// grows the boot disk by `disk` GiB; `settings` must have passed [`Settings::check`].
pub(crate) fn set(
    node: &dyn Remote,
    kind: Kind,
    vmid: u64,
    settings: &Settings,
) -> Result<SetOutcome, HostError> {
    let running = status(node, kind, vmid)? == "running";
    let argv = config_argv(kind, vmid);
    let r = node.program(&argv, CommandOpts::QUERY)?;
    if r.code != 0 {
        return Err(fail(
            node,
            format!(
                "`{}` failed on {}: {}",
                argv.line(),
                node.name(),
                r.stderr.trim()
            ),
        ));
    }
    let config = parse_config(&r.stdout);
    let mut out = SetOutcome::default();
    let mut wanted = |key: &str, value: Option<i64>| {
        let v = value?;
        let now = current(kind, &config, key);
        (now != Some(v)).then(|| {
            out.changes.push(match now {
                Some(n) => format!("{key} {n} -> {v}"),
                None => format!("{key} {v}"),
            });
            if running && !hot(kind, &config, key) {
                out.pending.push(key.to_string());
            }
            v
        })
    };
    let cores = wanted("cores", settings.cores);
    let memory = wanted("memory", settings.memory);
    if let Some(argv) = set_argv(kind, vmid, cores, memory) {
        node.program(&argv, CommandOpts::CHANGE)?;
        if kind == Kind::Vm && running && !node.check_mode() {
            // What the node says waits, rather than fleet's guess from `hotplug`.
            let p = node.program(&pending_argv(vmid), CommandOpts::QUERY)?;
            if p.code == 0 {
                let keys = parse_pending(&p.stdout);
                out.pending.retain(|k| keys.contains(k));
                for k in ["cores", "memory"] {
                    if keys.iter().any(|p| p == k) && !out.pending.iter().any(|p| p == k) {
                        out.pending.push(k.to_string());
                    }
                }
            }
        }
    }
    if let Some(add) = settings.disk {
        let argv = resize_argv(kind, vmid, add);
        let r = node.program(&argv, CommandOpts::CHANGE)?;
        // A failed resize task still exits 0.
        if let Some(problem) = resize_failed(&r.stderr) {
            return Err(fail(
                node,
                format!("`{}` on {} failed: {problem}", argv.line(), node.name()),
            ));
        }
        out.changes.push(format!("{} +{add}G", kind.disk()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::fake::Scripted;

    #[test]
    fn golden_lifecycle_argv() {
        let line = |a: Action, k| a.argv(k, 105).line();
        assert_eq!(line(Action::Start, Kind::Vm), "qm start 105");
        assert_eq!(line(Action::Stop, Kind::Vm), "qm stop 105");
        assert_eq!(line(Action::Reboot, Kind::Vm), "qm reboot 105");
        assert_eq!(
            line(Action::Shutdown { timeout_s: 60 }, Kind::Vm),
            "qm shutdown 105 --timeout 60 --forceStop 1"
        );
        assert_eq!(line(Action::Start, Kind::Ct), "pct start 105");
        assert_eq!(line(Action::Stop, Kind::Ct), "pct stop 105");
        assert_eq!(line(Action::Reboot, Kind::Ct), "pct reboot 105");
        assert_eq!(
            line(Action::Shutdown { timeout_s: 30 }, Kind::Ct),
            "pct shutdown 105 --timeout 30 --forceStop 1"
        );
    }

    #[test]
    fn golden_set_and_resize_argv() {
        assert_eq!(
            set_argv(Kind::Vm, 105, Some(4), Some(4096)).unwrap().line(),
            "qm set 105 --cores 4 --memory 4096"
        );
        assert_eq!(
            set_argv(Kind::Ct, 200, None, Some(1024)).unwrap().line(),
            "pct set 200 --memory 1024"
        );
        assert!(set_argv(Kind::Vm, 105, None, None).is_none());
        assert_eq!(
            resize_argv(Kind::Vm, 105, 10).line(),
            "qm disk resize 105 scsi0 +10G"
        );
        assert_eq!(
            resize_argv(Kind::Ct, 200, 5).line(),
            "pct resize 200 rootfs +5G"
        );
        assert_eq!(pending_argv(105).line(), "qm pending 105");
        assert_eq!(status_argv(Kind::Ct, 200).line(), "pct status 200");
    }

    #[test]
    fn bad_values_are_named() {
        let err = |s: Settings| s.check().unwrap_err().to_string();
        assert_eq!(
            err(Settings::default()),
            "give at least one of --cores, --memory, --disk"
        );
        assert_eq!(
            err(Settings {
                cores: Some(0),
                ..Default::default()
            }),
            "cores `0`: must be between 1 and 1024"
        );
        assert_eq!(
            err(Settings {
                memory: Some(8),
                ..Default::default()
            }),
            "memory `8`: must be between 16 and 268435456 (MiB)"
        );
        assert!(
            err(Settings {
                disk: Some(-1),
                ..Default::default()
            })
            .starts_with("disk `-1`")
        );
        assert_eq!(parse_disk_add("+10"), Ok(10));
        assert_eq!(parse_disk_add("+10G"), Ok(10));
        for b in ["10", "+", "+-1", "+1.5", "+1T", "+1;reboot", "-5"] {
            assert!(parse_disk_add(b).is_err(), "{b}");
        }
        assert_eq!(
            parse_disk_add("+\u{1b}[2J").unwrap_err().to_string(),
            "disk `+\\u{1b}[2J`: must be +GiB, e.g. +10 (disks only grow)"
        );
        assert_eq!(Kind::from_var(None), Ok(Kind::Vm));
        assert_eq!(Kind::from_var(Some("ct")), Ok(Kind::Ct));
        assert!(Kind::from_var(Some("lxc")).is_err());
        assert!(check_vmid(99).is_err() && check_vmid(100).is_ok());
    }

    #[test]
    fn pending_keys() {
        let text =
            "cur boot: order=scsi0\ncur cores: 1\nnew cores: 2\nnew memory: 1024\ndel tags: x\n";
        assert_eq!(parse_pending(text), ["cores", "memory"]);
    }

    #[test]
    fn power_is_idempotent() {
        let node = Scripted::new(&[("qm status 105", 0, "status: running\n")]);
        assert!(!power(&node, Kind::Vm, 105, "web-3", Action::Start).unwrap());
        assert_eq!(node.printed(), ["web-3 (VM 105) is already running"]);
        let node = Scripted::new(&[
            ("pct status 200", 0, "status: running\n"),
            ("pct shutdown 200 --timeout 60 --forceStop 1", 0, ""),
        ]);
        let shutdown = Action::Shutdown { timeout_s: 60 };
        assert!(power(&node, Kind::Ct, 200, "ct-1", shutdown).unwrap());
        let node = Scripted::new(&[("qm status 105", 0, "status: stopped\n")]);
        let e = power(&node, Kind::Vm, 105, "web-3", Action::Reboot).unwrap_err();
        assert!(
            e.message.contains("is stopped, so it cannot reboot"),
            "{}",
            e.message
        );
        let node = Scripted::new(&[("qm status 105", 2, "")]);
        assert!(power(&node, Kind::Vm, 105, "web-3", Action::Stop).is_err());
    }

    #[test]
    fn set_changes_what_differs_and_says_what_waits_for_a_restart() {
        let config = "cores: 1\nmemory: 512\nscsi0: local-lvm:vm-105-disk-0,size=20G\n";
        let node = Scripted::new(&[
            ("qm status 105", 0, "status: running\n"),
            ("qm config 105", 0, config),
            ("qm set 105 --cores 2 --memory 1024", 0, ""),
            (
                "qm pending 105",
                0,
                "cur cores: 1\nnew cores: 2\ncur memory: 512\nnew memory: 1024\n",
            ),
            ("qm disk resize 105 scsi0 +5G", 0, ""),
        ]);
        let s = Settings {
            cores: Some(2),
            memory: Some(1024),
            disk: Some(5),
        };
        let out = set(&node, Kind::Vm, 105, &s).unwrap();
        assert_eq!(
            out.changes,
            ["cores 1 -> 2", "memory 512 -> 1024", "scsi0 +5G"]
        );
        assert_eq!(out.pending, ["cores", "memory"]);

        // Already so: nothing sent.
        let node = Scripted::new(&[
            ("qm status 105", 0, "status: stopped\n"),
            ("qm config 105", 0, "cores: 2\nmemory: 1024\n"),
        ]);
        let s = Settings { disk: None, ..s };
        assert_eq!(
            set(&node, Kind::Vm, 105, &s).unwrap(),
            SetOutcome::default()
        );

        // A container takes cores and memory while it runs.
        let node = Scripted::new(&[
            ("pct status 200", 0, "status: running\n"),
            ("pct config 200", 0, "memory: 512\n"),
            ("pct set 200 --cores 1 --memory 1024", 0, ""),
            ("pct resize 200 rootfs +1G", 0, ""),
        ]);
        let s = Settings {
            cores: Some(1),
            memory: Some(1024),
            disk: Some(1),
        };
        let out = set(&node, Kind::Ct, 200, &s).unwrap();
        assert_eq!(out.changes, ["cores 1", "memory 512 -> 1024", "rootfs +1G"]);
        assert!(out.pending.is_empty());

        // Check mode: the change is printed, the restart predicted from hotplug.
        let mut node = Scripted::new(&[
            ("qm status 105", 0, "status: running\n"),
            ("qm config 105", 0, "hotplug: network,disk,cpu\n"),
        ]);
        node.check = true;
        let s = Settings {
            cores: Some(4),
            memory: Some(2048),
            ..Default::default()
        };
        let out = set(&node, Kind::Vm, 105, &s).unwrap();
        assert_eq!(out.pending, ["memory"]);
        assert_eq!(node.ran()[2], "qm set 105 --cores 4 --memory 2048");

        // A resize alone.
        let node = Scripted::new(&[
            ("qm status 105", 0, "status: stopped\n"),
            ("qm config 105", 0, ""),
            ("qm disk resize 105 scsi0 +1G", 0, ""),
        ]);
        let s = Settings {
            disk: Some(1),
            ..Default::default()
        };
        assert!(set(&node, Kind::Vm, 105, &s).is_ok());
    }
}
