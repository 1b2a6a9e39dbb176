use std::time::{Duration, Instant};

use crate::support::{result_for, upcheck, Server, Upcheck};

/// Checks `paths` on one server in one run, beside a healthy target, and returns the results
/// once sure the run was quick, kept the faults to their own targets and said short things.
fn run_faults(server: &Server, args: &[&str], paths: &[&str]) -> Vec<serde_json::Value> {
    let healthy = server.url("/ok");
    let started = Instant::now();
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "1s"])
        .args(args)
        .urls(paths.iter().map(|p| server.url(p)))
        .urls([&healthy])
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run ends on time"
    );
    let results = run.results();
    assert_eq!(results.len(), paths.len() + 1);
    assert_eq!(
        result_for(&results, &healthy)["ok"],
        true,
        "a fault on one target affects no other"
    );
    for result in &results {
        if let Some(error) = result["error"].as_str() {
            assert!(error.len() < 200, "a short sentence: {error}");
        }
    }
    results
}

fn kind_of(server: &Server, results: &[serde_json::Value], path: &str) -> String {
    let result = result_for(results, &server.url(path));
    result["error_kind"].as_str().unwrap_or("ok").to_owned()
}

#[test]
fn target_side_faults_get_the_right_kind() {
    let server = Server::start();
    let cases = [
        ("/hang", "timeout"),
        ("/trickle", "timeout"),
        ("/stall-body", "ok"),
        ("/reset-headers", "protocol"),
        ("/reset-body", "ok"),
        ("/garbage", "protocol"),
        ("/close", "protocol"),
        ("/big-headers", "ok"),
        ("/endless", "ok"),
        ("/bad-chunked", "ok"),
        ("/informational", "ok"),
        ("/gzip", "ok"),
        ("/redirect-to/file:///etc/passwd", "redirect"),
        ("/redirect-to/ftp://127.0.0.1/", "redirect"),
        ("/redirect-to/mailto:ops@example.test", "redirect"),
    ];
    let paths: Vec<&str> = cases.iter().map(|(path, _)| *path).collect();
    let results = run_faults(&server, &[], &paths);
    for (path, kind) in cases {
        assert_eq!(kind_of(&server, &results, path), kind, "{path}");
    }
    let informational = result_for(&results, &server.url("/informational"));
    assert_eq!(informational["status"], 200, "1xx answers are skipped");
}

#[test]
fn a_server_closing_each_connection_after_its_answer_fails_no_target() {
    // HTTP/1.1 lets a server close an idle connection at any time. A request that went
    // out over one it had just closed is sent again over a new connection, so no target
    // fails for the connection the one before it left behind.
    let server = Server::start();
    let paths: Vec<String> = (0..40).map(|n| format!("/ok-then-close?{n}")).collect();
    let run = Upcheck::new()
        .format("jsonl")
        .args(["-c", "1", "--threads", "1"])
        .urls(paths.iter().map(|p| server.url(p)))
        .run();
    let results = run.jsonl();
    assert_eq!(results.len(), paths.len());
    for result in &results {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(
            result["attempts"], 1,
            "sent again within the attempt: {result}"
        );
    }
    assert_eq!(run.code, Some(0));
    assert_eq!(server.seen().connections, paths.len(), "one each");
}

#[test]
fn body_faults_show_when_the_body_is_read() {
    let server = Server::start();
    let cases = [
        ("/stall-body", "timeout"),
        ("/reset-body", "protocol"),
        ("/bad-chunked", "protocol"),
        ("/endless", "body"),
        ("/gzip", "body"),
    ];
    let paths: Vec<&str> = cases.iter().map(|(path, _)| *path).collect();
    let results = run_faults(
        &server,
        &["--body-contains", "ok", "--max-body", "256KiB"],
        &paths,
    );
    for (path, kind) in cases {
        assert_eq!(kind_of(&server, &results, path), kind, "{path}");
    }
    let endless = result_for(&results, &server.url("/endless"));
    assert!(
        endless["error"].as_str().unwrap().contains("262144 bytes"),
        "reading stops at --max-body: {endless}"
    );
}

#[test]
fn compressed_bodies_are_neither_asked_for_nor_decompressed() {
    let server = Server::start();
    let run = upcheck(&[
        "-f",
        "json",
        "--body-contains",
        "\u{1f}\u{1f}",
        "-u",
        &server.url("/gzip"),
    ]);
    assert_eq!(
        run.results()[0]["ok"],
        true,
        "the raw gzip-labelled bytes are matched"
    );
    assert_eq!(server.seen().requests[0].header("accept-encoding"), None);
}

#[test]
fn https_to_http_redirects_drop_credentials() {
    let (secure, plain) = (Server::start_tls(), Server::start());
    let downgrade = secure.url(&format!("/redirect-to/{}", plain.url("/ok")));
    let run = upcheck(&[
        "-k",
        "-f",
        "json",
        "-H",
        "Authorization: Bearer s3cret",
        "-u",
        &downgrade,
    ]);
    let result = &run.results()[0];
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(
        secure.seen().requests[0].header("authorization"),
        Some("Bearer s3cret")
    );
    assert_eq!(plain.seen().requests[0].header("authorization"), None);
}
