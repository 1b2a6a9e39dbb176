use std::fs::File;
use std::process::Stdio;

use crate::support::{char_device, finish, list_bytes, list_file, path, upcheck, Server, Upcheck};

/// A run under `sh -c 'ulimit ULIMIT && exec upcheck ARGS'`.
fn with_ulimit(ulimit: &str) -> Upcheck {
    Upcheck::new().via([
        "sh",
        "-c",
        &format!("ulimit {ulimit} && exec \"$0\" \"$@\""),
    ])
}

#[test]
fn a_low_file_limit_lowers_concurrency_with_one_warning() {
    let server = Server::start();
    let lines: Vec<String> = (0..600).map(|_| server.url("/slow/20")).collect();
    let list = list_file(&lines);
    // Hard and soft limit both 256: nothing to raise, so the concurrency must fit.
    let run = with_ulimit("-n 256")
        .args([
            "-c",
            "1000",
            "--per-host",
            "1000",
            "-f",
            "jsonl",
            path(&list),
        ])
        .run();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.jsonl().len(), 600);
    assert_eq!(run.stderr.matches("warning").count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("open-file limit is 256"),
        "{}",
        run.stderr
    );
    assert!(server.seen().max_in_flight < 256);
}

#[test]
fn the_soft_file_limit_is_raised_toward_the_hard_one() {
    let server = Server::start();
    let lines: Vec<String> = (0..300).map(|_| server.url("/slow/50")).collect();
    let list = list_file(&lines);
    let run = with_ulimit("-Sn 128 && ulimit -Hn 4096")
        .args(["-c", "300", "--per-host", "300", "-f", "jsonl", path(&list)])
        .run();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stderr, "", "no warning: the soft limit was raised");
    assert!(
        server.seen().max_in_flight > 128,
        "more sockets than the soft limit allowed"
    );
}

#[test]
fn running_out_of_files_is_back_pressure_not_failure() {
    // Targets grouped by host: each group leaves idle pooled connections behind while the
    // next group opens new ones, which overruns a 256-file limit.
    let servers: Vec<Server> = (0..4).map(|_| Server::start()).collect();
    let mut lines = Vec::new();
    for server in &servers {
        lines.extend((0..200).map(|_| server.url("/slow/10")));
    }
    let list = list_file(&lines);
    let run = with_ulimit("-n 256")
        .args([
            "-c",
            "1000",
            "--per-host",
            "1000",
            "-t",
            "10s",
            "-f",
            "jsonl",
            path(&list),
        ])
        .run();
    let results = run.jsonl();
    assert_eq!(results.len(), 800);
    let failed: Vec<_> = results.iter().filter(|r| r["ok"] != true).collect();
    assert!(failed.is_empty(), "healthy targets marked down: {failed:?}");
    assert_eq!(run.code, Some(0));
}

#[test]
fn a_full_stdout_is_an_error_on_stderr() {
    let server = Server::start();
    // The full device (1:7), made in a temporary directory: tests never write under /dev.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let node = dir.path().join("full");
    char_device(&node, 1, 7);
    let full = File::options()
        .write(true)
        .open(&node)
        .expect("open the full device");
    let mut command = crate::support::command();
    command
        .args(["-u", &server.url("/ok")])
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped());
    let run = finish(command.spawn().expect("start upcheck"));
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("cannot write results"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn a_binary_file_is_refused_before_probing() {
    let binary =
        list_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00");
    let run = upcheck(&[path(&binary)]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains(path(&binary)) && run.stderr.contains("binary"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_ten_mebibyte_line_is_one_invalid_result() {
    let server = Server::start();
    let mut bytes = vec![b'h'; 10 << 20];
    bytes.extend(format!("\n{}\n", server.url("/ok")).as_bytes());
    let list = list_bytes(&bytes);
    let run = upcheck(&["-f", "json", path(&list)]);
    assert_eq!(run.code, Some(1));
    let results = run.results();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["error_kind"], "invalid");
    assert!(
        results[0]["target"].as_str().unwrap().len() < 200,
        "the result shows only a prefix"
    );
    assert_eq!(results[1]["ok"], true);
}

#[test]
fn an_unopenable_path_names_the_file() {
    let run = upcheck(&["/etc/hostname/not-a-dir.txt"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("/etc/hostname/not-a-dir.txt"),
        "{}",
        run.stderr
    );
}

/// Peak resident memory of a running process, from `/proc`.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The scale soak: `cargo test --release -- --ignored million` (about a minute).
#[test]
#[ignore = "a soak of a million targets; run it with --ignored"]
fn a_million_targets_stream_in_bounded_memory() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    const TARGETS: usize = 1_000_000;
    let server = Server::start();
    let lines: Vec<String> = (0..TARGETS)
        .map(|n| server.url(&format!("/ok?{n}")))
        .collect();
    let list = list_file(&lines);
    drop(lines);
    let started = Instant::now();
    let mut child = Upcheck::new()
        .args(["-c", "200", "--per-host", "200", "-f", "jsonl", path(&list)])
        .spawn();
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first_result_after = started.elapsed();
    let (mut results, mut peak_kib) = (1usize, 0u64);
    while {
        line.clear();
        stdout.read_line(&mut line).unwrap() > 0
    } {
        results += 1;
        if results % 10_000 == 0 {
            peak_kib = peak_kib.max(peak_rss_kib(pid).unwrap_or(0));
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the soak is bounded in time"
        );
    }
    let run = finish(child);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(results, TARGETS);
    assert!(
        first_result_after < Duration::from_secs(1),
        "first result after {first_result_after:?}"
    );
    assert!(
        peak_kib > 0,
        "the peak RSS was never read from /proc/{pid}/status"
    );
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
    eprintln!("{TARGETS} targets in {:?}, first result after {first_result_after:?}, peak RSS {peak_kib} KiB", started.elapsed());
}

#[test]
fn an_unreadable_file_is_refused_before_probing() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let list = list_file(&[server.url("/ok")]);
    std::fs::set_permissions(list.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads any file, so as root the binary runs as nobody (setpriv, util-linux).
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let as_nobody: &[&str] = if is_root {
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]
    } else {
        &[]
    };
    let run = Upcheck::new().via(as_nobody).args([path(&list)]).run();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(path(&list)) && run.stderr.contains("ermission denied"),
        "{}",
        run.stderr
    );
    assert_eq!(server.seen().connections, 0);
}
