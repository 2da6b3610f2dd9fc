//! `fleet serve [--listen ADDR:PORT]`: a web view of the journal, the status cache,
//! backups and recipes, recipe runs with their output live (`runs`), pull hosts'
//! results (`fetch`) and a webhook (`hooks`). Without users it listens on loopback
//! only and every caller is the local operator; with users (`--add-user`, a file
//! outside git) every browser signs in, and it may listen on any address.

mod auth;
pub(crate) mod fetch;
mod hooks;
mod login;
mod pages;
mod runs;
mod sessions;
mod users;

use crate::App;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// What the pages need, read once at start (recipes) or per request (journal,
/// inventory), so the server never holds the scripting engine.
pub(crate) struct Site {
    pub(crate) project: String,
    pub(crate) state_dir: std::path::PathBuf,
    /// The inventory file, its display name and the script timeout; None without one.
    pub(crate) inventory: Option<(std::path::PathBuf, String, std::time::Duration)>,
    pub(crate) recipes: Vec<pages::RecipeInfo>,
    /// The CSRF token of the local operator (no users file): random per server start.
    pub(crate) csrf: String,
    /// The pull hosts' results fetch (`fetch.rs`) and the webhook (`hooks.rs`).
    pub(crate) fetcher: fetch::Fetcher,
    pub(crate) hook: hooks::Hook,
    /// Starting runs, and the runs this server started.
    pub(crate) runs: runs::Runner,
    /// Users, sessions and sign-in limits.
    pub(crate) auth: auth::Auth,
}

impl Site {
    pub(crate) fn inventory(&self) -> Option<crate::inventory::Inventory> {
        let (path, display, timeout) = self.inventory.as_ref()?;
        crate::inventory::Inventory::load(path, display, *timeout).ok()
    }
}

pub(crate) fn parse_listen(listen: &str) -> Result<SocketAddr> {
    listen.parse().map_err(|_| {
        Error::usage_with_help(
            format!("--listen {listen:?} is not an ADDRESS:PORT"),
            format!("for example --listen {DEFAULT_LISTEN}"),
        )
    })
}

/// Loopback is always allowed; any other address only when users sign in.
fn check_exposure(addr: SocketAddr, users: usize, file: &std::path::Path) -> Result<()> {
    if addr.ip().is_loopback() || users > 0 {
        return Ok(());
    }
    Err(Error::usage_with_help(
        format!(
            "fleet serve listens on {} only when users sign in, and the users file {} has none",
            addr.ip(),
            file.display()
        ),
        "add one with `fleet serve --add-user NAME --role operator` (every browser then \
         logs in), or listen on loopback (127.0.0.1, ::1) and reach it through \
         `ssh -L 8080:127.0.0.1:8080 HOST`",
    ))
}

/// The users file: `serve_users` of fleet.toml (relative to the project, `~/` allowed),
/// else `users.toml` in the project's `.fleet/` (never committed).
pub(crate) fn users_file(app: &App) -> std::path::PathBuf {
    match &app.project.config.serve_users {
        Some(p) => crate::ops::ssh::resolve_path(&app.project.root, p),
        None => app.project.data_dir().join("users.toml"),
    }
}

/// `fleet serve --add-user NAME [--role R]`: the password from the terminal (twice) or
/// one line of stdin.
pub(crate) fn add_user(app: &App, name: &str, role: Option<&str>) -> Result<i32> {
    let file = users_file(app);
    let role = role.map(|r| {
        auth::Role::parse(r)
            .ok_or_else(|| Error::usage(format!("--role {r:?}: use viewer or operator")))
    });
    let role = role.transpose()?;
    users::valid_name(name).map_err(|e| Error::usage(e.to_string()))?;
    refuse_tracked(&file)?;
    let password = read_password(name)?;
    let added =
        users::add(&file, name, role, &password).map_err(|e| Error::usage(e.to_string()))?;
    let shown = crate::project::display_path(&file);
    let message = match added {
        users::Added::New(role) => format!("added {name} ({}) to {shown}", role.as_str()),
        users::Added::Changed(role) => format!(
            "{name} ({}) has a new password in {shown}; their sessions end",
            role.as_str()
        ),
    };
    println!("{message}");
    Ok(0)
}

/// `fleet serve --remove-user NAME`: their sessions end on their next request.
pub(crate) fn remove_user(app: &App, name: &str) -> Result<i32> {
    let file = users_file(app);
    let shown = crate::project::display_path(&file);
    if users::remove(&file, name).map_err(|e| Error::usage(e.to_string()))? {
        println!("removed {name} from {shown}");
        Ok(0)
    } else {
        Err(Error::usage(format!("{shown} has no user {name:?}")))
    }
}

/// A users file inside a git work tree must be ignored there: password hashes are
/// never committed by accident.
fn refuse_tracked(file: &std::path::Path) -> Result<()> {
    let Ok(file) = std::path::absolute(file) else {
        return Ok(());
    };
    // The nearest directory of the file that exists (`.fleet/` may not yet).
    let mut existing = file.parent();
    while let Some(d) = existing
        && !d.is_dir()
    {
        existing = d.parent();
    }
    let Some(existing) = existing else {
        return Ok(());
    };
    let Ok(repo) = git2::Repository::discover(existing) else {
        return Ok(());
    };
    let (Some(work), Ok(base), Ok(missing)) = (
        repo.workdir().and_then(|w| w.canonicalize().ok()),
        existing.canonicalize(),
        file.strip_prefix(existing),
    ) else {
        return Ok(());
    };
    let Ok(rel) = base
        .join(missing)
        .strip_prefix(&work)
        .map(std::path::Path::to_path_buf)
    else {
        return Ok(());
    };
    if repo.is_path_ignored(&rel).unwrap_or(false) {
        return Ok(());
    }
    Err(Error::usage_with_help(
        format!(
            "the users file {} is in the git repository {} and not ignored there",
            file.display(),
            work.display()
        ),
        "add it (or `.fleet/`) to that repository's .gitignore, or name a file outside \
         git with `serve_users` in fleet.toml",
    ))
}

/// The new password: asked twice on a terminal (not echoed), else the first line of
/// stdin (for scripts and tests).
fn read_password(name: &str) -> Result<String> {
    use std::io::{BufRead, IsTerminal, Read};
    let password = if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        dialoguer::Password::new()
            .with_prompt(format!("Password for {name}"))
            .with_confirmation("Again", "The two passwords differ; try again")
            .interact()
            .map_err(|e| Error::usage(format!("no password read from the terminal: {e}")))?
    } else {
        let mut line = Vec::new();
        std::io::stdin()
            .lock()
            .take(users::MAX_PASSWORD as u64 + 2)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::usage(format!("no password read from stdin: {e}")))?;
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        String::from_utf8(line)
            .map_err(|_| Error::usage("the password read from stdin is not UTF-8"))?
    };
    users::valid_password(&password).map_err(|e| {
        Error::usage_with_help(
            e.to_string(),
            "a terminal asks it twice; without one, give it as the first line of stdin",
        )
    })?;
    Ok(password)
}

pub(crate) fn run(
    app: &App,
    listen: &str,
    secure_cookies: bool,
    pull: &fetch::PullArgs,
) -> Result<i32> {
    let addr = parse_listen(listen)?;
    let fetcher = fetch::Fetcher::new(&app.project.state_dir(), pull)?;
    let users_file = users_file(app);
    let users = users::load(&users_file).map_err(|e| Error::usage(e.to_string()))?;
    check_exposure(addr, users.len(), &users_file)?;
    let signing_in = match users.len() {
        0 => "no users: the local operator, loopback only".to_string(),
        n => format!(
            "{n} user{} sign{} in, from {}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" },
            crate::project::display_path(&users_file)
        ),
    };
    let store = (!users.is_empty()).then(|| users::Store::new(users_file, users));
    log_to_stderr();
    // Configured secrets are masked on every page, as on the terminal.
    if let Some(file) = &app.project.config.secrets_file {
        let file = crate::ops::ssh::resolve_path(&app.project.root, file);
        if file.exists() {
            crate::ops::secrets::register_file(&file).map_err(|e| Error::usage(e.to_string()))?;
        }
    }
    let inventory = super::inventory_path(app).ok().map(|p| {
        let timeout = app.project.config.inventory_timeout.map_or(
            crate::inventory::script::DEFAULT_TIMEOUT,
            std::time::Duration::from_secs,
        );
        let display = crate::project::display_path(&p);
        (p, display, timeout)
    });
    let site = Arc::new(Site {
        project: app
            .project
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        state_dir: app.project.state_dir(),
        inventory,
        recipes: pages::recipes_of(&app.recipes),
        csrf: auth::random_token(32),
        fetcher,
        hook: hooks::Hook::new(app, pull.catalog_repo.as_deref()),
        runs: runs::Runner::new(app),
        auth: auth::Auth::new(store, secure_cookies),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    runtime.block_on(serve(site, addr, &signing_in))
}

/// Sign-ins and their failures, as lines on stderr (the systemd journal under the
/// unit); never fleet's journal of runs.
fn log_to_stderr() {
    use std::io::IsTerminal;
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

async fn serve(site: Arc<Site>, addr: SocketAddr, signing_in: &str) -> Result<i32> {
    let router = axum::Router::new()
        .route("/", get(fleet))
        .route("/host/{name}", get(host))
        .route("/runs", get(runs))
        .route("/run/{id}", get(runs::run_page))
        .route("/run/{id}/events", get(runs::events))
        .route("/recipes", get(runs::recipes_page))
        .route("/recipes/{name}", axum::routing::post(runs::start))
        .route("/metrics", get(metrics))
        .route(
            "/hooks/sync",
            axum::routing::post(hooks::sync)
                .layer(axum::extract::DefaultBodyLimit::max(hooks::BODY_LIMIT)),
        )
        .route("/login", get(login::form).post(login::login))
        .route("/logout", post(login::logout))
        .with_state(site.clone());
    fetch::spawn(site.clone());
    let hook_enabled = site.hook.enabled();
    // In front of every route, whichever is added above: no page without a caller
    // (but /login and /hooks/*, which carries its own token).
    let router = router.layer(axum::middleware::from_fn_with_state(site, auth::gate));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::usage(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "fleet serve: http://{bound}/ ({signing_in}; Ctrl-C stops)"
        );
        if !hook_enabled {
            let _ = writeln!(out, "{}", hooks::OFF_NOTE);
        }
        let _ = out.flush();
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|e| Error::Internal(format!("serve: {e}")))?;
    Ok(0)
}

type Q = Query<HashMap<String, String>>;

/// Runs a page builder off the async threads: the journal is read from disk.
pub(super) async fn page(
    site: Arc<Site>,
    build: impl FnOnce(&Site) -> std::result::Result<String, pages::PageError> + Send + 'static,
) -> Response {
    let result = tokio::task::spawn_blocking(move || build(&site)).await;
    match result {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(e)) => {
            let code = match e {
                pages::PageError::NotFound(_) => StatusCode::NOT_FOUND,
                pages::PageError::Journal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (code, Html(pages::error_page(&e))).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")).into_response(),
    }
}

async fn fleet(State(site): State<Arc<Site>>, Query(q): Q) -> Response {
    page(site, move |s| pages::fleet(s, &q)).await
}

async fn host(
    State(site): State<Arc<Site>>,
    caller: auth::Caller,
    Path(name): Path<String>,
) -> Response {
    page(site, move |s| {
        pages::host(s, &name, &runs::host_actions(s, &caller, &name))
    })
    .await
}

async fn runs(State(site): State<Arc<Site>>, Query(q): Q) -> Response {
    page(site, move |s| pages::runs(s, &q)).await
}

async fn metrics(State(site): State<Arc<Site>>) -> Response {
    page(site, pages::metrics).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_addresses_than_loopback_need_users() {
        let file = std::path::Path::new(".fleet/users.toml");
        let at = |a: &str| parse_listen(a).unwrap();
        assert!(check_exposure(at("127.0.0.1:0"), 0, file).is_ok());
        assert!(check_exposure(at("[::1]:8080"), 0, file).is_ok());
        let e = check_exposure(at("0.0.0.0:8080"), 0, file).unwrap_err();
        let shown = format!("{e} {:?}", e);
        assert!(shown.contains(".fleet/users.toml"), "{shown}");
        assert!(shown.contains("--add-user"), "{shown}");
        assert!(check_exposure(at("192.168.1.2:80"), 0, file).is_err());
        assert!(check_exposure(at("192.168.1.2:80"), 1, file).is_ok());
        assert!(parse_listen("localhost").is_err());
    }
}
