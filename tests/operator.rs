//! The operator's view: failures by kind, the latency histogram on a terminal, SIGUSR1
//! listing what is in flight, and the progress bar naming what it waits on.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::thread;

use serde_json::Value;

use crate::support::{
    assert_matches_schema, command, finish, list_file, path, refused_port, upcheck, wait_until,
    Run, Server, Upcheck,
};

#[test]
fn failures_are_broken_down_by_kind() {
    let server = Server::start();
    let refused = format!("tcp://127.0.0.1:{}", refused_port());
    let list = list_file(&[
        server.url("/ok"),
        server.url("/status/500"),
        server.url("/status/404"),
        refused,
        "ftp://127.0.0.1/".to_owned(),
    ]);
    let text = upcheck(&["--progress", "never", path(&list)]);
    assert_eq!(text.code, Some(1), "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines[lines.len() - 2],
        "4 failed: 2 status, 1 connect, 1 invalid",
        "{}",
        text.stdout
    );
    assert!(
        lines[lines.len() - 1].contains(" checked in "),
        "{}",
        text.stdout
    );

    let json = upcheck(&["-f", "json", path(&list)]);
    let summary = &json.json()["summary"];
    assert_eq!(
        summary["failed_by_kind"],
        serde_json::json!({"status": 2, "connect": 1, "invalid": 1})
    );
    assert_eq!(summary["changes"], Value::Null, "no --state, no changes");
    assert_matches_schema(&json.json(), "document");

    let healthy = upcheck(&["-f", "json", "-u", &server.url("/ok")]);
    assert_eq!(
        healthy.json()["summary"]["failed_by_kind"],
        serde_json::json!({})
    );
    let healthy = upcheck(&["--progress", "never", "-u", &server.url("/ok")]);
    assert!(!healthy.stdout.contains("failed:"), "{}", healthy.stdout);
}

/// Runs upcheck with stdout on a fresh pseudo-terminal (stderr piped) and returns what it
/// printed on each, carriage returns removed.
fn upcheck_on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Run {
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers it is given; the other
    // arguments may be null.
    let opened = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(
        opened,
        0,
        "cannot open a pseudo-terminal for the histogram test: {}",
        io::Error::last_os_error()
    );
    // SAFETY: both descriptors were just opened and nothing else owns them.
    let (controller, terminal) = unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    };
    let mut upcheck = command();
    upcheck
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal))
        .stderr(Stdio::piped());
    let child = upcheck.spawn().expect("start upcheck");
    // Only the child may hold the terminal now, so reading ends when it exits.
    drop(upcheck);
    let reader = thread::spawn(move || {
        let mut screen = Vec::new();
        // Ends in EIO once the last holder of the terminal side has closed it.
        let _ = File::from(controller).read_to_end(&mut screen);
        String::from_utf8_lossy(&screen).replace('\r', "")
    });
    let mut run = finish(child);
    run.stdout = reader.join().expect("the terminal reader");
    run
}

#[test]
fn the_histogram_is_drawn_on_a_terminal_only_unless_asked() {
    let server = Server::start();
    let list = list_file(&[
        server.url("/ok"),
        server.url("/ok?2"),
        server.url("/slow/30"),
        server.url("/status/500"),
    ]);
    let args = ["--progress", "never", path(&list)];

    let terminal = upcheck_on_a_terminal(&args, &[]);
    assert_eq!(terminal.code, Some(1), "{}", terminal.stderr);
    let screen = &terminal.stdout;
    let histogram = screen
        .split("latency histogram:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no histogram on a terminal:\n{screen}"));
    let rows: Vec<&str> = histogram
        .lines()
        .take_while(|line| {
            !line.starts_with("phases p50/p95: ")
                && !line.contains(" failed: ")
                && !line.contains(" checked in ")
        })
        .collect();
    let counts: u64 = rows
        .iter()
        .map(|row| {
            let count = row.rsplit(' ').next().unwrap_or_default();
            count
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("row without a count: {row:?}"))
        })
        .sum();
    assert_eq!(counts, 4, "every latency lands in a row:\n{screen}");
    assert!(rows.iter().any(|row| row.contains('█')), "{screen}");
    assert!(rows.iter().any(|row| row.contains("ms–")), "{screen}");
    assert!(screen.contains("\x1b["), "colour on a terminal:\n{screen}");

    let plain = upcheck_on_a_terminal(&args, &[("NO_COLOR", "1")]);
    assert!(plain.stdout.contains(" checked in "), "{}", plain.stdout);
    assert!(!plain.stdout.contains("histogram"), "{}", plain.stdout);

    let piped = upcheck(&args);
    assert!(!piped.stdout.contains("histogram"), "{}", piped.stdout);
    let asked = upcheck(&["--histogram", "--progress", "never", path(&list)]);
    assert!(
        asked.stdout.contains("latency histogram:\n"),
        "{}",
        asked.stdout
    );
    assert!(!asked.stdout.contains("\x1b["), "{}", asked.stdout);

    let json = upcheck(&["--histogram", "-f", "json", path(&list)]);
    assert_eq!(json.code, Some(2));
    assert!(json.stderr.contains("text format"), "{}", json.stderr);
}

/// Black holes that each start a little after the one before, so oldest first is list order.
const BLACK_HOLES: usize = 25;

#[test]
fn sigusr1_lists_what_is_in_flight_and_the_run_goes_on() {
    let server = Server::start();
    let targets: Vec<String> = (0..BLACK_HOLES)
        .map(|n| server.url(&format!("/hang/{n}")))
        .collect();
    let list = list_file(&targets);
    let child = Upcheck::new()
        .format("json")
        .args([
            "-t",
            "4s",
            "--rate",
            "50",
            "--per-host",
            "50",
            "--progress",
            "never",
            path(&list),
        ])
        .spawn();
    wait_until("every black hole is in flight", || {
        server.seen().requests.len() >= BLACK_HOLES
    });
    // SAFETY: kill only sends a signal to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGUSR1) };
    assert_eq!(sent, 0, "{}", io::Error::last_os_error());
    let run = finish(child);

    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let results = run.results();
    assert_eq!(results.len(), BLACK_HOLES);
    for result in &results {
        assert_eq!(result["error_kind"], "timeout", "{result}");
        assert_eq!(result["attempts"], 1, "{result}");
    }
    let lines: Vec<&str> = run.stderr.lines().collect();
    let header = format!("upcheck: {BLACK_HOLES} targets in flight, oldest first:");
    let start = lines
        .iter()
        .position(|line| *line == header)
        .unwrap_or_else(|| panic!("no in-flight report:\n{}", run.stderr));
    let listed = &lines[start + 1..start + 21];
    for (line, target) in listed.iter().zip(&targets) {
        assert!(
            line.ends_with(&format!("attempt 1  {target}")),
            "{line}\n{}",
            run.stderr
        );
        assert!(
            line.trim_start().starts_with(|c: char| c.is_ascii_digit()),
            "{line}"
        );
    }
    assert_eq!(
        lines[start + 21],
        format!("  and {} more", BLACK_HOLES - 20)
    );
}

#[test]
fn the_progress_bar_names_a_target_waiting_past_half_the_timeout() {
    let server = Server::start();
    let hang = server.url("/hang");
    let run = upcheck(&["--progress", "always", "-t", "2s", "-u", &hang]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(" on {hang}")) && run.stderr.contains("waiting 1"),
        "the bar does not name the black hole:\n{}",
        run.stderr
    );

    let quick = upcheck(&[
        "--progress",
        "always",
        "-t",
        "2s",
        "-u",
        &server.url("/slow/300"),
    ]);
    assert!(!quick.stderr.contains("waiting"), "{}", quick.stderr);
}
