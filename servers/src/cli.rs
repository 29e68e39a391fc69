//! `c10k serve` and `c10k models`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use proto::{Proto, Work};

use crate::{models, net, stop, Backend, Config, Ctx, Knobs, Model, PoolKind, ServeError, Stats, Trigger};

/// Arguments of `c10k serve`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "On start-up the server prints one line on stdout once it accepts connections:\n  \
    listening 127.0.0.1:PORT model=NAME proto=http pid=N nofile=N [knobs...]\n\
    and on SIGINT/SIGTERM one line `stats {json}` with its counters before it exits.")]
pub struct ServeArgs {
    /// The concurrency model (see `c10k models`).
    #[arg(long, value_enum)]
    pub model: Model,
    /// Application protocol. `chat` runs only on models that share one room
    /// between their connections (`c10k models`, column chat); the others
    /// refuse to start, with the reason.
    #[arg(long, value_enum, default_value_t = Proto::Http)]
    pub proto: Proto,
    /// Address to listen on; port 0 picks a free port (printed in the ready line).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Spin this many microseconds of CPU per request.
    #[arg(long, default_value_t = 0, value_name = "US")]
    pub cpu_us: u64,
    /// Sleep this many microseconds in a blocking call per request.
    #[arg(long, default_value_t = 0, value_name = "US")]
    pub block_us: u64,
    /// Event-loop threads (multi-reactor, multi-reactor-pool, tokio, uring; default: CPUs).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Worker threads (pool, reactor-pool, multi-reactor-pool; default: 64).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Connections queued for the pool's workers before the acceptor blocks (pool; default: 1024).
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Stack size of each spawned thread (thread, pool, prefork, reactor-task, reactor-conn-thread;
    /// default: Rust's, 2048).
    #[arg(long, value_name = "KIB")]
    pub thread_stack_kib: Option<usize>,
    /// Processes (prefork, reuseport; default: CPUs). tokio: a runtime per process, each on its own
    /// SO_REUSEPORT listener (default: 1).
    #[arg(long, value_name = "N")]
    pub procs: Option<usize>,
    /// Threads per process, each blocking in accept (prefork; default: 1).
    #[arg(long, value_name = "N")]
    pub threads_per_proc: Option<usize>,
    /// Readiness back end (reactor; default: epoll).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// epoll trigger mode (reactor with epoll; default: edge).
    #[arg(long, value_enum)]
    pub trigger: Option<Trigger>,
    /// One listener inherited by every process instead of SO_REUSEPORT (reuseport).
    #[arg(long)]
    pub shared_listener: bool,
    /// Scheduler ticks between checks of the runtime's global task queue (tokio; default:
    /// tokio's own, self-tuning). 1 serves tasks in the order they were woken.
    #[arg(long, value_name = "TICKS")]
    pub global_queue_interval: Option<u32>,
    /// The worker pool (reactor-pool, multi-reactor-pool; default: crossbeam): one
    /// shared crossbeam queue, or rayon's work-stealing `ThreadPool::spawn`.
    #[arg(long, value_enum)]
    pub pool: Option<PoolKind>,
    /// Close a connection on which nothing moved (no byte read or written) for this
    /// long, e.g. 30s (every model; counted as `idle_timeouts`). Reactors keep one
    /// timing wheel per event loop, blocking models socket timeouts, tokio its timer.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose request head is not complete this long after its
    /// first byte, e.g. 10s: slowloris (every model, --proto http; counted as
    /// `header_timeouts`).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub header_timeout: Option<Duration>,
}

impl ServeArgs {
    /// Turn the raw arguments into a validated configuration.
    pub fn config(&self) -> Result<Config, ServeError> {
        let knobs = Knobs {
            threads: self.threads,
            workers: self.workers,
            queue: self.queue,
            thread_stack_kib: self.thread_stack_kib,
            procs: self.procs,
            threads_per_proc: self.threads_per_proc,
            backend: self.backend,
            trigger: self.trigger,
            shared_listener: self.shared_listener,
            global_queue_interval: self.global_queue_interval,
            pool: self.pool,
            idle_timeout: self.idle_timeout,
            header_timeout: self.header_timeout,
        };
        Config::new(self.model, self.proto, self.addr, Work::from_micros(self.cpu_us, self.block_us), knobs)
    }
}

/// Run `c10k serve` until SIGINT/SIGTERM, then print the stats line.
pub fn run(args: ServeArgs) -> Result<ExitCode, ServeError> {
    let config = args.config()?;
    let nofile = net::raise_nofile().map_err(ServeError::io("raise RLIMIT_NOFILE"))?;
    stop::install_handlers().map_err(ServeError::io("install signal handlers"))?;
    let ctx = Ctx::new(config, nofile);
    models::run(&ctx)?;
    let snapshot = Stats::shared().snapshot();
    let json = serde_json::to_string(&snapshot).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "stats {json}");
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

/// Print every model: name, id in the documents, the knobs it takes, whether
/// it serves `--proto chat`, and its trade-off; then how each shares the chat room.
pub fn print_models() {
    println!("{:<19} {:<4} {:<44} {:<5} trade-off", "model", "id", "knobs", "chat");
    for model in Model::ALL {
        let knobs: Vec<_> = model.knobs().iter().map(|k| k.flag()).collect();
        let chat = if model.info().chat.is_shared() { "yes" } else { "no" };
        println!("{:<19} {:<4} {:<44} {:<5} {}", model.name(), model.id(), knobs.join(" "), chat, model.tradeoff());
    }
    println!("\n--proto chat, model by model:");
    for model in Model::ALL {
        println!("  {:<19} {}", model.name(), model.info().chat.text());
    }
}
