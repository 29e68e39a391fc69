//! One non-blocking connection driven by readiness events, shared by every
//! readiness-based reactor (epoll ET or LT, poll, select; one or many loops).
//!
//! [`Conn::drive`] follows mio's rules for edge-triggered readiness: write until
//! the output is gone or the socket says `WouldBlock`, read until `WouldBlock`,
//! and report exactly the interest that is still wanted. Asking for WRITABLE
//! only while output waits, and READABLE only while the session wants input,
//! also makes the same code correct under level-triggered back ends (which
//! would otherwise report a writable socket forever).

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use proto::Session;

use crate::timeouts::Watch;
use crate::Stats;

/// What the connection waits for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Wants {
    pub read: bool,
    pub write: bool,
}

/// The result of driving a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// Still open; wait for these readiness kinds.
    Wait(Wants),
    /// Finished (or failed): deregister and drop it.
    Closed,
}

/// A connection owned by a reactor.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    pub session: Session,
    /// The interest currently registered with the poller.
    pub registered: Wants,
    /// Unique within its event loop (slab keys are reused; ids are not).
    pub id: u64,
    /// Its idle and header clocks, when the loop keeps a timing wheel.
    pub watch: Watch,
}

impl Conn {
    pub fn new(stream: TcpStream, session: Session, id: u64) -> Self {
        Conn { stream, session, registered: Wants::default(), id, watch: Watch::default() }
    }

    /// Make all the progress possible without blocking. `buf` is the thread's
    /// shared read buffer.
    pub fn drive(&mut self, buf: &mut [u8]) -> Drive {
        loop {
            let mut write_blocked = false;
            while !self.session.pending_output().is_empty() {
                match self.stream.write(self.session.pending_output()) {
                    Ok(0) => return Drive::Closed,
                    Ok(n) => self.session.consume_output(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        write_blocked = true;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Drive::Closed,
                }
            }
            if self.session.is_done() {
                return Drive::Closed;
            }
            if !self.session.wants_read() {
                // Output over the high-water mark, or (reactor + pool) only
                // waiting for answers from the pool.
                return Drive::Wait(Wants { read: false, write: !self.session.pending_output().is_empty() });
            }
            match self.stream.read(buf) {
                Ok(0) => self.session.peer_closed(),
                Ok(n) => self.session.receive(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Drive::Wait(Wants { read: true, write: write_blocked });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Drive::Closed,
            }
        }
    }

    /// Account for the finished connection, then close it (with a FIN first if
    /// the session ended by protocol). Counting comes first so that counters
    /// are final by the time the peer sees the close.
    pub fn finish(self, stats: &Stats) {
        stats.connection_closed(&self.session);
        if self.session.is_done() {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
    }
}
