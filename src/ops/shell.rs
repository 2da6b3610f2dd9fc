//! The one function that quotes text for a POSIX shell. Every argument fleet puts into
//! a command line goes through it.

/// `it's` -> `'it'\''s'`: safe for any byte except NUL, in any POSIX shell.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@+,%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `sh -c 'CMD'`: the same shell everywhere, whatever the login shell of the user.
pub fn sh_c(cmd: &str) -> String {
    format!("sh -c {}", quote(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("/etc/hosts"), "/etc/hosts");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn quoted_text_survives_a_real_shell() {
        for s in ["it's \"quoted\"", "a\nb", "$HOME `x` \\ *", "-n"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }
}
