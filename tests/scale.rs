use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::support::{finish, list_bytes, path, upcheck, Run, Server, Upcheck};

/// How long the writer of a checks file waits for the first result before writing the
/// rest anyway (so a reader that waits for the whole file still ends, and fails).
const FIRST_RESULT_WAIT: Duration = Duration::from_secs(10);

fn entry(url: &str) -> String {
    format!("[[check]]\nurl = \"{url}\"\n\n")
}

/// A FIFO in a fresh directory, for a checks file written while the run reads it.
fn fifo() -> (tempfile::TempDir, std::path::PathBuf) {
    let directory = tempfile::tempdir().expect("create a directory for the FIFO");
    let fifo = directory.path().join("checks.toml");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    (directory, fifo)
}

/// What a run reading a checks file from a FIFO showed.
struct Streamed {
    /// The first result line.
    first: Value,
    /// Whether it came out before the rest of the file was written.
    came_first: bool,
    /// The result lines after the first.
    rest: Vec<String>,
    /// The whole run (its stdout is in `first` and `rest`).
    run: Run,
    /// The FIFO's path, as results and errors name it.
    name: String,
}

/// Runs `upcheck -f jsonl --checks FIFO`, writing `first` into the FIFO, then waiting
/// until a result comes out (or [`FIRST_RESULT_WAIT`] passes) before writing `rest`.
fn check_a_fifo_in_two_parts(first: String, rest: String) -> Streamed {
    let (_directory, fifo) = fifo();
    let (seen, told) = mpsc::channel::<()>();
    let writing = fifo.clone();
    let writer = thread::spawn(move || {
        let mut writer = OpenOptions::new()
            .write(true)
            .open(&writing)
            .expect("open the FIFO for writing");
        writer.write_all(first.as_bytes()).expect("write");
        writer.flush().expect("flush");
        let came_first = told.recv_timeout(FIRST_RESULT_WAIT).is_ok();
        // The reader may have stopped already; then the rest has nowhere to go.
        let _ = writer.write_all(rest.as_bytes());
        came_first
    });
    let mut child = Upcheck::new()
        .format("jsonl")
        .args(["--checks".as_ref(), fifo.as_os_str()])
        .spawn();
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the first result");
    let _ = seen.send(());
    let came_first = writer.join().expect("the writer");
    let rest = stdout.lines().map(|line| line.expect("read")).collect();
    Streamed {
        first: serde_json::from_str(&line).expect("a JSON line"),
        came_first,
        rest,
        run: finish(child),
        name: fifo.to_string_lossy().into_owned(),
    }
}

#[test]
fn a_checks_file_is_checked_as_it_is_read() {
    let server = Server::start();
    // A table ends where the next one starts: the first is complete once the second's
    // header is in.
    let first = entry(&server.url("/ok?first")) + "[[check]]\n";
    let rest: String = (0..50)
        .map(|i| entry(&server.url(&format!("/ok?n={i}"))))
        .collect::<String>()
        .replacen("[[check]]\n", "", 1);
    let streamed = check_a_fifo_in_two_parts(first, rest);
    assert!(
        streamed.came_first,
        "no result came out before the end of the checks file was written"
    );
    assert_eq!(streamed.first["ok"], true, "{}", streamed.first);
    assert_eq!(streamed.first["line"], 2);
    assert_eq!(streamed.run.code, Some(0), "{}", streamed.run.stderr);
    assert_eq!(streamed.rest.len(), 50);
    let last_line = streamed
        .rest
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line")["line"].clone())
        .filter_map(|line| line.as_u64())
        .max();
    assert_eq!(last_line, Some(2 + 50 * 3));
}

#[test]
fn a_piped_checks_file_broken_midway_stops_there_naming_its_line() {
    let server = Server::start();
    let first = entry(&server.url("/ok")) + "[[check]]\n";
    let streamed = check_a_fifo_in_two_parts(first, "url = \n".to_owned());
    assert!(streamed.came_first);
    assert_eq!(streamed.first["ok"], true, "{}", streamed.first);
    let run = streamed.run;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("{}:5: not valid TOML", streamed.name)),
        "{}",
        run.stderr
    );
}

#[test]
fn entries_deep_in_a_big_checks_file_keep_their_lines() {
    let server = Server::start();
    let mut text: String = (0..5000)
        .map(|i| entry(&server.url(&format!("/ok?n={i}"))))
        .collect();
    text.push_str("[[check]]\nurl = \"http://127.0.0.1:1/\"\ntimeout = \"5x\"\n");
    let file = list_bytes(text.as_bytes());
    let run = upcheck(&["-f", "jsonl", "-c", "50", "--checks", path(&file)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let results = run.jsonl();
    assert_eq!(results.len(), 5001);
    let last_good = server.url("/ok?n=4999");
    let last_good = results
        .iter()
        .find(|result| result["target"] == last_good.as_str())
        .expect("the last good entry's result");
    assert_eq!(last_good["line"], 4999 * 3 + 2);
    let invalid: Vec<&Value> = results
        .iter()
        .filter(|result| result["error_kind"] == "invalid")
        .collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["line"], 5000 * 3 + 3);
    assert!(
        invalid[0]["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("timeout: unknown unit")),
        "{}",
        invalid[0]
    );
}
