//! `c10k bench` and `c10k report`: run every server model through the same
//! workloads as separate processes, measure the server's whole process tree,
//! store the results, and write plots and `REPORT.md` with a verdict for every
//! claim of the documents.
//!
//! # Layout
//!
//! Measurement, analysis and report are separate, criterion-style; the report
//! is drawn only from the saved results folder, never from live state.
//!
//! - [`matrix`], [`workloads`]: profiles, server configurations and workloads as
//!   data, and the planned list of cells in an interleaved order.
//! - [`child`]: spawning a pinned child in its own process group, reading its
//!   output, stopping it (SIGTERM, then SIGKILL of the group).
//! - [`runner`]: one cell, from `c10k serve` to the cell record.
//! - [`monitor`]: the `/proc` sampler of the server's process tree.
//! - [`matrix_run`]: a whole run of the planned cells: progress, Ctrl-C, the sweep's knee.
//! - [`signals`]: the Ctrl-C flag.
//! - [`digest`]: pure functions from raw observations to derived figures.
//! - [`env`]: `env.json`, the machine as measured.
//! - [`probe`]: the sendfile probe (C13), the one experiment that is not a cell.
//! - [`results`]: the versioned results schema, reading and writing it.
//! - [`aggregate`]: groups of repetitions, medians, `summary.csv`.
//! - [`claims`]: the claims registry (id, source, statement, check, evidence) and
//!   the documents' figures shown beside ours.
//! - [`keys`]: server keys, once.
//! - [`verdicts`]: one pure function per claim over the results read back.
//! - [`plots`]: which plots a results folder supports, drawn with [`plots::draw`]
//!   (generic SVG charts on plotters).
//! - [`report_tables`]: the report's Markdown tables (main, knee, one per workload).
//! - [`report`]: writes `REPORT.md`; [`beyond`]: its section on the beyond
//!   profile's folder (chat room, heartbeat).
//! - [`c1m`], [`netns`]: the C1M experiment (up to 1,000,000 connections) and T5 in
//!   network namespaces; its own folder, joined to the report with `--c1m`.
//! - [`cli`]: the two subcommands.

pub mod aggregate;
pub mod beyond;
pub mod c1m;
pub mod c1m_report;
pub mod c1m_run;
pub mod cgroup;
pub mod child;
pub mod claims;
pub mod cli;
pub mod compare;
pub mod digest;
pub mod env;
pub mod error;
pub mod fairness;
pub mod keys;
pub mod matrix;
pub mod matrix_run;
pub mod monitor;
pub mod netns;
pub mod plots;
pub mod probe;
pub mod reference;
pub mod report;
pub mod report_tables;
pub mod results;
pub mod runner;
pub mod show;
pub mod signals;
pub mod stats;
pub mod verdicts;
pub mod workloads;

pub use error::{BenchError, Result};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// This machine's host name (`unknown` if it cannot be read).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `YYYY-MM-DD` (UTC) of a time in milliseconds since the epoch.
pub fn date(unix_ms: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (unix_ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::date(0), "1970-01-01");
        assert_eq!(super::date(1_700_000_000_000), "2023-11-14");
        assert_eq!(super::date(951_782_400_000), "2000-02-29");
    }
}
