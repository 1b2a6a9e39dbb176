use std::time::{Duration, Instant};

use crate::support::{list_file, path, upcheck, Server};

/// Checks that the server saw `count` requests, the first and last at least `at_least` apart.
fn assert_spread(server: &Server, count: usize, at_least: Duration) {
    let requests = server.seen().requests;
    assert_eq!(requests.len(), count);
    let spread = requests[count - 1].at - requests[0].at;
    assert!(spread >= at_least, "{count} requests in {spread:?}");
}

#[test]
fn rate_spaces_out_requests_over_the_whole_run() {
    let server = Server::start();
    let list = list_file(&vec![server.url("/ok"); 30]);
    let run = upcheck(&["--rate", "20", "-c", "30", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.jsonl().len(), 30);
    // 30 starts at 20 per second are 29 intervals of 50 ms: 1.45 s, less scheduling noise.
    assert_spread(&server, 30, Duration::from_millis(1200));
}

#[test]
fn retries_count_against_the_rate() {
    let server = Server::start();
    let (a, b) = (server.url("/flaky/2/a"), server.url("/flaky/2/b"));
    let args = [
        "--rate",
        "4",
        "--retries",
        "2",
        "-f",
        "json",
        "-u",
        &a,
        "-u",
        &b,
    ];
    let run = upcheck(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.results().iter().all(|r| r["attempts"] == 3));
    // Six starts at 4 per second take 1.25 s; were retries not paced, the backoff alone
    // (at most 100 + 200 ms) would have finished both targets within about 0.6 s.
    assert_spread(&server, 6, Duration::from_millis(1000));
}

#[test]
fn waiting_for_a_turn_is_cut_short_by_the_deadline() {
    let server = Server::start();
    let list = list_file(&vec![server.url("/ok"); 5]);
    let started = Instant::now();
    // One request every 20 s: without the deadline this run would take 80 s.
    let run = upcheck(&["--rate", "0.05", "-d", "2s", "-f", "json", path(&list)]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the deadline is a promise"
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let results = run.results();
    // The first starts at once (whether it finishes before the deadline is up to the load).
    assert_eq!(results[0]["attempts"], 1);
    for waiting in &results[1..] {
        assert_eq!(waiting["error_kind"], "deadline");
        assert_eq!(
            waiting["attempts"], 0,
            "a request waiting for its turn never started"
        );
    }
    assert!(server.seen().requests.len() <= 1);
}
