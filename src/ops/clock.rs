//! Time for recipes: unix seconds, a small strftime in UTC, and durations as seconds.
//! No time-zone database: every formatted time is UTC (written with `Z`), which is what
//! file names, reports and logs of a fleet want. Parsing durations is `humantime`'s.

/// The conversion a `%` letter stands for, or an error naming it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ClockError {
    #[error(
        "`%{0}` is not a known time format (known: %Y %m %d %H %M %S %F %T %s %j %%; times are UTC)"
    )]
    Unknown(char),
    #[error("a time format ends with a lone `%`")]
    Trailing,
    #[error(
        "`{text}` is not a duration ({why}); say e.g. \"90s\", \"15m\", \"2h\", \"1h 30m\", \"7days\""
    )]
    Duration { text: String, why: String },
}

/// Now, or the time `FLEET_NOW` gives (RFC 3339): how tests see a run an hour later.
pub(crate) fn now() -> std::time::SystemTime {
    std::env::var("FLEET_NOW")
        .ok()
        .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
        .unwrap_or_else(std::time::SystemTime::now)
}

/// Seconds since 1970-01-01 UTC, now.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// (year, month 1-12, day 1-31) of a day number since 1970-01-01 (Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// `unix` formatted by `format` in UTC: %Y %m %d %H %M %S, %F (= %Y-%m-%d), %T
/// (= %H:%M:%S), %s (unix seconds), %j (day of the year), %%.
pub(crate) fn format(unix: i64, format: &str) -> Result<String, ClockError> {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = before[(m - 1) as usize] + d + i64::from(m > 2 && leap(y));
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next().ok_or(ClockError::Trailing)? {
            'Y' => out.push_str(&format!("{y:04}")),
            'm' => out.push_str(&format!("{m:02}")),
            'd' => out.push_str(&format!("{d:02}")),
            'H' => out.push_str(&format!("{hh:02}")),
            'M' => out.push_str(&format!("{mm:02}")),
            'S' => out.push_str(&format!("{ss:02}")),
            'F' => out.push_str(&format!("{y:04}-{m:02}-{d:02}")),
            'T' => out.push_str(&format!("{hh:02}:{mm:02}:{ss:02}")),
            's' => out.push_str(&unix.to_string()),
            'j' => out.push_str(&format!("{yday:03}")),
            '%' => out.push('%'),
            other => return Err(ClockError::Unknown(other)),
        }
    }
    Ok(out)
}

/// `"2h"`, `"1h 30m"`, `"90s"`, `"7days"` as whole seconds.
pub(crate) fn duration_secs(text: &str) -> Result<i64, ClockError> {
    humantime::parse_duration(text.trim())
        .map(|d| d.as_secs().min(i64::MAX as u64) as i64)
        .map_err(|e| ClockError::Duration {
            text: crate::ops::terminal::neutralise(text).into_owned(),
            why: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_utc() {
        // 2026-11-25T02:40:00Z
        let t = 1_795_574_400;
        assert_eq!(
            format(t, "%Y-%m-%dT%H:%M:%SZ").unwrap(),
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64)
            )
            .to_string()
        );
        assert_eq!(
            format(t, "%F_%T %j %s %%").unwrap(),
            format!("2026-11-25_02:40:00 329 {t} %")
        );
        assert_eq!(format(0, "%F %T").unwrap(), "1970-01-01 00:00:00");
        // A leap day.
        assert_eq!(format(951_782_400, "%F %j").unwrap(), "2000-02-29 060");
        assert_eq!(format(t, "%q"), Err(ClockError::Unknown('q')));
        assert_eq!(format(t, "50%"), Err(ClockError::Trailing));
    }

    #[test]
    fn durations_are_seconds() {
        assert_eq!(duration_secs("2h").unwrap(), 7200);
        assert_eq!(duration_secs("1h 30m").unwrap(), 5400);
        assert_eq!(duration_secs("7days").unwrap(), 7 * 86_400);
        let e = duration_secs("soon").unwrap_err().to_string();
        assert!(e.contains("`soon` is not a duration"), "{e}");
    }
}
