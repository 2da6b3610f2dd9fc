//! `--require-signed` on the controller: the recipes of `--recipes-rev REV`, of the
//! commit `fleet replay` reruns, and the `--catalog-repo` checkouts run only when the
//! commit (or the annotated tag REV names) is signed by an allowed key
//! (`ops::signatures`). The work tree is never signed, so without a revision the
//! recipes are refused.

use crate::App;
use crate::error::{Error, Result};
use crate::ops::signatures::{self, Keys};
use std::path::Path;

/// The keys to check against, or None when signed recipes are not required: the
/// command line's, else fleet.toml's (`require_signed`, `allowed_signers`,
/// `gpg_keyring`, relative to the project root).
pub(crate) fn keys(app: &App) -> Option<Keys> {
    let (g, c) = (&app.global, &app.project.config);
    if !(g.require_signed || c.require_signed) {
        return None;
    }
    let root = &app.project.root;
    Some(Keys {
        allowed_signers: g
            .allowed_signers
            .clone()
            .or_else(|| c.allowed_signers.as_ref().map(|p| root.join(p))),
        gpg_keyring: g
            .gpg_keyring
            .clone()
            .or_else(|| c.gpg_keyring.as_ref().map(|p| root.join(p))),
    })
}

/// Checks revision `rev` of the repository `repo` (`what`: how the user named it, for
/// messages); Ok when it is signed by an allowed key, saying who signed it (unless
/// `quiet`, for cron).
pub(crate) fn require(repo: &Path, rev: &str, keys: &Keys, what: &str, quiet: bool) -> Result<()> {
    let checked =
        signatures::check(repo, Some(rev), keys).map_err(|e| Error::usage(e.to_string()))?;
    match (&checked.verdict, checked.refusal()) {
        (Ok(_), _) if quiet => Ok(()),
        (Ok(signer), _) => {
            eprintln!(
                "verified {what} {} ({}): {} signed by {} ({})",
                checked.short(),
                checked.subject,
                signer.object,
                signer.principal,
                signer.key
            );
            Ok(())
        }
        (Err(_), refusal) => Err(Error::usage_with_help(
            format!("{what}: {}", refusal.unwrap_or_default()),
            "--require-signed runs only commits or annotated tags signed by a key of the allowed signers file (--allowed-signers) or the OpenPGP keyring (--gpg-keyring)",
        )),
    }
}

/// The commit of a checkout's source (`url`, a local repository) at `rev` (default: its
/// HEAD), when it is signed by an allowed key: what `--catalog-repo` and `git::checkout`
/// check out under `--require-signed`.
pub(crate) fn verified_commit(url: &str, rev: Option<&str>, keys: &Keys) -> Result<String> {
    let Some(repo) = crate::ops::git::local_source(url) else {
        return Err(Error::usage(format!(
            "cannot check the signature of {url}: fleet reaches only local repositories"
        )));
    };
    let checked = signatures::check(&repo, rev, keys).map_err(|e| Error::usage(e.to_string()))?;
    match checked.refusal() {
        None => Ok(checked.commit),
        Some(refusal) => Err(Error::usage_with_help(
            format!("{url}: {refusal}"),
            "--require-signed checks out only commits or annotated tags signed by an allowed key",
        )),
    }
}

/// A recipe run under `--require-signed`: its `--recipes-rev` must be signed.
pub(crate) fn require_recipes(app: &App, rev: Option<&str>) -> Result<()> {
    let Some(keys) = keys(app) else {
        return Ok(());
    };
    let Some(rev) = rev else {
        return Err(Error::usage_with_help(
            "--require-signed: the recipes of the work tree are not signed",
            "give --recipes-rev REV, a signed commit or annotated tag of the project's repository",
        ));
    };
    let (repo, _) = crate::recipe::sources::repo_of(&app.project.root)?;
    let quiet = app.global.verbosity() < 0;
    require(&repo, rev, &keys, &format!("--recipes-rev {rev}"), quiet)
}
