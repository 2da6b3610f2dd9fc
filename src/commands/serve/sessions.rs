//! Sessions of signed-in users (in memory, ending after a while without a request),
//! the sign-in rate limiter and the checks of what a browser sends back: cookies and
//! the `next` page after signing in. Pure: the time is passed in.

use axum::http::HeaderMap;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The session cookie: HttpOnly, SameSite=Strict, Path=/ (Secure with --secure-cookies).
pub(crate) const SESSION_COOKIE: &str = "fleet_session";
/// The sign-in form's own token before there is a session (double submit: the cookie
/// and the form's hidden `csrf` must be equal; another site can set neither).
pub(crate) const LOGIN_COOKIE: &str = "fleet_login";
/// A session ends after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(12 * 3600);
/// At most this many live sessions; beyond, the least recently used ends.
const MAX_SESSIONS: usize = 10_000;
/// Failed sign-ins allowed per user name and per client address within WINDOW.
pub(crate) const MAX_FAILURES: usize = 5;
pub(crate) const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Names and addresses with recent failures remembered at most.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) csrf: String,
    /// The user's password hash when they signed in: a new password ends the session.
    pub(crate) hash: String,
    last_seen: Instant,
}

#[derive(Default)]
pub(crate) struct Sessions {
    live: HashMap<String, Session>,
}

impl Sessions {
    /// A new session of `user`: (its id, for the cookie; its CSRF token).
    pub(crate) fn create(&mut self, user: &str, hash: &str, now: Instant) -> (String, String) {
        self.live
            .retain(|_, s| now.duration_since(s.last_seen) < IDLE);
        if self.live.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .live
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone())
        {
            self.live.remove(&oldest);
        }
        let id = super::auth::random_token(32);
        let csrf = super::auth::random_token(32);
        self.live.insert(
            id.clone(),
            Session {
                user: user.to_string(),
                csrf: csrf.clone(),
                hash: hash.to_string(),
                last_seen: now,
            },
        );
        (id, csrf)
    }

    /// The live session `id`, seen again now; an idle one ends here.
    pub(crate) fn get(&mut self, id: &str, now: Instant) -> Option<Session> {
        let session = self.live.get_mut(id)?;
        if now.duration_since(session.last_seen) >= IDLE {
            self.live.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<Session> {
        self.live.remove(id)
    }
}

/// Failed sign-ins per key (`user:NAME`, `addr:IP`) within the window.
#[derive(Default)]
pub(crate) struct Limiter {
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Limiter {
    /// How long `key` must wait before trying again, if it has MAX_FAILURES recent ones.
    pub(crate) fn wait(&mut self, key: &str, now: Instant) -> Option<Duration> {
        let times = self.failures.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(key);
            return None;
        }
        (times.len() >= MAX_FAILURES).then(|| WINDOW - now.duration_since(times[0]))
    }

    pub(crate) fn fail(&mut self, key: &str, now: Instant) {
        if !self.failures.contains_key(key) && self.failures.len() >= MAX_KEYS {
            self.failures
                .retain(|_, t| t.back().is_some_and(|l| now.duration_since(*l) < WINDOW));
            if self.failures.len() >= MAX_KEYS
                && let Some(stalest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied())
                    .map(|(k, _)| k.clone())
            {
                self.failures.remove(&stalest);
            }
        }
        let times = self.failures.entry(key.to_string()).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    pub(crate) fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// The limiter's key of a user name (bounded: no valid name is longer).
pub(crate) fn user_key(name: &str) -> String {
    let name: String = name.chars().take(64).collect();
    format!("user:{name}")
}

/// The client's address: the TCP peer, or, when the peer is a reverse proxy on this
/// machine (loopback), the last address of its `X-Forwarded-For` (the one the proxy
/// saw; earlier ones are whatever the client claimed).
pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if !peer.ip().is_loopback() {
        return peer.ip();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// The value of cookie `name` in the request's Cookie headers, when it is a token
/// (64 hex digits: what random_token(32) makes).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A Set-Cookie value; `None` as value deletes the cookie.
pub(crate) fn set_cookie(name: &str, value: Option<&str>, path: &str, secure: bool) -> String {
    let mut c = format!(
        "{name}={}; HttpOnly; SameSite=Strict; Path={path}",
        value.unwrap_or("")
    );
    if value.is_none() {
        c.push_str("; Max-Age=0");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Where to go after signing in: a path of this server only. Anything else (another
/// host `//evil`, a scheme, a backslash that browsers read as `/`, spaces and control
/// characters that they drop) gives `/`.
pub(crate) fn next_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_or_the_fleet_page() {
        assert_eq!(next_path(Some("/host/web-1")), "/host/web-1");
        assert_eq!(
            next_path(Some("/runs?recipe=update&host=a")),
            "/runs?recipe=update&host=a"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "/\t/evil.example",
            "/ /x",
            "/a\r\nSet-Cookie: x=y",
            "",
            "/é",
        ] {
            assert_eq!(next_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(next_path(Some(&format!("/{}", "a".repeat(3000)))), "/");
        assert_eq!(next_path(None), "/");
        assert_eq!(super::super::pages::u("/runs?a=b&c"), "%2Fruns%3Fa%3Db%26c");
    }

    #[test]
    fn five_failures_in_five_minutes_then_wait() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(l.wait("user:alice", t0), None, "after {i}");
            l.fail("user:alice", t0 + Duration::from_secs(i as u64));
        }
        let wait = l.wait("user:alice", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(wait, WINDOW - Duration::from_secs(10));
        assert_eq!(l.wait("user:bob", t0), None, "keys are apart");
        // The oldest failure leaves the window: one more try.
        assert_eq!(l.wait("user:alice", t0 + WINDOW), None);
        l.fail("user:alice", t0 + WINDOW);
        assert!(l.wait("user:alice", t0 + WINDOW).is_some());
        l.clear("user:alice");
        assert_eq!(l.wait("user:alice", t0 + WINDOW), None);
        // A flood of names stays bounded.
        for i in 0..(MAX_KEYS + 10) {
            l.fail(&user_key(&format!("n{i}")), t0);
        }
        assert!(l.failures.len() <= MAX_KEYS);
        assert_eq!(user_key(&"x".repeat(500)).len(), 5 + 64);
    }

    #[test]
    fn sessions_end_when_idle_or_removed() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let (id, csrf) = s.create("alice", "h", t0);
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        let got = s.get(&id, t0 + IDLE / 2).unwrap();
        assert_eq!(
            (got.user.as_str(), got.csrf.as_str()),
            ("alice", csrf.as_str())
        );
        // Seen at IDLE/2: still alive just before IDLE/2 + IDLE.
        assert!(
            s.get(&id, t0 + IDLE / 2 + IDLE - Duration::from_secs(1))
                .is_some()
        );
        assert!(s.get(&id, t0 + 3 * IDLE).is_none());
        assert!(s.get(&id, t0).is_none(), "an ended session stays ended");
        let (id2, _) = s.create("bob", "h", t0);
        assert!(s.remove(&id2).is_some());
        assert!(s.get(&id2, t0).is_none());
        assert!(s.get("nope", t0).is_none());
    }

    #[test]
    fn cookies_are_tokens_and_set_strictly() {
        let tok = "ab".repeat(32);
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            format!("other=1; fleet_session={tok}; x=2")
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some(tok.clone()));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
        h.insert("cookie", "fleet_session=short".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
        assert_eq!(
            set_cookie(SESSION_COOKIE, Some(&tok), "/", true),
            format!("fleet_session={tok}; HttpOnly; SameSite=Strict; Path=/; Secure")
        );
        assert_eq!(
            set_cookie(SESSION_COOKIE, None, "/", false),
            "fleet_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
    }

    #[test]
    fn the_client_is_the_peer_unless_a_local_proxy_forwards() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        assert_eq!(client_ip(proxy, &h).to_string(), "203.0.113.9");
        assert_eq!(client_ip(remote, &h).to_string(), "198.51.100.1");
        h.insert("x-forwarded-for", "junk".parse().unwrap());
        assert_eq!(client_ip(proxy, &h).to_string(), "127.0.0.1");
    }
}
