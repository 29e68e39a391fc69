//! `c10k load --proto chat`: a chat room under load (document 002 §5).
//!
//! N members (`--conns`) join the room of a `c10k serve --proto chat`; M of
//! them (`--senders`) broadcast at R messages per second in total (`--rate`,
//! open loop on a fixed schedule, the senders' slots evenly interleaved), each
//! message carrying its id and the time it was scheduled and sent. Every
//! member, the sender included, must receive every broadcast: the run measures
//! the delivery latency from a message's scheduled send to each member's
//! receipt (HdrHistogram, and from the actual send beside it), counts
//! deliveries against N per message sent (lost ones are reported, and fail
//! `--max-error-rate`), and the fan-out deliveries per second.
//!
//! # Phases
//!
//! 1. Set-up: connect every member, send its `join`, wait for its `joined`
//!    acknowledgment, and for the join notices to settle: each member is told
//!    of every member who joined after it, N(N-1)/2 notices in all, a storm
//!    the server sends before the measured window, not during it. Set-up ends
//!    when all are counted, or fails when nothing progresses for `--timeout`.
//! 2. Load: `--warmup`, then the measured window (`--duration`); a message
//!    belongs to the window when it was scheduled in it.
//! 3. Drain: no more sends; deliveries of the window's messages are waited
//!    for, up to `--timeout`; those still missing are lost.
//!
//! Nicknames are `c<pid>_<index>`, so notices and broadcasts of anyone else
//! in the room are told apart and ignored.
//!
//! # Layout
//!
//! - this file: the configuration from the command line, and the run.
//! - [`engine`]: one mio loop per thread over its share of the members.
//! - [`report`]: the JSON report (`--json`) and the summary.

pub mod engine;
pub mod report;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cli::LoadArgs;
use crate::error::LoadError;
use crate::hist::histogram;

/// Senders when `--senders` is not given: this many, or every member if fewer.
pub const DEFAULT_SENDERS: u64 = 10;

/// The validated configuration of a chat run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatConfig {
    pub addr: SocketAddr,
    /// Members in the room.
    pub members: u64,
    /// Members that send, spread evenly over the members.
    pub senders: u64,
    /// Messages per second over all senders.
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub threads: u32,
    /// Bytes of each message's content.
    pub msg_size: usize,
    /// Deliveries are waited for this long after the window; set-up fails
    /// when nothing progresses for this long.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Connects in progress at once, per thread.
    pub connect_window: u32,
    pub max_error_rate: f64,
}

impl ChatConfig {
    /// Whether member `global` sends, and its rank among the senders.
    pub fn sender_rank(&self, global: u64) -> Option<u64> {
        let (m, n) = (u128::from(self.senders), u128::from(self.members));
        let g = u128::from(global);
        let (before, after) = (g * m / n, (g + 1) * m / n);
        (after > before).then_some(before as u64)
    }

    /// Nanoseconds between two messages of one sender.
    pub fn sender_period_ns(&self) -> f64 {
        self.senders as f64 * 1e9 / self.rate
    }
}

/// Smallest content: `c10k <rank> <seq> <scheduled ns> <sent ns>` needs room.
pub const MIN_MSG_SIZE: usize = 64;

fn invalid(msg: impl Into<String>) -> LoadError {
    LoadError::Invalid(msg.into())
}

/// Validate `args` for a chat run; flags that mean nothing for chat are refused.
pub fn config_from_args(args: &LoadArgs) -> Result<ChatConfig, LoadError> {
    let crate::cli::Conns::Fixed(conns) = args.conns else {
        return Err(invalid("--conns FROM:TO:STEP is a ramp; a chat room has one size per run"));
    };
    let base = crate::cli::config_from_args(&LoadArgs { proto: proto::Proto::Http, senders: None, ..args.clone() })?;
    let refuse = |given: bool, flag: &str, why: &str| {
        if given {
            Err(invalid(format!("{flag} does not apply to --proto chat: {why}")))
        } else {
            Ok(())
        }
    };
    refuse(args.pipeline != 1, "--pipeline", "members send on a schedule, not on answers")?;
    refuse(args.requests.is_some(), "--requests", "the run is bounded by --duration")?;
    refuse(args.reqs_per_conn.is_some(), "--reqs-per-conn", "members stay in the room")?;
    refuse(args.idle_conns > 0, "--idle-conns", "every member reads the room")?;
    refuse(args.arrivals != crate::schedule::Arrivals::Uniform, "--arrivals", "the schedule is uniform")?;
    refuse(args.seed.is_some(), "--seed", "the schedule is uniform")?;
    refuse(args.spin.is_some(), "--spin", "a sender spins the last 2 ms before a send")?;
    refuse(args.connect_rate.is_some(), "--connect-rate", "members join first, then the load starts")?;
    refuse(args.source_ips.is_some(), "--source-ips", "one source address")?;
    refuse(args.procs > 1, "--procs", "one process")?;
    refuse(args.method != "GET", "-m/--method", "members send chat lines, not HTTP requests")?;
    refuse(!args.headers.is_empty(), "-H/--header", "members send chat lines, not HTTP requests")?;
    refuse(args.body.is_some() || args.body_file.is_some(), "--body/--body-file", "messages are --msg-size bytes")?;
    refuse(args.shard.is_some() || args.start_at.is_some(), "--shard/--start-at", "one room, one client process")?;
    refuse(args.hlog.is_some(), "--hlog", "the chat report is --json")?;
    refuse(
        args.engine != crate::settings::IoEngine::Mio,
        "--engine uring",
        "the chat loop (src/chat/engine.rs) runs on epoll only",
    )?;
    let rate = args.rate.ok_or_else(|| invalid("--proto chat needs --rate (messages per second in total)"))?;
    let senders = args.senders.unwrap_or(DEFAULT_SENDERS.min(conns));
    if senders == 0 || senders > conns {
        return Err(invalid("--senders must be between 1 and --conns"));
    }
    if args.msg_size < MIN_MSG_SIZE || args.msg_size > proto::chat::MAX_LINE - 64 {
        return Err(invalid(format!(
            "--msg-size must be {MIN_MSG_SIZE}..={} for chat (the content of each message)",
            proto::chat::MAX_LINE - 64
        )));
    }
    let threads = args.threads.unwrap_or_else(crate::env::cores).min(u32::try_from(conns).unwrap_or(u32::MAX));
    Ok(ChatConfig {
        addr: base.settings.addr,
        members: conns,
        senders,
        rate,
        duration: base.settings.duration.unwrap_or(Duration::from_secs(10)),
        warmup: args.warmup,
        threads: threads.max(1),
        msg_size: args.msg_size,
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        connect_window: args.connect_window,
        max_error_rate: args.max_error_rate,
    })
}

/// What the threads share.
pub struct Shared {
    pub config: ChatConfig,
    /// Nickname prefix, unique to this run.
    pub prefix: String,
    /// Members whose join was acknowledged.
    pub joined: AtomicU64,
    /// Join notices about our members received by our members.
    pub notices: AtomicU64,
    /// When the load starts (monotonic ns); 0 until set-up is complete.
    pub start_ns: AtomicU64,
    /// Set-up failed (a thread says why in its result).
    pub failed: AtomicBool,
    /// Messages of the window sent, and deliveries of them received.
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    /// Threads past the window's end (they send no more).
    pub done_sending: AtomicU64,
}

impl Shared {
    pub fn new(config: ChatConfig) -> Shared {
        Shared {
            config,
            prefix: format!("c{}_", std::process::id()),
            joined: AtomicU64::new(0),
            notices: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            done_sending: AtomicU64::new(0),
        }
    }

    /// Join notices a complete set-up produces: each member hears of every
    /// member who joined after it.
    pub fn notices_expected(&self) -> u64 {
        let n = self.config.members;
        n * n.saturating_sub(1) / 2
    }

    pub fn started(&self) -> Option<u64> {
        Some(self.start_ns.load(Ordering::Acquire)).filter(|&s| s != 0)
    }
}

/// Run `c10k load --proto chat`: set-up, load, drain; summary, `--json`,
/// `--hgrm`, exit status.
pub fn run(args: &LoadArgs) -> Result<ExitCode, LoadError> {
    let config = config_from_args(args)?;
    crate::threads::install_stop_handler();
    let nofile = crate::env::raise_nofile();
    if config.members + crate::env::fd_overhead(config.threads) > nofile.1 {
        return Err(invalid(format!(
            "{} members need about {} descriptors but this process may open {} (RLIMIT_NOFILE hard limit)",
            config.members,
            config.members + crate::env::fd_overhead(config.threads),
            nofile.1
        )));
    }
    let env = crate::env::environment(nofile);
    let started_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let shared = Shared::new(config.clone());
    let total = engine::run_threads(&shared)?;
    let report = report::build(&config, env, &total, started_unix_ms);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        if path.as_os_str() == "-" {
            print!("{text}");
        } else {
            std::fs::write(path, text).map_err(|source| LoadError::Output { path: path.clone(), source })?;
        }
    }
    if let Some(path) = &args.hgrm {
        std::fs::write(path, crate::hgrm::percentile_distribution(&total.corrected))
            .map_err(|source| LoadError::Output { path: path.clone(), source })?;
    }
    if !args.quiet {
        let text = report::render(&report);
        if args.json.as_deref() == Some(std::path::Path::new("-")) {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    if let Some(why) = &report.setup.failure {
        eprintln!("c10k load: chat set-up failed: {why}");
        return Ok(ExitCode::from(1));
    }
    if !report.passed {
        eprintln!(
            "c10k load: error rate {:.4}% exceeds --max-error-rate {} ({} of {} deliveries missing)",
            report.errors.rate * 100.0,
            config.max_error_rate,
            report.deliveries.missing,
            report.deliveries.expected
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The figures of one thread, and of the run once merged.
#[derive(Clone, Debug)]
pub struct Totals {
    /// Scheduled send to receipt (ns), every delivery of the window's messages.
    pub corrected: hdrhistogram::Histogram<u64>,
    /// Actual send to receipt (ns).
    pub uncorrected: hdrhistogram::Histogram<u64>,
    /// Actual send minus scheduled send (ns), every message sent.
    pub dispatch_lag: hdrhistogram::Histogram<u64>,
    /// Connect call to the join acknowledgment (ns), every member.
    pub join: hdrhistogram::Histogram<u64>,
    pub sent: u64,
    pub delivered: u64,
    /// Per member: deliveries of the window's messages, min and max.
    pub member_min: u64,
    pub member_max: u64,
    /// Members that got fewer deliveries than messages were sent.
    pub members_short: u64,
    pub members_lost: u64,
    pub connect_errors: u64,
    pub closed_early: u64,
    pub error_lines: u64,
    pub bad_lines: u64,
    pub first_error: Option<String>,
    pub setup_ns: u64,
    pub setup_failure: Option<String>,
    pub notices: u64,
    pub window_ns: u64,
    pub drain_ns: u64,
    pub cpu_user_ns: u64,
    pub cpu_sys_ns: u64,
    /// Runnable but waiting for a CPU, over the window.
    pub cpu_wait_ns: u64,
    pub threads: u32,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            corrected: histogram(),
            uncorrected: histogram(),
            dispatch_lag: histogram(),
            join: histogram(),
            sent: 0,
            delivered: 0,
            member_min: u64::MAX,
            member_max: 0,
            members_short: 0,
            members_lost: 0,
            connect_errors: 0,
            closed_early: 0,
            error_lines: 0,
            bad_lines: 0,
            first_error: None,
            setup_ns: 0,
            setup_failure: None,
            notices: 0,
            window_ns: 0,
            drain_ns: 0,
            cpu_user_ns: 0,
            cpu_sys_ns: 0,
            cpu_wait_ns: 0,
            threads: 0,
        }
    }
}

impl Totals {
    /// Add another thread's figures.
    pub fn merge(&mut self, o: &Totals) -> Result<(), LoadError> {
        let add = |a: &mut hdrhistogram::Histogram<u64>, b: &hdrhistogram::Histogram<u64>| {
            a.add(b).map_err(|e| LoadError::Histogram(format!("{e:?}")))
        };
        add(&mut self.corrected, &o.corrected)?;
        add(&mut self.uncorrected, &o.uncorrected)?;
        add(&mut self.dispatch_lag, &o.dispatch_lag)?;
        add(&mut self.join, &o.join)?;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.member_min = self.member_min.min(o.member_min);
        self.member_max = self.member_max.max(o.member_max);
        self.members_short += o.members_short;
        self.members_lost += o.members_lost;
        self.connect_errors += o.connect_errors;
        self.closed_early += o.closed_early;
        self.error_lines += o.error_lines;
        self.bad_lines += o.bad_lines;
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        // The reason, rather than another thread's echo of it.
        if self.setup_failure.as_deref().is_none_or(|why| why == engine::OTHER_THREAD_FAILED)
            && o.setup_failure.is_some()
        {
            self.setup_failure.clone_from(&o.setup_failure);
        }
        self.setup_ns = self.setup_ns.max(o.setup_ns);
        self.notices += o.notices;
        self.window_ns = self.window_ns.max(o.window_ns);
        self.drain_ns = self.drain_ns.max(o.drain_ns);
        self.cpu_user_ns += o.cpu_user_ns;
        self.cpu_sys_ns += o.cpu_sys_ns;
        self.cpu_wait_ns += o.cpu_wait_ns;
        self.threads += o.threads;
        Ok(())
    }
}
