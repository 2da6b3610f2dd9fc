//! `fleet exec PATTERN -- CMD`: one shell command on every matching host, like
//! `ansible PATTERN -a CMD`. Output lines are prefixed with the host.

use crate::App;
use crate::error::Result;
use crate::exec::fanout::{HostEnd, fan_out};
use crate::ops::remote::CommandOpts;
use crate::ops::text::tail;
use crate::outcome::HostStatus;
use crate::session::{RunRequest, finish_run, start_run};

pub(crate) fn run(app: &App, pattern: &str, command: &str) -> Result<i32> {
    let request = RunRequest {
        recipe: "exec".into(),
        args: vec![pattern.to_string(), command.to_string()],
        params: Default::default(),
        limit: app.global.limit.clone(),
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
