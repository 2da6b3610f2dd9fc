//! OpenSSH public key lines (`[options] TYPE BASE64 [comment]`, as in `authorized_keys`
//! and `*.pub`), parsed and checked the way `ssh-keygen -l` does: the base64 blob must
//! decode, name the same key type as the line, and hold exactly the fields that type has,
//! with their lengths (a 32-byte ed25519 key, an RSA modulus of at least 1024 bits, an
//! uncompressed point on the named curve). Options are parsed as sshd reads them.

use sha2::{Digest, Sha256};

/// Why a key line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("empty key")]
    Empty,
    #[error("`{0}` is not an OpenSSH key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...)")]
    UnknownType(String),
    #[error("ssh-dss (DSA) keys are no longer accepted by OpenSSH; use an ed25519 key")]
    Dsa,
    #[error("the key's base64 data is missing")]
    NoBlob,
    #[error("the key's data is not valid base64")]
    Base64,
    #[error("the key's data says `{inner}` but the line says `{outer}`")]
    TypeMismatch { outer: String, inner: String },
    #[error("the key's data is malformed ({0})")]
    Blob(&'static str),
    #[error("bad key option `{0}`: {1}")]
    Option(String, &'static str),
    #[error("the key holds a control character")]
    Control,
}

/// One parsed key: its options, type, raw blob and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKey {
    pub(crate) options: Vec<String>,
    pub(crate) kind: String,
    pub(crate) base64: String,
    pub(crate) comment: String,
}

/// Options sshd knows in `authorized_keys` (see sshd(8), AUTHORIZED_KEYS FILE FORMAT);
/// true for those that take a quoted value.
const OPTIONS: &[(&str, bool)] = &[
    ("agent-forwarding", false),
    ("cert-authority", false),
    ("command", true),
    ("environment", true),
    ("expiry-time", true),
    ("from", true),
    ("no-agent-forwarding", false),
    ("no-port-forwarding", false),
    ("no-pty", false),
    ("no-user-rc", false),
    ("no-x11-forwarding", false),
    ("permitlisten", true),
    ("permitopen", true),
    ("port-forwarding", false),
    ("principals", true),
    ("pty", false),
    ("no-touch-required", false),
    ("verify-required", false),
    ("restrict", false),
    ("tunnel", true),
    ("user-rc", false),
    ("x11-forwarding", false),
];

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

impl PublicKey {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub(crate) fn fingerprint(&self) -> String {
        let blob = decode_base64(&self.base64).unwrap_or_default();
        let digest = Sha256::digest(&blob);
        format!("SHA256:{}", encode_base64(&digest))
    }

    /// `TYPE BASE64`: what makes two lines the same key whatever their options.
    pub(crate) fn key_id(&self) -> String {
        format!("{} {}", self.kind, self.base64)
    }

    /// The line as written to `authorized_keys`.
    pub(crate) fn line(&self) -> String {
        let mut out = String::new();
        if !self.options.is_empty() {
            out.push_str(&self.options.join(","));
            out.push(' ');
        }
        out.push_str(&self.key_id());
        if !self.comment.is_empty() {
            out.push(' ');
            out.push_str(&self.comment);
        }
        out
    }

    /// Whether the options may keep the key from logging fleet in (`command=`, `from=`,
    /// `expiry-time=`, `cert-authority`): such a line does not count as fleet's login.
    pub(crate) fn limits_shell(&self) -> bool {
        self.options.iter().any(|o| {
            let name = option_name(o);
            name == "command" || name == "from" || name == "expiry-time" || name == "cert-authority"
        })
    }
}

fn option_name(option: &str) -> String {
    option
        .split_once('=')
        .map_or(option, |(n, _)| n)
        .to_ascii_lowercase()
}

/// Parses one key line, with options when `allow_options`.
pub(crate) fn parse_key_line(line: &str, allow_options: bool) -> Result<PublicKey, KeyError> {
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(KeyError::Control);
    }
    let line = line.trim();
    if line.is_empty() {
        return Err(KeyError::Empty);
    }
    let (options, rest) = if starts_with_type(line) {
        (Vec::new(), line)
    } else if allow_options {
        let (opts, rest) = split_options(line)?;
        (opts, rest.trim_start())
    } else {
        let first = line.split_whitespace().next().unwrap_or_default();
        return Err(unknown_type(first));
    };
    let mut words = rest.splitn(3, [' ', '\t']);
    let kind = words.next().unwrap_or_default().to_string();
    if !KEY_TYPES.contains(&kind.as_str()) {
        return Err(unknown_type(&kind));
    }
    let base64 = words.next().unwrap_or_default().trim().to_string();
    if base64.is_empty() {
        return Err(KeyError::NoBlob);
    }
    let comment = words.next().unwrap_or_default().trim().to_string();
    let blob = decode_base64(&base64).ok_or(KeyError::Base64)?;
    check_blob(&kind, &blob)?;
    Ok(PublicKey {
        options,
        kind,
        base64,
        comment,
    })
}

/// Parses options given alone (a rule's `options`), each as in a key line.
pub(crate) fn parse_options(options: &[String]) -> Result<Vec<String>, KeyError> {
    let mut out = Vec::new();
    for o in options {
        if o.chars().any(char::is_control) {
            return Err(KeyError::Control);
        }
        let padded = format!("{o} ");
        let (parsed, rest) = split_options(&padded)?;
        if !rest.trim().is_empty() || parsed.len() != 1 {
            return Err(KeyError::Option(o.clone(), "give one option per list item"));
        }
        out.extend(parsed);
    }
    Ok(out)
}

fn unknown_type(word: &str) -> KeyError {
    if word == "ssh-dss" {
        KeyError::Dsa
    } else {
        KeyError::UnknownType(crate::ops::text::shown(word))
    }
}

fn starts_with_type(line: &str) -> bool {
    let first = line.split([' ', '\t']).next().unwrap_or_default();
    KEY_TYPES.contains(&first) || first == "ssh-dss"
}

/// Splits `opt,opt="v a l",opt TYPE …` at the first unquoted blank; checks each option.
fn split_options(line: &str) -> Result<(Vec<String>, &str), KeyError> {
    let mut options = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, c) in line.char_indices() {
        if quoted {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                current.push(c);
            }
            ',' => options.push(std::mem::take(&mut current)),
            ' ' | '\t' => {
                end = Some(i);
                break;
            }
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(KeyError::Option(current, "its quote is not closed"));
    }
    let Some(end) = end else {
        return Err(KeyError::NoBlob);
    };
    options.push(current);
    for o in &options {
        check_option(o)?;
    }
    Ok((options, &line[end..]))
}

fn check_option(option: &str) -> Result<(), KeyError> {
    let bad = |why| KeyError::Option(crate::ops::text::shown(option), why);
    let name = option_name(option);
    let Some((_, takes_value)) = OPTIONS.iter().find(|(n, _)| *n == name) else {
        return Err(bad("sshd knows no such option"));
    };
    match (option.split_once('='), takes_value) {
        (None, false) => Ok(()),
        (None, true) => Err(bad("it needs a value: name=\"value\"")),
        (Some(_), false) => Err(bad("it takes no value")),
        (Some((_, v)), true) => {
            if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                Ok(())
            } else {
                Err(bad("its value must be in double quotes"))
            }
        }
    }
}

/// Reads the SSH wire format of a key blob.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn string(&mut self) -> Result<&'a [u8], KeyError> {
        if self.0.len() < 4 {
            return Err(KeyError::Blob("truncated"));
        }
        let len = u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]]) as usize;
        let rest = &self.0[4..];
        if rest.len() < len {
            return Err(KeyError::Blob("truncated"));
        }
        let (s, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(s)
    }

    /// A positive mpint; its size in bits.
    fn mpint_bits(&mut self) -> Result<usize, KeyError> {
        let n = self.string()?;
        if n.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(KeyError::Blob("negative number"));
        }
        let n: &[u8] = match n.iter().position(|b| *b != 0) {
            Some(i) => &n[i..],
            None => return Err(KeyError::Blob("zero number")),
        };
        Ok(n.len() * 8 - n[0].leading_zeros() as usize)
    }
}

fn check_blob(kind: &str, blob: &[u8]) -> Result<(), KeyError> {
    let mut r = Reader(blob);
    let inner = r.string()?;
    if inner != kind.as_bytes() {
        return Err(KeyError::TypeMismatch {
            outer: kind.to_string(),
            inner: crate::ops::text::shown(&String::from_utf8_lossy(inner)),
        });
    }
    match kind {
        "ssh-ed25519" | "sk-ssh-ed25519@openssh.com" => {
            if r.string()?.len() != 32 {
                return Err(KeyError::Blob("an ed25519 key is 32 bytes"));
            }
        }
        "ssh-rsa" => {
            r.mpint_bits()?;
            let bits = r.mpint_bits()?;
            if bits < 1024 {
                return Err(KeyError::Blob("RSA modulus under 1024 bits"));
            }
            if bits > 16384 {
                return Err(KeyError::Blob("RSA modulus over 16384 bits"));
            }
        }
        _ => {
            // ecdsa-sha2-nistpN and sk-ecdsa-sha2-nistp256@openssh.com
            let curve = kind
                .trim_start_matches("sk-")
                .trim_start_matches("ecdsa-sha2-")
                .trim_end_matches("@openssh.com");
            if r.string()? != curve.as_bytes() {
                return Err(KeyError::Blob("the curve does not match the key type"));
            }
            let point = r.string()?;
            let want = match curve {
                "nistp256" => 65,
                "nistp384" => 97,
                _ => 133,
            };
            if point.len() != want || point[0] != 4 {
                return Err(KeyError::Blob("not an uncompressed point on the curve"));
            }
        }
    }
    if kind.starts_with("sk-") {
        r.string()?; // application
    }
    if !r.0.is_empty() {
        return Err(KeyError::Blob("trailing data"));
    }
    Ok(())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (as in key lines); None when invalid.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let pad = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let mut acc = 0u32;
    for (i, b) in bytes.iter().enumerate() {
        let v = if i >= bytes.len() - pad {
            0
        } else {
            ALPHABET.iter().position(|a| a == b)? as u32
        };
        acc = (acc << 6) | v;
        if i % 4 == 3 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
        }
    }
    out.truncate(out.len() - pad);
    Some(out)
}

/// Base64 without padding, as ssh-keygen prints fingerprints.
pub(crate) fn encode_base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real ed25519 public key (ssh-keygen -t ed25519).
    pub(crate) const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID5KYsBV69aoMbhLnJc60Xc22SHXaLqlHv7Np+LlVV0b alice@laptop";
    pub(crate) const ED2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL6HUq5IJ7t0CWjmf2ZVrKkhJlf5zUssa3I2+KnkDXck bob@desk";
    pub(crate) const ED3: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAsRMBG/gDlgxcJdPXOe4tMyhU2sGe3JNbh5qcXqhqus root@backup";

    #[test]
    fn a_real_key_parses_and_has_ssh_keygens_fingerprint() {
        let k = parse_key_line(ED, false).unwrap();
        assert_eq!(k.kind, "ssh-ed25519");
        assert_eq!(k.comment, "alice@laptop");
        assert_eq!(k.line(), ED);
        // `ssh-keygen -lf` printed this fingerprint for the key.
        assert_eq!(
            k.fingerprint(),
            "SHA256:0roMHuuCk67hDjG2JUfDHICw7bTkAxBJnyjqdPEwkww"
        );
    }

    #[test]
    fn options_are_parsed_and_checked() {
        let line = format!(r#"restrict,command="rrsync -ro \"/srv\"",from="10.0.0.0/8" {ED}"#);
        let k = parse_key_line(&line, true).unwrap();
        assert_eq!(
            k.options,
            vec![
                "restrict".to_string(),
                r#"command="rrsync -ro \"/srv\"""#.to_string(),
                r#"from="10.0.0.0/8""#.to_string()
            ]
        );
        assert_eq!(k.line(), line);
        assert!(k.limits_shell());
        let e = parse_key_line(&format!("no-such {ED}"), true).unwrap_err();
        assert!(e.to_string().contains("no such option"), "{e}");
        let e = parse_key_line(&format!("command=ls {ED}"), true).unwrap_err();
        assert!(e.to_string().contains("double quotes"), "{e}");
        assert!(parse_key_line(&format!("no-pty {ED}"), false).is_err());
        assert_eq!(
            parse_options(&["no-pty".into(), r#"from="10.0.0.0/8""#.into()]).unwrap(),
            vec!["no-pty".to_string(), r#"from="10.0.0.0/8""#.to_string()]
        );
        assert!(parse_options(&["no-pty,pty".into()]).is_err());
    }

    #[test]
    fn broken_keys_are_refused_like_ssh_keygen_does() {
        // A character changed in the data: the blob no longer decodes to its fields.
        let truncated = ED.replace("AAAAID5KYsBV69aoMbhL", "AAAAID5KYs");
        assert!(parse_key_line(&truncated, false).is_err());
        // The line says rsa, the data ed25519.
        let mismatch = ED.replace("ssh-ed25519", "ssh-rsa");
        assert!(matches!(
            parse_key_line(&mismatch, false),
            Err(KeyError::TypeMismatch { .. })
        ));
        assert_eq!(
            parse_key_line("ssh-dss AAAA", false).unwrap_err(),
            KeyError::Dsa
        );
        assert_eq!(
            parse_key_line("ssh-ed25519 !!!!", false).unwrap_err(),
            KeyError::Base64
        );
        assert_eq!(
            parse_key_line("ssh-ed25519", false).unwrap_err(),
            KeyError::NoBlob
        );
        assert!(matches!(
            parse_key_line("hello world", false),
            Err(KeyError::UnknownType(_))
        ));
        assert_eq!(
            parse_key_line("ssh-ed25519 AAAA\u{1b}[2J", false).unwrap_err(),
            KeyError::Control
        );
    }

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0xff, 0, 0x80]] {
            let mut enc = encode_base64(data);
            while !enc.len().is_multiple_of(4) {
                enc.push('=');
            }
            if !data.is_empty() {
                assert_eq!(decode_base64(&enc).unwrap(), data);
            }
        }
        assert_eq!(decode_base64("AAA"), None);
    }
}
