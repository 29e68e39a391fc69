//! SEL: epoll, level-triggered (002 §2; 001 性能篇_上; 003 §4.1), beside mio's
//! edge-triggered epoll.
//!
//! The kernel keeps the interest set, so a wait costs in proportion to the
//! descriptors that are ready, not to those watched (claim C12): the same O(1)
//! as edge-triggered. Level-triggered epoll reports a descriptor on every wait
//! for as long as it is ready, which forgives a handler that stops reading
//! before `WouldBlock`, but it must be told exactly what is wanted: a socket
//! watched for EPOLLOUT with nothing to write would be reported forever. So the
//! reactor re-registers (one `epoll_ctl(MOD)`) whenever a connection's wants
//! change, which edge-triggered mode never does: that syscall is the price.
//!
//! Raw `libc` calls, because the workspace's `nix` is built without its epoll
//! feature; [`cvt`] turns their -1 into an `io::Error`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{Event, Poller};
use crate::conn::Wants;

/// Events fetched per `epoll_wait`; more ready descriptors wait for the next call.
const BATCH: usize = 1024;

/// Turn a libc return value of -1 into the calling thread's `errno`.
pub(super) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A timeout in whole milliseconds for epoll_wait/poll, rounded up so that a
/// pause of 0.4 ms sleeps instead of spinning; `None` (forever) is -1.
pub(super) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    timeout.map_or(-1, |t| {
        let ms = t.as_nanos().div_ceil(1_000_000);
        libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
    })
}

/// epoll in level-triggered mode.
pub struct EpollLevel {
    epfd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl EpollLevel {
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointer; a non-negative result is a new
        // descriptor that nothing else owns.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(EpollLevel {
            // SAFETY: `fd` was just created and is owned by nothing else.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; BATCH],
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        let mut flags = 0;
        if wants.read {
            flags |= libc::EPOLLIN;
        }
        if wants.write {
            flags |= libc::EPOLLOUT;
        }
        // No EPOLLET: level-triggered. EPOLLERR and EPOLLHUP are always reported.
        let mut event = libc::epoll_event { events: flags as u32, u64: token as u64 };
        // SAFETY: `event` is a valid epoll_event that outlives the call; the kernel
        // copies it. A bad `fd` makes the call fail, it cannot corrupt memory.
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }
}

impl Poller for EpollLevel {
    fn register(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, wants)
    }

    fn reregister(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, wants)
    }

    fn forget(&mut self, _fd: RawFd, _token: usize) {
        // Closing the descriptor (its last reference) removes it from the set.
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        let capacity = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: the buffer holds `capacity` initialised epoll_events and the kernel
        // writes at most that many.
        let n = cvt(unsafe {
            libc::epoll_wait(self.epfd.as_raw_fd(), self.events.as_mut_ptr(), capacity, timeout_ms(timeout))
        })?;
        let ready = &self.events[..n as usize];
        events.extend(ready.iter().map(|e| Event { token: e.u64 as usize }));
        Ok(())
    }

    fn edge_triggered(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    use super::super::{PollPoller, SelectPoller};
    use super::*;

    /// Every level-triggered back end: reports a ready descriptor on each wait
    /// until it is consumed, and reports exactly what is asked for.
    fn level_triggered(mut poller: impl Poller) {
        assert!(!poller.edge_triggered());
        let (a, mut b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let read = Wants { read: true, write: false };
        let mut events = Vec::new();
        let short = Some(Duration::from_millis(10));
        poller.register(fd, 5, read).unwrap();
        poller.wait(&mut events, short).unwrap();
        assert!(events.is_empty(), "{events:?}");
        b.write_all(b"x").unwrap();
        for _ in 0..2 {
            events.clear();
            poller.wait(&mut events, Some(Duration::from_secs(1))).unwrap();
            assert_eq!(events, [Event { token: 5 }]);
        }
        let write = Wants { read: false, write: true };
        poller.reregister(fd, 5, write).unwrap();
        events.clear();
        poller.wait(&mut events, short).unwrap();
        assert_eq!(events, [Event { token: 5 }]);
        poller.reregister(fd, 5, Wants::default()).unwrap();
        events.clear();
        poller.wait(&mut events, short).unwrap();
        assert!(events.is_empty(), "{events:?}");
        poller.forget(fd, 5);
    }

    #[test]
    fn epoll_level_triggered() {
        level_triggered(EpollLevel::new().unwrap());
    }

    #[test]
    fn poll_level_triggered() {
        level_triggered(PollPoller::new());
    }

    #[test]
    fn select_level_triggered() {
        level_triggered(SelectPoller::new());
    }
}
