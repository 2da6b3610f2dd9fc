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
    #[error(
        "host name `{0}` cannot go into a unit file or a branch name (letters, digits, `-`, `_`, `.`)"
    )]
    Host(String),
    #[error(
        "--interval {0} cannot be said in cron, which this host (no systemd) needs: use a number of minutes that divides an hour (e.g. 15m, 30m), of hours that divides a day (1h, 2h, 6h), or 1d"
    )]
    Cron(String),
    #[error(
        "--allowed-signers {0}: not an allowed signers file (`ssh-keygen -Y` format: lines `PRINCIPAL KEYTYPE KEY`, printable text, under 64 KiB, at least one key)"
    )]
    Signers(String),
}

/// The pull settings and the signers it trusts, next to the checkout (`fleet pull`
/// reads `DIR/pull.toml`, never the repository's own settings).
pub(crate) const SETTINGS_FILE: &str = "/var/lib/fleet-pull/pull.toml";
pub(crate) const SIGNERS_FILE: &str = "/var/lib/fleet-pull/allowed_signers";
const MAX_SIGNERS: usize = 64 * 1024;

/// An allowed signers file as given: plain printable lines, at least one of them a key,
/// none that would end the script's here-document.
pub(crate) fn check_signers(text: &str, shown_path: &str) -> Result<String, EnrollError> {
    let bad = || EnrollError::Signers(shown(shown_path));
    if text.len() > MAX_SIGNERS {
        return Err(bad());
    }
    let mut keys = 0;
    for line in text.lines() {
        if line.chars().any(|c| c.is_control() && c != '\t') || line.trim() == "FLEET_EOF" {
            return Err(bad());
        }
        let line = line.trim();
        if !line.is_empty() && !line.starts_with('#') {
            if line.split_whitespace().count() < 3 {
                return Err(bad());
            }
            keys += 1;
        }
    }
    if keys == 0 {
        return Err(bad());
    }
    let mut text = text.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Where the cron fallback goes on hosts without systemd, and where its runs log.
pub(crate) const CRON_FILE: &str = "/etc/cron.d/fleet-pull";
pub(crate) const CRON_LOG: &str = "/var/log/fleet-pull.log";

/// The architecture `uname -m` names, in the words of `std::env::consts::ARCH`.
pub(crate) fn arch_of_uname(machine: &str) -> &str {
    match machine.trim() {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" | "aarch64_be" => "aarch64",
        "i386" | "i486" | "i586" | "i686" => "x86",
        "ppc64" | "ppc64le" => "powerpc64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "loongarch64" => "loongarch64",
        m if m.starts_with("armv") => "arm",
        m => m,
    }
}

/// A cron schedule running every `secs` (a whole number of minutes dividing an hour,
/// of hours dividing a day, or a day), at a minute (and hour) spread by `spread` so
/// hosts do not all pull at once.
pub(crate) fn cron_schedule(secs: u64, spread: u64) -> Option<String> {
    if !secs.is_multiple_of(60) {
        return None;
    }
    let minutes = secs / 60;
    if minutes == 0 {
        return None;
    }
    if minutes < 60 {
        return 60u64.is_multiple_of(minutes).then(|| {
            if minutes == 1 {
                "* * * * *".to_string()
            } else {
                format!("{}-59/{minutes} * * * *", spread % minutes)
            }
        });
    }
    if !minutes.is_multiple_of(60) {
        return None;
    }
    let hours = minutes / 60;
    let minute = spread % 60;
    match hours {
        1 => Some(format!("{minute} * * * *")),
        h if h < 24 && 24u64.is_multiple_of(h) => {
            Some(format!("{minute} {}-23/{h} * * *", spread % h))
        }
        24 => Some(format!("{minute} {} * * *", spread % 24)),
        _ => None,
    }
}

/// What a host is enrolled with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enrollment {
    pub(crate) repo: String,
    pub(crate) recipe: String,
    pub(crate) interval_secs: u64,
    pub(crate) push_results: Option<String>,
    /// The host's name for `fleet pull --host` (its inventory name); None: the hostname.
    pub(crate) host: Option<String>,
    /// The allowed signers file the host checks every commit against (checked text);
    /// None: enrolled `--unsigned`, running whatever the repository holds.
    pub(crate) signers: Option<String>,
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
            host: None,
            signers: None,
        })
    }

    /// Runs only commits signed by a key of `signers` (the checked text of the file).
    pub(crate) fn signed_by(self, signers: String) -> Enrollment {
        Enrollment {
            signers: Some(signers),
            ..self
        }
    }

    /// `DIR/pull.toml`: signatures required or, said out loud, not.
    pub(crate) fn settings(&self) -> String {
        match self.signers {
            Some(_) => "# Written by fleet pull enroll: only commits signed by a key of allowed_signers run.\nrequire_signed = true\n".to_string(),
            None => "# Written by fleet pull enroll --unsigned: whatever the repository holds runs, as root.\nrequire_signed = false\n".to_string(),
        }
    }

    /// The same enrollment for the host `name`: its runs and results go by that name.
    pub(crate) fn for_host(&self, name: &str) -> Result<Enrollment, EnrollError> {
        let ok = !name.is_empty()
            && !name.starts_with(['-', '.'])
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(EnrollError::Host(shown(name)));
        }
        Ok(Enrollment {
            host: Some(name.to_string()),
            ..self.clone()
        })
    }

    /// The words after `fleet pull`, as the service and cron run them.
    fn pull_args(&self) -> Vec<String> {
        let mut words = vec![
            "--no-progress".to_string(),
            "--repo".into(),
            self.repo.clone(),
            "--dir".into(),
            DIR.into(),
        ];
        if let Some(h) = &self.host {
            words.extend(["--host".into(), h.clone()]);
        }
        if let Some(p) = &self.push_results {
            words.extend(["--push-results".into(), p.clone()]);
        }
        words.push(self.recipe.clone());
        words
    }

    /// One run of pull mode as a shell command line (every value was checked plain).
    pub(crate) fn command_line(&self) -> String {
        let words: Vec<String> = self.pull_args().iter().map(|w| quote(w)).collect();
        format!("{BINARY} pull {}", words.join(" "))
    }

    /// The cron fallback for hosts without systemd: `/etc/cron.d/fleet-pull`, running
    /// the service's command as root every interval, its output appended to the log.
    pub(crate) fn cron(&self, spread: u64) -> Result<String, EnrollError> {
        let schedule = cron_schedule(self.interval_secs, spread).ok_or_else(|| {
            EnrollError::Cron(crate::ops::facts::short_duration(self.interval_secs))
        })?;
        Ok(format!(
            "# Written by fleet pull enroll: this host has no systemd, cron runs pull mode.\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n{schedule} root {} >>{CRON_LOG} 2>&1\n",
            self.command_line()
        ))
    }

    /// The service unit: one `fleet pull` run, this host's own name (the hostname).
    pub(crate) fn service(&self) -> String {
        let mut push = self
            .host
            .as_ref()
            .map(|h| format!("    --host {h} \\\n"))
            .unwrap_or_default();
        push.push_str(
            &self
                .push_results
                .as_ref()
                .map(|p| format!("    --push-results {p} \\\n"))
                .unwrap_or_default(),
        );
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
        let signers = self
            .signers
            .as_ref()
            .map(|s| format!("cat > {SIGNERS_FILE} <<'FLEET_EOF'\n{s}FLEET_EOF\n"))
            .unwrap_or_default();
        format!(
            "#!/bin/sh\n# fleet pull enroll --print: run as root on the host.\nset -eu\ntest -x {BINARY} || {{ echo 'copy the fleet binary to {BINARY} first' >&2; exit 1; }}\nmkdir -p {DIR}\n{signers}cat > {SETTINGS_FILE} <<'FLEET_EOF'\n{}FLEET_EOF\ncat > /etc/systemd/system/{UNIT}.service <<'FLEET_EOF'\n{}FLEET_EOF\ncat > /etc/systemd/system/{UNIT}.timer <<'FLEET_EOF'\n{}FLEET_EOF\nsystemctl daemon-reload\nsystemctl enable --now {UNIT}.timer\n# The first run, now: its result shows in journalctl -u {UNIT}.\nsystemctl start {UNIT}.service || echo 'the first run failed: see journalctl -u {UNIT}' >&2\n{BINARY} history --state-dir {}\n",
            self.settings(),
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
    fn signers_are_plain_key_lines_and_the_settings_say_what_runs() {
        let ok = "alice@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDx\n# ops\n";
        assert_eq!(check_signers(ok, "s").unwrap(), ok);
        for bad in [
            "",
            "# only a comment\n",
            "alice ssh-ed25519\n",
            "a ssh-ed25519 K\nFLEET_EOF\nrm -rf /\n",
            "a ssh-ed25519 K\x1b[2J\n",
        ] {
            assert!(
                matches!(check_signers(bad, "s"), Err(EnrollError::Signers(_))),
                "{bad:?}"
            );
        }
        assert!(check_signers(&"a b c\n".repeat(20_000), "s").is_err());
        let unsigned = plan();
        assert!(unsigned.settings().contains("require_signed = false\n"));
        assert!(!unsigned.script().contains("allowed_signers <<"));
        let signed = plan().signed_by(ok.to_string());
        assert!(signed.settings().contains("require_signed = true\n"));
        let script = signed.script();
        assert!(
            script.contains(&format!(
                "cat > {SIGNERS_FILE} <<'FLEET_EOF'\n{ok}FLEET_EOF\n"
            )),
            "{script}"
        );
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success());
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

    #[test]
    fn a_host_of_its_own_name_and_the_cron_fallback() {
        let p = plan().for_host("box-1").unwrap();
        assert!(
            p.service()
                .contains("    --host box-1 \\\n    --push-results results \\\n")
        );
        assert_eq!(
            p.command_line(),
            "/usr/local/bin/fleet pull --no-progress --repo https://git.example.com/ops/site.git --dir /var/lib/fleet-pull --host box-1 --push-results results update"
        );
        let cron = p.cron(7).unwrap();
        assert!(
            cron.ends_with(&format!(
                "\n7-59/30 * * * * root {} >>/var/log/fleet-pull.log 2>&1\n",
                p.command_line()
            )),
            "{cron}"
        );
        assert!(plan().for_host("-x").is_err());
        assert!(
            plan()
                .for_host("a b")
                .unwrap_err()
                .to_string()
                .contains("`a b`")
        );
        let odd = Enrollment::new("/srv/site", "update", "45m", None).unwrap();
        assert!(
            odd.cron(0)
                .unwrap_err()
                .to_string()
                .contains("--interval 45m")
        );
    }

    #[test]
    fn cron_schedules_for_intervals_cron_can_say() {
        assert_eq!(cron_schedule(60, 5).as_deref(), Some("* * * * *"));
        assert_eq!(
            cron_schedule(15 * 60, 17).as_deref(),
            Some("2-59/15 * * * *")
        );
        assert_eq!(cron_schedule(3600, 75).as_deref(), Some("15 * * * *"));
        assert_eq!(
            cron_schedule(6 * 3600, 75).as_deref(),
            Some("15 3-23/6 * * *")
        );
        assert_eq!(cron_schedule(86400, 75).as_deref(), Some("15 3 * * *"));
        for bad in [0, 30, 45 * 60, 90 * 60, 5 * 3600, 2 * 86400] {
            assert_eq!(cron_schedule(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn uname_names_map_to_rusts() {
        assert_eq!(arch_of_uname("x86_64\n"), "x86_64");
        assert_eq!(arch_of_uname("arm64"), "aarch64");
        assert_eq!(arch_of_uname("armv7l"), "arm");
        assert_eq!(arch_of_uname("i686"), "x86");
        assert_eq!(
            arch_of_uname(std::env::consts::ARCH),
            std::env::consts::ARCH
        );
    }
}
