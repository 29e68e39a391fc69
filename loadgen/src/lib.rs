//! The c10k load generator: `c10k load`.
//!
//! Thousands of connections from a few event-loop threads, closed loop or open
//! loop (fixed rate, coordinated-omission corrected), every latency in an
//! HdrHistogram, every error counted by kind, a report in JSON.
//!
//! # Layout
//!
//! - [`chat`]: `--proto chat`: a chat room's members, its own loop and report.
//! - [`cli`]: the `c10k load` arguments, validated once into a [`config::Config`];
//!   [`target`]: the URL and the HTTP request (method, headers, body).
//! - [`config`]: the validated configuration and how connections are shared out;
//!   [`settings`]: its part the report echoes, defined once for both.
//! - [`schedule`]: when a connection sends: closed loop or open loop, the one
//!   parameter of the request loop.
//! - [`plan`]: what a process's threads share (window, request bytes, the gate).
//! - [`engine`]: one event loop per thread (connections, timers, window, recording)
//!   over an I/O back end: mio (epoll) or io_uring.
//! - [`conn`]: one connection slot's state and the answer framing (sans-IO).
//! - [`silent`]: `--silent-conns` and the connections the server closed on its own.
//! - [`recorder`]: per-thread histograms, counters, errors and timeline; merges exactly.
//! - [`ramp`]: `--conns FROM:TO:STEP`, steps up to the most connections within a bound.
//! - [`run`]: a run from configuration to report; [`threads`]: the event-loop threads of
//!   one process and the one join-and-merge; [`procs`]: the same over child processes;
//!   [`progress`]: the live line.
//! - [`outcome`]: the merged measurements turned into a [`json_report::Report`], with the
//!   client self-check.
//! - [`json_report`]: the JSON schema (`--json`), read back by the bench runner.
//! - [`hlog`]: `--hlog` interval logs (written with the hdrhistogram crate, read back
//!   and checked), [`intervals`]: their per-second histograms; [`merge`]: `c10k merge`.
//! - [`summary`]: the human text; [`hgrm`]: HdrHistogram percentile text; [`wire`]:
//!   histograms as hex (V2 serialization).
//! - [`env`](mod@env): limits, ports, kernel, CPU time; [`clock`]: monotonic nanoseconds;
//!   [`error`]: why a run could not be carried out.

pub mod chat;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod conn;
pub mod engine;
pub mod env;
pub mod error;
pub mod fairness;
pub mod hgrm;
pub mod hist;
pub mod hlog;
pub mod intervals;
pub mod json_report;
pub mod merge;
pub mod outcome;
pub mod plan;
pub mod procs;
pub mod progress;
pub mod ramp;
pub mod recorder;
pub mod run;
pub mod schedule;
pub mod settings;
pub mod silent;
pub mod summary;
pub mod target;
pub mod threads;
pub mod wire;

pub use config::Config;
pub use error::LoadError;
pub use run::{run_config, Outcome};
