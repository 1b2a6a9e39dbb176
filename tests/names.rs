use std::collections::HashMap;
use std::time::Duration;

use crate::support::names::{loopback, Answering, DnsResponder, PrivateEtc};
use crate::support::{Server, Upcheck};

#[test]
fn names_come_from_the_private_hosts_file_and_the_test_resolver() {
    let server = Server::start();
    let port = server.addr.port();
    let dns = DnsResponder::start(
        HashMap::from([("api.upcheck.test".to_owned(), loopback())]),
        Answering::After(Duration::from_millis(50)),
    );
    let etc = PrivateEtc::new("127.0.0.1 web.upcheck.test", Some(&dns));
    let urls = [
        format!("http://web.upcheck.test:{port}/ok"),
        format!("http://api.upcheck.test:{port}/ok"),
        format!("http://missing.upcheck.test:{port}/ok"),
    ];
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "5s"])
        .urls(&urls)
        .via(etc.launcher())
        .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let results = run.results();
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[1]["ok"], true, "{}", results[1]);
    assert_eq!(results[2]["error_kind"], "dns", "{}", results[2]);
    assert!(
        dns.queries() >= 2,
        "the responder saw {} queries",
        dns.queries()
    );
}

#[test]
fn every_worker_finds_names_in_the_one_hosts_file_read() {
    let server = Server::start();
    let port = server.addr.port();
    let dns = DnsResponder::start(HashMap::new(), Answering::After(Duration::ZERO));
    let names: Vec<String> = (0..12).map(|n| format!("host{n}.upcheck.test")).collect();
    let hosts: Vec<String> = names
        .iter()
        .map(|name| format!("127.0.0.1 {name}"))
        .collect();
    let etc = PrivateEtc::new(&hosts.join("\n"), Some(&dns));
    let urls: Vec<String> = names
        .iter()
        .map(|name| format!("http://{name}:{port}/ok"))
        .collect();
    // Twelve hosts spread over both workers by their hash; each worker's lookups must
    // find them in the hosts file read once for the run.
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "5s", "--threads", "2"])
        .urls(&urls)
        .via(etc.launcher())
        .run();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let results = run.results();
    assert_eq!(results.len(), names.len());
    for result in &results {
        assert_eq!(result["ok"], true, "{result}");
    }
    assert_eq!(dns.queries(), 0, "names in the hosts file went to DNS");
}

#[test]
fn a_resolver_that_never_answers_is_a_dns_failure() {
    let dns = DnsResponder::start(HashMap::new(), Answering::Never);
    let etc = PrivateEtc::new("", Some(&dns));
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "10s", "-u", "tcp://silent.upcheck.test:80"])
        .via(etc.launcher())
        .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.results()[0]["error_kind"], "dns");
    assert!(dns.queries() >= 1);
}
