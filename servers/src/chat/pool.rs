//! The reactor + pool models' chat workers (M8, M11): the reactors frame
//! lines and hand each member's commands to this pool; a worker parses
//! nothing more (the session already did) but serves them against the shared
//! room, doing the request's simulated work, and posts what they send to the
//! loops' inboxes, waking them ([`super::hub`]). A member has one batch of
//! commands out at a time (its session hands out no more until `Done` comes
//! back), so its commands are served in order.

use std::io;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{unbounded, Sender};
use proto::chat::Command;
use proto::Work;

use super::hub::{Addr, Hub};

/// One member's commands, for the pool.
pub struct Job {
    pub addr: Addr,
    pub commands: Vec<Command>,
}

/// Start `workers` threads serving jobs against `hub`.
pub fn start(workers: usize, hub: Arc<Hub>, work: Work) -> io::Result<Sender<Job>> {
    let (tx, rx) = unbounded::<Job>();
    for i in 0..workers {
        let (rx, hub) = (rx.clone(), Arc::clone(&hub));
        thread::Builder::new().name(format!("chat-pool-{i}")).spawn(move || {
            for job in rx {
                hub.serve(job.addr, job.commands, &work, None, true);
            }
        })?;
    }
    Ok(tx)
}
