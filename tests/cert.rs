use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{upcheck, Server, Upcheck};

const DAY: i64 = 86_400;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Checks `url` with `-f json` and `args`: the exit code and the one result, whose
/// document is checked against the schema.
fn check(args: &[&str], url: &str) -> (Option<i32>, serde_json::Value) {
    let run = Upcheck::new().format("json").args(args).urls([url]).run();
    let result = run.document()["results"][0].clone();
    (run.code, result)
}

#[test]
fn a_valid_certificate_reports_its_expiry() {
    let not_after = now() + 90 * DAY + 3600;
    let server = Server::start_tls_expiring_at(not_after);
    let (code, result) = check(&["-k", "--cert-min-days", "30"], &server.url("/ok"));
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["ok"], true);
    assert_eq!(result["cert_days_left"], 90);
    let expires_at = result["cert_expires_at"].as_str().unwrap();
    let expected = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
    let expected = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        expected.year(),
        u8::from(expected.month()),
        expected.day(),
        expected.hour(),
        expected.minute(),
        expected.second()
    );
    assert_eq!(expires_at, expected);
    assert!(
        expires_at.ends_with('Z') && expires_at.len() == 20,
        "{expires_at}"
    );
}

#[test]
fn a_certificate_expiring_within_the_minimum_is_cert_expiry() {
    let server = Server::start_tls_expiring_at(now() + 3 * DAY + 3600);
    let url = server.url("/ok");
    let (code, result) = check(&["-k", "--cert-min-days", "7"], &url);
    assert_eq!(code, Some(1));
    assert_eq!(result["ok"], false);
    assert_eq!(result["error_kind"], "cert_expiry");
    assert_eq!(result["status"], 200);
    assert_eq!(result["cert_days_left"], 3);
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("in 3 days (--cert-min-days 7)"), "{error}");

    let (code, result) = check(&["-k"], &url);
    assert_eq!(code, Some(0), "no minimum, no failure: {result}");
    assert_eq!(result["cert_days_left"], 3);

    let run = upcheck(&["-k", "--cert-min-days", "7", "-u", &url]);
    assert!(
        run.stdout.contains("cert_expiry: certificate expires at"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_expired_certificate_is_reported_with_insecure_and_fails_the_minimum() {
    let server = Server::start_tls_expiring_at(now() - 2 * DAY - 60);
    let url = server.url("/ok");
    let (code, result) = check(&["-k"], &url);
    assert_eq!(code, Some(0), "-k accepts it: {result}");
    assert_eq!(result["cert_days_left"], -3);

    let (code, result) = check(&["-k", "--cert-min-days", "0"], &url);
    assert_eq!(code, Some(1));
    assert_eq!(result["error_kind"], "cert_expiry");
    assert!(result["error"]
        .as_str()
        .unwrap()
        .starts_with("certificate expired at"));

    let (_, result) = check(&[], &url);
    assert_eq!(
        result["error_kind"], "tls",
        "verified, it fails the handshake"
    );
    assert!(result["cert_expires_at"].is_null());
}

#[test]
fn plain_http_and_tcp_have_no_certificate() {
    let server = Server::start();
    let (_, result) = check(&["--cert-min-days", "30"], &server.url("/ok"));
    assert_eq!(result["ok"], true);
    assert!(result["cert_expires_at"].is_null() && result["cert_days_left"].is_null());
    let (_, result) = check(&[], &format!("tcp://{}", server.addr));
    assert!(result["cert_expires_at"].is_null());
}
