//! Pull mode with signed recipes (`fleet pull --require-signed`, `require_signed = true`
//! in the pull directory's `pull.toml`; `fleet pull verify`): the fetched revision is
//! checked in the source repository (the local path, or `mirror.git`) before the
//! checkout moves; a refused one leaves the checkout at the last verified commit (kept
//! in `DIR/verified`), which runs instead, with the refusal in its journal record.
//!
//! The settings are the host's own: `DIR/pull.toml`, never the repository's fleet.toml
//! (whoever can push to it must not be able to switch the check off).

use crate::error::{Error, Result};
use crate::ops::signatures::{self, Checked, Keys};
use std::path::{Path, PathBuf};

/// The settings file in the pull directory.
pub(crate) const SETTINGS: &str = "pull.toml";
/// The last verified commit, in the pull directory.
pub(crate) const VERIFIED: &str = "verified";
/// The allowed signers file used when none is named, in the pull directory.
pub(crate) const ALLOWED_SIGNERS: &str = "allowed_signers";

/// `--require-signed`, `--allowed-signers FILE`, `--gpg-keyring FILE` as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct SignedArgs {
    pub(crate) require_signed: bool,
    pub(crate) allowed_signers: Option<PathBuf>,
    pub(crate) gpg_keyring: Option<PathBuf>,
}

impl SignedArgs {
    pub(crate) fn of(g: &crate::cli::GlobalArgs) -> Self {
        SignedArgs {
            require_signed: g.require_signed,
            allowed_signers: g.allowed_signers.clone(),
            gpg_keyring: g.gpg_keyring.clone(),
        }
    }
}

/// `DIR/pull.toml`: this host's pull settings.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    require_signed: bool,
    allowed_signers: Option<PathBuf>,
    gpg_keyring: Option<PathBuf>,
}

fn settings(base: &Path) -> Result<Settings> {
    let path = base.join(SETTINGS);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => return Err(Error::read(&path)(e)),
    };
    toml::from_str(&text).map_err(|e| {
        Error::usage_with_help(
            format!("{}: {}", path.display(), e.message()),
            "it may set require_signed = true, allowed_signers = \"FILE\", gpg_keyring = \"FILE\"",
        )
    })
}

/// The keys to check the pulled revision against, or None when signatures are not
/// required. The flags win over `pull.toml`; relative files in it are relative to the
/// pull directory; without an allowed signers file `DIR/allowed_signers` is used.
pub(crate) fn keys(base: &Path, args: &SignedArgs) -> Result<Option<Keys>> {
    let s = settings(base)?;
    if !(args.require_signed || s.require_signed) {
        return Ok(None);
    }
    let allowed_signers = args
        .allowed_signers
        .clone()
        .or(s.allowed_signers.map(|p| base.join(p)))
        .unwrap_or_else(|| base.join(ALLOWED_SIGNERS));
    let gpg_keyring = args
        .gpg_keyring
        .clone()
        .or(s.gpg_keyring.map(|p| base.join(p)));
    Ok(Some(Keys {
        allowed_signers: Some(allowed_signers),
        gpg_keyring,
    }))
}

/// The commit that last passed the check on this host.
pub(crate) fn last_verified(base: &Path) -> Option<String> {
    let text = std::fs::read_to_string(base.join(VERIFIED)).ok()?;
    let id = text.trim();
    (id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

pub(crate) fn record_verified(base: &Path, commit: &str) -> Result<()> {
    let path = base.join(VERIFIED);
    crate::ops::localfs::write_local(&path, format!("{commit}\n").as_bytes())
        .map_err(Error::write(&path))
}

/// What pull mode checks out and runs under `--require-signed`.
#[derive(Debug)]
pub(crate) struct Choice {
    /// The commit to check out: the pulled one when it passed, else the last verified.
    pub(crate) commit: String,
    /// Why the pulled commit was not taken.
    pub(crate) refused: Option<String>,
}

/// Checks `rev` of the source repository; the commit to run. An error when the pulled
/// commit is refused and no commit was ever verified here.
pub(crate) fn choose(source: &str, rev: Option<&str>, base: &Path, keys: &Keys) -> Result<Choice> {
    let checked = match signatures::check(&source_path(source), rev, keys) {
        Ok(c) => c,
        // The source cannot be read (a local repository gone): as without
        // --require-signed, the last good checkout runs, which is the last verified.
        Err(
            e @ (signatures::SignatureError::Git { .. } | signatures::SignatureError::NoRev { .. }),
        ) => {
            let Some(last) = last_verified(base) else {
                return Err(Error::usage(e.to_string()));
            };
            eprintln!(
                "warning: {}; running the last verified commit {}",
                crate::ops::terminal::neutralise(&e.to_string()),
                &last[..10]
            );
            return Ok(Choice {
                commit: last,
                refused: None,
            });
        }
        Err(e) => return Err(Error::usage(e.to_string())),
    };
    match (&checked.verdict, checked.refusal()) {
        (Ok(signer), _) => {
            eprintln!(
                "verified {} ({}): {} signed by {} ({})",
                checked.short(),
                checked.subject,
                signer.object,
                signer.principal,
                signer.key
            );
            Ok(Choice {
                commit: checked.commit.clone(),
                refused: None,
            })
        }
        (Err(_), refusal) => {
            let refusal = refusal.unwrap_or_default();
            match last_verified(base) {
                Some(last) if last == checked.commit => Err(Error::usage(refusal)),
                Some(last) => {
                    eprintln!(
                        "error: {refusal}; running the last verified commit {} instead",
                        &last[..10]
                    );
                    Ok(Choice {
                        commit: last,
                        refused: Some(refusal),
                    })
                }
                None => Err(Error::usage_with_help(
                    format!(
                        "{refusal}; no commit was verified on this host before, so nothing runs"
                    ),
                    "sign the commit (git commit -S with gpg.format=ssh) with a key of the allowed signers file",
                )),
            }
        }
    }
}

/// The source repository of a pull: the local repository, or the mirror.
pub(crate) fn source_path(source: &str) -> PathBuf {
    crate::ops::git::local_source(source).unwrap_or_else(|| PathBuf::from(source))
}

/// After the checkout: it must be at the chosen commit (a source that could not be read
/// leaves it where it was, which may be an unverified commit of a run before
/// --require-signed); a pulled commit that passed becomes the last verified one.
pub(crate) fn checked_out(base: &Path, choice: &Choice, commit: &str) -> Result<()> {
    if commit != choice.commit {
        return Err(Error::usage(format!(
            "the checkout is at {commit}, not at the verified commit {}: nothing runs",
            choice.commit
        )));
    }
    if choice.refused.is_none() {
        record_verified(base, commit)?;
    }
    Ok(())
}

/// A run of the last verified commit after a refusal ends non-zero even when the run
/// went well: 2 (the run's own code when it is not 0).
pub(crate) fn exit_code(choice: Option<&Choice>, code: i32) -> i32 {
    match choice {
        Some(Choice {
            refused: Some(_), ..
        }) if code == crate::error::exit::OK => crate::error::exit::USAGE,
        _ => code,
    }
}

/// `fleet pull verify`: fetches as `fleet pull` does (the mirror, never the checkout)
/// and prints what would run and who signed it.
pub(crate) fn verify(app: &crate::App, v: crate::cli::PullVerify) -> Result<i32> {
    let (repo, rev, recipe) = (v.repo.as_str(), v.rev.as_deref(), v.recipe.as_deref());
    let signed = SignedArgs {
        require_signed: true,
        allowed_signers: v.allowed_signers,
        gpg_keyring: v.gpg_keyring,
    };
    let dir = v.dir;
    let base = dir.unwrap_or_else(|| {
        app.project
            .data_dir()
            .join("pull")
            .join(super::pull::dir_name(repo))
    });
    std::fs::create_dir_all(&base).map_err(Error::write(&base))?;
    let base = base.canonicalize().map_err(Error::read(&base))?;
    let source = match crate::ops::git::local_source(repo) {
        Some(_) => repo.to_string(),
        None => {
            let (mirror, warning) = super::pull::mirror(repo, &base)?;
            if let Some(w) = warning {
                eprintln!("warning: {}", crate::ops::terminal::neutralise(&w));
            }
            mirror
        }
    };
    let keys = keys(&base, &signed)?.unwrap_or_default();
    let checked = signatures::check(&source_path(&source), rev, &keys)
        .map_err(|e| Error::usage(e.to_string()))?;
    Ok(print_verdict(&checked, recipe, repo))
}

/// `fleet pull verify`: what `fleet pull` would run and who signed it; exit 0 when it
/// would run, 2 when it would be refused.
pub(crate) fn print_verdict(checked: &Checked, recipe: Option<&str>, repo: &str) -> i32 {
    println!("repository: {}", crate::ops::terminal::neutralise(repo));
    println!("commit:     {}", checked.commit);
    println!("subject:    {}", checked.subject);
    if let Some(r) = recipe {
        println!("recipe:     {}", crate::ops::terminal::neutralise(r));
    }
    match &checked.verdict {
        Ok(signer) => {
            println!("signed:     {} by {}", signer.object, signer.principal);
            println!("key:        {}", signer.key);
            crate::error::exit::OK
        }
        Err(_) => {
            println!("{}", checked.refusal().unwrap_or_default());
            crate::error::exit::USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_flags_make_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        assert_eq!(keys(base, &SignedArgs::default()).unwrap(), None);
        let flag = SignedArgs {
            require_signed: true,
            ..Default::default()
        };
        assert_eq!(
            keys(base, &flag).unwrap(),
            Some(Keys {
                allowed_signers: Some(base.join("allowed_signers")),
                gpg_keyring: None
            })
        );
        std::fs::write(
            base.join(SETTINGS),
            "require_signed = true\nallowed_signers = \"keys/signers\"\ngpg_keyring = \"/etc/k.gpg\"\n",
        )
        .unwrap();
        assert_eq!(
            keys(base, &SignedArgs::default()).unwrap(),
            Some(Keys {
                allowed_signers: Some(base.join("keys/signers")),
                gpg_keyring: Some("/etc/k.gpg".into())
            })
        );
        let given = SignedArgs {
            allowed_signers: Some("/etc/fleet/signers".into()),
            ..Default::default()
        };
        assert_eq!(
            keys(base, &given).unwrap().unwrap().allowed_signers,
            Some("/etc/fleet/signers".into())
        );
        std::fs::write(base.join(SETTINGS), "require_signd = true\n").unwrap();
        let err = keys(base, &SignedArgs::default()).unwrap_err().to_string();
        assert!(
            err.contains("pull.toml") && err.contains("require_signd"),
            "{err}"
        );
    }

    #[test]
    fn only_a_commit_id_counts_as_verified() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_verified(dir.path()), None);
        std::fs::write(dir.path().join(VERIFIED), "--upload-pack=x\n").unwrap();
        assert_eq!(last_verified(dir.path()), None);
        let id = "0123456789abcdef0123456789abcdef01234567";
        record_verified(dir.path(), id).unwrap();
        assert_eq!(last_verified(dir.path()).as_deref(), Some(id));
    }
}
