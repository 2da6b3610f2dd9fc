//! apt as `fleet update` and `fleet status` use it: the simulated upgrade read back
//! into pending and security updates, and the non-interactive command lines.

/// `apt-get -s`: what an upgrade would do, as any user, without the lock.
pub const SIMULATE: &str = "apt-get -s -o Debug::NoLocking=1 upgrade --with-new-pkgs 2>/dev/null";

/// Refreshes the package lists.
pub const REFRESH: &str = "apt-get update -q";

/// Upgrades everything without a question; changed config files keep the local
/// version (confold), new defaults are taken where nothing was changed (confdef).
pub const UPGRADE: &str = "DEBIAN_FRONTEND=noninteractive apt-get -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    upgrade --with-new-pkgs";

/// Debian and Ubuntu touch this file when an installed update needs a reboot.
pub const REBOOT_REQUIRED: &str = "test -e /var/run/reboot-required";

/// One package an upgrade would install or upgrade.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Pending {
    /// `name` for recipes: `package` is a reserved word in Rhai.
    #[serde(rename = "name")]
    pub package: String,
    /// The installed version; None for a new package.
    pub from: Option<String>,
    pub to: String,
    pub security: bool,
}

/// Reads `apt-get -s upgrade` output: `Inst NAME [OLD] (NEW ORIGIN [ARCH])` lines.
/// An update is a security update when an origin names a security archive
/// (`Debian-Security:12/stable-security`, `Ubuntu:22.04/jammy-security`).
pub fn parse_simulation(text: &str) -> Vec<Pending> {
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
}
