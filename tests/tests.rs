//! Integration tests: the real binary against real servers on 127.0.0.1 that the tests start.

// Helpers: the scripted server and running the binary.
mod support;

// Command-line handling: option values, usage errors, help, exit codes for bad input.
mod cli;
// The endpoint list format: comments, encodings, invalid lines, stdin, ordering.
mod input;
// HTTP probes: statuses, bodies, redirects, TLS, timeouts and the error kinds they produce.
mod http;
// TCP probes.
mod tcp;
// The scheduler: concurrency bounds, retries, Retry-After, deadline, signals.
mod schedule;
// Output: text, json, jsonl, the schema, colour, progress, a closed stdout.
mod output;
// Pacing requests with --rate.
mod rate;
// Splitting a list over machines with --shard.
mod shard;
// Completion scripts and the man page.
mod shell;
