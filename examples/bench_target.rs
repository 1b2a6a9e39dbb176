//! A fast HTTP/1.1 target fleet for `bench/run`: many listeners, canned answers, no logging.
//!
//! ```text
//! cargo run --release --example bench_target -- ADDR...   # e.g. 127.0.0.7:18100
//! ```
//!
//! Every listener answers the same paths (any query string is ignored):
//!
//! ```text
//! /ok             200 at once
//! /slow/MS        200 after MS milliseconds (the connection stays open meanwhile)
//! /status/CODE    that status at once
//! /retry-after/1  429 with Retry-After: 1
//! /hang           reads the request and never answers (a black hole)
//! ```
//!
//! It prints `ready` on stdout once every address is bound. The integration tests' scripted
//! server (`tests/support/server.rs`) records every request in a `Vec` under a lock, which
//! grows without bound over millions of requests (43 MiB after 60,000) and served ~10% fewer
//! requests/s under oha; this one keeps keep-alive connections, one reused buffer per
//! connection and pre-built responses, and keeps nothing per request.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Pending connections per listener: a burst of hundreds of connects must not overflow the
/// accept queue (the default of 128 turns an overflow into a 1 s SYN retransmit).
const BACKLOG: u32 = 4096;

/// Longest request head accepted before the connection is closed.
const MAX_HEAD_BYTES: usize = 16 * 1024;

fn main() {
    let addrs: Vec<SocketAddr> = std::env::args()
        .skip(1)
        .map(|arg| {
            arg.parse()
                .unwrap_or_else(|err| panic!("bad address {arg}: {err}"))
        })
        .collect();
    if addrs.is_empty() {
        eprintln!("usage: bench_target ADDR...");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start the runtime");
    runtime.block_on(async move {
        for addr in addrs {
            let socket = TcpSocket::new_v4().expect("a socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            socket
                .bind(addr)
                .unwrap_or_else(|err| panic!("cannot bind {addr}: {err}"));
            let listener = socket.listen(BACKLOG).expect("listen");
            tokio::spawn(async move {
                loop {
                    if let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(serve(stream));
                    }
                }
            });
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        std::future::pending::<()>().await;
    });
}

/// Answers requests on one connection until the client leaves.
async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(4096);
    let mut answers = Vec::with_capacity(4096);
    loop {
        // Answer every complete request already buffered (pipelining), then write once.
        let mut start = 0;
        while let Some(end) = find_head_end(&buffer[start..]) {
            let head = &buffer[start..start + end];
            start += end + 4;
            match answer(head) {
                Answer::Now(bytes) => answers.extend_from_slice(bytes),
                Answer::After(delay, bytes) => {
                    if !answers.is_empty() && stream.write_all(&answers).await.is_err() {
                        return;
                    }
                    answers.clear();
                    tokio::time::sleep(delay).await;
                    answers.extend_from_slice(bytes);
                }
                Answer::Never => {
                    // Read and discard until the client gives up, so its socket closes cleanly.
                    let mut sink = [0u8; 1024];
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                    return;
                }
            }
        }
        buffer.drain(..start);
        if !answers.is_empty() {
            if stream.write_all(&answers).await.is_err() {
                return;
            }
            answers.clear();
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return;
        }
        buffer.reserve(4096);
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n")
}

enum Answer {
    Now(&'static [u8]),
    After(Duration, &'static [u8]),
    Never,
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";
const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

/// The answer to one request head (request line and headers, without the blank line).
fn answer(head: &[u8]) -> Answer {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let method = words.next().unwrap_or_default();
    let target = words.next().unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let mut parts = path.split(|&b| b == b'/').skip(1);
    let name = parts.next().unwrap_or_default();
    let number = parts
        .next()
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<u64>().ok());
    let ok = if method == b"HEAD" { OK_HEAD } else { OK };
    match (name, number) {
        (b"ok", _) => Answer::Now(ok),
        (b"slow", Some(ms)) => Answer::After(Duration::from_millis(ms), ok),
        (b"status", Some(code)) => Answer::Now(canned_status(code)),
        (b"retry-after", Some(1)) => Answer::Now(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
        ),
        (b"hang", _) => Answer::Never,
        _ => Answer::Now(NOT_FOUND),
    }
}

fn canned_status(code: u64) -> &'static [u8] {
    match code {
        200 => OK,
        404 => NOT_FOUND,
        429 => b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n",
        500 => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        503 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
        _ => NOT_FOUND,
    }
}
