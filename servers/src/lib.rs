//! One TCP server per concurrency model, all speaking the same [`proto`].
//!
//! A model differs from another only in how it schedules connections: who
//! blocks where, how many threads or processes exist, how readiness is learnt.
//! Parsing, buffer sizes, answers and the simulated work are [`proto`]'s.
//!
//! # Layout
//!
//! - [`model`]: the [`Model`] enum: names, document ids, trade-offs.
//! - [`config`]: a validated [`Config`]; knobs a model does not take are refused.
//! - [`cli`]: `c10k serve` arguments, the ready line and the exit stats line.
//! - [`net`]: the listener (SO_REUSEADDR, somaxconn backlog), RLIMIT_NOFILE,
//!   and the accept-error policy (back off on EMFILE/ENFILE, never spin).
//! - [`stop`]: SIGINT/SIGTERM handling that wakes every accept loop.
//! - [`stats`]: counters in shared memory, valid across `fork`.
//! - [`blocking`]: serve one connection to the end with blocking calls.
//! - [`conn`], [`poller`], [`event_loop`]: the non-blocking connection, the
//!   readiness back ends, and the reactor loop built from them.
//! - [`dispatch`]: where a reactor hands the requests it does not answer
//!   itself (a pool, a thread per request, a thread per connection), and the
//!   mailbox the answers come back through.
//! - [`work_pool`]: the worker pool of the reactor + pool models.
//! - [`timeouts`]: `--idle-timeout` and `--header-timeout`, and the timing
//!   wheel every event loop keeps for them.
//! - [`chat`]: the chat room (`--proto chat`) and how each model shares it.
//! - [`models`]: one file per model, each a few dozen to a few hundred lines.

pub mod blocking;
pub mod chat;
pub mod cli;
pub mod config;
pub mod conn;
pub mod dispatch;
pub mod event_loop;
pub mod model;
pub mod models;
pub mod net;
pub mod poller;
pub mod stats;
pub mod stop;
pub mod timeouts;
pub mod work_pool;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use config::{Backend, Config, Knobs, PoolKind, Trigger};
pub use model::Model;
pub use stats::{Stats, StatsSnapshot};

/// Why a server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
    #[error("model {model} cannot run here: {reason}")]
    Unsupported { model: Model, reason: String },
}

impl ServeError {
    pub fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ServeError {
        move |source| ServeError::Io { what, source }
    }
}

/// What every connection handler needs; cheap to copy into threads and children.
#[derive(Clone, Copy, Debug)]
pub struct Shared {
    pub proto: proto::Proto,
    pub work: proto::Work,
    pub stats: &'static Stats,
    pub timeouts: timeouts::Timeouts,
}

/// A model's view of the server being started.
pub struct Ctx {
    pub config: Config,
    pub shared: Shared,
    /// RLIMIT_NOFILE after raising it.
    pub nofile: u64,
}

impl Ctx {
    pub fn new(config: Config, nofile: u64) -> Ctx {
        let shared =
            Shared { proto: config.proto, work: config.work, stats: Stats::shared(), timeouts: config.timeouts };
        Ctx { config, shared, nofile }
    }

    /// Bind the configured address and listen, watched for stop requests.
    pub fn listen(&self) -> Result<TcpListener, ServeError> {
        let addr = self.config.addr;
        let listener = net::listen(addr, false).map_err(|source| ServeError::Listen { addr, source })?;
        stop::watch(listener.as_raw_fd()).map_err(ServeError::io("watch listener"))?;
        Ok(listener)
    }

    /// Print the ready line: the server accepts connections on `addr` from now on.
    pub fn ready(&self, addr: SocketAddr) {
        let c = &self.config;
        let line = format!(
            "listening {addr} model={} proto={} pid={} nofile={}{}",
            c.model,
            c.proto,
            std::process::id(),
            self.nofile,
            c.describe()
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// The local address of `listener`.
    pub fn local_addr(listener: &TcpListener) -> Result<SocketAddr, ServeError> {
        listener.local_addr().map_err(ServeError::io("listener address"))
    }
}

/// Print `message` to stderr at most once a second, saying how many were skipped.
pub fn warn_rate_limited(message: &str) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    static SKIPPED: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now != last && LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        let skipped = SKIPPED.swap(0, Ordering::Relaxed);
        if skipped > 0 {
            eprintln!("c10k serve: warning: {message} ({skipped} similar warnings skipped)");
        } else {
            eprintln!("c10k serve: warning: {message}");
        }
    } else {
        SKIPPED.fetch_add(1, Ordering::Relaxed);
    }
}
