//! Serde helpers for the option structs of ops/ (what a recipe passes as `#{ … }`):
//! seconds, ports and file modes, checked as they are read.

use serde::Deserialize;
use serde::de::{Deserializer, Error};
use std::time::Duration;

/// Seconds, as an int or a float, more than zero.
pub(crate) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    if secs <= 0.0 || !secs.is_finite() {
        return Err(D::Error::custom("must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `seconds`, for an optional field (`#[serde(default)]` covers a missing key).
pub(crate) fn some_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    seconds(d).map(Some)
}

/// A TCP/UDP port, 1-65535, for an optional field.
pub(crate) fn some_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let p = i64::deserialize(d)?;
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .map(Some)
        .ok_or_else(|| D::Error::custom("must be a port, 1-65535"))
}

/// A file mode as octal digits: `"0644"`, or `0o644` (a number, shown as its octal
/// digits), for an optional field.
pub(crate) fn some_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Number(i64),
        Text(String),
    }
    let mode = match Mode::deserialize(d)
        .map_err(|_| D::Error::custom("must be a mode like \"0644\" or 0o644"))?
    {
        Mode::Number(i) => format!("{i:o}"),
        Mode::Text(s) => s,
    };
    super::files::validate_mode(&mode).map_err(D::Error::custom)?;
    Ok(Some(mode))
}

/// A file owner (`user` or `user:group`), for an optional field.
pub(crate) fn some_owner<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let owner = String::deserialize(d)?;
    super::files::validate_owner(&owner).map_err(D::Error::custom)?;
    Ok(Some(owner))
}
