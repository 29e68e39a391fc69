//! M5, the single reactor (001 §四.3; 004 §5.6; 002 §4.1.4), and the readiness
//! back ends compared in 002 §2 / 003 §4.1 (SEL).
//!
//! One thread, non-blocking sockets, one readiness loop: the listener and every
//! connection are registered with the poller (mio's edge-triggered epoll by
//! default), and the thread sleeps only in the poller. Each ready connection is
//! read until `WouldBlock`, its complete requests answered, and unwritten bytes
//! kept until WRITABLE. Idle connections cost a slab entry and a socket, no
//! thread; but the one thread runs every handler, so while one request computes
//! (`--cpu-us`) or blocks (`--block-us`) no other connection is served
//! (claims C3, C11). `--backend poll|select` and `--trigger level` swap only the
//! readiness back end under the same loop.

use crate::event_loop::{EventLoop, Source};
use crate::poller::MioPoller;
use crate::{Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    listener
        .set_nonblocking(true)
        .map_err(ServeError::io("non-blocking listener"))?;
    let addr = Ctx::local_addr(&listener)?;
    let source = Source::Listener(mio::net::TcpListener::from_std(listener));
    let poller = MioPoller::new().map_err(ServeError::io("create epoll instance"))?;
    let mut event_loop =
        EventLoop::new(poller, source, ctx.shared).map_err(ServeError::io("register listener"))?;
    ctx.ready(addr);
    event_loop.run().map_err(ServeError::io("event loop"))
}
