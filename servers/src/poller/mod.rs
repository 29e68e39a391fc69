//! Readiness back ends behind one small trait, so the reactor loop is the same
//! code whether it waits in epoll (mio, edge-triggered), epoll level-triggered,
//! poll(2) or select(2): a comparison of back ends then measures the back ends.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::conn::Wants;

mod level;
mod poll;
mod select;

pub use level::EpollLevel;
pub use poll::PollPoller;
pub use select::{SelectPoller, FD_SETSIZE};

/// A readiness report for one registered descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub token: usize,
}

/// A readiness back end.
pub trait Poller {
    /// Start watching `fd` for `wants`. Fails for a descriptor the back end
    /// cannot watch (select past FD_SETSIZE).
    fn register(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()>;
    /// Change what `fd` is watched for.
    fn reregister(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()>;
    /// `fd` is about to be closed: stop watching it.
    fn forget(&mut self, fd: RawFd, token: usize);
    /// Wait for readiness (at most `timeout`, forever if `None`), appending to `events`.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
    /// Edge-triggered back ends report each change once, so connections register
    /// for both directions once and never re-register; level-triggered ones must
    /// be told exactly what is wanted.
    fn edge_triggered(&self) -> bool;
}

/// mio's epoll, edge-triggered.
pub struct MioPoller {
    poll: mio::Poll,
    events: mio::Events,
}

impl MioPoller {
    pub fn new() -> io::Result<Self> {
        Ok(MioPoller { poll: mio::Poll::new()?, events: mio::Events::with_capacity(1024) })
    }

    /// A waker that makes [`wait`](Poller::wait) report `token`.
    pub fn waker(&self, token: usize) -> io::Result<mio::Waker> {
        mio::Waker::new(self.poll.registry(), Token(token))
    }
}

fn interest(wants: Wants) -> Interest {
    match (wants.read, wants.write) {
        (true, true) => Interest::READABLE | Interest::WRITABLE,
        (false, true) => Interest::WRITABLE,
        _ => Interest::READABLE,
    }
}

impl Poller for MioPoller {
    fn register(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        self.poll.registry().register(&mut SourceFd(&fd), Token(token), interest(wants))
    }

    fn reregister(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        self.poll.registry().reregister(&mut SourceFd(&fd), Token(token), interest(wants))
    }

    fn forget(&mut self, _fd: RawFd, _token: usize) {
        // Closing the descriptor removes it from the epoll set; no syscall needed.
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        self.poll.poll(&mut self.events, timeout)?;
        events.extend(self.events.iter().map(|e| Event { token: e.token().0 }));
        Ok(())
    }

    fn edge_triggered(&self) -> bool {
        true
    }
}
