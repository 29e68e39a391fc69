//! The c10k load generator: `c10k load`.
//!
//! Thousands of connections from a few event-loop threads, closed loop or open
//! loop (fixed rate, coordinated-omission corrected), every latency in an
//! HdrHistogram, every error counted by kind, a report in JSON.
//!
//! # Layout
//!
//! - [`chat`]: `--proto chat`: a chat room's members, its own loop and report.
//! - [`cli`]: the `c10k load` arguments, validated once into a [`config::Config`].
//! - [`config`]: the validated configuration and how connections are shared out.
//! - [`schedule`]: when a connection sends: closed loop or open loop, the one
//!   parameter of the request loop.
//! - [`plan`]: what a process's threads share (window, request bytes, the gate).
//! - [`engine`]: one mio event loop per thread: timers, connect window,
//!   housekeeping; [`io`] is its I/O half (connect, read, write, failures).
//! - [`conn`]: one connection slot's state and the answer framing (sans-IO).
//! - [`recorder`]: per-thread histograms, counters, errors and timeline; merges exactly.
//! - [`run`]: threads, progress line, merging; [`procs`]: the same over child processes.
//! - [`outcome`]: the merged measurements turned into a [`report::Report`], with the
//!   client self-check.
//! - [`report`]: the JSON schema (`--json`), read back by the bench runner.
//! - [`summary`]: the human text; [`hgrm`]: HdrHistogram percentile text; [`wire`]:
//!   histograms as hex (V2 serialization).
//! - [`env`](mod@env): limits, ports, kernel, CPU time; [`clock`]: monotonic nanoseconds;
//!   [`error`]: why a run could not be carried out.

pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn;
pub mod engine;
pub mod env;
pub mod error;
pub mod fairness;
pub mod hgrm;
pub mod io;
pub mod outcome;
pub mod plan;
pub mod procs;
pub mod recorder;
pub mod report;
pub mod run;
pub mod schedule;
pub mod summary;
pub mod wire;

pub use config::Config;
pub use error::LoadError;
pub use run::{run_config, Outcome};
