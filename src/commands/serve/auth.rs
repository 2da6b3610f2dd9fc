//! Who is asking: the caller of a request to `fleet serve`, its role and the CSRF token
//! its forms carry. Without a users file (loopback only) every caller is the local
//! operator; the token still guards every POST, so another web page the operator's
//! browser visits cannot start runs.

use super::Site;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Sees every page.
    Viewer,
    /// Also runs recipes.
    Operator,
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

impl FromRequestParts<Arc<Site>> for Caller {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        _parts: &mut Parts,
        site: &Arc<Site>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller {
            user: "local".into(),
            role: Role::Operator,
            csrf: site.csrf.clone(),
        })
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
