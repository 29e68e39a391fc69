//! `c10k c1m`: the whole run. The ladder interleaved by size, then T5; a time
//! budget that skips (and records why) what would not fit; a larger step of a
//! model skipped once a smaller one fell short (its limit is named there);
//! progress on stderr; Ctrl-C stops between steps or inside one, kills every
//! process, removes cgroups and namespaces, keeps what was finished and still
//! writes the folder's plots and `C1M.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::c1m::plan::{self, C1mConfig, StepSpec};
use crate::c1m::record::{C1mRun, StepRecord};
use crate::c1m::{machine, step, t5};
use crate::error::{BenchError, Result};
use crate::results::{write_json, Outcome, SCHEMA};
use crate::show::n;
use crate::{env, signals};

/// `1000000` or `1_000_000`.
fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    t.replace('_', "").parse::<u64>().map_err(|e| format!("{t:?}: {e}"))
}

/// Arguments of `c10k c1m`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Holds 100,000, 300,000 and 1,000,000 connections against reuseport and tokio in as few \
    processes as RLIMIT_NOFILE allows, with a closed-loop probe measuring latency meanwhile, then runs T5 in network \
    namespaces (root). Writes DIR/env.json, DIR/c1m.json, DIR/steps/*.json.gz, DIR/t5/*, DIR/plots/c1m-*.svg and \
    DIR/C1M.md; `c10k report STDDIR --c1m DIR` puts it in REPORT.md. About 11 minutes here, at most --budget.")]
pub struct C1mArgs {
    /// Results folder [default: results/c1m-<date>-<host>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The `c10k` binary that serves and loads [default: this executable].
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// CPUs of the server [default: every allowed CPU, shared with the load generators].
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<String>,
    /// CPUs of the load generators [default: every allowed CPU].
    #[arg(long, value_name = "LIST")]
    pub client_cpus: Option<String>,
    /// Connections of the ladder's steps [default: 100000,300000,1000000].
    #[arg(long, value_delimiter = ',', value_parser = parse_count, value_name = "LIST")]
    pub steps: Vec<u64>,
    /// Models of the ladder [default: reuseport,tokio].
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub models: Vec<String>,
    /// Connections per process, server or client [default: the hard RLIMIT_NOFILE less 500].
    #[arg(long, value_name = "N")]
    pub conns_per_proc: Option<u64>,
    /// Each held connection sends one request per period; the alive check's window is one period [default: 20s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub alive_period: Option<Duration>,
    /// Warm-up of the alive check [default: 5s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub alive_warmup: Option<Duration>,
    /// Closed-loop probe connections [default: 100].
    #[arg(long, value_name = "N")]
    pub probe_conns: Option<u64>,
    /// Probe warm-up [default: 2s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub probe_warmup: Option<Duration>,
    /// Probe window, inside the alive check's [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub probe_window: Option<Duration>,
    /// Skip T5 (the namespace runs).
    #[arg(long)]
    pub no_t5: bool,
    /// Run only T5, no ladder.
    #[arg(long)]
    pub only_t5: bool,
    /// T5: connections offered in the maximum-connections run [default: 100000].
    #[arg(long, value_name = "N")]
    pub t5_max_conns: Option<u64>,
    /// T5: concurrent short-connection clients [default: 1000].
    #[arg(long, value_name = "N")]
    pub t5_short_conns: Option<u64>,
    /// T5: pairs of short-connection runs [default: 3].
    #[arg(long, value_name = "N")]
    pub t5_reps: Option<u32>,
    /// T5: measured window of each run [default: 10s].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub t5_window: Option<Duration>,
    /// Stop planning steps that would end past this [default: 15m].
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub budget: Option<Duration>,
    /// Print the plan with every command line and its estimate, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl C1mArgs {
    /// The settings: the standard experiment with what was given on the command line.
    pub fn config(&self, nofile_hard: u64) -> C1mConfig {
        let mut c = C1mConfig::standard(nofile_hard);
        if !self.steps.is_empty() {
            c.steps = self.steps.clone();
        }
        if !self.models.is_empty() {
            c.models = self.models.clone();
        }
        if self.only_t5 {
            c.steps.clear();
        }
        c.conns_per_proc = self.conns_per_proc.unwrap_or(c.conns_per_proc).max(1);
        c.alive_period = self.alive_period.unwrap_or(c.alive_period);
        c.alive_warmup = self.alive_warmup.unwrap_or(c.alive_warmup);
        c.probe_conns = self.probe_conns.unwrap_or(c.probe_conns);
        c.probe_warmup = self.probe_warmup.unwrap_or(c.probe_warmup);
        c.probe_window = self.probe_window.unwrap_or(c.probe_window);
        c.t5 = !self.no_t5;
        c.t5_max_conns = self.t5_max_conns.unwrap_or(c.t5_max_conns);
        c.t5_short_conns = self.t5_short_conns.unwrap_or(c.t5_short_conns);
        c.t5_reps = self.t5_reps.unwrap_or(c.t5_reps);
        c.t5_window = self.t5_window.unwrap_or(c.t5_window);
        c.budget = self.budget.unwrap_or(c.budget);
        c
    }
}

fn pin_self(cpus: &[usize]) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|source| BenchError::Sys { what: "cpu set", source })?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|source| BenchError::Sys { what: "pin the runner", source })
}

fn clock(s: f64) -> String {
    humantime::format_duration(Duration::from_secs(s.max(0.0) as u64)).to_string()
}

/// A skipped step, recorded with its reason.
fn skipped(spec: &StepSpec, reason: String) -> StepRecord {
    step::planned(spec, Outcome::Skipped { reason })
}

/// One line about a finished step.
fn step_line(r: &StepRecord) -> String {
    let lat = |v: Option<f64>| v.map_or("not measured".into(), crate::show::lat);
    match (&r.outcome, &r.alive) {
        (Outcome::Skipped { reason }, _) => format!("skipped: {reason}"),
        (_, Some(a)) => format!(
            "{} of {} established, {} answered in the window, {} errors; probe p99 {} (lateness p99 {}); {:.0} s",
            n(a.established as f64),
            n(r.conns as f64),
            n(a.requests as f64),
            n(a.errors as f64),
            lat(r.probe.as_ref().and_then(|p| p.p99_us)),
            lat(a.dispatch_lag_p99_us),
            r.wall_s
        ),
        (o, None) => o.label(),
    }
}

/// `c10k c1m`.
pub fn run_c1m(args: C1mArgs) -> Result<ExitCode> {
    let allowed = env::allowed_cpus();
    // Not pinned unless asked: see [`UNPINNED`].
    let all = allowed.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let sizing = crate::matrix::sizing(
        &allowed,
        Some(args.server_cpus.as_deref().unwrap_or(&all)),
        Some(args.client_cpus.as_deref().unwrap_or(&all)),
    )?;
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    let cfg = args.config(hard);
    let steps = plan::steps(&cfg).map_err(BenchError::Args)?;
    let t5_s = plan::t5_estimate(&cfg);
    let planned_s = steps.iter().map(|s| s.estimate_s).sum::<f64>() + t5_s;
    eprintln!(
        "c10k c1m: {} steps{}, estimated {} (budget {}); {} connections per process (RLIMIT_NOFILE {}); server on CPUs {:?}, load generators on CPUs {:?}",
        steps.len(),
        if cfg.t5 { " and T5 in network namespaces" } else { "" },
        clock(planned_s),
        clock(cfg.budget.as_secs_f64()),
        n(cfg.conns_per_proc as f64),
        n(hard as f64),
        sizing.server_cpus,
        sizing.client_cpus
    );
    if args.dry_run {
        for s in &steps {
            println!(
                "{:<22} ~{:>4.0}s  serve {}  |  load --addr ADDR {}  |  probe --addr ADDR {}",
                s.id(),
                s.estimate_s,
                s.server_args.join(" "),
                s.alive_args.join(" "),
                s.probe_args.join(" ")
            );
        }
        if cfg.t5 {
            println!("t5                     ~{t5_s:>4.0}s  2 max-connection runs and {} pairs of short-connection runs in network namespaces", cfg.t5_reps);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().map_err(BenchError::io("locate", "current executable"))?,
    };
    if !bin.is_file() {
        return Err(BenchError::Args(format!("--bin {} is not a file", bin.display())));
    }
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new("results").join(format!("c1m-{}-{}", crate::date(crate::unix_ms()), crate::hostname()))
    });
    std::fs::create_dir_all(out.join("steps")).map_err(BenchError::io("create", &out))?;
    signals::install()?;
    pin_self(&sizing.client_cpus)?;
    let cg_left = crate::cgroup::clean_leftovers();
    let ns_left = crate::netns::clean_leftovers();
    if cg_left + ns_left > 0 {
        eprintln!(
            "c10k c1m: removed {cg_left} cgroup(s) and {ns_left} network namespace(s) left by a run that was killed"
        );
    }
    let cgroups = matches!(crate::cgroup::probe(), crate::cgroup::Accounting::Cgroup { .. });
    let mut info = env::collect(Path::new("."), &bin);
    info.server_cpus = sizing.server_cpus.clone();
    info.client_cpus = sizing.client_cpus.clone();
    info.runner_cpus = sizing.client_cpus.clone();
    info.planned_cells = steps.len();
    info.planned_s = planned_s;
    info.accounting = Some(crate::cgroup::probe());
    write_json(&out.join("env.json"), &info, "env.json")?;
    let mut run = C1mRun {
        schema: SCHEMA,
        started_unix_ms: crate::unix_ms(),
        budget_s: cfg.budget.as_secs_f64(),
        planned_s,
        loadavg_before: machine::loadavg(),
        settings: cfg.describe(),
        planned: steps.iter().map(|s| s.id()).collect(),
        nofile_hard: hard,
        conns_per_proc: cfg.conns_per_proc,
        ..C1mRun::default()
    };
    if !cgroups {
        run.notes
            .push("no cgroup could be made: kernel memory is the machine's, split in halves (see the method)".into());
    }
    write_json(&out.join("c1m.json"), &run, "c1m.json")?;
    let scratch = std::env::temp_dir();
    let started = Instant::now();
    let say = |s: String| eprintln!("  {s}");
    let ctx = step::StepCtx {
        bin: &bin,
        scratch: &scratch,
        server_cpus: &sizing.server_cpus,
        client_cpus: &sizing.client_cpus,
        cgroups,
        probe_warmup: cfg.probe_warmup,
        probe_window: cfg.probe_window,
        alive_warmup: cfg.alive_warmup,
        alive_period: cfg.alive_period,
    };
    let mut short: Vec<(String, u64)> = Vec::new();
    let mut left: f64 = steps.iter().map(|s| s.estimate_s).sum();
    for (i, spec) in steps.iter().enumerate() {
        if signals::interrupted() {
            break;
        }
        left -= spec.estimate_s;
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!(
            "c10k c1m: [{}/{}] {} at {} connections ({} + {} processes; ~{:.0} s; {} elapsed, about {} to go)",
            i + 1,
            steps.len(),
            spec.model,
            n(spec.conns as f64),
            spec.server_procs,
            spec.client_procs,
            spec.estimate_s,
            clock(elapsed),
            clock(spec.estimate_s + left + t5_s)
        );
        let rec = if let Some((_, at)) = short.iter().find(|(m, _)| *m == spec.model) {
            skipped(
                spec,
                format!("{} did not hold {} connections (its limit is named there)", spec.model, n(*at as f64)),
            )
        } else if elapsed + spec.estimate_s + t5_s > cfg.budget.as_secs_f64() {
            skipped(spec, format!("the run's budget of {} would be passed", clock(cfg.budget.as_secs_f64())))
        } else {
            match step::run(&ctx, spec, &say) {
                Some(r) => r,
                None => break,
            }
        };
        eprintln!("  {}", step_line(&rec));
        if !rec.held_all() && !matches!(rec.outcome, Outcome::Skipped { .. }) {
            short.push((rec.model.clone(), rec.conns));
        }
        write_json(&out.join("steps").join(format!("{}.json.gz", rec.id())), &rec, "step record")?;
    }
    if cfg.t5 && !signals::interrupted() {
        eprintln!("c10k c1m: T5 in network namespaces (~{t5_s:.0} s)");
        let t5ctx = t5::T5Ctx {
            bin: &bin,
            scratch: &scratch,
            out: &out,
            server_cpus: &sizing.server_cpus,
            client_cpus: &sizing.client_cpus,
            cgroups,
            cfg: &cfg,
            nofile_hard: hard,
        };
        match t5::run(&t5ctx, ns_left, &say) {
            Some(t5) => {
                if let Some(why) = &t5.unavailable {
                    eprintln!("c10k c1m: T5 not run in namespaces: {why}");
                    run.notes.push(format!("T5 not run in namespaces: {why}"));
                } else if !t5.host_unchanged() {
                    eprintln!("c10k c1m: warning: a host setting differs after T5 (see t5/namespaces.json)");
                }
                write_json(&out.join("t5").join("namespaces.json"), &t5, "t5/namespaces.json")?;
            }
            None => run.notes.push("T5 interrupted".into()),
        }
    }
    run.interrupted = signals::interrupted();
    run.finished_unix_ms = Some(crate::unix_ms());
    run.loadavg_after = machine::loadavg();
    write_json(&out.join("c1m.json"), &run, "c1m.json")?;
    let md = match crate::c1m_report::write_folder(&out) {
        Ok(md) => md.display().to_string(),
        // Interrupted before the first step ended: nothing to draw.
        Err(BenchError::Empty(_)) => "no step or T5 run to report".into(),
        Err(e) => return Err(e),
    };
    eprintln!(
        "c10k c1m: done in {}{}; wrote {} ({md})",
        clock(started.elapsed().as_secs_f64()),
        if run.interrupted { " (interrupted, finished steps kept)" } else { "" },
        out.display()
    );
    Ok(if run.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: C1mArgs,
    }

    #[test]
    fn the_command_line_parses() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["c1m", "--steps", "3000,1_000", "--models", "tokio", "--no-t5"]).expect("parses");
        assert_eq!(cli.args.steps, [3_000, 1_000]);
        assert!(cli.args.no_t5);
    }

    #[test]
    fn lists_and_overrides() {
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert!(parse_count("1e6").is_err());
        let args = C1mArgs {
            out: None,
            bin: None,
            server_cpus: None,
            client_cpus: None,
            steps: vec![3_000],
            models: vec!["reuseport".into()],
            conns_per_proc: Some(1_500),
            alive_period: Some(Duration::from_secs(2)),
            alive_warmup: None,
            probe_conns: None,
            probe_warmup: None,
            probe_window: None,
            no_t5: true,
            only_t5: false,
            t5_max_conns: None,
            t5_short_conns: None,
            t5_reps: None,
            t5_window: None,
            budget: None,
            dry_run: true,
        };
        let c = args.config(20_000);
        assert_eq!((c.steps.clone(), c.procs_for(3_000), c.t5), (vec![3_000], 2, false));
        assert_eq!(C1mArgs { only_t5: true, ..args }.config(20_000).steps, Vec::<u64>::new());
    }
}
