//! Guest passwords derived from one secret: HMAC-SHA256 of the secret and
//! `fleet-guest-password:NAME`, so each guest's root (and user) password is hard to
//! guess, differs from every other guest's, and can be made again from the secret alone
//! (`fleet guest password NAME`) instead of being stored anywhere.
//!
//! Callers register the password with the redactor (ops/secrets.rs) as soon as it is
//! made; VMs get only its SHA-512 crypt hash (cloud-init `chpasswd`), so the snippet left
//! on the node holds no plaintext.

use hmac::{Hmac, KeyInit, Mac};
use sha_crypt::{PasswordHasher, ShaCrypt};
use sha2::Sha256;

/// Characters of a derived password: no 0/O, 1/l/I, and nothing a shell or YAML treats
/// specially, so it can be read aloud and typed on a console.
const ALPHABET: &[u8] = b"23456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

/// Characters of a derived password (57^20: about 116 bits).
pub(crate) const LENGTH: usize = 20;

crate::error::message_error!(
    /// Why no password can be derived (an empty secret or guest name).
    PasswordError
);

fn mac(secret: &str, label: &str, name: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(label.as_bytes());
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The password of guest `name` under `secret`.
pub(crate) fn derive(secret: &str, name: &str) -> Result<String, PasswordError> {
    if secret.is_empty() {
        return Err("the password secret is empty: give it a value in the secrets file".into());
    }
    if name.is_empty() {
        return Err("a guest password needs the guest's name".into());
    }
    let digest = mac(secret, "fleet-guest-password:", name);
    // The digest read as one big number, in base 57: every character uses all of it.
    let mut n = digest.to_vec();
    let mut out = Vec::with_capacity(LENGTH);
    for _ in 0..LENGTH {
        let mut rem: u32 = 0;
        for byte in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / ALPHABET.len() as u32) as u8;
            rem = cur % ALPHABET.len() as u32;
        }
        out.push(ALPHABET[rem as usize]);
    }
    Ok(String::from_utf8(out).expect("ASCII alphabet"))
}

/// The SHA-512 crypt hash (`$6$…`) of `password` for `/etc/shadow`. The salt is derived
/// too (from the secret and name), so the same guest gets the same user-data every run.
pub(crate) fn shadow_hash(secret: &str, name: &str, password: &str) -> String {
    let salt = &mac(secret, "fleet-guest-salt:", name)[..12];
    ShaCrypt::SHA512
        .hash_password_with_salt(password.as_bytes(), salt)
        .expect("SHA-512 crypt of any password with a 12-byte salt")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha_crypt::{PasswordHashRef, PasswordVerifier};

    #[test]
    fn fixed_vectors() {
        // Pinned: a change here changes every guest's password.
        assert_eq!(derive("s3cret", "web-3").unwrap(), VECTOR_WEB3);
        assert_eq!(derive("s3cret", "web-4").unwrap(), VECTOR_WEB4);
        assert_eq!(derive("other", "web-3").unwrap(), VECTOR_OTHER);
    }

    // Computed independently with Python's hmac module, the digest read big-endian.
    const VECTOR_WEB3: &str = "caVCiWrkp7NUyvJhiJxf";
    const VECTOR_WEB4: &str = "VfS2iWZsEVxiVpRRVGBQ";
    const VECTOR_OTHER: &str = "C5RheDGKhrWwzPoa6wAS";

    #[test]
    fn alphabet_and_length() {
        for name in ["a", "web-3", "ct-1", "x".repeat(63).as_str()] {
            let p = derive("k", name).unwrap();
            assert_eq!(p.len(), LENGTH);
            assert!(p.bytes().all(|b| ALPHABET.contains(&b)), "{p}");
        }
    }

    #[test]
    fn empty_inputs_are_refused() {
        assert!(derive("", "web-3").is_err());
        assert!(derive("k", "").is_err());
    }

    #[test]
    fn the_hash_verifies_and_is_stable() {
        let p = derive("s3cret", "web-3").unwrap();
        let h = shadow_hash("s3cret", "web-3", &p);
        assert!(h.starts_with("$6$"), "{h}");
        assert!(!h.contains(&p));
        assert_eq!(h, shadow_hash("s3cret", "web-3", &p));
        let parsed = PasswordHashRef::new(&h).unwrap();
        assert!(
            ShaCrypt::SHA512
                .verify_password(p.as_bytes(), parsed)
                .is_ok()
        );
        assert!(ShaCrypt::SHA512.verify_password(b"wrong", parsed).is_err());
        // Checked against glibc's crypt(3) (Python's crypt module).
        assert_eq!(
            h,
            "$6$rounds=5000$7DrqCKdTaL2we1dQ$Ci06A12dF0QdHDRWSUDj/lS/gw5lRn98nOC5KZmvkh4jpXTRZ2QaMc/eCpc5FniPQBVhvMHw0oHDHNl1QeJBm1"
        );
    }
}
