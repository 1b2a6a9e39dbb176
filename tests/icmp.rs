//! icmp:// targets: real echo requests on loopback, and fresh network namespaces for the
//! paths this machine's own loopback cannot show (no answer, unprivileged, no permission,
//! no route, an ICMP error).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::support::{
    assert_matches_schema, finish, refused_port, result_for, upcheck, Run, Upcheck,
};

/// Echo requests are answered by nobody in the namespace.
const IGNORE_ECHOES: (&str, &str) = ("net.ipv4.icmp_echo_ignore_all", "1");
/// ICMPv6 echo requests are answered by nobody in the namespace.
const IGNORE_V6_ECHOES: (&str, &str) = ("net.ipv6.icmp.echo_ignore_all", "1");
/// No group may open ICMP datagram sockets: root falls back to a raw socket.
const NO_DATAGRAM: (&str, &str) = ("net.ipv4.ping_group_range", "1 0");
/// Every group may open ICMP datagram sockets.
const ANY_DATAGRAM: (&str, &str) = ("net.ipv4.ping_group_range", "0 2147483647");

/// How the binary is run inside the namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum As {
    Root,
    Nobody,
}

/// The shell that prepares a fresh network namespace: loopback up (unless `lo_up` is
/// false) and `sysctls` set there only, then runs its arguments.
fn namespace_script(lo_up: bool, sysctls: &[(&str, &str)]) -> String {
    let mut steps = Vec::new();
    if lo_up {
        steps.push("ip link set lo up".to_owned());
    }
    for (key, value) in sysctls {
        steps.push(format!("sysctl -qw {key}='{value}'"));
    }
    steps.push("exec \"$@\"".to_owned());
    steps.join(" && ")
}

/// Runs the binary with `args` in a fresh network namespace prepared as
/// [`namespace_script`] says, as `user`; fails loudly when the namespace cannot be made.
fn in_namespace(lo_up: bool, sysctls: &[(&str, &str)], user: As, args: &[&str]) -> Run {
    let mut launcher: Vec<String> = ["unshare", "--net", "sh", "-c"]
        .into_iter()
        .map(String::from)
        .collect();
    launcher.extend([namespace_script(lo_up, sysctls), "sh".to_owned()]);
    launcher.extend(as_user(user));
    let run = Upcheck::new().args(args).via(launcher).run();
    for tool in ["unshare:", "sysctl:", "setpriv:", "ip:", "sh:"] {
        assert!(
            !run.stderr.contains(tool),
            "cannot prepare a network namespace for this test (it needs root, unshare, ip, \
             sysctl and setpriv): {}",
            run.stderr
        );
    }
    run
}

/// The launcher that runs the binary as `user` (nothing for root, which we are).
fn as_user(user: As) -> Vec<String> {
    match user {
        As::Root => Vec::new(),
        As::Nobody => [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ]
        .map(String::from)
        .to_vec(),
    }
}

#[test]
fn loopback_echoes_are_answered_with_their_round_trip() {
    let run = upcheck(&[
        "-f",
        "json",
        "-u",
        "icmp://127.0.0.1",
        "-u",
        "icmp://[::1]",
        "-u",
        "icmp://localhost",
        "-u",
        "ICMP://127.3.2.1",
    ]);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_matches_schema(&run.json(), "document");
    for result in run.results() {
        assert_eq!(result["ok"], true, "{result}");
        assert!(result["status"].is_null());
        assert!(result["banner"].is_null());
        assert!(result["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    }
}

#[test]
fn echoes_to_one_host_count_against_per_host() {
    // Nothing answers, so each echo waits out its 5 s; the 1 s deadline ends the run while
    // the first waits. With --per-host 1 the other two never start (0 attempts); with 3,
    // all three are in flight.
    let attempts = |per_host: &str| -> Vec<u64> {
        let mut args = vec!["-f", "json", "--per-host", per_host, "-t", "5s", "-d", "1s"];
        for _ in 0..3 {
            args.extend(["-u", "icmp://127.0.0.9"]);
        }
        let run = in_namespace(true, &[NO_DATAGRAM, IGNORE_ECHOES], As::Root, &args);
        assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
        run.results()
            .iter()
            .map(|result| {
                assert_eq!(result["error_kind"], "deadline", "{result}");
                result["attempts"].as_u64().unwrap_or(u64::MAX)
            })
            .collect()
    };
    assert_eq!(attempts("1"), [1, 0, 0]);
    assert_eq!(attempts("3"), [1, 1, 1]);
}

#[test]
fn echoes_are_paced_by_rate() {
    // One start every 2 s: at 0 s and 2 s, and the third would be at 4 s, past the 3.9 s
    // deadline however late the first start comes. Unpaced, all three would start at once.
    let mut args = vec!["-f", "json", "--rate", "0.5", "-t", "10s", "-d", "3900ms"];
    for target in [
        "icmp://127.0.0.11",
        "icmp://127.0.0.12",
        "icmp://127.0.0.13",
    ] {
        args.extend(["-u", target]);
    }
    let run = in_namespace(true, &[NO_DATAGRAM, IGNORE_ECHOES], As::Root, &args);
    assert_eq!(run.code, Some(3), "{}{}", run.stdout, run.stderr);
    let attempts: Vec<u64> = run
        .results()
        .iter()
        .map(|result| result["attempts"].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(attempts, [1, 1, 0]);
}

#[test]
fn a_raw_socket_ignores_our_own_requests_so_silence_times_out_and_is_retried() {
    // As root without datagram sockets the probe reads a raw socket, which sees our own
    // echo requests go by on loopback: taking one for a reply would make this healthy.
    let run = in_namespace(
        true,
        &[NO_DATAGRAM, IGNORE_ECHOES],
        As::Root,
        &[
            "-f",
            "json",
            "-t",
            "200ms",
            "--retries",
            "1",
            "-u",
            "icmp://127.0.0.1",
        ],
    );
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let result = &run.results()[0];
    assert_eq!(result["error_kind"], "timeout", "{result}");
    assert_eq!(result["attempts"], 2, "a timeout is retried: {result}");
}

#[test]
fn a_raw_socket_pings_as_root_where_datagram_sockets_are_refused() {
    let run = in_namespace(
        true,
        &[NO_DATAGRAM],
        As::Root,
        &["-f", "json", "-u", "icmp://127.0.0.1", "-u", "icmp://[::1]"],
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
}

#[test]
fn unprivileged_users_ping_over_datagram_sockets_where_the_group_may() {
    let run = in_namespace(
        true,
        &[ANY_DATAGRAM],
        As::Nobody,
        &["-f", "json", "-u", "icmp://127.0.0.1", "-u", "icmp://[::1]"],
    );
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let silent = in_namespace(
        true,
        &[ANY_DATAGRAM, IGNORE_ECHOES],
        As::Nobody,
        &["-f", "json", "-t", "200ms", "-u", "icmp://127.0.0.1"],
    );
    assert_eq!(
        silent.results()[0]["error_kind"],
        "timeout",
        "{}",
        silent.stdout
    );
}

#[test]
fn without_permission_each_icmp_target_fails_naming_both_remedies_and_the_rest_runs() {
    let closed = format!("tcp://127.0.0.1:{}", refused_port());
    let run = in_namespace(
        true,
        &[NO_DATAGRAM],
        As::Nobody,
        &[
            "-f",
            "json",
            "-u",
            "icmp://127.0.0.1",
            "-u",
            "icmp://[::1]",
            "-u",
            "icmp://127.0.0.2",
            "-u",
            &closed,
        ],
    );
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.is_empty(),
        "not a crash nor a usage error: {}",
        run.stderr
    );
    let results = run.results();
    assert_eq!(results.len(), 4);
    for result in &results[..3] {
        assert_eq!(result["error_kind"], "other", "{result}");
        let error = result["error"].as_str().unwrap_or_default();
        assert!(error.contains("net.ipv4.ping_group_range"), "{error}");
        assert!(error.contains("CAP_NET_RAW"), "{error}");
    }
    assert_eq!(result_for(&results, &closed)["error_kind"], "connect");
}

#[test]
fn no_route_is_a_connect_failure() {
    // Loopback left down: there is no route even to 127.0.0.1.
    let run = in_namespace(
        false,
        &[],
        As::Root,
        &["-f", "json", "-u", "icmp://127.0.0.1", "-u", "icmp://[::1]"],
    );
    let results = run.results();
    for result in &results {
        assert_eq!(result["error_kind"], "connect", "{result}");
    }
    assert!(results[0]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("network unreachable"));
}

#[test]
fn icmp_errors_quoting_our_request_are_connect_failures() {
    // As root without datagram sockets: the errors come in on the raw socket.
    let run = answered_by_a_router(&[NO_DATAGRAM, IGNORE_ECHOES], As::Root, V4_TARGETS, false);
    assert_host_unreachable(&run, V4_TARGETS, "127.0.0.1");
}

#[test]
fn icmp_errors_reach_a_datagram_socket_through_its_error_queue() {
    // As nobody on a datagram socket the kernel queues the errors apart from the replies.
    let run = answered_by_a_router(
        &[ANY_DATAGRAM, IGNORE_ECHOES],
        As::Nobody,
        V4_TARGETS,
        false,
    );
    assert_host_unreachable(&run, V4_TARGETS, "127.0.0.1");
    let targets = &["icmp://[::1]"];
    let run = answered_by_a_router(&[ANY_DATAGRAM, IGNORE_V6_ECHOES], As::Nobody, targets, true);
    assert_host_unreachable(&run, targets, "::1");
}

/// The targets a router answers with errors quoting all of the request, and its first 8
/// bytes only (as RFC 792 allows).
const V4_TARGETS: &[&str] = &["icmp://127.0.0.7", "icmp://127.0.0.8"];

/// Pings `targets` as `user` in a fresh network namespace with `sysctls` set, while this
/// test plays the router and answers each echo request with a forged "host unreachable".
fn answered_by_a_router(
    sysctls: &'static [(&'static str, &'static str)],
    user: As,
    targets: &'static [&'static str],
    v6: bool,
) -> Run {
    // A thread of this test enters a fresh network namespace (namespaces are per thread),
    // starts the binary there, and sees each echo request on a raw socket.
    thread::spawn(move || {
        // SAFETY: unshare(2) with CLONE_NEWNET changes only this thread's namespace.
        let entered = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            entered,
            0,
            "cannot make a network namespace for this test (needs root): {}",
            std::io::Error::last_os_error()
        );
        let setup = Command::new("sh")
            .args(["-c", &namespace_script(true, sysctls), "sh", "true"])
            .status()
            .expect("run sh");
        assert!(setup.success(), "cannot prepare the network namespace");
        let (domain, protocol, router_address) = if v6 {
            (
                Domain::IPV6,
                Protocol::ICMPV6,
                SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
            )
        } else {
            (
                Domain::IPV4,
                Protocol::ICMPV4,
                SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            )
        };
        let router =
            Socket::new(domain, Type::RAW, Some(protocol)).expect("a raw ICMP socket (root)");
        router
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout");
        let mut upcheck = Upcheck::new().format("json").args(["-t", "5s"]);
        for target in targets {
            upcheck = upcheck.args(["-u", target]);
        }
        let child = upcheck.via(as_user(user)).spawn();
        let mut answered = Vec::new();
        let started = Instant::now();
        while answered.len() < targets.len() && started.elapsed() < Duration::from_secs(10) {
            let mut buffer = [std::mem::MaybeUninit::new(0u8); 1500];
            let Ok((length, _)) = router.recv_from(&mut buffer) else {
                continue;
            };
            // SAFETY: recv_from initialised the first `length` bytes.
            let datagram: Vec<u8> = buffer[..length]
                .iter()
                .map(|byte| unsafe { byte.assume_init() })
                .collect();
            let forged = if v6 {
                forge_v6(&datagram)
            } else {
                forge_v4(&datagram)
            };
            let Some((to, error)) = forged else { continue };
            if answered.contains(&to) {
                continue;
            }
            router
                .send_to(&error, &router_address.into())
                .expect("send the forged error");
            answered.push(to);
        }
        finish(child)
    })
    .join()
    .expect("the router thread")
}

/// For an echo request as a raw ICMP socket reads it (IPv4 header first), where it went
/// and a "host unreachable" quoting it: in full to 127.0.0.7, its first 8 bytes elsewhere.
fn forge_v4(datagram: &[u8]) -> Option<(IpAddr, Vec<u8>)> {
    let header = usize::from(datagram.first()? & 0x0f) * 4;
    if datagram.get(header) != Some(&8) {
        return None;
    }
    let to = Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]);
    let quoted = if to == Ipv4Addr::new(127, 0, 0, 7) {
        datagram
    } else {
        datagram.get(..header + 8)?
    };
    let mut error = vec![3, 1, 0, 0, 0, 0, 0, 0];
    error.extend_from_slice(quoted);
    let checksum = checksum(&error);
    error[2..4].copy_from_slice(&checksum.to_be_bytes());
    Some((IpAddr::V4(to), error))
}

/// For an ICMPv6 echo request to ::1 as a raw socket reads it (no IPv6 header), an
/// "address unreachable" quoting it behind the IPv6 header it had; the kernel sums it.
fn forge_v6(message: &[u8]) -> Option<(IpAddr, Vec<u8>)> {
    if message.first() != Some(&128) {
        return None;
    }
    let mut error = vec![1, 3, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0];
    error.extend_from_slice(&u16::try_from(message.len()).ok()?.to_be_bytes());
    error.extend_from_slice(&[58, 64]);
    error.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    error.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    error.extend_from_slice(message);
    Some((IpAddr::V6(Ipv6Addr::LOCALHOST), error))
}

/// Checks that every one of `targets` failed as `connect`, reported by `router`.
fn assert_host_unreachable(run: &Run, targets: &[&str], router: &str) {
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let results = run.results();
    for target in targets {
        let result = result_for(&results, target);
        assert_eq!(result["error_kind"], "connect", "{result}");
        assert_eq!(
            result["error"],
            format!("host unreachable (reported by {router})"),
            "{result}"
        );
    }
}

#[test]
fn prometheus_gives_the_round_trip_as_blackbox_does() {
    let run = upcheck(&["-f", "prometheus", "-u", "icmp://127.0.0.1"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run
        .stdout
        .contains("probe_success{target=\"icmp://127.0.0.1\"} 1\n"));
    assert!(run
        .stdout
        .contains("probe_icmp_duration_seconds{target=\"icmp://127.0.0.1\",phase=\"rtt\"} "));
    assert!(!run.stdout.contains("probe_http_status_code"));
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
