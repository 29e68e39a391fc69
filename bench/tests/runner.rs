//! The runner against a fake `c10k`: every way a cell can end, and that no
//! server process survives any of them.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use bench::results::Outcome;
use bench::runner::run_cell;

#[test]
fn a_good_cell_records_stats_load_and_samples() {
    let dir = common::tmp("good");
    let ctx = common::ctx(common::fake(&dir, 0.6), &dir);
    let rec = run_cell(&ctx, &common::cell("forky")).expect("not interrupted");
    assert_eq!(rec.outcome, Outcome::Ok, "{rec:?}");
    let stats = rec.server.stats.as_ref().expect("stats line parsed");
    assert_eq!((stats.counters.accepted, stats.counters.listener_wakeups), (5, 7));
    assert!(stats.other.contains_key("future_counter"));
    assert_eq!(stats.other.len(), 1, "known counters are not repeated in `other`: {:?}", stats.other);
    let load = rec.load.as_ref().expect("load summary");
    assert!(load.requests > 0 && load.p99_us > 0.0);
    assert!(rec.load_raw.is_some());
    assert!(!rec.samples.is_empty());
    assert!(rec.derived.peak_procs >= 3, "the forked children are in the tree: {:?}", rec.derived);
    assert!(!rec.server.killed);
    let pid = rec.server.pid.expect("pid");
    assert!(!common::alive(pid));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_model_that_cannot_run_says_why() {
    let dir = common::tmp("fail");
    let ctx = common::ctx(common::fake(&dir, 0.1), &dir);
    let rec = run_cell(&ctx, &common::cell("fail")).expect("not interrupted");
    match &rec.outcome {
        Outcome::CannotRun { reason } => assert!(reason.contains("no such back end"), "{reason}"),
        other => panic!("expected cannot-run, got {other:?}"),
    }
    assert!(rec.load.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_ready_line_fails_in_bounded_time() {
    let dir = common::tmp("hang");
    let ctx = common::ctx(common::fake(&dir, 0.1), &dir);
    let start = std::time::Instant::now();
    let rec = run_cell(&ctx, &common::cell("hang")).expect("not interrupted");
    assert!(matches!(&rec.outcome, Outcome::Failed { stage, .. } if stage == "ready"), "{:?}", rec.outcome);
    assert!(start.elapsed().as_secs() < 9);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_with_its_group() {
    let dir = common::tmp("stubborn");
    let ctx = common::ctx(common::fake(&dir, 0.3), &dir);
    let rec = run_cell(&ctx, &common::cell("stubborn")).expect("not interrupted");
    assert_eq!(rec.outcome, Outcome::Ok);
    assert!(rec.server.killed, "{:?}", rec.server);
    assert!(rec.server.stats.is_none());
    let pid = rec.server.pid.expect("pid");
    assert!(!common::alive(pid));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_dying_under_load_is_a_failed_cell() {
    let dir = common::tmp("die");
    let ctx = common::ctx(common::fake(&dir, 0.8), &dir);
    let rec = run_cell(&ctx, &common::cell("die")).expect("not interrupted");
    assert!(matches!(&rec.outcome, Outcome::Failed { stage, .. } if stage == "server"), "{:?}", rec.outcome);
    assert!(rec.load.is_some(), "the load report is kept");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_time_limit_ends_a_cell() {
    let dir = common::tmp("limit");
    let ctx = common::ctx(common::fake(&dir, 20.0), &dir);
    let mut cell = common::cell("ok");
    cell.time_limit_s = 1.0;
    let start = std::time::Instant::now();
    let rec = run_cell(&ctx, &cell).expect("not interrupted");
    assert!(matches!(&rec.outcome, Outcome::Failed { stage, .. } if stage == "limit"), "{:?}", rec.outcome);
    assert!(start.elapsed().as_secs() < 8);
    let _ = std::fs::remove_dir_all(&dir);
}
