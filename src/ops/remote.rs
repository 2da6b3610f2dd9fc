//! What a feature's procedure may do on a host, as a small trait: run a command that
//! only reads (`CommandOpts::QUERY`) or one that changes the host, learn whether changes
//! need sudo, wait for the host after a reboot. The one implementation over a real
//! transport is `exec::remote::HostRemote`, which owns check mode, sudo, timeouts,
//! logging, redaction and journal records; tests script a fake one
//! ([`fake::Scripted`]), so a procedure's logic is tested without a host.

use crate::ops::shell::Argv;
use crate::outcome::HostError;
pub(crate) use crate::transport::CmdOutput;
use std::time::Duration;

/// The outcome of one command, as recipes see it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CmdResult {
    pub(crate) code: i64,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// Bytes of stdout left out by `output_limit` (0: `stdout` is whole).
    pub(crate) stdout_dropped: u64,
    pub(crate) changed: bool,
    /// False when check mode only printed the command.
    pub(crate) executed: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CommandOpts {
    /// A non-zero exit is returned, not raised.
    pub(crate) allow_fail: bool,
    pub(crate) timeout: Option<Duration>,
    /// Read-only: runs in check mode too and never marks the host changed.
    pub(crate) read_only: bool,
    /// Override whether a successful command counts as a change.
    pub(crate) changed: Option<bool>,
    /// Run through `sudo -n` (shell text as `sudo -n sh -c '…'`, an [`Argv`] as
    /// `sudo -n -- PROGRAM ARGS…`).
    pub(crate) sudo: bool,
}

/// The options map of `h.run`, `h.read` and `h.sudo`.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunOptions {
    #[serde(default)]
    pub(crate) allow_fail: bool,
    /// Seconds; the command is killed on the host too.
    #[serde(default, deserialize_with = "crate::ops::options::some_seconds")]
    pub(crate) timeout: Option<Duration>,
    #[serde(default)]
    pub(crate) changed: Option<bool>,
    #[serde(default)]
    pub(crate) sudo: Option<bool>,
}

impl RunOptions {
    /// `base` (run, read or sudo) with these options.
    pub(crate) fn apply(self, base: CommandOpts) -> CommandOpts {
        CommandOpts {
            allow_fail: self.allow_fail,
            timeout: self.timeout,
            changed: self.changed,
            sudo: self.sudo.unwrap_or(base.sudo),
            ..base
        }
    }
}

/// The options map of `wait_for_ssh`: try every `interval` for up to `timeout`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitOptions {
    #[serde(
        default = "two_minutes",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) timeout: Duration,
    #[serde(
        default = "three_seconds",
        deserialize_with = "crate::ops::options::seconds"
    )]
    pub(crate) interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: two_minutes(),
            interval: three_seconds(),
        }
    }
}

fn two_minutes() -> Duration {
    Duration::from_secs(120)
}
fn three_seconds() -> Duration {
    Duration::from_secs(3)
}

impl CommandOpts {
    /// A read-only query whose exit code the caller reads (not raised).
    pub(crate) const QUERY: CommandOpts = CommandOpts {
        allow_fail: true,
        timeout: None,
        read_only: true,
        changed: None,
        sudo: false,
    };

    /// A change; a non-zero exit is raised.
    pub(crate) const CHANGE: CommandOpts = CommandOpts {
        allow_fail: false,
        timeout: None,
        read_only: false,
        changed: None,
        sudo: false,
    };

    /// Whether a command that ran to `code` counts as a change of the host.
    pub(crate) fn changes_on(&self, code: i32) -> bool {
        code == 0 && !self.read_only && self.changed.unwrap_or(true)
    }
}

impl CmdResult {
    /// The result of a command that ran to its end.
    pub(crate) fn ran(out: CmdOutput, changed: bool) -> CmdResult {
        CmdResult {
            code: out.code as i64,
            stdout: out.stdout_text(),
            stderr: out.stderr,
            stdout_dropped: out.stdout_dropped,
            changed,
            executed: true,
        }
    }
}

pub(crate) trait Remote {
    /// The host's inventory name, for messages.
    fn name(&self) -> &str;

    /// `--check`: commands that change the host are printed, not run.
    fn check_mode(&self) -> bool;

    /// Runs `cmd`: printed instead in check mode unless read-only, logged, raised as a
    /// `HostError` on a non-zero exit unless `allow_fail`.
    fn command(&self, cmd: &str, opts: CommandOpts) -> Result<CmdResult, HostError>;

    /// Runs one program, like [`Remote::command`]; through sudo without a shell, so a
    /// sudoers rule that names the program is enough.
    fn program(&self, argv: &Argv, opts: CommandOpts) -> Result<CmdResult, HostError> {
        self.command(&argv.line(), opts)
    }

    /// Runs `cmd` whatever check mode says (the caller decides), with `input` on its
    /// stdin; `stream: false` keeps every byte of stdout (a download) and shows no lines.
    /// The exit code is returned, never raised; only transport trouble is an error.
    fn exec(
        &self,
        cmd: &str,
        timeout: Option<Duration>,
        input: Option<&[u8]>,
        stream: bool,
    ) -> Result<CmdOutput, HostError>;

    /// Makes the file at `path` hold `content` (atomic, changed only when different;
    /// check mode shows what would be written); true when it changed.
    fn write_file(&self, path: &str, content: &[u8]) -> Result<bool, HostError>;

    /// Whether commands that change the host need sudo (the login user is not root).
    fn needs_sudo(&self) -> Result<bool, HostError> {
        Ok(self.command("id -u", CommandOpts::QUERY)?.stdout.trim() != "0")
    }

    /// Forgets the connection, so the next command opens a new one (after a reboot).
    fn reconnect(&self) {}

    /// Shows what the host is doing now (its progress line).
    fn activity(&self, _message: &str) {}

    /// Prints a line for the host (e.g. what `--check` would do).
    fn out(&self, _message: &str) {}

    /// Reports something that happened on the host (a warning) as a run event.
    fn event(&self, _message: &str) {}

    /// Keeps a procedure's result (`backup`: what was copied) in the host's journal
    /// record, under `key`.
    fn note_result(&self, _key: &str, _value: serde_json::Value) {}

    /// Counts the host as changed (for work the procedure detects itself).
    fn mark_changed(&self) {}

    /// The run is being stopped: a procedure that waits must give up.
    fn aborted(&self) -> bool {
        false
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A `Remote` that answers from a script: each expected command (matched by a
    //! prefix) with its exit code and stdout, in order; what ran is kept for asserts.

    use super::*;
    use std::sync::Mutex;

    pub(crate) struct Scripted {
        pub(crate) check: bool,
        answers: Mutex<Vec<(String, i64, String)>>,
        pub(crate) ran: Mutex<Vec<String>>,
        /// What `event` and `note_result` reported, in order.
        pub(crate) events: Mutex<Vec<String>>,
        pub(crate) results: Mutex<Vec<(String, serde_json::Value)>>,
        /// What `write_file` was given: (path, content).
        pub(crate) written: Mutex<Vec<(String, String)>>,
        /// What `out` printed, in order.
        pub(crate) printed: Mutex<Vec<String>>,
        /// `mark_changed` was called.
        pub(crate) marked: std::sync::atomic::AtomicBool,
    }

    impl Scripted {
        /// `answers`: (command prefix, exit code, stdout), in the order they come.
        pub(crate) fn new(answers: &[(&str, i64, &str)]) -> Scripted {
            Scripted {
                check: false,
                answers: Mutex::new(
                    answers
                        .iter()
                        .map(|(c, code, out)| (c.to_string(), *code, out.to_string()))
                        .collect(),
                ),
                ran: Mutex::new(Vec::new()),
                events: Mutex::new(Vec::new()),
                results: Mutex::new(Vec::new()),
                written: Mutex::new(Vec::new()),
                printed: Mutex::new(Vec::new()),
                marked: Default::default(),
            }
        }

        pub(crate) fn printed(&self) -> Vec<String> {
            self.printed.lock().unwrap().clone()
        }

        pub(crate) fn marked(&self) -> bool {
            self.marked.load(std::sync::atomic::Ordering::SeqCst)
        }

        pub(crate) fn ran(&self) -> Vec<String> {
            self.ran.lock().unwrap().clone()
        }
    }

    impl Scripted {
        /// The next answer, which must be for a command starting with its prefix.
        fn answer(&self, shown: &str) -> (i64, String) {
            self.ran.lock().unwrap().push(shown.to_string());
            let mut answers = self.answers.lock().unwrap();
            assert!(!answers.is_empty(), "unexpected command `{shown}`");
            let (prefix, code, stdout) = answers.remove(0);
            assert!(
                shown.starts_with(&prefix),
                "expected a command starting `{prefix}`, got `{shown}`"
            );
            (code, stdout)
        }
    }

    impl Remote for Scripted {
        fn exec(
            &self,
            cmd: &str,
            _timeout: Option<Duration>,
            _input: Option<&[u8]>,
            _stream: bool,
        ) -> Result<CmdOutput, HostError> {
            let (code, stdout) = self.answer(cmd);
            Ok(CmdOutput {
                code: code as i32,
                stdout: stdout.into_bytes(),
                ..CmdOutput::default()
            })
        }

        fn name(&self) -> &str {
            "fake"
        }

        /// Answered by a script entry `write PATH` (a non-zero code fails the write);
        /// in check mode only recorded.
        fn write_file(&self, path: &str, content: &[u8]) -> Result<bool, HostError> {
            let shown = format!("write {path}");
            if self.check {
                self.ran.lock().unwrap().push(shown);
                return Ok(true);
            }
            let (code, _) = self.answer(&shown);
            if code != 0 {
                return Err(HostError::new("fake", format!("cannot write {path}")));
            }
            self.written.lock().unwrap().push((
                path.to_string(),
                String::from_utf8_lossy(content).into_owned(),
            ));
            Ok(true)
        }

        fn check_mode(&self) -> bool {
            self.check
        }

        fn event(&self, message: &str) {
            self.events.lock().unwrap().push(message.to_string());
        }

        fn note_result(&self, key: &str, value: serde_json::Value) {
            self.results.lock().unwrap().push((key.to_string(), value));
        }

        fn out(&self, message: &str) {
            self.printed.lock().unwrap().push(message.to_string());
        }

        fn mark_changed(&self) {
            self.marked.store(true, std::sync::atomic::Ordering::SeqCst);
        }

        /// Shown as `sudo -- PROGRAM ARGS…` under sudo (shell text as `sudo CMD`).
        fn program(&self, argv: &Argv, opts: CommandOpts) -> Result<CmdResult, HostError> {
            let shown = if opts.sudo {
                format!("-- {}", argv.line())
            } else {
                argv.line()
            };
            self.command(&shown, opts)
        }

        fn command(&self, cmd: &str, opts: CommandOpts) -> Result<CmdResult, HostError> {
            let shown = if opts.sudo {
                format!("sudo {cmd}")
            } else {
                cmd.to_string()
            };
            if self.check && !opts.read_only {
                self.ran.lock().unwrap().push(shown);
                return Ok(CmdResult {
                    changed: true,
                    ..CmdResult::default()
                });
            }
            let (code, stdout) = self.answer(&shown);
            if code != 0 && !opts.allow_fail {
                return Err(HostError::new(
                    "fake",
                    format!("`{cmd}` exited with {code}"),
                ));
            }
            Ok(CmdResult {
                code,
                stdout,
                changed: code == 0 && !opts.read_only,
                executed: true,
                ..CmdResult::default()
            })
        }
    }
}
