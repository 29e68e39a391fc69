//! M7, a reactor + a compute thread per connection (004 §5.7, 方案 7).
//!
//! One thread owns every socket, as in M8: it waits in epoll, reads until
//! `WouldBlock` and frames complete requests, but does not answer them. Each
//! connection gets its own compute thread when it is accepted, for its whole
//! life: the reactor feeds it the connection's framed requests through a
//! channel, the thread does their work (`--cpu-us`, `--block-us`), encodes the
//! answers, posts them to the reactor's mailbox and wakes the reactor's epoll
//! (a mio `Waker`); the reactor writes them. When the connection closes its
//! channel is dropped and the thread ends. A connection has at most one batch
//! out, so answers keep request order.
//!
//! Who blocks where: the reactor in epoll; each compute thread in its
//! channel's `recv` (a futex) between requests, and in its own handler. A slow
//! handler stalls only its connection. The price is the document's verdict on
//! this transitional scheme (claim C14): a thread per connection again, as in
//! scheme 2 (M2), with its stack and scheduler entry for every idle client,
//! plus two cross-thread hand-offs and wake-ups per request that M2's thread,
//! reading its own socket, does not pay, and the thread is created on the
//! reactor's path at every accept.
//!
//! Limits as in the thread model: `--thread-stack-kib`, and no more threads at
//! once than fit in `vm.max_map_count`; a connection whose thread cannot be
//! created is closed unserved, counted in `spawn_failures`.

use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use proto::batch::Batch;
use proto::Work;

use super::spawner::{self, Spawner};
use crate::dispatch::{Dispatch, Done, Mailbox, Refused};
use crate::{Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let spawner = Spawner::new(ctx, "a connection");
    let work = ctx.shared.work;
    spawner::serve(ctx, |mailbox, results| {
        Box::new(ThreadPerConnection { spawner, mailbox, results, work, feeds: Vec::new() })
    })
}

struct ThreadPerConnection {
    spawner: Spawner,
    mailbox: Arc<Mailbox>,
    results: Receiver<Done>,
    work: Work,
    /// Each open connection's channel to its thread, by slab key.
    feeds: Vec<Option<Sender<Batch>>>,
}

impl Dispatch for ThreadPerConnection {
    fn open(&mut self, key: usize, id: u64) -> Result<(), Refused> {
        // One batch is out at a time per connection, and the thread takes it
        // off the channel before answering: one place never blocks the reactor.
        let (tx, rx) = bounded::<Batch>(1);
        let (mailbox, work) = (Arc::clone(&self.mailbox), self.work);
        self.spawner.spawn(move || {
            for batch in rx {
                let answers = batch.answer(&work);
                mailbox.post(Done { key, id, answers });
            }
        })?;
        if self.feeds.len() <= key {
            self.feeds.resize_with(key + 1, || None);
        }
        self.feeds[key] = Some(tx);
        Ok(())
    }

    fn submit(&mut self, key: usize, _id: u64, batch: Batch) -> Result<(), Refused> {
        match self.feeds.get(key).and_then(Option::as_ref) {
            Some(feed) => feed.send(batch).map_err(|_| Refused),
            None => Err(Refused),
        }
    }

    fn collect(&mut self, out: &mut Vec<Done>) {
        out.extend(self.mailbox.drain(&self.results));
    }

    fn close(&mut self, key: usize, _id: u64) {
        // Dropping the sender ends the thread once it has answered what it has.
        if let Some(feed) = self.feeds.get_mut(key) {
            *feed = None;
        }
    }
}
