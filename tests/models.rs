//! The same scenarios against every server model, run as the real binary.
//!
//! Each row of the table at the bottom names a model variant, its command-line
//! arguments, how many connections it serves at once (`UNBOUNDED`, or its
//! worker count), and whether one process's descriptor table holds every
//! accepted connection (so that a low RLIMIT_NOFILE makes accept fail).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;

const UNBOUNDED: usize = usize::MAX;

/// Connections a scenario runs at once: at most 20, at most what the model serves.
fn width(concurrency: usize) -> usize {
    concurrency.min(20)
}

fn start(args: &[&str], proto: &str) -> Server {
    let mut all = args.to_vec();
    all.extend(["--proto", proto]);
    Server::start(&all)
}

/// Deterministic bytes for message `i` of connection `c`.
fn message(c: usize, i: usize) -> Vec<u8> {
    let size = [1, 64, 1000, 20_000, 7][i % 5];
    (0..size).map(|j| (c * 131 + i * 31 + j * 7) as u8).collect()
}

/// Run `f(c)` for every connection index, `width` at a time on threads.
fn in_parallel(count: usize, width: usize, f: impl Fn(usize) + Sync) {
    for chunk in (0..count).collect::<Vec<_>>().chunks(width.max(1)) {
        std::thread::scope(|s| {
            for &c in chunk {
                let f = &f;
                s.spawn(move || f(c));
            }
        });
    }
}

fn echo_exchanges(args: &[&str], concurrency: usize) {
    let server = start(args, "echo");
    let addr = server.addr;
    let conns = 20;
    in_parallel(conns, width(concurrency), |c| {
        let mut client = Client::connect(addr);
        for i in 0..40 {
            let msg = message(c, i);
            client.send(&msg);
            assert_eq!(client.read_exact(msg.len()), msg, "connection {c} message {i}");
        }
    });
    let stopped = server.stop();
    assert_eq!(stopped.stat("accepted"), conns as u64);
}

fn http_pipelined(args: &[&str], concurrency: usize) {
    let server = start(args, "http");
    let conns = 20;
    let batch = b"GET / HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n";
    let addr = server.addr;
    in_parallel(conns, width(concurrency), |_| {
        let mut client = Client::connect(addr);
        for _ in 0..3 {
            client.send(batch);
            let (status, answer) = client.read_answer(false);
            assert_eq!(status, 200);
            assert_hello(&answer);
            let (status, head) = client.read_answer(true);
            assert_eq!(status, 200);
            assert!(mask_date(&String::from_utf8_lossy(&head)).ends_with("Content-Length: 13\r\n\r\n"));
            assert_eq!(client.read_answer(false).0, 404);
            assert_hello(&client.read_answer(false).1);
        }
        for _ in 0..50 {
            client.send(GET);
            assert_hello(&client.read_answer(false).1);
        }
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let (status, answer) = client.read_answer(false);
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&answer).contains("\r\nConnection: close\r\n"));
        assert_eq!(client.read_to_eof(), b"", "nothing after the closing answer");
    });
    let stopped = server.stop();
    assert_eq!(stopped.stat("accepted"), conns as u64);
    assert_eq!(stopped.stat("answered"), conns as u64 * (3 * 4 + 50 + 1), "every answer counted once");
    assert_eq!(stopped.stat("protocol_errors"), 0);
}

fn http_semantics(args: &[&str], _concurrency: usize) {
    let server = start(args, "http");
    let mut c = server.connect();
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    let answer = c.read_to_eof();
    assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n") && answer.ends_with(b"Hello, World!"));
    drop(c);

    let mut c = server.connect();
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let (_, answer) = c.read_answer(false);
    assert!(String::from_utf8_lossy(&answer).contains("\r\nConnection: keep-alive\r\n"));
    c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
    let (status, answer) = c.read_answer(false);
    assert_eq!(status, 405);
    assert!(String::from_utf8_lossy(&answer).contains("\r\nAllow: GET, HEAD\r\n"));
    c.send(GET);
    assert_hello(&c.read_answer(false).1);
    drop(c);
    assert_eq!(server.stop().stat("protocol_errors"), 0);
}

fn malformed_requests(args: &[&str], _concurrency: usize) {
    let server = start(args, "http");
    let mut c = server.connect();
    c.send(b"HELLO THERE\r\n\r\n");
    let answer = c.read_to_eof();
    assert!(answer.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{:?}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("\r\nConnection: close\r\n"));
    drop(c);

    let mut c = server.connect();
    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\nX-Filler: ".to_vec();
    big.resize(9 * 1024, b'x');
    c.send(&big);
    let answer = c.read_to_eof();
    assert!(answer.starts_with(b"HTTP/1.1 431 "), "{:?}", String::from_utf8_lossy(&answer));
    drop(c);

    let mut c = server.connect();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(c.read_to_eof().starts_with(b"HTTP/1.1 501 "));
    drop(c);

    let mut c = server.connect();
    c.send(GET);
    assert_hello(&c.read_answer(false).1);
    drop(c);
    assert_eq!(server.stop().stat("protocol_errors"), 3);
}

fn reset_mid_request(args: &[&str], _concurrency: usize) {
    let server = start(args, "http");
    for _ in 0..3 {
        let c = server.connect();
        (&c.stream).write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO)).unwrap();
        drop(c); // RST
    }
    let mut c = server.connect();
    c.send(GET);
    assert_hello(&c.read_answer(false).1);
    drop(c);
    let stopped = server.stop();
    assert!(stopped.success);
}

fn half_close(args: &[&str], _concurrency: usize) {
    for proto in ["http", "echo"] {
        let server = start(args, proto);
        let mut c = server.connect();
        let request = if proto == "http" { GET.repeat(2) } else { b"ping".to_vec() };
        c.send(&request);
        c.stream.shutdown(Shutdown::Write).unwrap();
        let answer = c.read_to_eof();
        if proto == "http" {
            assert_eq!(answer.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count(), 2);
        } else {
            assert_eq!(answer, b"ping");
        }
    }
}

fn idle_client(args: &[&str], concurrency: usize) {
    let server = start(args, "http");
    let idle = server.connect();
    std::thread::sleep(Duration::from_millis(50));
    let mut busy = server.connect();
    busy.send(GET);
    if concurrency == 1 {
        // The model is not concurrent (claim C8): nobody else is served while
        // the idle client is connected, and the waiting client is served once
        // it leaves.
        assert!(!busy.answers_within(Duration::from_millis(400)), "served while another client was connected");
        drop(idle);
    }
    assert_hello(&busy.read_answer(false).1);
}

fn thousand_connections(args: &[&str], concurrency: usize) {
    raise_nofile();
    let server = start(args, "http");
    let mut held: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(server.addr).expect("connect")).collect();
    if concurrency >= 1000 {
        for s in &mut held {
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s.write_all(GET).unwrap();
        }
        for s in held.drain(..) {
            let mut client = Client::from_stream(s);
            assert_hello(&client.read_answer(false).1);
        }
    }
    drop(held);
    let mut c = server.connect();
    c.send(GET);
    assert_hello(&c.read_answer(false).1);
    drop(c);
    assert_eq!(server.stop().stat("accepted"), 1001);
}

fn slow_reader_bounded(args: &[&str], _concurrency: usize) {
    let server = start(args, "echo");
    let c = server.connect();
    c.stream.set_nonblocking(true).unwrap();
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let limit = 64 << 20;
    let mut written = 0usize;
    let mut stalls = 0;
    let deadline = Instant::now() + PATIENCE;
    while written < limit && Instant::now() < deadline {
        match (&c.stream).write(&chunk[written % chunk.len()..]) {
            Ok(n) => {
                written += n;
                stalls = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                if stalls > 20 {
                    break; // blocked for 200 ms: the server stopped reading
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(written < 48 << 20, "the server read {written} bytes without anyone reading its answers");
    c.stream.set_nonblocking(false).unwrap();
    c.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut c = c;
    let back = c.read_exact(written);
    for (i, b) in back.iter().enumerate() {
        assert_eq!(*b, ((i % 65536) % 251) as u8, "byte {i}");
    }
}

fn stop_promptly(args: &[&str], concurrency: usize) {
    let server = start(args, "http");
    let _idle = server.connect();
    let mut busy = server.connect();
    if concurrency > 1 {
        busy.send(GET);
        assert_hello(&busy.read_answer(false).1);
    }
    let children = server.children();
    let stopped = server.stop();
    assert!(stopped.took < Duration::from_secs(2), "took {:?} to stop", stopped.took);
    assert!(stopped.success);
    std::thread::sleep(Duration::from_millis(100));
    for pid in children {
        assert!(!alive(pid), "child {pid} outlived the server");
    }
}

fn descriptor_exhaustion(args: &[&str], shares_fd_table: bool) {
    raise_nofile();
    let spec = Spawn { nofile: Some(48), ..Spawn::new(&[args, &["--proto", "http"]].concat()) };
    let server = Server::spawn(spec).expect("server starts with 48 descriptors");
    let held: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(server.addr).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let cpu_before = server.cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let cpu = server.cpu_time() - cpu_before;
    assert!(cpu < Duration::from_millis(500), "{cpu:?} of CPU in 1 s while out of descriptors: a busy loop");
    drop(held);
    let freed = Instant::now();
    let mut c = server.connect();
    c.send(GET);
    assert_hello(&c.read_answer(false).1);
    let again = freed.elapsed();
    eprintln!("served again {again:?} after the descriptors were freed");
    // The accept loop backs off 50 ms at a time: once descriptors are free it serves
    // again within a second (issue 14).
    assert!(again < Duration::from_secs(1), "served again only {again:?} after the descriptors were freed");
    drop(c);
    let stopped = server.stop();
    if shares_fd_table {
        assert!(stopped.stat("accept_backoffs") > 0, "expected accept to run out of descriptors");
    }
}

/// The test process holds many client sockets: its soft descriptor limit up to the hard one.
fn raise_nofile() {
    servers::net::raise_nofile().expect("raise RLIMIT_NOFILE");
}

macro_rules! scenarios {
    ($($name:ident: [$($arg:literal),*], concurrency $conc:expr, shares_fd_table $fds:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::UNBOUNDED;
            const ARGS: &[&str] = &[$($arg),*];
            const CONCURRENCY: usize = $conc;
            #[test] fn echo_exchanges() { super::echo_exchanges(ARGS, CONCURRENCY) }
            #[test] fn http_pipelined() { super::http_pipelined(ARGS, CONCURRENCY) }
            #[test] fn http_semantics() { super::http_semantics(ARGS, CONCURRENCY) }
            #[test] fn malformed_requests() { super::malformed_requests(ARGS, CONCURRENCY) }
            #[test] fn reset_mid_request() { super::reset_mid_request(ARGS, CONCURRENCY) }
            #[test] fn half_close() { super::half_close(ARGS, CONCURRENCY) }
            #[test] fn idle_client() { super::idle_client(ARGS, CONCURRENCY) }
            #[test] fn thousand_connections() { super::thousand_connections(ARGS, CONCURRENCY) }
            #[test] fn slow_reader_bounded() { super::slow_reader_bounded(ARGS, CONCURRENCY) }
            #[test] fn stop_promptly() { super::stop_promptly(ARGS, CONCURRENCY) }
            #[test] fn descriptor_exhaustion() { super::descriptor_exhaustion(ARGS, $fds) }
        }
    )*
        /// Every row's arguments, for the coverage check below.
        const ROWS: &[&[&str]] = &[$(&[$($arg),*]),*];
    };
}

/// A model added to the registry without a row here would go untested.
#[test]
fn every_registered_model_has_a_scenario_row() {
    for m in servers::model::Model::ALL {
        let covered = ROWS.iter().any(|row| row.windows(2).any(|w| w == ["--model", m.name()]));
        assert!(covered, "model {} has no row in scenarios!", m.name());
    }
}

scenarios! {
    iterative: ["--model", "iterative"], concurrency 1, shares_fd_table false;
    fork: ["--model", "fork"], concurrency UNBOUNDED, shares_fd_table false;
    thread: ["--model", "thread"], concurrency UNBOUNDED, shares_fd_table true;
    thread_small_stack: ["--model", "thread", "--thread-stack-kib", "64"], concurrency UNBOUNDED, shares_fd_table true;
    pool: ["--model", "pool", "--workers", "24"], concurrency 24, shares_fd_table true;
    prefork: ["--model", "prefork", "--procs", "4"], concurrency 4, shares_fd_table false;
    prefork_threads: ["--model", "prefork", "--procs", "3", "--threads-per-proc", "4"], concurrency 12, shares_fd_table false;
    reactor: ["--model", "reactor"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_level: ["--model", "reactor", "--trigger", "level"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_poll: ["--model", "reactor", "--backend", "poll"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_select: ["--model", "reactor", "--backend", "select"], concurrency 900, shares_fd_table true;
    reactor_task: ["--model", "reactor-task"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_task_small_stack: ["--model", "reactor-task", "--thread-stack-kib", "64"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_conn_thread: ["--model", "reactor-conn-thread"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_pool: ["--model", "reactor-pool", "--workers", "4"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_pool_rayon: ["--model", "reactor-pool", "--workers", "4", "--pool", "rayon"], concurrency UNBOUNDED, shares_fd_table true;
    multi_reactor: ["--model", "multi-reactor", "--threads", "2"], concurrency UNBOUNDED, shares_fd_table true;
    multi_reactor_pool: ["--model", "multi-reactor-pool", "--threads", "2", "--workers", "4"], concurrency UNBOUNDED, shares_fd_table true;
    multi_reactor_pool_rayon: ["--model", "multi-reactor-pool", "--threads", "2", "--workers", "4", "--pool", "rayon"], concurrency UNBOUNDED, shares_fd_table true;
    reuseport: ["--model", "reuseport", "--procs", "2"], concurrency UNBOUNDED, shares_fd_table true;
    reuseport_shared: ["--model", "reuseport", "--procs", "2", "--shared-listener"], concurrency UNBOUNDED, shares_fd_table true;
    tokio: ["--model", "tokio", "--threads", "2"], concurrency UNBOUNDED, shares_fd_table true;
    tokio_gq1: ["--model", "tokio", "--threads", "2", "--global-queue-interval", "1"], concurrency UNBOUNDED, shares_fd_table true;
    tokio_procs: ["--model", "tokio", "--threads", "1", "--procs", "2"], concurrency UNBOUNDED, shares_fd_table true;
    uring: ["--model", "uring", "--threads", "2"], concurrency UNBOUNDED, shares_fd_table true;
    // The same scenarios with a long idle timeout on: whatever keeps the clocks
    // (socket timeouts, a timing wheel, tokio's timer, io_uring's) changes no answer.
    thread_idle_timeout: ["--model", "thread", "--idle-timeout", "30s"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_idle_timeout: ["--model", "reactor", "--idle-timeout", "30s"], concurrency UNBOUNDED, shares_fd_table true;
    reactor_conn_thread_idle_timeout: ["--model", "reactor-conn-thread", "--idle-timeout", "30s"], concurrency UNBOUNDED, shares_fd_table true;
    tokio_idle_timeout: ["--model", "tokio", "--threads", "2", "--idle-timeout", "30s"], concurrency UNBOUNDED, shares_fd_table true;
    uring_idle_timeout: ["--model", "uring", "--threads", "2", "--idle-timeout", "30s"], concurrency UNBOUNDED, shares_fd_table true;
}
