//! What a C1M run does, as data: the ladder's steps, the processes each one
//! needs, every command line, and the time it is expected to take. Pure: the
//! tests check the plan without running anything.

use std::time::Duration;

/// Why the server and the load generators share every CPU by default, unlike the
/// standard matrix's cells: at 1,000,000 connections each side runs 52 processes,
/// and either side can then use both cores while the other waits (the ramp is
/// all connects, the window mostly the server's answers). The standard matrix
/// pins to keep the client's CPU apart from the server's per-request cost, which
/// C1M does not report; its latencies are given with both sides' run-queue wait
/// beside them. `--server-cpus`/`--client-cpus` pin as the matrix does.
pub const UNPINNED: &str = "the server and the load generators share every CPU (not pinned)";

/// The ladder: connections held at each step.
pub const STEPS: [u64; 3] = [100_000, 300_000, 1_000_000];
/// Models that can hold them here: reactors in processes (M10), and tokio's
/// task per connection (MN, T3's "Go goroutines" and "Rust async" rows) in as
/// many processes as the descriptor limit requires (`--procs`, see
/// `servers/src/models/tokio_procs.rs`).
pub const MODELS: [&str; 2] = ["reuseport", "tokio"];
/// Descriptors of a process's RLIMIT_NOFILE not given to connections: the
/// listener, epoll, pipes, the probe's connections landing on the process, and
/// SO_REUSEPORT's uneven spread (a hash: about ±140 connections around 19,230
/// per process at 1,000,000 over 52).
pub const FD_RESERVE: u64 = 500;
/// The alive check: each connection sends one request per period, and the
/// measured window is one period long, so it holds exactly one request per connection.
/// 40 s: 25,000 requests/s at 1,000,000 connections. At 20 s (50,000/s, what held
/// the million by hand without a probe) both models' million collapsed once the
/// closed-loop probe ran: request timeouts, the connections reopened, the load
/// generators' run-queue wait in the thousands of seconds (the recorded fixture
/// `bench/tests/fixtures/c1m/tokio-c1000000-period20.json.gz`).
pub const ALIVE_PERIOD: Duration = Duration::from_secs(40);
/// Before the alive check's window: the same schedule, not measured.
pub const ALIVE_WARMUP: Duration = Duration::from_secs(5);
/// A request unanswered this long is an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A connect not completed this long is an error (1,000,000 connects queue up).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The probe: closed-loop connections measuring latency while the others are held.
pub const PROBE_CONNS: u64 = 100;
pub const PROBE_WARMUP: Duration = Duration::from_secs(2);
pub const PROBE_WINDOW: Duration = Duration::from_secs(10);
/// The whole run, T5 included, must fit in this.
pub const BUDGET: Duration = Duration::from_secs(15 * 60);
/// Connections established per second on this machine, for the estimate
/// (1,000,000 in 20.3 s by hand, issue 13; 36 to 60 s in the runner, the probe's
/// connections and other work beside it).
pub const RAMP_PER_S: f64 = 25_000.0;
/// Connections torn down (both ends) per second after a step, for the estimate.
pub const TEARDOWN_PER_S: f64 = 100_000.0;
/// Start, stop and sampling around each step, seconds (estimate).
pub const STEP_OVERHEAD_S: f64 = 10.0;

/// T5's "after" row: 100,000 concurrent connections.
pub const T5_MAX_CONNS: u64 = 100_000;
/// T5's latency, throughput and CPU rows: this many concurrent clients, each
/// opening a connection per request (what port ranges, TIME_WAIT reuse and the
/// accept queue act on).
pub const T5_SHORT_CONNS: u64 = 1_000;
/// Pairs (defaults, tuned) of the short-connection run.
pub const T5_REPS: u32 = 3;
/// Measured window of each T5 run.
pub const T5_WINDOW: Duration = Duration::from_secs(10);
/// RLIMIT_NOFILE of the server in the defaults run (the documents' "before").
pub const T5_DEFAULT_NOFILE: u64 = 1_024;

/// The settings of one run (defaults: the constants above; the CLI may shrink them for tests).
#[derive(Clone, Debug, PartialEq)]
pub struct C1mConfig {
    pub steps: Vec<u64>,
    pub models: Vec<String>,
    pub conns_per_proc: u64,
    pub alive_period: Duration,
    pub alive_warmup: Duration,
    pub probe_conns: u64,
    pub probe_warmup: Duration,
    pub probe_window: Duration,
    pub t5: bool,
    pub t5_max_conns: u64,
    pub t5_short_conns: u64,
    pub t5_reps: u32,
    pub t5_window: Duration,
    pub budget: Duration,
}

impl C1mConfig {
    /// The experiment as `make bench-c1m` runs it, for a process limit of `nofile_hard`.
    pub fn standard(nofile_hard: u64) -> C1mConfig {
        C1mConfig {
            steps: STEPS.to_vec(),
            models: MODELS.iter().map(|m| m.to_string()).collect(),
            conns_per_proc: nofile_hard.saturating_sub(FD_RESERVE).max(1),
            alive_period: ALIVE_PERIOD,
            alive_warmup: ALIVE_WARMUP,
            probe_conns: PROBE_CONNS,
            probe_warmup: PROBE_WARMUP,
            probe_window: PROBE_WINDOW,
            t5: true,
            t5_max_conns: T5_MAX_CONNS,
            t5_short_conns: T5_SHORT_CONNS,
            t5_reps: T5_REPS,
            t5_window: T5_WINDOW,
            budget: BUDGET,
        }
    }

    /// Processes needed for `conns` connections.
    pub fn procs_for(&self, conns: u64) -> u32 {
        conns.div_ceil(self.conns_per_proc).max(1) as u32
    }

    /// The settings as `(flag, value)` pairs for `c1m.json`.
    pub fn describe(&self) -> Vec<(String, String)> {
        let d = |x: Duration| humantime::format_duration(x).to_string();
        let join = |v: &[String]| v.join(",");
        vec![
            ("steps".into(), join(&self.steps.iter().map(|s| s.to_string()).collect::<Vec<_>>())),
            ("models".into(), join(&self.models)),
            ("conns-per-proc".into(), self.conns_per_proc.to_string()),
            ("alive-period".into(), d(self.alive_period)),
            ("alive-warmup".into(), d(self.alive_warmup)),
            ("probe-conns".into(), self.probe_conns.to_string()),
            ("probe-warmup".into(), d(self.probe_warmup)),
            ("probe-window".into(), d(self.probe_window)),
            ("t5".into(), self.t5.to_string()),
            ("t5-max-conns".into(), self.t5_max_conns.to_string()),
            ("t5-short-conns".into(), self.t5_short_conns.to_string()),
            ("t5-reps".into(), self.t5_reps.to_string()),
            ("t5-window".into(), d(self.t5_window)),
            ("budget".into(), d(self.budget)),
        ]
    }
}

/// One rung of the ladder, with its command lines (the server's address is added at run time).
#[derive(Clone, Debug, PartialEq)]
pub struct StepSpec {
    pub model: String,
    pub conns: u64,
    pub server_procs: u32,
    pub client_procs: u32,
    /// `c10k serve` arguments.
    pub server_args: Vec<String>,
    /// `c10k load` arguments of the alive check, without `--addr`.
    pub alive_args: Vec<String>,
    /// `c10k load` arguments of the probe, without `--addr`.
    pub probe_args: Vec<String>,
    pub estimate_s: f64,
}

impl StepSpec {
    pub fn id(&self) -> String {
        super::record::step_id(&self.model, self.conns)
    }
}

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `c10k serve` arguments of `model` over `procs` processes, or `None` for a model the ladder does not know.
pub fn server_args(model: &str, procs: u32, addr: &str) -> Option<Vec<String>> {
    let mut args: Vec<String> = vec!["--model".into(), model.into(), "--procs".into(), procs.to_string()];
    match model {
        "reuseport" => {}
        // One runtime thread per process: the server has one CPU, and processes, not threads, hold the descriptors.
        "tokio" => args.extend(["--threads".into(), "1".into()]),
        _ => return None,
    }
    args.extend(["--addr".into(), addr.into()]);
    Some(args)
}

/// The alive check of `conns` connections over `procs` load processes.
pub fn alive_args(cfg: &C1mConfig, conns: u64, procs: u32) -> Vec<String> {
    let rate = conns as f64 / cfg.alive_period.as_secs_f64();
    vec![
        "--conns".into(),
        conns.to_string(),
        "--procs".into(),
        procs.to_string(),
        "--threads".into(),
        "1".into(),
        "--rate".into(),
        format!("{rate}"),
        // Dozens of processes share one CPU: a thread spinning before each send
        // would take it from the others. Sleep until each request is due.
        "--spin".into(),
        "0s".into(),
        "--warmup".into(),
        dur(cfg.alive_warmup),
        "--duration".into(),
        dur(cfg.alive_period),
        "--timeout".into(),
        dur(REQUEST_TIMEOUT),
        "--connect-timeout".into(),
        dur(CONNECT_TIMEOUT),
    ]
}

/// The closed-loop probe.
pub fn probe_args(cfg: &C1mConfig) -> Vec<String> {
    vec![
        "--conns".into(),
        cfg.probe_conns.to_string(),
        "--threads".into(),
        "1".into(),
        "--warmup".into(),
        dur(cfg.probe_warmup),
        "--duration".into(),
        dur(cfg.probe_window),
        "--timeout".into(),
        dur(REQUEST_TIMEOUT),
    ]
}

/// Expected seconds of one step.
pub fn estimate(cfg: &C1mConfig, conns: u64) -> f64 {
    let n = conns as f64;
    n / RAMP_PER_S + (cfg.alive_warmup + cfg.alive_period).as_secs_f64() + n / TEARDOWN_PER_S + STEP_OVERHEAD_S
}

/// Expected seconds of T5: two max-connection runs and `reps` pairs of short runs.
pub fn t5_estimate(cfg: &C1mConfig) -> f64 {
    if !cfg.t5 {
        return 0.0;
    }
    let w = cfg.t5_window.as_secs_f64();
    let max_run = cfg.t5_max_conns as f64 / RAMP_PER_S + w + 2.0 + 2.0 * super::t5::CONNECT_TIMEOUT.as_secs_f64() + 8.0;
    let short_run = w + 1.0 + 6.0;
    2.0 * max_run + 2.0 * f64::from(cfg.t5_reps) * short_run
}

/// The ladder, interleaved by size (every model at one size before the next
/// size), so a drifting machine does not favour one model; `Err` names an unknown model.
pub fn steps(cfg: &C1mConfig) -> Result<Vec<StepSpec>, String> {
    let mut sizes = cfg.steps.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut out = Vec::new();
    for &conns in &sizes {
        for model in &cfg.models {
            let server_procs = cfg.procs_for(conns);
            let server_args = server_args(model, server_procs, "127.0.0.1:0")
                .ok_or_else(|| format!("the ladder knows the models {}, not {model:?}", MODELS.join(", ")))?;
            let client_procs = cfg.procs_for(conns);
            out.push(StepSpec {
                model: model.clone(),
                conns,
                server_procs,
                client_procs,
                server_args,
                alive_args: alive_args(cfg, conns, client_procs),
                probe_args: probe_args(cfg),
                estimate_s: estimate(cfg, conns),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_follow_the_descriptor_limit() {
        let cfg = C1mConfig::standard(20_000);
        assert_eq!(cfg.conns_per_proc, 19_500);
        assert_eq!((cfg.procs_for(100_000), cfg.procs_for(300_000), cfg.procs_for(1_000_000)), (6, 16, 52));
        // Every process stays under its limit with the reserve to spare.
        for n in STEPS {
            assert!(n.div_ceil(u64::from(cfg.procs_for(n))) + FD_RESERVE <= 20_000);
        }
        let roomy = C1mConfig::standard(1_048_576);
        assert_eq!(roomy.procs_for(1_000_000), 1, "one process where the limit allows");
    }

    #[test]
    fn the_window_holds_one_request_per_connection() {
        let cfg = C1mConfig::standard(20_000);
        let steps = steps(&cfg).expect("plan");
        assert_eq!(steps.len(), 6);
        assert_eq!(
            steps.iter().map(|s| s.conns).collect::<Vec<_>>(),
            [100_000, 100_000, 300_000, 300_000, 1_000_000, 1_000_000]
        );
        let big = steps.iter().find(|s| s.model == "tokio" && s.conns == 1_000_000).expect("tokio at 1M");
        assert_eq!(big.server_args, ["--model", "tokio", "--procs", "52", "--threads", "1", "--addr", "127.0.0.1:0"]);
        let rate_at = big.alive_args.iter().position(|a| a == "--rate").expect("--rate");
        let rate: f64 = big.alive_args[rate_at + 1].parse().expect("number");
        assert_eq!(rate * cfg.alive_period.as_secs_f64(), 1_000_000.0);
        assert!(big.alive_args.windows(2).any(|w| w == ["--duration", "40s"]));
        assert!(probe_args(&cfg).windows(2).any(|w| w == ["--conns", "100"]));
    }

    #[test]
    fn the_standard_run_fits_its_budget() {
        let cfg = C1mConfig::standard(20_000);
        let total: f64 = steps(&cfg).expect("plan").iter().map(|s| s.estimate_s).sum::<f64>() + t5_estimate(&cfg);
        assert!(total < BUDGET.as_secs_f64(), "{total} s planned");
        assert!(steps(&C1mConfig { models: vec!["thread".into()], ..cfg }).is_err());
    }
}
