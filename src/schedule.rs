//! The scheduler: feeds targets to probes within the concurrency limits, and gives every
//! target exactly one result however the run ends.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use crate::checks::Check;
use crate::input::{Entry, Item, Target};
use crate::outcome::{CheckResult, ErrorKind, Failure, Origin, Verdict};
use crate::probe::Prober;
use crate::progress::Progress;
use crate::rate::Pacer;
use crate::retry::{self, RetryPolicy, Tally};
use crate::stop::Stop;
use crate::text::human_duration;

/// How long the rest of the input may stall after a stop before reading gives up: a file
/// never stalls, but a pipe whose writer stays open would otherwise hold the run forever.
const SETTLE_STALL: Duration = Duration::from_millis(500);

/// Host limiters kept before dead ones are swept, so a list of a million distinct hosts
/// keeps only those in flight.
const HOST_SWEEP_MIN: usize = 1024;

/// The two bounds on probes in flight.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Over all hosts.
    pub concurrency: usize,
    /// To one host:port.
    pub per_host: usize,
}

/// Everything a probe task needs, shared by all of them.
pub struct Engine {
    /// Makes the attempts.
    pub prober: Prober,
    /// Retries and deadline.
    pub policy: RetryPolicy,
    /// Concurrency bounds.
    pub limits: Limits,
    /// Healthy results slower than this are marked slow.
    pub slow: Option<Duration>,
    /// Paces request starts (`--rate`).
    pub pacer: Pacer,
}

/// Checks every entry from `entries`, sending one result per entry to `results`.
///
/// Returns when the input is exhausted (or unreadable: the error is returned); probes still
/// in flight then finish on their own, and `results` closes when the last one has reported.
pub async fn run(
    engine: Arc<Engine>,
    mut entries: mpsc::Receiver<Item>,
    mut stop: Stop,
    progress: Progress,
    results: mpsc::Sender<CheckResult>,
) -> Option<anyhow::Error> {
    let in_flight = Arc::new(Semaphore::new(engine.limits.concurrency));
    let mut hosts = HostLimits::new(engine.limits.per_host);
    loop {
        let item = tokio::select! {
            biased;
            _ = stop.stopped() => break,
            item = entries.recv() => item,
        };
        let entry = match item {
            None => return None,
            Some(Err(err)) => return Some(err),
            Some(Ok(entry)) => entry,
        };
        let target = match entry.target {
            Ok(target) => target,
            Err(invalid) => {
                if !send_unprobed(
                    &results,
                    entry.origin,
                    entry.text,
                    entry.check.as_deref(),
                    invalid_failure(invalid),
                )
                .await
                {
                    return None;
                }
                continue;
            }
        };
        // The permit is taken before the task exists, so live tasks never outnumber it.
        let permit = tokio::select! {
            biased;
            reason = stop.stopped() => {
                if !send_unprobed(&results, entry.origin, entry.text, entry.check.as_deref(), reason.failure()).await {
                    return None;
                }
                break;
            }
            permit = in_flight.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let host = hosts.limiter(target.host_key());
        let task = Task {
            engine: engine.clone(),
            origin: entry.origin,
            text: entry.text,
            target,
            check: entry.check,
            stop: stop.clone(),
            results: results.clone(),
        };
        tokio::spawn(async move {
            task.run(host).await;
            drop(permit);
        });
    }
    settle_unread(entries, stop, progress, results).await
}

/// After a stop, reads the rest of the input without probing so every line gets its result.
async fn settle_unread(
    mut entries: mpsc::Receiver<Item>,
    stop: Stop,
    progress: Progress,
    results: mpsc::Sender<CheckResult>,
) -> Option<anyhow::Error> {
    let reason = stop.reason()?;
    loop {
        let Ok(item) = tokio::time::timeout(SETTLE_STALL, entries.recv()).await else {
            progress.suspend(|| {
                eprintln!(
                    "upcheck: stopped reading input: nothing arrived for {} after the run was \
                     stopped, so lines not yet read have no result",
                    human_duration(SETTLE_STALL)
                )
            });
            return None;
        };
        let item = item?;
        let entry: Entry = match item {
            Ok(entry) => entry,
            Err(err) => return Some(err),
        };
        let failure = match entry.target {
            Ok(_) => reason.failure(),
            Err(invalid) => invalid_failure(invalid),
        };
        if !send_unprobed(
            &results,
            entry.origin,
            entry.text,
            entry.check.as_deref(),
            failure,
        )
        .await
        {
            return None;
        }
    }
}

/// The failure of a line that is not a target.
fn invalid_failure(reason: String) -> Failure {
    Failure::new(ErrorKind::Invalid, reason)
}

/// Sends the result of an entry that was never probed.
async fn send_unprobed(
    results: &mpsc::Sender<CheckResult>,
    origin: Origin,
    text: String,
    check: Option<&Check>,
    failure: Failure,
) -> bool {
    send(results, origin, text, check, Verdict::unattempted(failure)).await
}

/// Sends a result; false when nobody is listening any more (the report has ended).
async fn send(
    results: &mpsc::Sender<CheckResult>,
    origin: Origin,
    text: String,
    check: Option<&Check>,
    verdict: Verdict,
) -> bool {
    results
        .send(CheckResult::new(origin, text, verdict).labelled(check))
        .await
        .is_ok()
}

/// One target on its way to a result.
struct Task {
    engine: Arc<Engine>,
    origin: Origin,
    text: String,
    target: Target,
    check: Option<Box<Check>>,
    stop: Stop,
    results: mpsc::Sender<CheckResult>,
}

impl Task {
    async fn run(mut self, host: Arc<Semaphore>) {
        let host_permit = tokio::select! {
            biased;
            reason = self.stop.stopped() => Err(reason),
            permit = host.acquire_owned() => Ok(permit),
        };
        let overrides = self.check.as_deref().map(|check| &check.overrides);
        let mut verdict = match host_permit {
            Err(reason) => Verdict::unattempted(reason.failure()),
            Ok(_host_permit) => {
                let mut tally = Tally::default();
                let checked = tokio::select! {
                    biased;
                    reason = self.stop.stopped() => Err(reason),
                    verdict = retry::check(&self.engine.prober, &self.engine.pacer, &self.target, overrides, self.engine.policy, &mut tally) => Ok(verdict),
                };
                checked.unwrap_or_else(|reason| tally.cut_short(reason.failure()))
            }
        };
        verdict.slow = is_slow(&verdict, self.engine.slow);
        let check = self.check.as_deref();
        send(&self.results, self.origin, self.text, check, verdict).await;
    }
}

/// Whether a verdict is healthy but slower than `threshold`.
fn is_slow(verdict: &Verdict, threshold: Option<Duration>) -> bool {
    match (threshold, verdict.latency) {
        (Some(threshold), Some(latency)) => verdict.failure.is_none() && latency > threshold,
        _ => false,
    }
}

/// Per-host:port semaphores, kept only while some task holds them.
struct HostLimits {
    per_host: usize,
    hosts: HashMap<String, Weak<Semaphore>>,
    sweep_at: usize,
}

impl HostLimits {
    fn new(per_host: usize) -> Self {
        HostLimits {
            per_host,
            hosts: HashMap::new(),
            sweep_at: HOST_SWEEP_MIN,
        }
    }

    fn limiter(&mut self, key: String) -> Arc<Semaphore> {
        if let Some(limiter) = self.hosts.get(&key).and_then(Weak::upgrade) {
            return limiter;
        }
        if self.hosts.len() >= self.sweep_at {
            self.hosts.retain(|_, limiter| limiter.strong_count() > 0);
            self.sweep_at = (self.hosts.len() * 2).max(HOST_SWEEP_MIN);
        }
        let limiter = Arc::new(Semaphore::new(self.per_host));
        self.hosts.insert(key, Arc::downgrade(&limiter));
        limiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_healthy_results_over_the_threshold_are_slow() {
        let verdict = |ms, failure: Option<Failure>| Verdict {
            latency: Some(Duration::from_millis(ms)),
            attempts: 1,
            failure,
            ..Verdict::default()
        };
        let threshold = Some(Duration::from_millis(100));
        assert!(is_slow(&verdict(150, None), threshold));
        assert!(!is_slow(&verdict(100, None), threshold));
        assert!(!is_slow(&verdict(150, None), None));
        let failed = Failure::new(ErrorKind::Status, "500");
        assert!(!is_slow(&verdict(150, Some(failed)), threshold));
    }

    #[test]
    fn host_limiters_are_shared_while_held_and_swept_after() {
        let mut hosts = HostLimits::new(2);
        let first = hosts.limiter("a:80".into());
        let again = hosts.limiter("a:80".into());
        assert!(Arc::ptr_eq(&first, &again));
        drop((first, again));
        for n in 0..(HOST_SWEEP_MIN * 3) {
            hosts.limiter(format!("h{n}:80"));
        }
        assert!(hosts.hosts.len() <= HOST_SWEEP_MIN + 1);
    }
}
