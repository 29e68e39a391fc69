//! `c10k merge A.hlog B.hlog ...`: the interval logs of several `c10k load`
//! runs (the shards of one load on several hosts, or separate runs) added into
//! one run, with the same summary and JSON report as `c10k load`.
//!
//! Exact: every histogram of every interval is added bucket by bucket (never a
//! percentile averaged), and the counters, errors and per-second timeline come
//! from each log's end line, merged as `--procs` merges its children. Intervals
//! of different logs are the same interval when their absolute start times (the
//! log's `BaseTime` plus the line's timestamp, to the millisecond the format
//! keeps) are equal, which is the case for shards started with one `--start-at`.
//!
//! Refused, with the reason, rather than merged into a wrong total: a log that
//! is truncated or was not written by `c10k load`, logs of different units or
//! precision, two logs of the same process, the same shard twice, or shards of
//! different splits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ShardOf;
use crate::error::LoadError;
use crate::hlog::Log;
use crate::json_report::Report;
use crate::outcome::Times;
use crate::recorder::Recorder;

/// Add HdrHistogram interval logs of `c10k load --hlog` exactly.
#[derive(clap::Args, Clone, Debug)]
#[command(about = "Merge the --hlog interval logs of several c10k load runs (shards) exactly")]
pub struct MergeArgs {
    /// Interval logs written by `c10k load --hlog`.
    #[arg(value_name = "LOG", required = true)]
    pub logs: Vec<PathBuf>,
    /// Write the merged report as JSON to FILE (`-`: stdout, the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The merged run.
#[derive(Debug)]
pub struct Merged {
    pub report: Report,
    pub recorder: Recorder,
    /// Distinct interval start instants over all logs, and intervals per log.
    pub instants: usize,
    pub most_intervals: usize,
    /// Shards of the load that no log covered.
    pub missing_shards: Vec<String>,
}

/// Read, check and merge `logs` (name, text).
pub fn merge(logs: &[(String, String)]) -> Result<Merged, String> {
    let read: Vec<(String, Log)> = logs
        .iter()
        .map(|(name, text)| crate::hlog::read(name, text).map(|l| (name.clone(), l)))
        .collect::<Result<_, _>>()?;
    let (first_name, first) = read.first().ok_or("no log to merge")?;
    let (first_name, unit, digits) = (first_name.clone(), first.header.unit.clone(), first.header.significant_digits);
    let (mut config, env, started) =
        (first.trailer.config.clone(), first.trailer.env.clone(), first.trailer.started_unix_ms);
    let mut runs = BTreeMap::new();
    let mut shards: BTreeMap<u32, &str> = BTreeMap::new();
    let mut split = None;
    for (name, log) in &read {
        let h = &log.header;
        if (h.unit.as_str(), h.significant_digits) != (unit.as_str(), digits) {
            return Err(format!(
                "{name} records {} with {} significant digits, {first_name} {unit} with {digits}: merging would mix \
                 units or precisions",
                h.unit, h.significant_digits
            ));
        }
        if let Some(other) = runs.insert(h.run.clone(), name.as_str()) {
            return Err(format!(
                "{other} and {name} come from the same process (run {}): merging would count its samples twice",
                h.run
            ));
        }
        match (log.trailer.config.shard, split) {
            (Some(s), None) if shards.is_empty() && *name == first_name => split = Some(s.count),
            (Some(s), Some(n)) if s.count == n => {}
            (None, None) => {}
            _ => {
                return Err(format!(
                    "{name} and {first_name} are not shards of one split (--shard I/N with the same N)"
                ))
            }
        }
        if let Some(s) = log.trailer.config.shard {
            if let Some(other) = shards.insert(s.index, name) {
                return Err(format!("{other} and {name} are both shard {s}: overlapping shards of one load"));
            }
        }
    }
    let missing_shards = split
        .map(|n| {
            (0..n).filter(|i| !shards.contains_key(i)).map(|i| ShardOf { index: i, count: n }.to_string()).collect()
        })
        .unwrap_or_default();
    // One recorder per log: its counters from the end line, its phases from the intervals.
    let mut merged = Recorder::merge_base();
    let mut all_established: Option<Option<f64>> = None;
    let mut instants = BTreeSet::new();
    let mut most_intervals = 0;
    let mut target = 0;
    for (i, (name, log)) in read.into_iter().enumerate() {
        let bad = |e: String| format!("{name}: {e}");
        let mut rec = log.trailer.recorder.into_recorder().map_err(|e| bad(e.to_string()))?;
        let mut starts = BTreeSet::new();
        for iv in &log.intervals {
            rec.phase_mut(iv.phase).add(&iv.histogram).map_err(|e| bad(format!("{e:?}")))?;
            starts.insert(iv.start_unix_ms);
            instants.insert(iv.start_unix_ms);
        }
        most_intervals = most_intervals.max(starts.len());
        // Monotonic instants are per host: take each log's time to establish on its own.
        let own = crate::outcome::build(
            &log.trailer.config,
            log.trailer.env.clone(),
            &rec,
            Times { epoch: 0, started_unix_ms: log.trailer.started_unix_ms, unix_offset_ns: 0 },
        );
        let est = own.connections.all_established_s;
        target += own.connections.target;
        all_established = Some(match all_established {
            None => est,
            Some(prev) => prev.zip(est).map(|(a, b)| a.max(b)),
        });
        if split.is_none() && i > 0 {
            // Separate runs: their loads add up.
            let c = &log.trailer.config;
            config.settings.conns += c.settings.conns;
            config.settings.idle_conns += c.settings.idle_conns;
            config.settings.requests = config.settings.requests.zip(c.settings.requests).map(|(a, b)| a + b);
            config.settings.rate = config.settings.rate.zip(c.settings.rate).map(|(a, b)| a + b);
        }
        config.settings.procs = config.settings.procs.max(log.trailer.config.settings.procs);
        merged.merge(&rec).map_err(|e| bad(format!("{e:?}")))?;
    }
    config.shard = None;
    let times = Times { epoch: 0, started_unix_ms: started, unix_offset_ns: 0 };
    let mut report = crate::outcome::build(&config, env, &merged, times);
    report.connections.all_established_s = all_established.flatten();
    report.connections.target = target;
    report.tool = format!("c10k merge {}", env!("CARGO_PKG_VERSION"));
    Ok(Merged { report, recorder: merged, instants: instants.len(), most_intervals, missing_shards })
}

/// Run `c10k merge`.
pub fn run(args: MergeArgs) -> Result<ExitCode, LoadError> {
    let mut logs = Vec::new();
    for path in &args.logs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        logs.push((path.display().to_string(), text));
    }
    let merged = merge(&logs).map_err(LoadError::Invalid)?;
    let to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&merged.report)? + "\n";
        if to_stdout {
            print!("{text}");
        } else {
            std::fs::write(path, text).map_err(|source| LoadError::Output { path: path.clone(), source })?;
        }
    }
    if !args.quiet {
        let mut text = format!(
            "Merged {} interval logs: {} distinct interval starts ({} in the longest log{})\n",
            logs.len(),
            merged.instants,
            merged.most_intervals,
            if merged.instants == merged.most_intervals {
                ", all aligned"
            } else {
                "; not aligned: no common --start-at"
            }
        );
        if !merged.missing_shards.is_empty() {
            text.push_str(&format!(
                "Missing shards: {} (the figures are those of the shards given)\n",
                merged.missing_shards.join(", ")
            ));
        }
        text.push_str(&crate::summary::render(&merged.report));
        if to_stdout {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
