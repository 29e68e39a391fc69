//! SEL: select(2) (002 §2.5; 001 性能篇_上; 003 §4.1), the oldest readiness
//! interface, level-triggered by nature.
//!
//! The interest set is two bitmaps (`fd_set`) of FD_SETSIZE = 1024 bits indexed
//! by descriptor *number*. Every wait copies both bitmaps (the kernel overwrites
//! its arguments), the kernel checks every descriptor up to the highest one, and
//! this loop scans the bits again for the ready ones: O(highest descriptor) per
//! wait, ready or idle (claims C12, T4). A descriptor numbered 1024 or more does
//! not fit in the bitmap at all; `FD_SET` on it would write past the array
//! (undefined behaviour in C). So [`register`](Poller::register) refuses such a
//! descriptor with an `io::Error`: the reactor closes that one connection,
//! counts it in `rejected`, warns (rate-limited) and serves the others. That is
//! T4's "select is capped at 1024", met per connection rather than per server:
//! once lower descriptors are free again, new connections fit again.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::level::cvt;
use super::{Event, Poller};
use crate::conn::Wants;

/// The bitmap size of `fd_set`: descriptors 0..FD_SETSIZE fit.
pub const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// select(2) over two `fd_set`s.
pub struct SelectPoller {
    read: libc::fd_set,
    write: libc::fd_set,
    /// The token of each descriptor number, `None` if not registered.
    tokens: Vec<Option<usize>>,
    /// The highest registered descriptor, -1 if none.
    max_fd: RawFd,
}

fn empty_set() -> libc::fd_set {
    // SAFETY: fd_set is a plain array of integers; all-zero bytes are the empty set.
    unsafe { std::mem::zeroed() }
}

/// `fd` as an index into an `fd_set`, or the error that refuses it.
fn slot(fd: RawFd) -> io::Result<usize> {
    match usize::try_from(fd) {
        Ok(i) if i < FD_SETSIZE => Ok(i),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is at or above FD_SETSIZE ({FD_SETSIZE}): select(2) cannot watch it"),
        )),
    }
}

impl SelectPoller {
    pub fn new() -> Self {
        SelectPoller { read: empty_set(), write: empty_set(), tokens: vec![None; FD_SETSIZE], max_fd: -1 }
    }

    fn set(&mut self, fd: RawFd, wants: Wants) {
        // SAFETY: callers pass an `fd` that `slot` accepted (0 <= fd < FD_SETSIZE),
        // so every macro stays inside the bitmaps.
        unsafe {
            libc::FD_CLR(fd, &mut self.read);
            libc::FD_CLR(fd, &mut self.write);
            if wants.read {
                libc::FD_SET(fd, &mut self.read);
            }
            if wants.write {
                libc::FD_SET(fd, &mut self.write);
            }
        }
    }
}

impl Default for SelectPoller {
    fn default() -> Self {
        SelectPoller::new()
    }
}

impl Poller for SelectPoller {
    fn register(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        let i = slot(fd)?;
        if self.tokens[i].is_some() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("descriptor {fd} is already registered")));
        }
        self.tokens[i] = Some(token);
        self.set(fd, wants);
        self.max_fd = self.max_fd.max(fd);
        Ok(())
    }

    fn reregister(&mut self, fd: RawFd, token: usize, wants: Wants) -> io::Result<()> {
        let i = slot(fd)?;
        if self.tokens[i] != Some(token) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("descriptor {fd} is not registered with token {token}"),
            ));
        }
        self.set(fd, wants);
        Ok(())
    }

    fn forget(&mut self, fd: RawFd, _token: usize) {
        let Ok(i) = slot(fd) else {
            return;
        };
        self.tokens[i] = None;
        self.set(fd, Wants::default());
        if fd == self.max_fd {
            self.max_fd = self.tokens[..i].iter().rposition(Option::is_some).map_or(-1, |j| j as RawFd);
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        // select overwrites its sets with the ready subset: hand it copies.
        let mut read = self.read;
        let mut write = self.write;
        let mut tv = timeout.map(|t| {
            // Rounded up, so a sub-microsecond pause sleeps rather than spins.
            let us = t.as_nanos().div_ceil(1000);
            libc::timeval {
                tv_sec: libc::time_t::try_from(us / 1_000_000).unwrap_or(libc::time_t::MAX),
                tv_usec: (us % 1_000_000) as libc::suseconds_t,
            }
        });
        let tv_ptr = tv.as_mut().map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
        // SAFETY: both sets are valid fd_sets owned by this frame, `max_fd + 1` does
        // not exceed FD_SETSIZE, and `tv_ptr` is null or points to a live timeval.
        let ready = cvt(unsafe { libc::select(self.max_fd + 1, &mut read, &mut write, std::ptr::null_mut(), tv_ptr) })?;
        if ready == 0 {
            return Ok(());
        }
        for fd in 0..=self.max_fd {
            let Some(token) = self.tokens[fd as usize] else {
                continue;
            };
            // SAFETY: 0 <= fd <= max_fd < FD_SETSIZE.
            let hit = unsafe { libc::FD_ISSET(fd, &read) || libc::FD_ISSET(fd, &write) };
            if hit {
                events.push(Event { token });
            }
        }
        Ok(())
    }

    fn edge_triggered(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_descriptors_past_fd_setsize() {
        let mut poller = SelectPoller::new();
        let wants = Wants { read: true, write: false };
        let err = poller.register(FD_SETSIZE as RawFd, 7, wants).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("FD_SETSIZE"), "{err}");
        assert!(poller.register(-1, 7, wants).is_err());
        assert_eq!(poller.max_fd, -1);
    }

    #[test]
    fn max_fd_follows_forget() {
        let mut poller = SelectPoller::new();
        let wants = Wants::default();
        poller.register(3, 0, wants).unwrap();
        poller.register(9, 1, wants).unwrap();
        assert_eq!(poller.max_fd, 9);
        poller.forget(9, 1);
        assert_eq!(poller.max_fd, 3);
        poller.forget(3, 0);
        assert_eq!(poller.max_fd, -1);
    }
}
