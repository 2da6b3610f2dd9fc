//! Who runs fleet, and where: for the lock holder and the journal.

/// The login name of the user running fleet.
pub(crate) fn user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    // SAFETY: getuid cannot fail; getpwuid returns a pointer into static storage or null.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
        format!("uid {}", libc::getuid())
    }
}

/// Set by `fleet serve` for a run it starts: who asked, as the journal and the lock
/// record it (`web:alice`), and the run's id, known to the server before the run starts.
pub const JOURNAL_USER_VAR: &str = "FLEET_JOURNAL_USER";
pub const RUN_ID_VAR: &str = "FLEET_RUN_ID";

/// The two variables as fleet started with them (each None when unset or not valid).
struct Started {
    user: Option<String>,
    run_id: std::sync::Mutex<Option<String>>,
}

static STARTED: std::sync::OnceLock<Started> = std::sync::OnceLock::new();

/// `web:NAME` with a short name of letters, digits and `._@-`: anything else is not a
/// web user and is ignored (the login name is recorded instead).
pub(crate) fn valid_web_user(value: &str) -> bool {
    value.strip_prefix("web:").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
    })
}

fn started_from_env() -> Started {
    let var = |name| std::env::var(name).ok();
    Started {
        user: var(JOURNAL_USER_VAR).filter(|u| valid_web_user(u)),
        run_id: std::sync::Mutex::new(var(RUN_ID_VAR).filter(|id| crate::session::is_run_id(id))),
    }
}

/// Reads `FLEET_JOURNAL_USER` and `FLEET_RUN_ID` and removes them from the environment,
/// so no command fleet starts (a nested fleet on a local host) inherits them.
///
/// Call it first thing in `main`, before any thread exists.
pub fn take_run_env() {
    STARTED.get_or_init(started_from_env);
    for name in [JOURNAL_USER_VAR, RUN_ID_VAR] {
        // SAFETY: called at the start of main, before fleet starts any thread.
        unsafe { std::env::remove_var(name) };
    }
}

/// Who a run is recorded as: the web user `fleet serve` passed, else the login name.
pub(crate) fn run_user() -> String {
    STARTED
        .get_or_init(started_from_env)
        .user
        .clone()
        .unwrap_or_else(user)
}

/// The run id `fleet serve` chose for this process's run; given out once.
pub(crate) fn take_given_run_id() -> Option<String> {
    STARTED
        .get_or_init(started_from_env)
        .run_id
        .lock()
        .ok()?
        .take()
}

/// This machine's host name.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable and its length is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_and_host_are_named() {
        assert!(!super::user().is_empty());
        assert!(!super::hostname().is_empty());
    }

    #[test]
    fn only_plain_web_users_are_taken() {
        use super::valid_web_user as ok;
        assert!(ok("web:alice"));
        assert!(ok("web:a.b-c_d@example"));
        for bad in [
            "alice",
            "web:",
            "root",
            "web:al ice",
            "web:a\nb",
            "web:\u{1b}[31m",
            "web:a/b",
            "web:--x;y",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
        assert!(!ok(&format!("web:{}", "a".repeat(65))));
    }
}

/// Raises the soft limit of open files to the hard one: every host in flight holds
/// ~2.5 descriptors (bench/scale: 620 at 250 hosts), so the usual soft limit of 1024
/// would fail runs with `--forks` above ~400 while the hard limit allows far more.
/// Returns the soft limit now in force.
pub fn raise_open_files_limit() -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: the struct is valid for getrlimit/setrlimit to read and write.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod fd_tests {
    #[test]
    fn the_soft_open_files_limit_reaches_the_hard_one() {
        let now = super::raise_open_files_limit();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid out-pointer.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(now, lim.rlim_cur);
    }
}
