//! The table (or JSON document) that closes every run.

use super::run::Run;
use crate::outcome::{Ending, HostStatus, exit_code};
use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

#[derive(Debug, Serialize)]
pub(crate) struct HostRecap {
    pub(crate) host: String,
    pub(crate) status: HostStatus,
    pub(crate) duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Recap {
    pub(crate) run_id: String,
    pub(crate) recipe: String,
    pub(crate) check: bool,
    pub(crate) exit_code: i32,
    pub(crate) duration_ms: u64,
    /// Changes on this machine itself (`local::write`, `csv::write`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) local_changes: Vec<String>,
    pub(crate) hosts: Vec<HostRecap>,
}

/// Which hosts the closing table lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    All,
    /// Failed and unreachable hosts only (-q).
    Failures,
    /// Failed and unreachable hosts, and a line counting the others (a large run on a
    /// terminal, `--recap short`).
    Collapsed,
}

/// Above this many hosts, `--recap auto` collapses the table on a terminal.
pub(crate) const RECAP_ROWS: usize = 20;

impl Rows {
    /// What `--recap` and -q ask for; `terminal`: stderr is one.
    pub(crate) fn chosen(
        mode: crate::cli::RecapMode,
        quiet: bool,
        terminal: bool,
        hosts: usize,
    ) -> Rows {
        use crate::cli::RecapMode;
        match mode {
            _ if quiet => Rows::Failures,
            RecapMode::Full => Rows::All,
            RecapMode::Short => Rows::Collapsed,
            RecapMode::Auto if terminal && hosts > RECAP_ROWS => Rows::Collapsed,
            RecapMode::Auto => Rows::All,
        }
    }
}

/// An error in one table cell: its first line, and when that announces more (`…exited
/// with 2:`), the first line it announces.
fn error_cell(error: &str) -> String {
    let mut lines = error.lines();
    let first = lines.next().unwrap_or_default();
    match lines.find(|l| !l.trim().is_empty()) {
        Some(next) if first.ends_with(':') => format!("{first} {}", next.trim()),
        _ => first.to_string(),
    }
}

impl Recap {
    /// The recap of `run`; `recipe_failed`: the recipe itself ended with an error.
    pub(crate) fn of(run: &Run, recipe_failed: bool) -> Recap {
        let mut records: Vec<_> = run.records().into_iter().collect();
        // Inventory order, whatever order the workers finished in.
        records.sort_by_key(|(name, _)| run.inventory.hosts.get_index_of(name));
        let hosts: Vec<HostRecap> = records
            .into_iter()
            .map(|(host, r)| HostRecap {
                host,
                status: r.status(),
                duration_ms: r.elapsed.as_millis() as u64,
                error: r.failure.map(|f| f.1),
            })
            .collect();
        Recap {
            run_id: run.tag.run_id.clone(),
            recipe: run.tag.recipe.clone(),
            check: run.options.check,
            exit_code: exit_code(&Ending::Run {
                hosts: &hosts.iter().map(|h| h.status).collect::<Vec<_>>(),
                stop: super::interrupt::stop(),
                recipe_failed,
            }),
            duration_ms: run.started.elapsed().as_millis() as u64,
            local_changes: run.local_changes(),
            hosts,
        }
    }

    /// The closing table: one row per host, then the totals. `rows` keeps all, or only
    /// failed and unreachable hosts (-q, and `Collapsed`, which says how many it left
    /// out); a table without rows is left out.
    pub(crate) fn render(&self, style: impl Fn(HostStatus, &str) -> String, rows: Rows) -> String {
        let only_failures = rows != Rows::All;
        let shown: Vec<&HostRecap> = self
            .hosts
            .iter()
            .filter(|h| !only_failures || h.status.is_failure())
            .collect();
        let left_out = self.hosts.len() - shown.len();
        let header: Vec<String> = ["HOST", "STATUS", "TIME", "ERROR"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cells: Vec<Vec<String>> = shown
            .iter()
            .map(|h| {
                vec![
                    h.host.clone(),
                    h.status.as_str().to_string(),
                    format!("{:.1}s", h.duration_ms as f64 / 1000.0),
                    // Masked before the table makes control characters visible.
                    crate::ops::secrets::redact(&error_cell(h.error.as_deref().unwrap_or("")))
                        .into_owned(),
                ]
            })
            .collect();
        // Colour is applied after alignment so escape codes never skew the columns: the
        // status cell of row i starts right after the padded host column.
        let host_width = shown
            .iter()
            .map(|h| crate::table::cell_text(&h.host).width())
            .chain([4])
            .max()
            .unwrap_or(4);
        let mut text = String::new();
        let table = match shown.is_empty() {
            true => String::new(),
            false => crate::table::render(&header, &cells),
        };
        for (i, line) in table.lines().enumerate() {
            match i.checked_sub(1).and_then(|r| shown.get(r)) {
                Some(h) => {
                    let at = line
                        .char_indices()
                        .scan(0, |w, (b, c)| {
                            let here = (*w, b);
                            *w += c.width().unwrap_or(0);
                            Some(here)
                        })
                        .find(|(w, _)| *w == host_width + 2)
                        .map(|(_, b)| b)
                        .unwrap_or(line.len());
                    let word = h.status.as_str();
                    text.push_str(&line[..at]);
                    text.push_str(&style(h.status, word));
                    text.push_str(&line[(at + word.len()).min(line.len())..]);
                }
                None => text.push_str(line),
            }
            text.push('\n');
        }
        if rows == Rows::Collapsed && left_out > 0 {
            text.push_str(&format!(
                "{left_out} {} ok, changed or skipped not listed (--recap full lists every host; the journal has all)\n",
                if left_out == 1 { "host" } else { "hosts" },
            ));
        }
        if !self.local_changes.is_empty() {
            let n = self.local_changes.len();
            let shown: Vec<String> = self
                .local_changes
                .iter()
                .take(3)
                .map(|c| crate::ops::terminal::neutralise(c).into_owned())
                .collect();
            let more = if n > 3 { ", …" } else { "" };
            text.push_str(&format!(
                "this machine: {n} {}{} ({}{more})\n",
                if n == 1 { "change" } else { "changes" },
                if self.check { " (would be made)" } else { "" },
                shown.join(", ")
            ));
        }
        let count = |s: HostStatus| self.hosts.iter().filter(|h| h.status == s).count();
        text.push_str(&format!(
            "run {}{}: {} ok, {} changed, {} failed, {} unreachable, {} skipped in {:.1}s\n",
            self.run_id,
            if self.check { " (check mode)" } else { "" },
            count(HostStatus::Ok),
            count(HostStatus::Changed),
            count(HostStatus::Failed),
            count(HostStatus::Unreachable),
            count(HostStatus::Skipped),
            self.duration_ms as f64 / 1000.0
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::RecapMode;

    #[test]
    fn the_table_collapses_on_a_terminal_above_twenty_hosts_unless_full() {
        let chosen = |mode, quiet, terminal, hosts| Rows::chosen(mode, quiet, terminal, hosts);
        assert_eq!(chosen(RecapMode::Auto, false, true, 21), Rows::Collapsed);
        assert_eq!(chosen(RecapMode::Auto, false, true, 20), Rows::All);
        // Cron and scripts keep every row unless asked.
        assert_eq!(chosen(RecapMode::Auto, false, false, 5000), Rows::All);
        assert_eq!(chosen(RecapMode::Short, false, false, 3), Rows::Collapsed);
        assert_eq!(chosen(RecapMode::Full, false, true, 5000), Rows::All);
        // -q wins: only failures, without the line counting the others.
        assert_eq!(chosen(RecapMode::Full, true, true, 5000), Rows::Failures);
    }
}
