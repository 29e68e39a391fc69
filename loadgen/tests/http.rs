//! The wrk-style request options and the framing of real servers' answers,
//! against an in-test server (a thread per connection on 127.0.0.1:0) that
//! records every request it gets and answers from a script: an interim
//! `100 Continue`, chunked bodies with extensions and trailers, a redirect, a
//! `503`, answers to `HEAD` without their body, and bodies that end with the
//! connection. Every run is bounded by `--requests` and the test by a deadline;
//! each runs over both I/O back ends (`mio::*`, `uring::*`).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `support::load_on`; an engine the kernel cannot run fails the test with the reason.
fn load(engine: &str, args: &[&str]) -> loadgen::Outcome {
    support::load_on(engine, args).unwrap_or_else(|why| panic!("{engine}: {why}"))
}

/// A request as the server read it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Script {
    /// Answer k of a connection: the 5-answer cycle below.
    Cycle,
    /// No length, no chunking: the body ends when the server closes.
    UntilClose,
}

/// The k-th answer of a connection in the cycle: 200 after a 100 Continue,
/// 200 chunked, 302, 503, 200 chunked with a trailer. `HEAD` gets heads only.
fn cycle_answer(k: u64, head: bool) -> &'static [u8] {
    if head {
        return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    }
    match k % 5 {
        0 => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        1 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n",
        2 => b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n",
        3 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
        _ => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-Checksum: 1\r\n\r\n",
    }
}

fn start(script: Script) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let log = log.clone();
            std::thread::spawn(move || serve(stream, script, &log));
        }
    });
    (addr, seen)
}

/// Read requests (head, then `Content-Length` body bytes) and answer each.
fn serve(mut stream: TcpStream, script: Script, log: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut input = Vec::new();
    let mut buf = [0u8; 4096];
    let mut k = 0u64;
    loop {
        while let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&input[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let mut first = lines.next().unwrap_or_default().split(' ');
            let (method, path) =
                (first.next().unwrap_or_default().to_string(), first.next().unwrap_or_default().to_string());
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect();
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            if input.len() < end + 4 + length {
                break;
            }
            let body = input[end + 4..end + 4 + length].to_vec();
            input.drain(..end + 4 + length);
            let head_request = method == "HEAD";
            log.lock().expect("log").push(Seen { method, path, headers, body });
            match script {
                Script::Cycle => {
                    if stream.write_all(cycle_answer(k, head_request)).is_err() {
                        return;
                    }
                }
                Script::UntilClose => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nno length here");
                    return;
                }
            }
            k += 1;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
        }
    }
}

fn method_path_headers_and_body_reach_the_server_and_every_framing_is_followed(engine: &str) {
    let (addr, seen) = start(Script::Cycle);
    let url = format!("http://{addr}/submit?x=1");
    let out = load(
        engine,
        &[
            &url,
            "-m",
            "POST",
            "-H",
            "X-C10k-Test: yes",
            "-H",
            "Accept: */*",
            "--body",
            "name=value",
            "--conns",
            "2",
            "--requests",
            "100",
            "-t",
            "1",
            "--pipeline",
            "3",
        ],
    );
    let r = &out.report;
    assert_eq!(r.totals.requests, 100, "{:?}", r.errors);
    let classes = r.totals.status_classes.as_ref().expect("HTTP counts status classes");
    // 50 answers per connection: the cycle of 5 ten times.
    assert_eq!((classes.success, classes.redirect, classes.server_error, classes.client_error), (60, 20, 20, 0));
    assert_eq!(r.errors.bad_status, 20, "5xx are errors, 3xx are not: {:?}", r.errors);
    assert_eq!(r.errors.total, 20, "nothing else failed: {:?}", r.errors);
    assert_eq!(r.latency.first_byte.count, 100);
    assert!(r.latency.first_byte.max_us <= r.latency.uncorrected.max_us);
    assert_eq!(r.config.method.as_deref(), Some("POST"));
    assert_eq!(r.config.path.as_deref(), Some("/submit?x=1"));
    assert_eq!(r.config.body_bytes, Some(10));
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 100);
    for s in seen.iter() {
        assert_eq!(
            (s.method.as_str(), s.path.as_str(), s.body.as_slice()),
            ("POST", "/submit?x=1", &b"name=value"[..])
        );
        let header = |name: &str| s.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(header("X-C10k-Test"), Some("yes"));
        assert_eq!(header("Host"), Some(addr.as_str()));
        assert_eq!(header("Content-Length"), Some("10"));
    }
    let summary = loadgen::summary::render(r);
    assert!(summary.contains("Non-2xx answers: 3xx 20, 4xx 0, 5xx 20"), "{summary}");
    assert!(summary.contains("First byte") && summary.contains("POST /submit?x=1"), "{summary}");
}

fn head_answers_carry_no_body(engine: &str) {
    let (addr, _) = start(Script::Cycle);
    let out = load(
        engine,
        &["--addr", &addr, "-m", "HEAD", "--conns", "2", "--requests", "40", "-t", "1", "--pipeline", "4"],
    );
    let r = &out.report;
    assert_eq!((r.totals.requests, r.errors.total), (40, 0), "{:?}", r.errors);
}

fn a_body_that_ends_with_the_connection_is_one_answer(engine: &str) {
    let (addr, seen) = start(Script::UntilClose);
    let out = load(engine, &[&format!("http://{addr}/"), "--conns", "2", "--requests", "20", "-t", "1"]);
    let r = &out.report;
    assert_eq!((r.totals.requests, r.errors.total), (20, 0), "{:?}", r.errors);
    assert_eq!(seen.lock().expect("log").len(), 20);
    // Every answer closed its connection; the last one of each connection needs no reconnect.
    assert_eq!((r.connections.server_closes, r.connections.reconnects), (20, 18));
}

over_engines!(
    method_path_headers_and_body_reach_the_server_and_every_framing_is_followed,
    head_answers_carry_no_body,
    a_body_that_ends_with_the_connection_is_one_answer,
);
