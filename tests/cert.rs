use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
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

/// A proxy on loopback that tunnels each `CONNECT NAME:PORT` to 127.0.0.1:PORT (never
/// looking NAME up); returns its port and the request lines it saw.
fn tunnelling_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("an address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let noted = seen.clone();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let noted = noted.clone();
            thread::spawn(move || tunnel(client, &noted));
        }
    });
    (port, seen)
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    seen.lock().unwrap().push(request.trim_end().to_owned());
    let port = request
        .split_whitespace()
        .nth(1)
        .and_then(|authority| authority.rsplit_once(':'))
        .map(|(_, port)| port.to_owned())
        .unwrap_or_default();
    let server = TcpStream::connect(format!("127.0.0.1:{port}"))?;
    let mut client = client;
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut from_server, mut to_server) = (server.try_clone()?, server);
    let mut to_client = client.try_clone()?;
    thread::spawn(move || io::copy(&mut from_server, &mut to_client));
    io::copy(&mut reader, &mut to_server)?;
    Ok(())
}

#[test]
fn a_certificate_is_read_through_a_proxy_tunnel_too() {
    let not_after = now() + 10 * DAY + 3600;
    let server = Server::start_tls_expiring_at(not_after);
    let (proxy_port, seen) = tunnelling_proxy();
    // A pinned name, so the target is not loopback by name and goes through the proxy.
    let authority = format!("tunnelled.upcheck.test:{}", server.addr.port());
    let run = Upcheck::new()
        .env("HTTPS_PROXY", &format!("http://127.0.0.1:{proxy_port}"))
        .format("json")
        .args(["-k", "--cert-min-days", "30", "--resolve"])
        .args([format!("{authority}:127.0.0.1")])
        .urls([format!("https://{authority}/ok")])
        .run();
    let result = &run.results()[0];
    assert_eq!(
        *seen.lock().unwrap(),
        [format!("CONNECT {authority} HTTP/1.1")],
        "{result}"
    );
    assert_eq!(result["error_kind"], "cert_expiry", "{result}");
    assert_eq!(result["cert_days_left"], 10, "{result}");
    assert_eq!(run.code, Some(1));
}
