//! MN in several processes (`--model tokio --procs N`): N processes, each a
//! tokio runtime of `--threads` workers with its own SO_REUSEPORT listener on
//! the one port, forked before any runtime exists and supervised like the
//! workers of M10 ([`super::reuseport`]).
//!
//! Why it exists: one process holds at most RLIMIT_NOFILE descriptors, and on
//! a machine whose hard limit cannot be raised (20,000 on the one the C1M
//! experiment ran on) a single tokio process stops near 20,000 connections
//! whatever its cost per connection. The documents' T3 rows (Go goroutines
//! ~100,000, Rust async ~1,000,000 connections) are about what a task per
//! connection costs, so the C1M experiment holds them in as few such
//! processes as the limit allows. Inside each process the model is unchanged:
//! a task per connection over epoll, tokio's scheduler, the same protocol
//! code; between processes nothing is shared but the counters and the port,
//! and the kernel hashes each new connection to one listener (balance by
//! hash, not by load, as for `reuseport`). With `--procs 1` (the default) the
//! model is the single process of [`super::tokio`].
//!
//! Workers keep default signal dispositions and end with the parent's
//! SIGTERM, as reuseport's do.

use std::os::fd::AsRawFd;

use super::supervisor::supervise;
use crate::{net, Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let addr = ctx.config.addr;
    // The parent reserves the port (bound, never listening) so that with port 0
    // every worker's listener shares the one it picked.
    let reserved = net::bound_socket(addr, true).map_err(|source| ServeError::Listen { addr, source })?;
    let addr = reserved
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| ServeError::Config(format!("cannot tell the port bound for {addr}")))?;
    supervise(ctx, addr, &[reserved.as_raw_fd()], |ready| {
        let own = net::listen(addr, true).map_err(|source| ServeError::Listen { addr, source })?;
        // The runtime is built here, in the forked worker: no thread exists before the fork.
        super::tokio::serve_on(ctx, own, || ready.signal())
    })
}
