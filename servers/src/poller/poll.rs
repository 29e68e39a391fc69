//! SEL: poll(2) (002 §2; 001 性能篇_上; 003 §4.1), level-triggered by nature.
//!
//! The interest set lives in user space, in a `Vec<pollfd>`, and goes to the
//! kernel whole on every wait: the kernel copies it in, asks every descriptor
//! for its state and copies the result out, and then this loop scans it for
//! the ready ones. A wait therefore costs O(n) in the watched descriptors,
//! ready or idle, which is exactly what claims C12 and T4 measure; unlike
//! select there is no cap on descriptor numbers. Registering, re-registering
//! and forgetting are O(1) (a token index and `swap_remove`).

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::level::{cvt, timeout_ms};
use super::{Event, Poller};
use crate::conn::Wants;

/// poll(2) over a vector of `pollfd`.
#[derive(Debug, Default)]
pub struct PollPoller {
    /// What the kernel is asked about, one entry per registered descriptor.
    fds: Vec<libc::pollfd>,
    /// The token of `fds[i]`.
    tokens: Vec<usize>,
    /// Position in `fds` of each token.
    index: HashMap<usize, usize>,
}

impl PollPoller {
    pub fn new() -> Self {
        PollPoller::default()
    }

    fn position(&self, token: usize) -> io::Result<usize> {
        self.index
            .get(&token)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("token {token} is not registered")))
    }
}

fn poll_events(wants: Wants) -> libc::c_short {
    let mut events = 0;
    if wants.read {
        events |= libc::POLLIN;
    }
    if wants.write {
        events |= libc::POLLOUT;
    }
    // POLLERR, POLLHUP and POLLNVAL are reported whatever is asked.
    events
}

impl Poller for PollPoller {
    fn register(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        if self.index.contains_key(&token) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("token {token} is already registered")));
        }
        self.index.insert(token, self.fds.len());
        self.fds.push(libc::pollfd { fd, events: poll_events(wants), revents: 0 });
        self.tokens.push(token);
        Ok(())
    }

    fn reregister(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        let i = self.position(token)?;
        self.fds[i].fd = fd;
        self.fds[i].events = poll_events(wants);
        Ok(())
    }

    fn forget(&mut self, _fd: RawFd, token: usize) {
        let Some(i) = self.index.remove(&token) else {
            return;
        };
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        if let Some(&moved) = self.tokens.get(i) {
            self.index.insert(moved, i);
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        // SAFETY: the pointer and length describe `self.fds`, initialised pollfds
        // the kernel reads and whose `revents` it writes, within the call.
        let ready =
            cvt(unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout_ms(timeout)) })?;
        // The scan is O(n) too: poll says how many are ready, not which.
        let mut left = ready as usize;
        for (pollfd, &token) in self.fds.iter().zip(&self.tokens) {
            if left == 0 {
                break;
            }
            if pollfd.revents != 0 {
                left -= 1;
                events.push(Event { token });
            }
        }
        Ok(())
    }

    fn edge_triggered(&self) -> bool {
        false
    }
}
