//! The facts behind `fleet status`: one read-only shell command per host, its
//! `key=value` answer parsed, and what the journal says about a host's last update
//! and backup. Pure functions; `commands::status` does the I/O.

use serde::{Deserialize, Serialize};

/// The line after which the command's output is apt's simulated upgrade.
const APT_MARK: &str = "--- apt simulation ---";
/// The line after which it is what sudo allows (`ops::sudo::ACCESS_QUERY`).
const SUDO_MARK: &str = "--- sudo ---";

/// Everything in one round trip, as any user; apt's simulation (the one `fleet update`
/// reads, `ops::apt`) needs no lock, `sudo -n -l` no password.
pub(crate) fn facts_command() -> String {
    format!(
        r#". /etc/os-release 2>/dev/null; echo "os=${{PRETTY_NAME:-unknown}}"
echo "kernel=$(uname -r)"
echo "uptime=$(cut -d' ' -f1 /proc/uptime)"
if {reboot}; then echo reboot=yes; else echo reboot=no; fi
{certs}
echo '{SUDO_MARK}'; {sudo}
if command -v apt-get >/dev/null; then echo '{APT_MARK}'; {simulate}; fi"#,
        reboot = crate::ops::apt::REBOOT_REQUIRED,
        sudo = crate::ops::sudo::ACCESS_QUERY,
        certs = crate::ops::proxy::CERTS_QUERY,
        simulate = crate::ops::apt::SIMULATE,
    )
}

/// A host's facts at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Facts {
    pub(crate) os: String,
    pub(crate) kernel: String,
    pub(crate) uptime_seconds: u64,
    /// None where there is no apt to ask.
    pub(crate) pending: Option<u64>,
    pub(crate) security: Option<u64>,
    pub(crate) reboot_required: bool,
    /// What sudo allows without a password: everything (or root), some programs, nothing.
    #[serde(default)]
    pub(crate) sudo: crate::ops::sudo::Level,
    /// The certificates of the host's fleet TLS sites (`proxy::site`), if it is a proxy.
    #[serde(default)]
    pub(crate) certs: Vec<crate::ops::proxy::CertExpiry>,
}

pub(crate) fn parse_facts(text: &str) -> Facts {
    let mut f = Facts::default();
    let (facts, apt) = match text.split_once(&format!("{APT_MARK}\n")) {
        Some((facts, apt)) => (facts, Some(apt)),
        None => (text, None),
    };
    let (facts, sudo) = facts
        .split_once(&format!("{SUDO_MARK}\n"))
        .unwrap_or((facts, ""));
    f.sudo = crate::ops::sudo::parse_access(sudo).level();
    f.certs = crate::ops::proxy::parse_certs(facts);
    if let Some(apt) = apt {
        let pending = crate::ops::apt::parse_simulation(apt);
        f.pending = Some(pending.len() as u64);
        f.security = Some(pending.iter().filter(|p| p.security).count() as u64);
    }
    for line in facts.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "os" => f.os = v.to_string(),
            "kernel" => f.kernel = v.to_string(),
            "uptime" => f.uptime_seconds = v.parse::<f64>().map(|s| s as u64).unwrap_or(0),
            "reboot" => f.reboot_required = v == "yes",
            _ => {}
        }
    }
    f
}

impl Facts {
    /// Updates are waiting, or a reboot is.
    pub(crate) fn outdated(&self) -> bool {
        self.pending.unwrap_or(0) > 0 || self.reboot_required
    }

    /// `3 (1 security)`, `0`, or `-` without apt.
    pub(crate) fn updates(&self) -> String {
        match (self.pending, self.security) {
            (Some(p), Some(s)) if s > 0 => format!("{p} ({s} security)"),
            (Some(p), _) => p.to_string(),
            _ => "-".into(),
        }
    }
}

/// `3d 4h`, `5h 12m`, `42s`.
pub(crate) fn short_duration(seconds: u64) -> String {
    let (d, h, m) = (seconds / 86400, seconds % 86400 / 3600, seconds % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sudo::Level;

    #[test]
    fn facts_from_the_command() {
        let f = parse_facts(
            "os=Debian GNU/Linux 12 (bookworm)\nkernel=6.1.0-35-amd64\nuptime=93784.52\nreboot=yes\n--- sudo ---\nsudo: a password is required\n--- apt simulation ---\n\
             Inst libssl3 [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])\n\
             Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])\n\
             Inst curl [7.88.1-10+deb12u12] (7.88.1-10+deb12u14 Debian:12.11/stable [amd64])\n",
        );
        assert_eq!(f.os, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(f.uptime_seconds, 93784);
        assert!(f.reboot_required && f.outdated());
        assert_eq!(f.sudo, Level::No);
        assert_eq!(f.updates(), "3 (1 security)");
        let none = parse_facts("os=Alpine\nreboot=no\n--- sudo ---\nroot\n");
        assert_eq!(none.sudo, Level::Full);
        let limited = parse_facts(
            "os=Debian\n--- sudo ---\nUser o may run the following commands on h:\n    (root) NOPASSWD: /usr/bin/apt-get\n",
        );
        assert_eq!(limited.sudo, Level::Limited);
        assert_eq!(none.updates(), "-");
        assert!(!none.outdated());
        assert_eq!(short_duration(93784), "1d 2h");
        assert_eq!(short_duration(3700), "1h 1m");
        assert_eq!(short_duration(42), "42s");
    }

    #[test]
    fn the_command_runs_in_a_posix_shell() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(facts_command())
            .output()
            .unwrap();
        let f = parse_facts(&String::from_utf8_lossy(&out.stdout));
        assert!(!f.kernel.is_empty() && !f.os.is_empty(), "{f:?}");
    }
}
