//! `--format prometheus`: the text exposition format, with blackbox_exporter's metric names
//! so that dashboards and alerts written for it work unchanged.
//!
//! Every probe sample is labelled by `target`, and by `name` when any entry of the run has
//! one (empty for those without: to Prometheus an empty label is no label, and one label
//! set per metric is what node_exporter's textfile collector accepts). A target listed
//! twice under the same name gives one series: the first result that failed, else the first.

use std::collections::HashMap;
use std::fmt::Write;

use crate::outcome::TargetResult;
use crate::summary::Summary;
use crate::target::TargetKind;

/// A per-target metric: name, help, and the value of one result (none: no sample).
type ProbeMetric = (&'static str, &'static str, fn(&TargetResult) -> Option<f64>);

/// The per-target metrics, in the order they are printed.
const PROBE_METRICS: [ProbeMetric; 6] = [
    (
        "probe_success",
        "Whether the target is healthy (1) or not (0).",
        |result| Some(if result.ok { 1.0 } else { 0.0 }),
    ),
    (
        "probe_duration_seconds",
        "Duration of the last completed attempt until its verdict, in seconds.",
        |result| result.latency_ms.map(|latency| latency.as_secs_f64()),
    ),
    (
        "probe_http_status_code",
        "Final HTTP status code; 0 when no response came.",
        |result| {
            (result.kind == Some(TargetKind::Http)).then(|| f64::from(result.status.unwrap_or(0)))
        },
    ),
    (
        "probe_ssl_earliest_cert_expiry",
        "Earliest expiry among the TLS certificates served with the response, in Unix seconds.",
        |result| result.cert_expires_at.map(|unix| unix as f64),
    ),
    (
        "probe_dns_lookup_time_seconds",
        "Time the host name's lookup took, in seconds; absent when none was made.",
        |result| result.timings.dns_ms.map(seconds),
    ),
    (
        "probe_ip_protocol",
        "IP version of the address that answered: 4 or 6.",
        |result| {
            result
                .address
                .map(|address| if address.is_ipv4() { 4.0 } else { 6.0 })
        },
    ),
];

/// `probe_http_duration_seconds`' phases: blackbox_exporter's names for those of
/// [`crate::outcome::Timings::phases`], in its order (dns, connect, tls, ttfb, body).
const HTTP_PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

/// The round trip of an echo that was answered, as blackbox_exporter names it.
const ICMP_DURATION: &str = "probe_icmp_duration_seconds";
const ICMP_DURATION_HELP: &str =
    "Duration of the ICMP echo's phases (rtt: request to reply), in seconds.";

/// The whole exposition for `results` (in input order) and the run's `summary`.
pub(crate) fn render(results: &[TargetResult], summary: &Summary) -> String {
    let series = one_per_series(results);
    let named = series.iter().any(|result| result.name.is_some());
    let mut out = String::new();
    for (metric, help, value) in PROBE_METRICS {
        let samples: Vec<_> = series
            .iter()
            .filter_map(|result| Some((*result, value(result)?)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        family(&mut out, metric, help);
        for (result, value) in samples {
            sample(&mut out, metric, result, named, None, value);
        }
    }
    let phases: Vec<_> = series
        .iter()
        .filter(|result| result.kind == Some(TargetKind::Http))
        .flat_map(|result| {
            HTTP_PHASES
                .into_iter()
                .zip(result.timings.phases())
                .filter_map(move |(phase, (_, ms))| Some((*result, phase, ms?)))
        })
        .collect();
    if !phases.is_empty() {
        let metric = "probe_http_duration_seconds";
        family(
            &mut out,
            metric,
            "Duration of each phase of the last attempt's final request, in seconds; \
             only the phases that happened.",
        );
        for (result, phase, ms) in phases {
            sample(&mut out, metric, result, named, Some(phase), seconds(ms));
        }
    }
    // blackbox_exporter's ICMP prober reports the round trip as a phase of its own.
    let round_trips: Vec<_> = series
        .iter()
        .filter(|result| result.kind == Some(TargetKind::Icmp) && result.ok)
        .filter_map(|result| Some((*result, result.latency_ms?.as_secs_f64())))
        .collect();
    if !round_trips.is_empty() {
        family(&mut out, ICMP_DURATION, ICMP_DURATION_HELP);
        for (result, value) in round_trips {
            sample(&mut out, ICMP_DURATION, result, named, Some("rtt"), value);
        }
    }
    let run = [
        (
            "upcheck_targets",
            "Targets in the run, invalid ones included.",
            summary.total as f64,
        ),
        (
            "upcheck_failed",
            "Targets found unhealthy or invalid.",
            summary.failed as f64,
        ),
        (
            "upcheck_run_duration_seconds",
            "Wall time of the run, in seconds.",
            seconds(summary.elapsed_ms),
        ),
    ];
    for (metric, help, value) in run {
        family(&mut out, metric, help);
        let _ = writeln!(out, "{metric} {value}");
    }
    out
}

/// Seconds from milliseconds kept to the microsecond, as the nearest `f64` to the decimal:
/// dividing by 1,000 alone printed `0.0030670000000000003` for 3.067 ms.
fn seconds(millis: f64) -> f64 {
    (millis * 1000.0).round() / 1_000_000.0
}

/// One sample of `metric` for `result`, labelled by target (and name, when any entry has
/// one) and by `phase` when given.
fn sample(
    out: &mut String,
    metric: &str,
    result: &TargetResult,
    named: bool,
    phase: Option<&str>,
    value: f64,
) {
    let _ = write!(out, "{metric}{{target=\"{}\"", escape_label(&result.target));
    if named {
        let name = result.name.as_deref().unwrap_or_default();
        let _ = write!(out, ",name=\"{}\"", escape_label(name));
    }
    if let Some(phase) = phase {
        let _ = write!(out, ",phase=\"{phase}\"");
    }
    let _ = writeln!(out, "}} {value}");
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, metric: &str, help: &str) {
    let _ = writeln!(out, "# HELP {metric} {help}");
    let _ = writeln!(out, "# TYPE {metric} gauge");
}

/// One result per `target` and `name`: the first that failed, else the first.
fn one_per_series(results: &[TargetResult]) -> Vec<&TargetResult> {
    let mut chosen: Vec<&TargetResult> = Vec::with_capacity(results.len());
    let mut index: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for result in results {
        let key = (result.target.as_str(), result.name.as_deref());
        match index.get(&key) {
            Some(&at) => {
                if chosen[at].ok && !result.ok {
                    chosen[at] = result;
                }
            }
            None => {
                index.insert(key, chosen.len());
                chosen.push(result);
            }
        }
    }
    chosen
}

/// A label value escaped as the text format asks: backslash, double quote and line feed.
pub(crate) fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ErrorKind, Failure};
    use crate::report::sample_result as result;
    use std::time::Duration;

    #[test]
    fn milliseconds_become_the_nearest_seconds() {
        assert_eq!(seconds(3.067).to_string(), "0.003067");
        assert_eq!(seconds(0.24).to_string(), "0.00024");
        assert_eq!(seconds(1500.0).to_string(), "1.5");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), r"a\nb");
        assert_eq!(escape_label("http://x/?a=1,b=2"), "http://x/?a=1,b=2");
    }

    #[test]
    fn a_target_listed_twice_is_one_series_and_failures_win() {
        let down = Failure::new(ErrorKind::Status, "500");
        let results = [
            result(0, "http://a/", None),
            result(1, "http://a/", Some(down)),
            result(2, "tcp://b:1", None),
        ];
        let series = one_per_series(&results);
        assert_eq!(series.len(), 2);
        assert!(!series[0].ok);
        let summary = crate::summary::Totals::default().summary(Duration::from_secs(1), false);
        let text = render(&results, &summary);
        assert!(text.contains("probe_success{target=\"http://a/\"} 0\n"));
        assert!(text.contains("probe_duration_seconds{target=\"tcp://b:1\"} 1.5\n"));
        assert!(!text.contains("probe_http_status_code{target=\"tcp://b:1\"}"));
        assert!(!text.contains("probe_ssl_earliest_cert_expiry"));
        assert!(!text.contains("name="));
        assert!(!text.contains("probe_icmp_duration_seconds"));
    }

    #[test]
    fn answered_echoes_give_their_round_trip_as_the_rtt_phase() {
        let down = Failure::new(ErrorKind::Timeout, "no answer");
        let results = [
            result(0, "icmp://127.0.0.1", None),
            result(1, "icmp://127.0.0.2", Some(down)),
        ];
        let summary = crate::summary::Totals::default().summary(Duration::from_secs(1), false);
        let text = render(&results, &summary);
        assert!(text.contains(
            "probe_icmp_duration_seconds{target=\"icmp://127.0.0.1\",phase=\"rtt\"} 1.5\n"
        ));
        assert!(!text.contains("probe_icmp_duration_seconds{target=\"icmp://127.0.0.2\""));
        assert!(text.contains("probe_success{target=\"icmp://127.0.0.2\"} 0\n"));
    }
}
