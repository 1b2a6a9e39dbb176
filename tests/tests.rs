//! Integration tests: the real binary against real servers on 127.0.0.1 that the tests start.

// Helpers: the scripted server and running the binary.
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
// Slow marking, Prometheus and Nagios output, -o.
mod formats;
// Pacing requests with --rate.
mod rate;
// Splitting a list over machines with --shard.
mod shard;
// Completion scripts and the man page.
mod shell;
