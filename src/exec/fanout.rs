//! Work on many hosts at once: a pool of `--forks` scoped threads pulling hosts from a
//! shared index. One host's failure never stops the others; `--max-fail` stops starting
//! new ones; hosts that already failed earlier in the run are not touched again.

use super::current;
use super::interrupt;
use super::max_fail::MaxFail;
use super::run::Run;
use crate::inventory::ResolvedHost;
use crate::outcome::HostStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// How one host's work ended when it did not succeed.
#[derive(Debug, Clone)]
pub(crate) struct HostEnd {
    pub(crate) status: HostStatus,
    pub(crate) message: String,
}

impl From<crate::outcome::HostError> for HostEnd {
    fn from(f: crate::outcome::HostError) -> Self {
        HostEnd {
            status: f.status(),
            message: f.message,
        }
    }
}

/// Runs `work` for every host, at most `forks` at a time; returns each host's value in
/// host order (None for hosts that failed or were skipped).
pub(crate) fn fan_out<T, F>(run: &Run, hosts: &[ResolvedHost], work: F) -> Vec<Option<T>>
where
    T: Send,
    F: Fn(&ResolvedHost) -> Result<T, HostEnd> + Sync,
{
    fan_out_with(run, hosts, run.options.forks, work)
}

/// `fan_out` with the recipe's own parallelism (`--forks` still wins when given).
pub(crate) fn fan_out_with<T, F>(
    run: &Run,
    hosts: &[ResolvedHost],
    forks: usize,
    work: F,
) -> Vec<Option<T>>
where
    T: Send,
    F: Fn(&ResolvedHost) -> Result<T, HostEnd> + Sync,
{
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..hosts.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let forks = if run.options.forks_given {
        run.options.forks
    } else {
        forks
    };
    let workers = forks.max(1).min(hosts.len());
    run.ui.add_hosts(hosts.len());

    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(host) = hosts.get(i) else { break };
            let before = run.record(&host.name);
            let interrupted = interrupt::stopping();
            if before.failure.is_some() || interrupted || stop.load(Ordering::SeqCst) {
                let status = if before.failure.is_some() {
                    before.status()
                } else {
                    let why = if interrupted {
                        "skipped: the run was interrupted"
                    } else {
                        "skipped: --max-fail exceeded, no new hosts are started"
                    };
                    run.ui.event(Some(&host.name), why);
                    HostStatus::Skipped
                };
                run.update(&host.name, |_| {});
                run.ui.host_done(&host.name, status);
                continue;
            }
            run.ui.host_started(&host.name);
            let started = Instant::now();
            run.host_started(&host.name);
            let outcome = current::with_host(&host.name, || work(host));
            run.host_ended(&host.name);
            let elapsed = started.elapsed();
            run.update(&host.name, |r| {
                r.ran = true;
                r.elapsed += elapsed;
            });
            match outcome {
                Ok(value) => {
                    results.lock().unwrap()[i] = Some(value);
                }
                Err(end) => {
                    run.mark_failed(&host.name, end.status, &end.message);
                }
            }
            let record = run.record(&host.name);
            let status = record.status();
            if status.is_failure() {
                let failed = failures.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(policy) = run.options.max_fail
                    && policy.exceeded(failed, hosts.len())
                {
                    stop.store(true, Ordering::SeqCst);
                }
                let message = record.failure.map(|f| f.1).unwrap_or_default();
                run.ui.event(
                    Some(&host.name),
                    &format!("{}: {message}", status.as_str().to_uppercase()),
                );
                run.tag.host_ended(
                    &host.name,
                    status.as_str(),
                    Some(&message),
                    elapsed.as_millis(),
                );
            } else {
                if run.ui.options.verbosity >= 0 && run.ui.host_lines() {
                    run.ui.event(
                        Some(&host.name),
                        &format!("{} ({:.1}s)", status.as_str(), elapsed.as_secs_f64()),
                    );
                }
                run.tag
                    .host_ended(&host.name, status.as_str(), None, elapsed.as_millis());
            }
            run.ui.host_done(&host.name, status);
        }
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            // Recipes nest (each -> step -> module -> closure): Rhai needs more stack
            // per call level than a thread's default 2 MiB allows in debug builds.
            std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn_scoped(s, worker)
                .expect("spawn a fan-out worker");
        }
    });
    results.into_inner().unwrap()
}

/// Stack of a fan-out worker thread (virtual memory; only what is used is resident).
const WORKER_STACK: usize = 16 * 1024 * 1024;

/// Rolling batches (`serial`): hosts in groups of `serial` (a count or a percentage),
/// each group done before the next starts. A group whose failures exceed `batch_max_fail`
/// (default: any failure) stops the rollout; the hosts of later groups are skipped,
/// never touched.
pub(crate) fn fan_out_serial<T, F>(
    run: &Run,
    hosts: &[ResolvedHost],
    forks: usize,
    serial: MaxFail,
    batch_max_fail: MaxFail,
    work: F,
) -> Vec<Option<T>>
where
    T: Send,
    F: Fn(&ResolvedHost) -> Result<T, HostEnd> + Sync,
{
    let size = batch_size(serial, hosts.len());
    let mut results = Vec::with_capacity(hosts.len());
    let mut stopped: Option<String> = None;
    for (n, batch) in hosts.chunks(size).enumerate() {
        if let Some(why) = &stopped {
            run.ui.add_hosts(batch.len());
            for host in batch {
                run.ui.event(Some(&host.name), &format!("skipped: {why}"));
                run.update(&host.name, |_| {});
                run.ui.host_done(&host.name, HostStatus::Skipped);
                results.push(None);
            }
            continue;
        }
        results.extend(fan_out_with(run, batch, forks, &work));
        let failed = batch
            .iter()
            .filter(|h| run.record(&h.name).status().is_failure())
            .count();
        if batch_max_fail.exceeded(failed, batch.len()) {
            let why = format!(
                "the rollout stopped after batch {} ({failed} of {} hosts failed)",
                n + 1,
                batch.len()
            );
            run.ui.event(None, &why);
            stopped = Some(why);
        }
    }
    results
}

/// Hosts per batch: a count, or a percentage of all (at least 1).
pub(crate) fn batch_size(serial: MaxFail, hosts: usize) -> usize {
    match serial {
        MaxFail::Count(n) => n.max(1),
        MaxFail::Percent(p) => ((p / 100.0 * hosts as f64).ceil() as usize).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_counts_or_shares_of_the_hosts() {
        assert_eq!(batch_size(MaxFail::Count(2), 10), 2);
        assert_eq!(batch_size(MaxFail::Count(0), 10), 1);
        assert_eq!(batch_size(MaxFail::Percent(25.0), 10), 3);
        assert_eq!(batch_size(MaxFail::Percent(1.0), 10), 1);
    }
}
