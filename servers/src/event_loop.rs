//! The reactor loop shared by the single reactor (M5), the sub-reactors of the
//! multi-reactor (M9), the reactor processes (M10), and, with a [`Dispatch`],
//! the reactor + pool models (M8, M11) and the reactor + threads models (M6,
//! M7): one thread, one poller, non-blocking sockets, every connection driven
//! by [`Conn::drive`].
//!
//! With `--idle-timeout` or `--header-timeout` the loop keeps one timing
//! [`Wheel`] for all its connections: each readiness stamps the connection's
//! clock (no system call), the poller's wait ends at the next tick, and the
//! entries of the ticks that passed are re-checked and closed or moved on.
//!
//! With a [`ChatLink`] (`--proto chat`) the loop also serves its members'
//! commands and fans out what the room sends them, once per turn
//! ([`crate::chat::reactor`]).

use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use crossbeam_channel::Receiver;
use mio::net::{TcpListener, TcpStream};
use proto::{Session, READ_BUF_SIZE};
use slab::Slab;

use crate::chat::reactor::ChatLink;
use crate::conn::{Conn, Drive, Wants};
use crate::dispatch::{Dispatch, Done};
use crate::net::{classify_accept_error, AcceptFailure, ACCEPT_BACKOFF};
use crate::poller::{Event, Poller};
use crate::timeouts::{input_waiting, Due, Expiry, Wheel};
use crate::work_pool::PoolLink;
use crate::{stop, Shared, Stats};

/// Token of the listener.
pub const LISTENER: usize = usize::MAX;
/// Token of the waker that announces handed-over connections and pool answers.
pub const WAKER: usize = usize::MAX - 1;

/// Where a loop's connections come from.
pub enum Source {
    /// It accepts them itself.
    Listener(TcpListener),
    /// An acceptor hands them over and wakes the loop's [`WAKER`].
    Handoff(Receiver<TcpStream>),
}

pub struct EventLoop<P: Poller> {
    poller: P,
    source: Source,
    conns: Slab<Conn>,
    /// This thread's read buffer, shared by all its connections.
    buf: Box<[u8]>,
    shared: Shared,
    accept_paused_until: Option<Instant>,
    /// Where requests are answered when this loop does not answer them itself.
    pool: Option<Box<dyn Dispatch>>,
    /// Answers back from `pool`, drained on each wake (kept to reuse its memory).
    done: Vec<Done>,
    /// The chat room, when the protocol is chat.
    chat: Option<ChatLink>,
    next_id: u64,
    /// The idle and header clocks of every connection, if a timeout is set.
    wheel: Option<Wheel>,
    /// Wheel entries come due, drained on each wake.
    due: Vec<Due>,
}

impl<P: Poller> EventLoop<P> {
    pub fn new(mut poller: P, source: Source, shared: Shared) -> io::Result<Self> {
        if let Source::Listener(listener) = &source {
            poller.register(listener.as_raw_fd(), LISTENER, Wants { read: true, write: false })?;
        }
        Ok(EventLoop {
            poller,
            source,
            conns: Slab::with_capacity(1024),
            buf: vec![0; READ_BUF_SIZE].into_boxed_slice(),
            shared,
            accept_paused_until: None,
            pool: None,
            done: Vec::new(),
            chat: None,
            next_id: 0,
            wheel: Wheel::new(shared.timeouts),
            due: Vec::new(),
        })
    }

    /// Hand every framed request to a worker pool instead of answering inline.
    pub fn with_pool(self, pool: Option<PoolLink>) -> Self {
        match pool {
            Some(link) => self.with_dispatch(Box::new(link)),
            None => self,
        }
    }

    /// Hand every framed request to `dispatch` instead of answering inline.
    pub fn with_dispatch(mut self, dispatch: Box<dyn Dispatch>) -> Self {
        self.pool = Some(dispatch);
        self
    }

    /// Serve chat members, sharing the room through `chat`.
    pub fn with_chat(mut self, chat: Option<ChatLink>) -> Self {
        self.chat = chat;
        self
    }

    /// Run until a stop is requested.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Vec::with_capacity(1024);
        while !stop::requested() {
            let mut timeout = self.accept_paused_until.map(|t| t.saturating_duration_since(Instant::now()));
            if let Some(tick) = self.wheel.as_ref().and_then(Wheel::timeout) {
                timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
            }
            events.clear();
            match self.poller.wait(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Some(wheel) = &mut self.wheel {
                wheel.set_now(Instant::now());
            }
            for &Event { token } in &events {
                match token {
                    LISTENER => {
                        Stats::add(&self.shared.stats.listener_wakeups, 1);
                        if self.accept_paused_until.is_none() {
                            self.accept_all()?;
                        }
                    }
                    WAKER => {
                        self.take_handoffs();
                        self.take_answers();
                    }
                    key => self.ready(key),
                }
            }
            self.flush_chat();
            if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
                self.accept_all()?;
            }
            if self.wheel.is_some() {
                self.expire();
            }
        }
        Ok(())
    }

    /// Close the connections whose timeout passed; move the others on.
    fn expire(&mut self) {
        let Some(wheel) = &mut self.wheel else { return };
        let mut due = std::mem::take(&mut self.due);
        wheel.expired(&mut due);
        for entry in due.drain(..) {
            let (Some(wheel), Some(conn)) = (&mut self.wheel, self.conns.get_mut(entry.key)) else { continue };
            if conn.id != entry.id {
                continue; // closed since; its key was reused
            }
            let busy = conn.session.awaiting_answers();
            match wheel.check(&mut conn.watch, entry, busy) {
                None => {}
                // Input the loop would read but has not collected yet
                // (overloaded: more ready connections than one wait returns):
                // not idle. Input held back from a client that does not read
                // its answers does not count: that client is the idle one.
                Some(Expiry::Idle) if conn.session.wants_read() && input_waiting(conn.stream.as_raw_fd()) => {
                    wheel.postpone(&mut conn.watch, entry.key, entry.id);
                }
                Some(expiry) => {
                    expiry.count(self.shared.stats);
                    self.close(entry.key);
                }
            }
        }
        self.due = due;
    }

    fn accept_all(&mut self) -> io::Result<()> {
        let Source::Listener(listener) = &self.source else { return Ok(()) };
        let mut accepted = Vec::new();
        let paused = accept_ready(listener, self.shared.stats, |s| accepted.push(s))?;
        if !self.poller.edge_triggered() && paused.is_some() != self.accept_paused_until.is_some() {
            // A level-triggered back end reports a listener with a non-empty
            // backlog on every wait: unwatch it while accepting pauses, or the
            // pause would spin.
            let wants = Wants { read: paused.is_none(), write: false };
            self.poller.reregister(listener.as_raw_fd(), LISTENER, wants)?;
        }
        self.accept_paused_until = paused;
        for stream in accepted {
            self.add(stream);
        }
        Ok(())
    }

    fn take_handoffs(&mut self) {
        let Source::Handoff(rx) = &self.source else { return };
        let streams: Vec<_> = rx.try_iter().collect();
        for stream in streams {
            self.add(stream);
        }
    }

    fn take_answers(&mut self) {
        let Some(pool) = &mut self.pool else { return };
        let mut done = std::mem::take(&mut self.done);
        pool.collect(&mut done);
        for done in done.drain(..) {
            match self.conns.get_mut(done.key) {
                Some(conn) if conn.id == done.id => conn.session.finish_batch(done.answers),
                _ => continue, // the connection died while its batch was out
            }
            self.ready(done.key);
        }
        self.done = done;
    }

    fn add(&mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let wants = Wants { read: true, write: self.poller.edge_triggered() };
        match self.poller.register(stream.as_raw_fd(), key, wants) {
            Ok(()) => {
                let (proto, work) = (self.shared.proto, self.shared.work);
                let session =
                    if self.pool.is_some() { Session::deferred(proto, work) } else { Session::new(proto, work) };
                self.next_id += 1;
                let id = self.next_id;
                let mut conn = Conn::new(stream, session, id);
                conn.registered = wants;
                if let Some(wheel) = &mut self.wheel {
                    wheel.watch(&mut conn.watch, key, id);
                }
                entry.insert(conn);
                if self.pool.as_mut().is_some_and(|pool| pool.open(key, id).is_err()) {
                    // Refused before serving anything (no thread for it): closed
                    // unserved, counted by the dispatcher, like a failed spawn.
                    let conn = self.conns.remove(key);
                    self.poller.forget(conn.stream.as_raw_fd(), key);
                }
            }
            Err(e) => {
                Stats::add(&self.shared.stats.rejected, 1);
                crate::warn_rate_limited(&format!("connection refused by the back end: {e}"));
            }
        }
    }

    /// Drive connection `key` after readiness (or after its answers came back).
    fn ready(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let wants = match conn.drive(&mut self.buf) {
            Drive::Closed => return self.close(key),
            Drive::Wait(wants) => wants,
        };
        if let Some(pool) = &mut self.pool {
            if let Some(batch) = conn.session.take_batch() {
                if pool.submit(key, conn.id, batch).is_err() {
                    return self.close(key);
                }
            }
        }
        if let Some(wheel) = &mut self.wheel {
            wheel.touch(&mut conn.watch, key, conn.id, conn.session.head_started());
        }
        if let Some(chat) = &mut self.chat {
            chat.after_drive(key, conn);
        }
        if !self.poller.edge_triggered() && wants != conn.registered {
            if self.poller.reregister(conn.stream.as_raw_fd(), key, wants).is_err() {
                return self.close(key);
            }
            conn.registered = wants;
        }
    }

    /// Chat: deliver what the room sent and drive the connections that need
    /// it, until nothing is left for this turn.
    fn flush_chat(&mut self) {
        loop {
            let Some(chat) = &mut self.chat else { return };
            chat.drain(&mut self.conns, self.poller.edge_triggered());
            let dirty = chat.take_dirty();
            if dirty.is_empty() {
                return;
            }
            for key in dirty {
                self.ready(key);
            }
        }
    }

    fn close(&mut self, key: usize) {
        let conn = self.conns.remove(key);
        if let Some(chat) = &mut self.chat {
            chat.closed(key, &conn);
        }
        self.poller.forget(conn.stream.as_raw_fd(), key);
        if let Some(pool) = &mut self.pool {
            pool.close(key, conn.id);
        }
        conn.finish(self.shared.stats);
    }
}

/// Accept every pending connection on a non-blocking listener, passing each to
/// `on_stream`. Returns when the queue is empty, or, when descriptors (or
/// memory) ran out, the instant until which accepting should pause (the
/// connections wait in the backlog meanwhile: no busy loop, nothing dropped).
pub fn accept_ready(
    listener: &TcpListener,
    stats: &Stats,
    mut on_stream: impl FnMut(TcpStream),
) -> io::Result<Option<Instant>> {
    let mut any = false;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                any = true;
                Stats::add(&stats.accepted, 1);
                on_stream(stream);
            }
            Err(e) => match classify_accept_error(&e) {
                AcceptFailure::Retry => continue,
                AcceptFailure::WouldBlock => {
                    if !any {
                        Stats::add(&stats.accept_would_block, 1);
                    }
                    return Ok(None);
                }
                AcceptFailure::Exhausted => {
                    Stats::add(&stats.accept_backoffs, 1);
                    return Ok(Some(Instant::now() + ACCEPT_BACKOFF));
                }
                AcceptFailure::Fatal if stop::requested() => return Ok(None),
                AcceptFailure::Fatal => return Err(e),
            },
        }
    }
}
