//! The pages of `fleet serve`, as plain functions from the journal to HTML. Every value
//! goes through `t`: redacted like the terminal, then HTML-escaped.

use super::Site;
use crate::commands::status::{HEADER, cached_row, cells, known};
use crate::journal::RunRecord;
use crate::outcome::HostStatus;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
}

/// A recipe as the Recipes page shows it.
pub(crate) struct RecipeInfo {
    pub(crate) name: String,
    summary: String,
    body: String,
    file: String,
    /// (flag, type, default, help)
    args: Vec<(String, String, Option<String>, String)>,
    /// The recipe itself: its run form is judged with the CLI's parser.
    pub(crate) recipe: crate::recipe::index::Recipe,
}

pub(crate) fn recipes_of(index: &crate::recipe::index::RecipeIndex) -> Vec<RecipeInfo> {
    index
        .recipes
        .values()
        .map(|r| RecipeInfo {
            name: r.name.replace('_', "-"),
            summary: r.doc.summary.clone(),
            body: r.doc.body.clone(),
            file: r.file.clone(),
            args: r
                .params
                .iter()
                .map(|p| {
                    (
                        p.flag(),
                        format!("{:?}", p.ty).to_lowercase(),
                        p.default.as_ref().map(|d| d.to_string()),
                        p.help.clone(),
                    )
                })
                .collect(),
            recipe: r.clone(),
        })
        .collect()
}

/// Redacted, without control characters, HTML-escaped.
pub(crate) fn t(text: &str) -> String {
    let text = crate::ops::secrets::redact(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// For a path segment or query value of a link.
pub(crate) fn u(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

pub(crate) const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
nav a{margin-right:1em}table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}tr.failed td,tr.unreachable td{background:#fde2e2}\
tr.outdated td{background:#fff6d6}tr.running td{background:#e6f0ff}.error,.lock{color:#a00}\
form.run{border-left:3px solid #ccc;padding-left:.8em}form.run p{margin:.3em 0}pre{margin:0;white-space:pre-wrap;font-size:.9em}\
.counts span,.filters a{margin-right:1.2em}.filters a.on{font-weight:bold}.muted{color:#777}";

/// Where the nav names the signed-in user (filled by `auth::gate` when users sign in).
pub(crate) const WHO_MARK: &str = "<!--who-->";

pub(crate) fn layout(site: &Site, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title} — fleet {project}</title><style>{STYLE}</style></head><body>\
<nav><a href=\"/\">Fleet</a><a href=\"/runs\">Runs</a><a href=\"/recipes\">Recipes</a>\
<a href=\"/metrics\">Metrics</a><span class=\"muted\">fleet {project}</span> {WHO_MARK}</nav>\
<h1>{title}</h1>\n{body}</body></html>\n",
        title = t(title),
        project = t(&site.project),
    )
}

pub(crate) fn error_page(e: &PageError) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>fleet</title></head>\
<body><p>{}</p><p><a href=\"/\">Fleet</a></p></body></html>",
        t(&e.to_string())
    )
}

fn load(site: &Site) -> Result<Vec<RunRecord>, PageError> {
    Ok(crate::journal::load_all(&site.state_dir)?)
}

/// The newest run that touched `host` (skips do not count) and its record of the host.
fn last_of<'a>(
    runs: &'a [RunRecord],
    host: &str,
) -> Option<(&'a RunRecord, &'a crate::journal::HostRun)> {
    runs.iter().find_map(|r| {
        r.hosts
            .iter()
            .find(|h| h.host == host && h.status != HostStatus::Skipped)
            .map(|h| (r, h))
    })
}

/// The inventory's hosts, then any other host the journal knows.
fn host_names(
    site: &Site,
    known: &BTreeMap<String, crate::commands::status::Known>,
) -> Vec<String> {
    let mut names: Vec<String> = site
        .inventory()
        .map(|i| i.hosts.keys().cloned().collect())
        .unwrap_or_default();
    for h in known.keys() {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    names
}

pub(crate) fn fleet(site: &Site, q: &HashMap<String, String>) -> Result<String, PageError> {
    let runs = load(site)?;
    let known = known(&runs);
    let show = q.get("show").map(String::as_str).unwrap_or("all");
    let mut counts = [0usize; 4];
    let mut body_rows = String::new();
    for name in host_names(site, &known) {
        let row = cached_row(&name, &known);
        let last = last_of(&runs, &name);
        let failed = matches!(
            last.map(|(_, h)| h.status),
            Some(HostStatus::Failed | HostStatus::Unreachable)
        );
        // The status cache, or a newer run that could not reach the host.
        let unreachable = row.reachable == Some(false)
            || last.is_some_and(|(_, h)| h.status == HostStatus::Unreachable);
        let outdated = row.facts.as_ref().is_some_and(|f| f.outdated());
        counts[0] += 1;
        counts[1] += usize::from(outdated);
        counts[2] += usize::from(unreachable);
        counts[3] += usize::from(failed);
        let keep = match show {
            "outdated" => outdated,
            "unreachable" => unreachable,
            "failed" => failed,
            _ => true,
        };
        if !keep {
            continue;
        }
        let class = if failed || unreachable {
            "failed"
        } else if outdated {
            "outdated"
        } else {
            ""
        };
        let mut cs = cells(&row);
        let first = std::mem::take(&mut cs[0]);
        let _ = write!(
            body_rows,
            "<tr class=\"{class}\" data-host=\"{}\"><td><a href=\"/host/{}\">{}</a></td>",
            t(&name),
            u(&name),
            t(&first)
        );
        for c in &cs[1..] {
            let _ = write!(body_rows, "<td>{}</td>", t(c));
        }
        match last {
            Some((r, h)) => {
                let _ = writeln!(
                    body_rows,
                    "<td class=\"status\">{} <a href=\"/run/{}\">{}</a></td></tr>",
                    h.status.as_str(),
                    u(&r.run_id),
                    t(&r.recipe)
                );
            }
            None => body_rows.push_str("<td class=\"muted\">no run yet</td></tr>\n"),
        }
    }
    let mut body = format!(
        "<p class=\"counts\"><span id=\"count-all\">{} hosts</span><span id=\"count-outdated\">{} outdated</span>\
<span id=\"count-unreachable\">{} unreachable</span><span id=\"count-failed\">{} failed</span></p>\n<p class=\"filters\">",
        counts[0], counts[1], counts[2], counts[3]
    );
    for (key, label) in [
        ("all", "All"),
        ("outdated", "Outdated"),
        ("unreachable", "Unreachable"),
        ("failed", "Failed"),
    ] {
        let on = if key == show { " class=\"on\"" } else { "" };
        let _ = write!(body, "<a href=\"/?show={key}\"{on}>{label}</a>");
    }
    body.push_str(
        "<input id=\"search\" type=\"search\" placeholder=\"search hosts\"></p>\n<table id=\"hosts\"><tr>",
    );
    for h in HEADER {
        let _ = write!(body, "<th>{h}</th>");
    }
    body.push_str("<th>LAST RUN</th></tr>\n");
    body.push_str(&body_rows);
    body.push_str("</table>\n");
    body.push_str(&super::fetch::section(site));
    body.push_str(
        "<script>\
document.getElementById('search').addEventListener('input',function(e){\
var q=e.target.value.toLowerCase();\
document.querySelectorAll('#hosts tr[data-host]').forEach(function(r){\
r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});});\
</script>\n",
    );
    Ok(layout(site, "Fleet", &body))
}

pub(crate) fn host(site: &Site, name: &str) -> Result<String, PageError> {
    let runs = load(site)?;
    let inv_host = site.inventory().and_then(|i| i.hosts.get(name).cloned());
    let touched: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.hosts.iter().any(|h| h.host == name))
        .collect();
    if inv_host.is_none() && touched.is_empty() {
        return Err(PageError::NotFound(format!(
            "no host `{name}` in the inventory or the journal"
        )));
    }
    let mut body = String::new();
    if let Some(h) = &inv_host {
        let _ = write!(
            body,
            "<h2>Inventory</h2><p>address {}{}</p><p>groups: {}</p><table id=\"vars\"><tr><th>VAR</th><th>VALUE</th></tr>",
            t(&h.address),
            h.port.map(|p| format!(":{p}")).unwrap_or_default(),
            t(&h.groups.join(", "))
        );
        for (k, v) in &h.vars {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let _ = write!(body, "<tr><td>{}</td><td>{}</td></tr>", t(k), t(&v));
        }
        body.push_str("</table>\n");
    }
    body.push_str("<h2>Runs</h2><table id=\"runs\"><tr><th>RUN</th><th>RECIPE</th><th>STARTED</th><th>STATUS</th><th>ERROR</th></tr>\n");
    for r in &touched {
        if let Some(h) = r.hosts.iter().find(|h| h.host == name) {
            let _ = writeln!(
                body,
                "<tr class=\"{s}\"><td><a href=\"/run/{}\">{}</a></td><td>{}</td><td>{}</td><td>{s}</td><td>{}</td></tr>",
                u(&r.run_id),
                t(&r.run_id),
                t(&r.summary()),
                t(&r.started),
                t(h.error.as_deref().unwrap_or_default()),
                s = h.status.as_str(),
            );
        }
    }
    body.push_str("</table>\n");
    if let Some((r, h)) = last_of(&runs, name) {
        let _ = write!(body, "<h2>Last run: {}</h2>", t(&r.summary()));
        body.push_str(&steps(h));
    }
    body.push_str("<h2>Backups</h2><table id=\"backups\"><tr><th>JOB</th><th>LAST SNAPSHOT</th><th>AT</th><th>LAST ERROR</th></tr>\n");
    for ((host, job), b) in crate::commands::backups::from_journal(&runs) {
        if host != name {
            continue;
        }
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t(job.as_deref().unwrap_or("-")),
            t(b.last_snapshot.as_deref().unwrap_or("never")),
            t(b.last_snapshot_at.as_deref().unwrap_or("-")),
            t(b.last_error.as_deref().unwrap_or_default()),
        );
    }
    body.push_str("</table>\n");
    Ok(layout(site, &format!("Host {name}"), &body))
}

/// A host's steps with their commands and output tails, as `fleet show` prints them.
fn steps(h: &crate::journal::HostRun) -> String {
    let mut out = String::new();
    for step in &h.steps {
        if let Some(name) = &step.name {
            let _ = write!(out, "<h3>step {}</h3>", t(name));
        }
        for c in &step.commands {
            let code = match (c.executed, c.exit_code) {
                (false, _) => "not run (check mode)".to_string(),
                (true, Some(code)) => format!("exit {code}"),
                (true, None) => "no exit".to_string(),
            };
            let _ = write!(
                out,
                "<div class=\"command\"><pre>$ {}  [{code}, {}ms]</pre>",
                t(&c.command),
                c.duration_ms
            );
            if !c.stdout_tail.is_empty() {
                let _ = write!(out, "<pre class=\"stdout\">{}</pre>", t(&c.stdout_tail));
            }
            if !c.stderr_tail.is_empty() {
                let _ = write!(out, "<pre class=\"stderr\">{}</pre>", t(&c.stderr_tail));
            }
            out.push_str("</div>\n");
        }
    }
    out
}

pub(crate) fn runs(site: &Site, q: &HashMap<String, String>) -> Result<String, PageError> {
    let runs = load(site)?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (recipe, host, result) = (get("recipe"), get("host"), get("result"));
    let mut body = format!(
        "<form class=\"filters\">recipe <input name=\"recipe\" value=\"{}\"> host <input name=\"host\" value=\"{}\"> \
result <select name=\"result\">",
        t(recipe.unwrap_or_default()),
        t(host.unwrap_or_default())
    );
    for r in ["", "ok", "changed", "failed", "unreachable", "skipped"] {
        let sel = if Some(r) == result { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{r}</option>");
    }
    body.push_str("</select> <button>Filter</button></form>\n<table id=\"runs\"><tr><th>RUN</th><th>RECIPE</th><th>STARTED</th><th>HOSTS</th><th>EXIT</th></tr>\n");
    let recorded = |id: &str| runs.iter().any(|r| r.run_id == id);
    for r in super::runs::running(site, &recorded) {
        // Its hosts and result are not known yet.
        if host.is_some()
            || result.is_some()
            || recipe.is_some_and(|x| !crate::journal::same_recipe(&r.recipe, x))
        {
            continue;
        }
        let _ = writeln!(
            body,
            "<tr class=\"running\"><td><a href=\"/run/{}\">{}</a></td><td>{}</td><td>by {}</td><td>{}</td><td></td></tr>",
            u(&r.id),
            t(&r.id),
            t(&r.recipe),
            t(&r.user),
            r.state
        );
    }
    for r in &runs {
        if recipe.is_some_and(|x| !crate::journal::same_recipe(&r.recipe, x)) {
            continue;
        }
        let hosts: Vec<&crate::journal::HostRun> = r
            .hosts
            .iter()
            .filter(|h| host.is_none_or(|x| h.host == x))
            .collect();
        if host.is_some() && hosts.is_empty() {
            continue;
        }
        if result.is_some_and(|x| !hosts.iter().any(|h| h.status.as_str() == x)) {
            continue;
        }
        let class = if r.exit_code != 0 { "failed" } else { "" };
        let _ = writeln!(
            body,
            "<tr class=\"{class}\"><td><a href=\"/run/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            u(&r.run_id),
            t(&r.run_id),
            t(&r.summary()),
            t(&r.started),
            hosts
                .iter()
                .map(|h| format!("{} {}", t(&h.host), h.status.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            r.exit_code
        );
    }
    body.push_str("</table>\n");
    Ok(layout(site, "Runs", &body))
}

pub(crate) fn run(site: &Site, id: &str) -> Result<String, PageError> {
    let r = crate::journal::find(&site.state_dir, id, None)
        .map_err(|e| PageError::NotFound(e.to_string()))?;
    let mut body = format!(
        "<p>started {} by {}@{}, {:.1}s, exit {}{}</p><p>recipes at {}{}</p>",
        t(&r.started),
        t(&r.user),
        t(&r.controller),
        r.duration_ms as f64 / 1000.0,
        r.exit_code,
        if r.check { " (check mode)" } else { "" },
        t(r.recipe_commit.as_deref().unwrap_or("(no git repository)")),
        if r.recipe_dirty {
            " with uncommitted changes"
        } else {
            ""
        },
    );
    if let Some(e) = &r.error {
        let _ = write!(body, "<p class=\"error\">error: <pre>{}</pre></p>", t(e));
    }
    for h in &r.hosts {
        let _ = write!(
            body,
            "<h2 class=\"{s}\"><a href=\"/host/{}\">{}</a> {s} ({:.1}s)</h2>",
            u(&h.host),
            t(&h.host),
            h.duration_ms as f64 / 1000.0,
            s = h.status.as_str()
        );
        if let Some(e) = &h.error {
            let _ = write!(body, "<pre class=\"error\">{}</pre>", t(e));
        }
        body.push_str(&steps(h));
    }
    Ok(layout(
        site,
        &format!("Run {}: {}", r.run_id, r.summary()),
        &body,
    ))
}

/// Each recipe with its doc, then `form_of` it (empty for those who may not run).
/// `holder`: who holds the project's lock now.
pub(crate) fn recipes(
    site: &Site,
    holder: Option<&crate::exec::lock::Holder>,
    form_of: impl Fn(&RecipeInfo) -> String,
) -> String {
    let mut body = String::new();
    if let Some(h) = holder {
        let _ = write!(
            body,
            "<p id=\"lock\" class=\"lock\">another run holds the lock of this project: {}</p>",
            t(&h.to_string())
        );
    }
    for r in &site.recipes {
        let _ = write!(
            body,
            "<h2 id=\"{}\">{}</h2><p>{}</p><p class=\"muted\">{}</p>",
            t(&r.name),
            t(&r.name),
            t(&r.summary),
            t(&r.file)
        );
        if !r.body.trim().is_empty() {
            let _ = write!(body, "<pre>{}</pre>", t(r.body.trim()));
        }
        if !r.args.is_empty() {
            body.push_str("<table><tr><th>ARG</th><th>TYPE</th><th>DEFAULT</th><th>HELP</th></tr>");
            for (flag, ty, default, help) in &r.args {
                let _ = write!(
                    body,
                    "<tr><td>--{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    t(flag),
                    t(ty),
                    default.as_deref().map_or("(required)".into(), t),
                    t(help)
                );
            }
            body.push_str("</table>\n");
        }
        body.push_str(&form_of(r));
    }
    layout(site, "Recipes", &body)
}

/// Success rate of the last 100 runs, runs per day, hosts failing repeatedly.
pub(crate) fn metrics(site: &Site) -> Result<String, PageError> {
    let runs = load(site)?;
    let last: Vec<&RunRecord> = runs.iter().take(100).collect();
    let good = last.iter().filter(|r| r.exit_code == 0).count();
    let rate = if last.is_empty() {
        "-".to_string()
    } else {
        format!("{:.0}%", good as f64 * 100.0 / last.len() as f64)
    };
    let mut body = format!(
        "<p id=\"success-rate\">success rate of the last {} runs: {rate} ({good} without failure)</p>\
<h2>Runs per day</h2><table id=\"per-day\"><tr><th>DAY</th><th>RUNS</th><th>FAILED</th></tr>",
        last.len()
    );
    let mut per_day: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in &runs {
        let day = per_day
            .entry(r.started.get(..10).unwrap_or("?"))
            .or_default();
        day.0 += 1;
        day.1 += usize::from(r.exit_code != 0);
    }
    for (day, (n, failed)) in per_day.iter().rev() {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{n}</td><td>{failed}</td></tr>",
            t(day)
        );
    }
    body.push_str("</table><h2>Hosts failing repeatedly</h2><table id=\"failing\"><tr><th>HOST</th><th>FAILED RUNS IN A ROW</th></tr>");
    // Newest first: count each host's failures until its first success.
    let mut streak: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for r in &runs {
        for h in &r.hosts {
            if h.status == HostStatus::Skipped {
                continue;
            }
            let s = streak.entry(&h.host).or_insert((0, true));
            if s.1 && matches!(h.status, HostStatus::Failed | HostStatus::Unreachable) {
                s.0 += 1;
            } else {
                s.1 = false;
            }
        }
    }
    let mut failing: Vec<(&str, usize)> = streak
        .into_iter()
        .filter(|(_, (n, _))| *n >= 2)
        .map(|(h, (n, _))| (h, n))
        .collect();
    failing.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (h, n) in failing {
        let _ = write!(
            body,
            "<tr class=\"failed\"><td><a href=\"/host/{}\">{}</a></td><td>{n}</td></tr>",
            u(h),
            t(h)
        );
    }
    body.push_str("</table>\n");
    Ok(layout(site, "Metrics", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_stripped_of_control_characters() {
        assert_eq!(
            t("<script>alert('x')</script> & \"\u{1b}[31m"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;\u{fffd}[31m"
        );
        assert_eq!(u("a b/<c>"), "a%20b%2F%3Cc%3E");
    }

    #[test]
    fn secrets_are_masked_before_escaping() {
        crate::ops::secrets::register("Sv1<secret>&");
        assert_eq!(t("pw=Sv1<secret>&."), "pw=***.");
    }
}
