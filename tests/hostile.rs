//! Hostile clients against every model, over loopback, as the real binary.
//!
//! - Clients that pipeline far more requests than the output bound and never
//!   read an answer: the server must stop reading from them, so each adds at
//!   most [`proto::CONN_MEMORY_BOUND`] (plus [`MARGIN`]) to the server's memory
//!   beyond what an idle connection costs, and a well-behaved client connecting
//!   meanwhile is answered.
//! - A client that sends one request a byte at a time over [`DRIP`] is answered.
//!
//! Memory is the server's process tree's anonymous memory (`Pss_Anon` of
//! `/proc/PID/smaps_rollup`, summed over the server and its descendants, so a
//! page shared by forked processes counts once). The clients come in two
//! rounds; each round's connect and sit idle, then flood. What a non-reading
//! client costs is the growth from idle to flooded in the second round: not
//! what the model spends on any connection (a thread, a process), nor what the
//! server set up once in the first round (io_uring's buffer pool, allocator
//! arenas). Everything together may pass the idle cost and the bound by at
//! most [`FIXED_ALLOWANCE`]. The kernel's socket buffers are not in it: they
//! are what a non-reading client is allowed to fill.
//!
//! `C10K_HOSTILE_CONNS` and `C10K_HOSTILE_MIB` override the number of hostile
//! clients (for the models that serve every connection) and what each tries to
//! send, to reproduce larger runs by hand.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

const UNBOUNDED: usize = usize::MAX;
/// Hostile clients for a model that serves every connection at once; a model
/// that serves only k at a time gets k - 1 of them (and 1 when k is 1), so
/// that a normal client can still be served beside them.
const HOSTILE: usize = 50;
/// What each hostile client tries to send: 4 MiB of pipelined `GET /`, 64
/// times the output bound. Over loopback the kernel's socket buffers take all
/// of it here (`tcp_rmem` lets a receive buffer grow to 32 MiB); a flood ends
/// when every byte is written or none could be for [`STALL`].
const HOSTILE_MIB: usize = 4;
/// Senders are done when no byte could be written on any of them for this long.
const STALL: Duration = Duration::from_millis(400);
/// Quiet samples in a row that count as settled memory (see [`settled_kib`]).
const SETTLED: u32 = 3;
/// Longest a flood may take before the test fails.
const FLOOD_LIMIT: Duration = Duration::from_secs(30);
/// Measured growth may pass the bound by this factor (allocator rounding,
/// pages touched once by the first connections).
const MARGIN: f64 = 1.25;
/// What a `fork` child pays beyond the bound for the same buffers: its
/// allocations land on the parent's heap pages and copy them, and the buffers
/// it frees on the way serve no other connection (measured: 207-211 KiB per
/// connection, against 90-150 for the other models).
const FORK_SLACK: usize = 64 << 10;
/// Memory a server may set up once under the first hostile round, whatever
/// their number: io_uring's buffer pools (4 MiB per thread at most), allocator
/// arenas of threads serving their first connection.
const FIXED_ALLOWANCE: usize = 12 << 20;
/// How long the byte-by-byte client takes to send its request.
const DRIP: Duration = Duration::from_millis(1500);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Anonymous memory (KiB) of `root` and all its descendants, each page shared
/// between them counted once (proportional set size).
fn tree_anon_kib(root: i32) -> u64 {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<i32>().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let (mut total, mut todo) = (0, vec![root]);
    while let Some(pid) = todo.pop() {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let field = |name: &str| {
            rollup.lines().find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        };
        total += field("Pss_Anon:").or_else(|| field("Pss:")).unwrap_or(0);
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    total
}

/// The server's memory once it has settled: samples 100 ms apart until
/// [`SETTLED`] in a row agree within 1% of the one before (at most 30), the
/// largest. One quiet interval is not enough: under a parallel `make test` a
/// server starved of CPU for 100 ms still has flooded bytes to read, and its
/// memory would land in the next round's figure.
fn settled_kib(pid: i32) -> u64 {
    let mut last = tree_anon_kib(pid);
    let mut most = last;
    let mut quiet = 0;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        let now = tree_anon_kib(pid);
        most = most.max(now);
        quiet = if now.abs_diff(last) * 100 <= last.max(1) { quiet + 1 } else { 0 };
        if quiet >= SETTLED {
            break;
        }
        last = now;
    }
    most
}

/// `n` connections, connected and idle.
fn connect_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect()
}

/// Write `payload` on every connection as fast as the server lets it, never
/// reading; return once none could write for [`STALL`] (or all wrote
/// everything), with the bytes each wrote.
fn flood(conns: &[TcpStream], payload: &[u8]) -> Vec<usize> {
    let mut sent = vec![0usize; conns.len()];
    let started = Instant::now();
    let mut progress = Instant::now();
    loop {
        let mut wrote = false;
        let mut unfinished = 0;
        for (mut stream, sent) in conns.iter().zip(&mut sent) {
            if *sent == payload.len() {
                continue;
            }
            unfinished += 1;
            let chunk = &payload[*sent..payload.len().min(*sent + (256 << 10))];
            match stream.write(chunk) {
                Ok(k) if k > 0 => {
                    *sent += k;
                    wrote = true;
                }
                Ok(_) => panic!("write returned 0"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => panic!("hostile write after {sent} bytes: {e}"),
            }
        }
        if wrote {
            progress = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
        if unfinished == 0 || progress.elapsed() >= STALL {
            return sent;
        }
        assert!(started.elapsed() < FLOOD_LIMIT, "hostile clients still sending after {FLOOD_LIMIT:?}");
    }
}

/// One round of hostile clients: memory with them connected and idle, and
/// once they have flooded the server.
struct Round {
    clients: usize,
    idle_kib: u64,
    flooded_kib: u64,
}

fn hostile_senders_are_bounded(args: &[&str], concurrency: usize) {
    let model = args[1];
    let slack = if model == "fork" { FORK_SLACK as f64 / 1024.0 } else { 0.0 };
    let hostile = match concurrency {
        UNBOUNDED => env_or("C10K_HOSTILE_CONNS", HOSTILE),
        1 => 1,
        k => (k - 1).min(HOSTILE),
    };
    let payload = GET.repeat((env_or("C10K_HOSTILE_MIB", HOSTILE_MIB) << 20) / GET.len());
    let server = Server::start(&[args, &["--proto", "http"]].concat());
    // Warm up: the paths a normal request takes, then the baseline.
    let mut warm = server.connect();
    warm.send(GET);
    assert_hello(&warm.read_answer(false).1);
    drop(warm);
    let before = settled_kib(server.pid);

    // Two rounds where there are enough clients: the first pays for what a
    // server sets up once (io_uring's buffer pool, allocator arenas), the
    // second is measured. Each round's clients connect and sit idle first, so
    // that what flooding adds is apart from what the model spends on any
    // connection (a thread, a process).
    let sizes = if hostile >= 4 { vec![hostile / 2, hostile - hostile / 2] } else { vec![hostile] };
    let started = Instant::now();
    let mut held = Vec::new();
    let mut sent = Vec::new();
    let mut rounds = Vec::new();
    for &clients in &sizes {
        let conns = connect_idle(server.addr, clients);
        let idle_kib = settled_kib(server.pid);
        sent.extend(flood(&conns, &payload));
        let flooded_kib = settled_kib(server.pid);
        held.extend(conns);
        rounds.push(Round { clients, idle_kib, flooded_kib });
    }
    let flood_took = started.elapsed();

    // A normal client meanwhile (after the only connection is released, for
    // a model that serves one at a time).
    let mut normal = server.connect();
    normal.send(GET);
    if concurrency == 1 {
        assert!(!normal.answers_within(Duration::from_millis(200)), "served beside the one connection");
        drop(held);
        assert_hello(&normal.read_answer(false).1);
    } else {
        assert_hello(&normal.read_answer(false).1);
        drop(held);
    }
    drop(normal);
    let stopped = server.stop();
    assert!(stopped.success, "{model} did not exit cleanly");

    let per_conn = |from: u64, to: u64, n: usize| to.saturating_sub(from) as f64 / n as f64;
    let last = rounds.last().unwrap();
    let buffering = per_conn(last.idle_kib, last.flooded_kib, last.clients);
    let idle = per_conn(before, rounds[0].idle_kib, rounds[0].clients);
    let overall = per_conn(before, last.flooded_kib, hostile);
    let bound = proto::CONN_MEMORY_BOUND as f64 / 1024.0;
    let mean_sent = sent.iter().sum::<usize>() as f64 / sent.len() as f64 / 1024.0;
    let marks: Vec<(u64, u64)> = rounds.iter().map(|r| (r.idle_kib, r.flooded_kib)).collect();
    eprintln!(
        "hostile {model}: {hostile} clients {sizes:?}, {mean_sent:.0} KiB sent each (min {} KiB), {flood_took:.1?}; \
         anon KiB {before} then (idle, flooded) {marks:?}: flooding added {buffering:.1} KiB per connection \
         (bound {bound:.0}); idle {idle:.1}, everything {overall:.1} per connection",
        sent.iter().min().unwrap_or(&0) >> 10,
    );
    assert!(
        buffering <= bound * MARGIN + slack,
        "{model}: a non-reading client added {buffering:.1} KiB, over the bound of {bound:.0} KiB (x{MARGIN}, \
         +{slack} KiB): anon KiB {before} then (idle, flooded) {marks:?} for rounds of {sizes:?} clients"
    );
    let fixed_kib = FIXED_ALLOWANCE >> 10;
    assert!(
        overall <= idle + bound * MARGIN + slack + fixed_kib as f64 / hostile as f64,
        "{model}: memory grew by {overall:.1} KiB per non-reading client over all rounds, more than an idle \
         connection ({idle:.1}), the bound (x{MARGIN}) and {fixed_kib} KiB set up once: {marks:?}"
    );
    // The clients sent far more than the bound: the server stopped reading them.
    assert!(mean_sent > 4.0 * bound, "the hostile clients sent only {mean_sent:.0} KiB each");
}

fn byte_by_byte_request_is_answered(args: &[&str], _concurrency: usize) {
    let server = Server::start(&[args, &["--proto", "http"]].concat());
    let mut client = server.connect();
    let gap = DRIP / GET.len() as u32;
    for byte in GET.chunks(1) {
        client.send(byte);
        std::thread::sleep(gap);
    }
    assert_hello(&client.read_answer(false).1);
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    assert_eq!(client.read_answer(false).0, 200);
    assert_eq!(client.read_to_eof(), b"", "nothing after the closing answer");
    let stopped = server.stop();
    assert_eq!(stopped.stat("answered"), 2, "both requests counted once");
}

macro_rules! models {
    ($($name:ident: [$($arg:literal),*], concurrency $conc:expr;)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::UNBOUNDED;
            const ARGS: &[&str] = &[$($arg),*];
            #[test] fn hostile_senders_are_bounded() { super::hostile_senders_are_bounded(ARGS, $conc) }
            #[test] fn byte_by_byte_request_is_answered() { super::byte_by_byte_request_is_answered(ARGS, $conc) }
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

// The model's name is each row's second argument.
models! {
    iterative: ["--model", "iterative"], concurrency 1;
    fork: ["--model", "fork"], concurrency UNBOUNDED;
    thread: ["--model", "thread"], concurrency UNBOUNDED;
    prefork: ["--model", "prefork", "--procs", "4", "--threads-per-proc", "4"], concurrency 16;
    pool: ["--model", "pool", "--workers", "16"], concurrency 16;
    reactor: ["--model", "reactor"], concurrency UNBOUNDED;
    reactor_task: ["--model", "reactor-task"], concurrency UNBOUNDED;
    reactor_conn_thread: ["--model", "reactor-conn-thread"], concurrency UNBOUNDED;
    reactor_pool: ["--model", "reactor-pool", "--workers", "2"], concurrency UNBOUNDED;
    multi_reactor: ["--model", "multi-reactor", "--threads", "2"], concurrency UNBOUNDED;
    reuseport: ["--model", "reuseport", "--procs", "2"], concurrency UNBOUNDED;
    multi_reactor_pool: ["--model", "multi-reactor-pool", "--threads", "2", "--workers", "2"], concurrency UNBOUNDED;
    tokio: ["--model", "tokio", "--threads", "2"], concurrency UNBOUNDED;
    uring: ["--model", "uring", "--threads", "2"], concurrency UNBOUNDED;
}
