//! No wrong verdicts: proxies, out-of-range option values, `Retry-After: 0`, a Location
//! that is not UTF-8, international and IPv6 `tcp://` hosts, and a `SSL_CERT_FILE` that
//! trusts nothing. Names resolve only through a private /etc, never this machine's resolver.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::support::names::PrivateEtc;
use crate::support::{refused_port, upcheck, Server, Upcheck};

/// A loopback server that answers up to `limit` connections with `response`, whatever
/// they ask, and keeps each request line.
fn raw_server(response: &'static [u8], limit: usize) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming().take(limit) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let mut first = None;
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) && line.trim() != "" {
                first.get_or_insert_with(|| line.trim().to_owned());
                line.clear();
            }
            log.lock().unwrap().extend(first);
            let _ = stream.write_all(response);
        }
    });
    (port, seen)
}

#[test]
fn proxies_never_take_loopback_are_checked_and_are_named_in_failures() {
    let server = Server::start();
    let dead_proxy = format!("http://127.0.0.1:{}", refused_port());
    let direct = Upcheck::new()
        .env("HTTP_PROXY", &dead_proxy)
        .format("json")
        .urls([
            server.url("/ok"),
            format!("http://localhost:{}/ok", server.addr.port()),
            format!("tcp://127.0.0.1:{}", server.addr.port()),
        ])
        .run();
    assert_eq!(
        direct.code,
        Some(0),
        "loopback went to the proxy: {}",
        direct.stdout
    );

    // A name (from the private hosts file) is not loopback by name: it goes through the proxy.
    let etc = PrivateEtc::new("127.0.0.1 proxied.upcheck.test", None);
    let target = format!("http://proxied.upcheck.test:{}/ok", server.addr.port());
    let through_dead = Upcheck::new()
        .env("HTTP_PROXY", &dead_proxy)
        .format("json")
        .urls([&target])
        .via(etc.launcher())
        .run();
    assert_eq!(through_dead.code, Some(1), "{}", through_dead.stderr);
    let result = &through_dead.results()[0];
    assert_eq!(result["error_kind"], "connect", "{result}");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains(&format!("through proxy {dead_proxy}/")),
        "{result}"
    );

    let (proxy_port, proxied) = raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
    let through_live = Upcheck::new()
        .env("http_proxy", &format!("127.0.0.1:{proxy_port}"))
        .format("json")
        .urls([&target])
        .via(etc.launcher())
        .run();
    assert_eq!(through_live.code, Some(0), "{}", through_live.stdout);
    assert_eq!(*proxied.lock().unwrap(), [format!("GET {target} HTTP/1.1")]);
    assert!(
        server.seen().requests.len() == 2,
        "only the two loopback URLs went direct"
    );

    for (variable, value) in [
        ("HTTP_PROXY", "not a url"),
        ("https_proxy", "socks5://u:s3cret@127.0.0.1:1"),
    ] {
        for format in ["text", "nagios"] {
            let malformed = Upcheck::new()
                .env(variable, value)
                .format(format)
                .urls([server.url("/ok")])
                .run();
            let said = format!("{}{}", malformed.stdout, malformed.stderr);
            assert_eq!(
                malformed.code,
                Some(if format == "nagios" { 3 } else { 2 }),
                "{said}"
            );
            assert!(said.contains(variable), "{said}");
            assert!(!said.contains("s3cret"), "{said}");
        }
    }
    assert_eq!(
        server.seen().requests.len(),
        2,
        "malformed proxies probe nothing"
    );
}

#[test]
fn out_of_range_values_are_usage_errors_naming_the_option() {
    for (args, option) in [
        (vec!["-d", "3000000000000000h"], "--deadline"),
        (vec!["--rate", "1e-19"], "--rate"),
        (vec!["-t", "0.5ms"], "--timeout"),
    ] {
        let mut all = args.clone();
        all.extend(["-u", "tcp://127.0.0.1:1"]);
        let run = upcheck(&all);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains(option), "{}", run.stderr);
        all.extend(["-f", "nagios"]);
        let run = upcheck(&all);
        assert_eq!(run.code, Some(3), "{args:?}: {run:?}");
        assert!(run.stdout.starts_with("UPCHECK UNKNOWN"), "{}", run.stdout);
    }
    let run = upcheck(&[
        "-f",
        "json",
        "-u",
        "tcp://127.0.0.1:0",
        "-u",
        "http://127.0.0.1:0/",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for result in run.results() {
        assert_eq!(result["error_kind"], "invalid", "{result}");
        assert!(
            result["error"].as_str().unwrap().contains("port 0"),
            "{result}"
        );
    }
}

#[test]
fn retry_after_zero_backs_off_and_the_deadline_cuts_it() {
    let server = Server::start();
    let run = upcheck(&[
        "-f",
        "json",
        "--retries",
        "100000",
        "-d",
        "2s",
        "-u",
        &server.url("/retry-after/0"),
    ]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let result = &run.results()[0];
    assert_eq!(result["error_kind"], "deadline", "{result}");
    let attempts = result["attempts"].as_u64().unwrap();
    assert!(attempts <= 20, "{attempts} attempts in 2s: no backoff");
}

#[test]
fn a_location_that_is_not_utf8_is_a_redirect_failure() {
    let (port, _) = raw_server(
        b"HTTP/1.1 302 Found\r\nLocation: /caf\xe9\r\nContent-Length: 0\r\n\r\n",
        2,
    );
    let run = upcheck(&["-f", "json", "-u", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let result = &run.results()[0];
    assert_eq!(result["error_kind"], "redirect", "{result}");
    assert_eq!(result["status"], 302, "{result}");
}

#[test]
fn tcp_hosts_are_idna_converted_and_bare_ipv6_gets_a_hint() {
    let server = Server::start();
    let etc = PrivateEtc::new("127.0.0.1 xn--bcher-kva.upcheck.test", None);
    let idn = Upcheck::new()
        .format("json")
        .urls([format!("tcp://bücher.upcheck.test:{}", server.addr.port())])
        .via(etc.launcher())
        .run();
    assert_eq!(idn.code, Some(0), "{}", idn.stdout);

    let run = upcheck(&["-f", "json", "-u", "tcp://::1:443"]);
    let result = &run.results()[0];
    assert_eq!(result["error_kind"], "invalid");
    assert!(
        result["error"].as_str().unwrap().contains("tcp://[::1]:"),
        "{result}"
    );
}

#[test]
fn an_unreadable_or_empty_ssl_cert_file_is_a_usage_error() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, says) in [(&missing, "cannot be read"), (&empty, "no PEM certificate")] {
        let run = Upcheck::new()
            .env("SSL_CERT_FILE", file.to_str().unwrap())
            .urls([server.url("/ok")])
            .run();
        assert_eq!(run.code, Some(2), "{run:?}");
        assert!(
            run.stderr.contains("SSL_CERT_FILE") && run.stderr.contains(says),
            "{}",
            run.stderr
        );
    }
    assert!(server.seen().requests.is_empty(), "nothing was probed");
}
