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
//! (claims C3, C11).
//!
//! Chat (`--proto chat`): the loop owns the room ([`crate::chat::hub`] with one
//! inbox, behind a lock no other thread takes); a member's command is served
//! as soon as its line is read, and what it sends goes through the loop's
//! inbox to its members' outboxes, each written once at the end of the turn.
//!
//! `--backend poll|select` and `--trigger level` swap only the readiness back
//! end under the same loop (SEL; claims C12, T4):
//!
//! - `epoll`, `--trigger edge` (default): mio; each connection registered once
//!   for both directions, never re-registered.
//! - `epoll --trigger level`: [`EpollLevel`]; O(ready) waits like edge mode,
//!   plus an `epoll_ctl` whenever a connection's wants change.
//! - `poll`: [`PollPoller`]; every wait passes and scans every watched
//!   descriptor, O(n) in idle connections too.
//! - `select`: [`SelectPoller`]; O(highest descriptor) per wait, and a
//!   connection whose descriptor is 1024 or more is refused (closed, counted in
//!   `rejected`, warned about) while the others go on being served.

use std::net::TcpListener;

use crate::event_loop::{EventLoop, Source};
use crate::poller::{EpollLevel, MioPoller, PollPoller, Poller, SelectPoller};
use crate::{Backend, Ctx, ServeError, Trigger};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    match (ctx.config.backend, ctx.config.trigger) {
        (Backend::Epoll, Trigger::Edge) => {
            serve(ctx, listener, MioPoller::new().map_err(ServeError::io("create epoll instance"))?)
        }
        (Backend::Epoll, Trigger::Level) => {
            serve(ctx, listener, EpollLevel::new().map_err(ServeError::io("create epoll instance"))?)
        }
        (Backend::Poll, _) => serve(ctx, listener, PollPoller::new()),
        (Backend::Select, _) => serve(ctx, listener, SelectPoller::new()),
    }
}

fn serve<P: Poller>(ctx: &Ctx, listener: TcpListener, poller: P) -> Result<(), ServeError> {
    let addr = Ctx::local_addr(&listener)?;
    let source = Source::Listener(mio::net::TcpListener::from_std(listener));
    let chat = crate::chat::reactor::links(ctx, vec![crate::chat::hub::Wake::Nothing], None)?.pop().flatten();
    let mut event_loop =
        EventLoop::new(poller, source, ctx.shared).map_err(ServeError::io("register listener"))?.with_chat(chat);
    ctx.ready(addr);
    event_loop.run().map_err(ServeError::io("event loop"))
}
