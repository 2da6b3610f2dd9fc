//! What a host name, address and login user may look like. Every inventory format and
//! `inventory::add` go through these, because each value later lands on an ssh, rsync
//! or git command line (where a leading `-` is an option) or in a path.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A host name, address or user that fleet refuses; `what` names which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadValue {
    #[error("empty {what}")]
    Empty { what: &'static str },
    /// `value` is as the message shows it (escaped, cut); `why` says what is wrong.
    #[error("bad {what} `{value}`: {why}")]
    Bad {
        what: &'static str,
        value: String,
        why: String,
    },
}

fn bad(what: &'static str, value: &str, why: impl Into<String>) -> BadValue {
    BadValue::Bad {
        what,
        value: shown(value),
        why: why.into(),
    }
}

/// Host names become file names (journal, backups, snapshots): no separators, no dot
/// names, nothing an option parser or a terminal would read as anything but a name.
pub(crate) fn host_name(name: &str) -> Result<(), BadValue> {
    common(name, "host name")?;
    if name == "." || name == ".." || name.starts_with('.') {
        return Err(bad("host name", name, "it may not start with `.`"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || "-_.:%".contains(*c)))
    {
        return Err(bad(
            "host name",
            name,
            format!(
                "`{}` is not allowed; use letters, digits and `-_.:`",
                c.escape_default()
            ),
        ));
    }
    Ok(())
}

/// A DNS name, an IPv4 or IPv6 address (optionally `[bracketed]`, with a `%zone`), or
/// an ssh_config alias made of the same characters as a DNS name.
pub(crate) fn address(address: &str) -> Result<(), BadValue> {
    common(address, "address")?;
    let bad = || {
        bad(
            "address",
            address,
            "expected a host name, an IPv4 address or an IPv6 address",
        )
    };
    let inner = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    if inner.contains(':') {
        let (ip, zone) = inner.split_once('%').unwrap_or((inner, "lo"));
        let zone_ok = !zone.is_empty()
            && zone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        return match ip.parse::<Ipv6Addr>() {
            Ok(_) if zone_ok => Ok(()),
            _ => Err(bad()),
        };
    }
    if inner != address {
        return Err(bad());
    }
    if inner.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if address.len() <= 253 && address.trim_end_matches('.').split('.').all(label_ok) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A login name as ssh's `-l` and rsync's `user@` take it.
pub(crate) fn user(user: &str) -> Result<(), BadValue> {
    common(user, "user")?;
    match user
        .chars()
        .find(|c| !(c.is_alphanumeric() || "-_.$".contains(*c)))
    {
        Some(c) => Err(bad(
            "user",
            user,
            format!("`{}` is not allowed in a login name", c.escape_default()),
        )),
        None => Ok(()),
    }
}

/// What no value may be: empty, an option, or carrying spaces or control characters.
fn common(value: &str, what: &'static str) -> Result<(), BadValue> {
    if value.is_empty() {
        return Err(BadValue::Empty { what });
    }
    if value.starts_with('-') {
        return Err(bad(
            what,
            value,
            "it may not start with `-` (ssh would read it as an option)",
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            what,
            value,
            "it may not hold spaces or control characters",
        ));
    }
    Ok(())
}

/// The value as an error may print it: control characters escaped, long ones cut.
fn shown(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    match escaped.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &escaped[..i]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_address_cannot_become_an_ssh_option() {
        for bad in [
            "-oProxyCommand=touch${IFS}/tmp/x",
            "-oProxyCommand=x",
            "a b",
            "host\n-oX",
            "[10.0.0.1",
            "[web]",
            "web;id",
            "$(id)",
            "",
            "::zz",
        ] {
            assert!(address(bad).is_err(), "{bad:?} was accepted");
        }
        for good in [
            "10.0.0.1",
            "web-1.example.com",
            "localhost",
            "s1",
            "::1",
            "[2001:db8::1]",
            "fe80::1%eth0",
            "my_alias",
            "example.com.",
        ] {
            assert!(address(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn host_names_cannot_become_paths_or_options() {
        for bad in [
            "/tmp/victim",
            "../../x",
            "..",
            ".hidden",
            "-x",
            "a/b",
            "a\\b",
            "a\0b",
            "tab\there",
            "esc\u{1b}]0;x",
        ] {
            assert!(host_name(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["web-1", "db.example.com", "s1", "node_7", "::1", "café"] {
            assert!(host_name(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn users_are_login_names() {
        assert!(user("deploy").is_ok());
        assert!(user("svc.backup$").is_ok());
        for bad in ["-oX", "a b", "root@evil", "x;y", ""] {
            assert!(user(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn errors_escape_what_they_quote() {
        let e = host_name("a\u{1b}[2Jb").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn bad_value_messages() {
        assert_eq!(host_name("").unwrap_err().to_string(), "empty host name");
        assert_eq!(
            user("-oX").unwrap_err().to_string(),
            "bad user `-oX`: it may not start with `-` (ssh would read it as an option)"
        );
        assert_eq!(
            host_name("a/b").unwrap_err().to_string(),
            "bad host name `a/b`: `/` is not allowed; use letters, digits and `-_.:`"
        );
    }
}
