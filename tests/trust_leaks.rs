//! Nothing leaks: passwords in target URLs, query tokens in a Referer, `-H` headers on a
//! redirect to another origin, and control characters that would rewrite a terminal.

use std::fs;

use crate::support::{list_bytes, path, upcheck, Server};

/// Every format and `-o` shows `user:xxxxx@`, never the password; the request still
/// carries it as Basic auth.
#[test]
fn a_password_in_a_target_is_redacted_everywhere_and_still_sent() {
    let server = Server::start();
    let port = server.addr.port();
    let secret_url = format!("http://ops:s3cret@127.0.0.1:{port}/status/503");
    let invalid = "ftp://ops:s3cret@127.0.0.1/x".to_owned();
    let list = list_bytes(format!("{secret_url}\n{invalid}\n").as_bytes());
    let shown = format!("http://ops:xxxxx@127.0.0.1:{port}/status/503");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.prom");
    for format in ["text", "json", "jsonl", "prometheus", "nagios"] {
        let run = upcheck(&["-f", format, path(&list)]);
        assert!(
            run.code == Some(1) || run.code == Some(2),
            "{format}: {run:?}"
        );
        let printed = format!("{}{}", run.stdout, run.stderr);
        assert!(!printed.contains("s3cret"), "{format} leaks it:\n{printed}");
        assert!(printed.contains(&shown), "{format}:\n{printed}");
        assert!(
            printed.contains("ftp://ops:xxxxx@127.0.0.1/x"),
            "{format}:\n{printed}"
        );
    }
    let run = upcheck(&[
        "-f",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--url",
        &secret_url,
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let written = fs::read_to_string(&report).unwrap();
    assert!(
        !written.contains("s3cret") && written.contains(&shown),
        "{written}"
    );
    let sent = server.seen().requests;
    assert!(!sent.is_empty());
    // base64("ops:s3cret")
    assert!(
        sent.iter()
            .all(|r| r.header("authorization") == Some("Basic b3BzOnMzY3JldA==")),
        "{sent:?}"
    );
}

/// A redirect to another origin sends no Referer (it would carry `?api_key=`), and the
/// target's `-H` headers stay with the target's origin.
#[test]
fn redirects_to_another_origin_carry_no_referer_and_no_target_headers() {
    let (origin, elsewhere) = (Server::start(), Server::start());
    let cross = origin.url(&format!(
        "/redirect-to/{}?api_key=s3cret",
        elsewhere.url("/ok")
    ));
    let same = origin.url("/redirect/1?api_key=s3cret");
    let run = upcheck(&[
        "-f",
        "json",
        "-H",
        "X-Api-Key: k3y",
        "-H",
        "Private-Token: t0ken",
        "-u",
        &cross,
        "-u",
        &same,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let at_origin = origin.seen().requests;
    assert_eq!(at_origin.len(), 4, "{at_origin:?}");
    for request in &at_origin {
        assert_eq!(request.header("x-api-key"), Some("k3y"), "{request:?}");
        assert_eq!(
            request.header("private-token"),
            Some("t0ken"),
            "{request:?}"
        );
        assert_eq!(request.header("referer"), None, "{request:?}");
    }
    let at_elsewhere = elsewhere.seen().requests;
    assert_eq!(at_elsewhere.len(), 1);
    assert_eq!(at_elsewhere[0].header("referer"), None, "{at_elsewhere:?}");
    assert_eq!(
        at_elsewhere[0].header("x-api-key"),
        None,
        "{at_elsewhere:?}"
    );
    assert_eq!(at_elsewhere[0].header("private-token"), None);
}

/// Control characters from a list or a checks file are shown escaped in text and Nagios
/// output, so a line cannot overwrite a FAIL with a fake OK; JSON keeps them exact.
#[test]
fn control_characters_are_escaped_in_text_and_nagios_but_exact_in_json() {
    let port = crate::support::refused_port();
    let hostile = format!("http://127.0.0.1:{port}/\r\x1b[2KOK 200\x1b]0;owned\x07\u{9b}2J");
    let list = list_bytes(format!("{hostile}\n").as_bytes());
    for format in ["text", "nagios"] {
        let run = upcheck(&["-f", format, path(&list)]);
        assert_eq!(run.code, Some(if format == "text" { 1 } else { 2 }));
        for raw in ['\r', '\x1b', '\x07', '\u{9b}'] {
            assert!(
                !run.stdout.contains(raw),
                "{format} prints {raw:?} raw:\n{}",
                run.stdout
            );
        }
        assert!(
            run.stdout
                .contains("\\x0d\\x1b[2KOK 200\\x1b]0;owned\\x07\\x9b2J"),
            "{format}:\n{}",
            run.stdout
        );
    }
    let run = upcheck(&["-f", "json", path(&list)]);
    assert_eq!(run.results()[0]["target"], hostile.as_str());

    let checks = tempfile::NamedTempFile::new().unwrap();
    let split = "http://127.0.0.1:1/a\nFAIL fake line";
    fs::write(
        checks.path(),
        format!(
            "[[check]]\nurl = {}\nname = \"api\"\n",
            serde_json::to_string(split).unwrap()
        ),
    )
    .unwrap();
    let run = upcheck(&["--checks", path(&checks)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "one result line, the failures line and the summary:\n{}",
        run.stdout
    );
    assert!(lines[0].contains("/a\\x0aFAIL fake line"), "{}", lines[0]);
}
