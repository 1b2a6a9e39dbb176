//! Integration tests: the real binary against real servers on 127.0.0.1 that the tests start.

// Helpers: the scripted server and its route table, and the builder that runs the binary.
mod support;

// Command-line handling: option values, usage errors, help, exit codes for bad input.
mod cli;
// The endpoint list format: comments, encodings, invalid lines, stdin, ordering.
mod input;
// Faults a target can throw: stalls, resets, garbage, endless bodies, odd redirects.
mod faults;
// HTTP probes: statuses, bodies, redirects, TLS, timeouts and the error kinds they produce.
mod http;
// TCP probes.
mod tcp;
// ICMP echo probes: raw and datagram sockets, no answer, no permission, ICMP errors.
mod icmp;
// Address ranges in a list line, one result per address.
mod ranges;
// Banners: what a TCP service sends first, with --banner-contains.
mod banner;
// Host names from a private /etc/hosts and a loopback DNS responder, never this machine's resolver.
mod names;
// DNS at scale: a dead or slow resolver, search domains, /etc/hosts beside DNS.
mod dns;
// The scheduler: concurrency bounds, retries, Retry-After, deadline, signals.
mod schedule;
// Our own side: file limits, a full stdout, hostile input files.
mod resources;
// Output: text, json, jsonl, the schema, colour, progress, a closed stdout.
mod output;
// Checks files: per-target settings, names and tags, bad entries.
mod checks;
// Big inputs: checks files read as they stream in, lines deep in a big file.
mod scale;
// TLS certificate expiry.
mod cert;
// Trust and client certificates against a private PKI (--cacert, --cert, ca_file), and curl's verdict.
mod tls_trust;
// Which address answers: --resolve, -4/-6 and the address field.
mod addresses;
// Where the time went: timings, phase metrics and the phase summary line.
mod timings;
// Slow marking, Prometheus and Nagios output, -o.
mod formats;
// Pacing requests with --rate.
mod rate;
// Splitting a list over machines with --shard.
mod shard;
// Completion scripts and the man page.
mod shell;
// --state and --changes-only across consecutive runs.
mod state;
// Failures by kind, the latency histogram on a terminal, SIGUSR1, the bar naming a laggard.
mod operator;
// Trust breakers: -o never loses a file; a device, FIFO, link, owner or input survives it.
mod trust_output;
// Trust breakers: the deadline ends every run and a cut-short run says so; SIGHUP.
mod trust_deadline;
// Trust breakers: no password, Referer, header or control character leaks.
mod trust_leaks;
// Trust breakers: proxies, out-of-range values, Retry-After 0, odd Locations, tcp hosts, SSL_CERT_FILE.
mod trust_verdicts;
// --threads: worker threads give the same results, and per-host limits hold across them.
mod threads;
