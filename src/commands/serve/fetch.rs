//! Pull-mode hosts in `fleet serve`: a background task fetches the results branches the
//! pull hosts push (`fleet results fetch`, every `--fetch-every`), and the Fleet page
//! shows each pull host's last run, result, last seen time and OVERDUE. A failed fetch
//! is logged and shown on the page as a muted line; it never stops the server.

use super::Site;
use crate::error::{Error, Result};
use crate::ops::results::PullHost;
use std::fmt::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// `fleet serve`'s options for pull hosts and the webhook.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PullArgs {
    /// How often to fetch the results branches pull hosts push (`fleet results fetch`)
    /// for the Fleet page; 0 turns it off
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub(crate) fetch_every: String,
    /// Where pull hosts push their results [default: the state repository's remote
    /// `origin`]
    #[arg(long, value_name = "URL")]
    pub(crate) results_from: Option<String>,
    /// The results branches' prefix, as given to `fleet pull --push-results`
    #[arg(long, value_name = "PREFIX", default_value = "results")]
    pub(crate) results_prefix: String,
    /// The catalog repository the webhook (POST /hooks/sync) also syncs into catalog/,
    /// as `--catalog-repo` does
    #[arg(long, value_name = "URL")]
    pub(crate) catalog_repo: Option<String>,
}

/// The results fetch of a running server: where from, how often, and how the last one
/// went.
pub(crate) struct Fetcher {
    state_dir: std::path::PathBuf,
    /// Given with --results-from; else the state repository's `origin`, looked up at
    /// each fetch (a remote added later is used).
    from: Option<String>,
    prefix: String,
    pub(crate) every: Option<Duration>,
    /// One fetch at a time: the background task's and the webhook's.
    busy: Mutex<()>,
    last: Mutex<Option<Fetched>>,
}

/// How the last fetch went, for the Fleet page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fetched {
    pub(crate) at: String,
    pub(crate) outcome: std::result::Result<String, String>,
}

impl Fetcher {
    /// Checks the options before the server starts.
    pub(crate) fn new(state_dir: &Path, args: &PullArgs) -> Result<Fetcher> {
        let prefix = crate::ops::results::check_prefix(&args.results_prefix)
            .map_err(|e| Error::usage(e.to_string()))?
            .to_string();
        let secs = crate::ops::clock::duration_secs(&args.fetch_every).map_err(|e| {
            Error::usage_with_help(
                format!("--fetch-every: {e}"),
                "say e.g. --fetch-every 60s, 5m, or 0 to turn the fetch off",
            )
        })?;
        Ok(Fetcher {
            state_dir: state_dir.to_path_buf(),
            from: args.results_from.clone(),
            prefix,
            every: (secs > 0).then(|| Duration::from_secs(secs as u64)),
            busy: Mutex::new(()),
            last: Mutex::new(None),
        })
    }

    /// Fetches now (blocking: git runs), waiting for a fetch in progress; the outcome is
    /// kept for the Fleet page and returned.
    pub(crate) fn fetch_now(&self) -> Fetched {
        let _one = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match self
            .from
            .clone()
            .or_else(|| crate::commands::results::origin(&self.state_dir))
        {
            None => Ok(format!(
                "no results source: the state repository {} has no remote `origin` (give --results-from URL)",
                self.state_dir.display()
            )),
            Some(source) => {
                crate::commands::results::fetch(&self.state_dir, &source, &self.prefix, None)
                    .map(|(hosts, _)| format!("the results of {} pull host(s)", hosts.len()))
                    .map_err(|e| e.to_string())
            }
        };
        let fetched = Fetched {
            at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            outcome,
        };
        if let Err(e) = &fetched.outcome {
            // On stderr (the server's log); host-made text neither unmasked nor raw.
            let shown =
                crate::ops::terminal::neutralise(&crate::ops::secrets::redact(e)).into_owned();
            tracing::warn!(at = %fetched.at, error = %shown, "results fetch failed");
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(fetched.clone());
        fetched
    }

    pub(crate) fn last(&self) -> Option<Fetched> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Starts the background fetch: one at start, then every `--fetch-every` after the
/// previous one ended (a slow fetch delays the next, never overlaps it).
pub(crate) fn spawn(site: std::sync::Arc<Site>) {
    let Some(every) = site.fetcher.every else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let s = site.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || s.fetcher.fetch_now()).await {
                tracing::error!(error = %e, "results fetch task ended");
            }
            tokio::time::sleep(every).await;
        }
    });
}

/// The line under the pull hosts: when the last fetch ran and how it went.
fn status_line(last: Option<&Fetched>, every: Option<Duration>) -> String {
    match (last, every) {
        (None, None) => {
            "results fetch is off (--fetch-every 0); `fleet results fetch` fetches by hand".into()
        }
        (None, Some(_)) => "results not fetched yet".into(),
        (Some(f), _) => match &f.outcome {
            Ok(what) => format!("results fetched at {}: {what}", f.at),
            Err(e) => format!("results fetch failed at {}: {e}", f.at),
        },
    }
}

/// The Pull hosts section of the Fleet page: a table of the pull hosts fetched so far
/// (an overdue one marked) and the last fetch's line.
pub(crate) fn section(site: &Site) -> String {
    let inventory = site.inventory();
    let mut body = String::from("<h2>Pull hosts</h2>\n");
    match crate::commands::results::pull_hosts_in(&site.state_dir, inventory.as_ref()) {
        Ok(hosts) if hosts.is_empty() => {
            body.push_str("<p class=\"muted\">no pull host has pushed results yet</p>\n")
        }
        Ok(hosts) => body.push_str(&table(&hosts)),
        Err(e) => {
            let _ = writeln!(
                body,
                "<p class=\"muted\">{}</p>",
                super::pages::t(&e.to_string())
            );
        }
    }
    let _ = writeln!(
        body,
        "<p class=\"muted\" id=\"fetch-status\">{}</p>",
        super::pages::t(&status_line(
            site.fetcher.last().as_ref(),
            site.fetcher.every
        ))
    );
    body
}

fn table(hosts: &[PullHost]) -> String {
    let mut out = String::from(
        "<table id=\"pull-hosts\"><tr><th>PULL HOST</th><th>LAST RUN</th><th>RESULT</th>\
<th>LAST SEEN</th><th>INTERVAL</th><th>SEEN</th></tr>\n",
    );
    for p in hosts {
        let cells = crate::commands::results::cells(p);
        let _ = write!(
            out,
            "<tr class=\"{}\" data-pull-host=\"{}\"><td><a href=\"/host/{}\">{}</a></td>\
<td><a href=\"/run/{}\">{}</a></td>",
            if p.overdue { "failed" } else { "" },
            super::pages::t(&p.host),
            super::pages::u(&p.host),
            super::pages::t(&p.host),
            super::pages::u(&p.run_id),
            super::pages::t(&cells[1]),
        );
        let _ = writeln!(
            out,
            "<td>{}</td><td class=\"seen\" title=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            super::pages::t(&cells[2]),
            super::pages::t(&p.last_seen),
            super::pages::t(&cells[3]),
            super::pages::t(&cells[4]),
            super::pages::t(&cells[5]),
        );
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(every: &str, prefix: &str) -> PullArgs {
        PullArgs {
            fetch_every: every.into(),
            results_from: None,
            results_prefix: prefix.into(),
            catalog_repo: None,
        }
    }

    #[test]
    fn options_are_checked_and_zero_turns_the_fetch_off() {
        let dir = Path::new("/nonexistent");
        let f = Fetcher::new(dir, &args("60s", "results")).unwrap();
        assert_eq!(f.every, Some(Duration::from_secs(60)));
        assert_eq!(
            Fetcher::new(dir, &args("0", "results")).unwrap().every,
            None
        );
        let e = Fetcher::new(dir, &args("soon", "results")).err().unwrap();
        assert!(e.to_string().contains("--fetch-every"), "{e}");
        assert!(Fetcher::new(dir, &args("1m", "-x")).is_err());
    }

    #[test]
    fn the_status_line_says_when_and_how_the_last_fetch_went() {
        assert!(status_line(None, None).contains("off"));
        assert_eq!(
            status_line(None, Some(Duration::from_secs(60))),
            "results not fetched yet"
        );
        let failed = Fetched {
            at: "2026-11-30T10:00:00Z".into(),
            outcome: Err("cannot fetch results/* from /x: gone".into()),
        };
        assert_eq!(
            status_line(Some(&failed), None),
            "results fetch failed at 2026-11-30T10:00:00Z: cannot fetch results/* from /x: gone"
        );
    }
}
