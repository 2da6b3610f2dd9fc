//! `fleet pull --repo URL RECIPE`: pull mode for fleets that allow no inbound SSH. Run
//! on a host (from its own cron or systemd timer): sync the recipe repository (the last
//! good checkout when the fetch fails), run the recipe against this host with the local
//! transport, keep the journal here, and optionally push it to a results branch.
//!
//! Layout under `--dir` (default `~/.local/state/fleet/pull/<repo>`): `checkout/` (the
//! recipes), `mirror.git/` (for remote URLs: fetched with the git command, then checked
//! out by fleet), `state/` (the journal), `inventory.toml` (this host, local).

use crate::App;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct PullArgs {
    pub(crate) repo: String,
    pub(crate) rev: Option<String>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) host: Option<String>,
    pub(crate) push_results: Option<String>,
    pub(crate) recipe: String,
    pub(crate) args: Vec<String>,
}

/// A directory name for a repository URL: `git.example.com_ops_fleet.git`.
pub(crate) fn dir_name(url: &str) -> String {
    let trimmed = url.trim_end_matches('/').split("://").last().unwrap_or(url);
    trimmed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// Why a git command of `fleet pull` failed.
#[derive(Debug, thiserror::Error)]
enum GitRunError {
    #[error("cannot run git ({0}); install git for remote repositories")]
    Spawn(std::io::Error),
    /// git's own stderr, trimmed: it may quote the remote server.
    #[error("{0}")]
    Failed(String),
}

fn git(args: &[&str], dir: Option<&Path>) -> std::result::Result<String, GitRunError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    let out = cmd.args(args).output().map_err(GitRunError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitRunError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Pushes the journal's HEAD to `branch` of the local repository `url` (forced: the
/// branch is this host's alone), with libgit2.
fn push_local(state: &Path, url: &str, branch: &str) -> std::result::Result<(), GitRunError> {
    let msg = |e: git2::Error| GitRunError::Failed(e.message().to_string());
    let repo = git2::Repository::open(state).map_err(msg)?;
    let head = repo.head().map_err(msg)?;
    let name = head
        .name()
        .ok()
        .filter(|n| n.starts_with("refs/heads/"))
        .ok_or_else(|| GitRunError::Failed("the journal's HEAD is not a branch".into()))?;
    let mut remote = repo.remote_anonymous(url).map_err(msg)?;
    remote
        .push(&[format!("+{name}:{branch}")], None)
        .map_err(msg)
}

/// For a remote URL, a local mirror fleet can check out from: fetched now, or the last
/// one with a warning when the remote cannot be reached.
pub(crate) fn mirror(url: &str, base: &Path) -> Result<(String, Option<String>)> {
    let mirror = base.join("mirror.git");
    let fetched = if mirror.exists() {
        git(&["fetch", "--prune", "--quiet", "origin"], Some(&mirror))
    } else {
        git(
            &[
                "clone",
                "--mirror",
                "--quiet",
                // A URL such as `--upload-pack=…` stays a URL.
                "--",
                url,
                &mirror.to_string_lossy(),
            ],
            None,
        )
    };
    match fetched {
        Ok(_) => Ok((mirror.to_string_lossy().into_owned(), None)),
        Err(e) if mirror.exists() => Ok((
            mirror.to_string_lossy().into_owned(),
            Some(format!("cannot fetch {url}: {e}")),
        )),
        Err(e) => Err(Error::usage(format!("cannot clone {url}: {e}"))),
    }
}

/// The inventory of a pull run: the repository's, with this host made local (so its
/// groups and vars apply), or just this host.
fn inventory(checkout: &Path, host: &str) -> Result<String> {
    let text = std::fs::read_to_string(checkout.join("inventory.toml")).unwrap_or_default();
    crate::inventory::edit::make_local("the repository's inventory.toml", &text, host)
        .map_err(|e| Error::usage(e.to_string()))
}

pub(crate) fn run(app: &App, a: PullArgs) -> Result<i32> {
    let host = match a.host {
        Some(h) => h,
        None => crate::sysinfo::hostname(),
    };
    let base = a
        .dir
        .clone()
        .unwrap_or_else(|| app.project.data_dir().join("pull").join(dir_name(&a.repo)));
    std::fs::create_dir_all(&base).map_err(Error::write(&base))?;
    let base = base.canonicalize().map_err(Error::read(&base))?;
    let (source, mirror_warning) = match crate::ops::git::local_source(&a.repo) {
        Some(_) => (a.repo.clone(), None),
        None => mirror(&a.repo, &base)?,
    };
    let checkout = base.join("checkout");
    // --require-signed: the commit to check out is decided in the source first.
    let signed = super::pull_signed::SignedArgs::of(&app.global);
    let keys = super::pull_signed::keys(&base, &signed)?;
    let choice = match &keys {
        Some(keys) => Some(super::pull_signed::choose(
            &source,
            a.rev.as_deref(),
            &base,
            keys,
        )?),
        None => None,
    };
    let rev = choice
        .as_ref()
        .map(|c| c.commit.as_str())
        .or(a.rev.as_deref());
    let synced = crate::ops::git::sync(&source, &checkout, None, rev)
        .map_err(|e| Error::usage(e.to_string()))?;
    if let Some(c) = &choice {
        super::pull_signed::checked_out(&base, c, &synced.commit)?;
    }
    let short = &synced.commit[..synced.commit.len().min(10)];
    match mirror_warning.or(synced.warning.clone()) {
        Some(why) => eprintln!(
            "warning: running the last good checkout {short} of {}: {}",
            a.repo,
            // git's message may quote the remote server.
            crate::ops::terminal::neutralise(&why)
        ),
        None => eprintln!("pulled {} at {short}", a.repo),
    }
    let inventory_file = base.join("inventory.toml");
    crate::ops::localfs::write_local(&inventory_file, inventory(&checkout, &host)?.as_bytes())
        .map_err(Error::write(&inventory_file))?;
    let state = base.join("state");
    // This host only, with the repository's inventory made local and the journal kept
    // here; the operator's own options (--check, --json, -q, ...) carry over.
    let global = crate::cli::GlobalArgs {
        directory: Some(checkout.clone()),
        inventory: Some(inventory_file),
        limit: Some(host.clone()),
        state_dir: Some(state.clone()),
        retry_failed: None,
        recipes_rev: None,
        refused: choice.as_ref().and_then(|c| c.refused.clone()),
        // The recipe's own checkouts (git::checkout) are held to the same keys.
        require_signed: keys.is_some(),
        allowed_signers: keys.as_ref().and_then(|k| k.allowed_signers.clone()),
        gpg_keyring: keys.as_ref().and_then(|k| k.gpg_keyring.clone()),
        ..app.global.clone()
    };
    let invocation = crate::Invocation {
        directory: checkout,
        global,
        recipe: a.recipe.clone(),
        args: a.args.clone(),
    };
    let code = match crate::run_invocation(invocation) {
        Ok(code) => code,
        Err(e) => crate::commands::report_error(e),
    };
    let code = super::pull_signed::exit_code(choice.as_ref(), code);
    let Some(prefix) = a.push_results else {
        return Ok(code);
    };
    let branch = format!("refs/heads/{prefix}/{host}");
    // A local bare repository is written by fleet itself, as it was read: a host needs
    // no git for it (libgit2 does not push to a non-bare one; the git command does).
    let bare = crate::ops::git::local_source(&a.repo)
        .and_then(|p| git2::Repository::open_bare(p).ok())
        .is_some();
    let pushed = if bare {
        push_local(&state, &a.repo, &branch)
    } else {
        git(
            &[
                "push",
                "--force",
                "--quiet",
                &a.repo,
                &format!("HEAD:{branch}"),
            ],
            Some(&state),
        )
        .map(|_| ())
    };
    match pushed {
        Ok(_) => {
            eprintln!("journal pushed to {} {branch}", a.repo);
            Ok(code)
        }
        Err(e) => {
            eprintln!(
                "error: the journal was kept in {} but not pushed to {} {branch}: {}",
                state.display(),
                a.repo,
                // git's message may quote the remote server.
                crate::ops::terminal::neutralise(&e.to_string())
            );
            Ok(crate::outcome::exit_code(
                &crate::outcome::Ending::JournalLost { code },
            ))
        }
    }
}

/// The arguments of `fleet pull enroll`.
pub(crate) struct EnrollArgs<'a> {
    pub(crate) pattern: &'a str,
    pub(crate) repo: &'a str,
    pub(crate) recipe: &'a str,
    pub(crate) interval: &'a str,
    pub(crate) push_results: Option<&'a str>,
    pub(crate) print: bool,
    /// None: `--unsigned` (clap requires one of the two).
    pub(crate) allowed_signers: Option<&'a Path>,
}

/// `fleet pull enroll`: with --print the script to run on a host; else, over SSH, each
/// matched host gets this fleet binary, the service and timer (or, without systemd, a
/// cron file) and a first run, whose result is shown. A second enroll changes nothing.
pub(crate) fn enroll(app: &App, a: &EnrollArgs) -> Result<i32> {
    let mut plan =
        crate::ops::enroll::Enrollment::new(a.repo, a.recipe, a.interval, a.push_results)
            .map_err(|e| Error::usage(e.to_string()))?;
    if let Some(file) = a.allowed_signers {
        let text = std::fs::read(file).map_err(Error::read(file))?;
        let shown = crate::project::display_path(file);
        let text = String::from_utf8(text)
            .map_err(|_| Error::usage(format!("--allowed-signers {shown}: not UTF-8 text")))?;
        let text = crate::ops::enroll::check_signers(&text, &shown)
            .map_err(|e| Error::usage(e.to_string()))?;
        plan = plan.signed_by(text);
    }
    if a.print {
        print!("{}", plan.script());
        return Ok(0);
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::usage(format!("cannot find this fleet binary to copy: {e}")))?;
    let binary = std::fs::read(&exe).map_err(Error::read(&exe))?;
    let mut cmdline = vec![
        "enroll".to_string(),
        a.pattern.to_string(),
        "--repo".into(),
        a.repo.to_string(),
        "--recipe".into(),
        a.recipe.to_string(),
        "--interval".into(),
        a.interval.to_string(),
    ];
    if let Some(p) = a.push_results {
        cmdline.extend(["--push-results".into(), p.to_string()]);
    }
    match a.allowed_signers {
        Some(f) => cmdline.extend(["--allowed-signers".into(), f.display().to_string()]),
        None => cmdline.push("--unsigned".into()),
    }
    let request = crate::session::RunRequest {
        recipe: "pull-enroll".into(),
        args: cmdline,
        params: Default::default(),
        limit: app.global.limit.clone(),
        replays: None,
    };
    let run = crate::session::start_run(app, request)?;
    let hosts = run.select(a.pattern)?;
    crate::exec::fanout::fan_out(&run, &hosts, |host| {
        let r = run.remote(host);
        enroll_host(&r, &plan, &binary)?;
        Ok(())
    });
    Ok(crate::session::finish_run_with(app, &run, None, true))
}

/// A change of the host: through sudo when the login user is not root; raised when
/// it fails (printed instead in check mode).
fn change(
    r: &dyn crate::ops::remote::Remote,
    cmd: &str,
    sudo: bool,
) -> std::result::Result<(), crate::outcome::HostError> {
    let opts = crate::ops::remote::CommandOpts {
        sudo,
        ..crate::ops::remote::CommandOpts::CHANGE
    };
    r.command(cmd, opts).map(|_| ())
}

/// Whether `cmd` (read-only) exits 0 on the host.
fn holds(
    r: &dyn crate::ops::remote::Remote,
    cmd: &str,
) -> std::result::Result<bool, crate::outcome::HostError> {
    Ok(r.command(cmd, crate::ops::remote::CommandOpts::QUERY)?.code == 0)
}

/// One host's enrollment (see [`enroll`]).
fn enroll_host(
    r: &dyn crate::ops::remote::Remote,
    plan: &crate::ops::enroll::Enrollment,
    binary: &[u8],
) -> std::result::Result<(), crate::outcome::HostError> {
    use crate::ops::enroll::{
        BINARY, CRON_FILE, CRON_LOG, DIR, SETTINGS_FILE, SIGNERS_FILE, UNIT, arch_of_uname,
    };
    use crate::ops::files::transfer::{FileOpts, write_file};
    use crate::outcome::HostError;
    let name = r.name();
    let fail = |m: String| HostError::new(name, m);
    let plan = plan.for_host(name).map_err(|e| fail(e.to_string()))?;
    let machine = r.command("uname -m", crate::ops::remote::CommandOpts::QUERY)?;
    let theirs = arch_of_uname(&machine.stdout).to_string();
    let ours = std::env::consts::ARCH;
    if machine.code != 0 || theirs != ours {
        return Err(fail(format!(
            "{name} is {} and this fleet is built for {ours}: not enrolled; enroll it from a fleet built for its architecture, or use `fleet pull enroll --print`",
            crate::ops::terminal::neutralise(machine.stdout.trim())
        )));
    }
    let sudo = r.needs_sudo()?;
    let opts = |mode: &str| FileOpts {
        mode: Some(mode.into()),
        owner: None,
        sudo,
    };
    let mut changed = write_file(r, BINARY, binary, &opts("0755"))?;
    // Who may sign first: a timer must never start before the host knows what to trust.
    if !holds(r, &format!("test -d {DIR}"))? {
        change(r, &format!("mkdir -p -m 0755 {DIR}"), sudo)?;
        changed = true;
    }
    if let Some(signers) = &plan.signers {
        changed |= write_file(r, SIGNERS_FILE, signers.as_bytes(), &opts("0644"))?;
    }
    changed |= write_file(r, SETTINGS_FILE, plan.settings().as_bytes(), &opts("0644"))?;
    let systemd = holds(r, "test -d /run/systemd/system")?;
    if systemd {
        let service = write_file(
            r,
            &format!("/etc/systemd/system/{UNIT}.service"),
            plan.service().as_bytes(),
            &opts("0644"),
        )?;
        let timer = write_file(
            r,
            &format!("/etc/systemd/system/{UNIT}.timer"),
            plan.timer().as_bytes(),
            &opts("0644"),
        )?;
        if service || timer {
            change(r, "systemctl daemon-reload", sudo)?;
        }
        let on = holds(
            r,
            &format!(
                "systemctl is-enabled --quiet {UNIT}.timer && systemctl is-active --quiet {UNIT}.timer"
            ),
        )?;
        if !on {
            change(r, &format!("systemctl enable --now {UNIT}.timer"), sudo)?;
        }
        changed |= service || timer || !on;
    } else {
        // Spread the hosts' minutes by their names, the same at every enroll.
        let spread = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let cron = plan.cron(spread).map_err(|e| fail(e.to_string()))?;
        changed |= write_file(r, CRON_FILE, cron.as_bytes(), &opts("0644"))?;
        if !holds(
            r,
            "command -v cron || command -v crond || test -x /usr/sbin/cron",
        )? {
            r.event(&format!(
                "{name} has no systemd and no cron daemon: {CRON_FILE} is written, but nothing runs it until cron is installed"
            ));
        }
    }
    let how = if systemd {
        format!("the systemd timer {UNIT}.timer")
    } else {
        format!("cron ({CRON_FILE}; runs log to {CRON_LOG})")
    };
    if !changed {
        r.out(&format!("unchanged: already enrolled with {how}"));
        return Ok(());
    }
    if r.check_mode() {
        r.out(&format!("would enroll with {how} and run fleet pull once"));
        return Ok(());
    }
    r.activity("the first fleet pull");
    // With systemd the run's output goes to the journal: read from when it started.
    let since = r
        .command("date +%s", crate::ops::remote::CommandOpts::QUERY)?
        .stdout
        .trim()
        .parse::<u64>()
        .ok();
    let first = if systemd {
        format!("systemctl start {UNIT}.service")
    } else {
        plan.command_line()
    };
    let first = crate::ops::shell::maybe_sudo(&first, sudo);
    let out = r.exec(
        &first,
        Some(std::time::Duration::from_secs(3600)),
        None,
        false,
    )?;
    let mut text = format!("{}\n{}", out.stdout_text(), out.stderr);
    if systemd && let Some(since) = since {
        let log = crate::ops::shell::maybe_sudo(
            &format!("journalctl -u {UNIT}.service --since @{since} --no-pager -o cat"),
            sudo,
        );
        let logged = r.exec(&log, None, None, false)?;
        text.push('\n');
        text.push_str(&logged.stdout_text());
    }
    let pushed = text
        .lines()
        .find(|l| l.contains("journal pushed to"))
        .map(|l| crate::ops::terminal::neutralise(l.trim()).into_owned());
    r.note_result(
        "enroll",
        serde_json::json!({"via": if systemd { "systemd" } else { "cron" }, "first_run_exit": out.code, "pushed": pushed}),
    );
    if out.code != 0 {
        let log = if systemd {
            format!("journalctl -u {UNIT}")
        } else {
            CRON_LOG.to_string()
        };
        return Err(fail(format!(
            "enrolled with {how}, but the first run of fleet pull failed (exit {}): {} (later runs log to {log})",
            out.code,
            crate::ops::terminal::neutralise(&crate::ops::text::tail(&text, 5))
        )));
    }
    r.out(&format!("enrolled with {how}; first run: exit 0"));
    match pushed {
        Some(p) => r.out(&p),
        None if plan.push_results.is_some() => r.out("first run: no journal was pushed"),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_errors_say_what_failed() {
        let spawn = GitRunError::Spawn(std::io::Error::other("not found"));
        assert_eq!(
            spawn.to_string(),
            "cannot run git (not found); install git for remote repositories"
        );
        let failed = GitRunError::Failed("fatal: repository not found".into());
        assert_eq!(failed.to_string(), "fatal: repository not found");
    }

    #[test]
    fn directory_names_for_repositories() {
        assert_eq!(
            dir_name("https://git.example.com/ops/fleet.git"),
            "git.example.com_ops_fleet.git"
        );
        assert_eq!(dir_name("/srv/git/fleet/"), "srv_git_fleet");
        assert_eq!(dir_name("git@host:ops/fleet.git"), "git_host_ops_fleet.git");
    }

    #[test]
    fn this_host_becomes_local_in_the_repositorys_inventory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("inventory.toml"),
            "# fleet\n[hosts.web-1]\naddress = \"10.0.0.1\"\ngroups = [\"web\"]\n[groups.web]\nvars = { port = 80 }\n",
        )
        .unwrap();
        let out = inventory(dir.path(), "web-1").unwrap();
        assert!(
            out.contains("[hosts.web-1]\ngroups = [\"web\"]\nconnection = \"local\"\n"),
            "{out}"
        );
        let inv = crate::inventory::Inventory::parse("inventory.toml", &out).unwrap();
        let h = inv.resolve("web-1").unwrap();
        assert_eq!(h.connection, crate::inventory::Connection::Local);
        assert_eq!(h.vars["port"], 80);
        let fresh = inventory(tempfile::tempdir().unwrap().path(), "box").unwrap();
        assert_eq!(fresh, "[hosts.box]\nconnection = \"local\"\n");
    }
}
