//! Server keys, once: the labels under which a server configuration's cells are
//! stored and read back. A base configuration's key is its model's name, taken
//! from the `servers` registry (a renamed model renames its key here and in every
//! verdict that reads it); a variant's key is written here once, and
//! [`crate::matrix::variants`] builds the variant under the same constant.

use servers::Model;

pub const ITERATIVE: &str = Model::Iterative.name();
pub const FORK: &str = Model::Fork.name();
pub const THREAD: &str = Model::Thread.name();
pub const PREFORK: &str = Model::Prefork.name();
pub const POOL: &str = Model::Pool.name();
pub const REACTOR: &str = Model::Reactor.name();
pub const REACTOR_TASK: &str = Model::ReactorTask.name();
pub const REACTOR_CONN_THREAD: &str = Model::ReactorConnThread.name();
pub const REACTOR_POOL: &str = Model::ReactorPool.name();
pub const MULTI_REACTOR: &str = Model::MultiReactor.name();
pub const REUSEPORT: &str = Model::Reuseport.name();
pub const MULTI_REACTOR_POOL: &str = Model::MultiReactorPool.name();
pub const TOKIO: &str = Model::Tokio.name();
pub const URING: &str = Model::Uring.name();

pub const REACTOR_POLL: &str = "reactor-poll";
pub const REACTOR_SELECT: &str = "reactor-select";
pub const REACTOR_LEVEL: &str = "reactor-level";
pub const POOL_4: &str = "pool-4";
pub const REACTOR_POOL_4: &str = "reactor-pool-4";
pub const REUSEPORT_4: &str = "reuseport-4";
pub const REUSEPORT_SHARED_4: &str = "reuseport-shared-4";
pub const PREFORK_4: &str = "prefork-4";
pub const REACTOR_NOFILE1024: &str = "reactor-nofile1024";
/// T2: the pool with workers sized for the idle ladder's first step, beside its default.
pub const POOL_SIZED: &str = "pool-1000";
/// tokio with its global queue checked on every tick (`--global-queue-interval 1`), run
/// beside the default at 10,000 connections: what the one setting behind tokio's unfair
/// tail changes (a setting shown, not a model tuned; the main table keeps the default).
pub const TOKIO_FIFO: &str = "tokio-gq1";
/// reactor-pool and multi-reactor-pool with rayon's work-stealing pool (`--pool rayon`), beside
/// the shared crossbeam queue they use by default (C6: the hand-off's contention).
pub const REACTOR_POOL_RAYON: &str = "reactor-pool-rayon";
pub const MULTI_REACTOR_POOL_RAYON: &str = "multi-reactor-pool-rayon";
/// The pool with a worker for every member of the beyond profile's larger chat room
/// (a member holds a worker for its whole stay, as a keep-alive connection does).
pub const POOL_CHAT: &str = "pool-chat";
