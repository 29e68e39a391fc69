//! `c10k bench` and `c10k report`: arguments, validated once, and the two entry points.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::error::{BenchError, Result};
use crate::matrix::{self, sizing, Profile};
use crate::probe::{self, pollers, ProbeConfig};
use crate::runner::RunCtx;
use crate::{env, matrix_run, report, results, signals};

/// The `--workloads` name of the sendfile probe (C13), which is not a cell.
pub const PROBE_WORKLOAD: &str = "sendfile";
/// The `--workloads` name of the pollers probe (T4, C12).
pub const POLLERS_WORKLOAD: &str = "pollers";
/// Estimated seconds of the sendfile probe with its default configuration.
const PROBE_ESTIMATE_S: f64 = 15.0;
/// Estimated seconds of the pollers probe with its default configuration (14 s measured here).
const POLLERS_ESTIMATE_S: f64 = 15.0;

/// Arguments of `c10k bench`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Runs `c10k serve` and `c10k load` as separate processes for every cell of the \
    matrix, writes DIR/env.json, DIR/cells/*.json, DIR/summary.csv, DIR/plots/*.svg and the report.\n\
    Ctrl-C stops cleanly and keeps the finished cells; `--resume` continues such a run.")]
pub struct BenchArgs {
    /// How much to run: quick (~2 min), standard (~23 min), full, beyond (~16 min).
    #[arg(long, value_enum, default_value_t = Profile::Standard)]
    pub profile: Profile,
    /// Results folder [default: results/<date>-<host>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where to write the report [default: DIR/REPORT.md].
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The `c10k` binary that serves and loads [default: this executable].
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// CPUs of the server, e.g. `0` or `0-3` [default: the first half of the allowed CPUs].
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<String>,
    /// CPUs of the load generator [default: the second half].
    #[arg(long, value_name = "LIST")]
    pub client_cpus: Option<String>,
    /// Load generator threads [default: one per client CPU].
    #[arg(long, value_name = "N")]
    pub client_threads: Option<usize>,
    /// Run only these server configurations (keys, comma-separated: `reactor,thread,reactor-poll`).
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    pub only: Vec<String>,
    /// Run only these workloads (comma-separated; `sendfile` and `pollers` are the probes).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub workloads: Vec<String>,
    /// Keep the cells already in DIR and run only the missing ones.
    #[arg(long)]
    pub resume: bool,
    /// Print the plan and its time estimate, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub joins: JoinArgs,
}

/// Folders of other experiments to join to a standard run's report (`c10k bench`, `c10k report`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JoinArgs {
    /// A C1M folder (`c10k c1m`) to join to the report: its section, T3's rows past one
    /// process's descriptors, T5's namespace rows [default: none: those rows say not measured].
    #[arg(long, value_name = "C1MDIR")]
    pub c1m: Option<PathBuf>,
    /// A beyond-profile folder (`c10k bench --profile beyond`) to join to the report: the
    /// chat room and heartbeat section [default: none: the section is left out].
    #[arg(long, value_name = "DIR")]
    pub beyond: Option<PathBuf>,
}

impl JoinArgs {
    fn joins(&self) -> report::Joins {
        report::Joins { c1m: self.c1m.clone(), beyond: self.beyond.clone() }
    }
}

/// Arguments of `c10k probe`: which probe.
#[derive(clap::Args, Debug, Clone)]
pub struct ProbeArgs {
    #[command(subcommand)]
    pub probe: Probe,
}

/// The probes: experiments that are not cells (`c10k bench` standard and full run both).
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Probe {
    /// Claim C13: read+write against sendfile, the sender's CPU per GiB.
    Sendfile(SendfileArgs),
    /// Claims T4 and C12: one readiness wait among N idle descriptors, per back end.
    Pollers(PollersArgs),
}

/// Arguments of `c10k probe sendfile`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Sends a file over loopback TCP with read+write and with sendfile, runs alternating, \
    and prints the sending thread's CPU time per GiB for each. `c10k bench` (standard, full) runs it too.")]
pub struct SendfileArgs {
    /// Size of the file, MiB.
    #[arg(long, default_value_t = 128, value_name = "MIB")]
    pub size_mib: u64,
    /// Times the file is sent per run, on one connection.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub sends: u32,
    /// Runs per method.
    #[arg(long, default_value_t = probe::RUNS, value_name = "N")]
    pub runs: u32,
    /// User buffer of read+write, KiB.
    #[arg(long, default_value_t = 64, value_name = "KIB")]
    pub buffer_kib: usize,
    /// CPU of the sending thread [default: the first of the server half, as in `c10k bench`].
    #[arg(long, value_name = "CPU")]
    pub sender_cpu: Option<usize>,
    /// CPU of the receiving thread [default: the first of the client half].
    #[arg(long, value_name = "CPU")]
    pub receiver_cpu: Option<usize>,
    /// Folder of the temporary file [default: the system's temporary folder].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also write the result as JSON (the schema of `probes/sendfile.json`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Arguments of `c10k probe pollers`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "One active loopback connection among N idle ones, ping-pong of one byte: the prober \
    waits on epoll (edge, as mio), epoll (level), poll or select with all N + 1 registered, and its thread CPU \
    time per round trip is printed per back end and N, then each back end's growth from the fewest to the most \
    idle descriptors (round by round). `c10k bench` (standard, full) runs it too.")]
pub struct PollersArgs {
    /// Idle descriptors beside the active one (select runs only below its FD_SETSIZE cap).
    #[arg(long, value_delimiter = ',', default_values_t = pollers::IDLE, value_name = "N,N,..")]
    pub idle: Vec<u64>,
    /// Rounds: every back end at every N once per round.
    #[arg(long, default_value_t = pollers::ROUNDS, value_name = "N")]
    pub rounds: u32,
    /// Measured round trips per run.
    #[arg(long, default_value_t = pollers::TRIPS, value_name = "N")]
    pub trips: u32,
    /// CPU of the prober [default: the first of the server half, as in `c10k bench`].
    #[arg(long, value_name = "CPU")]
    pub prober_cpu: Option<usize>,
    /// CPU of the client thread [default: the first of the client half].
    #[arg(long, value_name = "CPU")]
    pub client_cpu: Option<usize>,
    /// Also write the result as JSON (the schema of `probes/pollers.json`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Arguments of `c10k report`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The results folder to read.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write the report [default: DIR/REPORT.md] (`--report` is accepted too).
    #[arg(long, short, alias = "report", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub joins: JoinArgs,
}

/// Arguments of `c10k compare`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// The earlier results folder.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,
    /// The later results folder.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Exit with status 1 when any claim's verdict differs between the two folders.
    #[arg(long)]
    pub fail_on_verdict_change: bool,
    /// List every compared cell, not only those that changed.
    #[arg(long)]
    pub all: bool,
    /// Also write the comparison as JSON to FILE (`-` for standard output, instead of the text).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Arguments of `c10k compress`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompressArgs {
    /// Results folders whose plain `cells/*.json` are rewritten as `cells/*.json.gz`.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
}

fn pin_self(cpus: &[usize]) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|source| BenchError::Sys { what: "cpu set", source })?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|source| BenchError::Sys { what: "pin the runner", source })
}

/// `c10k bench`.
pub fn run_bench(args: BenchArgs) -> Result<ExitCode> {
    let allowed = env::allowed_cpus();
    let sizing = sizing(&allowed, args.server_cpus.as_deref(), args.client_cpus.as_deref())?;
    let client_threads = args.client_threads.unwrap_or(sizing.client_cpus.len()).max(1);
    let mut cells = matrix::plan(args.profile, &sizing, &args.only, client_threads);
    if !args.workloads.is_empty() {
        cells.retain(|c| args.workloads.contains(&c.workload));
    }
    let probe_wanted = |name: &str| {
        matches!(args.profile, Profile::Standard | Profile::Full)
            && args.only.is_empty()
            && (args.workloads.is_empty() || args.workloads.iter().any(|w| w == name))
    };
    let (with_probe, with_pollers) = (probe_wanted(PROBE_WORKLOAD), probe_wanted(POLLERS_WORKLOAD));
    if cells.is_empty() && !with_probe && !with_pollers {
        return Err(BenchError::Args("the plan is empty (check --only and --workloads)".into()));
    }
    let estimate = matrix::estimate(&cells)
        + if with_probe { PROBE_ESTIMATE_S } else { 0.0 }
        + if with_pollers { POLLERS_ESTIMATE_S } else { 0.0 };
    let probes = match (with_probe, with_pollers) {
        (true, true) => " and the sendfile and pollers probes",
        (true, false) => " and the sendfile probe",
        (false, true) => " and the pollers probe",
        (false, false) => "",
    };
    eprintln!(
        "c10k bench: profile {}, {} cells{}, estimated {}; server on CPUs {:?}, load generator on CPUs {:?}",
        args.profile.name(),
        cells.len(),
        probes,
        humantime::format_duration(std::time::Duration::from_secs(estimate as u64)),
        sizing.server_cpus,
        sizing.client_cpus
    );
    if args.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for c in &cells {
            let line = writeln!(
                out,
                "{:<56} ~{:>4.1}s  serve {}  |  load {}",
                c.id,
                c.estimate_s,
                c.server_args.join(" "),
                c.load_args.join(" ")
            );
            // A reader that stops early (`| head`) is not an error of the plan.
            if line.is_err() {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bin = match args.bin {
        Some(b) => b,
        None => std::env::current_exe().map_err(BenchError::io("locate", "current executable"))?,
    };
    if !bin.is_file() {
        return Err(BenchError::Args(format!("--bin {} is not a file", bin.display())));
    }
    let out = args.out.unwrap_or_else(|| default_out(Path::new("results")));
    std::fs::create_dir_all(out.join("cells")).map_err(BenchError::io("create", &out))?;
    signals::install()?;
    // The runner (and its monitor thread) shares the client's CPUs, never the server's.
    pin_self(&sizing.client_cpus)?;
    let mut info = env::collect(Path::new("."), &bin);
    info.profile = Some(args.profile);
    info.server_cpus = sizing.server_cpus.clone();
    info.client_cpus = sizing.client_cpus.clone();
    info.runner_cpus = sizing.client_cpus.clone();
    info.client_threads = client_threads;
    info.planned_cells = cells.len();
    info.planned_s = estimate;
    let left = crate::cgroup::clean_leftovers();
    if left > 0 {
        eprintln!("c10k bench: removed {left} cgroup(s) left by an earlier run that was killed");
    }
    let accounting = crate::cgroup::probe();
    eprintln!("c10k bench: server cost accounted by {}", accounting.label());
    info.accounting = Some(accounting);
    let env_path = out.join("env.json");
    results::write_json(&env_path, &info, "env.json")?;
    let ctx = RunCtx::new(bin, sizing.server_cpus.clone(), sizing.client_cpus.clone(), out.clone());
    let stats = matrix_run::run(&ctx, &cells, &out, args.resume)?;
    let probed = with_probe && !stats.interrupted && !(args.resume && probe::path(&out).exists());
    if probed {
        let config = ProbeConfig {
            sender_cpu: sizing.server_cpus.first().copied(),
            receiver_cpu: sizing.client_cpus.first().copied(),
            ..ProbeConfig::default()
        };
        eprintln!("c10k bench: sendfile probe ({} MiB x {} per run)", config.file_bytes >> 20, config.sends_per_run);
        let result = probe::run(&config, |r| eprintln!("  {}", probe_line(r)));
        if let Some(e) = &result.error {
            eprintln!("c10k bench: the sendfile probe failed (recorded): {e}");
        }
        probe::save(&out, &result)?;
    }
    let polled = with_pollers && !stats.interrupted && !(args.resume && pollers::path(&out).exists());
    if polled {
        let config = pollers::PollersConfig {
            prober_cpu: sizing.server_cpus.first().copied(),
            client_cpu: sizing.client_cpus.first().copied(),
            ..pollers::PollersConfig::default()
        };
        eprintln!("c10k bench: pollers probe ({} rounds, idle {:?})", config.rounds, config.idle);
        let result = pollers::run(&config, |r| {
            if r.idle == config.idle.iter().copied().max().unwrap_or(0) {
                eprintln!("  {}", pollers_line(r));
            }
        });
        if let Some(e) = &result.error {
            eprintln!("c10k bench: the pollers probe failed (recorded): {e}");
        }
        pollers::save(&out, &result)?;
    }
    info.finished_unix_ms = Some(crate::unix_ms());
    info.interrupted = stats.interrupted;
    results::write_json(&env_path, &info, "env.json")?;
    eprintln!(
        "c10k bench: {} cells in {} ({} ok, {} failed or cannot run, {} skipped){}",
        stats.done,
        humantime::format_duration(std::time::Duration::from_secs(stats.elapsed.as_secs())),
        stats.ok,
        stats.failed,
        stats.skipped,
        if stats.interrupted { "; interrupted, finished cells kept" } else { "" }
    );
    if args.profile == Profile::Beyond {
        // Not a run of the documents' claims: its own page, joined to REPORT.md with `--beyond`.
        let page = args.report.unwrap_or_else(|| out.join("BEYOND.md"));
        if stats.done > 0 || args.resume {
            let results = crate::aggregate::Results::load(&out)?;
            crate::aggregate::write_summary(&results, &out.join("summary.csv"))?;
            let text = crate::beyond::section(&results, ".");
            std::fs::write(&page, text).map_err(BenchError::io("write", &page))?;
            eprintln!("c10k bench: wrote {} and {}", out.display(), page.display());
        }
        return Ok(if stats.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS });
    }
    let report_path = args.report.unwrap_or_else(|| out.join("REPORT.md"));
    if stats.done > 0 || args.resume || probed || polled {
        report::generate_with(&out, &args.joins.joins(), &report_path)?;
        eprintln!("c10k bench: wrote {} and {}", out.display(), report_path.display());
    }
    Ok(if stats.interrupted { ExitCode::from(130) } else { ExitCode::SUCCESS })
}

fn probe_line(r: &probe::ProbeRun) -> String {
    format!(
        "{:<10} {:>6.0} ms CPU per GiB, {:>5.2} GiB/s ({:.2} s)",
        r.method,
        r.cpu_ms_per_gib(),
        r.gib_per_s(),
        r.wall_s
    )
}

/// `c10k probe`.
pub fn run_probe(args: ProbeArgs) -> Result<ExitCode> {
    match args.probe {
        Probe::Sendfile(a) => run_sendfile(a),
        Probe::Pollers(a) => run_pollers(a),
    }
}

fn pollers_line(r: &pollers::PollerRun) -> String {
    format!(
        "round {:>2} {:<15} {:>6} idle {:>8.2} us CPU per round trip ({:.2} us wall, {:.2} waits)",
        r.round, r.backend, r.idle, r.cpu_us_per_trip, r.wall_us_per_trip, r.waits_per_trip
    )
}

/// `c10k probe pollers`.
fn run_pollers(args: PollersArgs) -> Result<ExitCode> {
    let halves = sizing(&env::allowed_cpus(), None, None)?;
    let config = pollers::PollersConfig {
        idle: args.idle,
        rounds: args.rounds,
        trips: args.trips,
        prober_cpu: args.prober_cpu.or(halves.server_cpus.first().copied()),
        client_cpu: args.client_cpu.or(halves.client_cpus.first().copied()),
        ..pollers::PollersConfig::default()
    };
    let result = pollers::run(&config, |r| println!("{}", pollers_line(r)));
    if let Some(path) = &args.json {
        results::write_json(path, &result, "probe JSON")?;
    }
    if let Some(e) = &result.error {
        return Err(BenchError::Args(format!("pollers probe: {e}")));
    }
    for b in pollers::BACKENDS {
        if let Some(g) = result.growth(b) {
            println!(
                "{:<15} {:>8.2} us at {} idle, {:>8.2} us at {}: growth {} (n={})",
                b,
                g.at_from.median,
                g.from,
                g.at_to.median,
                g.to,
                g.ratio.show(|x| format!("{x:.2}")),
                g.ratio.n
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `c10k probe sendfile`.
fn run_sendfile(args: SendfileArgs) -> Result<ExitCode> {
    let allowed = env::allowed_cpus();
    let halves = sizing(&allowed, None, None)?;
    let config = ProbeConfig {
        file_bytes: args.size_mib << 20,
        sends_per_run: args.sends,
        runs: args.runs,
        buffer_bytes: args.buffer_kib << 10,
        sender_cpu: args.sender_cpu.or(halves.server_cpus.first().copied()),
        receiver_cpu: args.receiver_cpu.or(halves.client_cpus.first().copied()),
        dir: args.dir.unwrap_or_else(std::env::temp_dir),
    };
    let result = probe::run(&config, |r| println!("{}", probe_line(r)));
    if let Some(path) = &args.json {
        results::write_json(path, &result, "probe JSON")?;
    }
    if let Some(e) = &result.error {
        return Err(BenchError::Args(format!("sendfile probe: {e}")));
    }
    let summary = result.summary();
    for s in &summary {
        println!(
            "median {:<10} {:>6.0} ms CPU per GiB, {:>5.2} GiB/s ({} runs)",
            s.method, s.cpu_ms_per_gib, s.gib_per_s, s.runs
        );
    }
    if let [rw, sf] = summary.as_slice() {
        println!("sendfile / read+write CPU per GiB: {:.2}", sf.cpu_ms_per_gib / rw.cpu_ms_per_gib.max(1e-9));
    }
    Ok(ExitCode::SUCCESS)
}

/// `results/<date>-<host>`.
pub fn default_out(root: &Path) -> PathBuf {
    root.join(format!("{}-{}", crate::date(crate::unix_ms()), crate::hostname()))
}

/// `c10k report`.
pub fn run_report(args: ReportArgs) -> Result<ExitCode> {
    let output = args.output.unwrap_or_else(|| args.dir.join("REPORT.md"));
    report::generate_with(&args.dir, &args.joins.joins(), &output)?;
    eprintln!("c10k report: wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// `c10k compare`.
pub fn run_compare(args: CompareArgs) -> Result<ExitCode> {
    let old = crate::compare::load_complete(&args.old)?;
    let new = crate::compare::load_complete(&args.new)?;
    let c = crate::compare::compare(&old, &new, &args.old.display().to_string(), &args.new.display().to_string());
    let stdout_json = args.json.as_deref().is_some_and(|p| p == Path::new("-"));
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(&c).map_err(|source| BenchError::Serialise { what: "comparison", source })?;
        if stdout_json {
            println!("{text}");
        } else {
            std::fs::write(path, text).map_err(BenchError::io("write", path))?;
        }
    }
    if !stdout_json {
        print!("{}", crate::compare::render(&c, args.all));
    }
    if args.fail_on_verdict_change && c.verdicts_changed() > 0 {
        eprintln!("c10k compare: {} verdict(s) changed", c.verdicts_changed());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `c10k compress`.
pub fn run_compress(args: CompressArgs) -> Result<ExitCode> {
    for dir in &args.dirs {
        let done = results::compress_cells(dir)?;
        eprintln!(
            "c10k compress: {}: {} cell files, {:.1} MB -> {:.1} MB",
            dir.display(),
            done.files,
            done.bytes_before as f64 / 1e6,
            done.bytes_after as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}
