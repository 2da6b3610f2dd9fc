//! `fleet pull enroll --print`: the systemd service and timer of pull mode (the shape of
//! `examples/pull/`) for a repository, recipe and interval, and a shell script that
//! installs them on a host fleet cannot reach. Every value lands in a unit file's
//! ExecStart, whose quoting is systemd's, not the shell's: values that would need
//! quoting there are refused rather than escaped.

use crate::ops::shell::quote;

/// The service's name on the host.
pub(crate) const UNIT: &str = "fleet-pull";
/// Where the binary goes and where pull mode keeps its checkout and journal.
pub(crate) const BINARY: &str = "/usr/local/bin/fleet";
pub(crate) const DIR: &str = "/var/lib/fleet-pull";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum EnrollError {
    #[error(
        "--repo `{0}` cannot go into a unit file: give a URL or path without spaces, quotes, `\\`, `%`, `$` or `;` that does not start with `-`"
    )]
    Repo(String),
    #[error("--recipe `{0}` is not a recipe name (letters, digits, `-`, `_`)")]
    Recipe(String),
    #[error("--push-results `{0}` is not a branch prefix (letters, digits, `-`, `_`, `.`, `/`)")]
    Prefix(String),
    #[error("--interval {0}")]
    Interval(String),
}

/// What a host is enrolled with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enrollment {
    pub(crate) repo: String,
    pub(crate) recipe: String,
    pub(crate) interval_secs: u64,
    pub(crate) push_results: Option<String>,
}

fn shown(s: &str) -> String {
    crate::ops::terminal::neutralise(s).into_owned()
}

impl Enrollment {
    /// Checks every value before anything is written or printed.
    pub(crate) fn new(
        repo: &str,
        recipe: &str,
        interval: &str,
        push_results: Option<&str>,
    ) -> Result<Enrollment, EnrollError> {
        let repo_ok = !repo.is_empty()
            && !repo.starts_with('-')
            && repo
                .chars()
                .all(|c| c.is_ascii_graphic() && !"\"'\\%$;`".contains(c));
        if !repo_ok {
            return Err(EnrollError::Repo(shown(repo)));
        }
        let recipe_ok = !recipe.is_empty()
            && !recipe.starts_with('-')
            && recipe
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        if !recipe_ok {
            return Err(EnrollError::Recipe(shown(recipe)));
        }
        let interval_secs = crate::ops::clock::duration_secs(interval)
            .map_err(|e| EnrollError::Interval(e.to_string()))?;
        if interval_secs < 60 {
            return Err(EnrollError::Interval(format!(
                "`{}` is under a minute; say e.g. \"30m\" or \"1h\"",
                shown(interval)
            )));
        }
        let push_results = match push_results {
            None => None,
            Some(p) => Some(
                crate::ops::results::check_prefix(p)
                    .map_err(|_| EnrollError::Prefix(shown(p)))?
                    .to_string(),
            ),
        };
        Ok(Enrollment {
            repo: repo.to_string(),
            recipe: recipe.to_string(),
            interval_secs: interval_secs as u64,
            push_results,
        })
    }

    /// The service unit: one `fleet pull` run, this host's own name (the hostname).
    pub(crate) fn service(&self) -> String {
        let push = self
            .push_results
            .as_ref()
            .map(|p| format!("    --push-results {p} \\\n"))
            .unwrap_or_default();
        format!(
            "# Written by fleet pull enroll.\n[Unit]\nDescription=fleet pull: apply the site recipes to this host\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart={BINARY} pull --no-progress \\\n    --repo {} \\\n    --dir {DIR} \\\n{push}    {}\nTimeoutStartSec=1h\nKillSignal=SIGTERM\nNice=10\n",
            self.repo, self.recipe
        )
    }

    /// The timer: every interval, a little randomised, caught up after downtime.
    pub(crate) fn timer(&self) -> String {
        let every = self.interval_secs;
        format!(
            "# Written by fleet pull enroll.\n[Unit]\nDescription=Run fleet pull every {}\n\n[Timer]\nOnBootSec=5min\nOnUnitActiveSec={every}s\nRandomizedDelaySec={}s\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n",
            crate::ops::facts::short_duration(every),
            (every / 10).max(1)
        )
    }

    /// A POSIX shell script doing by hand what enroll does over SSH; the fleet binary is
    /// expected at its place (copy this machine's fleet there first).
    pub(crate) fn script(&self) -> String {
        format!(
            "#!/bin/sh\n# fleet pull enroll --print: run as root on the host.\nset -eu\ntest -x {BINARY} || {{ echo 'copy the fleet binary to {BINARY} first' >&2; exit 1; }}\nmkdir -p {DIR}\ncat > /etc/systemd/system/{UNIT}.service <<'FLEET_EOF'\n{}FLEET_EOF\ncat > /etc/systemd/system/{UNIT}.timer <<'FLEET_EOF'\n{}FLEET_EOF\nsystemctl daemon-reload\nsystemctl enable --now {UNIT}.timer\n# The first run, now: its result shows in journalctl -u {UNIT}.\nsystemctl start {UNIT}.service || echo 'the first run failed: see journalctl -u {UNIT}' >&2\n{BINARY} history --state-dir {}\n",
            self.service(),
            self.timer(),
            quote(&format!("{DIR}/state")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Enrollment {
        Enrollment::new(
            "https://git.example.com/ops/site.git",
            "update",
            "30m",
            Some("results"),
        )
        .unwrap()
    }

    #[test]
    fn units_in_the_shape_of_the_example() {
        let p = plan();
        let service = p.service();
        assert!(
            service.contains("ExecStart=/usr/local/bin/fleet pull --no-progress \\\n    --repo https://git.example.com/ops/site.git \\\n    --dir /var/lib/fleet-pull \\\n    --push-results results \\\n    update\n"),
            "{service}"
        );
        let timer = p.timer();
        assert!(timer.contains("OnUnitActiveSec=1800s\n"), "{timer}");
        assert!(timer.contains("RandomizedDelaySec=180s\n"), "{timer}");
        let without = Enrollment::new("/srv/git/site", "configure", "1h", None).unwrap();
        assert!(!without.service().contains("--push-results"));
    }

    #[test]
    fn the_script_runs_in_a_shell_and_holds_both_units() {
        let script = plan().script();
        assert!(script.contains(&plan().service()));
        assert!(script.contains(&plan().timer()));
        assert!(script.contains("systemctl enable --now fleet-pull.timer\n"));
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn hostile_values_are_refused_before_anything_is_written() {
        let e = |repo: &str, recipe: &str, interval: &str, push: Option<&str>| {
            Enrollment::new(repo, recipe, interval, push)
                .unwrap_err()
                .to_string()
        };
        let ok = "https://git.example.com/site.git";
        assert!(e("--upload-pack=x", "update", "1h", None).starts_with("--repo `--upload-pack=x`"));
        assert!(e("a b", "update", "1h", None).contains("cannot go into a unit file"));
        assert!(e("x\nExecStartPre=/bin/sh", "update", "1h", None).contains("--repo"));
        assert!(!e("x\x1b[2J", "update", "1h", None).contains('\x1b'));
        assert!(e("%h", "update", "1h", None).contains("--repo"));
        assert!(e(ok, "up date", "1h", None).starts_with("--recipe"));
        assert!(e(ok, "-x", "1h", None).starts_with("--recipe"));
        assert!(e(ok, "update", "soon", None).starts_with("--interval `soon`"));
        assert!(e(ok, "update", "10s", None).contains("under a minute"));
        assert!(e(ok, "update", "1h", Some("a b")).starts_with("--push-results"));
    }
}
