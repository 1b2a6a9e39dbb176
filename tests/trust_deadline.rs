//! The deadline ends every run, and a run it cut short says so: input left unread is exit 3
//! (Nagios CRITICAL), endless input is read for a bounded time, a progress bar on a pipe
//! nobody reads never holds the run, and SIGHUP stops it gracefully.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{command, finish, wait_until, with_open_stdin, Server, Upcheck};

#[test]
fn input_stalled_past_the_deadline_is_an_incomplete_run() {
    let server = Server::start();
    // A healthy line, then a writer that stalls (holds the pipe open, writes nothing).
    let (child, mut stdin) = with_open_stdin(&["-f", "json", "-d", "1s"]);
    writeln!(stdin, "{}", server.url("/ok")).unwrap();
    let run = finish(child);
    drop(stdin);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let document = run.json();
    assert_eq!(document["summary"]["complete"], false);
    assert_eq!(document["summary"]["ok"], 1);
    assert!(
        run.stderr.contains("read up to line 1 of '-'"),
        "{}",
        run.stderr
    );

    let (child, mut stdin) = with_open_stdin(&["-f", "nagios", "-d", "1s"]);
    writeln!(stdin, "{}", server.url("/ok")).unwrap();
    let run = finish(child);
    drop(stdin);
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(
        run.stdout
            .starts_with("UPCHECK CRITICAL - the 1s deadline passed"),
        "{}",
        run.stdout
    );

    // Nothing at all before the stall: still a cut-short run, not an empty or healthy one.
    let (child, stdin) = with_open_stdin(&["-d", "1s"]);
    let run = finish(child);
    drop(stdin);
    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(run.stdout.contains("0 checked"), "{}", run.stdout);
    assert!(
        run.stderr.contains("no line of it was read"),
        "{}",
        run.stderr
    );
}

#[test]
fn endless_input_is_read_for_a_bounded_time_after_the_deadline() {
    let port = crate::support::refused_port();
    let (child, mut stdin) = with_open_stdin(&["-q", "-d", "1s"]);
    let line = format!("http://127.0.0.1:{port}/\n").repeat(256);
    let writer = thread::spawn(move || {
        let started = Instant::now();
        // Like `yes`: until the reader goes away (bounded, should it never).
        while started.elapsed() < Duration::from_secs(90) {
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    let run = finish(child);
    writer.join().unwrap();
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("still coming"), "{}", run.stderr);
    assert!(run.stderr.contains("read up to line "), "{}", run.stderr);
}

/// A pipe of one page, all but full, that nobody reads: where stderr goes.
fn clogged_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array, which we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size >= 4096,
        "cannot size the pipe: {}",
        std::io::Error::last_os_error()
    );
    let mut writer = fs::File::from(write.try_clone().unwrap());
    writer
        .write_all(&vec![b'.'; usize::try_from(size).unwrap() - 300])
        .unwrap();
    (read, write)
}

#[test]
fn a_progress_bar_on_a_pipe_nobody_reads_never_holds_the_run() {
    let server = Server::start();
    let (_unread, stderr) = clogged_pipe();
    let mut upcheck = command();
    upcheck.args([
        "--progress",
        "always",
        "-f",
        "json",
        "-d",
        "3s",
        "-u",
        &server.url("/hang"),
    ]);
    for _ in 0..20 {
        upcheck.args(["-u", &server.url("/ok")]);
    }
    let mut child = upcheck
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reading = thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the run was held by its progress bar");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    let text = reading.join().unwrap();
    assert!(text.contains("\"deadline\""), "{text}");
}

#[test]
fn sighup_stops_the_run_gracefully_with_129() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let child = Upcheck::new()
        .format("json")
        .args([
            "-o",
            report.to_str().unwrap(),
            "-t",
            "30s",
            "-u",
            &server.url("/hang"),
        ])
        .spawn();
    let run = hang_up_once_probing(&server, child);
    assert_eq!(run.code, Some(129), "{run:?}");
    let document: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(document["results"][0]["error_kind"], "interrupted");
    assert!(document["results"][0]["error"]
        .as_str()
        .unwrap()
        .contains("SIGHUP"));
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}

#[test]
fn under_nohup_sighup_is_still_ignored() {
    let server = Server::start();
    // As nohup does: SIGHUP ignored before the binary starts, which it inherits.
    let child = Upcheck::new()
        .format("json")
        .args(["-u", &server.url("/slow/1500")])
        .via(["sh", "-c", "trap '' HUP && exec \"$0\" \"$@\""])
        .spawn();
    let run = hang_up_once_probing(&server, child);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.results()[0]["ok"], true);
}

/// Sends SIGHUP to `child` once its probe has reached `server`, and collects the run.
fn hang_up_once_probing(server: &Server, child: std::process::Child) -> crate::support::Run {
    wait_until("the probe reaches the server", || {
        !server.seen().requests.is_empty()
    });
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: signalling the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    finish(child)
}

#[test]
fn nothing_is_probed_once_the_deadline_has_passed_during_setup() {
    // Setting up sixteen workers takes longer than the deadline: the stop has not been seen
    // when the first targets are ready, and none of them may start.
    let server = Server::start();
    let urls: Vec<String> = (0..16).map(|n| server.url(&format!("/ok?{n}"))).collect();
    let run = Upcheck::new()
        .format("json")
        .args(["--threads", "16", "-c", "16", "-d", "1ms"])
        .urls(&urls)
        .run();
    assert_eq!(run.code, Some(3), "{}", run.stdout);
    for result in run.results() {
        assert_eq!(result["error_kind"], "deadline", "{result}");
        assert_eq!(result["attempts"], 0, "{result}");
    }
    assert!(server.seen().requests.is_empty(), "nothing was probed");
}
