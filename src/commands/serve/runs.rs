//! Running recipes from `fleet serve`: the Recipes page's forms, starting a run (this
//! same fleet binary as a child, in the project, its arguments built by [`child_args`]),
//! and a run's output streamed live (Server-Sent Events) from its JSON-lines log, for
//! runs started here, from the CLI or from cron alike.
//!
//! A run from the web is a run like any other: the same recipe index, argument parsing
//! and host patterns judge the form before anything starts (the CLI's errors, shown on
//! the form), the same project lock, the same journal, recorded as `web:USER`.

use super::Site;
use super::auth::Caller;
use super::pages::{self, RecipeInfo, t, u};
use crate::error::Error;
use crate::recipe::args::Param;
use crate::recipe::doc::ArgType;
use crate::recipe::index::Recipe;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// "Wait" for the lock: this long, then the run gives up (exit 75) as a CLI run would.
pub(crate) const LOCK_WAIT_SECS: u64 = 3600;
/// Runs started here that the server remembers (their stderr, exit code).
const KEEP_WEB_RUNS: usize = 100;
/// The end of a child's stderr kept for its run page.
const STDERR_KEEP: usize = 16 * 1024;
/// A log record longer than this is not read, only counted.
const MAX_RECORD: usize = 1 << 20;
/// Characters of one streamed line.
const MAX_SHOWN: usize = 2000;
/// Lines of one command's output streamed.
const MAX_OUTPUT_LINES: usize = 1000;
/// Lines of one stream; the rest is in the log and `fleet show`.
const MAX_STREAM_LINES: usize = 20_000;
/// Streams served at once.
const MAX_STREAMS: usize = 32;
const POLL: Duration = Duration::from_millis(200);

/// What starting runs needs, and the runs this server started.
pub(crate) struct Runner {
    root: PathBuf,
    data_dir: PathBuf,
    log_dir: PathBuf,
    /// fleet's options the server was started with that its runs need too (`-i`,
    /// `--state-dir`), as `--name=value`.
    passthrough: Vec<String>,
    started: Mutex<VecDeque<Arc<WebRun>>>,
    streams: Arc<AtomicUsize>,
}

impl Runner {
    pub(crate) fn new(app: &crate::App) -> Runner {
        let mut passthrough = Vec::new();
        let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        if let Some(i) = &app.global.inventory {
            passthrough.push(format!("--inventory={}", abs(i).display()));
        }
        if let Some(s) = &app.global.state_dir {
            passthrough.push(format!("--state-dir={}", abs(s).display()));
        }
        Runner {
            root: app.project.root.clone(),
            data_dir: app.project.data_dir(),
            log_dir: app.project.log_dir(),
            passthrough,
            started: Mutex::new(VecDeque::new()),
            streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn find(&self, id: &str) -> Option<Arc<WebRun>> {
        let started = self.started.lock().ok()?;
        started.iter().find(|r| r.id == id).cloned()
    }

    fn log_of(&self, id: &str) -> PathBuf {
        self.log_dir.join(format!("{id}.jsonl"))
    }

    /// Who holds the project's lock now.
    pub(crate) fn holder(&self) -> Option<crate::exec::lock::Holder> {
        crate::exec::lock::current_holder(&self.data_dir)
    }
}

/// A run this server started: its child's stderr (the end of it) and exit code.
pub(crate) struct WebRun {
    id: String,
    recipe: String,
    user: String,
    state: Mutex<ChildState>,
}

#[derive(Default)]
struct ChildState {
    exit: Option<i32>,
    stderr: String,
}

impl WebRun {
    fn exit(&self) -> Option<i32> {
        self.state.lock().ok()?.exit
    }

    fn stderr(&self) -> String {
        self.state
            .lock()
            .map(|s| s.stderr.clone())
            .unwrap_or_default()
    }
}

/// What one form asks for, as the command line would say it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Launch {
    /// The recipe's name in the index (never the name as posted).
    pub(crate) recipe: String,
    /// The recipe's options, `(flag, value)`.
    pub(crate) options: Vec<(String, String)>,
    /// Its required arguments, in order.
    pub(crate) positionals: Vec<String>,
    pub(crate) limit: Option<String>,
    pub(crate) check: bool,
    pub(crate) lock_wait: u64,
}

impl Launch {
    /// The arguments after the recipe's name: every value attached to its flag
    /// (`--flag=value`) or after `--`, so no value can become an option.
    pub(crate) fn recipe_args(&self) -> Vec<String> {
        let mut args: Vec<String> = self
            .options
            .iter()
            .map(|(flag, value)| format!("--{flag}={value}"))
            .collect();
        if !self.positionals.is_empty() {
            args.push("--".into());
            args.extend(self.positionals.iter().cloned());
        }
        args
    }
}

/// The child fleet's whole command line (without the program).
pub(crate) fn child_args(launch: &Launch, passthrough: &[String]) -> Vec<String> {
    let mut args = passthrough.to_vec();
    args.push("--no-progress".into());
    args.push(format!("--lock-wait={}", launch.lock_wait));
    if launch.check {
        args.push("--check".into());
    }
    if let Some(limit) = &launch.limit {
        args.push(format!("--limit={limit}"));
    }
    args.push(launch.recipe.clone());
    args.extend(launch.recipe_args());
    args
}

/// A recipe's `pattern` argument: the form's host pattern field fills it.
fn is_pattern(p: &Param) -> bool {
    p.name == "pattern" && p.ty == ArgType::String && p.default.is_some()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn arg_field(p: &Param) -> String {
    format!("arg-{}", p.name)
}

/// The form's fields as a launch of `recipe`: the host pattern goes to the recipe's
/// `pattern` argument when it has one, else to `--limit`; a checkbox is `true` when
/// sent and `false` when not; a required argument not sent ends the positionals (the
/// CLI's parser then says it is missing).
pub(crate) fn launch_of(recipe: &Recipe, fields: &[(String, String)]) -> Launch {
    let hosts = field(fields, "hosts")
        .map(str::trim)
        .filter(|h| !h.is_empty());
    let mut launch = Launch {
        recipe: recipe.name.clone(),
        check: field(fields, "mode") == Some("check"),
        lock_wait: if field(fields, "lock") == Some("wait") {
            LOCK_WAIT_SECS
        } else {
            0
        },
        ..Launch::default()
    };
    let mut positionals_open = true;
    for p in &recipe.params {
        if is_pattern(p) {
            if let Some(h) = hosts {
                launch.options.push((p.flag(), h.to_string()));
            }
            continue;
        }
        let sent = field(fields, &arg_field(p));
        let value = if p.ty == ArgType::Bool {
            Some(if sent.is_some() { "true" } else { "false" })
        } else {
            sent
        };
        match (&p.default, value) {
            (Some(_), Some(v)) => launch.options.push((p.flag(), v.to_string())),
            (Some(_), None) => {}
            (None, Some(v)) if positionals_open => launch.positionals.push(v.to_string()),
            (None, _) => positionals_open = false,
        }
    }
    if !recipe.params.iter().any(is_pattern) {
        launch.limit = hosts.map(str::to_string);
    }
    launch
}

/// Why a form starts nothing: the CLI's error for the same command line, shown on the
/// form as the CLI prints it (without colours or boxes).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// The command line does not parse (clap's message, with its usage line).
    #[error("{}", .0.to_string().trim_end())]
    CommandLine(#[from] clap::Error),
    #[error("error: {0}")]
    Arguments(#[from] crate::recipe::args::BindError),
    /// The inventory cannot be read, or the pattern matches no host.
    #[error("{}", fleet_error(.0))]
    Hosts(#[from] Error),
    #[error("error: this project has no inventory to match the host pattern against")]
    NoInventory,
    #[error(
        "error: another run holds the lock of this project: {0}; not waiting \
         (choose \"wait\" to start when it ends)"
    )]
    Locked(crate::exec::lock::Holder),
}

fn fleet_error(e: &Error) -> String {
    match e {
        Error::Usage {
            message,
            help: Some(help),
        } => format!("error: {message}\n  help: {help}"),
        e => format!("error: {e}"),
    }
}

/// Judges a launch as the CLI would before it starts anything: the recipe's arguments
/// (clap and their types), the host pattern against the inventory, and, when the user
/// chose to refuse, the lock.
fn judge(site: &Site, recipe: &Recipe, launch: &Launch) -> Result<(), Refusal> {
    let argv = std::iter::once(recipe.name.clone()).chain(launch.recipe_args());
    let matches = crate::cli::recipe_command(recipe, true).try_get_matches_from(argv)?;
    crate::recipe::args::bind(&recipe.name, &recipe.params, &matches, None)?;
    let pattern = launch.limit.clone().or_else(|| {
        launch
            .options
            .iter()
            .find(|(flag, _)| flag == "pattern")
            .map(|(_, v)| v.clone())
    });
    if let Some(pattern) = pattern {
        let Some((path, display, timeout)) = &site.inventory else {
            return Err(Refusal::NoInventory);
        };
        let inventory = crate::inventory::Inventory::load(path, display, *timeout)?;
        crate::inventory::select(&inventory, &pattern)?;
    }
    if launch.lock_wait == 0
        && let Some(holder) = site.runs.holder()
    {
        return Err(Refusal::Locked(holder));
    }
    Ok(())
}

/// Starts `launch` as a child fleet in the project, named `id`, recorded as `user`.
fn spawn(site: &Arc<Site>, id: &str, user: &str, launch: &Launch) -> std::io::Result<()> {
    let runner = &site.runs;
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(child_args(launch, &runner.passthrough))
        .current_dir(&runner.root)
        .env(crate::sysinfo::RUN_ID_VAR, id)
        .env(crate::sysinfo::JOURNAL_USER_VAR, user)
        .envs(crate::ops::secrets::env_secrets())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let run = Arc::new(WebRun {
        id: id.to_string(),
        recipe: launch.recipe.clone(),
        user: user.to_string(),
        state: Mutex::new(ChildState::default()),
    });
    if let Ok(mut started) = runner.started.lock() {
        // The oldest ended run is forgotten first; its journal record stays.
        while started.len() >= KEEP_WEB_RUNS {
            match started.iter().position(|r| r.exit().is_some()) {
                Some(i) => started.remove(i),
                None => started.pop_front(),
            };
        }
        started.push_back(run.clone());
    }
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        if let Some(mut stderr) = stderr {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut state) = run.state.lock() {
                    state.stderr.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if state.stderr.len() > STDERR_KEEP {
                        let mut cut = state.stderr.len() - STDERR_KEEP;
                        while !state.stderr.is_char_boundary(cut) {
                            cut += 1;
                        }
                        state.stderr.drain(..cut);
                    }
                }
            }
        }
        let code = match child.wait().await {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(1)
            }
            Err(_) => 1,
        };
        if let Ok(mut state) = run.state.lock() {
            state.exit = Some(code);
        }
    });
    Ok(())
}

/// `GET /recipes`: each recipe with its doc and, for those who may run, its form.
pub(crate) async fn recipes_page(State(site): State<Arc<Site>>, caller: Caller) -> Response {
    let page = tokio::task::spawn_blocking(move || recipes_html(&site, &caller, None)).await;
    match page {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A form sent back with its error: the recipe, what was sent, the error.
type Refused<'a> = (&'a str, &'a [(String, String)], &'a str);

fn recipes_html(site: &Site, caller: &Caller, refused: Option<Refused>) -> String {
    let holder = site.runs.holder();
    pages::recipes(site, holder.as_ref(), |info| {
        if !caller.can_run() {
            return String::new();
        }
        match refused {
            Some((name, fields, error)) if name == info.recipe.name => {
                form(info, caller, Some(fields), Some(error))
            }
            _ => form(info, caller, None, None),
        }
    })
}

/// The Host page's run buttons: every recipe that needs no more than a host pattern
/// runs (or checks) on this host with one click, through the same form handler as the
/// Recipes page; the others link to their full form.
pub(crate) fn host_actions(site: &Site, caller: &Caller, host: &str) -> String {
    if !caller.can_run() {
        return String::new();
    }
    let mut out = String::from("<h2>Run on this host</h2><table id=\"actions\">");
    for info in &site.recipes {
        let needs_more = info
            .recipe
            .params
            .iter()
            .any(|p| !is_pattern(p) && p.default.is_none());
        let _ = write!(out, "<tr><td>{}</td><td>", t(&info.name));
        if needs_more {
            let _ = write!(
                out,
                "<a href=\"/recipes#{}\">form</a> <span class=\"muted\">needs arguments</span>",
                u(&info.name)
            );
        } else {
            let _ = write!(
                out,
                "<form class=\"quick\" method=\"post\" action=\"/recipes/{}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<input type=\"hidden\" name=\"hosts\" value=\"{}\">\
<input type=\"hidden\" name=\"lock\" value=\"refuse\">\
<button name=\"mode\" value=\"check\">Check</button> \
<button name=\"mode\" value=\"run\">Run</button></form>",
                u(&info.name),
                t(&caller.csrf),
                t(host)
            );
        }
        let _ = write!(out, "</td><td>{}</td></tr>", t(&info.summary));
    }
    out.push_str("</table>\n");
    out
}

/// The run form of one recipe: an input per typed argument (defaults filled, required
/// ones marked), the host pattern, the lock choice, "Check first" and "Run".
fn form(
    info: &RecipeInfo,
    caller: &Caller,
    sent: Option<&[(String, String)]>,
    error: Option<&str>,
) -> String {
    let recipe = &info.recipe;
    let value_of = |name: &str, default: Option<String>| match sent {
        Some(fields) => field(fields, name).map(str::to_string),
        None => default,
    };
    let mut out = format!(
        "<form class=\"run\" method=\"post\" action=\"/recipes/{}\" id=\"run-{}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        u(&info.name),
        t(&info.name),
        t(&caller.csrf)
    );
    if let Some(e) = error {
        let _ = write!(out, "<pre class=\"error\">{}</pre>", t(e));
    }
    let pattern_default = recipe
        .params
        .iter()
        .find(|p| is_pattern(p))
        .and_then(|p| p.default.as_ref())
        .map(|d| d.to_string());
    let target = if pattern_default.is_some() {
        "the recipe's pattern"
    } else {
        "--limit; empty: every host the recipe chooses"
    };
    let _ = write!(
        out,
        "<p><label>hosts <input name=\"hosts\" value=\"{}\" placeholder=\"all\"></label> \
<span class=\"muted\">host pattern ({target}), e.g. web, web-*, web:&amp;prod</span></p>",
        t(&value_of("hosts", pattern_default).unwrap_or_default())
    );
    for p in recipe.params.iter().filter(|p| !is_pattern(p)) {
        let name = arg_field(p);
        let default = p.default.as_ref().map(|d| d.to_string());
        let required = if p.default.is_none() { " required" } else { "" };
        let input = match p.ty {
            ArgType::Bool => {
                let on = match sent {
                    Some(fields) => field(fields, &name).is_some(),
                    None => default.as_deref() == Some("true"),
                };
                format!(
                    "<input type=\"checkbox\" name=\"{}\" value=\"true\"{}>",
                    t(&name),
                    if on { " checked" } else { "" }
                )
            }
            ty => {
                let kind = match ty {
                    ArgType::Int => "type=\"number\" step=\"1\"",
                    ArgType::Port => "type=\"number\" min=\"1\" max=\"65535\"",
                    ArgType::Float => "type=\"number\" step=\"any\"",
                    _ => "type=\"text\"",
                };
                format!(
                    "<input {kind} name=\"{}\" value=\"{}\"{required}>",
                    t(&name),
                    t(&value_of(&name, default).unwrap_or_default())
                )
            }
        };
        let _ = write!(
            out,
            "<p><label>{} {input}</label> <span class=\"muted\">{}{}</span></p>",
            t(&p.name),
            t(p.ty.name()),
            if p.help.is_empty() {
                String::new()
            } else {
                format!(", {}", t(&p.help))
            }
        );
    }
    let wait = sent.is_some_and(|f| field(f, "lock") == Some("wait"));
    let _ = write!(
        out,
        "<p>if another run holds the lock: \
<label><input type=\"radio\" name=\"lock\" value=\"refuse\"{}> refuse</label> \
<label><input type=\"radio\" name=\"lock\" value=\"wait\"{}> wait (up to {}&nbsp;min)</label></p>\
<p><button name=\"mode\" value=\"check\">Check first</button> \
<button name=\"mode\" value=\"run\">Run</button></p></form>",
        if wait { "" } else { " checked" },
        if wait { " checked" } else { "" },
        LOCK_WAIT_SECS / 60
    );
    out.push('\n');
    out
}

fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("forbidden: {why}\n")).into_response()
}

/// `POST /recipes/{name}`: judges the form as the CLI would; on an error shows it on
/// the form and starts nothing, else starts the run and redirects to its page.
pub(crate) async fn start(
    State(site): State<Arc<Site>>,
    caller: Caller,
    Path(name): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if !caller.can_run() {
        return forbidden("viewers cannot run recipes");
    }
    if caller
        .check_csrf(field(&fields, "csrf").unwrap_or_default())
        .is_err()
    {
        return forbidden("the form's token is missing or stale; reload the page");
    }
    let Some(info) = site
        .recipes
        .iter()
        .find(|r| r.name == name || r.recipe.name == name)
    else {
        let e =
            pages::PageError::NotFound(format!("no recipe `{name}`; the Recipes page lists them"));
        return (StatusCode::NOT_FOUND, Html(pages::error_page(&e))).into_response();
    };
    let recipe = info.recipe.clone();
    let launch = launch_of(&recipe, &fields);
    let judged = {
        let site = site.clone();
        tokio::task::spawn_blocking(move || {
            let result = judge(&site, &recipe, &launch);
            (result, launch, recipe)
        })
        .await
    };
    let (result, launch, recipe) = match judged {
        Ok(j) => j,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    if let Err(refusal) = result {
        let error = refusal.to_string();
        let site2 = site.clone();
        let html = tokio::task::spawn_blocking(move || {
            recipes_html(&site2, &caller, Some((&recipe.name, &fields, &error)))
        })
        .await
        .unwrap_or_default();
        return (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response();
    }
    let id = crate::session::new_run_id();
    if let Err(e) = spawn(&site, &id, &caller.journal_user(), &launch) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot start fleet: {e}\n"),
        )
            .into_response();
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/run/{}", u(&id)))],
    )
        .into_response()
}

/// `GET /run/{id}`: the journal's record of an ended run; for a run still going (or
/// waiting for the lock), its output as it comes.
pub(crate) async fn run_page(
    State(site): State<Arc<Site>>,
    // Whoever may see pages may see a run: the caller is asked for as on every page.
    _caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    super::page(site, move |site| match pages::run(site, &id) {
        Err(pages::PageError::NotFound(why)) if crate::session::is_run_id(&id) => {
            live_page(site, &id, q.contains_key("ended")).ok_or(pages::PageError::NotFound(why))
        }
        other => other,
    })
    .await
}

/// The page of a run without a journal record: started here, or with a log.
fn live_page(site: &Site, id: &str, ended: bool) -> Option<String> {
    let web = site.runs.find(id);
    let log = site.runs.log_of(id);
    let has_log = log.is_file();
    if web.is_none() && !has_log {
        return None;
    }
    let mut body = String::new();
    if let Some(w) = &web {
        let _ = write!(
            body,
            "<p>{} started by {} from the web</p>",
            t(&w.recipe),
            t(&w.user)
        );
        if let (Some(code), false) = (w.exit(), has_log) {
            // It ended before it had a log: refused arguments, the lock, a broken recipe.
            let _ = write!(
                body,
                "<p id=\"state\" class=\"failed\">did not start: exit {code} ({})</p><pre class=\"error\">{}</pre>",
                result_of(code),
                t(&w.stderr())
            );
            return Some(pages::layout(site, &format!("Run {id}"), &body));
        }
    }
    let state = if ended {
        "ended without a journal record (killed?)"
    } else if has_log {
        "running"
    } else {
        "waiting for the lock"
    };
    // Text nodes only, never HTML. Every stream starts at the log's beginning, so a
    // reconnect (EventSource retries by itself) starts the text over. The first line
    // streamed means the run has its log: the state line says so.
    let _ = write!(
        body,
        "<p id=\"state\">{state}</p><pre id=\"out\"></pre>\n<script>\
(function(){{var out=document.getElementById('out'),st=document.getElementById('state');\
var es=new EventSource('/run/{id}/events');\
es.onopen=function(){{out.textContent='';}};\
es.onmessage=function(e){{if(st.textContent!=='running'){{st.textContent='running';}}\
out.appendChild(document.createTextNode(e.data+'\\n'));}};\
es.addEventListener('end',function(e){{es.close();st.textContent='ended: '+e.data;\
if(!/ended=1/.test(location.search)){{setTimeout(function(){{location.replace('/run/{id}?ended=1');}},300);}}}});\
}})();</script>\n",
        id = u(id)
    );
    Some(pages::layout(site, &format!("Run {id}"), &body))
}

/// The word a run's exit code stands for.
pub(crate) fn result_of(code: i32) -> &'static str {
    use crate::error::exit;
    match code {
        exit::OK => "ok",
        exit::INTERNAL => "internal error",
        exit::USAGE => "error",
        exit::HOST_FAILED => "failed",
        exit::UNREACHABLE => "unreachable",
        exit::LOCKED => "locked",
        exit::TIMEOUT => "timed out",
        exit::INTERRUPTED => "interrupted",
        _ => "failed",
    }
}

/// A line as the browser gets it: redacted, control characters replaced, bounded.
fn clean(text: &str) -> String {
    let text = crate::ops::secrets::redact(text);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHOWN {
            out.push('…');
            break;
        }
        out.push(if c.is_control() && c != '\t' {
            '\u{fffd}'
        } else {
            c
        });
    }
    out
}

/// One log record for the browser: its lines and, for the run's end, its result.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Rendered {
    pub(crate) lines: Vec<String>,
    pub(crate) end: Option<String>,
}

/// One JSON-lines log record (`exec::log`) as lines of text.
pub(crate) fn render(record: &serde_json::Value) -> Rendered {
    let s = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let host = s("host");
    let who = |text: &str| {
        if host.is_empty() {
            clean(text)
        } else {
            clean(&format!("{host}: {text}"))
        }
    };
    let message = s("message");
    let mut out = Rendered::default();
    if record.get("command").is_some() {
        out.lines.push(who(&format!("$ {}", s("command"))));
        for (stream, mark) in [("stdout", ""), ("stderr", "! ")] {
            let text = s(stream);
            let total = text.lines().count();
            for line in text.lines().take(MAX_OUTPUT_LINES) {
                out.lines.push(who(&format!("  {mark}{line}")));
            }
            if total > MAX_OUTPUT_LINES {
                out.lines.push(who(&format!(
                    "  … {} more lines of {stream} in the log",
                    total - MAX_OUTPUT_LINES
                )));
            }
        }
        let executed = record.get("executed").and_then(|v| v.as_bool());
        match (executed, record.get("exit_code").and_then(|v| v.as_i64())) {
            (Some(false), _) => out.lines.push(who("  (not run: check mode)")),
            (_, Some(code)) if code != 0 => out.lines.push(who(&format!("  exit {code}"))),
            _ => {}
        }
    } else if message == "run ended" && host.is_empty() && record.get("step").is_none() {
        let code = record.get("exit_code").and_then(|v| v.as_i64());
        out.end = Some(match code {
            Some(code) => result_of(i32::try_from(code).unwrap_or(1)).to_string(),
            None => "error".to_string(),
        });
    } else if message == "run started" && record.get("args").is_some() {
        let check = record.get("check").and_then(|v| v.as_bool()) == Some(true);
        out.lines.push(clean(&format!(
            "run {} of {} {}{}",
            s("run_id"),
            s("recipe"),
            s("args"),
            if check { " (check mode)" } else { "" }
        )));
    } else if message == "host ended" && record.get("status").is_some() {
        let error = s("error");
        out.lines.push(who(&if error.is_empty() {
            s("status").to_uppercase()
        } else {
            format!("{}: {error}", s("status").to_uppercase())
        }));
    } else if message == "step started" {
        out.lines.push(who(&format!("step {}", s("step"))));
    } else {
        for line in message.lines().take(MAX_OUTPUT_LINES) {
            out.lines.push(who(line));
        }
    }
    out
}

/// A log's bytes as lines, never holding more than `max` bytes of one: a longer line is
/// only counted.
pub(crate) struct Lines {
    buf: Vec<u8>,
    skipping: Option<usize>,
    max: usize,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    Text(String),
    TooLong(usize),
}

impl Lines {
    pub(crate) fn new(max: usize) -> Lines {
        Lines {
            buf: Vec::new(),
            skipping: None,
            max,
        }
    }

    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            let head = &bytes[..i];
            bytes = &bytes[i + 1..];
            if let Some(n) = self.skipping.take() {
                out.push(Line::TooLong(n + head.len()));
            } else if self.buf.len() + head.len() > self.max {
                out.push(Line::TooLong(self.buf.len() + head.len()));
                self.buf.clear();
            } else {
                self.buf.extend_from_slice(head);
                out.push(Line::Text(String::from_utf8_lossy(&self.buf).into_owned()));
                self.buf.clear();
            }
        }
        match &mut self.skipping {
            Some(n) => *n += bytes.len(),
            None if self.buf.len() + bytes.len() > self.max => {
                self.skipping = Some(self.buf.len() + bytes.len());
                self.buf.clear();
            }
            None => self.buf.extend_from_slice(bytes),
        }
        out
    }
}

/// Counts a stream while it is served.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Follows one run's log for its stream.
struct Tail {
    site: Arc<Site>,
    id: String,
    web: Option<Arc<WebRun>>,
    file: Option<tokio::fs::File>,
    lines: Lines,
    /// Where each read lands (64 KiB, kept for the stream's life).
    buf: Vec<u8>,
    queue: VecDeque<Event>,
    shown: usize,
    done: bool,
    idle: u32,
    /// The lock was free at the last look with no end line read: one more read, then
    /// the run is taken as killed.
    lock_free: bool,
    _slot: StreamSlot,
}

impl Tail {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            self.poll().await;
        }
    }

    fn line(&mut self, text: String) {
        if self.shown < MAX_STREAM_LINES {
            self.queue.push_back(Event::default().data(text));
        } else if self.shown == MAX_STREAM_LINES {
            self.queue.push_back(Event::default().data(format!(
                "… the rest is in the log; `fleet show {}` shows the run once it ends",
                self.id
            )));
        }
        self.shown += 1;
    }

    fn end(&mut self, result: &str) {
        self.queue
            .push_back(Event::default().event("end").data(result));
        self.done = true;
    }

    async fn poll(&mut self) {
        use tokio::io::AsyncReadExt;
        // Known before reading: whatever the child wrote before it ended is read below.
        let exited = self.web.as_ref().and_then(|w| w.exit());
        if self.file.is_none() {
            match tokio::fs::File::open(self.site.runs.log_of(&self.id)).await {
                Ok(f) => self.file = Some(f),
                Err(_) => {
                    if let (Some(code), Some(web)) = (exited, self.web.clone()) {
                        for l in web.stderr().lines() {
                            self.line(clean(l));
                        }
                        self.end(result_of(code));
                    } else {
                        tokio::time::sleep(POLL).await;
                    }
                    return;
                }
            }
        }
        let n = match self.file.as_mut() {
            Some(f) => f.read(&mut self.buf).await.unwrap_or(0),
            None => 0,
        };
        if n > 0 {
            self.idle = 0;
            self.lock_free = false;
            for line in self.lines.feed(&self.buf[..n]) {
                match line {
                    Line::Text(text) => {
                        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
                            continue;
                        };
                        let rendered = render(&record);
                        for l in rendered.lines {
                            self.line(l);
                        }
                        if let Some(result) = rendered.end {
                            self.end(&result);
                            return;
                        }
                    }
                    Line::TooLong(bytes) => self.line(format!(
                        "(a log record of {bytes} bytes, too long to stream; `fleet show {}` shows it)",
                        self.id
                    )),
                }
            }
            return;
        }
        if let Some(code) = exited {
            // The child ended and its whole log is read, without an end line.
            if let Some(web) = self.web.clone()
                && code != 0
            {
                for l in web.stderr().lines() {
                    self.line(clean(l));
                }
            }
            self.end(result_of(code));
            return;
        }
        self.idle += 1;
        if self.web.is_none() && self.idle.is_multiple_of(10) {
            // A run from the CLI holds the lock while it writes its log: the lock free
            // twice with nothing read in between means it is gone (killed).
            let site = self.site.clone();
            let free = tokio::task::spawn_blocking(move || site.runs.holder().is_none())
                .await
                .unwrap_or(false);
            if free && self.lock_free {
                self.line("the run ended without its last line in the log (killed?)".into());
                self.end("killed");
                return;
            }
            self.lock_free = free;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `GET /run/{id}/events`: the run's output as Server-Sent Events, one line each, then
/// an `end` event with its result (ok, failed, unreachable, error, ...).
pub(crate) async fn events(
    State(site): State<Arc<Site>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Response {
    if !crate::session::is_run_id(&id) {
        return (StatusCode::NOT_FOUND, "no such run\n").into_response();
    }
    let web = site.runs.find(&id);
    if web.is_none() && !site.runs.log_of(&id).is_file() {
        // Long ended (its log removed): the journal's result, if it has one.
        let s = site.clone();
        let wanted = id.clone();
        let record = tokio::task::spawn_blocking(move || {
            crate::journal::find(&s.state_dir, &wanted, None)
                .ok()
                .filter(|r| r.run_id == wanted)
        })
        .await
        .ok()
        .flatten();
        let Some(record) = record else {
            return (StatusCode::NOT_FOUND, "no such run\n").into_response();
        };
        let end = Event::default()
            .event("end")
            .data(result_of(record.exit_code));
        let stream = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(end)]);
        return Sse::new(stream).into_response();
    }
    let streams = site.runs.streams.clone();
    if streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        streams.fetch_sub(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live streams; try again later\n",
        )
            .into_response();
    }
    let tail = Tail {
        site: site.clone(),
        id,
        web,
        file: None,
        lines: Lines::new(MAX_RECORD),
        buf: vec![0u8; 64 * 1024],
        queue: VecDeque::new(),
        shown: 0,
        done: false,
        idle: 0,
        lock_free: false,
        _slot: StreamSlot(streams),
    };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next().await?;
        Some((Ok::<_, std::convert::Infallible>(event), tail))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A run going on now, for the Runs page.
pub(crate) struct Running {
    pub(crate) id: String,
    pub(crate) recipe: String,
    pub(crate) user: String,
    pub(crate) state: &'static str,
}

/// The runs without a journal record that are going on: those started here that have
/// not ended, and the newest log's run while the lock is held (from the CLI or cron).
pub(crate) fn running(site: &Site, recorded: &dyn Fn(&str) -> bool) -> Vec<Running> {
    let mut out = Vec::new();
    if let Ok(started) = site.runs.started.lock() {
        for r in started.iter().rev() {
            if r.exit().is_none() && !recorded(&r.id) {
                let state = if site.runs.log_of(&r.id).is_file() {
                    "running"
                } else {
                    "waiting for the lock"
                };
                out.push(Running {
                    id: r.id.clone(),
                    recipe: r.recipe.clone(),
                    user: r.user.clone(),
                    state,
                });
            }
        }
    }
    let Some(holder) = site.runs.holder() else {
        return out;
    };
    let newest = std::fs::read_dir(&site.runs.log_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(".jsonl")?;
            crate::session::is_run_id(id).then(|| id.to_string())
        })
        .max();
    if let Some(id) = newest
        && !recorded(&id)
        && !out.iter().any(|r| r.id == id)
    {
        out.push(Running {
            id,
            recipe: holder.recipe,
            user: holder.user,
            state: "running",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    fn param(name: &str, ty: ArgType, default: Option<Dynamic>) -> Param {
        Param {
            name: name.into(),
            ty,
            default,
            help: String::new(),
        }
    }

    fn recipe(params: Vec<Param>) -> Recipe {
        let engine = rhai::Engine::new();
        Recipe {
            name: "deploy".into(),
            file: "recipes/deploy.rhai".into(),
            origin: crate::recipe::sources::Origin::Project,
            doc: Default::default(),
            params,
            ast: Arc::new(engine.compile("").unwrap()),
            overrides: None,
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hostile_values_never_become_options() {
        let r = recipe(vec![
            param("target", ArgType::String, None),
            param("count", ArgType::Int, Some(Dynamic::from(2_i64))),
            param("force", ArgType::Bool, Some(Dynamic::from(true))),
            param(
                "note",
                ArgType::String,
                Some(Dynamic::from("x".to_string())),
            ),
        ]);
        let launch = launch_of(
            &r,
            &fields(&[
                ("csrf", "t"),
                ("hosts", " --check "),
                ("arg-target", "--directory=/etc"),
                ("arg-count", "-1"),
                ("arg-note", "a b\n--json"),
                ("mode", "check"),
                ("lock", "wait"),
                ("arg-unknown", "--x"),
            ]),
        );
        assert_eq!(
            child_args(&launch, &["--inventory=/p/hosts.toml".into()]),
            [
                "--inventory=/p/hosts.toml",
                "--no-progress",
                "--lock-wait=3600",
                "--check",
                "--limit=--check",
                "deploy",
                "--count=-1",
                "--force=false",
                "--note=a b\n--json",
                "--",
                "--directory=/etc",
            ]
        );
        // What clap makes of them: values, never options.
        let m = crate::cli::recipe_command(&r, true)
            .try_get_matches_from(std::iter::once("deploy".to_string()).chain(launch.recipe_args()))
            .unwrap();
        assert_eq!(
            m.get_one::<String>("target").map(String::as_str),
            Some("--directory=/etc")
        );
        assert_eq!(m.get_one::<String>("count").map(String::as_str), Some("-1"));
        assert_eq!(
            m.get_one::<String>("note").map(String::as_str),
            Some("a b\n--json")
        );
    }

    #[test]
    fn the_pattern_field_fills_the_recipes_pattern_else_the_limit() {
        let facts = recipe(vec![param(
            "pattern",
            ArgType::String,
            Some(Dynamic::from("all".to_string())),
        )]);
        let launch = launch_of(&facts, &fields(&[("hosts", "web-*"), ("mode", "run")]));
        assert_eq!(
            child_args(&launch, &[]),
            [
                "--no-progress",
                "--lock-wait=0",
                "deploy",
                "--pattern=web-*"
            ]
        );
        // Empty: the recipe's default; a missing required argument is left to clap.
        let launch = launch_of(&facts, &fields(&[("hosts", " ")]));
        assert!(launch.options.is_empty() && launch.limit.is_none());
        let two = recipe(vec![
            param("a", ArgType::Int, None),
            param("b", ArgType::Int, None),
        ]);
        let launch = launch_of(&two, &fields(&[("arg-b", "2"), ("hosts", "db")]));
        assert!(launch.positionals.is_empty(), "{launch:?}");
        assert_eq!(launch.limit.as_deref(), Some("db"));
    }

    #[test]
    fn log_lines_are_bounded() {
        let mut lines = Lines::new(8);
        assert_eq!(lines.feed(b"ab"), []);
        assert_eq!(lines.feed(b"c\n0123456789"), [Line::Text("abc".into())]);
        assert_eq!(lines.feed(b"0123"), []);
        assert!(lines.buf.is_empty());
        assert_eq!(
            lines.feed(b"x\nok\n"),
            [Line::TooLong(15), Line::Text("ok".into())]
        );
        assert_eq!(lines.feed(b"123456789\n"), [Line::TooLong(9)]);
    }

    #[test]
    fn log_records_become_redacted_plain_lines() {
        crate::ops::secrets::register("Sv7-streamed-secret");
        let command = serde_json::json!({
            "message": "command", "run_id": "r", "recipe": "facts", "host": "web-1",
            "step": "", "command": "echo hi", "exit_code": 1,
            "stdout": "one\nSv7-streamed-secret\n\u{1b}[31mred", "stderr": "",
            "duration_ms": 3, "executed": true
        });
        assert_eq!(
            render(&command).lines,
            [
                "web-1: $ echo hi",
                "web-1:   one",
                "web-1:   ***",
                "web-1:   \u{fffd}[31mred",
                "web-1:   exit 1"
            ]
        );
        let printed = serde_json::json!({"message": "run ended", "host": "web-1", "step": ""});
        assert_eq!(render(&printed).lines, ["web-1: run ended"]);
        assert_eq!(render(&printed).end, None);
        let ended = serde_json::json!({"message": "run ended", "run_id": "r", "recipe": "facts", "exit_code": 3});
        assert_eq!(render(&ended).end.as_deref(), Some("failed"));
        let early = serde_json::json!({"message": "run ended", "run_id": "r", "recipe": "facts", "recorded": false});
        assert_eq!(render(&early).end.as_deref(), Some("error"));
        let host = serde_json::json!({"message": "host ended", "host": "db", "status": "unreachable", "error": "no route"});
        assert_eq!(render(&host).lines, ["db: UNREACHABLE: no route"]);
        let long = serde_json::json!({"message": "x".repeat(3000)});
        assert_eq!(render(&long).lines[0].chars().count(), MAX_SHOWN + 1);
    }

    fn site() -> Arc<Site> {
        let dir = std::env::temp_dir().join("fleet-serve-runs-unit");
        let mut index = crate::recipe::index::RecipeIndex::default();
        index.recipes.insert(
            "deploy".into(),
            recipe(vec![param("target", ArgType::String, None)]),
        );
        Arc::new(Site {
            project: "p".into(),
            state_dir: dir.join("state"),
            inventory: None,
            recipes: pages::recipes_of(&index),
            csrf: "a".repeat(64),
            fetcher: super::super::fetch::Fetcher::new(
                &dir.join("state"),
                &super::super::fetch::PullArgs {
                    fetch_every: "0".into(),
                    results_from: None,
                    results_prefix: "results".into(),
                    catalog_repo: None,
                },
            )
            .unwrap(),
            hook: super::super::hooks::Hook::off(&dir),
            auth: super::super::auth::Auth::new(None, false),
            runs: Runner {
                root: dir.clone(),
                data_dir: dir.join(".fleet"),
                log_dir: dir.join(".fleet/logs"),
                passthrough: Vec::new(),
                started: Mutex::new(VecDeque::new()),
                streams: Arc::new(AtomicUsize::new(0)),
            },
        })
    }

    #[test]
    fn viewers_and_forged_forms_cannot_start_runs() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caller = |role| Caller {
            user: "alice".into(),
            role,
            csrf: "a".repeat(64),
        };
        let post = |c: Caller, token: &str| {
            let form = Form(fields(&[("csrf", token), ("mode", "run")]));
            rt.block_on(start(State(site()), c, Path("facts".into()), form))
                .status()
        };
        use super::super::auth::Role;
        let good = "a".repeat(64);
        assert_eq!(post(caller(Role::Viewer), &good), StatusCode::FORBIDDEN);
        assert_eq!(post(caller(Role::Operator), ""), StatusCode::FORBIDDEN);
        assert_eq!(
            post(caller(Role::Operator), &"b".repeat(64)),
            StatusCode::FORBIDDEN
        );
        // The right token passes the checks: this site has no such recipe.
        assert_eq!(post(caller(Role::Operator), &good), StatusCode::NOT_FOUND);
        // Viewers see the recipe, and no form or button.
        let page = recipes_html(&site(), &caller(Role::Viewer), None);
        assert!(page.contains("<h2 id=\"deploy\">"), "{page}");
        assert!(!page.contains("<form class=\"run\""), "{page}");
        assert!(!page.contains("<button"), "{page}");
        let page = recipes_html(&site(), &caller(Role::Operator), None);
        assert!(page.contains("action=\"/recipes/deploy\""), "{page}");
        assert!(
            page.contains("<input type=\"text\" name=\"arg-target\" value=\"\" required>"),
            "{page}"
        );
    }

    #[test]
    fn refusals_read_like_the_clis_errors() {
        let holder = crate::exec::lock::Holder {
            pid: 42,
            user: "web:alice".into(),
            host: "ctl".into(),
            recipe: "update".into(),
            started: "2026-11-30T10:00:00Z".into(),
        };
        assert_eq!(
            Refusal::Locked(holder).to_string(),
            "error: another run holds the lock of this project: `update` started \
             2026-11-30T10:00:00Z by web:alice@ctl (pid 42); not waiting (choose \"wait\" \
             to start when it ends)"
        );
        let pattern = Error::usage_with_help("pattern `x` matches no host", "see hosts");
        assert_eq!(
            Refusal::from(pattern).to_string(),
            "error: pattern `x` matches no host\n  help: see hosts"
        );
        let r = recipe(vec![param(
            "count",
            ArgType::Int,
            Some(Dynamic::from(1_i64)),
        )]);
        let launch = launch_of(&r, &fields(&[("arg-count", "many")]));
        let m = crate::cli::recipe_command(&r, true)
            .try_get_matches_from(std::iter::once("deploy".to_string()).chain(launch.recipe_args()))
            .unwrap();
        let bind = crate::recipe::args::bind("deploy", &r.params, &m, None).unwrap_err();
        assert_eq!(
            Refusal::from(bind).to_string(),
            "error: argument `count` of recipe `deploy` expects an int, got `many`"
        );
    }

    #[test]
    fn exit_codes_have_words() {
        assert_eq!(result_of(0), "ok");
        assert_eq!(result_of(3), "failed");
        assert_eq!(result_of(4), "unreachable");
        assert_eq!(result_of(75), "locked");
        assert_eq!(result_of(2), "error");
    }
}
