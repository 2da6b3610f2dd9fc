//! The failure policy of a run: `--max-fail`.

/// `--max-fail N` or `--max-fail N%`: how many failures a run tolerates before it stops
/// starting new hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MaxFail {
    Count(usize),
    Percent(f64),
}

/// A `--max-fail` value that is neither a count nor a percentage from 0 to 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --max-fail `{0}`: expected a count like 2 or a percentage like 25%")]
pub(crate) struct MaxFailError(pub(crate) String);

impl MaxFail {
    pub(crate) fn parse(s: &str) -> Result<MaxFail, MaxFailError> {
        let bad = || MaxFailError(s.to_string());
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&v) {
                return Err(bad());
            }
            Ok(MaxFail::Percent(v))
        } else {
            s.trim().parse().map(MaxFail::Count).map_err(|_| bad())
        }
    }

    /// True once `failed` out of `total` hosts is more than the policy allows.
    pub(crate) fn exceeded(self, failed: usize, total: usize) -> bool {
        match self {
            MaxFail::Count(n) => failed > n,
            MaxFail::Percent(p) => total > 0 && (failed as f64) * 100.0 > p * total as f64,
        }
    }
}

/// From a recipe's option map: a count (`2`) or a share (`"25%"`).
impl<'de> serde::Deserialize<'de> for MaxFail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CountOrShare;
        impl serde::de::Visitor<'_> for CountOrShare {
            type Value = MaxFail;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a count like 2 or a share like \"25%\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<MaxFail, E> {
                Ok(MaxFail::Count(n as usize))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MaxFail, E> {
                MaxFail::parse(s).map_err(|_| {
                    E::custom(format!(
                        "`{s}` is not a count like 2 or a share like \"25%\""
                    ))
                })
            }
        }
        d.deserialize_any(CountOrShare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_fail_counts_and_percentages() {
        assert_eq!(MaxFail::parse("2"), Result::Ok(MaxFail::Count(2)));
        assert_eq!(MaxFail::parse("25%"), Result::Ok(MaxFail::Percent(25.0)));
        assert!(MaxFail::parse("x").is_err());
        assert!(MaxFail::parse("120%").is_err());
        assert_eq!(
            MaxFail::parse("x").unwrap_err().to_string(),
            "invalid --max-fail `x`: expected a count like 2 or a percentage like 25%"
        );
        assert!(!MaxFail::Count(1).exceeded(1, 10));
        assert!(MaxFail::Count(1).exceeded(2, 10));
        assert!(MaxFail::Count(0).exceeded(1, 10));
        assert!(!MaxFail::Percent(20.0).exceeded(2, 10));
        assert!(MaxFail::Percent(20.0).exceeded(3, 10));
    }
}
