//! Everything a run prints while it works: progress bars on a terminal, plain
//! timestamped lines elsewhere. Every line is written whole under one lock, so lines of
//! different hosts never mix.

use crate::outcome::HostStatus;
use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy)]
pub(crate) struct UiOptions {
    /// Bars and spinners (only when stderr is a terminal and --no-progress is absent).
    pub(crate) progress: bool,
    pub(crate) color: bool,
    /// -1 quiet, 0 default, 1 shows commands and their output, 2 more.
    pub(crate) verbosity: i8,
    /// stdout carries only the JSON recap; everything else goes to stderr.
    pub(crate) json: bool,
}

impl UiOptions {
    /// Decides bars and colour from the terminal, `NO_COLOR` and the flags.
    pub(crate) fn detect(no_progress: bool, verbosity: i8, json: bool) -> UiOptions {
        use std::io::IsTerminal;
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        UiOptions {
            progress: tty && !no_progress,
            color: tty && !no_color,
            verbosity,
            json,
        }
    }
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Hosts in flight with a spinner line of their own (at most `SPINNERS`).
    hosts: HashMap<String, ProgressBar>,
    /// Hosts in flight beyond those, oldest first: counted on the overall line, and
    /// given a spinner when one is free.
    waiting: indexmap::IndexSet<String>,
}

/// Spinner lines shown at most: with hundreds of forks the progress stays a few lines,
/// the others in flight are counted on the overall line.
const SPINNERS: usize = 8;

impl Bars {
    fn spinner(&mut self, host: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}")
                .expect("valid template"),
        );
        bar.set_prefix(for_terminal(host));
        bar.enable_steady_tick(Duration::from_millis(120));
        self.hosts.insert(host.to_string(), bar);
    }

    /// The overall line's message: counts by status and the hosts in flight.
    fn summary(&self, c: &Counts) {
        let mut text = [
            HostStatus::Ok,
            HostStatus::Changed,
            HostStatus::Failed,
            HostStatus::Unreachable,
        ]
        .iter()
        .map(|s| format!("{} {}", s.as_str(), c.by_status.get(s).unwrap_or(&0)))
        .collect::<Vec<_>>()
        .join("  ");
        let in_flight = self.hosts.len() + self.waiting.len();
        if in_flight > 0 {
            text.push_str(&format!("  · {in_flight} in flight"));
        }
        if !self.waiting.is_empty() {
            text.push_str(&format!(" ({} not shown)", self.waiting.len()));
        }
        self.overall.set_message(text);
    }
}

#[derive(Default)]
struct Counts {
    total: u64,
    done: u64,
    by_status: HashMap<HostStatus, u64>,
}

pub(crate) struct Ui {
    pub(crate) options: UiOptions,
    bars: Option<Mutex<Bars>>,
    counts: Mutex<Counts>,
    /// Serialises plain writes to stdout and stderr.
    write_lock: Mutex<()>,
}

impl Ui {
    pub(crate) fn new(options: UiOptions) -> Ui {
        let bars = options.progress.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(0));
            overall.set_style(
                ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} hosts  {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            Mutex::new(Bars {
                multi,
                overall,
                hosts: HashMap::new(),
                waiting: Default::default(),
            })
        });
        Ui {
            options,
            bars,
            counts: Mutex::new(Counts::default()),
            write_lock: Mutex::new(()),
        }
    }

    pub(crate) fn style(&self, status: HostStatus) -> Style {
        let s = Style::new().force_styling(self.options.color);
        match status {
            HostStatus::Ok => s.green(),
            HostStatus::Changed => s.yellow(),
            HostStatus::Failed | HostStatus::Unreachable => s.red().bold(),
            HostStatus::Skipped => s.cyan(),
        }
    }

    /// Runs `f` (a question on the terminal) with the progress bars hidden.
    /// Asks a yes/no question on the terminal (progress bars set aside while it waits);
    /// anything but y/yes is no.
    pub(crate) fn confirm(&self, question: &str) -> bool {
        self.suspend(|| {
            use std::io::Write;
            eprint!("{question}");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).is_ok()
                && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        })
    }

    pub(crate) fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.bars {
            Some(bars) => {
                let multi = bars.lock().unwrap().multi.clone();
                multi.suspend(f)
            }
            None => f(),
        }
    }

    /// A progress or diagnostic line on stderr, e.g. `web-1 | step: install`.
    pub(crate) fn event(&self, host: Option<&str>, msg: &str) {
        let text = shown(host, msg);
        if let Some(bars) = &self.bars {
            let bars = bars.lock().unwrap();
            for line in text.lines() {
                bars.multi.println(line).ok();
            }
            return;
        }
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let _guard = self.write_lock.lock().unwrap();
        let mut err = std::io::stderr().lock();
        for line in text.lines() {
            let _ = writeln!(err, "{stamp} {line}");
        }
    }

    /// Output that is the result of the run (recipe `print`, `fleet exec` output) on
    /// stdout; a closed pipe is not an error.
    pub(crate) fn out(&self, host: Option<&str>, msg: &str) {
        let text = shown(host, msg);
        let write = || {
            let _guard = self.write_lock.lock().unwrap();
            let _ = if self.options.json {
                writeln!(std::io::stderr().lock(), "{text}")
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}").and_then(|_| out.flush())
            };
        };
        match &self.bars {
            Some(bars) => bars.lock().unwrap().multi.suspend(write),
            None => write(),
        }
    }

    /// The machine-readable result of the run: stdout, always.
    pub(crate) fn json_result(&self, text: &str) {
        let text = crate::ops::secrets::redact(text);
        let _guard = self.write_lock.lock().unwrap();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}").and_then(|_| out.flush());
    }

    /// Announces `n` more hosts to work on.
    pub(crate) fn add_hosts(&self, n: usize) {
        let mut c = self.counts.lock().unwrap();
        c.total += n as u64;
        if let Some(bars) = &self.bars {
            bars.lock().unwrap().overall.set_length(c.total);
        }
    }

    pub(crate) fn host_started(&self, host: &str) {
        if let Some(bars) = &self.bars {
            let c = self.counts.lock().unwrap();
            let mut bars = bars.lock().unwrap();
            if bars.hosts.len() < SPINNERS {
                bars.spinner(host);
            } else {
                bars.waiting.insert(host.to_string());
            }
            bars.summary(&c);
        }
    }

    /// What a host is doing right now: its step or command.
    pub(crate) fn host_activity(&self, host: &str, msg: &str) {
        if let Some(bars) = &self.bars
            && let Some(bar) = bars.lock().unwrap().hosts.get(host)
        {
            bar.set_message(for_terminal(msg));
        }
    }

    pub(crate) fn host_done(&self, host: &str, status: HostStatus) {
        let mut c = self.counts.lock().unwrap();
        c.done += 1;
        *c.by_status.entry(status).or_default() += 1;
        if let Some(bars) = &self.bars {
            let mut bars = bars.lock().unwrap();
            if let Some(bar) = bars.hosts.remove(host) {
                bar.finish_and_clear();
                bars.multi.remove(&bar);
                if let Some(next) = bars.waiting.shift_remove_index(0) {
                    bars.spinner(&next);
                }
            } else {
                bars.waiting.shift_remove(host);
            }
            bars.overall.set_position(c.done);
            bars.summary(&c);
        }
    }

    /// Whether a line per host that ended well is printed: always as plain lines (logs,
    /// cron, scripts), with progress bars only up to `recap::RECAP_ROWS` hosts (beyond,
    /// the overall line counts them and failures still get their line).
    pub(crate) fn host_lines(&self) -> bool {
        self.bars.is_none() || self.counts.lock().unwrap().total <= super::recap::RECAP_ROWS as u64
    }

    /// Removes the bars before the recap is printed.
    pub(crate) fn finish(&self) {
        if let Some(bars) = &self.bars {
            let bars = bars.lock().unwrap();
            bars.overall.finish_and_clear();
            let _ = bars.multi.clear();
        }
    }
}

/// A message as it may reach the terminal: secrets masked (before the host prefix splits
/// a multi-line secret), each line prefixed with the host, then control characters of
/// host output and inventory values made visible (`ops::terminal`).
fn shown(host: Option<&str>, msg: &str) -> String {
    let msg = crate::ops::secrets::redact(msg);
    let text = match host {
        Some(h) => prefix_lines(&format!("{h} | "), &msg),
        None => msg.into_owned(),
    };
    crate::ops::terminal::neutralise(&text).into_owned()
}

fn for_terminal(msg: &str) -> String {
    shown(None, msg)
}

fn prefix_lines(prefix: &str, msg: &str) -> String {
    if msg.is_empty() {
        return prefix.trim_end().to_string();
    }
    msg.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_carries_the_host() {
        assert_eq!(prefix_lines("web-1 | ", "a\nb"), "web-1 | a\nweb-1 | b");
        assert_eq!(prefix_lines("web-1 | ", ""), "web-1 |");
    }

    #[test]
    fn host_output_escape_sequences_are_neutralised_on_every_line() {
        let text = shown(Some("web\x1b[2J"), "a\x1b]0;title\x07\nb\r\n");
        assert_eq!(text, "web^[[2J | a^[]0;title^G\nweb^[[2J | b");
    }
}
