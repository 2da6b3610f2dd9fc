//! The simplest inventory: one `[user@]host[:port]` per line, as one would type it to `ssh`.
//!
//! `parse_target` is shared with the INI parser, which accepts `host:port` too.

use std::collections::HashMap;

use super::{Host, Inventory, bad_port, parse_port};
use crate::error::{Result, SourceError};

/// The parts of one `[user@]host[:port]`, borrowed from the line.
#[derive(Debug, PartialEq)]
pub(super) struct Target<'a> {
    pub(crate) user: Option<&'a str>,
    pub(crate) host: &'a str,
    pub(crate) port: Option<u16>,
}

/// What is wrong with a target, located in bytes from the target's start.
#[derive(Debug)]
pub(super) struct Flaw {
    pub(crate) start: usize,
    pub(crate) len: usize,
    pub(crate) message: String,
    pub(crate) label: &'static str,
}

impl Flaw {
    /// The flaw as an error in the file, given where the target starts in `text`.
    pub(super) fn at(self, name: &str, text: &str, target_start: usize) -> SourceError {
        let span = (target_start + self.start, self.len.max(1));
        SourceError::at_span(name, text, span.into(), self.message, self.label)
    }
}

/// Splits `[user@]host[:port]`; `[v6]:port` brackets an IPv6 address, and a bare address
/// with several colons is taken as IPv6 without a port. `with_user: false` leaves `@` alone.
pub(super) fn parse_target(token: &str, with_user: bool) -> Result<Target<'_>, Flaw> {
    let (user, rest, rest_at) = match token.split_once('@').filter(|_| with_user) {
        Some(("", _)) => {
            return Err(Flaw {
                start: 0,
                len: 1,
                message: format!("empty user in `{token}`"),
                label: "no user before `@`",
            });
        }
        Some((user, rest)) => (Some(user), rest, user.len() + 1),
        None => (None, token, 0),
    };
    let (host, host_at, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(Flaw {
                start: rest_at,
                len: rest.len(),
                message: format!("missing `]` in `{token}`"),
                label: "unclosed `[`",
            });
        };
        let after = &inner[close + 1..];
        let after_at = rest_at + 1 + close + 1;
        let port = if after.is_empty() {
            None
        } else if let Some(port) = after.strip_prefix(':') {
            Some((port, after_at + 1))
        } else {
            return Err(Flaw {
                start: after_at,
                len: after.len(),
                message: format!("unexpected `{after}` after `]` in `{token}`"),
                label: "expected `:port` or nothing",
            });
        };
        (&inner[..close], rest_at + 1, port)
    } else if rest.matches(':').count() >= 2 {
        (rest, rest_at, None)
    } else if let Some((host, port)) = rest.split_once(':') {
        (host, rest_at, Some((port, rest_at + host.len() + 1)))
    } else {
        (rest, rest_at, None)
    };
    if host.is_empty() {
        return Err(Flaw {
            start: host_at.min(token.len().saturating_sub(1)),
            len: 1,
            message: format!("empty host name in `{token}`"),
            label: "no host here",
        });
    }
    let port = match port {
        None => None,
        Some((text, at)) => Some(parse_port(text).ok_or_else(|| Flaw {
            start: at.min(token.len().saturating_sub(1)),
            len: text.len(),
            message: bad_port(text),
            label: "not a port",
        })?),
    };
    Ok(Target { user, host, port })
}

pub(crate) fn parse(name: &str, text: &str) -> Result<Inventory> {
    let mut inv = Inventory::empty(name);
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut line_start = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line = index + 1;
        let start = line_start;
        line_start += raw.len();
        // `#` cannot be part of a host name, so it always starts a comment.
        let content = raw.split('#').next().unwrap_or("");
        let target = content.trim();
        if target.is_empty() {
            continue;
        }
        let at = start + content.len() - content.trim_start().len();
        if target.contains(char::is_whitespace) {
            let err = SourceError::at_span(
                name,
                text,
                (at, target.len()).into(),
                format!("spaces inside a host: `{target}`"),
                "one `[user@]host[:port]` per line",
            )
            .with_help("host variables need an INI or TOML inventory");
            return Err(err.into());
        }
        let parsed = parse_target(target, true).map_err(|flaw| flaw.at(name, text, at))?;
        if let Some(first) = first_line.get(parsed.host) {
            let err = SourceError::at_span(
                name,
                text,
                (at, target.len()).into(),
                format!("host `{}` is listed twice", parsed.host),
                "listed again here",
            )
            .with_help(format!("it is first listed on line {first}"));
            return Err(err.into());
        }
        first_line.insert(parsed.host.to_string(), line);
        let mut host = Host::new(parsed.host);
        host.user = parsed.user.map(str::to_string);
        host.port = parsed.port;
        inv.hosts.insert(host.name.clone(), host);
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, line_of};
    use crate::inventory::Connection;

    fn source_error(text: &str) -> Box<SourceError> {
        match parse("hosts", text) {
            Err(Error::Source(e)) => e,
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    fn error_line(text: &str) -> usize {
        line_of(text, source_error(text).span.offset())
    }

    #[test]
    fn parses_users_ports_comments_and_ipv6() {
        let text = "# fleet\n\n  deploy@web-1:2222  \nweb-2 # the spare\nlocalhost\n[::1]:22\n[fe80::1]\n2001:db8::7\n";
        let inv = parse("hosts", text).unwrap();
        let names: Vec<_> = inv.host_names().collect();
        assert_eq!(
            names,
            [
                "web-1",
                "web-2",
                "localhost",
                "::1",
                "fe80::1",
                "2001:db8::7"
            ]
        );
        let web1 = &inv.hosts["web-1"];
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.address, "web-1");
        assert_eq!(web1.connection, Connection::Ssh);
        assert_eq!(inv.hosts["localhost"].connection, Connection::Local);
        assert_eq!(inv.hosts["::1"].port, Some(22));
        assert_eq!(inv.hosts["fe80::1"].port, None);
        assert_eq!(inv.groups.keys().collect::<Vec<_>>(), ["all"]);
    }

    #[test]
    fn bad_ports_are_reported_on_their_line() {
        let text = "web-1\nweb-2:99999\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 2);
        assert_eq!(&text[err.span.offset()..][..5], "99999");
        assert!(err.message.contains("bad port `99999`"), "{}", err.message);
        assert_eq!(error_line("web-1\n\n[::1]:x\n"), 3);
        assert_eq!(error_line("web-1:0\n"), 1);
    }

    #[test]
    fn empty_hosts_and_users_are_errors() {
        assert_eq!(error_line("web-1\ndeploy@\n"), 2);
        assert_eq!(error_line("web-1\n\n:22\n"), 3);
        assert_eq!(error_line("@web-1\n"), 1);
        assert_eq!(error_line("[::1\n"), 1);
        assert_eq!(error_line("x\n[::1]22\n"), 2);
    }

    #[test]
    fn spaces_inside_a_host_are_errors() {
        let text = "web-1\nweb 2\n";
        assert_eq!(error_line(text), 2);
        let rendered = crate::inventory::tests::render(&source_error(text));
        assert!(rendered.contains("hosts:2:1"), "{rendered}");
        assert!(rendered.contains("spaces inside a host"), "{rendered}");
    }

    #[test]
    fn duplicates_are_errors_pointing_at_the_first() {
        let text = "web-1\ndb-1\nroot@web-1\n";
        let err = source_error(text);
        assert_eq!(line_of(text, err.span.offset()), 3);
        assert_eq!(err.help.as_deref(), Some("it is first listed on line 1"));
    }
}
