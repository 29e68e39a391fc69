//! C1M: up to 1,000,000 connections on one 2-core machine, and the documents'
//! tuning table (T5) measured in network namespaces (`c10k c1m`, `make bench-c1m`).
//!
//! Why an experiment of its own: a cell of the standard matrix is one server
//! process and one load process, and one process holds at most RLIMIT_NOFILE
//! descriptors (a hard 20,000 here that cannot be raised), so the idle ladder
//! stops at 19,000 connections. The documents' T3 rows go to 100,000 and
//! 1,000,000. Here every rung of the ladder (100,000, 300,000, 1,000,000) runs
//! as few server and load processes as the descriptor limit allows (a process
//! per [`record::C1mRun::conns_per_proc`] connections: fewer processes, less
//! scheduling on 2 cores), and three programs at once:
//!
//! - the server, in its own cgroup (its user-space and kernel memory, exactly);
//! - the *alive check*: `c10k load --procs P` opening every connection and then
//!   sending on each one request per [`plan::ALIVE_PERIOD`] on a fixed
//!   open-loop schedule, so its window holds exactly one request per
//!   connection: every connection answered in the window is proven alive;
//! - the *probe*: 100 closed-loop connections measuring latency meanwhile,
//!   reported beside the client's lateness (the alive check's dispatch lag),
//!   the load generators' run-queue wait and the server threads' run-queue wait
//!   (`/proc/<pid>/task/*/schedstat`), because 100 processes sharing 2 cores
//!   wait for a CPU and that, not the model, can set the latency.
//!
//! Both load generators share a second cgroup, so the client's half of the
//! kernel's memory is measured rather than assumed ([`fit`]). A step that falls
//! short names the limit that stopped it from counters and error kinds
//! ([`limits`]), never from a guess. T5 runs a server and its clients in a pair
//! of network namespaces joined by a veth pair, once with kernel defaults and
//! RLIMIT_NOFILE 1,024 and once with the documents' values written inside the
//! namespaces only ([`t5`], [`crate::netns`]).
//!
//! # Layout
//!
//! - [`plan`]: the settings, the steps and their command lines (pure).
//! - [`machine`]: `/proc` parsers and readers (meminfo, sockstat, netstat, schedstat).
//! - [`procs`]: starting and collecting the server and the load generators.
//! - [`step`]: one rung of the ladder, from `c10k serve` to its [`record::StepRecord`].
//! - [`t5`]: the namespace runs.
//! - [`record`]: the folder's files and reading them back.
//! - [`fit`], [`limits`]: memory per connection, and which limit stopped a step (pure).
//!
//! Outside this module, above it: [`crate::c1m_run`] (the `c10k c1m` command: budget,
//! progress, Ctrl-C), [`crate::c1m_report`] (the report's C1M section and plots) and
//! [`crate::verdicts::c1m`] (the T3/T5 rows); this module depends on none of them.

pub mod fit;
pub mod limits;
pub mod machine;
pub mod plan;
pub mod procs;
pub mod record;
pub mod step;
pub mod t5;

pub use plan::C1mConfig;
pub use record::C1mResults;
