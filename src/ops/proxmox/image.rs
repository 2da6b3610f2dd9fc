//! Cloud images and container templates fetched by a node: the URL, file name, storage
//! and checksum judged here; the file downloaded with `curl` next to its place in the
//! storage's directory (`pvesh get /storage/ID`), its SHA-512 verified, then moved in.
//! A file already there with the wanted checksum (or, without one, any file of that
//! name) is not downloaded again.

use super::is_pve_id;
use super::procedures::fail;
use crate::ops::remote::{CommandOpts, Remote};
use crate::ops::shell::Argv;
use crate::outcome::HostError;

/// Why a fetch cannot start; found before anything is sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field} `{value}`: {problem}")]
pub(crate) struct FetchError {
    field: &'static str,
    value: String,
    problem: &'static str,
}

fn bad(field: &'static str, value: &str, problem: &'static str) -> FetchError {
    FetchError {
        field,
        value: crate::ops::text::shown(value),
        problem,
    }
}

/// What a fetch is, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fetch {
    pub(crate) url: String,
    pub(crate) file: String,
    pub(crate) storage: String,
    /// Lowercase hex.
    pub(crate) sha512: Option<String>,
    /// `iso` (disk images) or `vztmpl` (container templates), from the file name.
    pub(crate) content: &'static str,
}

const TEMPLATE_SUFFIXES: &[&str] = &[".tar.gz", ".tar.xz", ".tar.zst"];
const IMAGE_SUFFIXES: &[&str] = &[".img", ".qcow2", ".raw", ".iso"];

impl Fetch {
    pub(crate) fn new(url: &str, storage: &str, sha512: Option<&str>) -> Result<Fetch, FetchError> {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| bad("url", url, "must start with http:// or https://"))?;
        if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "url",
                url,
                "must not hold spaces or control characters",
            ));
        }
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let file = path.rsplit_once('/').map_or("", |(_, f)| f);
        if file.is_empty()
            || file.starts_with(['.', '-'])
            || !file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        {
            return Err(bad(
                "url",
                url,
                "must end in a file name (letters, digits, `.`, `_`, `-`, `+`)",
            ));
        }
        let content = if TEMPLATE_SUFFIXES.iter().any(|s| file.ends_with(s)) {
            "vztmpl"
        } else if IMAGE_SUFFIXES.iter().any(|s| file.ends_with(s)) {
            "iso"
        } else {
            return Err(bad(
                "url",
                url,
                "names neither a disk image (.img, .qcow2, .raw, .iso) nor a container template (.tar.gz, .tar.xz, .tar.zst)",
            ));
        };
        if !is_pve_id(storage) {
            return Err(bad("storage", storage, "is not a storage ID"));
        }
        let sha512 = sha512
            .map(|s| {
                let s = s.trim().to_ascii_lowercase();
                if s.len() == 128 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(s)
                } else {
                    Err(bad("sha512", &s, "must be 128 hex digits"))
                }
            })
            .transpose()?;
        Ok(Fetch {
            url: url.to_string(),
            file: file.to_string(),
            storage: storage.to_string(),
            sha512,
            content,
        })
    }

    /// The folder of a `dir`-type storage where this content lives.
    pub(crate) fn folder(&self, storage_path: &str) -> String {
        let sub = if self.content == "vztmpl" {
            "template/cache"
        } else {
            "template/iso"
        };
        format!("{}/{sub}", storage_path.trim_end_matches('/'))
    }

    /// The volume ID Proxmox gives the file (`local:iso/x.img`).
    pub(crate) fn volid(&self) -> String {
        format!("{}:{}/{}", self.storage, self.content, self.file)
    }
}

pub(crate) fn storage_argv(storage: &str) -> Argv {
    Argv::new("pvesh")
        .arg("get")
        .arg(format!("/storage/{storage}"))
        .arg("--output-format")
        .arg("json")
}

/// `curl` that fails on HTTP errors, follows redirects only to http(s), and writes `to`.
pub(crate) fn download_argv(url: &str, to: &str) -> Argv {
    Argv::new("curl")
        .arg("-fsSL")
        .arg("--proto")
        .arg("=http,https")
        .arg("--proto-redir")
        .arg("=http,https")
        .arg("-o")
        .arg(to)
        .arg("--")
        .arg(url)
}

pub(crate) fn sha512_argv(path: &str) -> Argv {
    Argv::new("sha512sum").arg("--").arg(path)
}

/// The storage's directory and content types from `pvesh get /storage/ID` (JSON).
pub(crate) fn parse_storage(json: &str) -> Option<(Option<String>, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let path = v["path"].as_str().map(str::to_string);
    let content = v["content"]
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    Some((path, content))
}

/// The SHA-512 of a node-side file; None when it is not there.
fn sum_of(node: &dyn Remote, path: &str) -> Result<Option<String>, HostError> {
    let r = node.program(&sha512_argv(path), CommandOpts::QUERY)?;
    Ok((r.code == 0)
        .then(|| r.stdout.split_whitespace().next().map(str::to_string))
        .flatten())
}

/// What a fetch did: the file's path on the node and whether it was downloaded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fetched {
    pub(crate) path: String,
    pub(crate) volid: String,
    pub(crate) downloaded: bool,
}

/// Makes the node hold the file of `fetch` in its storage.
pub(crate) fn fetch(node: &dyn Remote, fetch: &Fetch) -> Result<Fetched, HostError> {
    let argv = storage_argv(&fetch.storage);
    let r = node.program(&argv, CommandOpts::QUERY)?;
    if r.code != 0 {
        return Err(fail(
            node,
            format!(
                "storage {} on {}: {}",
                fetch.storage,
                node.name(),
                r.stderr.trim()
            ),
        ));
    }
    let (path, content) = parse_storage(&r.stdout).ok_or_else(|| {
        fail(
            node,
            format!("`{}` printed something not JSON", argv.line()),
        )
    })?;
    if !content.iter().any(|c| c == fetch.content) {
        return Err(fail(
            node,
            format!(
                "storage {} on {} does not hold {} (enable it with `pvesm set {} --content …,{}`)",
                fetch.storage,
                node.name(),
                fetch.content,
                fetch.storage,
                fetch.content
            ),
        ));
    }
    let Some(root) = path else {
        return Err(fail(
            node,
            format!(
                "storage {} on {} has no directory (not a dir/nfs/cifs storage): pick one with --storage",
                fetch.storage,
                node.name()
            ),
        ));
    };
    let folder = fetch.folder(&root);
    let target = format!("{folder}/{}", fetch.file);
    let done = |downloaded| Fetched {
        path: target.clone(),
        volid: fetch.volid(),
        downloaded,
    };
    // Without a checksum to compare, a file of that name is enough (no read of GiBs).
    let present = match &fetch.sha512 {
        Some(_) => sum_of(node, &target)?,
        None => (node
            .program(
                &Argv::new("test").arg("-f").arg(&target),
                CommandOpts::QUERY,
            )?
            .code
            == 0)
            .then(String::new),
    };
    if let Some(have) = present {
        match &fetch.sha512 {
            Some(want) if &have != want => {
                return Err(fail(
                    node,
                    format!(
                        "{target} on {} is there with another SHA-512 ({have}); remove it first if it should be replaced",
                        node.name()
                    ),
                ));
            }
            _ => {
                node.out(&format!("{} is already there", fetch.volid()));
                return Ok(done(false));
            }
        }
    }
    // Next to its place, so the move is a rename; a name Proxmox does not list.
    let part = format!("{folder}/.fleet-{}.part", fetch.file);
    node.activity(&format!("downloading {}", fetch.url));
    node.program(
        &Argv::new("mkdir").arg("-p").arg("--").arg(&folder),
        CommandOpts::CHANGE,
    )?;
    let remove = Argv::new("rm").arg("-f").arg("--").arg(&part);
    let got = node.program(
        &download_argv(&fetch.url, &part),
        CommandOpts {
            allow_fail: true,
            ..CommandOpts::CHANGE
        },
    )?;
    if got.code != 0 {
        let _ = node.program(&remove, CommandOpts::CHANGE);
        return Err(fail(
            node,
            format!(
                "downloading {} on {} failed (curl exit {}): {}; nothing was put in place",
                fetch.url,
                node.name(),
                got.code,
                got.stderr.trim()
            ),
        ));
    }
    if let Some(want) = &fetch.sha512
        && !node.check_mode()
    {
        let have = sum_of(node, &part)?.unwrap_or_default();
        if &have != want {
            let _ = node.program(&remove, CommandOpts::CHANGE);
            return Err(fail(
                node,
                format!(
                    "{} has SHA-512 {have}, not {want}; the download was removed, nothing was put in place",
                    fetch.url
                ),
            ));
        }
    }
    node.program(
        &Argv::new("mv").arg("-f").arg("--").arg(&part).arg(&target),
        CommandOpts::CHANGE,
    )?;
    Ok(done(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::remote::fake::Scripted;

    const SUM: &str = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
    const STORAGE: &str = r#"{"content":"iso,vztmpl,snippets","digest":"x","path":"/var/lib/vz","storage":"local","type":"dir"}"#;

    fn f(sha: Option<&str>) -> Fetch {
        Fetch::new(
            "https://cloud.debian.org/images/debian-13-genericcloud-amd64.qcow2?x=1",
            "local",
            sha,
        )
        .unwrap()
    }

    #[test]
    fn urls_names_and_sums_are_judged() {
        let x = f(Some(&SUM.to_uppercase()));
        assert_eq!(x.file, "debian-13-genericcloud-amd64.qcow2");
        assert_eq!(x.content, "iso");
        assert_eq!(x.sha512.as_deref(), Some(SUM));
        assert_eq!(x.folder("/var/lib/vz/"), "/var/lib/vz/template/iso");
        assert_eq!(x.volid(), "local:iso/debian-13-genericcloud-amd64.qcow2");
        let t = Fetch::new(
            "http://h/debian-12-standard_12.7-1_amd64.tar.zst",
            "local",
            None,
        )
        .unwrap();
        assert_eq!(
            (t.content, t.folder("/v").as_str()),
            ("vztmpl", "/v/template/cache")
        );
        let err =
            |u: &str, s: &str, sum: Option<&str>| Fetch::new(u, s, sum).unwrap_err().to_string();
        assert!(err("ftp://h/a.img", "local", None).contains("must start with http://"));
        assert!(err("http://h/a b.img", "local", None).contains("spaces"));
        assert!(err("http://h/", "local", None).contains("must end in a file name"));
        assert!(err("http://h/-rf.img", "local", None).contains("must end in a file name"));
        assert!(err("http://h/..", "local", None).contains("must end in a file name"));
        assert!(err("http://h/a.exe", "local", None).contains("names neither"));
        assert!(err("http://h/a.img", "lo cal", None).contains("storage `lo cal`"));
        assert!(
            err("http://h/a.img", "local", Some("abc"))
                .contains("sha512 `abc`: must be 128 hex digits")
        );
        assert_eq!(
            err("http://h/\u{1b}[2J.img", "local", None),
            "url `http://h/\\u{1b}[2J.img`: must not hold spaces or control characters"
        );
    }

    #[test]
    fn golden_argv() {
        assert_eq!(
            storage_argv("local").line(),
            "pvesh get /storage/local --output-format json"
        );
        assert_eq!(
            download_argv("https://h/a.img", "/v/template/iso/.fleet-a.img.part").line(),
            "curl -fsSL --proto =http,https --proto-redir =http,https -o /v/template/iso/.fleet-a.img.part -- https://h/a.img"
        );
        assert_eq!(sha512_argv("/v/a.img").line(), "sha512sum -- /v/a.img");
    }

    const TARGET: &str = "/var/lib/vz/template/iso/debian-13-genericcloud-amd64.qcow2";
    const PART: &str = "/var/lib/vz/template/iso/.fleet-debian-13-genericcloud-amd64.qcow2.part";

    #[test]
    fn a_download_is_verified_before_it_is_moved_in() {
        let sum_line = format!("{SUM}  {PART}\n");
        let node = Scripted::new(&[
            ("pvesh get /storage/local", 0, STORAGE),
            ("sha512sum -- /var/lib/vz/template/iso/debian", 1, ""),
            ("mkdir -p -- /var/lib/vz/template/iso", 0, ""),
            ("curl -fsSL", 0, ""),
            (
                "sha512sum -- /var/lib/vz/template/iso/.fleet-",
                0,
                &sum_line,
            ),
            ("mv -f -- ", 0, ""),
        ]);
        let got = fetch(&node, &f(Some(SUM))).unwrap();
        assert_eq!(got.path, TARGET);
        assert!(got.downloaded);
        assert_eq!(node.ran()[5], format!("mv -f -- {PART} {TARGET}"));

        let node = Scripted::new(&[
            ("pvesh get /storage/local", 0, STORAGE),
            ("sha512sum", 1, ""),
            ("mkdir", 0, ""),
            ("curl", 0, ""),
            ("sha512sum", 0, "00  x\n"),
            ("rm -f -- /var/lib/vz/template/iso/.fleet-", 0, ""),
        ]);
        let e = fetch(&node, &f(Some(SUM))).unwrap_err();
        assert!(
            e.message
                .contains("the download was removed, nothing was put in place"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_file_already_there_is_not_fetched_again() {
        let sum_line = format!("{SUM}  {TARGET}\n");
        let node = Scripted::new(&[
            ("pvesh get /storage/local", 0, STORAGE),
            ("sha512sum", 0, &sum_line),
        ]);
        assert!(!fetch(&node, &f(Some(SUM))).unwrap().downloaded);
        let node = Scripted::new(&[
            ("pvesh get /storage/local", 0, STORAGE),
            ("sha512sum", 0, "00  x\n"),
        ]);
        let e = fetch(&node, &f(Some(SUM))).unwrap_err();
        assert!(
            e.message.contains("there with another SHA-512"),
            "{}",
            e.message
        );
        // Without a checksum, the name is enough.
        let node = Scripted::new(&[
            ("pvesh get /storage/local", 0, STORAGE),
            ("test -f /var/lib/vz/template/iso/debian", 0, ""),
        ]);
        assert!(!fetch(&node, &f(None)).unwrap().downloaded);
        // A storage without the content type or a directory is named.
        let node = Scripted::new(&[(
            "pvesh get /storage/local",
            0,
            r#"{"content":"images","type":"lvmthin"}"#,
        )]);
        assert!(
            fetch(&node, &f(None))
                .unwrap_err()
                .message
                .contains("does not hold iso")
        );
    }
}
