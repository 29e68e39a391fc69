//! A whole run: every planned cell in order, with progress, the sweep's early
//! stop at the knee, Ctrl-C handling, and one file per finished cell.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Result;
use crate::matrix::Cell;
use crate::results::{self, CellRecord, Outcome, SCHEMA};
use crate::runner::{self, RunCtx};
use crate::signals;

/// What a run did.
#[derive(Debug, Default)]
pub struct RunStats {
    pub done: usize,
    pub ok: usize,
    pub failed: usize,
    pub skipped: usize,
    pub interrupted: bool,
    pub elapsed: Duration,
}

/// True when a sweep cell shows the server saturated: it fell clearly short of
/// the offered rate, errors passed 1%, or the cell failed. The p99 bound alone
/// does not stop a sweep: on a virtual machine an idle CPU's wake-up can spike
/// the p99 of a low rate, and a server that keeps up with higher rates has not
/// reached its knee (the report's knee is the highest rate under the bound).
pub fn saturated(rec: &CellRecord) -> bool {
    let Some(load) = rec.valid() else { return true };
    let short = match (load.target_rate, load.achieved_rate) {
        (Some(t), Some(a)) => a < 0.9 * t,
        _ => false,
    };
    short || load.error_rate > 0.01
}

/// A server's sweep stops after this many consecutive saturated rates (one alone
/// may be noise on a shared machine).
pub const SWEEP_MISSES: u32 = 2;

fn note_sweep(misses: &mut HashMap<(String, u32), u32>, key: (String, u32), rec: &CellRecord) {
    let m = misses.entry(key).or_insert(0);
    if matches!(rec.outcome, Outcome::Skipped { .. }) {
        *m = SWEEP_MISSES;
    } else if saturated(rec) {
        *m += 1;
    } else {
        *m = 0;
    }
}

/// One line for the log after a cell.
pub fn line(rec: &CellRecord) -> String {
    match (&rec.outcome, rec.load.as_ref()) {
        (Outcome::Ok, Some(l)) => format!(
            "ok      {:<52} {:>9.0} req/s  p99 {:>9.0} us  starved {:>5}  errors {:>6}{}",
            rec.cell.id,
            l.requests_per_sec,
            l.p99_us,
            l.starved,
            l.errors,
            if l.client_bound { "  client-bound" } else { "" }
        ),
        (o, _) => format!("{:<7} {:<52} {}", if o.is_ok() { "ok" } else { "FAIL" }, rec.cell.id, o.label()),
    }
}

/// Run `cells`, writing `cells/<id>.json` under `out` after each one.
/// With `resume`, cells whose file already exists are not run again.
pub fn run(ctx: &RunCtx, cells: &[Cell], out: &Path, resume: bool) -> Result<RunStats> {
    let start = Instant::now();
    let total_ms: u64 = cells.iter().map(|c| (c.estimate_s * 1000.0) as u64).sum();
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {percent:>3}% eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let log = |msg: String| {
        if bar.is_hidden() {
            eprintln!("{msg}");
        } else {
            bar.println(msg);
        }
    };
    let mut stats = RunStats::default();
    // Consecutive sweep points past the knee, per (server, repetition).
    let mut misses: HashMap<(String, u32), u32> = HashMap::new();
    for (i, cell) in cells.iter().enumerate() {
        if signals::interrupted() {
            stats.interrupted = true;
            break;
        }
        let path = results::cell_file(out, &cell.id);
        bar.set_message(format!("[{}/{}] {}", i + 1, cells.len(), cell.id));
        let key = (cell.server.key.clone(), cell.rep);
        if resume {
            let found = results::existing_cell_file(out, &cell.id);
            if let Some(rec) = found.and_then(|p| results::read_json::<CellRecord>(&p).ok()) {
                if cell.sweep {
                    note_sweep(&mut misses, key, &rec);
                }
                bar.inc((cell.estimate_s * 1000.0) as u64);
                continue;
            }
        }
        let rec = if cell.sweep && misses.get(&key).is_some_and(|m| *m >= SWEEP_MISSES) {
            stats.skipped += 1;
            skipped(cell, ctx)
        } else {
            let Some(rec) = runner::run_cell(ctx, cell) else {
                stats.interrupted = true;
                break;
            };
            if rec.outcome.is_ok() {
                stats.ok += 1;
            } else {
                stats.failed += 1;
            }
            log(line(&rec));
            rec
        };
        if cell.sweep {
            note_sweep(&mut misses, key, &rec);
        }
        results::write_json(&path, &rec, "cell record")?;
        stats.done += 1;
        bar.inc((cell.estimate_s * 1000.0) as u64);
    }
    bar.finish_and_clear();
    stats.elapsed = start.elapsed();
    Ok(stats)
}

fn skipped(cell: &Cell, ctx: &RunCtx) -> CellRecord {
    CellRecord {
        schema: SCHEMA,
        cell: cell.clone(),
        outcome: Outcome::Skipped {
            reason: "two lower rates of this sweep in a row already missed the p99 bound".into(),
        },
        server_cpus: ctx.server_cpus.clone(),
        client_cpus: ctx.client_cpus.clone(),
        started_unix_ms: crate::unix_ms(),
        wall_s: 0.0,
        server: Default::default(),
        load: None,
        load_exit: None,
        load_stderr_tail: String::new(),
        load_raw: None,
        samples: Vec::new(),
        derived: Default::default(),
    }
}
