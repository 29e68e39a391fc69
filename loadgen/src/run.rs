//! Running a configuration: the event-loop threads of this process
//! ([`crate::threads`]) or child processes ([`crate::procs`]), then the report.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::{now_ns, MS};
use crate::config::{Config, Share};
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
}

/// Run `config` to the end and build its report. `progress` draws the live
/// line on stderr (only when stderr is a terminal).
pub fn run_config(config: &Config, progress: bool) -> Result<Outcome, LoadError> {
    let nofile = crate::env::raise_nofile();
    check_descriptors(config, nofile.1)?;
    let env = crate::env::environment(nofile);
    let started_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let progress = progress && std::io::stderr().is_terminal();
    let (epoch, recorder) = if config.procs > 1 {
        // Children need time to start before the common epoch.
        let epoch = now_ns() + 300 * MS;
        (epoch, crate::procs::run_children(config, epoch, progress)?)
    } else {
        let epoch = now_ns() + 5 * MS;
        let all = Share { first: 0, count: config.slots() };
        (epoch, run_local(config, all, epoch, progress, None)?)
    };
    let report = outcome::build(config, env, &recorder, Times { epoch, started_unix_ms });
    Ok(Outcome { report, recorder })
}

/// Fail early, with advice, when one process cannot hold its connections.
fn check_descriptors(config: &Config, hard: u64) -> Result<(), LoadError> {
    let procs = u64::from(config.procs);
    let per_proc = config.slots().div_ceil(procs);
    let overhead = crate::env::fd_overhead(config.threads);
    if per_proc + overhead <= hard {
        return Ok(());
    }
    let usable = hard.saturating_sub(overhead).max(1);
    Err(LoadError::TooManyConns {
        conns: config.slots(),
        needed: per_proc + overhead,
        limit: hard,
        procs: config.slots().div_ceil(usable).max(procs + 1),
    })
}
