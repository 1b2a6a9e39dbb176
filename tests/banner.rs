//! Banners: with --banner-contains a tcp:// check reads what the service sends first.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;

use crate::support::{assert_matches_schema, list_file, path, upcheck};

/// A service on loopback that sends `banner` to each connection (nothing when empty) and
/// then keeps it open, as SSH and SMTP servers wait for the client; returns its target.
fn service(banner: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let target = format!("tcp://{}", listener.local_addr().expect("an address"));
    thread::spawn(move || {
        let mut open: Vec<TcpStream> = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(banner);
            open.push(stream);
        }
    });
    target
}

/// A service that sends `banner` and closes the connection.
fn closing_service(banner: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let target = format!("tcp://{}", listener.local_addr().expect("an address"));
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(banner);
        }
    });
    target
}

#[test]
fn a_banner_with_the_text_is_healthy_and_its_first_line_is_kept() {
    let ssh = service(b"SSH-2.0-OpenSSH_9.6 Debian\r\nsecond line\r\n");
    let run = upcheck(&["-f", "json", "--banner-contains", "SSH-2.0-", "-u", &ssh]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_matches_schema(&run.json(), "document");
    let result = &run.results()[0];
    assert_eq!(result["banner"], "SSH-2.0-OpenSSH_9.6 Debian", "{result}");
    assert!(result["status"].is_null());
}

#[test]
fn a_banner_without_the_text_is_body_and_silence_is_timeout() {
    let ssh = service(b"SSH-1.99-old\r\n");
    let silent = service(b"");
    let closed = closing_service(b"");
    let run = upcheck(&[
        "-f",
        "json",
        "-t",
        "300ms",
        "--banner-contains",
        "SSH-2.0-",
        "-u",
        &ssh,
        "-u",
        &silent,
        "-u",
        &closed,
    ]);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert_matches_schema(&run.json(), "document");
    let results = run.results();
    assert_eq!(results[0]["error_kind"], "body", "{}", results[0]);
    assert_eq!(results[0]["banner"], "SSH-1.99-old");
    assert!(results[0]["error"]
        .as_str()
        .unwrap()
        .contains("\"SSH-2.0-\""));
    assert_eq!(results[1]["error_kind"], "timeout", "{}", results[1]);
    assert!(results[1]["banner"].is_null());
    assert_eq!(results[2]["error_kind"], "body", "{}", results[2]);
    assert!(results[2]["banner"].is_null());
}

#[test]
fn without_the_option_tcp_is_a_pure_connect_that_waits_for_nothing() {
    let silent = service(b"");
    let talker = service(b"220 mail ESMTP\r\n");
    let run = upcheck(&["-f", "json", "-t", "2s", "-u", &silent, "-u", &talker]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    for result in run.results() {
        assert!(result["banner"].is_null(), "{result}");
    }
}

#[test]
fn banners_are_capped_at_the_first_line_and_256_characters() {
    static LONG: [u8; 1000] = [b'x'; 1000];
    let long = service(&LONG);
    let run = upcheck(&["-f", "jsonl", "--banner-contains", "xxx", "-u", &long]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let result = &run.jsonl()[0];
    assert_matches_schema(result, "result");
    assert_eq!(result["banner"].as_str().unwrap().len(), 256);
}

#[test]
fn text_output_escapes_what_a_service_sent() {
    let evil = service(b"\x1b[31mhello\x07\r\n");
    let run = upcheck(&["--banner-contains", "hello", "-u", &evil]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        !run.stdout.contains('\x1b'),
        "raw escape in {:?}",
        run.stdout
    );
    assert!(!run.stdout.contains('\x07'));
    assert!(
        run.stdout.contains(r#"banner "\x1b[31mhello\x07""#),
        "{}",
        run.stdout
    );
}

#[test]
fn checks_files_set_banner_contains_per_entry() {
    let ssh = service(b"SSH-2.0-x\r\n");
    let checks = list_file(&[
        "[[check]]".to_owned(),
        format!("url = \"{ssh}\""),
        "banner_contains = \"SSH-2.0-\"".to_owned(),
        "[[check]]".to_owned(),
        format!("url = \"{ssh}\""),
        "banner_contains = \"220 \"".to_owned(),
        "timeout = \"300ms\"".to_owned(),
        "[[check]]".to_owned(),
        "url = \"http://127.0.0.1:1/\"".to_owned(),
        "banner_contains = \"x\"".to_owned(),
    ]);
    let run = upcheck(&["-f", "json", "--checks", path(&checks)]);
    let results = run.results();
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[0]["banner"], "SSH-2.0-x");
    assert_eq!(results[1]["error_kind"], "body", "{}", results[1]);
    assert_eq!(results[2]["error_kind"], "invalid");
    assert!(results[2]["error"]
        .as_str()
        .unwrap()
        .contains("only to tcp://"));
}
