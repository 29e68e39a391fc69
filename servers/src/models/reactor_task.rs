//! M6, a reactor + a thread per request (004 §5.7, 方案 6).
//!
//! One thread owns every socket, as in M8: it waits in epoll, reads until
//! `WouldBlock` and frames complete requests, but does not answer them. Each
//! request goes to a thread created for it: that thread does the request's
//! work (`--cpu-us`, `--block-us`), encodes the answer, posts it to the
//! reactor's mailbox, wakes the reactor's epoll (a mio `Waker`) and exits; the
//! reactor then writes the answer. Requests that arrive together (a client
//! pipelining, read in one go) are one batch and share their thread: a client
//! that waits for each answer before sending its next request, as every bench
//! workload's does, gets exactly a thread per request, and one that pipelines
//! 256 requests gets one thread for them rather than 256 at once, which keeps
//! its memory within `proto::CONN_MEMORY_BOUND` like every other model. A
//! connection has at most one batch out, so answers keep request order.
//!
//! Who blocks where: the reactor only in epoll; a slow handler only its own
//! thread, so it stalls nobody. The price is the document's verdict on this
//! transitional scheme (claim C14): the work runs on a thread per request, a
//! thread creation and exit (`clone`, a stack mapped and unmapped, a new
//! scheduler entry) on the reactor's path for every request, plus the two
//! hand-offs of M8, so it "falls back to a thread per connection" and should
//! do worse than scheme 2 (M2), where the thread at least lives as long as
//! its connection. Threads in flight equal requests in flight.
//!
//! Limits as in the thread model: `--thread-stack-kib`, and no more threads at
//! once than fit in `vm.max_map_count`; a request whose thread cannot be
//! created closes its connection, counted in `spawn_failures`.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use proto::batch::Batch;
use proto::Work;

use super::spawner::{self, Spawner};
use crate::dispatch::{Dispatch, Done, Mailbox, Refused};
use crate::{Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let spawner = Spawner::new(ctx, "a request");
    let work = ctx.shared.work;
    spawner::serve(ctx, |mailbox, results| Box::new(ThreadPerRequest { spawner, mailbox, results, work }))
}

struct ThreadPerRequest {
    spawner: Spawner,
    mailbox: Arc<Mailbox>,
    results: Receiver<Done>,
    work: Work,
}

impl Dispatch for ThreadPerRequest {
    fn submit(&mut self, key: usize, id: u64, batch: Batch) -> Result<(), Refused> {
        let (mailbox, work) = (Arc::clone(&self.mailbox), self.work);
        self.spawner.spawn(move || {
            let answers = batch.answer(&work);
            mailbox.post(Done { key, id, answers });
        })
    }

    fn collect(&mut self, out: &mut Vec<Done>) {
        out.extend(self.mailbox.drain(&self.results));
    }
}
