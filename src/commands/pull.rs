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
    match git(
        &[
            "push",
            "--force",
            "--quiet",
            &a.repo,
            &format!("HEAD:{branch}"),
        ],
        Some(&state),
    ) {
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

/// `fleet pull enroll`: for now the script to run on a host (`--print`).
pub(crate) fn enroll(
    _pattern: &str,
    repo: &str,
    recipe: &str,
    interval: &str,
    push_results: Option<&str>,
    print: bool,
) -> Result<i32> {
    let plan = crate::ops::enroll::Enrollment::new(repo, recipe, interval, push_results)
        .map_err(|e| Error::usage(e.to_string()))?;
    if !print {
        return Err(Error::usage_with_help(
            "enrolling hosts over SSH is not built yet",
            "give --print for the shell script to run as root on each host",
        ));
    }
    print!("{}", plan.script());
    Ok(0)
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
