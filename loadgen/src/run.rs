//! Running a configuration: the event-loop threads of this process
//! ([`crate::threads`]) or child processes ([`crate::procs`]), then the report.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::{now_ns, MS};
use crate::config::Config;
use crate::error::LoadError;
use crate::json_report::Report;
use crate::outcome::{self, Times};
use crate::recorder::Recorder;
use crate::threads::run_local;

/// A finished run: the report and the merged recorder behind it.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub recorder: Recorder,
    /// Where the run's clocks stood (for `--hlog`'s wall-clock times).
    pub times: Times,
}

/// Run `config` to the end and build its report. `progress` draws the live
/// line on stderr (only when stderr is a terminal).
pub fn run_config(config: &Config, progress: bool) -> Result<Outcome, LoadError> {
    crate::engine::check(config.settings.engine)?;
    let nofile = crate::env::raise_nofile();
    check_descriptors(config, nofile.1)?;
    let env = crate::env::environment(nofile);
    let started_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let progress = progress && std::io::stderr().is_terminal();
    // Children need time to start before the common epoch.
    let lead = if config.settings.procs > 1 { 300 * MS } else { 5 * MS };
    let unix_offset_ns = crate::clock::unix_minus_monotonic_ns();
    let load_at = load_at(config, unix_offset_ns, now_ns() + lead)?;
    // A ramp loads while it connects: with --start-at it starts then.
    let epoch = match load_at {
        Some(at) if config.settings.connect_rate.is_some() => at,
        _ => now_ns() + lead,
    };
    let recorder = if config.settings.procs > 1 {
        crate::procs::run_children(config, (epoch, load_at), progress)?
    } else {
        run_local(config, config.driven(), (epoch, load_at), progress, None)?
    };
    let times = Times { epoch, started_unix_ms, unix_offset_ns };
    let report = outcome::build(config, env, &recorder, times);
    Ok(Outcome { report, recorder, times })
}

/// `--start-at`: the monotonic instant the load starts (the window starts
/// `warmup` later at the given wall-clock time); an error when it would be
/// before `earliest`, since then the shards could not share one window.
fn load_at(config: &Config, unix_offset_ns: i128, earliest: u64) -> Result<Option<u64>, LoadError> {
    let Some(start_ms) = config.settings.start_at_unix_ms else { return Ok(None) };
    let window_start = i128::from(start_ms) * i128::from(MS) - unix_offset_ns;
    let at = window_start - i128::from(crate::clock::ns(config.settings.warmup));
    if at < i128::from(earliest) {
        let late = (i128::from(earliest) - at) as f64 / 1e9;
        return Err(LoadError::Invalid(format!(
            "--start-at {start_ms} leaves no time to start (the load would have had to begin {late:.3} s ago, \
             warmup included): every shard must start its window at that instant; pick a later time"
        )));
    }
    Ok(Some(at as u64))
}

/// Fail early, with advice, when one process cannot hold its connections.
fn check_descriptors(config: &Config, hard: u64) -> Result<(), LoadError> {
    let procs = u64::from(config.settings.procs);
    let driven = config.driven().count;
    let per_proc = driven.div_ceil(procs);
    let overhead = crate::env::fd_overhead(config.settings.threads);
    if per_proc + overhead <= hard {
        return Ok(());
    }
    let usable = hard.saturating_sub(overhead).max(1);
    Err(LoadError::TooManyConns {
        conns: driven,
        needed: per_proc + overhead,
        limit: hard,
        procs: driven.div_ceil(usable).max(procs + 1),
    })
}
