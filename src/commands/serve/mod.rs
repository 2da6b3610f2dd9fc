//! `fleet serve [--listen ADDR:PORT]`: a web view of the journal, the status cache,
//! backups and recipes, and recipe runs with their output live (`runs`). Loopback only
//! until users and login exist: anyone who can reach the port reads everything fleet
//! knows.

// Callers and CSRF tokens: the run forms and login use them (issue 20).
#[allow(dead_code)]
mod auth;
pub(crate) mod fetch;
mod hooks;
mod pages;
mod runs;

use crate::App;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
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
}

impl Site {
    pub(crate) fn inventory(&self) -> Option<crate::inventory::Inventory> {
        let (path, display, timeout) = self.inventory.as_ref()?;
        crate::inventory::Inventory::load(path, display, *timeout).ok()
    }
}

/// Only loopback for now; anything else needs users and login first.
pub(crate) fn parse_listen(listen: &str) -> Result<SocketAddr> {
    let addr: SocketAddr = listen.parse().map_err(|_| {
        Error::usage_with_help(
            format!("--listen {listen:?} is not an ADDRESS:PORT"),
            format!("for example --listen {DEFAULT_LISTEN}"),
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::usage_with_help(
            format!(
                "fleet serve listens only on loopback addresses (127.0.0.1, ::1), not {}",
                addr.ip()
            ),
            "serving to other machines needs users and login, which are not built yet; \
             reach it through an SSH tunnel (ssh -L 8080:127.0.0.1:8080 HOST)",
        ));
    }
    Ok(addr)
}

pub(crate) fn run(app: &App, listen: &str, pull: &fetch::PullArgs) -> Result<i32> {
    let addr = parse_listen(listen)?;
    let fetcher = fetch::Fetcher::new(&app.project.state_dir(), pull)?;
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
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
    runtime.block_on(serve(site, addr))
}

async fn serve(site: Arc<Site>, addr: SocketAddr) -> Result<i32> {
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
        .with_state(site.clone());
    fetch::spawn(site.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::usage(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "fleet serve: http://{bound}/ (Ctrl-C stops)");
        if !site.hook.enabled() {
            let _ = writeln!(out, "{}", hooks::OFF_NOTE);
        }
        let _ = out.flush();
    }
    axum::serve(listener, router)
        .await
        .map_err(|e| Error::Internal(format!("serve: {e}")))?;
    Ok(0)
}

type Q = Query<HashMap<String, String>>;

/// Runs a page builder off the async threads: the journal is read from disk.
async fn page(
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

async fn host(State(site): State<Arc<Site>>, Path(name): Path<String>) -> Response {
    page(site, move |s| pages::host(s, &name)).await
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
    fn only_loopback_is_accepted() {
        assert!(parse_listen("127.0.0.1:0").is_ok());
        assert!(parse_listen("[::1]:8080").is_ok());
        let e = parse_listen("0.0.0.0:8080").unwrap_err().to_string();
        assert!(e.contains("loopback"), "{e}");
        assert!(parse_listen("192.168.1.2:80").is_err());
        assert!(parse_listen("localhost").is_err());
    }
}
