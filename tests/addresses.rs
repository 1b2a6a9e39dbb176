//! Which address a check uses: `--resolve` pins, `-4`/`-6` with no fallback, and the
//! `address` field. Names come from a private /etc and a loopback DNS responder only.

use std::collections::HashMap;
use std::net::TcpListener;

use serde_json::Value;

use crate::support::names::{Answering, DnsResponder, PrivateEtc};
use crate::support::{assert_matches_schema, upcheck, Run, Server, Upcheck};
use crate::tls_trust::{Pki, TEST_NAME};

/// Runs upcheck with `-f json` and `args` in a private namespace seeing `etc`.
fn run_in(etc: &PrivateEtc, args: &[&str]) -> Run {
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "5s"])
        .args(args)
        .via(etc.launcher())
        .run();
    assert_matches_schema(&run.json(), "document");
    run
}

/// Fails loudly when this machine has no IPv6 loopback.
fn require_ipv6() {
    if let Err(err) = TcpListener::bind("[::1]:0") {
        panic!("these tests need the IPv6 loopback ::1, and it is not usable here: {err}");
    }
}

fn result(run: &Run, index: usize) -> Value {
    run.results()[index].clone()
}

#[test]
fn resolve_pins_only_its_host_and_port_and_keeps_the_name_for_tls() {
    let pki = Pki::new();
    let server = pki.server("127.0.0.1:0", false);
    let port = server.addr.port();
    // The responder knows no names: anything that is not pinned fails to resolve.
    let dns = DnsResponder::start(HashMap::new(), Answering::After(std::time::Duration::ZERO));
    let etc = PrivateEtc::new("", Some(&dns));
    let pin = format!("{TEST_NAME}:{port}:127.0.0.1");
    let pinned = format!("https://{TEST_NAME}:{port}/");
    let other_port = format!("https://{TEST_NAME}:{}/", port + 1);
    let ca = pki.path("ca.pem");
    let run = run_in(
        &etc,
        &[
            "--cacert",
            &ca,
            "--resolve",
            &pin,
            "-u",
            &pinned,
            "-u",
            &other_port,
        ],
    );
    let ok = result(&run, 0);
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["address"], format!("127.0.0.1:{port}"));
    assert!(
        ok["timings"]["dns_ms"].is_null(),
        "no DNS for a pinned name: {ok}"
    );
    let unpinned = result(&run, 1);
    assert_eq!(
        unpinned["error_kind"], "dns",
        "another port is not pinned: {unpinned}"
    );
    assert!(unpinned["address"].is_null());
    assert!(dns.queries() >= 1, "the unpinned port was looked up");

    let tcp = format!("tcp://{TEST_NAME}:{port}");
    let run = run_in(&etc, &["--resolve", &pin, "-u", &tcp]);
    assert_eq!(result(&run, 0)["address"], format!("127.0.0.1:{port}"));
}

#[test]
fn a_malformed_resolve_is_a_usage_error_naming_the_option() {
    for bad in [
        "api.test",
        "api.test:443",
        "api.test:x:127.0.0.1",
        "api.test:443:nope",
    ] {
        let run = upcheck(&["--resolve", bad, "-u", "http://127.0.0.1:1/"]);
        assert_eq!(run.code, Some(2), "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("--resolve"), "{bad}: {}", run.stderr);
    }
    let run = upcheck(&["-4", "-6", "-u", "http://127.0.0.1:1/"]);
    assert_eq!(run.code, Some(2), "-4 and -6 exclude each other");
}

#[test]
fn a_family_is_used_alone_with_no_fallback() {
    require_ipv6();
    // A dual-stack name whose IPv6 side is down: only 127.0.0.1 listens.
    let v4_only = Server::start();
    let port = v4_only.addr.port();
    let etc = PrivateEtc::new(
        "127.0.0.1 dual.upcheck.test\n::1 dual.upcheck.test\n::1 six.upcheck.test",
        None,
    );
    let url = format!("http://dual.upcheck.test:{port}/ok");
    let tcp = format!("tcp://dual.upcheck.test:{port}");

    let run = run_in(&etc, &["-u", &url, "-u", &tcp]);
    assert_eq!(
        result(&run, 0)["ok"],
        true,
        "no flag: today's fallback: {}",
        run.stdout
    );
    assert_eq!(result(&run, 0)["address"], format!("127.0.0.1:{port}"));
    assert_eq!(result(&run, 1)["ok"], true, "{}", run.stdout);

    let run = run_in(&etc, &["-6", "-u", &url, "-u", &tcp]);
    for index in [0, 1] {
        let failed = result(&run, index);
        assert_eq!(
            failed["error_kind"], "connect",
            "-6 must not fall back: {failed}"
        );
    }

    let run = run_in(&etc, &["-4", "-u", &url, "-u", &tcp]);
    let ok = result(&run, 0);
    assert_eq!(ok["ok"], true, "{ok}");
    assert_eq!(ok["address"], format!("127.0.0.1:{port}"));
    let six_only = format!("http://six.upcheck.test:{port}/ok");
    let run = run_in(
        &etc,
        &[
            "-4",
            "-u",
            &six_only,
            "-u",
            "http://127.0.0.1:1/",
            "-u",
            &format!("http://[::1]:{port}/"),
        ],
    );
    let failed = result(&run, 0);
    assert_eq!(failed["error_kind"], "dns", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("no IPv4 address"),
        "{failed}"
    );
    assert_eq!(
        result(&run, 2)["error_kind"],
        "dns",
        "an IPv6 literal under -4"
    );
}

#[test]
fn ipv6_answers_show_a_bracketed_address() {
    require_ipv6();
    let server = Server::bind("[::1]:0".parse().unwrap(), false).expect("listen on ::1");
    let port = server.addr.port();
    let etc = PrivateEtc::new("::1 six.upcheck.test", None);
    let url = format!("http://six.upcheck.test:{port}/ok");
    let tcp = format!("tcp://[::1]:{port}");
    let run = run_in(&etc, &["-6", "-u", &url, "-u", &tcp]);
    for index in [0, 1] {
        let ok = result(&run, index);
        assert_eq!(ok["ok"], true, "{ok}");
        assert_eq!(ok["address"], format!("[::1]:{port}"));
    }
    let run = upcheck(&["-f", "prometheus", "-u", &server.url("/ok")]);
    assert!(
        run.stdout.contains("probe_ip_protocol{target="),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("} 6\n"), "{}", run.stdout);
}
