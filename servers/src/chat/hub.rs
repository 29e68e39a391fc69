//! The room shared by event loops (reactor, reactor-pool, multi-reactor,
//! multi-reactor-pool, uring): one `Mutex<Room>`, and an inbox per loop.
//!
//! Whoever serves a command (the loop that read it, or a pool worker) takes
//! the lock, lets the room decide what to send, and posts it, still under the
//! lock, to the inboxes of the loops that own the recipients: a broadcast is
//! one inbox message per loop, not one per member, and the loop fans it out to
//! its own members (see [`super::reactor`]). Posting under the lock puts the
//! events in every inbox in the room's order, so every member sees the same
//! order, and a member who joins gets exactly the broadcasts sent after its
//! join (its loop marks it in the room when the `Joined` event comes out of
//! its inbox, after every earlier event). Loops other than the poster's are
//! woken after the lock is released, once per batch (a flag saves the wake-up
//! when one is already pending).
//!
//! The inboxes are unbounded channels: what they hold is what the loops have
//! not yet fanned out, lines shared by every recipient (`Arc`), not a copy per
//! member; each member's own queue is its bounded outbox.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crossbeam_channel::{unbounded, Receiver, Sender};
use proto::chat::{Command, Leave};
use proto::Work;

use super::room::{Effect, MemberId, Room};

/// Where a member lives: its loop's inbox, its slot there, and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    pub inbox: usize,
    pub key: usize,
    pub id: MemberId,
}

/// The member id of connection `conn_id` of loop `inbox` (connection ids are
/// unique within their loop).
pub fn member_id(inbox: usize, conn_id: u64) -> MemberId {
    (inbox as u64) << 48 | (conn_id & ((1 << 48) - 1))
}

/// What a loop finds in its inbox.
#[derive(Debug)]
pub enum Event {
    /// To every member of this loop in the room, but `except`.
    All { line: Arc<[u8]>, except: Option<MemberId> },
    /// To one member.
    To { key: usize, id: MemberId, line: Arc<[u8]> },
    /// The member joined: from here on it gets `All`; `line` acknowledges it.
    Joined { key: usize, id: MemberId, line: Arc<[u8]> },
    /// The member quit: flush, then close.
    Close { key: usize, id: MemberId },
    /// A pool served the member's commands: it may hand over more.
    Done { key: usize, id: MemberId },
}

/// How a loop is woken when something is posted to its inbox.
pub enum Wake {
    /// The loop only ever posts to itself (the single reactor), and drains
    /// its inbox after serving a command.
    Nothing,
    /// A mio loop.
    Mio(Arc<mio::Waker>),
    /// An io_uring loop keeps a read armed on this eventfd.
    EventFd(OwnedFd),
}

struct Inbox {
    tx: Sender<Event>,
    wake: Wake,
    /// Set by a poster that woke the loop, cleared by the loop before it drains.
    wake_pending: AtomicBool,
}

/// See the module documentation.
pub struct Hub {
    room: Mutex<Room<Addr>>,
    inboxes: Box<[Inbox]>,
}

impl Hub {
    /// A hub with one inbox per entry of `wakes`; the receivers, in order.
    pub fn new(wakes: Vec<Wake>) -> (Arc<Hub>, Vec<Receiver<Event>>) {
        let mut receivers = Vec::with_capacity(wakes.len());
        let inboxes = wakes
            .into_iter()
            .map(|wake| {
                let (tx, rx) = unbounded();
                receivers.push(rx);
                Inbox { tx, wake, wake_pending: AtomicBool::new(false) }
            })
            .collect();
        (Arc::new(Hub { room: Mutex::new(Room::default()), inboxes }), receivers)
    }

    fn lock(&self) -> MutexGuard<'_, Room<Addr>> {
        // A panic while holding the lock leaves a room whose maps are still
        // consistent (each change is one insert or remove): go on with it.
        self.room.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Serve `commands` of member `from` in order (`work` per command), posting
    /// what they send; then, if `done`, tell its loop the commands are served.
    /// `own` is the calling loop's inbox, which it drains itself.
    pub fn serve(&self, from: Addr, commands: Vec<Command>, work: &Work, own: Option<usize>, done: bool) {
        let mut woken = vec![false; self.inboxes.len()];
        let mut effects = Vec::new();
        for command in commands {
            work.perform();
            let mut room = self.lock();
            room.serve(from.id, &from, command, &mut effects);
            for effect in effects.drain(..) {
                self.post(from, effect, &mut woken);
            }
        }
        if done {
            self.send(from.inbox, Event::Done { key: from.key, id: from.id }, &mut woken);
        }
        self.wake(&woken, own);
    }

    /// Member `who` left the room (its connection ended): tell everyone else.
    pub fn leave(&self, who: Addr, reason: Leave, own: Option<usize>) {
        let mut woken = vec![false; self.inboxes.len()];
        let mut room = self.lock();
        if let Some(line) = room.leave(who.id, reason) {
            self.post(who, Effect::All { line, except: None }, &mut woken);
        }
        drop(room);
        self.wake(&woken, own);
    }

    /// The loop of inbox `index` is about to drain it: the next post wakes it again.
    pub fn draining(&self, index: usize) {
        self.inboxes[index].wake_pending.store(false, Ordering::Release);
    }

    /// The eventfd of inbox `index`, if it is woken that way.
    pub fn eventfd(&self, index: usize) -> Option<std::os::fd::RawFd> {
        match &self.inboxes[index].wake {
            Wake::EventFd(fd) => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    fn post(&self, from: Addr, effect: Effect<Addr>, woken: &mut [bool]) {
        let (key, id) = (from.key, from.id);
        match effect {
            Effect::Reply(line) => self.send(from.inbox, Event::To { key, id, line: line.into() }, woken),
            Effect::Joined(line) => self.send(from.inbox, Event::Joined { key, id, line: line.into() }, woken),
            Effect::Close => self.send(from.inbox, Event::Close { key, id }, woken),
            Effect::One { to, to_id, line } => {
                self.send(to.inbox, Event::To { key: to.key, id: to_id, line }, woken);
            }
            Effect::All { line, except } => {
                for index in 0..self.inboxes.len() {
                    self.send(index, Event::All { line: Arc::clone(&line), except }, woken);
                }
            }
        }
    }

    fn send(&self, index: usize, event: Event, woken: &mut [bool]) {
        // The receivers live as long as their loops, which outlive every poster
        // that matters; a post to a loop that has stopped is dropped.
        let _ = self.inboxes[index].tx.send(event);
        woken[index] = true;
    }

    fn wake(&self, woken: &[bool], own: Option<usize>) {
        for (index, inbox) in self.inboxes.iter().enumerate() {
            if !woken[index] || Some(index) == own || inbox.wake_pending.swap(true, Ordering::AcqRel) {
                continue;
            }
            let outcome = match &inbox.wake {
                Wake::Nothing => Ok(()),
                Wake::Mio(waker) => waker.wake(),
                Wake::EventFd(fd) => write_eventfd(fd),
            };
            if let Err(e) = outcome {
                crate::warn_rate_limited(&format!("chat: cannot wake event loop {index}: {e}"));
            }
        }
    }
}

fn write_eventfd(fd: &OwnedFd) -> io::Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live local buffer to a descriptor this hub owns.
    let n = unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        // EAGAIN: the counter is at its maximum, so the loop will wake anyway.
        if e.kind() != io::ErrorKind::WouldBlock {
            return Err(e);
        }
    }
    Ok(())
}
