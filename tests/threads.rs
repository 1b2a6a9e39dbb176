use std::io::Write;

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

#[test]
fn per_host_holds_for_every_host_with_two_threads() {
    let servers: Vec<Server> = (0..4).map(|_| Server::start()).collect();
    let mut lines = Vec::new();
    for _ in 0..12 {
        lines.extend(servers.iter().map(|server| server.url("/slow/150")));
    }
    let list = list_file(&lines);
    // 24 over two threads is 12 each: room for every host's whole --per-host on either.
    let run = upcheck(&[
        "--threads",
        "2",
        "-c",
        "24",
        "--per-host",
        "3",
        "-f",
        "jsonl",
        path(&list),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.jsonl().len(), 48);
    for server in &servers {
        assert_eq!(server.seen().max_in_flight, 3, "{}", server.url("/"));
    }
}

#[test]
fn each_thread_asked_for_probes_on_a_thread_of_its_own() {
    for (threads, workers) in [("1", 0), ("2", 2)] {
        let server = Server::start();
        // Standard input held open: no worker has seen the end of its input yet.
        let (child, mut stdin) =
            with_open_stdin(&["--threads", threads, "-d", "2s", "-f", "jsonl", "-"]);
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
        assert_eq!(started, workers, "--threads {threads}: {names:?}");
        assert_eq!(
            run.code,
            Some(3),
            "the deadline cut it short: {}",
            run.stderr
        );
        assert_eq!(run.jsonl().len(), 1);
    }
}
