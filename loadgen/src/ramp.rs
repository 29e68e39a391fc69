//! `--conns FROM:TO:STEP --step D --until-p99 D` (or `--until-error-rate F`):
//! how many connections does the server hold within a latency or error bound?
//!
//! Each step is a run of its own at that connection count, built from the same
//! arguments: its connections are opened (the server sees them all before the
//! window, as in any run), loaded for `--step` (after `--warmup`), then reset;
//! 100 ms later the next step opens `STEP` more. Fresh connections per step keep
//! one step's backlog out of the next step's figures. A line per step says its
//! rate, corrected p99 and error rate; the ramp stops at the first step past
//! the bound and names the most connections held within it. `--procs` works as
//! in a single run (each step spreads its connections over the processes).

use std::process::ExitCode;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cli::{config_from_args, Conns, LoadArgs};
use crate::error::LoadError;
use crate::json_report::Report;
use crate::run::run_config;

/// Version of [`RampReport`].
pub const RAMP_SCHEMA: u32 = 1;
/// Between steps: time for the server to see the previous step's connections go.
const SETTLE: Duration = Duration::from_millis(100);

/// The bound a step must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// Corrected p99 at most this, microseconds.
    pub p99_us: Option<f64>,
    /// Error rate at most this.
    pub error_rate: Option<f64>,
}

impl Bound {
    /// Why `r` is past the bound, or `None` when within.
    pub fn exceeded(&self, r: &Report) -> Option<String> {
        let mut why = Vec::new();
        if let Some(limit) = self.p99_us.filter(|&l| r.latency.corrected.p99_us > l) {
            why.push(format!(
                "p99 {} > {}",
                crate::summary::latency(r.latency.corrected.p99_us),
                crate::summary::latency(limit)
            ));
        }
        if let Some(limit) = self.error_rate.filter(|&l| r.errors.rate > l) {
            why.push(format!("error rate {:.3}% > {:.3}%", r.errors.rate * 100.0, limit * 100.0));
        }
        if r.totals.requests == 0 {
            why.push("nothing answered".into());
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

/// One step of a ramp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub conns: u64,
    pub within: bool,
    /// Why the step is past the bound.
    pub exceeded: Option<String>,
    /// The step's run.
    pub report: Report,
}

/// What `--json` writes for a ramp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RampReport {
    pub schema: u32,
    pub bound: Bound,
    /// Measured window of each step, seconds.
    pub step_s: f64,
    pub steps: Vec<Step>,
    /// The most connections of a step within the bound (`None`: not even the first).
    pub most_conns_within: Option<u64>,
}

fn invalid(msg: &str) -> LoadError {
    LoadError::Invalid(msg.into())
}

/// Run a ramp: a line per step on stdout, the verdict, `--json` if asked.
pub fn run(args: &LoadArgs) -> Result<ExitCode, LoadError> {
    let bound = Bound { p99_us: args.until_p99.map(|d| d.as_secs_f64() * 1e6), error_rate: args.until_error_rate };
    if bound.p99_us.is_none() && bound.error_rate.is_none() {
        return Err(invalid("a ramp needs its bound: --until-p99 D and/or --until-error-rate F"));
    }
    if bound.error_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
        return Err(invalid("--until-error-rate must be between 0 and 1"));
    }
    for (given, flag) in [
        (args.duration.is_some(), "--duration (a ramp's window is --step)"),
        (args.requests.is_some(), "--requests"),
        (args.rate.is_some(), "--rate (a ramp is closed loop)"),
        (args.hlog.is_some(), "--hlog"),
        (args.hgrm.is_some(), "--hgrm"),
        (args.shard.is_some(), "--shard (a ramp decides each step from all its connections)"),
        (args.start_at.is_some(), "--start-at"),
    ] {
        if given {
            return Err(LoadError::Invalid(format!("{flag} cannot be used with a ramp")));
        }
    }
    let step_length = args.step.unwrap_or(Duration::from_secs(5));
    let mut steps = Vec::new();
    let mut best = None;
    let counts = args.conns.steps();
    let json_to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    let say = |line: String| {
        if json_to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "Ramp @ {}: {} steps of {} from {} to {} connections, until {}",
        args.url.as_deref().or(args.addr.as_deref()).unwrap_or("?"),
        counts.len(),
        humantime::format_duration(step_length),
        counts[0],
        counts[counts.len() - 1],
        [
            bound.p99_us.map(|p| format!("p99 > {}", crate::summary::latency(p))),
            bound.error_rate.map(|e| format!("error rate > {:.3}%", e * 100.0)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" or ")
    ));
    for (k, &conns) in counts.iter().enumerate() {
        if k > 0 {
            std::thread::sleep(SETTLE);
        }
        let mut one = args.clone();
        one.conns = Conns::Fixed(conns);
        one.duration = Some(step_length);
        one.step = None;
        one.until_p99 = None;
        one.until_error_rate = None;
        let config = config_from_args(&one)?;
        let report = run_config(&config, false)?.report;
        let exceeded = bound.exceeded(&report);
        say(format!(
            "  step {:>3}: {:>7} connections  {:>10.1} req/s  p99 {:>9}  errors {:.3}%  {}",
            k + 1,
            conns,
            report.totals.requests_per_sec,
            crate::summary::latency(report.latency.corrected.p99_us),
            report.errors.rate * 100.0,
            exceeded.as_deref().map_or("within".to_string(), |why| format!("PAST THE BOUND: {why}"))
        ));
        let within = exceeded.is_none();
        if within {
            best = Some(conns);
        }
        steps.push(Step { conns, within, exceeded, report });
        if !within || crate::threads::STOP.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
    }
    say(match best {
        Some(n) => format!("Most connections held within the bound: {n}"),
        None => "No step was within the bound".to_string(),
    });
    let ramp =
        RampReport { schema: RAMP_SCHEMA, bound, step_s: step_length.as_secs_f64(), steps, most_conns_within: best };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&ramp)? + "\n";
        if json_to_stdout {
            print!("{text}");
        } else {
            std::fs::write(path, text).map_err(|source| LoadError::Output { path: path.clone(), source })?;
        }
    }
    Ok(if best.is_some() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ramps_parse() {
        assert_eq!(Conns::parse("100"), Ok(Conns::Fixed(100)));
        assert_eq!(Conns::parse("1000:20000:1000").map(Conns::steps).map(|s| s.len()), Ok(20));
        assert_eq!(Conns::parse("10:35:10").map(Conns::steps), Ok(vec![10, 20, 30]));
        assert!(Conns::parse("10:5:1").is_err() && Conns::parse("0:5:1").is_err() && Conns::parse("1:2").is_err());
    }
}
