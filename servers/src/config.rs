//! A validated server configuration: every knob resolved to a value, and every
//! knob given on the command line checked to mean something for the model.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use proto::{Proto, Work};

use crate::timeouts::Timeouts;
use crate::{Model, ServeError};

/// The readiness back end of the single reactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Epoll,
    Poll,
    Select,
}

/// Edge- or level-triggered epoll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Edge,
    Level,
}

/// How the reactor + pool models run their workers (`--pool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// `--workers` threads taking jobs from one shared crossbeam channel.
    Crossbeam,
    /// rayon's work-stealing pool of `--workers` threads (`ThreadPool::spawn`).
    Rayon,
}

/// A command-line knob some models take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Knob {
    Threads,
    Workers,
    Queue,
    ThreadStack,
    Procs,
    ThreadsPerProc,
    Backend,
    Trigger,
    SharedListener,
    GlobalQueueInterval,
    Pool,
}

impl Knob {
    pub fn flag(self) -> &'static str {
        match self {
            Knob::Threads => "--threads",
            Knob::Workers => "--workers",
            Knob::Queue => "--queue",
            Knob::ThreadStack => "--thread-stack-kib",
            Knob::Procs => "--procs",
            Knob::ThreadsPerProc => "--threads-per-proc",
            Knob::Backend => "--backend",
            Knob::Trigger => "--trigger",
            Knob::SharedListener => "--shared-listener",
            Knob::GlobalQueueInterval => "--global-queue-interval",
            Knob::Pool => "--pool",
        }
    }
}

/// Default pool size for the models with worker threads.
pub const DEFAULT_WORKERS: usize = 64;
/// Default capacity of the pool's connection queue.
pub const DEFAULT_QUEUE: usize = 1024;

/// Everything a model needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    pub model: Model,
    pub proto: Proto,
    pub addr: SocketAddr,
    pub work: Work,
    /// Event-loop threads (multi-reactor, tokio, uring). Default: CPUs.
    pub threads: usize,
    /// Worker threads of a pool. Default: [`DEFAULT_WORKERS`].
    pub workers: usize,
    /// Connections the pool's queue holds before the acceptor blocks.
    pub queue: usize,
    /// Stack size of spawned threads in bytes; `None` is Rust's default.
    pub thread_stack: Option<usize>,
    /// Processes (prefork, reuseport: default CPUs; tokio: default 1, a runtime per process).
    pub procs: usize,
    /// Threads per prefork process.
    pub threads_per_proc: usize,
    pub backend: Backend,
    pub trigger: Trigger,
    pub shared_listener: bool,
    /// tokio's global queue interval; `None` is tokio's default (self-tuning).
    pub global_queue_interval: Option<u32>,
    /// The worker pool of reactor-pool and multi-reactor-pool.
    pub pool: PoolKind,
    /// `--idle-timeout` and `--header-timeout` (every model).
    pub timeouts: Timeouts,
}

/// Knob values as given; `None` where not given.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    pub threads: Option<usize>,
    pub workers: Option<usize>,
    pub queue: Option<usize>,
    pub thread_stack_kib: Option<usize>,
    pub procs: Option<usize>,
    pub threads_per_proc: Option<usize>,
    pub backend: Option<Backend>,
    pub trigger: Option<Trigger>,
    pub shared_listener: bool,
    pub global_queue_interval: Option<u32>,
    pub pool: Option<PoolKind>,
    /// Every model takes these two (not [`Knob`]s): close a connection silent
    /// this long, or whose request head is incomplete this long.
    pub idle_timeout: Option<Duration>,
    pub header_timeout: Option<Duration>,
}

impl Config {
    /// Validate `knobs` against `model` and fill in defaults.
    pub fn new(model: Model, proto: Proto, addr: SocketAddr, work: Work, knobs: Knobs) -> Result<Config, ServeError> {
        let given = [
            (Knob::Threads, knobs.threads.is_some()),
            (Knob::Workers, knobs.workers.is_some()),
            (Knob::Queue, knobs.queue.is_some()),
            (Knob::ThreadStack, knobs.thread_stack_kib.is_some()),
            (Knob::Procs, knobs.procs.is_some()),
            (Knob::ThreadsPerProc, knobs.threads_per_proc.is_some()),
            (Knob::Backend, knobs.backend.is_some()),
            (Knob::Trigger, knobs.trigger.is_some()),
            (Knob::SharedListener, knobs.shared_listener),
            (Knob::GlobalQueueInterval, knobs.global_queue_interval.is_some()),
            (Knob::Pool, knobs.pool.is_some()),
        ];
        for (knob, present) in given {
            if present && !model.knobs().contains(&knob) {
                let takes: Vec<_> = model.knobs().iter().map(|k| k.flag()).collect();
                let takes = if takes.is_empty() { "none".to_string() } else { takes.join(", ") };
                return Err(ServeError::Config(format!(
                    "{} does not apply to --model {model} (it takes: {takes})",
                    knob.flag()
                )));
            }
        }
        for (flag, value) in [
            ("--threads", knobs.threads),
            ("--workers", knobs.workers),
            ("--queue", knobs.queue),
            ("--procs", knobs.procs),
            ("--threads-per-proc", knobs.threads_per_proc),
            ("--thread-stack-kib", knobs.thread_stack_kib),
        ] {
            if value == Some(0) {
                return Err(ServeError::Config(format!("{flag} must be at least 1")));
            }
        }
        for (flag, value) in [("--idle-timeout", knobs.idle_timeout), ("--header-timeout", knobs.header_timeout)] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(ServeError::Config(format!("{flag} must be longer than zero")));
            }
        }
        if knobs.header_timeout.is_some() && proto == Proto::Echo {
            return Err(ServeError::Config(
                "--header-timeout applies to --proto http: echo has no request head (every byte is a request)".into(),
            ));
        }
        if knobs.global_queue_interval == Some(0) {
            return Err(ServeError::Config("--global-queue-interval must be at least 1".into()));
        }
        if let (Proto::Chat, crate::chat::ChatRoom::Refused(reason)) = (proto, model.info().chat) {
            return Err(ServeError::Config(format!("--proto chat is not served by --model {model}: {reason}")));
        }
        let backend = knobs.backend.unwrap_or(Backend::Epoll);
        if knobs.trigger.is_some() && backend != Backend::Epoll {
            return Err(ServeError::Config(format!(
                "--trigger applies to the epoll back end only; {} is level-triggered by nature",
                format!("{backend:?}").to_lowercase()
            )));
        }
        if knobs.threads_per_proc.is_none() && knobs.thread_stack_kib.is_some() && model == Model::Prefork {
            return Err(ServeError::Config("--thread-stack-kib applies to prefork with --threads-per-proc".into()));
        }
        let thread_stack = match knobs.thread_stack_kib {
            Some(kib) => {
                Some(kib.checked_mul(1024).ok_or_else(|| ServeError::Config("--thread-stack-kib too large".into()))?)
            }
            None => None,
        };
        Ok(Config {
            model,
            proto,
            addr,
            work,
            threads: knobs.threads.unwrap_or_else(crate::net::cpus),
            workers: knobs.workers.unwrap_or(DEFAULT_WORKERS),
            queue: knobs.queue.unwrap_or(DEFAULT_QUEUE),
            thread_stack,
            // tokio is one process unless asked (`--procs`, see models/tokio_procs.rs).
            procs: knobs.procs.unwrap_or_else(|| if model == Model::Tokio { 1 } else { crate::net::cpus() }),
            threads_per_proc: knobs.threads_per_proc.unwrap_or(1),
            backend,
            trigger: knobs.trigger.unwrap_or(Trigger::Edge),
            shared_listener: knobs.shared_listener,
            global_queue_interval: knobs.global_queue_interval,
            pool: knobs.pool.unwrap_or(PoolKind::Crossbeam),
            timeouts: Timeouts { idle: knobs.idle_timeout, header: knobs.header_timeout },
        })
    }

    /// A default configuration for `model` (tests, examples).
    pub fn for_model(model: Model, proto: Proto) -> Config {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Config::new(model, proto, addr, Work::default(), Knobs::default()).expect("defaults are valid")
    }

    /// The model's resolved knobs as `key=value` pairs, for the ready line.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for knob in self.model.knobs() {
            let _ = match knob {
                Knob::Threads => write!(out, " threads={}", self.threads),
                Knob::Workers => write!(out, " workers={}", self.workers),
                Knob::Queue => write!(out, " queue={}", self.queue),
                // A prefork worker with one thread serves on its main thread.
                Knob::ThreadStack if self.model == Model::Prefork && self.threads_per_proc == 1 => Ok(()),
                Knob::ThreadStack => {
                    write!(out, " stack_kib={}", self.thread_stack.map_or_else(default_stack_kib, |b| b / 1024))
                }
                Knob::Procs => write!(out, " procs={}", self.procs),
                Knob::ThreadsPerProc => write!(out, " threads_per_proc={}", self.threads_per_proc),
                Knob::Backend => write!(out, " backend={}", format!("{:?}", self.backend).to_lowercase()),
                Knob::Trigger if self.backend == Backend::Epoll => {
                    write!(out, " trigger={}", format!("{:?}", self.trigger).to_lowercase())
                }
                Knob::Trigger => Ok(()),
                Knob::SharedListener => {
                    write!(out, " listener={}", if self.shared_listener { "shared" } else { "reuseport" })
                }
                Knob::GlobalQueueInterval => match self.global_queue_interval {
                    Some(n) => write!(out, " global_queue_interval={n}"),
                    None => write!(out, " global_queue_interval=auto"),
                },
                Knob::Pool => write!(out, " pool={}", format!("{:?}", self.pool).to_lowercase()),
            };
        }
        if let Some(d) = self.timeouts.idle {
            let _ = write!(out, " idle_timeout={}", humantime::format_duration(d));
        }
        if let Some(d) = self.timeouts.header {
            let _ = write!(out, " header_timeout={}", humantime::format_duration(d));
        }
        if !self.work.cpu.is_zero() {
            let _ = write!(out, " cpu_us={}", self.work.cpu.as_micros());
        }
        if !self.work.block.is_zero() {
            let _ = write!(out, " block_us={}", self.work.block.as_micros());
        }
        out
    }
}

/// Rust's default spawned-thread stack (2 MiB unless `RUST_MIN_STACK` says otherwise), in KiB.
fn default_stack_kib() -> usize {
    std::env::var("RUST_MIN_STACK").ok().and_then(|v| v.parse::<usize>().ok()).map_or(2048, |b| b / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(model: Model, knobs: Knobs) -> Result<Config, ServeError> {
        Config::new(model, Proto::Http, "127.0.0.1:0".parse().unwrap(), Work::default(), knobs)
    }

    #[test]
    fn inapplicable_knob_is_refused() {
        let err = config(Model::Thread, Knobs { workers: Some(4), ..Knobs::default() }).unwrap_err();
        assert!(err.to_string().contains("--workers does not apply to --model thread"), "{err}");
        let err = config(Model::Iterative, Knobs { threads: Some(2), ..Knobs::default() }).unwrap_err();
        assert!(err.to_string().contains("it takes: none"), "{err}");
    }

    #[test]
    fn global_queue_interval_is_tokio_only_and_described() {
        let err = config(Model::Reactor, Knobs { global_queue_interval: Some(1), ..Knobs::default() }).unwrap_err();
        assert!(err.to_string().contains("--global-queue-interval does not apply to --model reactor"), "{err}");
        assert!(config(Model::Tokio, Knobs { global_queue_interval: Some(0), ..Knobs::default() }).is_err());
        let set = config(Model::Tokio, Knobs { global_queue_interval: Some(1), ..Knobs::default() }).unwrap();
        assert!(set.describe().contains(" global_queue_interval=1"), "{}", set.describe());
        let default = config(Model::Tokio, Knobs::default()).unwrap();
        assert!(default.describe().contains(" global_queue_interval=auto"), "{}", default.describe());
    }

    #[test]
    fn tokio_is_one_process_unless_asked() {
        assert_eq!(config(Model::Tokio, Knobs::default()).unwrap().procs, 1);
        let many = config(Model::Tokio, Knobs { procs: Some(3), ..Knobs::default() }).unwrap();
        assert!(many.describe().contains(" procs=3"), "{}", many.describe());
        assert!(config(Model::MultiReactor, Knobs { procs: Some(3), ..Knobs::default() }).is_err());
    }

    #[test]
    fn pool_kind_is_for_the_pool_models_and_shown() {
        let err = config(Model::Pool, Knobs { pool: Some(PoolKind::Rayon), ..Knobs::default() }).unwrap_err();
        assert!(err.to_string().contains("--pool does not apply to --model pool"), "{err}");
        for model in [Model::ReactorPool, Model::MultiReactorPool] {
            let c = config(model, Knobs { pool: Some(PoolKind::Rayon), ..Knobs::default() }).unwrap();
            assert!(c.describe().contains(" workers=64") && c.describe().contains(" pool=rayon"), "{}", c.describe());
            assert!(config(model, Knobs::default()).unwrap().describe().contains(" pool=crossbeam"));
        }
    }

    #[test]
    fn timeouts_apply_to_every_model_and_are_shown() {
        let knobs = || Knobs {
            idle_timeout: Some(Duration::from_secs(5)),
            header_timeout: Some(Duration::from_millis(1500)),
            ..Knobs::default()
        };
        for model in Model::ALL {
            let c = config(model, knobs()).unwrap();
            assert_eq!(c.timeouts.idle, Some(Duration::from_secs(5)));
            assert!(c.describe().ends_with(" idle_timeout=5s header_timeout=1s 500ms"), "{}", c.describe());
        }
        assert!(!config(Model::Reactor, Knobs::default()).unwrap().timeouts.any());
        let zero = Knobs { idle_timeout: Some(Duration::ZERO), ..Knobs::default() };
        assert!(config(Model::Thread, zero).unwrap_err().to_string().contains("--idle-timeout must be longer"));
        let echo = Config::new(Model::Reactor, Proto::Echo, "127.0.0.1:0".parse().unwrap(), Work::default(), knobs());
        assert!(echo.unwrap_err().to_string().contains("echo has no request head"));
        let echo_idle = Knobs { idle_timeout: Some(Duration::from_secs(1)), ..Knobs::default() };
        assert!(Config::new(Model::Reactor, Proto::Echo, "127.0.0.1:0".parse().unwrap(), Work::default(), echo_idle)
            .is_ok());
    }

    #[test]
    fn trigger_needs_epoll() {
        let knobs = Knobs { backend: Some(Backend::Poll), trigger: Some(Trigger::Level), ..Knobs::default() };
        assert!(config(Model::Reactor, knobs).is_err());
        let knobs = Knobs { trigger: Some(Trigger::Level), ..Knobs::default() };
        assert_eq!(config(Model::Reactor, knobs).unwrap().trigger, Trigger::Level);
    }

    #[test]
    fn zero_is_refused_and_defaults_fill_in() {
        assert!(config(Model::Pool, Knobs { workers: Some(0), ..Knobs::default() }).is_err());
        let c = config(Model::Pool, Knobs::default()).unwrap();
        assert_eq!((c.workers, c.queue), (DEFAULT_WORKERS, DEFAULT_QUEUE));
        assert!(c.describe().contains(" workers=64 queue=1024 stack_kib="), "{}", c.describe());
    }
}
