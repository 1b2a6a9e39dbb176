//! Address ranges in a list line: one result per address, on loopback only.

use std::net::TcpListener;

use crate::support::{list_file, path, result_for, upcheck};

#[test]
fn a_prefix_is_one_result_per_host_address_with_the_range_line_s_position() {
    let list = list_file(&[
        "# loopback only".to_owned(),
        "icmp://127.0.0.0/30".to_owned(),
        "icmp://[::1]/128".to_owned(),
        "icmp://127.0.9.7/32".to_owned(),
    ]);
    let run = upcheck(&["-f", "json", path(&list)]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let seen: Vec<(String, u64)> = run
        .results()
        .iter()
        .map(|r| {
            assert_eq!(r["source"], path(&list));
            (
                r["target"].as_str().unwrap().to_owned(),
                r["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("icmp://127.0.0.1", 2),
        ("icmp://127.0.0.2", 2),
        ("icmp://[::1]", 3),
        ("icmp://127.0.9.7", 4),
    ]
    .map(|(target, line)| (target.to_owned(), line));
    assert_eq!(seen, expected);
}

#[test]
fn a_tcp_last_octet_range_probes_each_address_on_the_port() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let range = format!("tcp://127.0.0.1-3:{port}");
    let run = upcheck(&["-f", "json", "-u", &range]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let results = run.results();
    assert_eq!(results.len(), 3);
    assert_eq!(
        result_for(&results, &format!("tcp://127.0.0.1:{port}"))["ok"],
        true
    );
    for other in [2, 3] {
        let result = result_for(&results, &format!("tcp://127.0.0.{other}:{port}"));
        assert_eq!(result["error_kind"], "connect", "{result}");
        assert_eq!(result["source"], "--url");
    }
}

#[test]
fn a_range_over_2_pow_24_is_one_invalid_result_naming_its_size() {
    let list = list_file(&[
        "icmp://10.0.0.0/7".to_owned(),
        "tcp://[fd00::]/64:22".to_owned(),
    ]);
    let run = upcheck(&["-f", "json", path(&list)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let results = run.results();
    assert_eq!(results.len(), 2, "nothing was expanded: {results:#?}");
    assert_eq!(results[0]["error_kind"], "invalid");
    assert!(results[0]["error"]
        .as_str()
        .unwrap()
        .contains("33554432 addresses"));
    assert!(results[1]["error"]
        .as_str()
        .unwrap()
        .contains("18446744073709551616 addresses"));
}

#[test]
fn shards_split_the_expanded_addresses() {
    let mut seen = Vec::new();
    for shard in ["0/2", "1/2"] {
        let run = upcheck(&["-f", "json", "--shard", shard, "-u", "icmp://127.0.0.0/28"]);
        assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
        let targets: Vec<String> = run
            .results()
            .iter()
            .map(|r| r["target"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            !targets.is_empty() && targets.len() < 14,
            "shard {shard}: {targets:?}"
        );
        seen.extend(targets);
    }
    seen.sort();
    let mut expected: Vec<String> = (1..=14).map(|n| format!("icmp://127.0.0.{n}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn ranges_in_checks_files_are_refused_with_a_reason() {
    let checks = list_file(&[
        "[[check]]".to_owned(),
        "url = \"icmp://127.0.0.0/30\"".to_owned(),
    ]);
    let run = upcheck(&["-f", "json", "--checks", path(&checks)]);
    let result = &run.results()[0];
    assert_eq!(result["error_kind"], "invalid");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("not from checks files"),
        "{result}"
    );
}
