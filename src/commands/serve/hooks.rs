//! `POST /hooks/sync`: a git host's push webhook. With the secret token (the secret
//! `webhook_token`: secrets file or FLEET_SECRET_WEBHOOK_TOKEN) it fast-forwards the
//! project checkout (`git pull --ff-only`, never over local changes), syncs the catalog
//! (`--catalog-repo`) and fetches the pull hosts' results. Without the token nothing is
//! fetched. Every call is journaled: a record of the pseudo-recipe `hooks/sync` with no
//! hosts, its `error` saying why a call was refused or failed, its `local_changes` what
//! changed here; `fleet history` and the Runs page show them.
//!
//! The route needs no session and no CSRF token: it is not called from a browser form
//! but by a git host, and the token in its header is its authentication.

use super::Site;
use crate::journal::RunRecord;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The secret that holds the webhook's token.
pub(crate) const TOKEN_SECRET: &str = "webhook_token";
/// A push event's body is not read; anything larger than this is refused (413).
pub(crate) const BODY_LIMIT: usize = 64 * 1024;
/// The pseudo-recipe of the webhook's journal records.
const RECIPE: &str = "hooks/sync";
/// What `fleet serve` says at start when no token is configured.
pub(crate) const OFF_NOTE: &str = "webhook POST /hooks/sync is off: no secret `webhook_token` (secrets file or FLEET_SECRET_WEBHOOK_TOKEN)";
/// How long a call waits for a run holding the project lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What the webhook needs, read at start.
pub(crate) struct Hook {
    /// None: no token configured, the webhook is off (every call refused).
    token: Option<String>,
    root: PathBuf,
    data_dir: PathBuf,
    state_dir: PathBuf,
    catalog_repo: Option<String>,
    /// One call at a time; the others wait their turn (no pile of blocking threads).
    one: tokio::sync::Mutex<()>,
    /// Refused calls cost a journal commit: at most one a minute (see [`Refusals`]).
    refusals: std::sync::Mutex<Refusals>,
}

/// How often a refused call is journaled. Anyone who reaches the port can be refused,
/// so refusals must not grow the journal (or hold the project lock) without bound:
/// one record a window, carrying the count of the refusals it stands for.
#[derive(Debug, Default)]
struct Refusals {
    last_journaled: Option<std::time::Instant>,
    unjournaled: u64,
}

/// The window of [`Refusals`].
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

impl Refusals {
    /// Some(n): journal this refusal, saying n earlier ones were not; None: only count it.
    fn admit(&mut self, now: std::time::Instant) -> Option<u64> {
        let due = self
            .last_journaled
            .is_none_or(|t| now.duration_since(t) >= REFUSAL_WINDOW);
        if due {
            self.last_journaled = Some(now);
            Some(std::mem::take(&mut self.unjournaled))
        } else {
            self.unjournaled += 1;
            None
        }
    }
}

impl Hook {
    pub(crate) fn new(app: &crate::App, catalog_repo: Option<&str>) -> Hook {
        let file = app
            .project
            .config
            .secrets_file
            .as_ref()
            .map(|f| crate::ops::ssh::resolve_path(&app.project.root, f));
        // A secrets file that cannot be read was refused at start (register_file).
        let secrets = file
            .as_ref()
            .and_then(|f| crate::ops::secrets::load_file(f).ok());
        let token = crate::ops::secrets::lookup(
            TOKEN_SECRET,
            file.as_deref().zip(secrets.as_ref()),
            crate::ops::secrets::env_value,
        )
        .ok();
        Hook {
            token,
            root: app.project.root.clone(),
            data_dir: app.project.data_dir(),
            state_dir: app.project.state_dir(),
            catalog_repo: catalog_repo.map(|u| crate::ops::git::url_under(&app.project.root, u)),
            one: tokio::sync::Mutex::new(()),
            refusals: std::sync::Mutex::new(Refusals::default()),
        }
    }

    /// A webhook with no token (off), for unit tests of other pages.
    #[cfg(test)]
    pub(crate) fn off(dir: &std::path::Path) -> Hook {
        Hook {
            token: None,
            root: dir.to_path_buf(),
            data_dir: dir.join(".fleet"),
            state_dir: dir.join("state"),
            catalog_repo: None,
            one: tokio::sync::Mutex::new(()),
            refusals: std::sync::Mutex::new(Refusals::default()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.token.is_some()
    }
}

/// The token a request carries: `Authorization: Bearer T` or `X-Fleet-Token: T`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or_else(|| {
        headers
            .get("x-fleet-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })
}

/// Whether a call may sync: a token is configured and the request's is the same.
fn admitted(configured: Option<&str>, given: Option<&str>) -> Result<(), Refusal> {
    let Some(want) = configured else {
        return Err(Refusal::Off);
    };
    match given {
        None => Err(Refusal::NoToken),
        Some(g) if super::auth::constant_time_eq(want.as_bytes(), g.as_bytes()) => Ok(()),
        Some(_) => Err(Refusal::WrongToken),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error(
        "refused: the webhook is off (no secret `{TOKEN_SECRET}`: set it in the secrets file or FLEET_SECRET_WEBHOOK_TOKEN and restart fleet serve)"
    )]
    Off,
    #[error("refused: no token (send `Authorization: Bearer TOKEN` or `X-Fleet-Token: TOKEN`)")]
    NoToken,
    #[error("refused: wrong token")]
    WrongToken,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Off => StatusCode::NOT_FOUND,
            Refusal::NoToken | Refusal::WrongToken => StatusCode::FORBIDDEN,
        }
    }
}

/// `POST /hooks/sync` (body up to [`BODY_LIMIT`], not read).
pub(crate) async fn sync(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    _body: axum::body::Bytes,
) -> Response {
    let verdict = admitted(site.hook.token.as_deref(), presented(&headers));
    let _turn = site.hook.one.lock().await;
    let s = site.clone();
    let done = tokio::task::spawn_blocking(move || handle(&s, verdict)).await;
    match done {
        Ok((code, text)) => (code, text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// One call, under the project lock (a run never sees its recipes change under it, and
/// the journal record is committed like a run's).
fn handle(site: &Site, verdict: Result<(), Refusal>) -> (StatusCode, String) {
    let hook = &site.hook;
    let started = std::time::SystemTime::now();
    let mut earlier_refusals = 0;
    if let Err(refusal) = verdict {
        let admitted = hook
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(std::time::Instant::now());
        match admitted {
            Some(n) => earlier_refusals = n,
            None => {
                let text = format!(
                    "{refusal}\nnot journaled: a refusal was journaled less than {} s ago (the next one counts this)\n",
                    REFUSAL_WINDOW.as_secs()
                );
                return (refusal.status(), text);
            }
        }
    }
    let lock = match crate::exec::lock::acquire(&hook.data_dir, RECIPE, LOCK_WAIT) {
        Ok(l) => l,
        Err(e) => {
            // Not journaled: the journal is written under the lock.
            let text = format!("not synced (and not journaled): {e}");
            let shown =
                crate::ops::terminal::neutralise(&crate::ops::secrets::redact(&text)).into_owned();
            tracing::warn!(error = %shown, "/hooks/sync");
            return (StatusCode::SERVICE_UNAVAILABLE, text + "\n");
        }
    };
    let (code, changes, error) = match verdict {
        Err(refusal) if earlier_refusals > 0 => (
            refusal.status(),
            Vec::new(),
            Some(format!(
                "{refusal} (and {earlier_refusals} earlier refused call(s) not journaled)"
            )),
        ),
        Err(refusal) => (refusal.status(), Vec::new(), Some(refusal.to_string())),
        Ok(()) => {
            let (changes, problems) = sync_all(site);
            if problems.is_empty() {
                (StatusCode::OK, changes, None)
            } else {
                (StatusCode::CONFLICT, changes, Some(problems.join("; ")))
            }
        }
    };
    let record = record(started, &changes, error.as_deref());
    let journaled = crate::journal::write(&hook.state_dir, &record, &[]);
    drop(lock);
    let mut text = String::new();
    for c in &changes {
        text.push_str(c);
        text.push('\n');
    }
    if let Some(e) = &error {
        text.push_str(e);
        text.push('\n');
    }
    match journaled {
        Ok(_) => text.push_str(&format!("journaled as run {}\n", record.run_id)),
        Err(e) => {
            tracing::warn!(error = %e, "webhook call not journaled");
            text.push_str(&format!("not journaled: {e}\n"));
        }
    }
    let text = crate::ops::terminal::neutralise(&crate::ops::secrets::redact(&text)).into_owned();
    (code, text)
}

/// The project, the catalog, the results: what changed, and what failed.
fn sync_all(site: &Site) -> (Vec<String>, Vec<String>) {
    let hook = &site.hook;
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    match pull_project(&hook.root) {
        Ok(done) => changes.push(done),
        Err(e) => problems.push(e.to_string()),
    }
    if let Some(url) = &hook.catalog_repo {
        match crate::ops::git::sync(url, &hook.root.join("catalog"), None, None) {
            Ok(out) => match out.warning {
                None => changes.push(format!("catalog: at {}", short(&out.commit))),
                Some(w) => problems.push(format!("catalog: {w}")),
            },
            Err(e) => problems.push(format!("catalog: {e}")),
        }
    }
    let fetched = site.fetcher.fetch_now();
    match fetched.outcome {
        Ok(what) => changes.push(format!("results: {what}")),
        Err(e) => problems.push(format!("results: {e}")),
    }
    (changes, problems)
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Why the project checkout was not fast-forwarded.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("project: cannot run git ({0})")]
    Spawn(std::io::Error),
    #[error(
        "project: {root} has uncommitted changes ({files}); not pulled: commit or stash them, fleet does not merge or overwrite them"
    )]
    Dirty { root: String, files: String },
    #[error(
        "project: git pull --ff-only in {root} failed, the checkout is unchanged: {why} (has it diverged from its upstream? merge by hand)"
    )]
    Pull { root: String, why: String },
}

fn git(root: &Path, args: &[&str]) -> Result<std::process::Output, PullError> {
    Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        // Never wait for a password on a terminal nobody watches.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(PullError::Spawn)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git pull --ff-only` of the project checkout when it tracks an upstream branch; a
/// checkout with local changes is left alone.
fn pull_project(root: &Path) -> Result<String, PullError> {
    let shown = root.display().to_string();
    let inside = git(root, &["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() || stdout(&inside) != "true" {
        return Ok(format!(
            "project: {shown} is not a git checkout; nothing pulled"
        ));
    }
    let upstream = git(
        root,
        &[
            "rev-parse",
            "--abbrev-ref",
            "--symbolic-full-name",
            "@{upstream}",
        ],
    )?;
    if !upstream.status.success() {
        return Ok(
            "project: the checkout's branch has no upstream (git branch -u origin/BRANCH); nothing pulled"
                .to_string(),
        );
    }
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"])?;
    // `XY path`: the status columns may start with a space.
    let files: Vec<String> = String::from_utf8_lossy(&dirty.stdout)
        .lines()
        .map(|l| l.get(3..).unwrap_or(l).to_string())
        .collect();
    if !files.is_empty() {
        let mut list = files.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if files.len() > 5 {
            list.push_str(&format!(" and {} more", files.len() - 5));
        }
        return Err(PullError::Dirty {
            root: shown,
            files: list,
        });
    }
    let before = stdout(&git(root, &["rev-parse", "HEAD"])?);
    let pulled = git(root, &["pull", "--ff-only", "--quiet", "--no-rebase"])?;
    if !pulled.status.success() {
        return Err(PullError::Pull {
            root: shown,
            why: crate::ops::text::tail(&String::from_utf8_lossy(&pulled.stderr), 3),
        });
    }
    let after = stdout(&git(root, &["rev-parse", "HEAD"])?);
    Ok(if before == after {
        format!("project: up to date at {}", short(&after))
    } else {
        format!("project: pulled {}..{}", short(&before), short(&after))
    })
}

/// The journal record of one call.
fn record(started: std::time::SystemTime, changes: &[String], error: Option<&str>) -> RunRecord {
    let now = std::time::SystemTime::now();
    RunRecord {
        run_id: crate::session::new_run_id(),
        recipe: RECIPE.into(),
        args: Vec::new(),
        params: Default::default(),
        recipe_commit: None,
        recipe_dirty: false,
        recipes_rev: None,
        replays: None,
        fleet_version: env!("CARGO_PKG_VERSION").to_string(),
        user: "webhook".into(),
        controller: crate::sysinfo::hostname(),
        started: humantime::format_rfc3339_seconds(started).to_string(),
        ended: humantime::format_rfc3339_seconds(now).to_string(),
        duration_ms: now
            .duration_since(started)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        check: false,
        exit_code: i32::from(error.is_some()),
        error: error.map(str::to_string),
        killed: false,
        local_changes: changes.to_vec(),
        hosts: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_either_header_and_must_match() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("x-fleet-token", "abc".parse().unwrap());
        assert_eq!(presented(&h), Some("abc"));
        h.insert("authorization", "Bearer xyz".parse().unwrap());
        assert_eq!(presented(&h), Some("xyz"));
        assert_eq!(admitted(Some("xyz"), Some("xyz")), Ok(()));
        assert_eq!(admitted(Some("xyz"), Some("xy")), Err(Refusal::WrongToken));
        assert_eq!(admitted(Some("xyz"), None), Err(Refusal::NoToken));
        assert_eq!(admitted(None, Some("xyz")), Err(Refusal::Off));
        assert_eq!(Refusal::Off.status(), StatusCode::NOT_FOUND);
        assert_eq!(Refusal::WrongToken.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn refusals_are_journaled_once_a_window_with_a_count() {
        let t0 = std::time::Instant::now();
        let mut r = Refusals::default();
        assert_eq!(r.admit(t0), Some(0));
        assert_eq!(r.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(r.admit(t0 + Duration::from_secs(59)), None);
        assert_eq!(r.admit(t0 + REFUSAL_WINDOW), Some(2));
        assert_eq!(r.admit(t0 + REFUSAL_WINDOW), None);
    }

    #[test]
    fn a_record_says_what_changed_and_why_a_call_failed() {
        let r = record(
            std::time::SystemTime::now(),
            &["project: pulled a..b".into()],
            Some("refused: wrong token"),
        );
        assert_eq!(r.recipe, "hooks/sync");
        assert_eq!(r.exit_code, 1);
        assert!(r.hosts.is_empty());
        assert_eq!(r.local_changes, ["project: pulled a..b"]);
        let ok = record(std::time::SystemTime::now(), &[], None);
        assert_eq!((ok.exit_code, ok.error), (0, None));
    }

    #[test]
    fn a_checkout_with_local_changes_is_not_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let g = |d: &Path, args: &[&str]| {
            let out = Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(d)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let remote = dir.path().join("r.git");
        let work = dir.path().join("w");
        g(
            dir.path(),
            &["init", "-q", "--bare", remote.to_str().unwrap()],
        );
        g(
            dir.path(),
            &[
                "clone",
                "-q",
                remote.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
        assert!(pull_project(&work).unwrap().contains("no upstream"));
        std::fs::write(work.join("f"), "1").unwrap();
        g(&work, &["add", "f"]);
        g(&work, &["commit", "-qm", "1"]);
        g(&work, &["push", "-q", "-u", "origin", "main"]);
        assert!(
            pull_project(&work)
                .unwrap()
                .starts_with("project: up to date at ")
        );
        std::fs::write(work.join("f"), "local").unwrap();
        let e = pull_project(&work).unwrap_err().to_string();
        assert!(e.contains("uncommitted changes (f)"), "{e}");
        let plain = tempfile::tempdir().unwrap();
        assert!(
            pull_project(plain.path())
                .unwrap()
                .contains("not a git checkout")
        );
    }
}
