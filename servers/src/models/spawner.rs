//! Compute threads for the reactor + threads models, `reactor-task` (M6, a
//! thread per request) and `reactor-conn-thread` (M7, a thread per
//! connection), created under the limits of the thread model (M2):
//! `--thread-stack-kib`, and no more threads than fit in the process's
//! `vm.max_map_count` (measured at start-up, see [`super::thread`]). A thread
//! that cannot be created, because the kernel refused or because the next one
//! would not fit, is counted in `spawn_failures` and its connection closed;
//! the server goes on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::Receiver;

use super::thread::MapBudget;
use crate::dispatch::{Dispatch, Done, Mailbox, Refused};
use crate::event_loop::{EventLoop, Source, WAKER};
use crate::poller::MioPoller;
use crate::{Ctx, ServeError, Stats};

/// Serve with one mio event loop that hands each request to the [`Dispatch`] that
/// `dispatch` builds around the loop's mailbox (where its threads post answers) and the
/// receiving end the loop drains. Schemes 6 and 7 share this loop and differ only there.
pub(super) fn serve(
    ctx: &Ctx,
    dispatch: impl FnOnce(Arc<Mailbox>, Receiver<Done>) -> Box<dyn Dispatch>,
) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    let addr = Ctx::local_addr(&listener)?;
    let poller = MioPoller::new().map_err(ServeError::io("create epoll instance"))?;
    let waker = Arc::new(poller.waker(WAKER).map_err(ServeError::io("create waker"))?);
    let (mailbox, results) = Mailbox::new(waker);
    let dispatch = dispatch(Arc::new(mailbox), results);
    let source = Source::Listener(mio::net::TcpListener::from_std(listener));
    let mut event_loop = EventLoop::new(poller, source, ctx.shared)
        .map_err(ServeError::io("register listener"))?
        .with_dispatch(dispatch);
    ctx.ready(addr);
    event_loop.run().map_err(ServeError::io("event loop"))
}

pub(super) struct Spawner {
    stack: Option<usize>,
    budget: Option<MapBudget>,
    /// Threads created and not finished yet.
    live: Arc<AtomicUsize>,
    stats: &'static Stats,
    /// What a thread is for, in warnings ("a request", "a connection").
    purpose: &'static str,
}

impl Spawner {
    /// Measure the thread budget now (before the ready line).
    pub(super) fn new(ctx: &Ctx, purpose: &'static str) -> Spawner {
        let stack = ctx.config.thread_stack;
        let budget = MapBudget::measure(|| builder(stack));
        Spawner { stack, budget, live: Arc::new(AtomicUsize::new(0)), stats: ctx.shared.stats, purpose }
    }

    /// Run `f` on a new thread, or say why not (counted and warned about).
    pub(super) fn spawn(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Refused> {
        if let Some(b) = &self.budget {
            if self.live.load(Ordering::Acquire) >= b.threads {
                return self.refused(format_args!(
                    "{} threads reached, the most that fit in vm.max_map_count = {} at {} mappings per thread",
                    b.threads, b.max_map_count, b.per_thread
                ));
            }
        }
        let live = Arc::clone(&self.live);
        live.fetch_add(1, Ordering::AcqRel);
        // Detached: the thread ends by itself; on failure `f` (and whatever it
        // owns) is dropped here.
        let spawned = builder(self.stack).spawn(move || {
            f();
            live.fetch_sub(1, Ordering::AcqRel);
        });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                self.live.fetch_sub(1, Ordering::AcqRel);
                self.refused(format_args!("{e}"))
            }
        }
    }

    fn refused(&self, why: std::fmt::Arguments<'_>) -> Result<(), Refused> {
        Stats::add(&self.stats.spawn_failures, 1);
        crate::warn_rate_limited(&format!("cannot spawn a thread for {}: {why}", self.purpose));
        Err(Refused)
    }
}

fn builder(stack: Option<usize>) -> thread::Builder {
    let b = thread::Builder::new();
    match stack {
        Some(bytes) => b.stack_size(bytes),
        None => b,
    }
}
