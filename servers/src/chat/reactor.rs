//! An event loop's side of the room ([`super::hub`]): it hands its members'
//! commands to the room (serving them itself, or through the pool), and fans
//! what its inbox holds out to its own members.
//!
//! Fan-out is cheap per member: the line is appended to the member's session
//! output (a copy of a line shared by all), and each member given output in a
//! turn is written once at the end of the turn, however many lines it got, with
//! no read attempted. A member whose socket is full keeps its lines in its
//! outbox until the socket is writable again (WRITABLE, as for any answer); a
//! member whose outbox passes its bound, once what it holds has been offered
//! to its socket, is dropped as slow, through the loop's ordinary close.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use proto::chat::{Leave, MAX_PENDING_COMMANDS, OUTBOX_BOUND};
use proto::{Proto, Work};
use slab::Slab;

use super::hub::{member_id, Addr, Event, Hub, Wake};
use super::pool::{self, Job};
use super::room::MemberId;
use crate::conn::Conn;
use crate::{Ctx, ServeError};

/// One event loop's link to the room.
pub struct ChatLink {
    hub: Arc<Hub>,
    index: usize,
    inbox: Receiver<Event>,
    /// Members of this loop in the room: slab key -> member id.
    joined: HashMap<usize, MemberId>,
    /// Where commands are served when not by this loop (reactor + pool models).
    pool: Option<Sender<Job>>,
    work: Work,
    /// Members given output this turn, to write once at its end.
    touched: Vec<usize>,
    /// Connections the loop must drive again: more commands or input waiting,
    /// a close, or (level-triggered back ends) a new interest in WRITABLE.
    dirty: Vec<usize>,
}

/// The chat links of `wakes.len()` event loops (in order) sharing one room,
/// with their commands served by a pool of `pool_workers` threads when given;
/// `None`s when the protocol is not chat.
pub fn links(ctx: &Ctx, wakes: Vec<Wake>, pool_workers: Option<usize>) -> Result<Vec<Option<ChatLink>>, ServeError> {
    if ctx.config.proto != Proto::Chat {
        return Ok(wakes.iter().map(|_| None).collect());
    }
    let work = ctx.shared.work;
    let (hub, receivers) = Hub::new(wakes);
    let pool = match pool_workers {
        Some(workers) => {
            Some(pool::start(workers, Arc::clone(&hub), work).map_err(ServeError::io("spawn chat pool worker"))?)
        }
        None => None,
    };
    Ok(receivers
        .into_iter()
        .enumerate()
        .map(|(index, inbox)| {
            Some(ChatLink {
                hub: Arc::clone(&hub),
                index,
                inbox,
                joined: HashMap::new(),
                pool: pool.clone(),
                work,
                touched: Vec::new(),
                dirty: Vec::new(),
            })
        })
        .collect())
}

impl ChatLink {
    fn addr(&self, key: usize, conn: &Conn) -> Addr {
        Addr { inbox: self.index, key, id: member_id(self.index, conn.id) }
    }

    /// Connection `key` was driven: hand the room the commands it framed.
    pub fn after_drive(&mut self, key: usize, conn: &mut Conn) {
        let commands = conn.session.take_commands();
        if commands.is_empty() {
            return;
        }
        let addr = self.addr(key, conn);
        match &self.pool {
            Some(pool) => {
                // The pool outlives the loops; its answer comes back as `Done`.
                let _ = pool.send(Job { addr, commands });
            }
            None => {
                let full = commands.len() >= MAX_PENDING_COMMANDS;
                self.hub.serve(addr, commands, &self.work, Some(self.index), false);
                conn.session.commands_done();
                if full {
                    // It stopped reading with input left: drive it again.
                    self.dirty.push(key);
                }
            }
        }
    }

    /// Connection `key` is being closed: it leaves the room.
    pub fn closed(&mut self, key: usize, conn: &Conn) {
        let addr = self.addr(key, conn);
        if self.joined.get(&key) == Some(&addr.id) {
            self.joined.remove(&key);
        }
        let reason = if conn.session.is_slow() { Leave::Slow } else { Leave::Closed };
        self.hub.leave(addr, reason, Some(self.index));
    }

    /// Deliver what the inbox holds to this loop's members and write each
    /// member given output once. `edge`: the poller is edge-triggered (a
    /// member whose socket is full needs no new registration).
    pub fn drain(&mut self, conns: &mut Slab<Conn>, edge: bool) {
        self.hub.draining(self.index);
        let index = self.index;
        let alive =
            |conns: &Slab<Conn>, key: usize, id: MemberId| conns.get(key).is_some_and(|c| member_id(index, c.id) == id);
        while let Ok(event) = self.inbox.try_recv() {
            match event {
                Event::All { line, except } => {
                    for (&key, &id) in &self.joined {
                        if Some(id) != except {
                            deliver(conns, &mut self.touched, &mut self.dirty, key, &line);
                        }
                    }
                }
                Event::To { key, id, line } => {
                    if alive(conns, key, id) {
                        deliver(conns, &mut self.touched, &mut self.dirty, key, &line);
                    }
                }
                Event::Joined { key, id, line } => {
                    if alive(conns, key, id) {
                        self.joined.insert(key, id);
                        deliver(conns, &mut self.touched, &mut self.dirty, key, &line);
                    } else {
                        // It closed while a pool served its join: it must not
                        // stay in the room.
                        self.hub.leave(Addr { inbox: index, key, id }, Leave::Closed, Some(index));
                    }
                }
                Event::Close { key, id } => {
                    if alive(conns, key, id) {
                        conns[key].session.close();
                        self.dirty.push(key);
                    }
                }
                Event::Done { key, id } => {
                    if alive(conns, key, id) {
                        conns[key].session.commands_done();
                        self.dirty.push(key);
                    }
                }
            }
        }
        for key in self.touched.drain(..) {
            let Some(conn) = conns.get_mut(key) else { continue };
            match write_out(conn) {
                Written::All => {}
                Written::Blocked if edge => {} // WRITABLE will be reported
                Written::Blocked | Written::Failed => self.dirty.push(key),
            }
        }
    }

    /// Connections to drive again, taken.
    pub fn take_dirty(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.dirty)
    }
}

/// Queue `line` for member `key`; a member given output for the first time
/// this turn is noted to be written, one that turns slow to be closed.
fn deliver(conns: &mut Slab<Conn>, touched: &mut Vec<usize>, dirty: &mut Vec<usize>, key: usize, line: &[u8]) {
    let Some(conn) = conns.get_mut(key) else { return };
    if conn.session.is_slow() {
        return;
    }
    let was_empty = conn.session.pending_output().is_empty();
    if conn.session.pending_output().len() >= OUTBOX_BOUND {
        // A burst (many lines in one turn) fills the outbox before the turn's
        // write: offer it to the socket first; slow only if that cannot take it.
        let _ = write_out(conn);
    }
    if !conn.session.deliver(line) {
        dirty.push(key); // slow now: the loop closes it
    } else if was_empty {
        touched.push(key);
    }
}

enum Written {
    All,
    /// The socket is full: the rest waits for WRITABLE.
    Blocked,
    /// The socket failed: the loop's next drive closes it.
    Failed,
}

/// Write what the member has, without reading.
fn write_out(conn: &mut Conn) -> Written {
    while !conn.session.pending_output().is_empty() {
        match conn.stream.write(conn.session.pending_output()) {
            Ok(0) => return Written::Failed,
            Ok(n) => conn.session.consume_output(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Written::Blocked,
            Err(_) => return Written::Failed,
        }
    }
    Written::All
}
