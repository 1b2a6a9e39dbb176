//! A local fleet of well and badly behaved endpoints to point upcheck at, with no internet.
//!
//! ```text
//! cargo run --release --example fleet                          # serve until Ctrl-C
//! cargo run --release --example fleet -- --check [ARGS]...     # serve, check, exit with upcheck's status
//! ```
//!
//! The fleet listens on 127.0.0.1:18080 (HTTP) and 127.0.0.1:18443 (HTTPS with a
//! self-signed certificate); `endpoints.example.txt` lists one target of each behaviour.
//! It is the same scripted server the integration tests start.

// The tests use the whole of the server's API; the fleet only needs it to serve.
#[allow(dead_code)]
#[path = "../tests/support/server.rs"]
mod server;

use std::process::ExitCode;

use server::{Server, BEHAVIOURS};

/// Where the plain HTTP half of the fleet listens.
const HTTP_ADDR: &str = "127.0.0.1:18080";
/// Where the HTTPS half listens.
const HTTPS_ADDR: &str = "127.0.0.1:18443";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (http, https) = match (start(HTTP_ADDR, false), start(HTTPS_ADDR, true)) {
        (Ok(http), Ok(https)) => (http, https),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("fleet: {err}");
            return ExitCode::from(2);
        }
    };
    match args.split_first() {
        Some((flag, upcheck_args)) if flag == "--check" => {
            let argv = std::iter::once("upcheck".to_owned()).chain(upcheck_args.iter().cloned());
            ExitCode::from(upcheck::main_with_args(argv.map(Into::into).collect()))
        }
        _ => {
            println!("fleet: serving {} and {}", http.url("/"), https.url("/"));
            println!("{BEHAVIOURS}");
            println!(
                "Try: cargo run --release -- endpoints.example.txt   (Ctrl-C stops the fleet)"
            );
            loop {
                std::thread::park();
            }
        }
    }
}

fn start(addr: &str, tls: bool) -> Result<Server, String> {
    let parsed = addr
        .parse()
        .map_err(|err| format!("bad address {addr}: {err}"))?;
    Server::bind(parsed, tls)
        .map_err(|err| format!("cannot listen on {addr} ({err}); is another fleet running?"))
}
