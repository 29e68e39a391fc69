//! M3, prefork (004 §5.4; 002 §4.1.3): Apache's prefork MPM and Gunicorn's
//! sync worker, or with `--threads-per-proc T` Gunicorn's gthread (the
//! documents' "3 processes x 4 threads" row of T1).
//!
//! The parent binds one listener, forks `--procs` workers *before* any thread
//! exists, and never accepts itself. Each worker blocks in `accept` on the
//! inherited listener, serves that one connection to the end with blocking
//! calls, and accepts again; with T threads per process each thread does so
//! (the main thread too, on the process stack; `--thread-stack-kib` sizes the
//! other T-1).
//! No fork per client, a crash costs only that worker's clients, and memory is
//! fixed; but at most `procs x threads` connections are served at once: with
//! every worker busy (an idle keep-alive client holds one for as long as it
//! stays connected) new clients wait in the listen backlog, served only as
//! workers free up. That is the model, not a fault: a client that connects
//! and sends nothing stalls exactly one worker.
//!
//! Thundering herd (claim C10): all workers block in `accept` on the same
//! socket, yet a new connection wakes exactly one of them, because Linux
//! queues blocking accepters as *exclusive* waiters (since 2.6). Readiness
//! waits on a shared listener are not exclusive; see [`super::reuseport`] with
//! `--shared-listener`, where one connection wakes every process. Blocked
//! accepters are invisible to the stats line; the evidence is the workers'
//! `voluntary_ctxt_switches` (`/proc/PID/status`), which stay at about one per
//! connection whatever `--procs`.
//!
//! The parent, single-threaded, is a small arbiter like Gunicorn's: it sleeps
//! in `ppoll` on a signalfd for SIGCHLD ([`super::supervisor`]), replaces a worker that dies (at most
//! one round of replacements per [`supervisor::RESPAWN_INTERVAL`], so a crashing worker
//! cannot fork-bomb), counts a failed `fork` in `spawn_failures` and retries
//! later (only if no worker at all can be forked at start does it exit, with
//! the reason), prints the ready line once every worker reported ready through a
//! pipe, and on SIGINT/SIGTERM terminates the workers (SIGTERM, then SIGKILL
//! after a grace period). Workers keep the default signal dispositions, so
//! SIGTERM ends them at once, and die with the parent (PR_SET_PDEATHSIG).
//!
//! `--proto chat` is refused at start: the workers share no memory and each
//! thread serves one connection at a time, so a room would be split.

use std::net::TcpListener;
use std::thread;

use super::supervisor::{self, exit_worker, Ready};
use crate::{blocking, net, Ctx, ServeError, Stats};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    // Not `ctx.listen()`: a parent that never accepts needs no stop watch, and
    // its shutdown(2) would make the workers' accept fail before their SIGTERM.
    let addr = ctx.config.addr;
    let listener = net::listen(addr, false).map_err(|source| ServeError::Listen { addr, source })?;
    let addr = Ctx::local_addr(&listener)?;
    supervisor::supervise(ctx, addr, &[], |ready| worker(ctx, &listener, ready))
}

/// A worker process: T-1 extra threads (`--thread-stack-kib`) and the main
/// thread, each accepting and serving one connection at a time. Never returns.
fn worker(ctx: &Ctx, listener: &TcpListener, ready: Ready) -> ! {
    let serve = || super::accept_loop(listener, ctx, |stream| blocking::serve(stream, &ctx.shared));
    thread::scope(|scope| {
        for i in 1..ctx.config.threads_per_proc {
            let mut builder = thread::Builder::new().name(format!("prefork-{i}"));
            if let Some(stack) = ctx.config.thread_stack {
                builder = builder.stack_size(stack);
            }
            // A fatal accept error concerns the shared listener, hence every
            // thread: whichever thread meets it ends the process.
            if let Err(e) = builder.spawn_scoped(scope, || exit_worker(serve())) {
                Stats::add(&ctx.shared.stats.spawn_failures, 1);
                crate::warn_rate_limited(&format!("worker cannot spawn thread {i}: {e}"));
            }
        }
        ready.signal();
        exit_worker(serve())
    })
}
