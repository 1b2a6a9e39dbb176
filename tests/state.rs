//! `--state` and `--changes-only`: consecutive runs against a loopback server whose answers
//! change in between.

use std::fs;

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{assert_matches_schema, list_file, path, result_for, upcheck, Run, Server};

/// The state file's name in a fresh directory.
fn state_in(dir: &TempDir) -> String {
    dir.path()
        .join("upcheck.state")
        .to_str()
        .expect("temporary paths are UTF-8")
        .to_owned()
}

fn run(state: &str, extra: &[&str], list: &str) -> Run {
    let mut args = vec!["--state", state, "--progress", "never"];
    args.extend_from_slice(extra);
    args.push(list);
    upcheck(&args)
}

/// The current time as upcheck writes RFC 3339: `2030-01-31T23:59:59Z`.
fn rfc3339_now() -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let now = time::OffsetDateTime::from_unix_timestamp(unix as i64).expect("a valid time");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Stdout's lines that are not the failures line or the summary line.
fn target_lines(run: &Run) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|line| {
            !line.contains(" checked in ")
                && !line.contains(" failed: ")
                && !line.starts_with("phases p50/p95: ")
        })
        .collect()
}

#[test]
fn a_second_run_says_what_went_down_recovered_appeared_and_left() {
    let dir = TempDir::new().expect("a temporary directory");
    let state = state_in(&dir);
    let server = Server::start();
    let leaving = Server::start();
    let steady = server.url("/ok");
    let recovers = server.url("/flaky/1/a");
    let goes_down = leaving.url("/ok");
    let stays_down = server.url("/status/500");
    let gone = server.url("/ok?gone");
    let new = server.url("/ok?new");
    let list = list_file(&[
        steady.clone(),
        recovers.clone(),
        goes_down.clone(),
        stays_down.clone(),
        gone.clone(),
    ]);

    let first = run(&state, &["-f", "json"], path(&list));
    assert_eq!(first.code, Some(1), "{}", first.stderr);
    assert_matches_schema(&first.json(), "document");
    for result in first.results() {
        assert_eq!(result["previous_ok"], Value::Null, "{result}");
        assert_eq!(result["changed_at"], Value::Null, "{result}");
    }
    assert_eq!(first.json()["summary"]["changes"]["new"], 5);

    // Between the runs: one server goes away, the flaky path has failed once and now
    // answers, one target leaves the list and another joins it.
    drop(leaving);
    fs::write(
        list.path(),
        [&steady, &recovers, &goes_down, &stays_down, &new]
            .map(String::as_str)
            .join("\n"),
    )
    .expect("rewrite the list");
    let copy = dir.path().join("copy.state");
    fs::copy(&state, &copy).expect("copy the state");
    let before = rfc3339_now();

    let second = run(&state, &["-f", "json"], path(&list));
    let after = rfc3339_now();
    assert_eq!(second.code, Some(1), "{}", second.stderr);
    let document = second.json();
    assert_matches_schema(&document, "document");
    let results = second.results();
    let field = |target: &str, name: &str| result_for(&results, target)[name].clone();
    assert_eq!(field(&steady, "previous_ok"), true);
    assert_eq!(field(&steady, "changed_at"), Value::Null);
    assert_eq!(field(&recovers, "previous_ok"), false);
    assert_eq!(field(&recovers, "ok"), true);
    assert_eq!(field(&goes_down, "previous_ok"), true);
    assert_eq!(field(&goes_down, "error_kind"), "connect");
    assert_eq!(field(&stays_down, "previous_ok"), false);
    assert_eq!(field(&stays_down, "changed_at"), Value::Null);
    assert_eq!(field(&new, "previous_ok"), Value::Null);
    for changed in [&recovers, &goes_down] {
        let at = field(changed, "changed_at");
        let at = at.as_str().expect("a changed_at string");
        // The same fixed-width UTC format sorts as time does.
        assert!(
            before.as_str() <= at && at <= after.as_str(),
            "{at} not in {before}..={after}"
        );
    }
    let summary = &document["summary"];
    assert_eq!(
        summary["changes"],
        serde_json::json!({"went_down": 1, "recovered": 1, "new": 1, "gone": 1})
    );
    assert_eq!(
        summary["failed_by_kind"],
        serde_json::json!({"connect": 1, "status": 1})
    );

    // The same second run in text, from the copy of the first run's state.
    let copy = copy.to_str().expect("UTF-8");
    let text = run(copy, &["--changes-only"], path(&list));
    assert_eq!(text.code, Some(1), "{}", text.stderr);
    let lines = target_lines(&text);
    assert_eq!(lines.len(), 4, "{}", text.stdout);
    let line_of = |target: &str| {
        lines
            .iter()
            .find(|line| line.contains(&format!(" {target} ")))
            .unwrap_or_else(|| panic!("no line for {target}:\n{}", text.stdout))
            .to_owned()
    };
    assert!(
        line_of(&goes_down).starts_with("FAIL") && line_of(&goes_down).ends_with("[went down]")
    );
    assert!(line_of(&recovers).starts_with("OK") && line_of(&recovers).ends_with("[recovered]"));
    assert!(line_of(&new).ends_with("[new]"));
    assert!(line_of(&gone).starts_with("GONE"));
    assert!(line_of(&gone).ends_with(&format!("[gone from {}]", path(&list))));
    let summary_line = text.stdout.lines().last().expect("a summary line");
    assert!(
        summary_line.contains("since the last run: 1 went down, 1 recovered, 1 new, 1 gone"),
        "{summary_line}"
    );

    // A third run: nothing changed. With -q that is silence, though targets are still down
    // (the exit status says so); without -q only the failures and the summary.
    let third = run(&state, &["--changes-only", "-q"], path(&list));
    assert_eq!(third.code, Some(1), "{}", third.stderr);
    assert_eq!(
        third.stdout, "",
        "the gone target is reported once, then forgotten"
    );
    let fourth = run(&state, &["--changes-only"], path(&list));
    assert_eq!(fourth.code, Some(1), "{}", fourth.stderr);
    assert_eq!(
        target_lines(&fourth),
        Vec::<&str>::new(),
        "{}",
        fourth.stdout
    );
    assert!(
        fourth.stdout.contains("since the last run: no change"),
        "{}",
        fourth.stdout
    );
}

#[test]
fn nothing_changed_and_nothing_down_prints_nothing() {
    let dir = TempDir::new().expect("a temporary directory");
    let state = state_in(&dir);
    let server = Server::start();
    let list = list_file(&[server.url("/ok"), server.url("/ok?two")]);
    let first = run(&state, &["--changes-only"], path(&list));
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(target_lines(&first).len(), 2, "{}", first.stdout);
    let second = run(&state, &["--changes-only"], path(&list));
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(second.stdout, "");
    assert_eq!(second.stderr, "");
}

#[test]
fn a_run_cut_short_forgets_nothing_it_did_not_reach() {
    let dir = TempDir::new().expect("a temporary directory");
    let state = state_in(&dir);
    let server = Server::start();
    let (kept, hang) = (server.url("/ok?kept"), server.url("/hang"));
    let list = list_file(&[server.url("/ok"), kept.clone()]);
    assert_eq!(run(&state, &[], path(&list)).code, Some(0));

    // Cut short by the deadline: the targets it did not see are not gone, only unknown.
    fs::write(list.path(), &hang).expect("rewrite the list");
    let cut = run(&state, &["-d", "300ms", "--changes-only"], path(&list));
    assert_eq!(cut.code, Some(3), "{}", cut.stderr);
    assert!(!cut.stdout.contains("GONE"), "{}", cut.stdout);

    fs::write(list.path(), server.url("/ok")).expect("rewrite the list");
    let last = run(&state, &["--changes-only"], path(&list));
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    let lines = target_lines(&last);
    assert_eq!(lines.len(), 1, "{}", last.stdout);
    assert!(
        lines[0].starts_with("GONE") && lines[0].contains(&kept),
        "{}",
        last.stdout
    );
}

#[test]
fn a_state_file_that_cannot_be_used_is_exit_2_unless_reset() {
    let dir = TempDir::new().expect("a temporary directory");
    let state = state_in(&dir);
    let server = Server::start();
    let list = list_file(&[server.url("/ok")]);
    assert_eq!(run(&state, &[], path(&list)).code, Some(0));
    let good = fs::read(&state).expect("the state file");

    let mut newer = b"upcheck-state\n".to_vec();
    newer.extend_from_slice(&99u32.to_le_bytes());
    let cut_short = good[..good.len() - 1].to_vec();
    for (bytes, why) in [
        (b"ok http://x/\n".to_vec(), "not an upcheck state file"),
        (newer, "another version of upcheck"),
        (cut_short, "cut short"),
    ] {
        fs::write(&state, &bytes).expect("write a bad state");
        let requests = server.seen().requests.len();
        let refused = run(&state, &[], path(&list));
        assert_eq!(refused.code, Some(2), "{why}: {}", refused.stderr);
        assert!(refused.stderr.contains(why), "{}", refused.stderr);
        assert!(
            refused.stderr.contains("--state-reset"),
            "{}",
            refused.stderr
        );
        assert_eq!(server.seen().requests.len(), requests, "nothing is probed");
        assert_eq!(
            fs::read(&state).expect("the state"),
            bytes,
            "left as it was"
        );

        let reset = run(&state, &["--state-reset", "-f", "json"], path(&list));
        assert_eq!(reset.code, Some(0), "{}", reset.stderr);
        assert_eq!(reset.results()[0]["previous_ok"], Value::Null);
        let after = run(&state, &["-f", "json"], path(&list));
        assert_eq!(after.code, Some(0), "{}", after.stderr);
        assert_eq!(after.results()[0]["previous_ok"], true);
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("read the directory")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["upcheck.state"],
        "no temporary files are left behind"
    );
}

#[test]
fn changes_only_needs_a_state_and_the_text_format() {
    let needs_state = upcheck(&["--changes-only", "-u", "http://127.0.0.1:1/"]);
    assert_eq!(needs_state.code, Some(2));
    assert!(
        needs_state.stderr.contains("--state"),
        "{}",
        needs_state.stderr
    );
    let json = upcheck(&[
        "--state",
        "unused.state",
        "--changes-only",
        "-f",
        "json",
        "-u",
        "http://127.0.0.1:1/",
    ]);
    assert_eq!(json.code, Some(2));
    assert!(json.stderr.contains("text format"), "{}", json.stderr);
}

#[test]
fn a_report_and_a_state_in_one_file_are_refused() {
    let dir = TempDir::new().expect("a temporary directory");
    let state = state_in(&dir);
    let server = Server::start();
    let list = list_file(&[server.url("/ok")]);
    let refused = |report: &str| {
        let run = run(&state, &["-o", report, "-f", "json"], path(&list));
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(
            run.stderr.contains("-o and --state name the same file"),
            "{}",
            run.stderr
        );
    };
    // Not there yet, and named another way.
    refused(&format!("{}/./upcheck.state", dir.path().display()));
    assert!(fs::metadata(&state).is_err(), "no file is made");
    assert!(server.seen().requests.is_empty(), "nothing is probed");
    // There, from an earlier run: left as it was.
    assert_eq!(run(&state, &[], path(&list)).code, Some(0));
    let before = fs::read(&state).expect("the state file");
    refused(&state);
    assert_eq!(fs::read(&state).expect("the state file"), before);
    assert_eq!(
        server.seen().requests.len(),
        1,
        "only the earlier run probed"
    );
}
