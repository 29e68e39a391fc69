//! The chat room (`--proto chat`, document 002 §5), and how each model shares
//! it between connections.
//!
//! The wire (JSON lines, parsing, the lines the server writes, the per-member
//! bounds) is [`proto::chat`], driven through the same [`proto::Session`] as
//! echo and HTTP. What a command does to the room is [`room::Room::serve`],
//! the same for every model. What differs, and what a chat benchmark
//! measures, is how a line gets from the member who sent it to every other
//! member: that is a question of sharing state between connections, which is
//! exactly where the concurrency models differ.
//!
//! - [`threads`] (thread, pool): one `Mutex<Room>`. The sender's own thread
//!   puts each line in every member's outbox (under that member's lock) and
//!   writes it onto the member's socket without blocking; only a member whose
//!   socket is full has its thread woken (a signal, which interrupts its
//!   `ppoll`) to wait for room in the socket.
//! - [`hub`] (reactor, reactor-pool, multi-reactor, multi-reactor-pool,
//!   uring): one `Mutex<Room>` behind which every event loop has an inbox (a
//!   channel and a way to wake the loop: a mio `Waker`, or an eventfd read by
//!   the ring). A broadcast is one inbox message per loop, which the loop
//!   fans out to its own members and writes once per turn. Commands are
//!   served by the loop that read them, or by the pool in the reactor + pool
//!   models ([`pool`]).
//! - [`tokio`]: the room's names in a `Mutex<Room>`, broadcasts and notices
//!   through a tokio `broadcast` channel that a member's task subscribes to
//!   when it joins, and private lines through the member's bounded `mpsc`.
//! - iterative, fork, prefork, reuseport: refused at start, with the reason
//!   in their registry entry ([`ChatRoom::Refused`]): one connection at a
//!   time, or processes that share no memory, cannot hold one room.
//!
//! A member that does not read: its outbox is bounded
//! ([`proto::chat::OUTBOX_BOUND`]); the line that finds it full disconnects
//! it and counts it in the stats line (`slow_members_dropped`), and whoever
//! sent the line goes on. In no model does a sender wait for a slow member.
//!
//! # Layout
//!
//! - [`room`]: the room without I/O or locks: names, and the effects of a command.
//! - [`hub`]: the room shared by event loops, and their inboxes.
//! - [`reactor`]: what an event loop does with its inbox and its members' commands.
//! - [`pool`]: the worker pool that serves commands for the reactor + pool models.
//! - [`threads`]: one member per blocking thread.
//! - [`tokio`]: one member per tokio task.

pub mod hub;
pub mod pool;
pub mod reactor;
pub mod room;
pub mod threads;
pub mod tokio;

/// Whether a model serves `--proto chat`: how it shares the room, or why it cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatRoom {
    /// It shares one room between its connections, this way.
    Shared(&'static str),
    /// It cannot share one room between its connections, for this reason;
    /// `c10k serve --proto chat` refuses to start with it.
    Refused(&'static str),
}

impl ChatRoom {
    pub fn is_shared(self) -> bool {
        matches!(self, ChatRoom::Shared(_))
    }

    /// How the room is shared, or why it is not.
    pub fn text(self) -> &'static str {
        match self {
            ChatRoom::Shared(how) | ChatRoom::Refused(how) => how,
        }
    }
}
