use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    finish, list_file, path, refused_port, upcheck, wait_until, with_open_stdin, Server,
};

/// The names of the threads of process `pid`.
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// What a result says about its target, beside timings that differ from run to run.
fn verdicts(run_results: &[Value]) -> Vec<(String, Value, Value, Value)> {
    run_results
        .iter()
        .map(|result| {
            (
                result["target"].as_str().unwrap_or_default().to_owned(),
                result["ok"].clone(),
                result["error_kind"].clone(),
                result["status"].clone(),
            )
        })
        .collect()
}

#[test]
fn one_thread_and_two_give_the_same_results_in_input_order() {
    let (plain, tls, other) = (Server::start(), Server::start_tls(), Server::start());
    let refused = refused_port();
    let mut lines = Vec::new();
    for n in 0..10 {
        lines.push(plain.url(&format!("/ok?{n}")));
        lines.push(plain.url("/status/503"));
        lines.push(tls.url(&format!("/ok?{n}")));
        lines.push(other.url("/slow/20"));
        lines.push(format!("tcp://127.0.0.1:{refused}"));
        lines.push(format!("http://127.0.0.1:{refused}/{n}"));
        lines.push(format!("not a target {n}"));
    }
    let list = list_file(&lines);
    let run_with = |threads: &str| {
        let run = upcheck(&["--threads", threads, "-k", "-f", "json", path(&list)]);
        assert_eq!(run.code, Some(1), "--threads {threads}: {}", run.stderr);
        run.document()["results"].as_array().unwrap().clone()
    };
    let (one, two) = (run_with("1"), run_with("2"));
    assert_eq!(one.len(), lines.len());
    assert_eq!(verdicts(&one), verdicts(&two));
    let healthy = one.iter().filter(|result| result["ok"] == true).count();
    assert_eq!(healthy, 30, "the /ok, TLS and slow targets");
}

#[test]
fn zero_threads_is_a_usage_error_naming_the_option() {
    let run = upcheck(&["--threads", "0", "-u", "http://127.0.0.1:9/"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("--threads") && run.stderr.contains("at least 1"),
        "{}",
        run.stderr
    );
}

/// Checks `lines` with two workers, `-c concurrency` and `--per-host 3`; every target ok.
fn two_workers_three_per_host(lines: &[String], concurrency: &str) {
    let list = list_file(lines);
    let run = upcheck(&[
        "--threads",
        "2",
        "-c",
        concurrency,
        "--per-host",
        "3",
        "-f",
        "jsonl",
        path(&list),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.jsonl().len(), lines.len());
}

#[test]
fn per_host_holds_for_every_host_with_two_threads() {
    let servers: Vec<Server> = (0..4).map(|_| Server::start()).collect();
    let mut lines = Vec::new();
    for _ in 0..12 {
        lines.extend(servers.iter().map(|server| server.url("/slow/150")));
    }
    two_workers_three_per_host(&lines, "24");
    for server in &servers {
        assert_eq!(server.seen().max_in_flight, 3, "{}", server.url("/"));
    }
}

#[test]
fn the_c_slots_are_shared_by_every_thread() {
    // Ten hosts, three probes each at a time: -c 30 keeps all ten busy together wherever
    // their hosts hash, where a share of -c per worker left the hosts of a crowded worker
    // waiting while the other worker's share idled.
    let servers: Vec<Server> = (0..10).map(|_| Server::start()).collect();
    let lines: Vec<String> = servers
        .iter()
        .flat_map(|server| (0..6).map(|n| server.url(&format!("/slow/400?{n}"))))
        .collect();
    two_workers_three_per_host(&lines, "30");
    let mut starts: Vec<Instant> = servers
        .iter()
        .flat_map(|server| server.seen().requests)
        .map(|request| request.at)
        .collect();
    starts.sort();
    assert_eq!(starts.len(), 60);
    let answer = Duration::from_millis(400);
    // A probe starts only after the one whose slot it takes was answered, so requests less
    // than one answer apart were in flight together: never more than -c.
    for (index, start) in starts.iter().enumerate() {
        let together = starts[..index]
            .iter()
            .filter(|earlier| start.duration_since(**earlier) < answer)
            .count();
        assert!(
            together < 30,
            "request {index} had {together} before it in flight"
        );
    }
    let first_round = starts[29].duration_since(starts[0]);
    assert!(
        first_round < Duration::from_millis(300),
        "the 30th probe started {first_round:?} after the first"
    );
}

#[test]
fn each_thread_beyond_the_first_probes_on_a_thread_of_its_own() {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let default = ["-d", "2s", "-f", "jsonl", "-"];
    let with_threads = |threads: &'static str| {
        let mut args = vec!["--threads", threads];
        args.extend(default);
        args
    };
    // The main thread is the first worker; with no --threads there is one per core.
    for (args, workers) in [
        (with_threads("1"), 0),
        (with_threads("2"), 1),
        (with_threads("3"), 2),
        (default.to_vec(), cores - 1),
    ] {
        let server = Server::start();
        // Standard input held open: no worker has seen the end of its input yet.
        let (child, mut stdin) = with_open_stdin(&args);
        writeln!(stdin, "{}", server.url("/hang")).unwrap();
        wait_until("the target is in flight", || {
            server.seen().max_in_flight >= 1
        });
        let names = thread_names(child.id());
        drop(stdin);
        let run = finish(child);
        let started = names
            .iter()
            .filter(|name| name.starts_with("upcheck-worker"))
            .count();
        assert_eq!(started, workers, "{args:?}: {names:?}");
        assert_eq!(
            run.code,
            Some(3),
            "the deadline cut it short: {}",
            run.stderr
        );
        assert_eq!(run.jsonl().len(), 1);
    }
}
