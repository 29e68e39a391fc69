//! Where a reactor's framed requests go when it does not answer them itself,
//! and how the answers come back.
//!
//! The reactor (one [`EventLoop`](crate::event_loop::EventLoop)) keeps every
//! socket and frames requests with a deferred [`proto::Session`]; a
//! [`Dispatch`] decides which thread computes each connection's batch:
//!
//! - [`work_pool`](crate::work_pool): a fixed pool (M8, M11), crossbeam or rayon;
//! - `reactor-task` (M6): a thread created for the batch;
//! - `reactor-conn-thread` (M7): the connection's own thread, created with it.
//!
//! Whoever computes posts the answers to the loop's [`Mailbox`], which wakes
//! the loop's poller (a mio `Waker`, an eventfd) once per batch of posts, not
//! once per answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::Waker;
use proto::batch::{Answers, Batch};

/// A batch's answers, sent back to the loop that owns the connection.
pub struct Done {
    /// The connection's slab key in that loop, and its unique id (keys are reused).
    pub key: usize,
    pub id: u64,
    pub answers: Answers,
}

/// The dispatcher could not take the connection or its batch (a thread could
/// not be created): the loop closes the connection. The dispatcher has counted
/// it (`spawn_failures`) and said why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// See the module documentation. One per event loop, used only by its thread.
pub trait Dispatch {
    /// Connection `key` (unique `id`) joined the loop.
    fn open(&mut self, _key: usize, _id: u64) -> Result<(), Refused> {
        Ok(())
    }

    /// Compute the answers to `batch` somewhere and post them to the mailbox.
    fn submit(&mut self, key: usize, id: u64, batch: Batch) -> Result<(), Refused>;

    /// Append the answers posted since the last call to `out`.
    fn collect(&mut self, out: &mut Vec<Done>);

    /// Connection `key` left the loop (its batch, if one is out, is answered
    /// into the void: the id no longer matches).
    fn close(&mut self, _key: usize, _id: u64) {}
}

/// An event loop's inbox of answers.
pub struct Mailbox {
    tx: Sender<Done>,
    waker: Arc<Waker>,
    /// Set by a thread that posted answers and woke the loop; cleared by the
    /// loop before it drains. Saves one eventfd write per answer under load.
    wake_pending: AtomicBool,
}

impl Mailbox {
    /// A mailbox that wakes `waker`'s poller, and the loop's end of it.
    pub fn new(waker: Arc<Waker>) -> (Mailbox, Receiver<Done>) {
        let (tx, rx) = unbounded();
        (Mailbox { tx, waker, wake_pending: AtomicBool::new(false) }, rx)
    }

    /// Post answers (any thread) and wake the loop unless a wake is pending.
    pub fn post(&self, done: Done) {
        if self.tx.send(done).is_ok() && !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    /// The loop is about to drain `rx`: posts from now on wake it again.
    pub fn drain<'a>(&self, rx: &'a Receiver<Done>) -> impl Iterator<Item = Done> + 'a {
        self.wake_pending.store(false, Ordering::Release);
        rx.try_iter()
    }
}
