//! The worker pool of the reactor + pool models (M8, M11): reactors frame
//! requests and hand each connection's batch to a fixed set of worker threads,
//! which do the work, encode the answers, and post them back to the reactor's
//! [`Mailbox`], waking its poller.
//!
//! Every request thus crosses threads twice (a channel send each way) and its
//! answer is written by a different thread than the one that computed it:
//! the contention and cache traffic claim C6 is about.
//!
//! Two pools, the same `--workers` threads (`--pool`):
//!
//! - `crossbeam` (default): one shared crossbeam channel that every worker
//!   blocks on; a job wakes one sleeping worker (a futex wake), and every
//!   worker and reactor contends on the one queue: the "highly contended"
//!   hand-off 004 §5.8 quotes.
//! - `rayon`: rayon's work-stealing `ThreadPool::spawn`. Each worker has its own
//!   deque and steals from the others when idle, but a job spawned from
//!   outside the pool (a reactor is outside it) goes to the pool's one global
//!   injector queue, which idle workers poll before they sleep; the closure is
//!   boxed per job. What it changes is how workers find work and go to sleep
//!   (they spin a while before sleeping, and one wake can be enough for a
//!   burst), not that every job enters through one queue.

use std::io;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::Waker;
use proto::batch::Batch;
use proto::Work;

use crate::config::PoolKind;
use crate::dispatch::{Dispatch, Done, Mailbox, Refused};

/// One connection's batch, sent to the pool.
struct Job {
    /// Which event loop's mailbox gets the answers.
    mailbox: usize,
    key: usize,
    id: u64,
    batch: Batch,
}

/// Where jobs go.
#[derive(Clone)]
enum Sink {
    Queue(Sender<Job>),
    Rayon(Arc<rayon::ThreadPool>),
}

/// An event loop's end of the pool.
pub struct PoolLink {
    index: usize,
    sink: Sink,
    work: Work,
    results: Receiver<Done>,
    mailboxes: Arc<[Mailbox]>,
}

impl Dispatch for PoolLink {
    fn submit(&mut self, key: usize, id: u64, batch: Batch) -> Result<(), Refused> {
        let job = Job { mailbox: self.index, key, id, batch };
        match &self.sink {
            // Workers only stop when the process does, so the channel stays open.
            Sink::Queue(jobs) => {
                let _ = jobs.send(job);
            }
            Sink::Rayon(pool) => {
                let (mailboxes, work) = (Arc::clone(&self.mailboxes), self.work);
                pool.spawn(move || run(job, &work, &mailboxes));
            }
        }
        Ok(())
    }

    fn collect(&mut self, out: &mut Vec<Done>) {
        out.extend(self.mailboxes[self.index].drain(&self.results));
    }
}

fn run(job: Job, work: &Work, mailboxes: &[Mailbox]) {
    let answers = job.batch.answer(work);
    mailboxes[job.mailbox].post(Done { key: job.key, id: job.id, answers });
}

/// Start a `kind` pool of `workers` threads doing `work`, serving the event
/// loops whose pollers `wakers` wake; returns one link per loop, in the same order.
pub fn start(kind: PoolKind, workers: usize, work: Work, wakers: &[Arc<Waker>]) -> io::Result<Vec<PoolLink>> {
    let (mut result_rxs, mut boxes) = (Vec::new(), Vec::new());
    for waker in wakers {
        let (mailbox, rx) = Mailbox::new(Arc::clone(waker));
        result_rxs.push(rx);
        boxes.push(mailbox);
    }
    let mailboxes: Arc<[Mailbox]> = boxes.into();
    let sink = match kind {
        PoolKind::Crossbeam => {
            let (job_tx, job_rx) = unbounded::<Job>();
            for i in 0..workers {
                let jobs = job_rx.clone();
                let mailboxes = Arc::clone(&mailboxes);
                thread::Builder::new().name(format!("pool-{i}")).spawn(move || {
                    for job in jobs {
                        run(job, &work, &mailboxes);
                    }
                })?;
            }
            Sink::Queue(job_tx)
        }
        PoolKind::Rayon => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .thread_name(|i| format!("rayon-{i}"))
                .build()
                .map_err(io::Error::other)?;
            Sink::Rayon(Arc::new(pool))
        }
    };
    Ok(result_rxs
        .into_iter()
        .enumerate()
        .map(|(index, results)| PoolLink {
            index,
            sink: sink.clone(),
            work,
            results,
            mailboxes: Arc::clone(&mailboxes),
        })
        .collect())
}
