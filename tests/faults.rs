//! Faults outside the per-model table: thread and process creation failing,
//! invalid command lines, SIGINT.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// A 1 TiB stack cannot be mapped, so every thread spawn fails: each connection
/// is closed and counted, and the server keeps accepting.
#[test]
fn thread_spawn_failure_closes_the_connection_and_goes_on() {
    let server = Server::start(&["--model", "thread", "--thread-stack-kib", "1073741824"]);
    for _ in 0..3 {
        let mut c = server.connect();
        c.send(GET);
        assert_eq!(c.read_to_eof(), b"", "the connection is closed unanswered");
    }
    let stopped = server.stop();
    assert!(stopped.success);
    assert_eq!(stopped.stat("spawn_failures"), 3);
    assert_eq!(stopped.stat("accepted"), 3);
}

/// As an unprivileged user limited to one process, every fork fails.
#[test]
fn fork_failure_closes_the_connection_and_goes_on() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: RLIMIT_NPROC is only enforced on a non-root uid, which needs root to switch to");
        return;
    }
    let spec = Spawn { uid_nproc: Some((65534, 1)), ..Spawn::new(&["--model", "fork"]) };
    let server = match Server::spawn(spec) {
        Ok(server) => server,
        Err(e) if e.contains("Permission denied") || e.contains("spawn") => {
            eprintln!("skipped: uid 65534 cannot run {BIN}: {e}");
            return;
        }
        Err(e) => panic!("fork server did not start: {e}"),
    };
    for _ in 0..3 {
        let mut c = server.connect();
        c.send(GET);
        assert_eq!(c.read_to_eof(), b"");
    }
    let stopped = server.stop();
    assert_eq!(stopped.stat("spawn_failures"), 3);
}

#[test]
fn pool_that_cannot_start_its_workers_exits_with_a_reason() {
    let err = Server::spawn(Spawn::new(&["--model", "pool", "--workers", "2", "--thread-stack-kib", "1073741824"]))
        .err()
        .expect("no ready line");
    assert!(err.contains("spawn pool worker"), "stderr: {err}");
}

#[test]
fn a_knob_the_model_does_not_take_is_refused() {
    let out = Command::new(BIN).args(["serve", "--model", "thread", "--workers", "4"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--workers does not apply to --model thread"), "{stderr}");
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN).args(["serve", "--model", "reactor", "--addr", &addr]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
}

#[test]
fn sigint_stops_like_sigterm() {
    for model in ["iterative", "fork", "reactor", "tokio"] {
        let server = Server::start(&["--model", model]);
        let _idle = server.connect();
        std::thread::sleep(Duration::from_millis(50));
        let children = server.children();
        signal(server.pid, libc::SIGINT);
        let stopped = server.stop(); // SIGTERM again is harmless; the exit already started
        assert!(stopped.took < Duration::from_secs(2), "{model} took {:?}", stopped.took);
        std::thread::sleep(Duration::from_millis(100));
        assert!(children.iter().all(|&pid| !alive(pid)), "{model} left children behind");
    }
}

#[test]
fn the_ready_line_says_what_runs() {
    let server = Server::start(&["--model", "pool", "--workers", "3", "--proto", "echo"]);
    let line = &server.ready_line;
    assert_eq!(field(line, "model"), Some("pool"));
    assert_eq!(field(line, "proto"), Some("echo"));
    assert_eq!(field(line, "workers"), Some("3"));
    assert!(field(line, "nofile").and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0));
    assert_eq!(field(line, "pid").and_then(|p| p.parse::<i32>().ok()), Some(server.pid));
}
