use crate::support::{list_bytes, list_file, path, upcheck, Server, Upcheck};

#[test]
fn comments_blank_lines_crlf_and_bom_are_accepted() {
    let server = Server::start();
    let text = format!(
        "\u{feff}# fleet\r\n\r\n  {}  # primary\r\n\t\n{}\r\n",
        server.url("/ok"),
        server.url("/status/503")
    );
    let list = list_bytes(text.as_bytes());
    let run = upcheck(&["-f", "json", path(&list)]);
    assert_eq!(run.code, Some(1));
    let results = run.results();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["target"], server.url("/ok"));
    assert_eq!(results[0]["line"], 3);
    assert_eq!(results[0]["source"], path(&list));
    assert_eq!(results[1]["line"], 5);
}

#[test]
fn white_space_around_a_url_option_is_no_part_of_it() {
    let server = Server::start();
    let url = server.url("/ok");
    let run = upcheck(&["-f", "json", "-u", &format!(" \t{url}  ")]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert_eq!(run.results()[0]["target"], url.as_str());
}

#[test]
fn invalid_lines_are_results_and_the_rest_is_checked() {
    let server = Server::start();
    let mut bytes = b"ftp://files.test/\nexample.com\ntcp://db.test\n\xff\xfeoops\n".to_vec();
    bytes.extend(vec![b'x'; 70 * 1024]);
    bytes.extend(format!("\n{}\n", server.url("/ok")).as_bytes());
    let list = list_bytes(&bytes);
    let run = upcheck(&["-f", "json", path(&list)]);
    assert_eq!(run.code, Some(1));
    let results = run.results();
    assert_eq!(results.len(), 6);
    for (index, result) in results[..5].iter().enumerate() {
        assert_eq!(result["error_kind"], "invalid", "{result}");
        assert_eq!(result["line"], index as u64 + 1);
        assert_eq!(result["attempts"], 0);
    }
    assert!(results[0]["error"].as_str().unwrap().contains("ftp"));
    assert!(results[2]["error"].as_str().unwrap().contains("port"));
    assert!(
        results[3]["target"].as_str().unwrap().contains("oops"),
        "lossily decoded"
    );
    assert!(results[4]["error"].as_str().unwrap().contains("64 KiB"));
    assert_eq!(results[5]["ok"], true);
    assert_eq!(run.json()["summary"]["failed"], 5);
}

#[test]
fn standard_input_is_read_when_piped_or_named() {
    let server = Server::start();
    let input = format!("{}\n", server.url("/ok"));
    for args in [&["-f", "json"][..], &["-f", "json", "-"][..]] {
        let run = Upcheck::new().args(args).stdin(&input).run();
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        let results = run.results();
        assert_eq!(results[0]["source"], "-");
        assert_eq!(results[0]["line"], 1);
    }
}

#[test]
fn json_results_follow_input_order_with_urls_last() {
    let server = Server::start();
    let first = list_file(&[server.url("/slow/200"), server.url("/ok")]);
    let second = list_file(&[server.url("/slow/100")]);
    let url = server.url("/status/204");
    let run = upcheck(&["-f", "json", "-u", &url, path(&first), path(&second)]);
    let order: Vec<_> = run
        .results()
        .iter()
        .map(|r| (r["source"].as_str().unwrap().to_owned(), r["line"].as_u64()))
        .collect();
    assert_eq!(
        order,
        [
            (path(&first).to_owned(), Some(1)),
            (path(&first).to_owned(), Some(2)),
            (path(&second).to_owned(), Some(1)),
            ("--url".to_owned(), None),
        ]
    );
}

#[test]
fn duplicates_each_get_a_result() {
    let server = Server::start();
    let list = list_file(&[server.url("/ok"), server.url("/ok"), server.url("/ok")]);
    let run = upcheck(&["-f", "jsonl", path(&list)]);
    assert_eq!(run.jsonl().len(), 3);
    assert_eq!(server.seen().requests.len(), 3);
}

#[test]
fn a_long_list_streams_through_bounded_tasks() {
    let server = Server::start();
    let lines: Vec<String> = (0..5000)
        .map(|n| server.url(&format!("/ok?n={n}")))
        .collect();
    let list = list_file(&lines);
    let run = upcheck(&["-c", "64", "--per-host", "64", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0));
    let results = run.jsonl();
    assert_eq!(results.len(), 5000);
    let mut lines: Vec<u64> = results
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    lines.sort_unstable();
    assert!(
        lines.iter().copied().eq(1..=5000),
        "every line exactly once"
    );
    assert!(server.seen().max_in_flight <= 64);
}
