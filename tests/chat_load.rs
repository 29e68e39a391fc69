//! `c10k load --proto chat` against real `c10k serve --proto chat` models:
//! exact message and delivery counts, the join notices, the JSON report, and
//! the failures it must report (a room that cannot hold every member, flags
//! that mean nothing for chat).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::*;
use serde_json::Value;

fn load(args: &[&str]) -> Output {
    Command::new(BIN).arg("load").args(args).output().expect("run c10k load")
}

fn run_json(server: &Server, extra: &[&str]) -> (Output, Value) {
    let addr = server.addr.to_string();
    let mut args = vec!["--proto", "chat", "--addr", &addr, "--json", "-", "--threads", "2"];
    args.extend_from_slice(extra);
    let out = load(&args);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {:?} stderr {}", out.stdout, String::from_utf8_lossy(&out.stderr)));
    (out, report)
}

/// Every member gets every message: 60 members, 6 senders, 300 messages/s for
/// 1 s after a 200 ms warmup: exactly 300 messages in the window, 18,000
/// deliveries, none missing; 1,770 join notices before the window.
fn exact_counts(model: &[&str]) {
    let mut args = model.to_vec();
    args.extend(["--proto", "chat"]);
    let server = Server::start(&args);
    let (out, r) = run_json(
        &server,
        &["--conns", "60", "--senders", "6", "--rate", "300", "--duration", "1s", "--warmup", "200ms"],
    );
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(r["kind"], "chat");
    assert_eq!(r["setup"]["failure"], Value::Null);
    assert_eq!(r["setup"]["notices"], 60 * 59 / 2);
    assert_eq!(r["setup"]["notices_expected"], 60 * 59 / 2);
    assert_eq!(r["setup"]["join"]["count"], 60);
    assert_eq!(r["messages"]["sent"], 300, "the uniform schedule puts 300 sends in one second");
    let d = &r["deliveries"];
    assert_eq!((d["expected"].as_u64(), d["received"].as_u64()), (Some(300 * 60), Some(300 * 60)), "{d}");
    assert_eq!((d["missing"].as_u64(), d["duplicates"].as_u64()), (Some(0), Some(0)));
    assert_eq!((d["member_min"].as_u64(), d["member_max"].as_u64()), (Some(300), Some(300)));
    assert_eq!(r["latency"]["corrected"]["count"], 300 * 60);
    assert!(r["latency"]["corrected"]["p99_us"].as_f64().unwrap() > 0.0);
    assert_eq!(r["errors"]["rate"], 0.0);
    assert_eq!(r["passed"], true);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("18000 of 18000 deliveries received, 0 missing"), "{summary}");
    let stopped = server.stop();
    assert_eq!(stopped.stat("slow_members_dropped"), 0);
    assert_eq!(stopped.stat("accepted"), 60);
}

#[test]
fn exact_counts_reactor() {
    exact_counts(&["--model", "reactor"]);
}

#[test]
fn exact_counts_multi_reactor() {
    exact_counts(&["--model", "multi-reactor", "--threads", "2"]);
}

#[test]
fn exact_counts_thread() {
    exact_counts(&["--model", "thread"]);
}

#[test]
fn exact_counts_tokio() {
    exact_counts(&["--model", "tokio", "--threads", "2"]);
}

/// A pool of 4 workers holds 4 members: the fifth never gets its join
/// acknowledged, set-up stops after --timeout without progress, exit 1.
#[test]
fn a_room_too_small_fails_setup() {
    let server = Server::start(&["--model", "pool", "--workers", "4", "--proto", "chat"]);
    let (out, r) = run_json(&server, &["--conns", "5", "--rate", "10", "--duration", "1s", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let why = r["setup"]["failure"].as_str().expect("a set-up failure");
    assert!(why.contains("4 of 5 members joined"), "{why}");
    assert_eq!(r["passed"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("chat set-up failed"));
}

/// Flags that mean nothing for chat are refused, not ignored; --rate is needed.
#[test]
fn flags_that_do_not_apply_are_refused() {
    for (extra, says) in [
        (&["--rate", "10", "--pipeline", "4"][..], "--pipeline does not apply to --proto chat"),
        (&["--rate", "10", "--requests", "100"][..], "--requests does not apply to --proto chat"),
        (&["--rate", "10", "--procs", "2"][..], "--procs does not apply to --proto chat"),
        (&["--rate", "10", "--engine", "uring"][..], "--engine uring does not apply to --proto chat"),
        (&[][..], "--proto chat needs --rate"),
        (&["--rate", "10", "--senders", "0"][..], "--senders must be between 1 and --conns"),
        (&["--rate", "10", "--msg-size", "10"][..], "--msg-size must be"),
    ] {
        let mut args = vec!["--proto", "chat", "--addr", "127.0.0.1:1", "--conns", "4"];
        args.extend_from_slice(extra);
        let out = load(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let out = load(&["--addr", "127.0.0.1:1", "--senders", "3"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--senders applies to --proto chat"));
}
