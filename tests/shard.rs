use std::collections::HashMap;

use serde_json::Value;

use crate::support::{list_file, path, refused_port, upcheck, Server, Upcheck};

/// Runs shard `index` of `count` over `list` and returns its results.
fn run_shard(index: u64, count: u64, list: &str, server: &Server) -> Vec<Value> {
    let requests_before = server.seen().requests.len();
    let shard = format!("{index}/{count}");
    let run = Upcheck::new()
        .format("jsonl")
        .args(["--shard", &shard, list])
        .run();
    assert!(matches!(run.code, Some(0 | 1)), "{shard}: {}", run.stderr);
    let results = run.jsonl();
    let http = results
        .iter()
        .filter(|r| r["target"].as_str().unwrap().starts_with("http://"))
        .count();
    assert_eq!(
        server.seen().requests.len() - requests_before,
        http,
        "shard {shard} probed only its own HTTP targets"
    );
    results
}

#[test]
fn the_shards_partition_the_list_exactly() {
    let server = Server::start();
    let mut lines: Vec<String> = (0..40).map(|n| server.url(&format!("/ok?{n}"))).collect();
    lines.push(server.url("/ok?0"));
    lines.push(format!("tcp://{}", server.addr));
    lines.push("ftp://invalid.test/".into());
    lines.push("no-scheme".into());
    lines.push("# a comment, which is no target".into());
    let list = list_file(&lines);
    let count = 3;
    let mut shard_of_line = HashMap::new();
    for index in 0..count {
        let results = run_shard(index, count, path(&list), &server);
        assert!(!results.is_empty(), "shard {index} got nothing");
        for result in results {
            let line = result["line"].as_u64().unwrap() as usize;
            assert_eq!(result["target"], lines[line - 1].as_str());
            assert!(
                shard_of_line.insert(line, index).is_none(),
                "line {line} was reported by two shards"
            );
        }
    }
    let mut reported: Vec<_> = shard_of_line.keys().copied().collect();
    reported.sort_unstable();
    assert_eq!(reported, (1..=44).collect::<Vec<_>>(), "each target once");
    assert_eq!(
        shard_of_line[&1], shard_of_line[&41],
        "the same target always lands in the same shard"
    );
}

#[test]
fn a_shard_without_targets_is_not_an_error() {
    let server = Server::start();
    let list = list_file(&[server.url("/ok")]);
    let runs: Vec<_> = (0..2)
        .map(|index| upcheck(&["--shard", &format!("{index}/2"), "-f", "json", path(&list)]))
        .collect();
    let mut sizes: Vec<_> = runs.iter().map(|run| run.results().len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [0, 1], "one shard owns the one target");
    for run in &runs {
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let empty = runs.iter().find(|run| run.results().is_empty()).unwrap();
    assert_eq!(empty.json()["summary"]["total"], 0);
    assert!(
        empty.stderr.contains("nothing to check"),
        "{}",
        empty.stderr
    );
}

#[test]
fn an_empty_list_is_still_a_usage_error_when_sharded() {
    let list = list_file(&["# nothing".into()]);
    let run = upcheck(&["--shard", "0/2", path(&list)]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no targets"), "{}", run.stderr);
}

#[test]
fn the_kubernetes_example_runs_every_shard_once() {
    let job = include_str!("../examples/kubernetes-indexed-job.yaml");
    let field = |name: &str| -> u64 {
        let line = job
            .lines()
            .find(|line| line.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("the example sets {name}"));
        line.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    let completions = field("completions:");
    assert_eq!(field("parallelism:"), completions);
    let shard_argument = format!("\"$(JOB_COMPLETION_INDEX)/{completions}\"");
    assert!(
        job.contains(&shard_argument),
        "the example passes {shard_argument}"
    );
    // Kubernetes numbers the indexes 0 to completions - 1: each must be a valid shard.
    let target = format!("tcp://127.0.0.1:{}", refused_port());
    let shard_run = |shard: &str| upcheck(&["--shard", shard, "-t", "1s", "-u", &target]);
    for index in 0..completions {
        let run = shard_run(&format!("{index}/{completions}"));
        assert_ne!(run.code, Some(2), "shard {index}: {}", run.stderr);
    }
    let run = shard_run(&format!("{completions}/{completions}"));
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("--shard"), "{}", run.stderr);
}
