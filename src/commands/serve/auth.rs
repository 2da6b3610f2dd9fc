//! Who is asking: the caller of a request to `fleet serve`, its role and the CSRF token
//! its forms carry. Without users (loopback only) every caller is the local operator;
//! the token still guards every POST, so another web page the operator's browser visits
//! cannot start runs. With users, a caller is the user of a signed-in session (cookie
//! `fleet_session`), with its own token, and `gate` lets nobody else past `/login`.

use super::Site;
use super::sessions::{self, Limiter, SESSION_COOKIE, Sessions};
use super::users;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Sees every page.
    Viewer,
    /// Also runs recipes.
    Operator,
}

impl Role {
    pub(crate) fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// The caller of one request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: String,
    pub(crate) role: Role,
    /// The token every form of this caller carries (hidden field `csrf`).
    pub(crate) csrf: String,
}

impl Caller {
    /// The journal's `user` of a run this caller starts.
    pub(crate) fn journal_user(&self) -> String {
        format!("web:{}", self.user)
    }

    pub(crate) fn can_run(&self) -> bool {
        self.role == Role::Operator
    }

    /// A POST's token must be this caller's; compared in constant time.
    pub(crate) fn check_csrf(&self, token: &str) -> Result<(), StatusCode> {
        if constant_time_eq(self.csrf.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(StatusCode::FORBIDDEN)
        }
    }
}

/// The same time for every `b` of the same length as `a`: a token is not guessed a byte
/// at a time from response times.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `bytes` random bytes from the kernel, hex: tokens and session ids.
pub(crate) fn random_token(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("the kernel's random source /dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Who may sign in, and who has: the server's side of users and sessions.
pub(crate) struct Auth {
    /// None without users (loopback only): every caller is the local operator.
    users: Option<users::Store>,
    /// Cookies marked Secure: the browser reaches the server through a TLS proxy.
    pub(crate) secure_cookies: bool,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) limiter: Mutex<Limiter>,
    /// Password hashes computed at once (each takes 19 MiB for a few dozen ms).
    pub(crate) verifying: tokio::sync::Semaphore,
}

impl Auth {
    pub(crate) fn new(users: Option<users::Store>, secure_cookies: bool) -> Auth {
        Auth {
            users,
            secure_cookies,
            sessions: Mutex::default(),
            limiter: Mutex::default(),
            verifying: tokio::sync::Semaphore::new(2),
        }
    }

    /// The users file, when users sign in.
    pub(crate) fn users(&self) -> Option<&users::Store> {
        self.users.as_ref()
    }
}

/// A lock that a panicked request does not poison for every later one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The caller of a request with these headers, or None when it must sign in.
fn resolve(site: &Site, headers: &HeaderMap) -> Option<Caller> {
    let Some(store) = site.auth.users() else {
        return Some(Caller {
            user: "local".into(),
            role: Role::Operator,
            csrf: site.csrf.clone(),
        });
    };
    let id = sessions::cookie(headers, SESSION_COOKIE)?;
    let session = lock(&site.auth.sessions).get(&id, Instant::now())?;
    let users = store.current();
    // An unreadable users file lets nobody in, but ends no session: fixing its mode
    // brings everyone back.
    let users = users.as_ref().as_ref().ok()?;
    match users.get(&session.user) {
        Some(user) if user.hash == session.hash => Some(Caller {
            user: session.user,
            role: user.role,
            csrf: session.csrf,
        }),
        // Removed, or a new password: the session ends.
        _ => {
            lock(&site.auth.sessions).remove(&id);
            tracing::info!(user = %session.user, "fleet serve: session ended (user removed or password changed)");
            None
        }
    }
}

/// Without a session: a page asks to sign in first (and comes back after), anything
/// else is refused.
fn refuse(method: &Method, uri: &Uri) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let here = uri.path_and_query().map_or("/", |p| p.as_str());
        let next = sessions::next_path(Some(here));
        let to = format!("/login?next={}", super::pages::u(&next));
        (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            "fleet serve: sign in first (no session)\n",
        )
            .into_response()
    }
}

/// Paths anyone may reach: the sign-in page, and the webhooks (`/hooks/...`), which
/// carry their own secret token instead of a session.
fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/hooks/")
}

/// The layer in front of every route: a request that is not public needs a caller
/// (stored for the `Caller` extractor); every response may not be framed by another
/// site (a run button clicked through an invisible frame).
pub(crate) async fn gate(State(site): State<Arc<Site>>, mut req: Request, next: Next) -> Response {
    let mut response = if is_public(req.uri().path()) {
        next.run(req).await
    } else {
        match resolve(&site, req.headers()) {
            None => refuse(req.method(), req.uri()),
            Some(caller) => {
                req.extensions_mut().insert(caller.clone());
                let response = next.run(req).await;
                if site.auth.users().is_some() {
                    show_caller(response, &caller).await
                } else {
                    response
                }
            }
        }
    };
    let h = response.headers_mut();
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    response
}

/// A page's nav names the signed-in user and has the sign-out button, in place of the
/// layout's mark (which no escaped text can forge: `<` is always escaped).
async fn show_caller(response: Response, caller: &Caller) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page too large\n").into_response();
    };
    let page = String::from_utf8_lossy(&bytes).replacen(
        super::pages::WHO_MARK,
        &super::login::signed_in(caller),
        1,
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(page))
}

impl FromRequestParts<Arc<Site>> for Caller {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        site: &Arc<Site>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        resolve(site, &parts.headers).ok_or_else(|| refuse(&parts.method, &parts.uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let a = random_token(32);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_token(32));
        assert!(constant_time_eq(a.as_bytes(), a.as_bytes()));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[1..]));
        assert!(!constant_time_eq(b"abc", b"abd"));
        let local = Caller {
            user: "local".into(),
            role: Role::Viewer,
            csrf: a.clone(),
        };
        assert_eq!(local.journal_user(), "web:local");
        assert!(!local.can_run());
        assert!(local.check_csrf(&a).is_ok());
        assert_eq!(local.check_csrf("x"), Err(StatusCode::FORBIDDEN));
    }
}
