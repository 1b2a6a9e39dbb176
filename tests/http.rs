use std::io::Write;

use crate::support::{
    list_file, path, refused_port, result_for, unresolvable_host, upcheck, Server, Upcheck,
};

#[test]
fn healthy_and_failing_statuses() {
    let server = Server::start();
    let (ok, bad, missing) = (
        server.url("/ok"),
        server.url("/status/503"),
        server.url("/status/404"),
    );
    let run = Upcheck::new()
        .format("json")
        .urls([&ok, &bad, &missing])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    let ok = result_for(&results, &ok);
    assert_eq!(
        (ok["ok"].as_bool(), ok["status"].as_u64()),
        (Some(true), Some(200))
    );
    assert!(ok["error_kind"].is_null() && ok["error"].is_null());
    assert!(ok["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    let bad = result_for(&results, &bad);
    assert_eq!(bad["error_kind"], "status");
    assert_eq!(bad["status"], 503);
    assert!(bad["error"].as_str().unwrap().contains("503"));
    assert_eq!(result_for(&results, &missing)["error_kind"], "status");
}

#[test]
fn all_healthy_exits_zero() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("json")
        .urls([server.url("/ok"), server.url("/slow/10")])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(0));
    assert!(results
        .iter()
        .all(|r| r["ok"] == true && r["attempts"] == 1));
}

#[test]
fn expect_status_decides_what_is_healthy() {
    let server = Server::start();
    let targets = [
        server.url("/status/404"),
        server.url("/status/204"),
        server.url("/ok"),
    ];
    let run = Upcheck::new()
        .format("json")
        .args(["--expect-status", "204,400-404"])
        .urls(&targets)
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["ok"], true);
    assert_eq!(results[2]["error_kind"], "status");
    assert!(results[2]["error"]
        .as_str()
        .unwrap()
        .contains("204,400-404"));
}

#[test]
fn body_contains_reads_only_up_to_max_body() {
    let server = Server::start();
    let body = server.url("/body/all-systems-go");
    let padded = server.url("/padded/3000/NEEDLE");
    let run = Upcheck::new()
        .format("json")
        .args(["--body-contains", "systems"])
        .urls([&body])
        .run();
    let results = run.results();
    assert_eq!(results[0]["ok"], true);
    let run = Upcheck::new()
        .format("json")
        .args(["--body-contains", "nominal"])
        .urls([body])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    assert_eq!(results[0]["error_kind"], "body");
    assert_eq!(results[0]["status"], 200);
    let run = Upcheck::new()
        .format("json")
        .args(["--body-contains", "NEEDLE", "--max-body", "2KiB"])
        .urls([&padded])
        .run();
    let results = run.results();
    assert_eq!(
        results[0]["error_kind"], "body",
        "the needle lies past --max-body"
    );
    let run = Upcheck::new()
        .format("json")
        .args(["--body-contains", "NEEDLE", "--max-body", "4KB"])
        .urls([padded])
        .run();
    let results = run.results();
    assert_eq!(results[0]["ok"], true);
}

#[test]
fn a_long_body_is_not_unhealthy_by_itself() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("json")
        .args(["--max-body", "100"])
        .urls([server.url("/padded/5000/x")])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(0));
    assert_eq!(results[0]["ok"], true);
}

#[test]
fn method_and_headers_reach_the_server() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("json")
        .args([
            "-X",
            "head",
            "-H",
            "X-Team: ops",
            "-H",
            "Authorization: Bearer s3cret",
        ])
        .urls([server.url("/ok")])
        .run();
    assert_eq!(run.code, Some(0));
    let seen = server.seen();
    let request = &seen.requests[0];
    assert_eq!(request.method, "HEAD");
    assert_eq!(request.header("x-team"), Some("ops"));
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    assert!(request
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("upcheck/")));
}

#[test]
fn header_secrets_never_appear_in_output() {
    let server = Server::start();
    let targets = [
        server.url("/status/500"),
        server.url("/hang"),
        format!("http://127.0.0.1:{}/", refused_port()),
    ];
    for format in ["text", "json", "jsonl"] {
        let run = Upcheck::new()
            .format(format)
            .args([
                "-t",
                "300ms",
                "--progress",
                "always",
                "-H",
                "Authorization: Bearer s3cret-token",
            ])
            .urls(&targets)
            .run();
        assert_eq!(run.code, Some(1));
        assert!(
            !run.stdout.contains("s3cret"),
            "{format} stdout leaks the header:\n{}",
            run.stdout
        );
        assert!(
            !run.stderr.contains("s3cret"),
            "{format} stderr leaks the header:\n{}",
            run.stderr
        );
    }
}

#[test]
fn redirects_are_followed_up_to_ten() {
    let server = Server::start();
    let ten = server.url("/redirect/9");
    let eleven = server.url("/redirect/10");
    let looping = server.url("/loop");
    let run = Upcheck::new()
        .format("json")
        .urls([&ten, &eleven, &looping])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    let ten = result_for(&results, &ten);
    assert_eq!(
        (ten["ok"].as_bool(), ten["status"].as_u64()),
        (Some(true), Some(200))
    );
    assert_eq!(result_for(&results, &eleven)["error_kind"], "redirect");
    let looping = result_for(&results, &looping);
    assert_eq!(looping["error_kind"], "redirect");
    assert!(looping["error"]
        .as_str()
        .unwrap()
        .contains("more than 10 redirects"));
}

#[test]
fn redirects_to_other_schemes_are_never_followed() {
    let server = Server::start();
    let targets = [
        server.url("/redirect-to/file:///etc/passwd"),
        server.url("/redirect-to/ftp://127.0.0.1/x"),
    ];
    let run = Upcheck::new().format("json").urls(&targets).run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    for result in &results {
        assert_eq!(result["error_kind"], "redirect", "{result}");
        assert!(result["error"].as_str().unwrap().contains("never followed"));
    }
    assert!(results[0]["error"].as_str().unwrap().contains("file:"));
}

#[test]
fn no_follow_judges_the_redirect_itself() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("json")
        .args(["--no-follow"])
        .urls([server.url("/loop")])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(0));
    assert_eq!(results[0]["status"], 302);
    assert_eq!(server.seen().requests.len(), 1);
    let run = Upcheck::new()
        .format("json")
        .args(["--no-follow", "--expect-status", "200"])
        .urls([server.url("/loop")])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    assert_eq!(results[0]["error_kind"], "status");
}

#[test]
fn self_signed_certificates_fail_unless_insecure() {
    let server = Server::start_tls();
    let url = server.url("/ok");
    let run = Upcheck::new().format("json").urls([&url]).run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    assert_eq!(results[0]["error_kind"], "tls");
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{}",
        results[0]
    );
    let run = upcheck(&["-k", "-f", "json", "-u", &url]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.results()[0]["status"], 200);
    assert_eq!(
        run.stderr.matches("warning").count(),
        1,
        "one warning for -k: {}",
        run.stderr
    );
}

#[test]
fn plain_http_on_a_tls_port_is_a_tls_error() {
    // A plain HTTP server answers the TLS hello with an HTTP error and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/ok", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "10s"])
        .urls([url])
        .run();
    let results = run.results();
    assert_eq!(results[0]["error_kind"], "tls", "{}", results[0]);
}

#[test]
fn a_black_hole_times_out_per_attempt() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "300ms"])
        .urls([server.url("/hang")])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    let result = &results[0];
    assert_eq!(result["error_kind"], "timeout");
    assert_eq!(result["attempts"], 1);
    assert!(result["status"].is_null());
    let latency = result["latency_ms"].as_f64().unwrap();
    assert!(
        latency >= 300.0,
        "the attempt ran to the timeout: {latency}"
    );
}

#[test]
fn the_timeout_covers_the_body_only_when_it_is_read() {
    let server = Server::start();
    let url = server.url("/stall-body");
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "300ms"])
        .urls([&url])
        .run();
    let results = run.results();
    assert_eq!(
        results[0]["ok"], true,
        "headers decide without --body-contains: {}",
        results[0]
    );
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "300ms", "--body-contains", "complete"])
        .urls([url])
        .run();
    let results = run.results();
    assert_eq!(results[0]["error_kind"], "timeout");
}

#[test]
fn non_http_answers_are_protocol_errors() {
    let server = Server::start();
    let run = Upcheck::new()
        .format("json")
        .urls([server.url("/garbage"), server.url("/close")])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    for result in &results {
        assert_eq!(result["error_kind"], "protocol", "{result}");
        assert!(result["status"].is_null());
    }
}

#[test]
fn refused_and_unresolvable_hosts() {
    let refused = format!("http://127.0.0.1:{}/", refused_port());
    let unresolvable = format!("http://{}/", unresolvable_host());
    let run = Upcheck::new()
        .format("json")
        .urls([&refused, &unresolvable])
        .run();
    let results = run.results();
    assert_eq!(run.code, Some(1));
    let refused = result_for(&results, &refused);
    assert_eq!(refused["error_kind"], "connect");
    assert_eq!(refused["error"], "connection refused");
    assert!(refused["latency_ms"].is_number());
    assert_eq!(result_for(&results, &unresolvable)["error_kind"], "dns");
}

#[test]
fn connections_are_reused() {
    let server = Server::start();
    let lines: Vec<String> = (0..40).map(|_| server.url("/ok")).collect();
    let list = list_file(&lines);
    let run = upcheck(&["-c", "2", "--per-host", "2", "-f", "jsonl", path(&list)]);
    assert_eq!(run.code, Some(0));
    assert_eq!(run.jsonl().len(), 40);
    let seen = server.seen();
    assert_eq!(seen.requests.len(), 40);
    assert!(
        seen.connections <= 4,
        "40 requests over {} connections",
        seen.connections
    );
}

#[test]
fn credentials_are_not_forwarded_to_another_host() {
    let (origin, elsewhere) = (Server::start(), Server::start());
    let same_host = origin.url("/redirect/1");
    let cross_host = origin.url(&format!("/redirect-to/{}", elsewhere.url("/ok")));
    let run = Upcheck::new()
        .format("json")
        .args([
            "-H",
            "Authorization: Bearer s3cret",
            "-H",
            "Cookie: session=s3cret",
        ])
        .urls([same_host, cross_host])
        .run();
    assert_eq!(run.code, Some(0));
    let at_origin = origin.seen().requests;
    assert!(at_origin
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer s3cret")));
    assert!(at_origin
        .iter()
        .all(|r| r.header("cookie") == Some("session=s3cret")));
    assert_eq!(
        at_origin.len(),
        4,
        "two first requests, then /redirect/0 and /ok on the same host"
    );
    let elsewhere = elsewhere.seen().requests;
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(elsewhere[0].header("authorization"), None);
    assert_eq!(elsewhere[0].header("cookie"), None);
}

#[test]
fn secret_headers_can_come_from_a_file() {
    let server = Server::start();
    let headers = crate::support::list_file(&[
        "# secrets for the health checks".into(),
        "Authorization: Bearer s3cret".into(),
        "X-Team: ops".into(),
    ]);
    let header_file = format!("@{}", path(&headers));
    let run = Upcheck::new()
        .format("json")
        .args(["-H", &header_file])
        .urls([server.url("/ok")])
        .run();
    assert_eq!(run.code, Some(0));
    let request = &server.seen().requests[0];
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(request.header("x-team"), Some("ops"));

    let bad = crate::support::list_file(&["Authorization Bearer s3cret".into()]);
    let run = upcheck(&["-H", &format!("@{}", path(&bad)), "-u", &server.url("/ok")]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains(&format!("'{}' line 1", path(&bad))),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    let run = upcheck(&["-H", "@/nonexistent/headers", "-u", &server.url("/ok")]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("/nonexistent/headers"),
        "{}",
        run.stderr
    );
    assert_eq!(
        server.seen().requests.len(),
        1,
        "bad header files probe nothing"
    );
}
