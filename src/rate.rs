//! `--rate`: paces the start of requests over the whole run, for APIs that throttle.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::values::MAX_DURATION;

/// A request rate, kept as the interval between two request starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    interval: Duration,
}

impl Rate {
    /// Parses requests per second: a positive number, fractions allowed (`0.5` is one every 2 s).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let per_second: f64 = text
            .parse()
            .map_err(|_| format!("'{text}' is not a number of requests per second"))?;
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err("must be greater than zero".to_owned());
        }
        let interval = Duration::try_from_secs_f64(per_second.recip())
            .ok()
            .filter(|interval| *interval <= MAX_DURATION)
            .ok_or("is too slow to wait for (at least one request a year)")?;
        Ok(Rate { interval })
    }
}

/// A token bucket holding one token, refilled at the rate: requests start evenly spaced, so
/// any window of T seconds sees at most rate × T + 1 of them, never a burst.
///
/// Each caller reserves the next free start time and sleeps until it, rather than polling
/// for a token: starts stay exactly spaced whatever the timer's granularity, and a caller
/// cancelled while it sleeps (the deadline, a signal) simply never starts.
pub(crate) struct Pacer {
    interval: Option<Duration>,
    next_start: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `rate`; `None` never waits.
    pub(crate) fn new(rate: Option<Rate>) -> Self {
        Pacer {
            interval: rate.map(|rate| rate.interval),
            next_start: Mutex::new(None),
        }
    }

    /// Waits until one more request may start.
    pub(crate) async fn wait_turn(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let start = {
            let mut next_start = self
                .next_start
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let start = next_start.map_or(now, |next| next.max(now));
            *next_start = Some(start + interval);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_and_may_be_fractions() {
        let interval = |text| Rate::parse(text).map(|rate| rate.interval);
        assert_eq!(interval("20"), Ok(Duration::from_millis(50)));
        assert_eq!(interval("0.5"), Ok(Duration::from_secs(2)));
        assert!(interval("0").unwrap_err().contains("greater than zero"));
        assert!(interval("-3").unwrap_err().contains("greater than zero"));
        assert!(interval("inf").unwrap_err().contains("greater than zero"));
        assert!(interval("fast").unwrap_err().contains("'fast'"));
        assert!(interval("1e-300").unwrap_err().contains("too slow"));
        assert!(interval("1e-19").unwrap_err().contains("too slow"));
    }

    #[tokio::test(start_paused = true)]
    async fn starts_are_spaced_by_the_interval_after_the_first() {
        let pacer = Pacer::new(Some(Rate::parse("4").unwrap()));
        let began = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..5 {
            pacer.wait_turn().await;
            starts.push(began.elapsed());
        }
        let expected: Vec<_> = (0..5).map(|n| Duration::from_millis(250 * n)).collect();
        assert_eq!(starts, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pacer_keeps_no_more_than_one_token() {
        let pacer = Pacer::new(Some(Rate::parse("1").unwrap()));
        pacer.wait_turn().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let began = Instant::now();
        pacer.wait_turn().await;
        pacer.wait_turn().await;
        assert_eq!(began.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_rate_nothing_waits() {
        let pacer = Pacer::new(None);
        let began = Instant::now();
        for _ in 0..100 {
            pacer.wait_turn().await;
        }
        assert_eq!(began.elapsed(), Duration::ZERO);
    }
}
