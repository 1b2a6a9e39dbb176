//! The run's totals and latency percentiles, kept in constant memory however long the list.

use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::outcome::{millis, ErrorKind, TargetResult, Timings};
use crate::state::Changes;

/// Sub-buckets per power of two: percentiles come out within 1% of the true value.
const SUB_BUCKETS: u64 = 128;

/// Powers of two covered above the exact range; 2^40 µs is about 12 days.
const OCTAVES: u64 = 40;

/// Counts results as they arrive and produces the summary at the end.
#[derive(Debug)]
pub(crate) struct Totals {
    total: u64,
    ok: u64,
    failed: u64,
    skipped: u64,
    deadline_skipped: u64,
    slow: u64,
    cert_expiring: u64,
    failed_by_kind: FailedByKind,
    latencies: LatencyHistogram,
    /// One histogram per phase of [`Timings::phases`], in its order.
    phases: Vec<LatencyHistogram>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            total: 0,
            ok: 0,
            failed: 0,
            skipped: 0,
            deadline_skipped: 0,
            slow: 0,
            cert_expiring: 0,
            failed_by_kind: FailedByKind::default(),
            latencies: LatencyHistogram::new(),
            phases: Timings::default()
                .phases()
                .iter()
                .map(|_| LatencyHistogram::new())
                .collect(),
        }
    }
}

impl Totals {
    /// Counts one result.
    pub(crate) fn record(&mut self, result: &TargetResult) {
        self.total += 1;
        if result.ok {
            self.ok += 1;
            self.slow += u64::from(result.slow);
        } else if result.is_skipped() {
            self.skipped += 1;
            if result.error_kind == Some(ErrorKind::Deadline) {
                self.deadline_skipped += 1;
            }
        } else {
            self.failed += 1;
            if result.error_kind == Some(ErrorKind::CertExpiry) {
                self.cert_expiring += 1;
            }
            if let Some(kind) = result.error_kind {
                self.failed_by_kind.count(kind);
            }
        }
        if let Some(latency) = result.latency_ms {
            self.latencies.record(latency);
        }
        for (histogram, (_, ms)) in self.phases.iter_mut().zip(result.timings.phases()) {
            if let Some(ms) = ms {
                histogram.record(Duration::from_secs_f64(ms / 1000.0));
            }
        }
    }

    /// Results counted so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Results counted as failed (invalid lines included).
    pub(crate) fn failed(&self) -> u64 {
        self.failed
    }

    /// The summary of everything counted, for a run that took `elapsed` (and was `stopped`
    /// early by the deadline or a signal, which makes it incomplete).
    pub(crate) fn summary(&self, elapsed: Duration, stopped: bool) -> Summary {
        Summary {
            total: self.total,
            ok: self.ok,
            failed: self.failed,
            skipped: self.skipped,
            slow: self.slow,
            deadline_skipped: self.deadline_skipped,
            cert_expiring: self.cert_expiring,
            failed_by_kind: self.failed_by_kind.most_first(),
            elapsed_ms: millis(elapsed),
            complete: self.skipped == 0 && !stopped,
            latency_ms: Percentiles {
                p50: self.latencies.percentile(50.0).map(millis),
                p95: self.latencies.percentile(95.0).map(millis),
                p99: self.latencies.percentile(99.0).map(millis),
                max: self.latencies.max.map(millis),
            },
            latency_bins: self.latencies.bins(),
            changes: None,
            phases: Timings::default()
                .phases()
                .iter()
                .zip(&self.phases)
                .filter(|(_, histogram)| histogram.count > 0)
                .map(|((name, _), histogram)| PhasePercentiles {
                    phase: name,
                    p50: histogram.percentile(50.0).map(millis).unwrap_or_default(),
                    p95: histogram.percentile(95.0).map(millis).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// The contract's `summary` object, and the counts that decide how the run ended.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct Summary {
    /// Results in all.
    pub(crate) total: u64,
    /// Healthy results.
    pub(crate) ok: u64,
    /// Unhealthy or invalid results.
    pub(crate) failed: u64,
    /// Results never checked (deadline or interrupted).
    pub(crate) skipped: u64,
    /// Healthy results slower than `--slow` (counted in `ok` too).
    pub(crate) slow: u64,
    /// Of the skipped results, those cut short by the deadline.
    #[serde(skip)]
    pub(crate) deadline_skipped: u64,
    /// Of the failed results, those failed only for a certificate within `--cert-min-days`.
    #[serde(skip)]
    pub(crate) cert_expiring: u64,
    /// Wall time of the run.
    pub(crate) elapsed_ms: f64,
    /// False when the deadline or a signal cut the run short.
    pub(crate) complete: bool,
    /// Latency percentiles over the results that have one.
    pub(crate) latency_ms: Percentiles,
    /// Failed results (not skipped ones) by `error_kind`, the most frequent first.
    pub(crate) failed_by_kind: FailedByKind,
    /// What changed since the `--state` file's run; `None` without `--state`.
    pub(crate) changes: Option<Changes>,
    /// Results per latency bin (see [`BIN_EDGES_MICROS`]), for the text histogram.
    #[serde(skip)]
    pub(crate) latency_bins: Vec<u64>,
    /// Per-phase percentiles, for the phases some result went through.
    #[serde(skip)]
    pub(crate) phases: Vec<PhasePercentiles>,
}

/// The median and 95th percentile of one phase of [`Timings`], in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PhasePercentiles {
    /// The phase's name: dns, connect, tls, ttfb or body.
    pub(crate) phase: &'static str,
    /// Median.
    pub(crate) p50: f64,
    /// 95th percentile.
    pub(crate) p95: f64,
}

impl Summary {
    /// Targets down: failed for any reason but a certificate within `--cert-min-days`.
    pub(crate) fn down(&self) -> u64 {
        self.failed.saturating_sub(self.cert_expiring)
    }
}

/// Latency percentiles in milliseconds; each `None` when no result has a latency.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub(crate) struct Percentiles {
    /// Median.
    pub(crate) p50: Option<f64>,
    /// 95th percentile.
    pub(crate) p95: Option<f64>,
    /// 99th percentile.
    pub(crate) p99: Option<f64>,
    /// Slowest.
    pub(crate) max: Option<f64>,
}

/// Counts per error kind; a list, not a map, as there are only a dozen kinds.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FailedByKind(Vec<(ErrorKind, u64)>);

impl FailedByKind {
    fn count(&mut self, kind: ErrorKind) {
        match self.0.iter_mut().find(|(seen, _)| *seen == kind) {
            Some((_, count)) => *count += 1,
            None => self.0.push((kind, 1)),
        }
    }

    /// The same counts, the most frequent first (ties by name, so the order is stable).
    fn most_first(&self) -> Self {
        let mut sorted = self.0.clone();
        sorted.sort_unstable_by_key(|&(kind, count)| (std::cmp::Reverse(count), kind.as_str()));
        FailedByKind(sorted)
    }

    /// Each kind with its count, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl Serialize for FailedByKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (kind, count) in &self.0 {
            map.serialize_entry(kind.as_str(), count)?;
        }
        map.end()
    }
}

/// The lower edges of the latency bins drawn in the text histogram, in microseconds: 1, 2
/// and 5 times each power of ten from 100 µs to 500 s, so labels read as round numbers;
/// below the first edge is one more bin.
pub(crate) const BIN_EDGES_MICROS: [u64; 21] = [
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
];

/// A log-bucketed histogram of microseconds: exact below 128 µs, within 1% above.
#[derive(Debug)]
struct LatencyHistogram {
    counts: Vec<u64>,
    count: u64,
    min: Option<Duration>,
    max: Option<Duration>,
}

impl LatencyHistogram {
    fn new() -> Self {
        LatencyHistogram {
            counts: vec![0; (SUB_BUCKETS * (OCTAVES + 1)) as usize],
            count: 0,
            min: None,
            max: None,
        }
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = bucket_of(micros).min(self.counts.len() - 1);
        self.counts[index] += 1;
        self.count += 1;
        self.min = Some(self.min.map_or(latency, |min| min.min(latency)));
        self.max = Some(self.max.map_or(latency, |max| max.max(latency)));
    }

    /// The nearest-rank percentile, clamped to the values actually seen.
    fn percentile(&self, percent: f64) -> Option<Duration> {
        let (min, max) = (self.min?, self.max?);
        let rank = ((percent / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let micros = bucket_middle(index as u64);
                return Some(Duration::from_micros(micros).clamp(min, max));
            }
        }
        Some(max)
    }
}

impl LatencyHistogram {
    /// Counts per bin: index 0 below the first of [`BIN_EDGES_MICROS`], index `i` from
    /// edge `i - 1` up to edge `i`; each fine bucket goes whole to the bin of its middle.
    fn bins(&self) -> Vec<u64> {
        let mut bins = vec![0; BIN_EDGES_MICROS.len() + 1];
        for (index, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                let middle = bucket_middle(index as u64);
                bins[BIN_EDGES_MICROS.partition_point(|&edge| edge <= middle)] += count;
            }
        }
        bins
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    let octave = u64::from(63 - micros.leading_zeros()) - SUB_BUCKETS.trailing_zeros() as u64;
    let sub = (micros >> octave) - SUB_BUCKETS;
    (SUB_BUCKETS + octave * SUB_BUCKETS + sub) as usize
}

fn bucket_middle(index: u64) -> u64 {
    if index < SUB_BUCKETS {
        return index;
    }
    let octave = (index - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (index - SUB_BUCKETS) % SUB_BUCKETS;
    let low = (SUB_BUCKETS + sub) << octave;
    let width = 1u64 << octave;
    low + width / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for micros in (0..5_000_000u64).step_by(37) {
            let index = bucket_of(micros);
            assert!(index >= last);
            last = index;
            let middle = bucket_middle(index as u64) as f64;
            assert!((middle - micros as f64).abs() <= (micros as f64 / 100.0).max(1.0));
        }
    }

    #[test]
    fn percentiles_follow_nearest_rank() {
        let mut histogram = LatencyHistogram::new();
        for ms in 1..=100u64 {
            histogram.record(Duration::from_millis(ms));
        }
        let close = |got: Option<Duration>, want_ms: f64| {
            let got = got.unwrap().as_secs_f64() * 1000.0;
            assert!(
                (got - want_ms).abs() <= want_ms / 100.0,
                "{got} vs {want_ms}"
            );
        };
        close(histogram.percentile(50.0), 50.0);
        close(histogram.percentile(95.0), 95.0);
        close(histogram.percentile(99.0), 99.0);
        assert_eq!(histogram.max, Some(Duration::from_millis(100)));
    }

    #[test]
    fn bins_split_at_round_edges() {
        let mut histogram = LatencyHistogram::new();
        for micros in [50, 150, 999, 1_000, 1_500, 7_000, 7_000, 600_000_000] {
            histogram.record(Duration::from_micros(micros));
        }
        let bins = histogram.bins();
        assert_eq!(&bins[..7], &[1, 1, 0, 1, 2, 0, 2]);
        assert_eq!(bins[BIN_EDGES_MICROS.len()], 1);
        assert_eq!(bins.iter().sum::<u64>(), 8);
    }

    #[test]
    fn failures_by_kind_come_most_frequent_first() {
        let mut kinds = FailedByKind::default();
        for kind in [
            ErrorKind::Dns,
            ErrorKind::Tls,
            ErrorKind::Timeout,
            ErrorKind::Timeout,
        ] {
            kinds.count(kind);
        }
        let sorted: Vec<_> = kinds.most_first().iter().collect();
        assert_eq!(
            sorted,
            [
                (ErrorKind::Timeout, 2),
                (ErrorKind::Dns, 1),
                (ErrorKind::Tls, 1)
            ]
        );
        assert_eq!(
            serde_json::to_string(&kinds.most_first()).unwrap(),
            r#"{"timeout":2,"dns":1,"tls":1}"#
        );
    }

    #[test]
    fn no_latencies_means_no_percentiles() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.percentile(50.0), None);
    }
}
