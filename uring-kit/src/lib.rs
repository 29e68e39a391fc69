//! The io_uring parts that both sides of c10k use: the `uring` server model
//! (`servers/src/models/uring`) and the load generator's `--engine uring`
//! (`loadgen/src/engine/uring.rs`). Each thread owns one [`Queue`] (a ring,
//! the submissions it has not taken yet, the requests still in flight) and one
//! [`Buffers`] pool that the kernel picks receive buffers from.
//!
//! Written once here so that the server and the client make the same
//! choices (task-running mode, buffer rings where the kernel has them,
//! `PROVIDE_BUFFERS` where it does not) and a fix reaches both.
//!
//! # Layout
//!
//! - [`queue`]: the ring and its submissions.
//! - [`buffers`]: the provided-buffer pool (buffer ring or `PROVIDE_BUFFERS`).
//! - [`probe`](mod@probe): can the kernel run io_uring with the operations needed?

pub mod buffers;
pub mod probe;
pub mod queue;

pub use buffers::{Buffers, Pool};
pub use probe::probe;
pub use queue::Queue;
