//! The one function that quotes text for a POSIX shell. Every argument fleet puts into
//! a command line goes through it.

/// `it's` -> `'it'\''s'`: safe for any byte except NUL, in any POSIX shell.
pub(crate) fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@+,%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `sh -c 'CMD'`: the same shell everywhere, whatever the login shell of the user.
pub(crate) fn sh_c(cmd: &str) -> String {
    format!("sh -c {}", quote(cmd))
}

/// `sudo -n sh -c '…'` when asked for, the command itself otherwise: for shell text
/// (pipes, redirections, `&&`), which needs a shell, so a sudoers rule must allow `sh`
/// (in practice: everything). One program is an [`Argv`] and needs no shell.
pub(crate) fn maybe_sudo(cmd: &str, sudo: bool) -> String {
    if sudo {
        format!("sudo -n {}", sh_c(cmd))
    } else {
        cmd.to_string()
    }
}

/// A command that is one program with its arguments, built by fleet word by word (no
/// pipes, redirections, `&&` or `;`), with optional environment variables. Under sudo
/// it runs without a shell, `sudo -n -- PROGRAM ARGS…`, so a sudoers rule that names
/// only that program (`NOPASSWD: /usr/bin/apt-get`) is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Argv {
    env: Vec<(String, String)>,
    words: Vec<String>,
}

/// Why a recipe's `[program, args…]` is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArgvError {
    #[error("the list is empty: give [program, args…]")]
    Empty,
    #[error("`{}` is not a program name or path", .0.escape_debug())]
    NotAProgram(String),
    #[error("an argument holds a NUL byte")]
    NulByte,
}

impl Argv {
    /// `program` is fleet's own constant (a name like `apt-get`, never user input).
    pub(crate) fn new(program: &str) -> Argv {
        Argv {
            env: Vec::new(),
            words: vec![program.to_string()],
        }
    }

    /// A recipe's `[program, args…]`: a program that is a name or a path (not empty, no
    /// `NAME=value`, which a shell would take as an assignment) and any arguments.
    pub(crate) fn from_words(words: Vec<String>) -> Result<Argv, ArgvError> {
        match words.first() {
            None => Err(ArgvError::Empty),
            Some(p) if p.is_empty() || p.contains(['=', '\0']) || p.starts_with('-') => {
                Err(ArgvError::NotAProgram(p.clone()))
            }
            Some(_) if words.iter().any(|w| w.contains('\0')) => Err(ArgvError::NulByte),
            Some(_) => Ok(Argv {
                env: Vec::new(),
                words,
            }),
        }
    }

    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Argv {
        self.words.push(arg.into());
        self
    }

    pub(crate) fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Argv {
        self.words.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets `name` (fleet's constant, `[A-Z_]+`) for the program. Under sudo it becomes
    /// sudo's own `NAME=value` argument, which sudo refuses unless the rule matched is
    /// `ALL` or carries SETENV: procedures add it only where the host's sudo allows it
    /// (`ops::sudo::Access::sets_env`).
    pub(crate) fn env(mut self, name: &str, value: &str) -> Argv {
        debug_assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        );
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    fn assignments(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={} ", quote(v)))
            .collect()
    }

    /// The program and its quoted arguments, without the environment: what sudo is
    /// asked to run, and what messages name.
    pub(crate) fn words(&self) -> String {
        self.words
            .iter()
            .map(|w| quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command for a POSIX shell: `NAME=value PROGRAM ARGS…`.
    pub(crate) fn line(&self) -> String {
        format!("{}{}", self.assignments(), self.words())
    }

    /// `sudo -n [NAME=value…] -- PROGRAM ARGS…`: no shell in between.
    pub(crate) fn sudo_line(&self) -> String {
        format!("sudo -n {}-- {}", self.assignments(), self.words())
    }
}

impl std::fmt::Display for Argv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line())
    }
}

/// Runs a command so that it dies when fleet lets go of it. `$1` is the timeout in
/// seconds (0: none), `$2` the command. The shell must lead its own process group (sshd
/// starts every session's command in a new session; the local transport asks for a
/// group). It forks one watcher that keeps the channel's stdin, then runs the command
/// itself (`eval`, with no positional parameters, `$0` being [`WATCHER_NAME`]; under
/// `timeout` when it has one): no waiting shell, no `setsid` and no second `sh`, so a
/// watched command costs one fork more than an unwatched one. When the channel's stdin
/// closes while the command still runs (fleet stopped it, was killed, or lost the
/// connection), the watcher terminates the group and kills it 5 s later; a TERM/HUP/INT
/// to the group makes the watcher do the same, so a command that ignores TERM dies too
/// (the watcher leaves as soon as the command is gone). A command that ended is not
/// followed: what it left running in the background keeps running. The watcher's
/// command line holds the command's text: look for the command itself with
/// `pgrep -f '^CMD'`. Without it a remote `sleep 1000` outlives its run.
pub(crate) const WATCHER: &str = r#"exec 3<&0 </dev/null
p=$$
(trap 'for _ in 1 2 3 4 5; do kill -0 $p || exit; sleep 1; done; kill -KILL -$p; exit' HUP INT TERM
while read -r _ <&3; do :; done
kill -0 $p && kill -TERM -$p) >/dev/null 2>&1 &
exec 3<&-
unset p
if [ "$1" = 0 ]; then shift; eval 'set --;' "$1"; exit; fi
exec timeout -k 5 "$1" sh -c "$2""#;

/// `$0` of the watcher shell: what `ps` shows for fleet's commands on a host.
pub(crate) const WATCHER_NAME: &str = "fleet-command";

/// The timeout argument of [`WATCHER`]: seconds with millisecond precision, 0 for none.
pub(crate) fn watcher_timeout(timeout: Option<std::time::Duration>) -> String {
    match timeout {
        Some(t) => format!("{:.3}", t.as_secs_f64().max(0.001)),
        None => "0".to_string(),
    }
}

/// The remote command line for `cmd`, `exec`ed so the login shell leaves no process of
/// its own. Without input it runs under [`WATCHER`] and dies when its channel's stdin
/// closes; with input (an upload) the data ends with EOF, so the host's `timeout` is
/// all there is, and such commands read their input and end.
pub(crate) fn remote_line(cmd: &str, timeout: Option<std::time::Duration>, input: bool) -> String {
    match (input, timeout) {
        (false, t) => format!(
            "exec sh -c {} {WATCHER_NAME} {} {}",
            quote(WATCHER),
            watcher_timeout(t),
            quote(cmd)
        ),
        (true, Some(t)) => format!(
            "exec timeout -k 5 {} {}",
            watcher_timeout(Some(t)),
            sh_c(cmd)
        ),
        (true, None) => format!("exec {}", sh_c(cmd)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As sshd and the local transport start it: leading a process group of its own.
    fn sh(line: &str, stdin: std::process::Stdio) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .process_group(0)
            .stdin(stdin)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Running, not a zombie that nobody reaped (pid 1 of a container may not).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z'))
        })
    }

    /// Output and exit code, with stdin held open as fleet holds it while a command runs.
    fn run_watched(line: &str) -> (Option<i32>, Vec<u8>, Vec<u8>) {
        use std::io::Read;
        let mut child = sh(line, std::process::Stdio::piped());
        let _stdin = child.stdin.take();
        let mut err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            err.read_to_end(&mut buf).unwrap();
            buf
        });
        let mut out = Vec::new();
        child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let code = child.wait().unwrap().code();
        (code, out, reader.join().unwrap())
    }

    #[test]
    fn watched_commands_keep_output_and_exit_code() {
        let line = remote_line("echo out; echo err >&2; exit 3", None, false);
        assert_eq!(
            run_watched(&line),
            (Some(3), b"out\n".to_vec(), b"err\n".to_vec())
        );
        let five = Some(std::time::Duration::from_secs(5));
        let line = remote_line("read x; echo \"[$x]\"", five, false);
        // The command's stdin is /dev/null: only the watcher holds the channel's.
        assert_eq!(run_watched(&line).1, b"[]\n");
        // It runs in the watcher's shell, but sees none of its arguments or variables.
        let line = remote_line("echo \"[$#][$1][${p-unset}]\"; exit 4", None, false);
        assert_eq!(
            run_watched(&line),
            (Some(4), b"[0][][unset]\n".to_vec(), vec![])
        );
    }

    #[test]
    fn closing_stdin_stops_a_watched_command_and_its_children() {
        let pidfile = tempfile::NamedTempFile::new().unwrap();
        let cmd = format!("sleep 1000 & echo $! > {}; wait", pidfile.path().display());
        let mut child = sh(
            &remote_line(&cmd, None, false),
            std::process::Stdio::piped(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let sleeper = loop {
            let text = std::fs::read_to_string(pidfile.path()).unwrap();
            if let Ok(pid) = text.trim().parse::<i32>() {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the command never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert!(alive(sleeper));
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(!status.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while alive(sleeper) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!alive(sleeper), "sleep {sleeper} survived its command");
    }

    #[test]
    fn a_watched_command_times_out_like_before() {
        let line = remote_line(
            "sleep 5",
            Some(std::time::Duration::from_millis(200)),
            false,
        );
        assert_eq!(run_watched(&line).0, Some(124));
    }

    #[test]
    fn one_program_runs_under_sudo_without_a_shell() {
        let apt = Argv::new("apt-get")
            .args(["-y", "install"])
            .arg("it's")
            .env("DEBIAN_FRONTEND", "noninteractive");
        assert_eq!(apt.words(), r"apt-get -y install 'it'\''s'");
        assert_eq!(
            apt.line(),
            r"DEBIAN_FRONTEND=noninteractive apt-get -y install 'it'\''s'"
        );
        assert_eq!(
            apt.sudo_line(),
            r"sudo -n DEBIAN_FRONTEND=noninteractive -- apt-get -y install 'it'\''s'"
        );
        let ufw = Argv::new("ufw").args(["allow", "80/tcp", "comment", "fleet: web"]);
        assert_eq!(
            ufw.sudo_line(),
            "sudo -n -- ufw allow 80/tcp comment 'fleet: web'"
        );
        // Through a real shell every word arrives as it was given.
        let echo = Argv::new("printf").args(["%s|", "a b", "$HOME", "-n", ";reboot"]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(echo.line())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "a b|$HOME|-n|;reboot|"
        );
    }

    #[test]
    fn a_recipes_list_is_a_program_or_an_error() {
        let words = |w: &[&str]| Argv::from_words(w.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            words(&["systemctl", "reload", "nginx"])
                .unwrap()
                .sudo_line(),
            "sudo -n -- systemctl reload nginx"
        );
        assert!(words(&[]).is_err());
        assert!(words(&["FOO=bar", "id"]).is_err());
        assert!(words(&["-u", "root"]).is_err());
        assert!(words(&[""]).is_err());
        assert!(words(&["echo", "a\0b"]).is_err());
    }

    #[test]
    fn argv_errors_say_what_is_wrong() {
        let cases = [
            (ArgvError::Empty, "the list is empty: give [program, args…]"),
            (
                ArgvError::NotAProgram("FOO=\x1b".into()),
                "`FOO=\\u{1b}` is not a program name or path",
            ),
            (ArgvError::NulByte, "an argument holds a NUL byte"),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
        }
    }

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
