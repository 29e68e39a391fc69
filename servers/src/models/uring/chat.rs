//! A ring's side of the chat room (`--proto chat`): the rings share one room
//! through [`crate::chat::hub`], as the multi-reactor's sub-reactors do, and
//! each ring is woken by its own eventfd, on which it keeps one read armed:
//! a post to its inbox completes that read, so the ring learns of it in the
//! same `io_uring_enter` that brings its socket completions.
//!
//! A ring serves its members' commands itself, when a batch of completions has
//! framed them, and fans out what its inbox holds to its own members. A line
//! for a member whose send is in flight cannot go into its session (the kernel
//! is reading the session's buffer), so it waits in the connection's
//! `held_out` ([`HELD_OUT_BOUND`]), and is handed to the session when the send
//! completes; a member that does not read is found slow then, its outbox still
//! full after the send.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use io_uring::{opcode, squeue, types::Fd};
use proto::chat::{Leave, OUTBOX_BOUND};
use proto::{Proto, Work};
use slab::Slab;

use super::worker::{Closing, Conn};

/// Lines held behind a send in flight before the member is called slow. A
/// reactor offers a full outbox to the socket before it decides; a ring cannot
/// write while its send is in flight, and one turn may fan out a burst (32
/// commands of a sender read at once, times the senders): so four outboxes'
/// worth may wait here. When the send completes, the session takes them only
/// if what the send left is under the outbox bound (else: slow).
pub const HELD_OUT_BOUND: usize = 4 * OUTBOX_BOUND;
use crate::chat::hub::{member_id, Addr, Event, Hub, Wake};
use crate::chat::room::MemberId;
use crate::{Ctx, ServeError};

/// One ring's link to the room.
pub struct RingChat {
    hub: Arc<Hub>,
    index: usize,
    inbox: Receiver<Event>,
    /// Members of this ring in the room: slab key -> member id.
    joined: HashMap<usize, MemberId>,
    work: Work,
    /// Where the eventfd read puts the counter; lives as long as the ring's
    /// requests (the worker drains them before dropping this).
    counter: Box<[u8; 8]>,
    /// The eventfd read is in flight.
    pub armed: bool,
}

/// One chat link per ring, `None`s when the protocol is not chat.
pub fn links(ctx: &Ctx, rings: usize) -> Result<Vec<Option<RingChat>>, ServeError> {
    if ctx.config.proto != Proto::Chat {
        return Ok((0..rings).map(|_| None).collect());
    }
    let mut wakes = Vec::with_capacity(rings);
    for _ in 0..rings {
        // SAFETY: eventfd has no memory preconditions; a valid result is a new
        // descriptor that nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(ServeError::io("create eventfd")(std::io::Error::last_os_error()));
        }
        // SAFETY: just created, owned by nothing else.
        wakes.push(Wake::EventFd(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    let (hub, receivers) = Hub::new(wakes);
    Ok(receivers
        .into_iter()
        .enumerate()
        .map(|(index, inbox)| {
            Some(RingChat {
                hub: Arc::clone(&hub),
                index,
                inbox,
                joined: HashMap::new(),
                work: ctx.shared.work,
                counter: Box::new([0; 8]),
                armed: false,
            })
        })
        .collect())
}

impl RingChat {
    fn addr(&self, key: usize, conn: &Conn) -> Addr {
        Addr { inbox: self.index, key, id: member_id(self.index, conn.id) }
    }

    /// The read of the ring's eventfd, to arm.
    pub fn wake_read(&mut self) -> Option<squeue::Entry> {
        let fd = self.hub.eventfd(self.index)?;
        Some(opcode::Read::new(Fd(fd), self.counter.as_mut_ptr(), 8).build())
    }

    /// Serve the commands member `key` has framed (not while its send is in
    /// flight: its session is then left alone).
    pub fn serve(&mut self, key: usize, conn: &mut Conn) {
        if conn.sending || conn.closing.is_some() {
            return;
        }
        loop {
            let commands = conn.session.take_commands();
            if commands.is_empty() {
                return;
            }
            let addr = self.addr(key, conn);
            self.hub.serve(addr, commands, &self.work, Some(self.index), false);
            conn.session.commands_done();
        }
    }

    /// Member `key` leaves the slab.
    pub fn closed(&mut self, key: usize, conn: &Conn) {
        let addr = self.addr(key, conn);
        if self.joined.get(&key) == Some(&addr.id) {
            self.joined.remove(&key);
        }
        let reason = if conn.slow || conn.session.is_slow() { Leave::Slow } else { Leave::Closed };
        self.hub.leave(addr, reason, Some(self.index));
    }

    /// Deliver what the inbox holds to this ring's members; the members to
    /// advance (send, close) go to `dirty`.
    pub fn drain(&mut self, conns: &mut Slab<Conn>, dirty: &mut Vec<usize>) {
        self.hub.draining(self.index);
        let index = self.index;
        let alive =
            |conns: &Slab<Conn>, key: usize, id: MemberId| conns.get(key).is_some_and(|c| member_id(index, c.id) == id);
        while let Ok(event) = self.inbox.try_recv() {
            match event {
                Event::All { line, except } => {
                    for (&key, &id) in &self.joined {
                        if Some(id) != except {
                            deliver(conns, dirty, key, &line);
                        }
                    }
                }
                Event::To { key, id, line } => {
                    if alive(conns, key, id) {
                        deliver(conns, dirty, key, &line);
                    }
                }
                Event::Joined { key, id, line } => {
                    if alive(conns, key, id) {
                        self.joined.insert(key, id);
                        deliver(conns, dirty, key, &line);
                    } else {
                        self.hub.leave(Addr { inbox: index, key, id }, Leave::Closed, Some(index));
                    }
                }
                Event::Close { key, id } => {
                    if alive(conns, key, id) {
                        let conn = &mut conns[key];
                        if conn.sending {
                            conn.close_after_send = true;
                        } else {
                            conn.session.close();
                        }
                        dirty.push(key);
                    }
                }
                // Only pools send it; rings serve their own commands.
                Event::Done { .. } => {}
            }
        }
    }
}

/// Queue `line` for member `key`: in its session, or beside it while a send
/// of the session's buffer is in flight.
fn deliver(conns: &mut Slab<Conn>, dirty: &mut Vec<usize>, key: usize, line: &[u8]) {
    let Some(conn) = conns.get_mut(key) else { return };
    if conn.slow || conn.session.is_slow() || conn.closing.is_some() {
        return;
    }
    if !conn.sending {
        conn.session.deliver(line);
        dirty.push(key);
    } else if conn.held_out.len() >= HELD_OUT_BOUND {
        // Slow: far more waits behind the send in flight than one turn's burst.
        // Cancel the send and drop the member (its session is told once
        // nothing is in flight).
        conn.slow = true;
        conn.closing = Some(Closing::Abort);
        dirty.push(key);
    } else {
        conn.held_out.extend_from_slice(line);
    }
}
