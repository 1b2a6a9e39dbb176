use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    command, finish, list_file, path, result_for, upcheck, wait_until, with_open_stdin, Server,
    Upcheck,
};

fn many(server: &Server, path: &str, count: usize) -> Vec<String> {
    (0..count).map(|_| server.url(path)).collect()
}

#[test]
fn concurrency_bounds_probes_in_flight() {
    let server = Server::start();
    let list = list_file(&many(&server, "/slow/150", 24));
    let run = upcheck(&["-c", "4", "--per-host", "50", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.jsonl().len(), 24);
    assert_eq!(
        server.seen().max_in_flight,
        4,
        "exactly -c probes in flight at the peak"
    );
}

#[test]
fn per_host_bounds_each_host_separately() {
    let (first, second) = (Server::start(), Server::start());
    let mut lines = Vec::new();
    for _ in 0..12 {
        lines.push(first.url("/slow/150"));
        lines.push(second.url("/slow/150"));
    }
    let list = list_file(&lines);
    let run = upcheck(&["-c", "20", "--per-host", "3", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0));
    assert_eq!(first.seen().max_in_flight, 3);
    assert_eq!(second.seen().max_in_flight, 3);
}

#[test]
fn a_list_sorted_by_host_does_not_wait_on_its_first_host() {
    let (first, second) = (Server::start(), Server::start());
    let mut lines = many(&first, "/slow/1000", 12);
    lines.extend(many(&second, "/slow/1000", 3));
    let list = list_file(&lines);
    let run = upcheck(&["-c", "6", "--per-host", "3", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.jsonl().len(), 15);
    let (first, second) = (first.seen(), second.seen());
    assert_eq!((first.max_in_flight, second.max_in_flight), (3, 3));
    // The second host's targets start beside the first host's first round, not after it:
    // the targets behind the busy first host wait without holding a -c slot.
    let gap = second.requests[0]
        .at
        .saturating_duration_since(first.requests[0].at);
    assert!(
        gap < Duration::from_millis(500),
        "the second host waited {gap:?}"
    );
}

#[test]
fn tcp_targets_count_against_per_host() {
    let server = Server::start();
    let mut lines = many(&server, "/slow/200", 4);
    lines.extend((0..4).map(|_| format!("tcp://{}", server.addr)));
    let list = list_file(&lines);
    // No HTTP connection is pooled: a connection the client opened for a request that an
    // idle one served instead would sit unused, and the server would count it as busy
    // just like a TCP connect check (seen under load with two workers: 5 and 7).
    let run = upcheck(&[
        "-H",
        "Connection: close",
        "-c",
        "20",
        "--per-host",
        "4",
        "-f",
        "jsonl",
        path(&list),
    ]);
    assert_eq!(run.code, Some(0));
    let seen = server.seen();
    assert_eq!(seen.max_in_flight, 4);
    assert_eq!(
        seen.connections, 8,
        "four HTTP connections and four connect checks"
    );
    // The four HTTP probes hold every per-host slot for 200 ms, so no TCP probe may connect
    // before one of them has been answered. (The server cannot tell when a client finished
    // a connect check, only when it reads its close, so "at once" is counted this way.)
    let first_answer = seen.answered.iter().min().copied().expect("an answer");
    let before = seen
        .accepted
        .iter()
        .filter(|at| **at < first_answer)
        .count();
    assert!(
        before <= 4,
        "{before} connections before the first answer: a TCP check beside four HTTP probes"
    );
}

#[test]
fn retries_recover_transient_failures() {
    let server = Server::start();
    let recovers = server.url("/flaky/2/a");
    let still_down = server.url("/flaky/5/b");
    let run = upcheck(&[
        "--retries",
        "2",
        "-f",
        "json",
        "-u",
        &recovers,
        "-u",
        &still_down,
    ]);
    assert_eq!(run.code, Some(1));
    let results = run.results();
    let recovers = result_for(&results, &recovers);
    assert_eq!(
        (recovers["ok"].as_bool(), recovers["attempts"].as_u64()),
        (Some(true), Some(3))
    );
    let still_down = result_for(&results, &still_down);
    assert_eq!(still_down["attempts"], 3);
    assert_eq!(still_down["status"], 503);
    assert_eq!(still_down["error_kind"], "status");
}

#[test]
fn permanent_failures_are_not_retried() {
    let server = Server::start();
    let run = upcheck(&[
        "--retries",
        "3",
        "-f",
        "json",
        "-u",
        &server.url("/status/404"),
    ]);
    assert_eq!(run.results()[0]["attempts"], 1);
    assert_eq!(server.seen().requests.len(), 1);
}

#[test]
fn retry_after_is_waited_for() {
    let server = Server::start();
    let run = upcheck(&[
        "--retries",
        "1",
        "-f",
        "json",
        "-u",
        &server.url("/retry-after/1"),
    ]);
    assert_eq!(run.code, Some(1));
    let result = &run.results()[0];
    assert_eq!(result["attempts"], 2);
    assert_eq!(result["status"], 429);
    assert_eq!(
        result["error_kind"], "rate_limited",
        "a final 429 is rate_limited"
    );
    let seen = server.seen();
    let gap = seen.requests[1].at - seen.requests[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?} for Retry-After: 1"
    );
}

#[test]
fn a_retry_after_too_long_or_past_the_deadline_is_final() {
    let server = Server::start();
    let too_long = server.url("/retry-after/120");
    let run = upcheck(&["--retries", "3", "-f", "json", "-u", &too_long]);
    let result = &run.results()[0];
    assert_eq!(
        (result["error_kind"].as_str(), result["attempts"].as_u64()),
        (Some("rate_limited"), Some(1))
    );

    let past_deadline = server.url("/unavailable/30");
    let run = upcheck(&[
        "--retries",
        "3",
        "-d",
        "10s",
        "-f",
        "json",
        "-u",
        &past_deadline,
    ]);
    assert_eq!(run.code, Some(1), "a final verdict, not a deadline cut");
    let result = &run.results()[0];
    assert_eq!(
        (result["error_kind"].as_str(), result["attempts"].as_u64()),
        (Some("rate_limited"), Some(1))
    );
    assert_eq!(result["status"], 503);
}

#[test]
fn the_deadline_cuts_the_run_and_every_target_still_reports() {
    let server = Server::start();
    let mut lines = vec![server.url("/ok"), server.url("/ok")];
    lines.extend(many(&server, "/hang", 3));
    lines.push("not-a-url".to_owned());
    let list = list_file(&lines);
    let started = Instant::now();
    let run = upcheck(&[
        "-d",
        "700ms",
        "-t",
        "30s",
        "-c",
        "2",
        "-f",
        "json",
        path(&list),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the deadline is a promise"
    );
    assert_eq!(run.code, Some(3));
    let document = run.json();
    let results = document["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let kinds: Vec<_> = results
        .iter()
        .map(|r| r["error_kind"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(
        kinds,
        ["ok", "ok", "deadline", "deadline", "deadline", "invalid"]
    );
    // Two hang targets were in flight (attempt started, cancelled), one waited for a slot.
    let attempts: Vec<_> = results[2..5]
        .iter()
        .map(|r| r["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts.iter().sum::<u64>(), 2, "{attempts:?}");
    assert!(results[2..5].iter().all(|r| r["latency_ms"].is_null()));
    let summary = &document["summary"];
    assert_eq!(summary["complete"], false);
    assert_eq!(
        (
            summary["ok"].as_u64(),
            summary["failed"].as_u64(),
            summary["skipped"].as_u64()
        ),
        (Some(2), Some(1), Some(3))
    );
}

#[test]
fn after_the_deadline_unread_lines_are_reported_without_probing() {
    let server = Server::start();
    let mut lines = many(&server, "/hang", 1);
    lines.extend(many(&server, "/ok", 500));
    let list = list_file(&lines);
    let run = upcheck(&["-d", "1s", "-c", "1", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(3));
    let results = run.jsonl();
    assert_eq!(results.len(), 501);
    assert!(results.iter().all(|r| r["error_kind"] == "deadline"));
    assert!(
        server.seen().requests.len() <= 1,
        "nothing new starts after the deadline"
    );
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn wait_for_requests(server: &Server, count: usize) {
    wait_until(&format!("the server sees {count} requests"), || {
        server.seen().requests.len() >= count
    });
}

#[test]
fn sigint_stops_gracefully_and_prints_what_was_gathered() {
    let server = Server::start();
    let lines = vec![server.url("/ok"), server.url("/hang"), server.url("/hang")];
    let list = list_file(&lines);
    let child = Upcheck::new()
        .format("json")
        .args(["-c", "1", path(&list)])
        .spawn();
    wait_for_requests(&server, 2);
    signal(child.id(), "INT");
    let run = finish(child);
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    let results = run.results();
    let kinds: Vec<_> = results
        .iter()
        .map(|r| r["error_kind"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(kinds, ["ok", "interrupted", "interrupted"]);
    assert_eq!(results[1]["attempts"], 1);
    assert_eq!(results[2]["attempts"], 0);
    assert_eq!(run.json()["summary"]["complete"], false);
}

/// Starts upcheck reading `line` from a standard input that stays open.
fn spawn_with_open_stdin(
    args: &[&str],
    line: &str,
) -> (std::process::Child, std::process::ChildStdin) {
    let (child, mut stdin) = with_open_stdin(args);
    writeln!(stdin, "{line}").expect("write a target");
    (child, stdin)
}

#[test]
fn a_stop_does_not_wait_forever_for_an_open_input() {
    let server = Server::start();
    let (child, stdin) = spawn_with_open_stdin(&["-f", "json", "-"], &server.url("/hang"));
    wait_for_requests(&server, 1);
    signal(child.id(), "TERM");
    let run = finish(child);
    drop(stdin);
    assert_eq!(run.code, Some(143), "{}", run.stderr);
    assert_eq!(run.results()[0]["error_kind"], "interrupted");
    assert!(run.stderr.contains("stopped reading"), "{}", run.stderr);
}

#[test]
fn a_second_signal_exits_at_once() {
    let server = Server::start();
    let (child, stdin) = spawn_with_open_stdin(&["-f", "json", "-"], &server.url("/hang"));
    wait_for_requests(&server, 1);
    signal(child.id(), "INT");
    thread::sleep(Duration::from_millis(50));
    signal(child.id(), "TERM");
    let run = finish(child);
    drop(stdin);
    assert_eq!(run.code, Some(143));
    assert_eq!(run.stdout, "", "exited before printing the graceful report");
}

/// Waits until process `pid` catches SIGINT (bit 2 of `SigCgt` in `/proc`), so a signal
/// sent next reaches upcheck's handler rather than killing it.
fn wait_for_signal_handler(pid: u32) {
    wait_until("upcheck catches SIGINT", || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        caught & (1 << (2 - 1)) != 0
    });
}

#[test]
fn a_signal_before_any_line_arrives_is_an_interruption_not_an_empty_list() {
    let mut child = command()
        .args(["-f", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start upcheck");
    let stdin = child.stdin.take();
    wait_for_signal_handler(child.id());
    signal(child.id(), "INT");
    let run = finish(child);
    drop(stdin);
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert_eq!(run.json()["summary"]["total"], 0);
    assert_eq!(run.json()["summary"]["complete"], false);
}

#[test]
fn connections_are_kept_only_for_hosts_named_again() {
    let (first, again, once) = (Server::start(), Server::start(), Server::start());
    // The first probe holds the one slot for half a second, so the whole list has been
    // read when the next starts, however slowly the reading thread is scheduled.
    let mut lines = vec![first.url("/slow/500")];
    lines.extend((0..5).map(|n| again.url(&format!("/ok?{n}"))));
    lines.push(once.url("/ok"));
    let list = list_file(&lines);
    let run = upcheck(&["-c", "1", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.jsonl().len(), 7);
    // The host named again keeps one connection for all five of its targets.
    assert_eq!(connection_headers(&again), vec![None; 5]);
    assert_eq!(again.seen().connections, 1);
    // A host no other line names gets its connection closed after the answer, so a list
    // of distinct hosts leaves no idle connections behind.
    assert_eq!(connection_headers(&once), [Some("close".to_string())]);
}

/// The `Connection` header of each request `server` has seen, in order.
fn connection_headers(server: &Server) -> Vec<Option<String>> {
    server
        .seen()
        .requests
        .iter()
        .map(|request| request.header("connection").map(str::to_string))
        .collect()
}

#[test]
fn a_host_whose_next_line_is_not_read_yet_gets_its_connection_closed() {
    // Probing can catch up with reading. Keeping such connections "in case" left hundreds
    // idle on lists of distinct names; a host that does come again loses one connection.
    let server = Server::start();
    let url = server.url("/ok");
    let (child, mut stdin) = spawn_with_open_stdin(&["-c", "1", "-f", "jsonl", "-"], &url);
    wait_for_requests(&server, 1);
    writeln!(stdin, "{url}").expect("write the second target");
    drop(stdin);
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.jsonl().len(), 2);
    // The second target's host had been read twice by then: its connection is kept.
    assert_eq!(
        connection_headers(&server),
        [Some("close".to_string()), None]
    );
    assert_eq!(server.seen().connections, 2);
}

#[test]
fn a_connection_header_of_the_users_own_is_left_alone() {
    let server = Server::start();
    let url = server.url("/ok");
    let run = upcheck(&["-H", "Connection: keep-alive", "-f", "jsonl", "-u", &url]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        connection_headers(&server),
        [Some("keep-alive".to_string())]
    );
}
