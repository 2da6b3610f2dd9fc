//! Backups as rsync snapshots, the data-safety rules in plain functions: snapshot names,
//! the rsync command line, its `--stats` output, and which snapshots a retention policy
//! keeps, and every shell line the backup procedures (`ops::backup`) run. Nothing here
//! deletes; it only decides, so every rule is tested without a host.

use crate::inventory::ResolvedHost;
use crate::ops::shell::quote;
use crate::ops::ssh::SshTarget;
use std::collections::BTreeSet;

/// The file that marks a directory as fleet's backup destination. fleet never writes
/// (let alone `--delete`s) into a non-empty directory without it.
pub(crate) const MARKER: &str = ".fleet-backups";
pub(crate) const PARTIAL: &str = ".partial";

/// `20261125T024000Z`: sortable, no `:` (rsync would read `a:b` as a remote host).
pub(crate) fn snapshot_name(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace(['-', ':'], "")
}

/// The time of a snapshot fleet named; None for anything else (never touched).
pub(crate) fn parse_snapshot_name(name: &str) -> Option<i64> {
    if name.len() != 16 || !name.ends_with('Z') || name.as_bytes()[8] != b'T' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &name[0..4],
        &name[4..6],
        &name[6..8],
        &name[9..11],
        &name[11..13],
        &name[13..15]
    );
    let t = humantime::parse_rfc3339(&iso).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// How many snapshots of each age bucket to keep, newest first in each bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Retention {
    /// The newest N snapshots whatever their age (at least 1: the newest is always kept).
    pub(crate) last: usize,
    /// Length of an "hourly" bucket in hours (e.g. 4: one snapshot per 4 hours).
    pub(crate) hourly_every: i64,
    pub(crate) hourly: usize,
    pub(crate) daily: usize,
    pub(crate) weekly: usize,
    pub(crate) monthly: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            last: 1,
            hourly_every: 4,
            hourly: 6,
            daily: 7,
            weekly: 4,
            monthly: 3,
        }
    }
}

/// Civil month number since year 0 of a unix time, for monthly buckets.
fn month_index(unix: i64) -> i64 {
    let days = unix.div_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + month - 1
}

/// The snapshots (by time) a policy keeps: for each bucket kind, the newest snapshot of
/// each of the newest N buckets; and always the newest snapshot of all.
pub(crate) fn keep(times: &[i64], policy: &Retention) -> BTreeSet<i64> {
    let mut sorted: Vec<i64> = times.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    let mut kept: BTreeSet<i64> = sorted.iter().take(policy.last.max(1)).copied().collect();
    let hour = 3_600 * policy.hourly_every.max(1);
    // Weeks start on Monday: 1970-01-01 was a Thursday, 4 days after a Monday.
    let buckets: [(&dyn Fn(i64) -> i64, usize); 4] = [
        (&|t| t.div_euclid(hour), policy.hourly),
        (&|t| t.div_euclid(86_400), policy.daily),
        (&|t| (t + 4 * 86_400).div_euclid(7 * 86_400), policy.weekly),
        (&month_index, policy.monthly),
    ];
    for (bucket, count) in buckets {
        let mut seen = BTreeSet::new();
        for t in &sorted {
            if seen.len() >= count {
                break;
            }
            if seen.insert(bucket(*t)) {
                kept.insert(*t);
            }
        }
    }
    kept
}

/// Where rsync reads from, and how it reaches the host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    /// `user@address` or `address`; None for this machine (plain paths).
    pub(crate) login: Option<String>,
    /// The `ssh …` command for rsync's `-e` (same options as fleet's own connection).
    pub(crate) ssh: Option<String>,
    pub(crate) paths: Vec<String>,
    /// rsync on the host runs as `sudo -n rsync`, so a login that is not root reads
    /// every file (a remote source only).
    pub(crate) sudo: bool,
}

/// Directories never worth copying when a whole system is backed up.
const SYSTEM_EXCLUDES: &[&str] = &["/proc/", "/sys/", "/dev/", "/run/", "/tmp/"];

/// Excludes anchored at the transfer root: relative to each source path.
pub(crate) fn excludes_for(paths: &[String], excludes: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        if p == "/" {
            out.extend(SYSTEM_EXCLUDES.iter().map(|s| s.to_string()));
        }
        let base = p.trim_end_matches('/');
        for e in excludes {
            out.push(format!("{base}/{}", e.trim_start_matches('/')));
        }
    }
    out
}

/// `rsync` pulling `source` into `dest` (a `….partial` directory), hard-linking files
/// unchanged since `link_dest`. `--relative` keeps the full paths inside the snapshot.
pub(crate) fn snapshot_args(
    source: &Source,
    dest: &str,
    link_dest: Option<&str>,
    excludes: &[String],
    one_file_system: bool,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--archive",
        "--hard-links",
        "--numeric-ids",
        "--relative",
        "--delete",
        "--delete-excluded",
        "--stats",
        "--protect-args",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if one_file_system {
        args.push("--one-file-system".into());
    }
    if let Some(l) = link_dest {
        args.push(format!("--link-dest={l}"));
    }
    for e in excludes_for(&source.paths, excludes) {
        args.push(format!("--exclude={e}"));
    }
    if let Some(ssh) = &source.ssh {
        args.push("-e".into());
        args.push(ssh.clone());
    }
    if source.sudo && source.login.is_some() {
        args.push("--rsync-path=sudo -n rsync".into());
    }
    // Sources and destination are never options, whatever a path or host holds.
    args.push("--".into());
    for p in &source.paths {
        args.push(match &source.login {
            Some(login) => format!("{login}:{p}"),
            None => p.clone(),
        });
    }
    args.push(format!("{}/", dest.trim_end_matches('/')));
    args
}

/// `rsync ARGS…` as one shell line, every argument quoted.
pub(crate) fn command(args: &[String]) -> String {
    std::iter::once("rsync".to_string())
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How rsync on the controller reaches `target`: its login (`user@address`) and the
/// `ssh …` for `-e`, with the run's own options for that host. rsync puts the login
/// after this command itself, so the address (and ssh's `--` before it) are left out.
pub(crate) fn controller_ssh(target: &SshTarget) -> (String, String) {
    controller_ssh_with(target, None)
}

/// [`controller_ssh`] over the run's master connection (its control socket `control`):
/// no login of its own, one session on the connection fleet already has.
pub(crate) fn controller_ssh_with(
    target: &SshTarget,
    control: Option<&std::path::Path>,
) -> (String, String) {
    let mut args = target.ssh_args();
    let address = args.pop().unwrap_or_default();
    if args.last().is_some_and(|a| a == "--") {
        args.pop();
    }
    let mut cmd = vec!["ssh".to_string(), "-o".into(), "BatchMode=yes".into()];
    if let Some(c) = control {
        cmd.extend([
            "-o".to_string(),
            "ControlMaster=no".into(),
            "-o".into(),
            format!("ControlPath={}", c.display()),
        ]);
    }
    cmd.extend(args);
    let login = match &target.user {
        Some(u) => format!("{u}@{address}"),
        None => address,
    };
    let ssh = cmd.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    (login, ssh)
}

/// How a backup host reaches a source when that differs from the controller's way (the
/// host var `backup_ssh`, the "connection string from the backup server"): a small,
/// strict grammar of ssh's own arguments, so no value can become another option.
///
/// `[-p PORT] [-l USER] [-i KEYFILE] [-o UserKnownHostsFile=PATH]
/// [-o IdentitiesOnly=yes|no] [-o StrictHostKeyChecking=yes|accept-new] [USER@]HOST`,
/// HOST last; paths absolute, without spaces or quotes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct BackupSsh {
    pub(crate) user: Option<String>,
    pub(crate) address: String,
    pub(crate) port: Option<u16>,
    /// `-i KEY` and `-o K=V` as ssh takes them, in order.
    pub(crate) options: Vec<String>,
}

/// Why a `backup_ssh` connection string is refused; the caller names the host and the
/// var. Values are shown with their control characters made visible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BackupSshError {
    #[error("`{}` after the host: the host ([user@]host) comes last", neutralise(.0))]
    AfterHost(String),
    #[error("`{0}` needs a value")]
    NoValue(&'static str),
    #[error("port `{}` is not a number from 1 to 65535", neutralise(.0))]
    Port(String),
    #[error("bad user `{}`", neutralise(.0))]
    User(String),
    #[error("bad address `{}`", neutralise(.0))]
    Address(String),
    #[error(
        "`{}` must be an absolute path without spaces, quotes, `$` or backslashes",
        neutralise(.0)
    )]
    Path(String),
    #[error(
        "`-o {}` is not allowed (only UserKnownHostsFile=PATH, \
         IdentitiesOnly=yes|no, StrictHostKeyChecking=yes|accept-new)",
        neutralise(.0)
    )]
    Option(String),
    #[error(
        "`{}` is not allowed (only -p PORT, -l USER, -i KEYFILE, -o …, then [user@]host)",
        neutralise(.0)
    )]
    Flag(String),
    #[error("no host: expected `[-p PORT] [user@]host`")]
    NoHost,
    #[error(transparent)]
    Value(#[from] crate::inventory::checks::BadValue),
}

fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    crate::ops::terminal::neutralise(s)
}

/// A path for ssh inside rsync's `-e`, which rsync splits on spaces: absolute, plain.
fn ssh_path(path: &str) -> Result<(), BackupSshError> {
    let plain = path
        .chars()
        .all(|c| !c.is_whitespace() && !c.is_control() && !"'\"\\`$".contains(c));
    if path.starts_with('/') && plain && path.len() > 1 {
        Ok(())
    } else {
        Err(BackupSshError::Path(path.to_string()))
    }
}

impl BackupSsh {
    /// Parses the connection string; the error says what is wrong (the caller names the
    /// host and the var).
    pub(crate) fn parse(text: &str) -> Result<BackupSsh, BackupSshError> {
        use crate::inventory::checks;
        use BackupSshError as E;
        let mut it = text.split_whitespace().peekable();
        let mut b = BackupSsh::default();
        let mut destination: Option<&str> = None;
        while let Some(word) = it.next() {
            if destination.is_some() {
                return Err(E::AfterHost(word.to_string()));
            }
            let mut value =
                |flag: &'static str| it.next().ok_or(E::NoValue(flag)).map(str::to_string);
            match word {
                "-p" => {
                    let v = value("-p")?;
                    let port = v.parse::<u16>().ok().filter(|p| *p > 0);
                    b.port = Some(port.ok_or(E::Port(v))?);
                }
                "-l" => {
                    let v = value("-l")?;
                    checks::user(&v)?;
                    if v.starts_with('-') {
                        return Err(E::User(v));
                    }
                    b.user = Some(v);
                }
                "-i" => {
                    let v = value("-i")?;
                    ssh_path(&v)?;
                    b.options.extend(["-i".to_string(), v]);
                }
                "-o" => {
                    let v = value("-o")?;
                    let ok = match v.split_once('=') {
                        Some(("UserKnownHostsFile", path)) => ssh_path(path).map(|_| true)?,
                        Some(("IdentitiesOnly", "yes" | "no")) => true,
                        Some(("StrictHostKeyChecking", "yes" | "accept-new")) => true,
                        _ => false,
                    };
                    if !ok {
                        return Err(E::Option(v));
                    }
                    b.options.extend(["-o".to_string(), v]);
                }
                w if w.starts_with('-') => {
                    return Err(E::Flag(w.to_string()));
                }
                w => destination = Some(w),
            }
        }
        let destination = destination.ok_or(E::NoHost)?;
        let address = match destination.rsplit_once('@') {
            Some((user, address)) => {
                checks::user(user)?;
                if user.starts_with('-') {
                    return Err(E::User(user.to_string()));
                }
                b.user = Some(user.to_string());
                address
            }
            None => destination,
        };
        checks::address(address)?;
        if address.starts_with('-') {
            return Err(E::Address(address.to_string()));
        }
        b.address = address.to_string();
        Ok(b)
    }
}

/// How a backup host's own rsync reaches the source: `via` (its `backup_ssh`) when
/// given, else the source's inventory login and port; the backup host's ssh with
/// `ssh_options` (`-i KEY …`, its own known_hosts) from the recipe.
pub(crate) fn backup_host_ssh(
    source: &ResolvedHost,
    via: Option<&BackupSsh>,
    ssh_options: &str,
) -> (String, String) {
    let (user, address, port) = match via {
        Some(v) => (v.user.as_deref(), v.address.as_str(), v.port),
        None => (source.user.as_deref(), source.address.as_str(), source.port),
    };
    let login = match user {
        Some(u) => format!("{u}@{address}"),
        None => address.to_string(),
    };
    let mut ssh = "ssh -o BatchMode=yes".to_string();
    if let Some(p) = port {
        ssh.push_str(&format!(" -p {p}"));
    }
    for o in via.map(|v| v.options.as_slice()).unwrap_or_default() {
        ssh.push(' ');
        ssh.push_str(o);
    }
    if !ssh_options.is_empty() {
        ssh.push(' ');
        ssh.push_str(ssh_options);
    }
    (login, ssh)
}

/// `rsync` copying `from` (a file or a directory, `dir` says which) of a snapshot back
/// to `to` on a host: through `via` (login and ssh command), or on this machine.
pub(crate) fn restore_args(
    from: &str,
    dir: bool,
    to: &str,
    via: Option<(String, String)>,
) -> Vec<String> {
    let slash = if dir { "/" } else { "" };
    let mut args: Vec<String> = [
        "--archive",
        "--hard-links",
        "--numeric-ids",
        "--protect-args",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--".into());
    args.push(format!("{from}{slash}"));
    match via {
        None => args.push(format!("{to}{slash}")),
        Some((login, ssh)) => {
            args.insert(0, ssh);
            args.insert(0, "-e".into());
            args.push(format!("{login}:{to}{slash}"));
        }
    }
    args
}

/// On a backup host: checks fleet's marker in `dir` (or makes `dir` and the marker when
/// it is missing or empty; exit 3 when it holds someone else's files), makes the
/// source's directory `host_dir` and lists the directories in it, one a line.
pub(crate) fn prepare_store_script(dir: &str, host_dir: &str) -> String {
    let (d, m) = (quote(dir), quote(&format!("{dir}/{MARKER}")));
    let h = quote(host_dir);
    format!(
        "if [ ! -f {m} ]; then if [ -e {d} ] && [ -n \"$(ls -A {d})\" ]; then exit 3; fi; \
         mkdir -p {d} && echo 'fleet backup snapshots' > {m} || exit 1; fi; \
         mkdir -p {h} && cd {h} && for n in *; do [ -d \"$n\" ] && printf '%s\\n' \"$n\"; done; true"
    )
}

/// On a backup host: whether `path` is a directory (`dir`), another file (`file`) or
/// missing (`missing`), one word on stdout.
pub(crate) fn probe_command(path: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -d {p} ]; then echo dir; elif [ -e {p} ] || [ -L {p} ]; then echo file; else echo missing; fi"
    )
}

/// The exit code of [`prepare_store_script`] for a directory without fleet's marker.
pub(crate) const NOT_OURS: i32 = 3;

/// Removes one snapshot directory fleet named.
pub(crate) fn remove_command(path: &str) -> String {
    format!("rm -rf -- {}", quote(path))
}

/// Completes a snapshot: `….partial` becomes its final name (never moved inside `to`).
pub(crate) fn rename_command(from: &str, to: &str) -> String {
    format!("mv -T -- {} {}", quote(from), quote(to))
}

/// What rsync's `--stats` said.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Stats {
    pub(crate) files_transferred: u64,
    pub(crate) bytes_transferred: u64,
    pub(crate) total_size: u64,
}

fn number_after(line: &str, label: &str) -> Option<u64> {
    let rest = line.trim().strip_prefix(label)?;
    let digits: String = rest
        .trim_start_matches(':')
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .filter(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

pub(crate) fn parse_stats(output: &str) -> Stats {
    let mut s = Stats::default();
    for line in output.lines() {
        if let Some(n) = number_after(line, "Number of regular files transferred") {
            s.files_transferred = n;
        } else if let Some(n) = number_after(line, "Total file size") {
            s.total_size = n;
        } else if let Some(n) = number_after(line, "Total bytes received") {
            s.bytes_transferred += n;
        } else if let Some(n) = number_after(line, "Total bytes sent") {
            s.bytes_transferred += n;
        }
    }
    s
}

/// Whether rsync failed because ssh could not reach the source (255, or 12 when ssh
/// died before the protocol started): the host is unreachable, not failed.
pub(crate) fn source_unreachable(code: i32, stderr: &str) -> bool {
    code == 255
        || (code == 12
            && [
                "ssh: ",
                "Connection refused",
                "Connection closed",
                "Host key verification failed",
                "Permission denied (",
            ]
            .iter()
            .any(|s| stderr.contains(s)))
}

/// rsync's exit codes that still mean a complete snapshot: 24 = files vanished while
/// being copied (a live system always has some).
pub(crate) fn succeeded(code: i32) -> bool {
    code == 0 || code == 24
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        let t = 1_795_000_000;
        let name = snapshot_name(t);
        assert_eq!(name.len(), 16);
        assert!(!name.contains(':'));
        assert_eq!(parse_snapshot_name(&name), Some(t));
        for other in [
            "important",
            "20261125T024000Z.partial",
            "2026-11-25",
            "20261399T999999Z",
        ] {
            assert_eq!(parse_snapshot_name(other), None, "{other}");
        }
    }

    fn only(kind: usize, count: usize) -> Retention {
        let mut counts = [0; 4];
        counts[kind] = count;
        Retention {
            last: 1,
            hourly_every: 4,
            hourly: counts[0],
            daily: counts[1],
            weekly: counts[2],
            monthly: counts[3],
        }
    }

    #[test]
    fn retention_keeps_exactly_the_configured_counts() {
        // One snapshot every hour for 150 days.
        let now = 1_795_000_000;
        let times: Vec<i64> = (0..150 * 24).map(|h| now - h * 3_600).collect();
        // Each kind alone keeps exactly its count (the newest of each bucket).
        for (kind, count) in [(0, 6), (1, 7), (2, 4), (3, 3)] {
            assert_eq!(keep(&times, &only(kind, count)).len(), count, "kind {kind}");
        }
        let daily = keep(&times, &only(1, 7));
        let days: BTreeSet<i64> = daily.iter().map(|t| t.div_euclid(DAY)).collect();
        assert_eq!(days.len(), 7, "one per day");
        for t in &daily {
            let same_day_newer = times
                .iter()
                .any(|o| o > t && o.div_euclid(DAY) == t.div_euclid(DAY));
            assert!(!same_day_newer, "the newest of its day");
        }
        // Together: the union, never more than the sum, always the newest.
        let all = keep(&times, &Retention::default());
        assert!(all.len() <= 6 + 7 + 4 + 3 && all.len() >= 7);
        assert!(all.contains(&now));
        assert!(daily.is_subset(&all));
    }

    #[test]
    fn retention_with_zero_counts_keeps_only_the_newest() {
        let policy = Retention {
            last: 0,
            hourly_every: 1,
            hourly: 0,
            daily: 0,
            weekly: 0,
            monthly: 0,
        };
        let kept = keep(&[10, 20, 30], &policy);
        assert_eq!(kept.into_iter().collect::<Vec<_>>(), [30]);
    }

    #[test]
    fn daily_counts_are_exact_for_a_daily_series() {
        let times: Vec<i64> = (0..30).map(|d| 1_795_000_000 - d * DAY).collect();
        let policy = Retention {
            last: 1,
            hourly_every: 4,
            hourly: 0,
            daily: 5,
            weekly: 0,
            monthly: 0,
        };
        assert_eq!(keep(&times, &policy).len(), 5);
    }

    #[test]
    fn last_keeps_the_newest_whatever_their_buckets() {
        let policy = Retention {
            last: 3,
            ..Retention::default()
        };
        assert_eq!(
            keep(&[1, 2, 3, 4, 5], &policy)
                .into_iter()
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    #[test]
    fn months_are_civil_months() {
        // 2026-01-31 and 2026-02-01 are different months; 2026-02-01 and 2026-02-28 not.
        let jan31 = 1_769_817_600;
        assert_eq!(month_index(jan31 + DAY), month_index(jan31 + 28 * DAY));
        assert_ne!(month_index(jan31), month_index(jan31 + DAY));
    }

    #[test]
    fn the_command_line_pulls_with_link_dest_and_anchored_excludes() {
        let source = Source {
            login: Some("backup@10.0.0.5".into()),
            ssh: Some("ssh -p 2222".into()),
            paths: vec!["/home".into(), "/etc".into()],
            sudo: false,
        };
        let args = snapshot_args(
            &source,
            "/srv/b/web-1/20261125T024000Z.partial",
            Some("/srv/b/web-1/20261124T024000Z"),
            &["cache".into()],
            true,
        );
        assert_eq!(
            args.join(" "),
            "--archive --hard-links --numeric-ids --relative --delete --delete-excluded --stats \
             --protect-args --one-file-system --link-dest=/srv/b/web-1/20261124T024000Z \
             --exclude=/home/cache --exclude=/etc/cache -e ssh -p 2222 -- backup@10.0.0.5:/home \
             backup@10.0.0.5:/etc /srv/b/web-1/20261125T024000Z.partial/"
        );
        // A login that is not root reads through sudo on the host.
        let sudo = Source {
            sudo: true,
            ..source
        };
        let args = snapshot_args(&sudo, "/srv/b/x.partial", None, &[], false);
        assert!(
            args.contains(&"--rsync-path=sudo -n rsync".to_string()),
            "{args:?}"
        );
        let root = excludes_for(&["/".into()], &[]);
        assert_eq!(root, ["/proc/", "/sys/", "/dev/", "/run/", "/tmp/"]);
    }

    #[test]
    fn stats_are_read_from_rsync_output() {
        let out = "Number of files: 12 (reg: 9, dir: 3)\nNumber of created files: 9\n\
                   Number of regular files transferred: 9\nTotal file size: 1,234,567 bytes\n\
                   Total transferred file size: 1,234,567 bytes\nTotal bytes sent: 512\n\
                   Total bytes received: 1,240,000\n";
        assert_eq!(
            parse_stats(out),
            Stats {
                files_transferred: 9,
                bytes_transferred: 1_240_512,
                total_size: 1_234_567
            }
        );
        assert!(succeeded(24) && !succeeded(23));
        assert!(source_unreachable(255, ""));
        assert!(source_unreachable(
            12,
            "ssh: connect to host 10.0.0.5 port 22: Connection refused"
        ));
        assert!(!source_unreachable(
            12,
            "rsync: write failed: No space left on device"
        ));
    }

    fn host(user: Option<&str>, port: Option<u16>) -> ResolvedHost {
        ResolvedHost {
            name: "web-1".into(),
            address: "10.0.0.5".into(),
            port,
            user: user.map(String::from),
            identity_file: None,
            connection: crate::inventory::Connection::Ssh,
            groups: Vec::new(),
            vars: Default::default(),
        }
    }

    #[test]
    fn the_rsync_line_quotes_every_argument() {
        let args = ["--archive".to_string(), "--".into(), "/a b/it's".into()];
        assert_eq!(command(&args), r"rsync --archive -- '/a b/it'\''s'");
    }

    #[test]
    fn the_controller_reaches_a_host_with_the_runs_ssh_options() {
        let mut target =
            crate::ops::ssh::target_for(&host(Some("ops"), Some(2222)), &Default::default());
        target.identity_file = Some("/keys/id ed".into());
        let (login, ssh) = controller_ssh(&target);
        assert_eq!(login, "ops@10.0.0.5");
        assert_eq!(
            ssh,
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 \
             -o IdentitiesOnly=yes -i '/keys/id ed' -p 2222 -l ops"
        );
        let target = crate::ops::ssh::target_for(&host(None, None), &Default::default());
        assert_eq!(controller_ssh(&target).0, "10.0.0.5");
    }

    #[test]
    fn a_backup_host_reaches_the_source_with_its_own_ssh() {
        assert_eq!(
            backup_host_ssh(
                &host(Some("root"), Some(2222)),
                None,
                "-i /root/.ssh/backup"
            ),
            (
                "root@10.0.0.5".to_string(),
                "ssh -o BatchMode=yes -p 2222 -i /root/.ssh/backup".to_string()
            )
        );
        assert_eq!(
            backup_host_ssh(&host(None, None), None, ""),
            ("10.0.0.5".to_string(), "ssh -o BatchMode=yes".to_string())
        );
    }

    #[test]
    fn a_restore_pushes_after_a_double_dash() {
        let via = Some(("ops@10.0.0.5".to_string(), "ssh -p 2222".to_string()));
        assert_eq!(
            restore_args("/b/web-1/20261125T024000Z/etc", true, "/etc", via).join(" "),
            "-e ssh -p 2222 --archive --hard-links --numeric-ids --protect-args -- \
             /b/web-1/20261125T024000Z/etc/ ops@10.0.0.5:/etc/"
        );
        assert_eq!(
            restore_args("/b/x/etc/hosts", false, "/tmp/hosts", None).join(" "),
            "--archive --hard-links --numeric-ids --protect-args -- /b/x/etc/hosts /tmp/hosts"
        );
    }

    #[test]
    fn store_commands_on_a_backup_host() {
        assert_eq!(
            prepare_store_script("/srv/my backups", "/srv/my backups/web-1"),
            "if [ ! -f '/srv/my backups/.fleet-backups' ]; then if [ -e '/srv/my backups' ] \
             && [ -n \"$(ls -A '/srv/my backups')\" ]; then exit 3; fi; mkdir -p '/srv/my backups' \
             && echo 'fleet backup snapshots' > '/srv/my backups/.fleet-backups' || exit 1; fi; \
             mkdir -p '/srv/my backups/web-1' && cd '/srv/my backups/web-1' && for n in *; do \
             [ -d \"$n\" ] && printf '%s\\n' \"$n\"; done; true"
        );
        assert_eq!(
            remove_command("/srv/b/web-1/20261125T024000Z.partial"),
            "rm -rf -- /srv/b/web-1/20261125T024000Z.partial"
        );
        assert_eq!(remove_command("/srv/b/-x"), "rm -rf -- /srv/b/-x");
        assert_eq!(
            rename_command("/b/h/20261125T024000Z.partial", "/b/h/20261125T024000Z"),
            "mv -T -- /b/h/20261125T024000Z.partial /b/h/20261125T024000Z"
        );
    }

    #[test]
    fn backup_ssh_errors_say_what_is_wrong() {
        use BackupSshError as E;
        let cases = [
            (
                E::AfterHost("x\x1b".into()),
                "`x^[` after the host: the host ([user@]host) comes last",
            ),
            (E::NoValue("-p"), "`-p` needs a value"),
            (
                E::Port("0".into()),
                "port `0` is not a number from 1 to 65535",
            ),
            (E::User("-o".into()), "bad user `-o`"),
            (E::Address("-x".into()), "bad address `-x`"),
            (
                E::Path("a b".into()),
                "`a b` must be an absolute path without spaces, quotes, `$` or backslashes",
            ),
            (
                E::Option("ProxyCommand=x".into()),
                "`-o ProxyCommand=x` is not allowed (only UserKnownHostsFile=PATH, \
                 IdentitiesOnly=yes|no, StrictHostKeyChecking=yes|accept-new)",
            ),
            (
                E::Flag("--help".into()),
                "`--help` is not allowed (only -p PORT, -l USER, -i KEYFILE, -o …, then [user@]host)",
            ),
            (E::NoHost, "no host: expected `[-p PORT] [user@]host`"),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
        let bad = crate::inventory::checks::user("a;b").unwrap_err();
        assert_eq!(E::from(bad.clone()).to_string(), bad.to_string());
    }

    #[test]
    fn a_backup_ssh_string_is_read_strictly() {
        let via = BackupSsh::parse(
            "-p 2203 -i /root/.ssh/backup -o UserKnownHostsFile=/root/kh root@edge",
        )
        .unwrap();
        assert_eq!(
            backup_host_ssh(&host(Some("ops"), Some(22)), Some(&via), ""),
            (
                "root@edge".to_string(),
                "ssh -o BatchMode=yes -p 2203 -i /root/.ssh/backup -o UserKnownHostsFile=/root/kh"
                    .to_string()
            )
        );
        let via = BackupSsh::parse("-l backup 10.1.2.3").unwrap();
        assert_eq!(
            backup_host_ssh(&host(None, Some(2222)), Some(&via), "").0,
            "backup@10.1.2.3"
        );
        for (bad, why) in [
            ("", "no host"),
            ("-p 2203", "no host"),
            ("-oProxyCommand=sh root@edge", "is not allowed"),
            ("-o ProxyCommand=touch /tmp/x root@edge", "is not allowed"),
            ("root@edge -p 22", "comes last"),
            ("-p 0 edge", "not a number from 1 to 65535"),
            ("-p x edge", "not a number"),
            ("-i key edge", "must be an absolute path"),
            ("-i /a'b edge", "must be an absolute path"),
            (
                "-o UserKnownHostsFile=$HOME/kh edge",
                "must be an absolute path",
            ),
            ("--help", "is not allowed"),
            ("-l -oProxyCommand=x edge", "bad user"),
            ("root@-oProxyCommand=x", "bad address"),
            ("a;b@edge", "not allowed in a login name"),
            ("root@ed ge", "comes last"),
            ("-p", "needs a value"),
        ] {
            let err = BackupSsh::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
