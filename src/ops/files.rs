//! Putting files on hosts safely: what is there now (hash, mode, owner), and an atomic
//! install (temporary file in the same directory, then rename) that never leaves a half
//! written file behind.

pub(crate) mod transfer;

pub(crate) use transfer::{DownloadOpts, FileOpts, download, query, write_file};

use super::shell::quote;

/// What a path holds on the host before fleet writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Existing {
    Absent,
    File {
        sha256: String,
        mode: String,
        owner: String,
    },
    /// A directory, socket, …: never overwritten.
    NotAFile,
}

/// One read: prints `absent`, `other`, or the sha256, mode and `user:group`.
pub(crate) fn inspect_cmd(path: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -f {p} ]; then sha256sum < {p} | cut -d' ' -f1 && stat -c '%a %U:%G' -- {p}; \
         elif [ -e {p} ]; then echo other; else echo absent; fi"
    )
}

/// What a command fleet runs on a host printed, when it is not what fleet expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnexpectedOutput {
    #[error("unexpected output `{0}`")]
    Output(String),
    #[error("unexpected stat output `{0}`")]
    Stat(String),
    #[error("unexpected output: no mode line")]
    NoModeLine,
    #[error("unexpected mode `{0}`")]
    Mode(String),
}

/// A file attribute from a recipe that chmod or chown would not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadAttr {
    #[error("invalid file mode `{0}`: use octal digits like \"0644\"")]
    Mode(String),
    #[error("invalid owner `{0}`: use `user` or `user:group`")]
    Owner(String),
}

pub(crate) fn parse_inspect(out: &str) -> Result<Existing, UnexpectedOutput> {
    let mut lines = out.lines();
    match lines.next().map(str::trim) {
        Some("absent") => Ok(Existing::Absent),
        Some("other") => Ok(Existing::NotAFile),
        Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let stat = lines.next().unwrap_or_default();
            let (mode, owner) = stat
                .split_once(' ')
                .ok_or_else(|| UnexpectedOutput::Stat(stat.to_string()))?;
            Ok(Existing::File {
                sha256: hash.to_string(),
                mode: normalize_mode(mode),
                owner: owner.trim().to_string(),
            })
        }
        other => Err(UnexpectedOutput::Output(
            other.unwrap_or_default().to_string(),
        )),
    }
}

/// `644` and `0644` are the same mode.
pub(crate) fn normalize_mode(mode: &str) -> String {
    let m = mode.trim().trim_start_matches('0');
    if m.is_empty() {
        "0".into()
    } else {
        m.to_string()
    }
}

/// A mode must be octal digits, e.g. `0644` or `600`.
pub(crate) fn validate_mode(mode: &str) -> Result<(), BadAttr> {
    let m = mode.trim();
    if m.is_empty() || m.len() > 4 || !m.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(BadAttr::Mode(mode.to_string()));
    }
    Ok(())
}

/// `user` or `user:group`, as chown takes it.
pub(crate) fn validate_owner(owner: &str) -> Result<(), BadAttr> {
    let ok = !owner.is_empty()
        && owner.split(':').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok && owner.matches(':').count() <= 1 {
        Ok(())
    } else {
        Err(BadAttr::Owner(owner.to_string()))
    }
}

/// The temporary name next to `path`, so the final rename stays on one filesystem.
pub(crate) fn temp_path(path: &str, token: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
        None => (".", path),
    };
    let sep = if dir.ends_with('/') { "" } else { "/" };
    format!("{dir}{sep}.{name}.fleet-{token}")
}

/// Reads the new content from stdin into a temporary file, sets mode and owner, and
/// renames it over `path`; the temporary file is removed if any step fails. With a
/// mode, the temporary file is created 0600 (umask 077) and only then given its mode,
/// so content meant to be private is never readable by others while it is written.
pub(crate) fn install_cmd(
    path: &str,
    tmp: &str,
    mode: Option<&str>,
    owner: Option<&str>,
) -> String {
    let (p, t) = (quote(path), quote(tmp));
    let mut steps = Vec::new();
    if let Some(m) = mode {
        steps.push("umask 077".to_string());
        steps.push(format!("cat > {t}"));
        steps.push(format!("chmod {} {t}", quote(m)));
    } else {
        steps.push(format!("cat > {t}"));
    }
    if let Some(o) = owner {
        steps.push(format!("chown {} {t}", quote(o)));
    }
    steps.push(format!("mv -f {t} {p}"));
    format!(
        "{{ {}; }} || {{ rc=$?; rm -f {t}; exit $rc; }}",
        steps.join(" && ")
    )
}

/// Mode and owner of a file whose content is already right.
pub(crate) fn attrs_cmd(path: &str, mode: Option<&str>, owner: Option<&str>) -> Option<String> {
    let p = quote(path);
    let mut steps = Vec::new();
    if let Some(m) = mode {
        steps.push(format!("chmod {} {p}", quote(m)));
    }
    if let Some(o) = owner {
        steps.push(format!("chown {} {p}", quote(o)));
    }
    (!steps.is_empty()).then(|| steps.join(" && "))
}

pub(crate) fn cat_cmd(path: &str) -> String {
    format!("cat -- {}", quote(path))
}

/// The mode of content written without a `mode` option: 0600 when it holds a secret
/// (the remote umask would make it 0644, readable by every user of the host), else none
/// (the umask decides, as for any new file).
pub(crate) fn default_mode(mode: Option<&str>, holds_secret: bool) -> Option<&str> {
    match mode {
        Some(m) => Some(m),
        None if holds_secret => Some("0600"),
        None => None,
    }
}

/// One round trip for a download: the file's mode on the first line, then its bytes.
pub(crate) fn read_with_mode_cmd(path: &str) -> String {
    let p = quote(path);
    format!("stat -c %a -- {p} && cat -- {p}")
}

/// Splits what [`read_with_mode_cmd`] printed into the permission bits (setuid, setgid
/// and sticky dropped: a copy on the controller should not carry them) and the bytes.
pub(crate) fn parse_mode_and_content(out: &[u8]) -> Result<(u32, &[u8]), UnexpectedOutput> {
    let nl = out
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(UnexpectedOutput::NoModeLine)?;
    let first = String::from_utf8_lossy(&out[..nl]);
    let mode = u32::from_str_radix(first.trim(), 8)
        .map_err(|_| UnexpectedOutput::Mode(first.trim().to_string()))?;
    Ok((mode & 0o777, &out[nl + 1..]))
}

/// Hex sha256, as `sha256sum` prints it.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What must change to make `path` hold `sha256` with `mode`/`owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) content: bool,
    pub(crate) mode: bool,
    pub(crate) owner: bool,
}

impl Plan {
    pub(crate) fn changes(&self) -> bool {
        self.content || self.mode || self.owner
    }
}

pub(crate) fn plan(
    existing: &Existing,
    sha256: &str,
    mode: Option<&str>,
    owner: Option<&str>,
) -> Plan {
    match existing {
        Existing::File {
            sha256: have,
            mode: have_mode,
            owner: have_owner,
        } => Plan {
            content: have != sha256,
            mode: mode.is_some_and(|m| normalize_mode(m) != *have_mode),
            owner: owner.is_some_and(|o| {
                if o.contains(':') {
                    o != have_owner
                } else {
                    have_owner.split(':').next() != Some(o)
                }
            }),
        },
        _ => Plan {
            content: true,
            mode: mode.is_some(),
            owner: owner.is_some(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_output_is_parsed() {
        let hash = "a".repeat(64);
        assert_eq!(
            parse_inspect(&format!("{hash}\n644 root:root\n")).unwrap(),
            Existing::File {
                sha256: hash,
                mode: "644".into(),
                owner: "root:root".into()
            }
        );
        assert_eq!(parse_inspect("absent\n").unwrap(), Existing::Absent);
        assert_eq!(parse_inspect("other\n").unwrap(), Existing::NotAFile);
        assert!(parse_inspect("garbage").is_err());
    }

    #[test]
    fn temp_files_stay_in_the_target_directory() {
        assert_eq!(temp_path("/etc/motd", "x1"), "/etc/.motd.fleet-x1");
        assert_eq!(temp_path("motd", "x1"), "./.motd.fleet-x1");
        assert_eq!(temp_path("/motd", "x1"), "/.motd.fleet-x1");
    }

    #[test]
    fn install_is_atomic_and_cleans_up() {
        assert_eq!(
            install_cmd("/etc/my file", "/etc/.my file.fleet-1", Some("0600"), None),
            "{ umask 077 && cat > '/etc/.my file.fleet-1' && chmod 0600 '/etc/.my file.fleet-1' && mv -f '/etc/.my file.fleet-1' '/etc/my file'; } || { rc=$?; rm -f '/etc/.my file.fleet-1'; exit $rc; }"
        );
        assert_eq!(
            install_cmd("/etc/motd", "/etc/.motd.fleet-1", None, None),
            "{ cat > /etc/.motd.fleet-1 && mv -f /etc/.motd.fleet-1 /etc/motd; } || { rc=$?; rm -f /etc/.motd.fleet-1; exit $rc; }"
        );
    }

    #[test]
    fn write_of_secret_content_is_0600() {
        assert_eq!(default_mode(None, true), Some("0600"));
        assert_eq!(default_mode(None, false), None);
        // An explicit mode is what the recipe asked for, secret or not.
        assert_eq!(default_mode(Some("0640"), true), Some("0640"));
    }

    #[test]
    fn download_keeps_remote_mode() {
        assert_eq!(
            parse_mode_and_content(b"600\nkey\n\0").unwrap(),
            (0o600, b"key\n\0".as_slice())
        );
        assert_eq!(parse_mode_and_content(b"4755\n").unwrap().0, 0o755);
        assert!(parse_mode_and_content(b"rw-\nx").is_err());
        assert!(parse_mode_and_content(b"600").is_err());
    }

    #[test]
    fn plans_only_what_differs() {
        let existing = Existing::File {
            sha256: sha256_hex(b"hi"),
            mode: "644".into(),
            owner: "root:root".into(),
        };
        assert!(!plan(&existing, &sha256_hex(b"hi"), Some("0644"), Some("root")).changes());
        assert!(plan(&existing, &sha256_hex(b"hi"), Some("600"), None).mode);
        assert!(plan(&existing, &sha256_hex(b"ho"), None, None).content);
        assert!(plan(&existing, &sha256_hex(b"hi"), None, Some("www-data")).owner);
        assert!(plan(&Existing::Absent, "x", None, None).content);
    }

    #[test]
    fn modes_and_owners_are_validated() {
        assert!(validate_mode("0644").is_ok());
        assert!(validate_mode("rw-r--r--").is_err());
        assert!(validate_mode("0999").is_err());
        assert!(validate_owner("www-data:www-data").is_ok());
        assert!(validate_owner("a;rm").is_err());
    }

    #[test]
    fn sha256_matches_sha256sum() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
