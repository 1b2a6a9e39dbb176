//! Checking one target to a verdict: attempts, retries with backoff, and `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use tokio::time::Instant;

use crate::inflight::Ticket;
use crate::outcome::{ErrorKind, Failure, Verdict};
use crate::probe::{Attempt, Prober, Reuse, TargetSettings};
use crate::rate::Pacer;
use crate::target::Target;
use crate::values::human_duration;

/// Longest `Retry-After` honoured; a server asking for more is treated as a final answer.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// First backoff step; doubled for each further retry.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// Pause before trying again when the process is out of file descriptors: sockets free up
/// as other probes finish.
const OUT_OF_FILES_PAUSE: Duration = Duration::from_millis(20);

/// Longest backoff between attempts, so a handful of retries never outlasts a typical timeout.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// What is known of a check so far; kept by the caller so a cancelled check can still report it.
#[derive(Default)]
pub(crate) struct AttemptLog {
    /// Attempts started.
    pub(crate) attempts: u32,
    /// The last attempt that completed.
    pub(crate) last: Option<Attempt>,
    /// The check's place among those in flight, told of each attempt.
    pub(crate) ticket: Option<Ticket>,
}

impl AttemptLog {
    /// A verdict from what is known, ending in `failure` (a check that was cut short).
    pub(crate) fn cut_short(&self, failure: Failure) -> Verdict {
        Verdict {
            status: self.last.as_ref().and_then(|a| a.status),
            latency: self.last.as_ref().map(|a| a.latency),
            attempts: self.attempts,
            failure: Some(failure),
            cert: self.last.as_ref().and_then(|a| a.cert),
            banner: self.last.as_ref().and_then(|a| a.banner.clone()),
            slow: false,
            address: self.last.as_ref().and_then(|a| a.address),
            timings: self.last.as_ref().map(|a| a.timings).unwrap_or_default(),
        }
    }
}

/// Retries and the run's deadline, which together decide whether another attempt is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    /// Extra attempts after a transient failure.
    pub(crate) retries: u32,
    /// When the whole run must end.
    pub(crate) deadline: Option<Instant>,
}

impl RetryPolicy {
    /// Whether the run's deadline has passed.
    pub(crate) fn past_deadline(&self) -> bool {
        passes_deadline(Duration::ZERO, self.deadline)
    }
}

/// Probes `target` as `settings` say until it is healthy, fails for good, or runs out of
/// retries; every attempt, a retry included, first waits for its turn under `--rate`.
pub(crate) async fn until_final(
    prober: &Prober,
    pacer: &Pacer,
    target: &Target,
    settings: &TargetSettings,
    reuse: Reuse,
    policy: RetryPolicy,
    log: &mut AttemptLog,
) -> Verdict {
    let mut waited_for_files = Duration::ZERO;
    loop {
        pacer.wait_turn().await;
        log.attempts += 1;
        if let Some(ticket) = &log.ticket {
            ticket.attempt(log.attempts);
        }
        let attempt = prober.attempt(target, settings, reuse).await;
        // Out of file descriptors is back-pressure: wait for sockets to free up, without
        // counting an attempt, for as long as one attempt may take.
        if attempt.out_of_files && waited_for_files < settings.timeout {
            log.attempts -= 1;
            tokio::time::sleep(OUT_OF_FILES_PAUSE).await;
            waited_for_files += OUT_OF_FILES_PAUSE;
            continue;
        }
        // `Retry-After: 0` (or a date gone by) asks for no pause at all: back off as usual
        // rather than hammer the server in a tight loop.
        let retry_after = attempt.retry_after.filter(|wait| !wait.is_zero());
        let transient = attempt
            .failure
            .as_ref()
            .is_some_and(|f| is_transient(f, attempt.status));
        log.last = Some(attempt);
        if !transient || log.attempts > policy.retries {
            return final_verdict(log);
        }
        let wait = match retry_after {
            Some(wait) if wait > MAX_RETRY_AFTER || passes_deadline(wait, policy.deadline) => {
                return log.cut_short(Failure::new(
                    ErrorKind::RateLimited,
                    format!(
                        "asked to retry after {}, {}",
                        human_duration(wait),
                        if wait > MAX_RETRY_AFTER {
                            "longer than the 60s upcheck waits"
                        } else {
                            "past the deadline"
                        }
                    ),
                ));
            }
            Some(wait) => wait,
            None => backoff(log.attempts),
        };
        tokio::time::sleep(wait).await;
    }
}

fn final_verdict(log: &AttemptLog) -> Verdict {
    let Some(last) = &log.last else {
        return Verdict::default();
    };
    Verdict {
        status: last.status,
        latency: Some(last.latency),
        attempts: log.attempts,
        failure: last.failure.clone(),
        cert: last.cert,
        banner: last.banner.clone(),
        slow: false,
        address: last.address,
        timings: last.timings,
    }
}

/// Failures worth another attempt: the network or the server may recover.
fn is_transient(failure: &Failure, status: Option<u16>) -> bool {
    match failure.kind {
        ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Dns => true,
        ErrorKind::Status | ErrorKind::RateLimited => {
            status.is_some_and(|s| s == 429 || (500..=599).contains(&s))
        }
        _ => false,
    }
}

fn passes_deadline(wait: Duration, deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| Instant::now() + wait > deadline)
}

/// Exponential backoff with jitter: a random wait between half and all of the step, so
/// many targets failing together do not retry in lockstep.
fn backoff(attempts: u32) -> Duration {
    let step = BACKOFF_BASE
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let half = step / 2;
    half + half.mul_f64(random_fraction())
}

/// A fraction in [0, 1) from the standard library's randomly keyed hasher: enough for jitter.
fn random_fraction() -> f64 {
    let bits = RandomState::new().hash_one(Instant::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        for attempts in 1..=20 {
            let step = BACKOFF_BASE
                .saturating_mul(1 << (attempts - 1).min(16))
                .min(BACKOFF_CAP);
            let wait = backoff(attempts);
            assert!(wait >= step / 2 && wait <= step, "{attempts}: {wait:?}");
        }
        assert!(backoff(30) <= BACKOFF_CAP);
    }

    #[test]
    fn only_network_errors_5xx_and_429_are_transient() {
        let failure = |kind| Failure::new(kind, "x");
        assert!(is_transient(&failure(ErrorKind::Timeout), None));
        assert!(is_transient(&failure(ErrorKind::Connect), None));
        assert!(is_transient(&failure(ErrorKind::Status), Some(503)));
        assert!(is_transient(&failure(ErrorKind::RateLimited), Some(429)));
        assert!(!is_transient(&failure(ErrorKind::Status), Some(404)));
        assert!(!is_transient(&failure(ErrorKind::Tls), None));
        assert!(!is_transient(&failure(ErrorKind::Body), Some(200)));
    }
}
