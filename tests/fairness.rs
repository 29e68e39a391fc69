//! Fairness across connections, measured by `c10k load` against real models: a
//! pool with fewer workers than connections serves only some of them, a reactor
//! serves all of them alike.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Server, BIN};
use loadgen::json_report::Report;
use std::process::Command;

fn load(addr: &str, conns: &str) -> Report {
    let out = Command::new(BIN)
        .args(["load", "--addr", addr, "--conns", conns, "--duration", "1s", "--warmup", "200ms", "-t", "1"])
        .args(["--max-error-rate", "1", "--json", "-"])
        .output()
        .expect("run c10k load");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("no report ({e}); stderr: {}", String::from_utf8_lossy(&out.stderr));
    })
}

#[test]
fn a_pool_of_two_serves_two_of_eight_connections() {
    let server = Server::start(&["--model", "pool", "--workers", "2"]);
    let r = load(&server.addr.to_string(), "8");
    let f = r.fairness.expect("fairness figures");
    assert_eq!(f.conns, 8);
    // Two workers hold two keep-alive connections for the whole run; six wait.
    assert_eq!(f.unanswered_in_window, 6, "{f:?}");
    assert_eq!(r.errors.starved_conns, 6, "{:?}", r.errors);
    // Two of eight served: 2/8 when their shares are equal, towards 1/8 as one takes all
    // (the two workers need not be scheduled alike).
    assert!(f.jain_index > 0.125 && f.jain_index <= 0.25 + 1e-9, "two served of eight: {}", f.jain_index);
    assert_eq!(f.below_half_median, 0, "the median connection got nothing, so nothing is below half of it");
    // A connection never answered waited the whole window.
    assert!(f.longest_gap.max_us >= 0.95e6, "longest gap {} us", f.longest_gap.max_us);
}

#[test]
fn a_reactor_serves_every_connection_alike() {
    let server = Server::start(&["--model", "reactor"]);
    let r = load(&server.addr.to_string(), "50");
    let f = r.fairness.expect("fairness figures");
    assert_eq!((f.conns, f.unanswered_in_window), (50, 0), "{f:?}");
    assert!(f.jain_index > 0.9, "Jain index {}", f.jain_index);
    assert!(f.answers_min > 0 && f.answers_max >= f.answers_median, "{f:?}");
    let total: u64 = r.totals.answers_in_window;
    assert!(f.answers_median * 50 <= total * 2, "median {} of {total} answers over 50", f.answers_median);
}
