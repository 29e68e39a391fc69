//! `--header-timeout` and `--idle-timeout` (document 001, 应用层探活) against
//! every model and back end, as the real binary.
//!
//! - Slowloris: [`SLOWLORIS`] connections each send the start of a request head
//!   and then a byte every [`DRIP`], never finishing it. Each must be closed
//!   between the header timeout and the header timeout plus 1 s after its first
//!   byte, while a normal client is answered meanwhile (after them, for a model
//!   that serves one connection at a time). A model serving k connections at
//!   once gets k - 1 of them.
//! - Idle: clients that are answered once and then fall silent are closed
//!   between the idle timeout and the idle timeout plus one tick of the timing
//!   wheel (a tenth of the timeout) after their answer; clients that send a
//!   ping every [`PING_EVERY`] (under the timeout) are never closed, and once
//!   they stop they are closed in the same window.
//!
//! Both allow [`SLACK`] for scheduling on a loaded two-core machine, on top of
//! what the server promises, and check the `header_timeouts` and
//! `idle_timeouts` counters of the stats line.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

const UNBOUNDED: usize = usize::MAX;
/// Both timeouts in these tests, and the wheel's tick for them (a tenth).
const TIMEOUT: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);
/// Scheduling allowance (client and server threads on two busy cores).
const SLACK: Duration = Duration::from_millis(300);
/// Slowloris connections for a model that serves every connection at once.
const SLOWLORIS: usize = 200;
/// A slowloris connection sends a byte this often: each byte is activity, so
/// an idle timer alone would never close it.
const DRIP: Duration = Duration::from_millis(250);
const PING_EVERY: Duration = Duration::from_millis(300);
const PINGS: usize = 7;
/// Silent clients for a model that serves every connection at once.
const SILENT: usize = 20;

fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

/// One slowloris connection.
struct Loris {
    stream: TcpStream,
    first_byte: Instant,
    closed: Option<Instant>,
}

/// What a slowloris connection sends: a head that never ends.
const LORIS_START: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ";

/// The server closed it: end of file, or a reset. `Err` if it answered.
fn closed_by_server(stream: &mut TcpStream) -> Result<bool, String> {
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => Ok(true),
        Ok(n) => Err(format!("answered a never-ending head: {:?}", String::from_utf8_lossy(&buf[..n]))),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => Ok(true),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// A normal client on its own thread: a `GET` every 100 ms until `stop`;
/// returns how many were answered.
fn normal_client(addr: SocketAddr, stop: &AtomicBool) -> usize {
    let mut client = Client::connect(addr);
    let mut answered = 0;
    while !stop.load(Ordering::Acquire) {
        client.send(GET);
        assert_hello(&client.read_answer(false).1);
        answered += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    answered
}

fn slowloris_is_closed(args: &[&str], concurrency: usize) {
    raise_nofile();
    let server = Server::start(&[args, &["--proto", "http", "--header-timeout", "1s"]].concat());
    let n = match concurrency {
        UNBOUNDED => SLOWLORIS,
        1 => 1,
        k => (k - 1).min(SLOWLORIS),
    };
    let mut loris: Vec<Loris> = (0..n)
        .map(|_| {
            let mut stream = TcpStream::connect_timeout(&server.addr, PATIENCE).expect("connect");
            stream.set_nodelay(true).unwrap();
            stream.write_all(LORIS_START).unwrap();
            stream.set_nonblocking(true).unwrap();
            Loris { stream, first_byte: Instant::now(), closed: None }
        })
        .collect();
    let stop = AtomicBool::new(false);
    // Every connection is closed by this time, or the test fails.
    let limit = Instant::now() + TIMEOUT + Duration::from_secs(1) + SLACK;
    let answered = std::thread::scope(|s| {
        // A model serving one connection at a time serves the normal client
        // after the slowloris one, within the same bound.
        let (addr, stop) = (server.addr, &stop);
        let normal = s.spawn(move || {
            if concurrency == 1 {
                let mut client = Client::connect(addr);
                client.send(GET);
                assert_hello(&client.read_answer(false).1);
                assert!(Instant::now() < limit, "the normal client waited past the slowloris' bound");
                1
            } else {
                normal_client(addr, stop)
            }
        });
        let mut next_drip = Instant::now() + DRIP;
        while loris.iter().any(|l| l.closed.is_none()) && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(20));
            let drip = Instant::now() >= next_drip;
            if drip {
                next_drip += DRIP;
            }
            for l in loris.iter_mut().filter(|l| l.closed.is_none()) {
                if closed_by_server(&mut l.stream).unwrap_or_else(|e| panic!("{e}")) {
                    l.closed = Some(Instant::now());
                } else if drip {
                    match l.stream.write(b"a") {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(_) => l.closed = Some(Instant::now()), // reset: closed
                    }
                }
            }
        }
        stop.store(true, Ordering::Release);
        normal.join().expect("normal client")
    });
    let open = loris.iter().filter(|l| l.closed.is_none()).count();
    assert_eq!(open, 0, "{open} of {n} slowloris connections still open {:?} after their head began", TIMEOUT + SLACK);
    for (i, l) in loris.iter().enumerate() {
        let after = l.closed.unwrap() - l.first_byte;
        assert!(after + Duration::from_millis(50) >= TIMEOUT, "slowloris {i} closed after only {after:?}");
        assert!(after <= TIMEOUT + Duration::from_secs(1) + SLACK, "slowloris {i} closed after {after:?}");
    }
    assert!(answered >= 1, "the normal client was not served meanwhile");
    drop(loris);
    let stopped = server.stop();
    assert_eq!(stopped.stat("header_timeouts"), n as u64);
    assert_eq!(stopped.stat("idle_timeouts"), 0);
}

/// Answered once, then silent: closed `TIMEOUT` to `TIMEOUT + TICK` after its answer.
fn silent_client(addr: SocketAddr) {
    let mut client = Client::connect(addr);
    client.send(GET);
    assert_hello(&client.read_answer(false).1);
    let answered = Instant::now();
    assert_eq!(client.read_to_eof(), b"", "nothing but the close");
    let after = answered.elapsed();
    assert!(after + Duration::from_millis(50) >= TIMEOUT, "closed after only {after:?} of silence");
    assert!(after <= TIMEOUT + TICK + SLACK, "closed after {after:?} of silence");
}

/// Pings under the timeout, never closed meanwhile; then silent, and closed.
fn pinger(addr: SocketAddr) {
    let mut client = Client::connect(addr);
    for _ in 0..PINGS {
        client.send(GET);
        assert_hello(&client.read_answer(false).1);
        assert!(!client.answers_within(PING_EVERY), "closed while pinging");
    }
    // `answers_within` waited a ping interval since the last answer.
    let silent_since = Instant::now() - PING_EVERY;
    assert_eq!(client.read_to_eof(), b"");
    let after = silent_since.elapsed();
    assert!(after <= TIMEOUT + TICK + SLACK, "closed {after:?} after its last ping");
}

fn idle_is_closed_pings_are_not(args: &[&str], concurrency: usize) {
    let server = Server::start(&[args, &["--proto", "http", "--idle-timeout", "1s"]].concat());
    let (silent, pingers) = match concurrency {
        UNBOUNDED => (SILENT, 2),
        1 => (1, 1),
        k => ((k - 2).clamp(1, SILENT), 1.min(k - 1)),
    };
    if concurrency == 1 {
        // One connection at a time: one after the other.
        silent_client(server.addr);
        pinger(server.addr);
    } else {
        let addr = server.addr;
        std::thread::scope(|s| {
            let all: Vec<_> = (0..silent)
                .map(|_| s.spawn(move || silent_client(addr)))
                .chain((0..pingers).map(|_| s.spawn(move || pinger(addr))))
                .collect();
            for handle in all {
                handle.join().expect("client");
            }
        });
    }
    let stopped = server.stop();
    assert_eq!(stopped.stat("idle_timeouts"), (silent + pingers) as u64);
    assert_eq!(stopped.stat("header_timeouts"), 0);
    assert_eq!(stopped.stat("answered"), (silent + pingers * PINGS) as u64);
}

macro_rules! models {
    ($($name:ident: [$($arg:literal),*], concurrency $conc:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::UNBOUNDED;
            const ARGS: &[&str] = &[$($arg),*];
            #[test] fn slowloris_is_closed() { super::slowloris_is_closed(ARGS, $conc) }
            #[test] fn idle_is_closed_pings_are_not() { super::idle_is_closed_pings_are_not(ARGS, $conc) }
        }
    )*
        const ROWS: &[&[&str]] = &[$(&[$($arg),*]),*];
    };
}

#[test]
fn every_registered_model_has_a_row() {
    for m in servers::model::Model::ALL {
        assert!(ROWS.iter().any(|row| row[1] == m.name()), "model {} has no row in models!", m.name());
    }
}

/// The bench's heartbeat workload in small: connections pinging every 500 ms
/// are all kept, the `--silent-conns` are closed within the idle timeout plus a
/// tick of their one request, and the load generator counts them as
/// `closed_by_server`, not errors (over two processes, so that the counts and
/// the histogram cross the processes' wire too).
#[test]
fn heartbeat_through_the_load_generator() {
    let server = Server::start(&["--model", "reactor", "--idle-timeout", "1s"]);
    let addr = server.addr.to_string();
    let args = ["load", "--addr", &addr, "--conns", "20", "--silent-conns", "6", "--rate", "40", "--duration", "3s"];
    let out = std::process::Command::new(BIN)
        .args(args)
        .args(["--procs", "2", "--threads", "1", "--json", "-"])
        .output()
        .expect("run c10k load");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let closed = &report["connections"]["closed_by_server"];
    assert_eq!(closed["silent"], 6, "{closed}");
    assert_eq!(closed["live"], 0, "a pinging connection was closed: {closed}");
    assert_eq!(report["errors"]["total"], 0, "{}", report["errors"]);
    let max_us = closed["after_last_request"]["max_us"].as_f64().unwrap();
    let min_us = closed["after_last_request"]["min_us"].as_f64().unwrap();
    assert!(min_us >= 950_000.0, "closed {min_us} us after its request");
    assert!(max_us <= (TIMEOUT + TICK + SLACK).as_micros() as f64, "closed {max_us} us after its request");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("Closed by the server: 6 (6 of the 6 silent connections, 0 live)"));
    let stopped = server.stop();
    assert_eq!(stopped.stat("idle_timeouts"), 6);
}

/// A client that floods requests and never reads its answers makes the server
/// stop reading from it: from then on nothing moves, the input it keeps sending
/// waits in the kernel, and the idle timeout closes it (a blocking write times
/// out, or the wheel does not count input held back from such a client).
#[test]
fn a_flooder_that_never_reads_is_idle() {
    for model in [&["--model", "reactor"][..], &["--model", "uring", "--threads", "1"], &["--model", "thread"]] {
        let server = Server::start(&[model, &["--idle-timeout", "1s"]].concat());
        let mut stream = TcpStream::connect_timeout(&server.addr, PATIENCE).expect("connect");
        stream.set_nonblocking(true).unwrap();
        let flood = GET.repeat(4096);
        let started = Instant::now();
        let mut closed = None;
        while closed.is_none() && started.elapsed() < TIMEOUT * 5 {
            match stream.write(&flood) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => closed = Some(started.elapsed()),
            }
        }
        let closed = closed.unwrap_or_else(|| panic!("{model:?}: a non-reading flooder stayed open"));
        assert!(closed >= TIMEOUT, "{model:?}: closed after {closed:?}");
        assert_eq!(server.stop().stat("idle_timeouts"), 1, "{model:?}");
    }
}

#[test]
fn refusals() {
    for (args, why) in [
        (&["--model", "reactor", "--proto", "echo", "--header-timeout", "1s"][..], "echo has no request head"),
        (&["--model", "thread", "--idle-timeout", "0s"][..], "--idle-timeout must be longer than zero"),
        (&["--model", "pool", "--pool", "rayon"][..], "--pool does not apply to --model pool"),
    ] {
        let err = Server::spawn(Spawn::new(args)).err().unwrap_or_else(|| panic!("{args:?} started"));
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

// The model's name is each row's second argument.
models! {
    iterative: ["--model", "iterative"], concurrency 1;
    fork: ["--model", "fork"], concurrency UNBOUNDED;
    thread: ["--model", "thread"], concurrency UNBOUNDED;
    prefork: ["--model", "prefork", "--procs", "4"], concurrency 4;
    prefork_threads: ["--model", "prefork", "--procs", "3", "--threads-per-proc", "4"], concurrency 12;
    pool: ["--model", "pool", "--workers", "24"], concurrency 24;
    reactor: ["--model", "reactor"], concurrency UNBOUNDED;
    reactor_level: ["--model", "reactor", "--trigger", "level"], concurrency UNBOUNDED;
    reactor_poll: ["--model", "reactor", "--backend", "poll"], concurrency UNBOUNDED;
    reactor_select: ["--model", "reactor", "--backend", "select"], concurrency UNBOUNDED;
    reactor_task: ["--model", "reactor-task"], concurrency UNBOUNDED;
    reactor_conn_thread: ["--model", "reactor-conn-thread"], concurrency UNBOUNDED;
    reactor_pool: ["--model", "reactor-pool", "--workers", "4"], concurrency UNBOUNDED;
    reactor_pool_rayon: ["--model", "reactor-pool", "--workers", "4", "--pool", "rayon"], concurrency UNBOUNDED;
    multi_reactor: ["--model", "multi-reactor", "--threads", "2"], concurrency UNBOUNDED;
    multi_reactor_pool: ["--model", "multi-reactor-pool", "--threads", "2", "--workers", "4"], concurrency UNBOUNDED;
    multi_reactor_pool_rayon: ["--model", "multi-reactor-pool", "--threads", "2", "--workers", "4", "--pool", "rayon"], concurrency UNBOUNDED;
    reuseport: ["--model", "reuseport", "--procs", "2"], concurrency UNBOUNDED;
    reuseport_shared: ["--model", "reuseport", "--procs", "2", "--shared-listener"], concurrency UNBOUNDED;
    tokio: ["--model", "tokio", "--threads", "2"], concurrency UNBOUNDED;
    uring: ["--model", "uring", "--threads", "2"], concurrency UNBOUNDED;
}
