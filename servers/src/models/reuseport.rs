//! M10, reactors in processes (004 §5.9; 003 §6.1 Nginx; 002 §3.1
//! SO_REUSEPORT): Nginx's master and worker processes.
//!
//! The parent forks `--procs` workers before any thread exists and only
//! supervises them (the arbiter of [`super::prefork`]: replaces dead workers,
//! counts failed forks, stops them all on SIGINT/SIGTERM). Each worker is a
//! single-threaded reactor, the loop of M5 over mio's edge-triggered epoll,
//! with its own connections: nothing is shared between processes but the
//! counters, so there are no locks, a crash loses one worker's connections,
//! and the cores are used without threads. A slow handler stalls only its own
//! process's connections.
//!
//! Where connections come from is the point of comparison (claim C10):
//!
//! - default, SO_REUSEPORT (`listener=reuseport`): every worker binds its own
//!   listener to the same port; the kernel hashes each new connection to one
//!   of them, so exactly one process wakes per connection. The parent reserves
//!   the port first (a bound socket that never listens) so that with port 0
//!   all workers share the one it picked. The balance is by hash, not by
//!   load, and connections queued on a worker that dies are reset.
//! - `--shared-listener`: the parent listens once and every worker registers
//!   that one inherited socket in its own epoll, without EPOLLEXCLUSIVE. A new
//!   connection makes it ready in every epoll instance, so every idle worker
//!   wakes, one accepts and the rest find nothing: the thundering herd.
//!   Blocking `accept`, as prefork does, wakes one waiter only.
//!
//! Where the herd shows: `epoll_wait` re-checks a ready item before it
//! returns, so a worker that lost the race usually goes back to sleep inside
//! the kernel, having cost a wake-up and a context switch but returned
//! nothing. The stats line (`listener_wakeups`, `accept_would_block`, against
//! `accepted`) counts only the losers that got as far as user space; the full
//! herd is in the workers' `voluntary_ctxt_switches` (`/proc/PID/status`):
//! about one per worker per connection on a shared listener, one per
//! connection with SO_REUSEPORT or prefork.
//!
//! Workers keep default signal dispositions and are ended by the parent's
//! SIGTERM (a shutdown(2) of the shared listener by one worker's handler would
//! make its siblings fail before their own signal arrived).
//!
//! `--proto chat` is refused at start: the worker processes share nothing but
//! the counters, so each would hold a room of its own (sharing one honestly
//! would take shared memory or a broker process: another model).

use std::net::TcpListener;
use std::os::fd::AsRawFd;

use super::supervisor::{supervise, Ready};
use crate::event_loop::{EventLoop, Source};
use crate::poller::MioPoller;
use crate::{net, Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let addr = ctx.config.addr;
    let listen_error = |source| ServeError::Listen { addr, source };
    if ctx.config.shared_listener {
        let listener = net::listen(addr, false).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
        let addr = Ctx::local_addr(&listener)?;
        supervise(ctx, addr, &[], |ready| {
            let own = listener.try_clone().map_err(ServeError::io("listener"))?;
            worker(ctx, own, ready)
        })
    } else {
        let reserved = net::bound_socket(addr, true).map_err(listen_error)?;
        let addr = reserved
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| ServeError::Config(format!("cannot tell the port bound for {addr}")))?;
        supervise(ctx, addr, &[reserved.as_raw_fd()], |ready| {
            let own = net::listen(addr, true).map_err(|source| ServeError::Listen { addr, source })?;
            own.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
            worker(ctx, own, ready)
        })
    }
}

/// One worker process: a reactor over `listener` until the process is ended.
fn worker(ctx: &Ctx, listener: TcpListener, ready: Ready) -> Result<(), ServeError> {
    let poller = MioPoller::new().map_err(ServeError::io("create epoll instance"))?;
    let source = Source::Listener(mio::net::TcpListener::from_std(listener));
    let mut event_loop = EventLoop::new(poller, source, ctx.shared).map_err(ServeError::io("register listener"))?;
    ready.signal();
    event_loop.run().map_err(ServeError::io("event loop"))
}
