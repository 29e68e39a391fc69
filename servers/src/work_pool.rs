//! The worker pool of the reactor + pool models (M8, M11): reactors frame
//! requests and hand each connection's batch to a fixed set of worker threads,
//! which do the work, encode the answers, and post them back to the reactor's
//! mailbox, waking its poller.
//!
//! Every request thus crosses threads twice (a channel send each way) and its
//! answer is written by a different thread than the one that computed it:
//! the contention and cache traffic claim C6 is about.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::Waker;
use proto::batch::{Answers, Batch};
use proto::Work;

/// One connection's batch, sent to the pool.
pub struct Job {
    /// Which event loop's mailbox gets the answers.
    pub mailbox: usize,
    /// The connection's slab key in that loop, and its unique id (keys are reused).
    pub key: usize,
    pub id: u64,
    pub batch: Batch,
}

/// A batch's answers, sent back to the loop that owns the connection.
pub struct Done {
    pub key: usize,
    pub id: u64,
    pub answers: Answers,
}

struct Mailbox {
    tx: Sender<Done>,
    waker: Arc<Waker>,
    /// Set by a worker that posted answers and woke the loop; cleared by the
    /// loop before it drains. Saves one eventfd write per answer under load.
    wake_pending: AtomicBool,
}

/// An event loop's end of the pool.
pub struct PoolLink {
    index: usize,
    jobs: Sender<Job>,
    results: Receiver<Done>,
    mailboxes: Arc<[Mailbox]>,
}

impl PoolLink {
    pub fn submit(&self, key: usize, id: u64, batch: Batch) {
        // Workers only stop when the process does, so the channel stays open.
        let _ = self.jobs.send(Job { mailbox: self.index, key, id, batch });
    }

    /// Answers that came back since the last call.
    pub fn collect(&self) -> impl Iterator<Item = Done> + '_ {
        self.mailboxes[self.index].wake_pending.store(false, Ordering::Release);
        self.results.try_iter()
    }
}

/// Start `workers` threads doing `work`, serving the event loops whose
/// pollers `wakers` wake; returns one link per loop, in the same order.
pub fn start(workers: usize, work: Work, wakers: &[Arc<Waker>]) -> io::Result<Vec<PoolLink>> {
    let (job_tx, job_rx) = unbounded::<Job>();
    let (mut result_rxs, mut boxes) = (Vec::new(), Vec::new());
    for waker in wakers {
        let (tx, rx) = unbounded();
        result_rxs.push(rx);
        boxes.push(Mailbox { tx, waker: Arc::clone(waker), wake_pending: AtomicBool::new(false) });
    }
    let mailboxes: Arc<[Mailbox]> = boxes.into();
    for i in 0..workers {
        let jobs = job_rx.clone();
        let mailboxes = Arc::clone(&mailboxes);
        thread::Builder::new().name(format!("pool-{i}")).spawn(move || {
            for job in jobs {
                let answers = job.batch.answer(&work);
                let mailbox = &mailboxes[job.mailbox];
                if mailbox.tx.send(Done { key: job.key, id: job.id, answers }).is_ok()
                    && !mailbox.wake_pending.swap(true, Ordering::AcqRel)
                {
                    let _ = mailbox.waker.wake();
                }
            }
        })?;
    }
    Ok(result_rxs
        .into_iter()
        .enumerate()
        .map(|(index, results)| PoolLink { index, jobs: job_tx.clone(), results, mailboxes: Arc::clone(&mailboxes) })
        .collect())
}
