//! M8, a single reactor + a worker thread pool (001 §四.4.1; 004 §5.8;
//! 000 模型 2; 002 §4.1.5).
//!
//! One thread owns every socket: it waits in epoll, reads until `WouldBlock`
//! and frames complete requests, but does not answer them. Each connection's
//! framed requests go as one batch to a pool of `--workers` threads, which do
//! the request's work, encode the answers and post them back through a
//! channel, waking the reactor's epoll; the reactor then writes them. A
//! connection has at most one batch out, so answers keep request order.
//!
//! Chat (`--proto chat`): the reactor frames each member's lines into
//! commands and hands them to the pool (one batch per member at a time, so in
//! order); a worker serves them against the one `Mutex<Room>` and posts what
//! they send to the reactor's inbox, a channel, waking it with the same mio
//! `Waker`; the reactor then writes the lines to its members.
//!
//! Slow handlers no longer stall the event loop (claims C3, C7), but every
//! request now crosses threads twice: for cheap handlers the hand-offs, wake-ups
//! and cache misses cost more than the work (claim C6), and the lone I/O thread
//! still bounds throughput.
//!
//! `--pool crossbeam` (default) runs the workers on one shared crossbeam
//! queue; `--pool rayon` on rayon's work-stealing pool, same `--workers`
//! (see [`crate::work_pool`] for what that changes and what it does not).

use std::sync::Arc;

use crate::event_loop::{EventLoop, Source, WAKER};
use crate::poller::MioPoller;
use crate::{work_pool, Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    let addr = Ctx::local_addr(&listener)?;
    let poller = MioPoller::new().map_err(ServeError::io("create epoll instance"))?;
    let waker = Arc::new(poller.waker(WAKER).map_err(ServeError::io("create waker"))?);
    let chat = (ctx.config.proto == proto::Proto::Chat).then(|| Arc::clone(&waker));
    let (link, chat) = match chat {
        Some(waker) => {
            let wakes = vec![crate::chat::hub::Wake::Mio(waker)];
            (None, crate::chat::reactor::links(ctx, wakes, Some(ctx.config.workers))?.pop().flatten())
        }
        None => (
            work_pool::start(ctx.config.pool, ctx.config.workers, ctx.shared.work, &[waker])
                .map_err(ServeError::io("spawn pool worker"))?
                .pop(),
            None,
        ),
    };
    let source = Source::Listener(mio::net::TcpListener::from_std(listener));
    let mut event_loop = EventLoop::new(poller, source, ctx.shared)
        .map_err(ServeError::io("register listener"))?
        .with_pool(link)
        .with_chat(chat);
    ctx.ready(addr);
    event_loop.run().map_err(ServeError::io("event loop"))
}
