use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use crate::support::{
    assert_matches_schema, finish, list_file, path, refused_port, upcheck, Server, Upcheck,
};

/// A list with one target of each common outcome.
fn mixed_list(server: &Server) -> tempfile::NamedTempFile {
    list_file(&[
        server.url("/ok"),
        server.url("/status/500"),
        format!("tcp://127.0.0.1:{}", refused_port()),
        "gopher://old.test/".to_owned(),
        server.url("/slow/50"),
    ])
}

#[test]
fn text_prints_a_line_per_result_and_a_summary() {
    let server = Server::start();
    let list = mixed_list(&server);
    let run = upcheck(&[path(&list)]);
    assert_eq!(run.code, Some(1));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", run.stdout);
    let line_for = |needle: &str| {
        *lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle}"))
    };
    assert!(line_for("/ok").starts_with("OK   200"));
    assert!(line_for("/status/500").starts_with("FAIL 500"));
    assert!(
        line_for("/status/500").contains("status: got 500 Internal Server Error, expected 200-399")
    );
    assert!(line_for("tcp://127.0.0.1").contains("connect: connection refused"));
    assert!(line_for("gopher://").contains(&format!("invalid: {}:4:", path(&list))));
    assert!(lines[5].starts_with("phases p50/p95: "), "{}", run.stdout);
    assert_eq!(lines[6], "3 failed: 1 connect, 1 invalid, 1 status");
    let summary = lines[7];
    assert!(summary.starts_with("5 checked in "), "{summary}");
    assert!(summary.contains("2 ok, 3 failed, 0 skipped"), "{summary}");
    assert!(
        summary.contains("p50") && summary.contains("max"),
        "{summary}"
    );
    assert!(
        !run.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn quiet_prints_only_unhealthy_results_and_the_summary() {
    let server = Server::start();
    let list = mixed_list(&server);
    let run = upcheck(&["-q", path(&list)]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    assert!(lines[..3].iter().all(|l| l.starts_with("FAIL")));
    assert!(lines[3].starts_with("phases p50/p95: "), "{}", run.stdout);
    assert!(lines[4].starts_with("3 failed: "), "{}", run.stdout);
    let run = upcheck(&["-q", "-f", "jsonl", path(&list)]);
    assert_eq!(run.jsonl().len(), 5, "-q applies to text only");
}

#[test]
fn json_is_one_document_matching_the_schema() {
    let server = Server::start();
    let list = mixed_list(&server);
    let run = upcheck(&["-f", "json", path(&list)]);
    let document = run.document();
    let summary = &document["summary"];
    assert_eq!(summary["total"], 5);
    assert_eq!(summary["ok"], 2);
    assert_eq!(summary["failed"], 3);
    assert_eq!(summary["skipped"], 0);
    assert_eq!(summary["complete"], true);
    let results = document["results"].as_array().unwrap();
    let mut latencies: Vec<f64> = results
        .iter()
        .filter_map(|r| r["latency_ms"].as_f64())
        .collect();
    latencies.sort_by(f64::total_cmp);
    assert_eq!(
        summary["latency_ms"]["max"].as_f64(),
        latencies.last().copied()
    );
    let p50 = summary["latency_ms"]["p50"].as_f64().unwrap();
    let nearest_rank = latencies[latencies.len().div_ceil(2) - 1];
    assert!(
        (p50 - nearest_rank).abs() <= nearest_rank * 0.01 + 0.001,
        "p50 {p50} vs {nearest_rank}"
    );
}

#[test]
fn json_latency_percentiles_are_null_without_latencies() {
    let run = upcheck(&["-f", "json", "-u", "nope://x"]);
    let document = run.document();
    let latency = &document["summary"]["latency_ms"];
    assert!(
        ["p50", "p95", "p99", "max"]
            .iter()
            .all(|p| latency[p].is_null()),
        "{latency}"
    );
}

#[test]
fn jsonl_is_one_schema_valid_result_per_line() {
    let server = Server::start();
    let list = mixed_list(&server);
    let run = upcheck(&["-f", "jsonl", path(&list)]);
    let results = run.jsonl();
    assert_eq!(results.len(), 5);
    for result in &results {
        assert_matches_schema(result, "result");
    }
}

#[test]
fn jsonl_streams_each_result_as_it_finishes() {
    let server = Server::start();
    let list = list_file(&[server.url("/slow/3000"), server.url("/ok")]);
    let started = Instant::now();
    let mut child = Upcheck::new().format("jsonl").args([path(&list)]).spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first_after = started.elapsed();
    assert!(first.contains("/ok"), "completion order: {first}");
    assert!(
        first_after < Duration::from_millis(2900),
        "the fast result came before the slow one finished ({first_after:?})"
    );
    let rest = finish(child);
    assert_eq!(rest.code, Some(0));
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let server = Server::start();
    let url = server.url("/ok");
    let on_terminal = |no_color: &str| {
        Upcheck::new()
            .urls([&url])
            .env("NO_COLOR", no_color)
            .on_terminal()
            .run()
            .stdout
    };
    assert!(
        on_terminal("").contains("\x1b[32mOK"),
        "colour on a terminal (NO_COLOR empty)"
    );
    assert!(
        !on_terminal("1").contains("\x1b[32m"),
        "no colour with NO_COLOR=1"
    );
}

#[test]
fn the_progress_bar_goes_to_stderr_only_when_asked_or_on_a_terminal() {
    let server = Server::start();
    let list = list_file(&[server.url("/slow/400"), server.url("/ok")]);
    let always = upcheck(&["--progress", "always", "-f", "jsonl", path(&list)]);
    assert!(
        always.stderr.contains("checked"),
        "bar drawn: {:?}",
        always.stderr
    );
    assert_eq!(always.jsonl().len(), 2, "stdout holds only results");
    for when in ["auto", "never"] {
        let run = upcheck(&["--progress", when, "-f", "jsonl", path(&list)]);
        assert_eq!(
            run.stderr, "",
            "--progress {when} with stderr not a terminal"
        );
    }
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let server = Server::start();
    let lines: Vec<String> = (0..1000).map(|_| server.url("/slow/20")).collect();
    let list = list_file(&lines);
    let mut child = Upcheck::new()
        .format("jsonl")
        .args(["-c", "8", path(&list)])
        .spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let run = finish(child);
    assert_eq!(run.code, Some(141), "{}", run.stderr);
    assert_eq!(run.stderr, "", "no panic, no message");
    assert!(server.seen().requests.len() < 1000, "the run stopped early");
}
