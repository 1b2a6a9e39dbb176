use std::collections::HashMap;
use std::time::Duration;

use crate::support::names::{loopback, Answering, DnsResponder, PrivateEtc};
use crate::support::{list_file, path, Server, Upcheck};

#[test]
fn a_dead_resolver_delays_only_the_names_it_serves() {
    // 600 names only the dead resolver could answer, then 100 names /etc/hosts answers.
    // Each stuck getaddrinfo held a blocking thread for the resolver's own 5 s x 2, so
    // the pool (512 threads) filled and the hosts-file names timed out behind it.
    let server = Server::start();
    let port = server.addr.port();
    let dns = DnsResponder::start(HashMap::new(), Answering::Never);
    let good: Vec<String> = (0..100).map(|i| format!("good{i}.upcheck.test")).collect();
    let hosts: Vec<String> = good
        .iter()
        .map(|name| format!("127.0.0.1 {name}"))
        .collect();
    let mut lines: Vec<String> = (0..600)
        .map(|i| format!("http://dead{i}.upcheck.test:{port}/ok"))
        .collect();
    lines.extend(good.iter().map(|name| format!("http://{name}:{port}/ok")));
    let list = list_file(&lines);
    let resolv = format!("nameserver {}\n", dns.addr.ip());
    // glibc's defaults (5 s, 2 attempts) in resolv.conf, as on a real machine.
    let etc = PrivateEtc::with_resolv(&hosts.join("\n"), &resolv);
    let run = Upcheck::new()
        .format("json")
        .args(["-c", "200", "-t", "500ms", path(&list)])
        .via(etc.launcher())
        .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let results = run.results();
    assert_eq!(results.len(), 700);
    for result in &results[600..] {
        assert_eq!(result["ok"], true, "{result}");
    }
    for (i, result) in results[..600].iter().enumerate() {
        assert_eq!(result["error_kind"], "dns", "{result}");
        assert_eq!(
            result["error"],
            format!(
                "cannot resolve 'dead{i}.upcheck.test': no answer from the resolver within 500ms"
            )
        );
    }
    assert!(dns.queries() >= 600, "the responder saw {}", dns.queries());
}

#[test]
fn a_slow_resolver_answers_within_the_timeout() {
    let server = Server::start();
    let port = server.addr.port();
    let names: Vec<String> = (0..300).map(|i| format!("n{i}.upcheck.test")).collect();
    let records = names
        .iter()
        .map(|name| (name.clone(), loopback()))
        .collect();
    let dns = DnsResponder::start(records, Answering::After(Duration::from_millis(100)));
    let lines: Vec<String> = names
        .iter()
        .map(|name| format!("tcp://{name}:{port}"))
        .collect();
    let list = list_file(&lines);
    let resolv = format!("nameserver {}\n", dns.addr.ip());
    let etc = PrivateEtc::with_resolv("", &resolv);
    let run = Upcheck::new()
        .format("json")
        .args(["-c", "100", "-t", "5s", path(&list)])
        .via(etc.launcher())
        .run();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.results().iter().all(|result| result["ok"] == true));
}

#[test]
fn search_domains_and_ndots_apply_as_in_resolv_conf() {
    let server = Server::start();
    let port = server.addr.port();
    let dns = DnsResponder::start(
        HashMap::from([
            ("web.corp.upcheck.test".to_owned(), loopback()),
            ("a.b.upcheck.test".to_owned(), loopback()),
        ]),
        Answering::After(Duration::ZERO),
    );
    // A name with fewer dots than ndots tries the search list first; one with as many
    // is tried as written first; a final dot never takes the search list.
    let resolv = format!(
        "nameserver {}\nsearch corp.upcheck.test\noptions ndots:2\n",
        dns.addr.ip()
    );
    let urls = [
        format!("http://web:{port}/ok"),
        format!("http://a.b.upcheck.test:{port}/ok"),
        format!("http://web.:{port}/ok"),
        format!("http://local.upcheck.test:{port}/ok"),
    ];
    let etc = PrivateEtc::with_resolv("127.0.0.1 local.upcheck.test", &resolv);
    let run = Upcheck::new()
        .format("json")
        .args(["-t", "5s"])
        .urls(&urls)
        .via(etc.launcher())
        .run();
    let results = run.results();
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[1]["ok"], true, "{}", results[1]);
    assert_eq!(results[2]["error_kind"], "dns", "{}", results[2]);
    assert_eq!(results[3]["ok"], true, "{}", results[3]);
}
