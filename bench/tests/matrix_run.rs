//! A whole run against the fake `c10k`: files per cell, resume, the sweep's
//! early stop, and Ctrl-C (in its own test binary: the stop flag is process-wide).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use bench::matrix_run;
use bench::results::{self, CellRecord, Outcome};

#[test]
fn run_writes_a_file_per_cell_and_resume_skips_them() {
    let dir = common::tmp("session");
    let ctx = common::ctx(common::fake(&dir, 0.3), &dir);
    let cells = vec![common::cell("ok"), common::cell("fail")];
    let stats = matrix_run::run(&ctx, &cells, &dir, false).expect("run");
    assert_eq!((stats.done, stats.ok, stats.failed, stats.interrupted), (2, 1, 1, false));
    let recs = results::read_cells(&dir).expect("read back");
    assert_eq!(recs.len(), 2);
    let again = matrix_run::run(&ctx, &cells, &dir, true).expect("resume");
    assert_eq!(again.done, 0, "both cells were already there");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_stops_at_its_knee() {
    let dir = common::tmp("sweep");
    let ctx = common::ctx(common::fake(&dir, 0.2), &dir);
    // With --rate the fake reports 53,754 of 80,000 offered requests/s: saturated,
    // so the first two rates are past the knee and the third one is skipped.
    let mut cells = Vec::new();
    for rate in [1_000.0, 2_000.0, 5_000.0] {
        let mut c = common::cell("ok");
        c.sweep = true;
        c.rate = Some(rate);
        c.load_args.extend(["--rate".to_string(), rate.to_string()]);
        c.id = format!("sweep/ok/c100/r{rate}/rep1");
        cells.push(c);
    }
    let stats = matrix_run::run(&ctx, &cells, &dir, false).expect("run");
    assert_eq!((stats.ok, stats.skipped), (2, 1));
    let second: CellRecord = results::read_json(&results::cell_file(&dir, &cells[2].id)).expect("skipped record");
    assert!(matches!(second.outcome, Outcome::Skipped { .. }));
    let _ = std::fs::remove_dir_all(&dir);
}
