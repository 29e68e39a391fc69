//! 10,000 connections to one in-test server, all established and answered,
//! over each I/O back end (`mio::*`, `uring::*`).
//!
//! The server runs in a child process (this test binary re-executed with
//! `LOADGEN_TEST_SERVER` set): client and server sockets together would exceed
//! one process's descriptor limit.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use proto::Proto;
use support::{Mode, TestServer};

const CONNS: u64 = 10_000;

/// Not a test on its own: the server half, when re-executed by the test below.
#[test]
fn server_process() {
    if std::env::var_os("LOADGEN_TEST_SERVER").is_none() {
        return;
    }
    loadgen::env::raise_nofile();
    let server = TestServer::start(Mode::Serve(Proto::Http));
    // libtest may print "test server_process ... " before this on the same line.
    println!("PORT {}", server.addr.port());
    // Serve until the parent closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// One engine at a time: two runs of 10,000 connections at once would pass
/// the descriptor limit.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ten_thousand_connections_all_answered(engine: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_, hard) = loadgen::env::raise_nofile();
    assert!(hard >= CONNS + 100, "RLIMIT_NOFILE hard limit {hard} is too low for {CONNS} connections");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_process", "--nocapture", "--test-threads", "1"])
        .env("LOADGEN_TEST_SERVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .find_map(|l| l.split_once("PORT ").map(|(_, p)| p.trim().to_string()))
        .expect("the server process says its port");
    let addr = format!("127.0.0.1:{port}");
    let requests = (2 * CONNS).to_string();
    let conns = CONNS.to_string();
    // A connect window well under the server's backlog (4096) keeps its accept
    // queue from overflowing while its one thread is busy (a dropped SYN costs
    // a 1 s retransmission).
    let out = support::load_on(
        engine,
        &[
            "--addr",
            &addr,
            "--conns",
            &conns,
            "--requests",
            &requests,
            "--threads",
            "2",
            "--timeout",
            "10s",
            "--connect-timeout",
            "20s",
            "--connect-window",
            "256",
        ],
    )
    .unwrap_or_else(|why| panic!("{engine}: {why}"));
    drop(child.stdin.take());
    let _ = child.wait();
    let r = &out.report;
    assert_eq!(r.connections.established, CONNS, "{:?}", r.errors);
    assert_eq!(r.totals.requests, 2 * CONNS, "{:?}", r.errors);
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    assert_eq!(r.errors.starved_conns, 0);
    let took = r.connections.all_established_s.expect("all established");
    assert!(took < 10.0, "establishing took {took} s");
    eprintln!(
        "10k over {engine}: all established in {took:.3} s, connect p99 {:.1} ms",
        r.latency.connect.p99_us / 1e3
    );
}

over_engines!(ten_thousand_connections_all_answered);
