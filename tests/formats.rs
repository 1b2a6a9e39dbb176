use std::collections::HashMap;
use std::fs;

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{PrometheusType, PrometheusValue};

use crate::support::{
    checks_file, list_file, path, refused_port, result_for, upcheck, Server, Upcheck,
};

// --- Slow ----------------------------------------------------------------------------------

#[test]
fn slow_responses_are_marked_and_fail_only_with_fail_slow() {
    let server = Server::start();
    let (fast, slow) = (server.url("/ok"), server.url("/slow/1000"));
    let run = upcheck(&["-f", "json", "--slow", "500ms", "-u", &fast, "-u", &slow]);
    assert_eq!(run.code, Some(0), "slow is still healthy");
    let document = run.document();
    let results = document["results"].as_array().unwrap();
    assert_eq!(result_for(results, &slow)["slow"], true);
    assert_eq!(result_for(results, &slow)["ok"], true);
    assert_eq!(result_for(results, &fast)["slow"], false);
    assert_eq!(document["summary"]["slow"], 1);

    let run = upcheck(&["--slow", "500ms", "--fail-slow", "-u", &fast, "-u", &slow]);
    assert_eq!(run.code, Some(1));
    let line = run.stdout.lines().find(|l| l.contains("/slow/")).unwrap();
    assert!(line.starts_with("SLOW 200"), "{line}");
    assert!(
        run.stdout.contains("2 ok (1 slow), 0 failed"),
        "{}",
        run.stdout
    );

    let quiet = upcheck(&["-q", "--slow", "500ms", "-u", &fast, "-u", &slow]);
    assert_eq!(
        quiet.stdout.lines().count(),
        3,
        "-q keeps slow lines (then the summary and phase lines): {}",
        quiet.stdout
    );

    let unmarked = upcheck(&["-f", "jsonl", "-u", &slow]);
    assert_eq!(unmarked.jsonl()[0]["slow"], false, "no --slow, never slow");
}

#[test]
fn fail_slow_needs_slow() {
    let run = upcheck(&["--fail-slow", "-u", "http://127.0.0.1:1/"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("--slow"), "{}", run.stderr);
}

// --- Prometheus ----------------------------------------------------------------------------

/// Parses the exposition with a real parser and returns every sample by metric and labels.
fn scrape(text: &str) -> HashMap<(String, String, String), f64> {
    let exposition = parse_prometheus(text)
        .unwrap_or_else(|err| panic!("not a valid exposition ({err:?}):\n{text}"));
    let mut samples = HashMap::new();
    for (metric, family) in &exposition.families {
        assert_eq!(family.family_type, PrometheusType::Gauge, "{metric}");
        assert!(!family.help.is_empty(), "{metric} has # HELP");
        for sample in family.iter_samples() {
            let labels = sample.get_labelset().unwrap();
            let label = |name| labels.get_label_value(name).unwrap_or_default().to_owned();
            let value = match &sample.value {
                PrometheusValue::Gauge(number) => number.as_f64(),
                other => panic!("{metric}: not a gauge: {other:?}"),
            };
            // Phases are series of their own: `probe_http_duration_seconds:connect`.
            let metric = match labels.get_label_value("phase") {
                Some(phase) => format!("{metric}:{phase}"),
                None => metric.clone(),
            };
            let key = (metric, label("target"), label("name"));
            assert!(samples.insert(key, value).is_none(), "a duplicate series");
        }
    }
    samples
}

#[test]
fn prometheus_uses_blackbox_names_and_parses() {
    let server = Server::start();
    let tls = Server::start_tls();
    let odd = server.url("/ok?q=\"quoted\"&path=a\\b,c");
    let tcp = format!("tcp://127.0.0.1:{}", refused_port());
    let list = list_file(&[
        server.url("/ok"),
        server.url("/status/500"),
        server.url("/ok"),
        tcp.clone(),
        tls.url("/ok"),
        "gopher://x/".to_owned(),
    ]);
    let run = upcheck(&["-f", "prometheus", "-k", path(&list), "-u", &odd]);
    assert_eq!(run.code, Some(1), "the contract's exit codes");
    for metric in [
        "probe_success",
        "probe_duration_seconds",
        "probe_http_status_code",
        "probe_ssl_earliest_cert_expiry",
        "upcheck_targets",
        "upcheck_failed",
        "upcheck_run_duration_seconds",
    ] {
        assert!(
            run.stdout.contains(&format!("# HELP {metric} "))
                && run.stdout.contains(&format!("# TYPE {metric} gauge\n")),
            "{metric}:\n{}",
            run.stdout
        );
    }
    let samples = scrape(&run.stdout);
    let get = |metric: &str, target: &str| samples.get(&(metric.into(), target.into(), "".into()));
    assert_eq!(get("probe_success", &server.url("/ok")), Some(&1.0));
    assert_eq!(get("probe_success", &server.url("/status/500")), Some(&0.0));
    assert_eq!(
        get("probe_http_status_code", &server.url("/status/500")),
        Some(&500.0)
    );
    assert_eq!(
        get("probe_success", &odd),
        Some(&1.0),
        "escaped label round-trips"
    );
    assert_eq!(get("probe_success", &tcp), Some(&0.0));
    assert_eq!(
        get("probe_http_status_code", &tcp),
        None,
        "no status for TCP"
    );
    assert!(get("probe_ssl_earliest_cert_expiry", &tls.url("/ok")).is_some_and(|&v| v > 1e9));
    assert_eq!(get("probe_success", "gopher://x/"), Some(&0.0));
    assert!(get("probe_duration_seconds", &server.url("/ok")).is_some_and(|&v| v > 0.0 && v < 5.0));
    assert_eq!(get("upcheck_targets", ""), Some(&7.0));
    assert_eq!(get("upcheck_failed", ""), Some(&3.0));
    assert!(get("upcheck_run_duration_seconds", "").is_some_and(|&v| v > 0.0));
}

#[test]
fn prometheus_labels_by_name_when_entries_have_one() {
    let server = Server::start();
    let checks = checks_file(&format!(
        "[[check]]\nname = 'say \"hi\" \\ bye'\nurl = \"{}\"\n",
        server.url("/ok")
    ));
    let run = upcheck(&[
        "-f",
        "prometheus",
        "--checks",
        path(&checks),
        "-u",
        &server.url("/status/503"),
    ]);
    let samples = scrape(&run.stdout);
    let named = (
        "probe_success".to_owned(),
        server.url("/ok"),
        r#"say "hi" \ bye"#.to_owned(),
    );
    assert_eq!(samples.get(&named), Some(&1.0), "{}", run.stdout);
    let unnamed = (
        "probe_success".to_owned(),
        server.url("/status/503"),
        String::new(),
    );
    assert_eq!(samples.get(&unnamed), Some(&0.0));
}

// --- -o FILE -------------------------------------------------------------------------------

#[test]
fn output_goes_to_the_file_atomically_and_not_to_stdout() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upcheck.prom");
    fs::write(&file, "old\n").unwrap();
    let target = file.to_str().unwrap();
    let run = upcheck(&["-f", "prometheus", "-o", target, "-u", &server.url("/ok")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let written = fs::read_to_string(&file).unwrap();
    assert!(scrape(&written).len() >= 4, "{written}");
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left behind");

    let run = upcheck(&["-f", "jsonl", "--output", target, "-u", &server.url("/ok")]);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.stdout, "");
    assert!(fs::read_to_string(&file)
        .unwrap()
        .starts_with("{\"target\""));
}

#[test]
fn a_failed_run_leaves_the_old_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    fs::write(&file, "old\n").unwrap();
    let target = file.to_str().unwrap();
    // Only comments: a usage error, found after the output was opened.
    let run = Upcheck::new()
        .format("json")
        .args(["-o", target, "-"])
        .stdin("# nothing\n")
        .run();
    assert_eq!(run.code, Some(2));
    assert_eq!(fs::read_to_string(&file).unwrap(), "old\n");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no litter");

    let run = upcheck(&[
        "-o",
        "/nonexistent/dir/report.txt",
        "-u",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("/nonexistent/dir/report.txt"),
        "{}",
        run.stderr
    );
}

// --- Nagios --------------------------------------------------------------------------------

#[test]
fn nagios_ok_is_one_line_and_exit_0() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("nagios")
        .urls([server.url("/ok"), server.url("/ok?2")])
        .run();
    let out = &run.stdout;
    assert_eq!(run.code, Some(0));
    let (status, perfdata) = out.trim_end().split_once(" | ").unwrap();
    assert_eq!(status, "UPCHECK OK - 2 of 2 up");
    assert!(
        perfdata.starts_with("total=2;;; ok=2;;; down=0;;;"),
        "{perfdata}"
    );
    assert!(perfdata.contains(" time="), "{perfdata}");
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn nagios_warns_on_slow_and_expiring_certificates() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("nagios")
        .args(["--slow", "500ms"])
        .urls([server.url("/slow/1000"), server.url("/ok")])
        .run();
    let out = &run.stdout;
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.starts_with("UPCHECK WARNING - 1 of 2 slow: "), "{out}");
    assert!(
        out.lines().nth(1).unwrap().starts_with("[WARNING] "),
        "{out}"
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let tls = Server::start_tls_expiring_at(now + 3 * 86_400 + 3600);
    let run = Upcheck::new()
        .format("nagios")
        .args(["-k", "--cert-min-days", "7"])
        .urls([tls.url("/ok")])
        .run();
    let out = &run.stdout;
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.starts_with("UPCHECK WARNING - 1 certificate expiring: "),
        "{out}"
    );
    assert!(out.contains("cert_expiring=1;;;"), "{out}");
}

#[test]
fn nagios_is_critical_when_anything_is_down_or_the_deadline_passes() {
    let server = Server::start();
    let checks = checks_file(&format!(
        "[[check]]\nname = \"api\"\nurl = \"{}\"\n",
        server.url("/status/500")
    ));
    let run = Upcheck::new()
        .format("nagios")
        .args(["--checks", path(&checks)])
        .urls([
            server.url("/ok"),
            format!("tcp://127.0.0.1:{}", refused_port()),
        ])
        .run();
    let out = &run.stdout;
    assert_eq!(run.code, Some(2), "{out}");
    let mut lines = out.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("UPCHECK CRITICAL - 2 of 3 down: api, tcp://127.0.0.1:"),
        "{first}"
    );
    assert!(first.contains(" | total=3;;; ok=1;;; down=2;;;"), "{first}");
    let rest: Vec<_> = lines.collect();
    assert_eq!(rest.len(), 2, "{out}");
    assert!(rest[0].starts_with("[CRITICAL] api (http://"), "{out}");
    assert!(rest[0].ends_with("status: got 500 Internal Server Error, expected 200-399"));
    assert!(rest[1].contains("connect: connection refused"), "{out}");

    let run = Upcheck::new()
        .format("nagios")
        .args(["-d", "300ms"])
        .urls([server.url("/hang")])
        .run();
    let out = &run.stdout;
    assert_eq!(run.code, Some(2), "{out}");
    assert!(
        out.starts_with("UPCHECK CRITICAL - the 300ms deadline passed: 1 of 1 not checked"),
        "{out}"
    );
}

#[test]
fn nagios_usage_errors_are_unknown_with_exit_3() {
    for args in [
        &["-f", "nagios", "-c", "0", "-u", "http://127.0.0.1:1/"][..],
        &["--format=nagios", "--bogus"],
        &["-qfnagios", "/nonexistent/list.txt"],
        &["-f", "nagios", "--checks", "/nonexistent/checks.toml"],
    ] {
        let run = upcheck(args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.starts_with("UPCHECK UNKNOWN - "),
            "{args:?}: {}",
            run.stdout
        );
        assert_eq!(run.stdout.lines().count(), 1);
    }
    let run = upcheck(&["-f", "json", "-c", "0", "-u", "http://127.0.0.1:1/"]);
    assert_eq!(run.code, Some(2), "other formats keep the contract's 2");
    let run = upcheck(&["-f", "nagios", "--help"]);
    assert_eq!(run.code, Some(0));
}

#[test]
fn an_upper_case_http_scheme_still_gets_the_http_status_sample() {
    let server = Server::start();
    let target = format!("HTTP://{}/ok", server.addr);
    let run = upcheck(&["-f", "prometheus", "-u", &target]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let sample = format!("probe_http_status_code{{target=\"{target}\"}} 200\n");
    assert!(run.stdout.contains(&sample), "{}", run.stdout);
}
