//! Signed recipes (`--require-signed`): whether the commit fleet is about to run from is
//! signed by a key the operator trusts. SSH signatures (`gpg.format=ssh`) are checked
//! against an `allowed_signers` file with `ssh-keygen -Y`, OpenPGP signatures against a
//! keyring with `gpgv`. A revision that names a signed annotated tag is accepted when the
//! tag's signature is good, else the commit's own signature decides.
//!
//! What is trusted is the signature of the commit (or tag) that runs, not the history
//! behind it: a force-pushed history whose head is signed by an allowed key runs.
//!
//! The command lines are built by pure functions; the signature and the signed data are
//! written to a private temporary directory, and nothing read from the repository
//! becomes an option of ssh-keygen or gpgv.

use git2::{ObjectType, Oid, Repository};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The keys signatures are checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    /// ssh-keygen's allowed signers file (`PRINCIPAL KEYTYPE KEY` lines).
    pub(crate) allowed_signers: Option<PathBuf>,
    /// An OpenPGP keyring (a `.gpg`/`.kbx` file of public keys) for gpgv.
    pub(crate) gpg_keyring: Option<PathBuf>,
}

/// Why a signature could not be checked at all (not a refusal: fleet or the machine
/// is missing something).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignatureError {
    #[error("cannot read {repo}: {message}")]
    Git { repo: String, message: String },
    #[error("{repo} has no commit, tag or branch `{rev}`; check the rev")]
    NoRev { repo: String, rev: String },
    #[error("cannot run {tool} to check the signature ({source}); install {package}")]
    Spawn {
        tool: &'static str,
        package: &'static str,
        source: std::io::Error,
    },
    #[error("cannot write the signature to a temporary directory: {0}")]
    Temp(std::io::Error),
    #[error(
        "the allowed signers file {0} cannot be read; deploy it (see README, pull mode) or give --allowed-signers FILE"
    )]
    AllowedSigners(String),
    #[error("the OpenPGP keyring {0} cannot be read; give --gpg-keyring FILE")]
    Keyring(String),
}

/// The kind of a signature, by its armour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Ssh,
    Pgp,
}

pub(crate) const SSH_ARMOUR: &str = "-----BEGIN SSH SIGNATURE-----";
pub(crate) const PGP_ARMOUR: &str = "-----BEGIN PGP SIGNATURE-----";

/// The format of a signature from its first line; None for anything else (X.509, junk).
pub(crate) fn format_of(signature: &str) -> Option<Format> {
    match signature.trim_start().lines().next()?.trim_end() {
        SSH_ARMOUR => Some(Format::Ssh),
        PGP_ARMOUR => Some(Format::Pgp),
        _ => None,
    }
}

/// Why a commit is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Unsigned,
    /// A valid signature by a key that is not allowed (its fingerprint when known).
    UnknownKey(Option<String>),
    BadSignature,
    /// Signed in a format fleet has no keys for (OpenPGP without a keyring, SSH without
    /// an allowed signers file, or neither).
    NoKeysFor(&'static str),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => write!(f, "is not signed"),
            Refusal::UnknownKey(Some(key)) => write!(f, "is signed by an unknown key ({key})"),
            Refusal::UnknownKey(None) => write!(f, "is signed by an unknown key"),
            Refusal::BadSignature => write!(f, "has a bad signature"),
            Refusal::NoKeysFor(what) => {
                write!(
                    f,
                    "is signed with {what}, and no keys for it are configured"
                )
            }
        }
    }
}

/// Who signed: the principal (SSH) or user id (OpenPGP), and the key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signer {
    pub(crate) principal: String,
    pub(crate) key: String,
    /// What carried the signature: `commit` or `tag v1.2`.
    pub(crate) object: String,
}

/// What a revision resolves to and whether its signature is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub(crate) commit: String,
    /// The commit's subject line, made safe for a terminal.
    pub(crate) subject: String,
    pub(crate) verdict: Result<Signer, Refusal>,
}

impl Checked {
    pub(crate) fn short(&self) -> &str {
        &self.commit[..self.commit.len().min(10)]
    }

    /// `refused: commit abc1234567 is not signed`, for the journal and stderr.
    pub(crate) fn refusal(&self) -> Option<String> {
        match &self.verdict {
            Ok(_) => None,
            Err(r) => Some(format!("refused: commit {} {r}", self.short())),
        }
    }
}

/// A private temporary directory (mode 0700), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let dir = base.join(format!("fleet-sig-{:016x}", fastrand::u64(..)));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(TempDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free temporary directory name"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path as an argument that cannot be read as an option: made absolute.
fn arg_path(p: &Path) -> OsString {
    std::path::absolute(p)
        .unwrap_or_else(|_| Path::new("/").join(p))
        .into_os_string()
}

/// `ssh-keygen -Y check-novalidate`: whether the signature is valid for the data
/// (stdin) at all, and by which key, without asking who may sign.
pub(crate) fn ssh_check_args(sig: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = ["-Y", "check-novalidate", "-n", "git", "-s"]
        .map(OsString::from)
        .to_vec();
    v.push(arg_path(sig));
    v
}

/// `ssh-keygen -Y find-principals`: the principals of `allowed` whose key made `sig`.
pub(crate) fn ssh_find_args(sig: &Path, allowed: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = ["-Y", "find-principals", "-s"].map(OsString::from).to_vec();
    v.push(arg_path(sig));
    v.push("-f".into());
    v.push(arg_path(allowed));
    v
}

/// `ssh-keygen -Y verify`: the signature over the data (stdin) is good and made by
/// `principal`'s key in `allowed`, in git's namespace. The principal follows `-I` as
/// its value (getopt), so it is never an option itself.
pub(crate) fn ssh_verify_args(sig: &Path, allowed: &Path, principal: &str) -> Vec<OsString> {
    let mut v: Vec<OsString> = ["-Y", "verify", "-f"].map(OsString::from).to_vec();
    v.push(arg_path(allowed));
    v.extend(["-I", principal, "-n", "git", "-s"].map(OsString::from));
    v.push(arg_path(sig));
    v
}

/// `gpgv`: the signature `sig` over `data`, against `keyring` only, with a private home
/// directory; machine-readable status lines on stdout.
pub(crate) fn gpgv_args(home: &Path, keyring: &Path, sig: &Path, data: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["--homedir".into(), arg_path(home)];
    v.extend(["--status-fd", "1", "--keyring"].map(OsString::from));
    v.push(arg_path(keyring));
    v.push("--".into());
    v.push(arg_path(sig));
    v.push(arg_path(data));
    v
}

/// The key of ssh-keygen's `Good "git" signature … with ED25519 key SHA256:…` line.
pub(crate) fn parse_ssh_key(out: &str) -> Option<String> {
    out.lines()
        .find(|l| l.starts_with("Good "))
        .and_then(|l| l.rsplit_once(" key "))
        .map(|(before, key)| {
            let kind = before.rsplit(' ').next().unwrap_or("");
            format!("{kind} {}", key.trim()).trim().to_string()
        })
}

/// The principals `find-principals` printed, one a line; control characters and empty
/// lines are dropped.
pub(crate) fn parse_principals(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().any(char::is_control))
        .map(str::to_string)
        .collect()
}

/// What gpgv's status lines say.
pub(crate) fn parse_gpg_status(out: &str, succeeded: bool) -> Result<(String, String), Refusal> {
    let mut good: Option<String> = None;
    let mut fingerprint: Option<String> = None;
    let mut missing: Option<String> = None;
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let mut words = rest.splitn(3, ' ');
        let (kw, first, tail) = (
            words.next().unwrap_or(""),
            words.next().unwrap_or(""),
            words.next().unwrap_or(""),
        );
        match kw {
            "GOODSIG" => good = Some(tail.to_string()),
            "VALIDSIG" => fingerprint = Some(first.to_string()),
            "NO_PUBKEY" => missing = Some(first.to_string()),
            "ERRSIG" if missing.is_none() => missing = Some(first.to_string()),
            "BADSIG" | "EXPSIG" | "EXPKEYSIG" | "REVKEYSIG" => return Err(Refusal::BadSignature),
            _ => {}
        }
    }
    if let Some(key) = missing {
        return Err(Refusal::UnknownKey((!key.is_empty()).then_some(key)));
    }
    match (succeeded, good, fingerprint) {
        (true, Some(who), Some(fpr)) => Ok((who, fpr)),
        _ => Err(Refusal::BadSignature),
    }
}

fn clean(text: &str) -> String {
    crate::ops::terminal::neutralise(text).into_owned()
}

/// A signed object split into its signature and the data it signs.
struct Signed {
    signature: String,
    data: Vec<u8>,
}

/// A tag object's signature: appended to its message, from the armour line on.
fn split_tag(raw: &[u8]) -> Option<Signed> {
    let text = std::str::from_utf8(raw).ok()?;
    let at = [SSH_ARMOUR, PGP_ARMOUR]
        .iter()
        .filter_map(|a| {
            text.match_indices(a)
                .map(|(i, _)| i)
                .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
                .last()
        })
        .max()?;
    Some(Signed {
        signature: text[at..].to_string(),
        data: raw[..at].to_vec(),
    })
}

/// The commit (and the tag, when the revision names an annotated tag) `rev` names in
/// `repo`; the default branch (HEAD) without a rev. Branches and tags are looked up by
/// name first, as `ops::git::sync` does.
fn resolve(repo: &Repository, rev: Option<&str>) -> Option<(Oid, Option<(Oid, String)>)> {
    let object = match rev {
        None => repo.head().ok()?.peel(ObjectType::Commit).ok()?,
        Some(v) => ["refs/heads/", "refs/remotes/origin/", "refs/tags/"]
            .iter()
            .find_map(|p| repo.find_reference(&format!("{p}{v}")).ok())
            // The reference's own target: a tag reference names the tag object.
            .and_then(|r| r.resolve().ok()?.target())
            .and_then(|id| repo.find_object(id, None).ok())
            .or_else(|| repo.revparse_single(v).ok())?,
    };
    let tag = object
        .as_tag()
        .map(|t| (t.id(), t.name().unwrap_or("").to_string()));
    let commit = object.peel_to_commit().ok()?.id();
    Some((commit, tag))
}

/// Checks the revision `rev` (default: HEAD) of the repository at `repo` against `keys`.
pub(crate) fn check(
    repo: &Path,
    rev: Option<&str>,
    keys: &Keys,
) -> Result<Checked, SignatureError> {
    let shown = repo.display().to_string();
    let git_err = |e: git2::Error| SignatureError::Git {
        repo: shown.clone(),
        message: e.message().to_string(),
    };
    let r = Repository::open(repo).map_err(git_err)?;
    let (commit, tag) = resolve(&r, rev).ok_or_else(|| SignatureError::NoRev {
        repo: shown.clone(),
        rev: rev.unwrap_or("HEAD").to_string(),
    })?;
    let found = r.find_commit(commit).map_err(git_err)?;
    let subject = clean(&String::from_utf8_lossy(
        found.summary_bytes().unwrap_or(b""),
    ));
    let mut first_refusal: Option<Refusal> = None;
    if let Some((tag_id, name)) = tag {
        let odb = r.odb().map_err(git_err)?;
        let raw = odb.read(tag_id).map_err(git_err)?;
        if let Some(signed) = split_tag(raw.data()) {
            match verify(&signed, keys, &format!("tag {}", clean(&name)))? {
                Ok(signer) => {
                    return Ok(Checked {
                        commit: commit.to_string(),
                        subject,
                        verdict: Ok(signer),
                    });
                }
                Err(refusal) => first_refusal = Some(refusal),
            }
        }
    }
    let verdict = match r.extract_signature(&commit, None) {
        Ok((sig, data)) => {
            let signed = Signed {
                signature: String::from_utf8_lossy(&sig).into_owned(),
                data: data.to_vec(),
            };
            verify(&signed, keys, "commit")?
        }
        Err(e) if e.code() == git2::ErrorCode::NotFound => Err(Refusal::Unsigned),
        Err(e) => return Err(git_err(e)),
    };
    // A signed tag's refusal says more than an unsigned commit's.
    let verdict = match (verdict, first_refusal) {
        (Err(Refusal::Unsigned), Some(tag_refusal)) => Err(tag_refusal),
        (v, _) => v,
    };
    Ok(Checked {
        commit: commit.to_string(),
        subject,
        verdict,
    })
}

fn run_tool(
    tool: &'static str,
    package: &'static str,
    args: &[OsString],
    stdin: Option<&Path>,
) -> Result<(bool, String), SignatureError> {
    let input = match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).map_err(SignatureError::Temp)?),
        None => Stdio::null(),
    };
    let out = Command::new(tool)
        .args(args)
        .stdin(input)
        .stderr(Stdio::null())
        .output()
        .map_err(|source| SignatureError::Spawn {
            tool,
            package,
            source,
        })?;
    // Bounded: a status or principal listing is a few lines.
    let text = String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(64 * 1024)]).into_owned();
    Ok((out.status.success(), text))
}

fn verify(
    signed: &Signed,
    keys: &Keys,
    object: &str,
) -> Result<Result<Signer, Refusal>, SignatureError> {
    let Some(format) = format_of(&signed.signature) else {
        return Ok(Err(Refusal::NoKeysFor("an unsupported signature format")));
    };
    let tmp = TempDir::new().map_err(SignatureError::Temp)?;
    let sig = tmp.0.join("signature");
    let data = tmp.0.join("data");
    std::fs::write(&sig, signed.signature.as_bytes()).map_err(SignatureError::Temp)?;
    std::fs::write(&data, &signed.data).map_err(SignatureError::Temp)?;
    match format {
        Format::Ssh => {
            let Some(allowed) = &keys.allowed_signers else {
                return Ok(Err(Refusal::NoKeysFor("an SSH key (gpg.format=ssh)")));
            };
            if std::fs::metadata(allowed).is_err() {
                return Err(SignatureError::AllowedSigners(clean(
                    &allowed.display().to_string(),
                )));
            }
            let (valid, out) = run_tool(
                "ssh-keygen",
                "openssh-client",
                &ssh_check_args(&sig),
                Some(&data),
            )?;
            if !valid {
                return Ok(Err(Refusal::BadSignature));
            }
            let key = parse_ssh_key(&out).map(|k| clean(&k));
            let (found, out) = run_tool(
                "ssh-keygen",
                "openssh-client",
                &ssh_find_args(&sig, allowed),
                None,
            )?;
            let principals = if found {
                parse_principals(&out)
            } else {
                Vec::new()
            };
            if principals.is_empty() {
                return Ok(Err(Refusal::UnknownKey(key)));
            }
            for principal in principals {
                let (good, out) = run_tool(
                    "ssh-keygen",
                    "openssh-client",
                    &ssh_verify_args(&sig, allowed, &principal),
                    Some(&data),
                )?;
                if good {
                    return Ok(Ok(Signer {
                        principal: clean(&principal),
                        key: parse_ssh_key(&out)
                            .map(|k| clean(&k))
                            .or(key)
                            .unwrap_or_default(),
                        object: object.to_string(),
                    }));
                }
            }
            Ok(Err(Refusal::BadSignature))
        }
        Format::Pgp => {
            let Some(keyring) = &keys.gpg_keyring else {
                return Ok(Err(Refusal::NoKeysFor("OpenPGP")));
            };
            if std::fs::metadata(keyring).is_err() {
                return Err(SignatureError::Keyring(clean(
                    &keyring.display().to_string(),
                )));
            }
            let home = tmp.0.join("gnupg");
            std::fs::create_dir(&home).map_err(SignatureError::Temp)?;
            let (ok, out) = run_tool(
                "gpgv",
                "gpgv",
                &gpgv_args(&home, keyring, &sig, &data),
                None,
            )?;
            Ok(parse_gpg_status(&out, ok).map(|(who, fpr)| Signer {
                principal: clean(&who),
                key: clean(&fpr),
                object: object.to_string(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn formats_by_armour() {
        assert_eq!(
            format_of("-----BEGIN SSH SIGNATURE-----\nabc\n"),
            Some(Format::Ssh)
        );
        assert_eq!(
            format_of("-----BEGIN PGP SIGNATURE-----\r\n"),
            Some(Format::Pgp)
        );
        assert_eq!(format_of("-----BEGIN SIGNED MESSAGE-----"), None);
        assert_eq!(format_of(""), None);
    }

    #[test]
    fn ssh_keygen_command_lines_take_paths_and_principal_as_values() {
        let sig = Path::new("/tmp/x/signature");
        let allowed = Path::new("/etc/fleet/allowed_signers");
        assert_eq!(
            strs(&ssh_check_args(sig)),
            [
                "-Y",
                "check-novalidate",
                "-n",
                "git",
                "-s",
                "/tmp/x/signature"
            ]
        );
        assert_eq!(
            strs(&ssh_find_args(sig, allowed)),
            [
                "-Y",
                "find-principals",
                "-s",
                "/tmp/x/signature",
                "-f",
                "/etc/fleet/allowed_signers"
            ]
        );
        assert_eq!(
            strs(&ssh_verify_args(sig, allowed, "-oProxyCommand=x")),
            [
                "-Y",
                "verify",
                "-f",
                "/etc/fleet/allowed_signers",
                "-I",
                "-oProxyCommand=x",
                "-n",
                "git",
                "-s",
                "/tmp/x/signature"
            ]
        );
        // A relative file name never reaches the tool as something that looks like an option.
        let rel = strs(&ssh_find_args(sig, Path::new("-rf")));
        assert!(
            rel[5].starts_with('/') && rel[5].ends_with("/-rf"),
            "{rel:?}"
        );
    }

    #[test]
    fn gpgv_command_line_is_private_and_ends_options() {
        assert_eq!(
            strs(&gpgv_args(
                Path::new("/tmp/x/gnupg"),
                Path::new("/etc/fleet/keyring.gpg"),
                Path::new("/tmp/x/signature"),
                Path::new("/tmp/x/data")
            )),
            [
                "--homedir",
                "/tmp/x/gnupg",
                "--status-fd",
                "1",
                "--keyring",
                "/etc/fleet/keyring.gpg",
                "--",
                "/tmp/x/signature",
                "/tmp/x/data"
            ]
        );
    }

    #[test]
    fn ssh_keygen_output_is_parsed() {
        assert_eq!(
            parse_ssh_key(
                "Good \"git\" signature for alice@example.com with ED25519 key SHA256:032sPJ8J\n"
            ),
            Some("ED25519 SHA256:032sPJ8J".into())
        );
        assert_eq!(
            parse_ssh_key("Good \"git\" signature with RSA key SHA256:abc\n"),
            Some("RSA SHA256:abc".into())
        );
        assert_eq!(parse_ssh_key("Could not verify signature.\n"), None);
        assert_eq!(
            parse_principals("alice@example.com\n\nops\x1b[2J\nbob\n"),
            ["alice@example.com", "bob"]
        );
    }

    #[test]
    fn gpgv_status_lines_decide() {
        let good = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 1234ABCD Alice <a@x>\n[GNUPG:] VALIDSIG 0123456789ABCDEF0123456789ABCDEF1234ABCD 2026-11-30 0 4 0 22 10 00 0123\n";
        assert_eq!(
            parse_gpg_status(good, true),
            Ok((
                "Alice <a@x>".to_string(),
                "0123456789ABCDEF0123456789ABCDEF1234ABCD".to_string()
            ))
        );
        assert_eq!(parse_gpg_status(good, false), Err(Refusal::BadSignature));
        assert_eq!(
            parse_gpg_status("[GNUPG:] BADSIG 1234ABCD Alice\n", false),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            parse_gpg_status(
                "[GNUPG:] ERRSIG 1234ABCD 22 10 00 1 9\n[GNUPG:] NO_PUBKEY 1234ABCD\n",
                false
            ),
            Err(Refusal::UnknownKey(Some("1234ABCD".into())))
        );
        assert_eq!(parse_gpg_status("", true), Err(Refusal::BadSignature));
    }

    #[test]
    fn refusals_read_as_the_journal_says_them() {
        let checked = |verdict| Checked {
            commit: "abc1234567890".into(),
            subject: "s".into(),
            verdict,
        };
        assert_eq!(
            checked(Err(Refusal::Unsigned)).refusal().unwrap(),
            "refused: commit abc1234567 is not signed"
        );
        assert_eq!(
            checked(Err(Refusal::UnknownKey(Some("ED25519 SHA256:x".into()))))
                .refusal()
                .unwrap(),
            "refused: commit abc1234567 is signed by an unknown key (ED25519 SHA256:x)"
        );
        assert_eq!(
            checked(Err(Refusal::BadSignature)).refusal().unwrap(),
            "refused: commit abc1234567 has a bad signature"
        );
        assert!(
            checked(Ok(Signer {
                principal: "a".into(),
                key: "k".into(),
                object: "commit".into()
            }))
            .refusal()
            .is_none()
        );
    }

    #[test]
    fn a_tags_signature_is_split_from_its_message() {
        let raw = b"object ad2f\ntype commit\ntag v1\ntagger a <a@x> 1 +0000\n\nv1\n-----BEGIN SSH SIGNATURE-----\nU1NI\n-----END SSH SIGNATURE-----\n";
        let s = split_tag(raw).unwrap();
        assert!(s.signature.starts_with(SSH_ARMOUR));
        assert!(s.data.ends_with(b"\n\nv1\n"));
        assert!(split_tag(b"object ad2f\ntype commit\ntag v1\n\nno signature\n").is_none());
        // The armour inside a line of the message is not a signature.
        assert!(split_tag(b"object a\n\nsee -----BEGIN SSH SIGNATURE----- here\n").is_none());
    }
}
