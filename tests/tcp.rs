use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use socket2::SockRef;

use crate::support::{
    list_file, path, refused_port, unresolvable_host, upcheck, wait_until, Server,
};

#[test]
fn tcp_connect_probes() {
    let server = Server::start();
    let open = format!("tcp://{}", server.addr);
    let closed = format!("tcp://127.0.0.1:{}", refused_port());
    let unresolvable = format!("tcp://{}:80", unresolvable_host());
    let run = upcheck(&[
        "-f",
        "json",
        "-u",
        &open,
        "-u",
        &closed,
        "-u",
        &unresolvable,
    ]);
    assert_eq!(run.code, Some(1));
    let results = run.results();
    assert_eq!(results[0]["ok"], true);
    assert!(results[0]["status"].is_null(), "TCP targets have no status");
    assert!(results[0]["latency_ms"].is_number());
    assert_eq!(results[1]["error_kind"], "connect");
    assert_eq!(results[1]["error"], "connection refused");
    assert_eq!(results[2]["error_kind"], "dns");
    // The connect completes in the kernel's backlog; the server counts it when it accepts.
    wait_until("the server accepted the TCP check's connection", || {
        server.seen().connections >= 1
    });
}

#[test]
fn tcp_targets_over_ipv6_loopback() {
    // Skipping would let the test pass without checking anything: without ::1, it fails.
    let listener = std::net::TcpListener::bind("[::1]:0").unwrap_or_else(|err| {
        panic!(
            "this test needs the IPv6 loopback, but binding [::1]:0 failed ({err}); \
             `ip -6 addr show lo` should list ::1"
        )
    });
    let port = listener.local_addr().unwrap().port();
    let run = upcheck(&["-f", "json", "-u", &format!("tcp://[::1]:{port}")]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
}

#[test]
fn a_service_that_accepts_and_resets_at_once_is_open_every_time() {
    // Each connection is accepted, then reset (a zero linger close). The reset reaches
    // the client before or after its connect returns, as the threads happen to run.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let target = format!("tcp://{}", listener.local_addr().expect("an address"));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    });
    let list = list_file(&vec![target; 30]);
    for threads in ["1", "2"] {
        let run = upcheck(&["--threads", threads, "-f", "jsonl", path(&list)]);
        assert_eq!(run.code, Some(0), "{}", run.stdout);
        assert_eq!(run.jsonl().len(), 30);
        let banner = upcheck(&[
            "--threads",
            threads,
            "--banner-contains",
            "SSH",
            "-f",
            "jsonl",
            path(&list),
        ]);
        assert_eq!(banner.code, Some(1));
        for result in banner.jsonl() {
            assert_eq!(result["error_kind"], "protocol", "{result}");
            assert_eq!(result["error"], "connection reset by peer", "{result}");
        }
    }
}

#[test]
fn a_literal_of_the_family_refused_is_no_lookup() {
    let run = upcheck(&["-4", "-f", "json", "-u", "tcp://[::1]:9"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    let result = &run.results()[0];
    assert_eq!(result["error_kind"], "dns", "{result}");
    assert_eq!(
        result["timings"]["dns_ms"],
        serde_json::Value::Null,
        "{result}"
    );
}
