//! `fleet exec PATTERN -- CMD`: one shell command on every matching host, like
//! `ansible PATTERN -a CMD`. Output lines are prefixed with the host.

use crate::App;
use crate::error::{Error, Result};
use crate::exec::fanout::{HostEnd, fan_out};
use crate::journal;
use crate::ops::remote::CommandOpts;
use crate::ops::text::tail;
use crate::outcome::HostStatus;
use crate::session::{RunRequest, finish_run, start_run};

/// `more_args`: what the journal keeps after PATTERN and CMD (`--retry-failed=RUN`).
pub(crate) fn run(
    app: &App,
    pattern: &str,
    command: &str,
    limit: Option<String>,
    more_args: Vec<String>,
) -> Result<i32> {
    let mut args = vec![pattern.to_string(), command.to_string()];
    args.extend(more_args);
    let request = RunRequest {
        recipe: "exec".into(),
        args,
        params: Default::default(),
        limit,
        replays: None,
    };
    let run = start_run(app, request)?;
    let hosts = run.select(pattern)?;
    let opts = CommandOpts {
        allow_fail: true,
        ..CommandOpts::default()
    };
    fan_out(&run, &hosts, |host| {
        let out = run.command(host, command, opts)?;
        if !out.executed {
            return Ok(());
        }
        let stdout = out.stdout.trim_end_matches('\n');
        if !stdout.is_empty() {
            run.ui.out(Some(&host.name), stdout);
        }
        for line in out.stderr.lines() {
            run.ui.event(Some(&host.name), &format!("! {line}"));
        }
        if out.code != 0 {
            let stderr = tail(&out.stderr, 1);
            return Err(HostEnd {
                status: HostStatus::Failed,
                message: format!(
                    "exited with {}{}",
                    out.code,
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                ),
            });
        }
        Ok(())
    });
    Ok(finish_run(app, &run, None))
}

/// `fleet exec --retry-failed[=RUN]`: the command of RUN (default: the last `exec`)
/// again, on the hosts that failed or were unreachable there. PATTERN and CMD may be left
/// out; given, they must be that run's.
pub(crate) fn retry(
    app: &App,
    which: &str,
    pattern: Option<String>,
    command: Option<String>,
) -> Result<i32> {
    // PATTERN and CMD, when given, must be those of the run retried.
    let same_command = |last: &journal::RunRecord| -> Result<()> {
        let (Some(last_pattern), Some(last_command)) = (last.args.first(), last.args.get(1)) else {
            return Err(Error::usage(format!(
                "run {} is not an `exec` run with a pattern and a command",
                last.run_id
            )));
        };
        let differs = pattern.as_ref().is_some_and(|p| p != last_pattern)
            || command.as_ref().is_some_and(|c| c != last_command);
        if differs {
            return Err(Error::usage_with_help(
                format!(
                    "run {} ran `{last_command}` on `{last_pattern}`, not what is given here",
                    last.run_id
                ),
                "leave out PATTERN and CMD to retry that run, or run the new command without --retry-failed",
            ));
        }
        Ok(())
    };
    let Some((last, failed)) = super::retry_target(app, which, "exec", same_command)? else {
        return Ok(0);
    };
    eprintln!(
        "retrying run {} of `exec` on {}",
        last.run_id,
        failed.join(", ")
    );
    run(
        app,
        &last.args[0],
        &last.args[1],
        Some(failed.join(",")),
        vec![format!("--retry-failed={}", last.run_id)],
    )
}
