//! `/login` (GET: the form; POST: check the password, start a session) and `/logout`
//! (POST: end it). Sign-ins and their failures go to the server's log (tracing, on
//! stderr: the systemd journal under the unit), not to fleet's journal of runs.

use super::Site;
use super::auth::{Caller, lock, random_token};
use super::pages::{STYLE, t};
use super::sessions::{self, LOGIN_COOKIE, SESSION_COOKIE};
use super::users;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

/// The sign-in page: inputs `user`, `password`, hidden `csrf` and `next`, a "Sign in"
/// button. Its token is the `fleet_login` cookie's (set here when missing).
fn page(
    site: &Site,
    headers: &HeaderMap,
    code: StatusCode,
    user: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    let token = sessions::cookie(headers, LOGIN_COOKIE).unwrap_or_else(|| random_token(32));
    let error = error.map_or(String::new(), |e| {
        format!("<p id=\"error\" class=\"error\">{}</p>\n", t(e))
    });
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign in — fleet {project}</title><style>{STYLE}\
form.login label{{display:block;margin:.6em 0}}.error{{color:#b00}}</style></head><body>\
<h1>fleet {project}</h1>\n{error}<form class=\"login\" method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
<input type=\"hidden\" name=\"next\" value=\"{next}\">\
<label>User <input name=\"user\" value=\"{user}\" autocomplete=\"username\" required autofocus></label>\
<label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\">Sign in</button></form></body></html>\n",
        project = t(&site.project),
        next = t(next),
        user = t(user),
    );
    let cookie = sessions::set_cookie(
        LOGIN_COOKIE,
        Some(&token),
        "/login",
        site.auth.secure_cookies,
    );
    (
        code,
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Html(html),
    )
        .into_response()
}

/// GET /login?next=PATH
pub(crate) async fn form(
    State(site): State<Arc<Site>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if site.auth.users().is_none() {
        return see_other("/");
    }
    let next = sessions::next_path(q.get("next").map(String::as_str));
    page(&site, &headers, StatusCode::OK, "", &next, None)
}

/// The hash a name without a user is checked against, so that an unknown name takes
/// as long as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| users::hash_password(&random_token(16)).unwrap_or_default())
}

fn wait_text(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs >= 90 {
        format!("{} minutes", secs.div_ceil(60))
    } else {
        format!("{secs} seconds")
    }
}

/// POST /login: the form's token must be its cookie's; then the rate limits (per name
/// and per client address), then the password.
pub(crate) async fn login(
    State(site): State<Arc<Site>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(store) = site.auth.users() else {
        return see_other("/");
    };
    let next = sessions::next_path(Some(&f.next));
    let shown_user = if users::valid_name(&f.user).is_ok() {
        f.user.as_str()
    } else {
        ""
    };
    let token_ok = sessions::cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|c| super::auth::constant_time_eq(c.as_bytes(), f.csrf.as_bytes()));
    if !token_ok {
        return page(
            &site,
            &headers,
            StatusCode::FORBIDDEN,
            shown_user,
            &next,
            Some("This sign-in form has expired or did not come from this server: sign in again."),
        );
    }
    let client = sessions::client_ip(peer, &headers);
    let name_key = sessions::user_key(&f.user);
    let addr_key = format!("addr:{client}");
    let now = Instant::now();
    let wait = {
        let mut limiter = lock(&site.auth.limiter);
        limiter
            .wait(&name_key, now)
            .into_iter()
            .chain(limiter.wait(&addr_key, now))
            .max()
    };
    if let Some(wait) = wait {
        tracing::warn!(user = ?f.user, %client, "fleet serve: sign-in refused, too many failures");
        let mut response = page(
            &site,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            shown_user,
            &next,
            Some(&format!(
                "Too many failed sign-ins: try again in {}.",
                wait_text(wait)
            )),
        );
        let secs = wait.as_secs().max(1) + u64::from(wait.subsec_nanos() > 0);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits"),
        );
        return response;
    }
    let users = store.current();
    let Ok(users) = users.as_ref() else {
        return page(
            &site,
            &headers,
            StatusCode::SERVICE_UNAVAILABLE,
            shown_user,
            &next,
            Some("Sign-in is unavailable: the server cannot use its users file (see its log)."),
        );
    };
    let user = users.get(&f.user).cloned();
    let checkable = users::valid_password(&f.password).is_ok();
    let hash = user
        .as_ref()
        .map_or(decoy(), |u| u.hash.as_str())
        .to_string();
    let password = f.password;
    let verified = match site.auth.verifying.acquire().await {
        Ok(_permit) if checkable => {
            tokio::task::spawn_blocking(move || users::verify_password(&hash, &password))
                .await
                .unwrap_or(false)
        }
        _ => false,
    };
    let Some(user) = user.filter(|_| verified) else {
        {
            let mut limiter = lock(&site.auth.limiter);
            limiter.fail(&name_key, now);
            limiter.fail(&addr_key, now);
        }
        tracing::warn!(user = ?f.user, %client, "fleet serve: sign-in failed");
        return page(
            &site,
            &headers,
            StatusCode::FORBIDDEN,
            shown_user,
            &next,
            Some("Wrong user name or password."),
        );
    };
    lock(&site.auth.limiter).clear(&name_key);
    let (id, _) = {
        let mut sessions = lock(&site.auth.sessions);
        // A session id a browser had before signing in is never the new one.
        if let Some(old) = sessions::cookie(&headers, SESSION_COOKIE) {
            sessions.remove(&old);
        }
        sessions.create(&f.user, &user.hash, now)
    };
    tracing::info!(user = %f.user, role = user.role.as_str(), %client, "fleet serve: signed in");
    let secure = site.auth.secure_cookies;
    let mut response = see_other(&next);
    let h = response.headers_mut();
    for cookie in [
        sessions::set_cookie(SESSION_COOKIE, Some(&id), "/", secure),
        sessions::set_cookie(LOGIN_COOKIE, None, "/login", secure),
    ] {
        h.append(header::SET_COOKIE, cookie.parse().expect("a cookie of hex"));
    }
    response
}

/// POST /logout (with the session's token): the session ends.
pub(crate) async fn logout(
    State(site): State<Arc<Site>>,
    caller: Caller,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if let Err(code) = caller.check_csrf(&f.csrf) {
        return (code, "fleet serve: wrong or missing CSRF token\n").into_response();
    }
    if site.auth.users().is_none() {
        return see_other("/");
    }
    if let Some(id) = sessions::cookie(&headers, SESSION_COOKIE) {
        lock(&site.auth.sessions).remove(&id);
    }
    tracing::info!(user = %caller.user, "fleet serve: signed out");
    let mut response = see_other("/login");
    let cookie = sessions::set_cookie(SESSION_COOKIE, None, "/", site.auth.secure_cookies);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().expect("a cookie"));
    response
}

/// The nav's part for a signed-in caller: who, and the sign-out button.
pub(crate) fn signed_in(caller: &Caller) -> String {
    format!(
        "<span class=\"who\">signed in as <b id=\"user\">{user}</b> ({role})</span> \
<form method=\"post\" action=\"/logout\" style=\"display:inline\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Sign out</button></form>",
        user = t(&caller.user),
        role = caller.role.as_str(),
        csrf = t(&caller.csrf),
    )
}
