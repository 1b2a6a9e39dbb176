//! Where the time went: per-phase `timings` in results, blackbox's phase metrics, and the
//! text summary's phase line. Only presence and absence are asserted, never speed.

use serde_json::Value;

use crate::support::{assert_matches_schema, upcheck, Server};
use crate::tls_trust::Pki;

fn phases(result: &Value) -> [bool; 5] {
    ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "body_ms"].map(|phase| {
        result["timings"][phase]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
    })
}

#[test]
fn each_phase_is_there_only_when_it_happened() {
    let pki = Pki::new();
    let tls = pki.server("127.0.0.1:0", false);
    let plain = Server::start();
    let by_name = format!("http://localhost:{}/ok", plain.addr.port());
    let run = upcheck(&[
        "-f",
        "json",
        "-c",
        "1",
        "--cacert",
        &pki.path("ca.pem"),
        "-u",
        &tls.url(),
        "-u",
        &plain.url("/ok"),
        "-u",
        &by_name,
        "-u",
        "http://127.0.0.1:1/",
    ]);
    assert_matches_schema(&run.json(), "document");
    let results = run.results();
    //                       dns    connect tls    ttfb   body
    assert_eq!(
        phases(&results[0]),
        [false, true, true, true, false],
        "{}",
        results[0]
    );
    assert_eq!(
        phases(&results[1]),
        [false, true, false, true, false],
        "{}",
        results[1]
    );
    assert_eq!(
        phases(&results[2]),
        [true, true, false, true, false],
        "{}",
        results[2]
    );
    assert_eq!(phases(&results[3]), [false; 5], "refused: {}", results[3]);

    let run = upcheck(&[
        "-f",
        "json",
        "--body-contains",
        "hello",
        "--cacert",
        &pki.path("ca.pem"),
        "-u",
        &tls.url(),
    ]);
    assert!(
        phases(&run.results()[0])[4],
        "the body was read: {}",
        run.stdout
    );
}

#[test]
fn a_reused_connection_has_no_setup_phases() {
    let (first, server) = (Server::start(), Server::start());
    let url = server.url("/ok");
    // A slow first target elsewhere holds the one slot while the rest is read, so the
    // next two start knowing that they share a host (a connection is kept only then).
    let slow = first.url("/slow/500");
    let run = upcheck(&["-f", "json", "-c", "1", "-u", &slow, "-u", &url, "-u", &url]);
    let results = run.results();
    assert_eq!(
        phases(&results[1]),
        [false, true, false, true, false],
        "{}",
        results[1]
    );
    assert_eq!(
        server.seen().connections,
        1,
        "the second request reused the connection"
    );
    assert_eq!(
        phases(&results[2]),
        [false, false, false, true, false],
        "{}",
        results[2]
    );
    assert_eq!(results[2]["address"], server.addr.to_string());
}

#[test]
fn tcp_checks_time_their_lookup_and_connect() {
    let server = Server::start();
    let run = upcheck(&[
        "-f",
        "json",
        "-u",
        &format!("tcp://localhost:{}", server.addr.port()),
    ]);
    let result = &run.results()[0];
    assert_eq!(
        phases(result),
        [true, true, false, false, false],
        "{result}"
    );
    assert_eq!(
        result["address"],
        format!("127.0.0.1:{}", server.addr.port())
    );
}

#[test]
fn prometheus_and_text_show_the_phases() {
    let pki = Pki::new();
    let tls = pki.server("127.0.0.1:0", false);
    let plain = Server::start();
    let by_name = format!("http://localhost:{}/ok", plain.addr.port());
    let ca = pki.path("ca.pem");
    let run = upcheck(&[
        "-f",
        "prometheus",
        "--cacert",
        &ca,
        "-u",
        &tls.url(),
        "-u",
        &by_name,
    ]);
    let text = &run.stdout;
    for phase in ["resolve", "connect", "tls", "processing"] {
        assert!(
            text.contains(&format!(",phase=\"{phase}\"}}")),
            "{phase} missing:\n{text}"
        );
    }
    let tls_target = format!("target=\"{}\"", tls.url());
    assert!(
        !text.contains(&format!(
            "probe_http_duration_seconds{{{tls_target},phase=\"resolve\"}}"
        )),
        "an IP literal has no lookup:\n{text}"
    );
    assert!(
        !text.contains("phase=\"transfer\""),
        "no body was read:\n{text}"
    );
    assert!(
        text.contains(&format!(
            "probe_dns_lookup_time_seconds{{target=\"{by_name}\"}}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("probe_ip_protocol{{{tls_target}}} 4\n")),
        "{text}"
    );
    openmetrics_parser::prometheus::parse_prometheus(text).expect("valid exposition");

    let run = upcheck(&["--cacert", &ca, "-u", &tls.url()]);
    // The breakdown stands just above the summary line, which stays last.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines.len() >= 2, "{}", run.stdout);
    assert!(
        lines[lines.len() - 1].contains(" checked in "),
        "{}",
        run.stdout
    );
    let last = lines[lines.len() - 2];
    assert!(
        last.starts_with("phases p50/p95: connect "),
        "{}",
        run.stdout
    );
    assert!(
        last.contains(", tls ") && last.contains(", ttfb "),
        "{last}"
    );

    let run = upcheck(&["-u", "http://127.0.0.1:1/"]);
    assert!(
        !run.stdout.contains("phases p50/p95"),
        "no timings, no line: {}",
        run.stdout
    );
}
