//! apt as `fleet update` and `fleet status` use it: the simulated upgrade read back
//! into pending and security updates, and the non-interactive command lines.

use super::remote::{CommandOpts, Remote};
use super::shell::Argv;
use crate::outcome::HostError;
use std::time::{Duration, Instant};

/// Default reboot: systemd's, else SysV's.
pub(crate) const REBOOT_COMMAND: &str = "systemctl reboot || shutdown -r now";
/// Default boot marker: changes with every boot of a Linux kernel.
pub(crate) const BOOT_MARKER: &str = "cat /proc/sys/kernel/random/boot_id";

/// The options map of `apt::pending`: `refresh` (default true) runs `apt-get update` first.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingOpts {
    #[serde(default = "yes")]
    pub(crate) refresh: bool,
}

fn yes() -> bool {
    true
}

/// The options map of `reboot`: how to reboot, how to tell a new boot, how long to wait.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RebootOpts {
    #[serde(default = "reboot_command")]
    pub(crate) command: String,
    #[serde(default = "boot_marker")]
    pub(crate) marker: String,
    #[serde(default = "ten_minutes", deserialize_with = "super::options::seconds")]
    pub(crate) timeout: Duration,
    #[serde(default = "five_seconds", deserialize_with = "super::options::seconds")]
    pub(crate) interval: Duration,
}

fn reboot_command() -> String {
    REBOOT_COMMAND.into()
}
fn boot_marker() -> String {
    BOOT_MARKER.into()
}
fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}
fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// `apt-get -s`: what an upgrade would do, as any user, without the lock.
pub(crate) const SIMULATE: &str =
    "apt-get -s -o Debug::NoLocking=1 upgrade --with-new-pkgs 2>/dev/null";

/// Refreshes the package lists: `apt-get update -q`, one program, so through sudo it
/// needs a rule for /usr/bin/apt-get only.
pub(crate) fn refresh_argv() -> Argv {
    Argv::new("apt-get").args(["update", "-q"])
}

/// apt-get's own options that keep it from asking: `-y`, and changed config files keep
/// the local version (confold) while new defaults are taken where nothing was changed
/// (confdef).
const QUIET: [&str; 6] = [
    "-y",
    "-q",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
];

/// apt-get with [`QUIET`]; `env`: also `DEBIAN_FRONTEND=noninteractive`, which sudo lets
/// through only for root and full sudo (`ops::sudo::Access::sets_env`). Without it
/// debconf finds no terminal and stdin at its end (fleet's commands read /dev/null),
/// falls back to its Teletype frontend and takes every question's default: the same
/// answers, more chatter in the log.
fn quiet_apt_get(env: bool) -> Argv {
    let argv = Argv::new("apt-get");
    let argv = if env {
        argv.env("DEBIAN_FRONTEND", "noninteractive")
    } else {
        argv
    };
    argv.args(QUIET)
}

/// Upgrades everything without a question (see [`quiet_apt_get`]).
pub(crate) fn upgrade_argv(env: bool) -> Argv {
    quiet_apt_get(env).args(["upgrade", "--with-new-pkgs"])
}

/// Installs `packages` (checked names) without recommends or questions.
pub(crate) fn install_argv(packages: &[String], env: bool) -> Argv {
    quiet_apt_get(env)
        .args(["install", "--no-install-recommends", "--"])
        .args(packages.iter().cloned())
}

/// A Debian package name (policy 5.6.1: lower case letters, digits, `+ - .`, at least
/// two characters, starting with a letter or digit): nothing else reaches apt-get.
pub(crate) fn valid_package(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 200
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Which of `packages` dpkg knows as installed, one query for all (as any user).
pub(crate) fn installed_query(packages: &[String]) -> String {
    let names: Vec<String> = packages.iter().map(|p| super::shell::quote(p)).collect();
    format!(
        "dpkg-query -W -f='${{Package}} ${{db:Status-Status}}\\n' -- {} 2>/dev/null",
        names.join(" ")
    )
}

/// Reads [`installed_query`]'s answer: the installed packages.
pub(crate) fn parse_installed(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [name, "installed"] => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// Debian and Ubuntu touch this file when an installed update needs a reboot.
pub(crate) const REBOOT_REQUIRED: &str = "test -e /var/run/reboot-required";

/// One package an upgrade would install or upgrade.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Pending {
    /// `name` for recipes: `package` is a reserved word in Rhai.
    #[serde(rename = "name")]
    pub(crate) package: String,
    /// The installed version; None for a new package.
    pub(crate) from: Option<String>,
    pub(crate) to: String,
    pub(crate) security: bool,
}

/// Reads `apt-get -s upgrade` output: `Inst NAME [OLD] (NEW ORIGIN [ARCH])` lines.
/// An update is a security update when an origin names a security archive
/// (`Debian-Security:12/stable-security`, `Ubuntu:22.04/jammy-security`).
pub(crate) fn parse_simulation(text: &str) -> Vec<Pending> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Inst ")?;
            let (package, rest) = rest.split_once(' ')?;
            let (from, rest) = match rest.strip_prefix('[') {
                Some(r) => {
                    let (old, r) = r.split_once(']')?;
                    (Some(old.to_string()), r.trim_start())
                }
                None => (None, rest),
            };
            let inner = rest.strip_prefix('(')?.split_once(')')?.0;
            let mut words = inner.split_whitespace();
            let to = words.next()?.to_string();
            let origins: Vec<&str> = words.collect();
            let security = origins
                .iter()
                .any(|o| o.contains("-security") || o.contains("Security"));
            Some(Pending {
                package: package.to_string(),
                from,
                to,
                security,
            })
        })
        .collect()
}

// The procedures of `fleet update` and `fleet status` on a host, over `Remote`.

/// Fails clearly on a host without apt-get, naming its system.
fn require_apt(r: &dyn Remote, what: &str) -> Result<(), HostError> {
    if r.command("command -v apt-get", CommandOpts::QUERY)?.code == 0 {
        return Ok(());
    }
    let os = r
        .command(
            ". /etc/os-release 2>/dev/null; echo \"${PRETTY_NAME:-an unknown system}\"",
            CommandOpts::QUERY,
        )?
        .stdout;
    Err(HostError::new(
        r.name(),
        format!(
            "{} runs {}, which has no apt-get: {what} supports Debian and Ubuntu (apt) only",
            r.name(),
            os.trim()
        ),
    ))
}

/// The host's pending updates; `refresh` runs `apt-get update` first (not a change).
pub(crate) fn pending(r: &dyn Remote, refresh: bool) -> Result<Vec<Pending>, HostError> {
    require_apt(r, "fleet update")?;
    if refresh {
        // Also in check mode: fresh lists are a cache, not a change to the host, and
        // without them a dry run on old lists reports nothing pending.
        // A dry run that cannot refresh (lists locked by another apt) still counts.
        let check = r.check_mode();
        let sudo = super::sudo::access(r)?.needs_sudo();
        let out = r.program(
            &refresh_argv(),
            CommandOpts {
                sudo,
                read_only: true,
                allow_fail: check,
                changed: Some(false),
                timeout: Some(Duration::from_secs(600)),
            },
        )?;
        if out.code != 0 {
            r.event(&format!(
                "warning: cannot refresh the package lists (apt-get update exited with {}: {}); counting from the lists as they are",
                out.code,
                crate::ops::text::tail(&out.stderr, 1)
            ));
        }
    }
    let sim = r.command(SIMULATE, CommandOpts::QUERY)?;
    Ok(parse_simulation(&sim.stdout))
}

/// `apt-get update`: fresh package lists, not a change.
fn refresh_lists(r: &dyn Remote, sudo: bool) -> Result<(), HostError> {
    r.program(
        &refresh_argv(),
        CommandOpts {
            sudo,
            changed: Some(false),
            timeout: Some(Duration::from_secs(600)),
            ..CommandOpts::default()
        },
    )
    .map(|_| ())
}

/// Upgrades every package (output streams to the progress line and the log).
pub(crate) fn upgrade(r: &dyn Remote) -> Result<(), HostError> {
    let access = super::sudo::access(r)?;
    r.program(
        &upgrade_argv(access.sets_env()),
        CommandOpts {
            sudo: access.needs_sudo(),
            timeout: Some(Duration::from_secs(3600)),
            ..CommandOpts::default()
        },
    )
    .map(|_| ())
}

/// Installs the packages of `packages` that are missing (`apt-get update` first, as a
/// fresh machine has no package lists); true when it installed something. In --check
/// the two commands are shown, and the host counts as changed.
pub(crate) fn install(r: &dyn Remote, packages: &[String]) -> Result<bool, HostError> {
    if let Some(bad) = packages.iter().find(|p| !valid_package(p)) {
        return Err(HostError::new(
            r.name(),
            format!(
                "`{}` is not a Debian package name (lower case letters, digits, + - .)",
                bad.escape_debug()
            ),
        ));
    }
    if packages.is_empty() {
        return Ok(false);
    }
    require_apt(r, "fleet's package functions")?;
    let installed = parse_installed(
        &r.command(&installed_query(packages), CommandOpts::QUERY)?
            .stdout,
    );
    let mut missing: Vec<String> = packages
        .iter()
        .filter(|p| !installed.contains(p))
        .cloned()
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(false);
    }
    let access = super::sudo::access(r)?;
    let sudo = access.needs_sudo();
    refresh_lists(r, sudo)?;
    r.program(
        &install_argv(&missing, access.sets_env()),
        CommandOpts {
            sudo,
            timeout: Some(Duration::from_secs(1800)),
            ..CommandOpts::default()
        },
    )?;
    Ok(true)
}

pub(crate) fn reboot_required(r: &dyn Remote) -> Result<bool, HostError> {
    Ok(r.command(REBOOT_REQUIRED, CommandOpts::QUERY)?.code == 0)
}

/// Reboots the host with `command` and waits until it answers again with a boot
/// marker (`marker`'s output, by default the kernel's boot id) other than before.
pub(crate) fn reboot(
    r: &dyn Remote,
    command: &str,
    marker: &str,
    timeout: Duration,
    interval: Duration,
) -> Result<Duration, HostError> {
    let before = r.command(marker, CommandOpts::QUERY)?;
    if before.code != 0 || before.stdout.trim().is_empty() {
        return Err(HostError::new(
            r.name(),
            format!(
                "cannot tell reboots apart on {}: `{marker}` printed nothing",
                r.name()
            ),
        ));
    }
    if r.check_mode() {
        r.out(&format!("would reboot: {command}"));
        return Ok(Duration::ZERO);
    }
    let sudo = r.needs_sudo()?;
    let started = Instant::now();
    // The connection may drop before the command returns: that is the reboot.
    let _ = r.command(
        command,
        CommandOpts {
            sudo,
            allow_fail: true,
            timeout: Some(Duration::from_secs(30)),
            ..CommandOpts::default()
        },
    );
    r.mark_changed();
    let mut last = String::from("no answer yet");
    loop {
        std::thread::sleep(interval);
        if r.aborted() {
            return Err(HostError::new(
                r.name(),
                format!("waiting for {} to reboot was interrupted", r.name()),
            ));
        }
        let waited = started.elapsed();
        if waited > timeout {
            return Err(HostError::unreachable(
                r.name(),
                format!(
                    "{} did not come back within {}s of the reboot ({last})",
                    r.name(),
                    timeout.as_secs()
                ),
            ));
        }
        r.activity(&format!(
            "rebooting: waiting for it to come back ({}s)",
            waited.as_secs()
        ));
        r.reconnect();
        match r.command(marker, CommandOpts::QUERY) {
            Ok(r)
                if r.code == 0
                    && r.stdout.trim() != before.stdout.trim()
                    && !r.stdout.trim().is_empty() =>
            {
                return Ok(started.elapsed());
            }
            Ok(_) => last = "it still runs the same boot".into(),
            Err(e) => last = e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIM: &str = "NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  libssl3 openssl tzdata
3 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.
Inst libssl3 [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security, Debian:12.11/stable [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])
Inst linux-image-6.1.0-35-amd64 (6.1.137-1 Debian:12.11/stable [amd64])
Conf libssl3 (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
";

    #[test]
    fn pending_and_security_updates() {
        let p = parse_simulation(SIM);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].package, "libssl3");
        assert_eq!(p[0].from.as_deref(), Some("3.0.15-1~deb12u1"));
        assert_eq!(p[0].to, "3.0.17-1~deb12u2");
        assert!(p[0].security && p[1].security);
        assert!(!p[2].security);
        assert_eq!(p[3].from, None);
        assert_eq!(p.iter().filter(|p| p.security).count(), 2);
        let ubuntu = "Inst curl [7.81.0-1ubuntu1.15] (7.81.0-1ubuntu1.16 Ubuntu:22.04/jammy-security [amd64])";
        assert!(parse_simulation(ubuntu)[0].security);
        assert!(parse_simulation("0 upgraded, 0 newly installed\n").is_empty());
    }

    #[test]
    fn reboot_waits_for_another_boot_marker_through_sudo() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[
            ("cat /proc/sys/kernel/random/boot_id", 0, "boot-1\n"),
            ("id -u", 0, "1000\n"),
            ("sudo systemctl reboot", 0, ""),
            ("cat /proc/sys/kernel/random/boot_id", 0, "boot-1\n"),
            ("cat /proc/sys/kernel/random/boot_id", 0, "boot-2\n"),
        ]);
        let took = reboot(
            &r,
            "systemctl reboot",
            "cat /proc/sys/kernel/random/boot_id",
            Duration::from_secs(60),
            Duration::from_millis(1),
        )
        .unwrap();
        assert!(took < Duration::from_secs(60));
        assert_eq!(r.ran().len(), 5);
    }

    #[test]
    fn reboot_in_check_mode_only_says_so() {
        use crate::ops::remote::fake::Scripted;
        let mut r = Scripted::new(&[("cat /proc/sys/kernel/random/boot_id", 0, "boot-1\n")]);
        r.check = true;
        let took = reboot(
            &r,
            "systemctl reboot",
            "cat /proc/sys/kernel/random/boot_id",
            Duration::from_secs(60),
            Duration::from_millis(1),
        )
        .unwrap();
        assert_eq!(took, Duration::ZERO);
    }

    const LIMITED: &str = "User o may run the following commands on h:\n    (root) NOPASSWD: /usr/bin/apt-get, /usr/bin/apt\n";

    #[test]
    fn apt_runs_as_one_program_and_sets_the_frontend_only_where_sudo_lets_it() {
        assert_eq!(refresh_argv().sudo_line(), "sudo -n -- apt-get update -q");
        assert_eq!(
            upgrade_argv(false).sudo_line(),
            "sudo -n -- apt-get -y -q -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold upgrade --with-new-pkgs"
        );
        assert_eq!(
            install_argv(&["ufw".into()], true).line(),
            "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef \
             -o Dpkg::Options::=--force-confold install --no-install-recommends -- ufw"
        );
    }

    #[test]
    fn install_asks_sudo_for_apt_get_alone() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[
            ("command -v apt-get", 0, "/usr/bin/apt-get\n"),
            ("dpkg-query -W", 0, "curl installed\nufw not-installed\n"),
            ("if [ \"$(id -u)\" = 0 ]", 0, LIMITED),
            ("sudo -- apt-get update -q", 0, ""),
            (
                "sudo -- apt-get -y -q -o Dpkg::Options::=--force-confdef",
                0,
                "",
            ),
        ]);
        assert!(install(&r, &["curl".into(), "ufw".into()]).unwrap());
        let ran = r.ran();
        assert!(
            ran[4].ends_with("install --no-install-recommends -- ufw"),
            "{ran:?}"
        );
        // Nothing missing: nothing runs after the query.
        let r = Scripted::new(&[
            ("command -v apt-get", 0, "/usr/bin/apt-get\n"),
            ("dpkg-query -W", 0, "curl installed\n"),
        ]);
        assert!(!install(&r, &["curl".into()]).unwrap());
    }

    #[test]
    fn install_refuses_what_is_not_a_package_name() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[]);
        for bad in [
            "-o=APT::Update::Pre-Invoke::=id",
            "a b",
            "x",
            "Curl",
            "c;reboot",
        ] {
            let e = install(&r, &[bad.into()]).unwrap_err();
            assert!(
                e.message.contains("is not a Debian package name"),
                "{}",
                e.message
            );
        }
        assert!(valid_package("libstdc++6") && valid_package("python3.11"));
        assert_eq!(
            parse_installed("curl installed\nufw not-installed\nbad line here\n"),
            ["curl"]
        );
    }

    #[test]
    fn pending_on_a_host_without_apt_names_its_system() {
        use crate::ops::remote::fake::Scripted;
        let r = Scripted::new(&[
            ("command -v apt-get", 1, ""),
            (". /etc/os-release", 0, "Alpine Linux v3.20\n"),
        ]);
        let err = pending(&r, true).unwrap_err();
        assert!(
            err.message.contains("runs Alpine Linux v3.20"),
            "{}",
            err.message
        );
    }
}
