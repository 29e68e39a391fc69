//! Serving one connection with blocking calls, on the calling thread, to the
//! end: what iterative, fork, thread, prefork and pool models do per client.
//!
//! Timeouts (`--idle-timeout`, `--header-timeout`) are socket timeouts here,
//! the blocking way: `SO_RCVTIMEO` and `SO_SNDTIMEO` are set to the idle
//! timeout once per connection, so a `read` or `write` that waits that long
//! returns `EAGAIN` and the connection is closed. The header deadline is kept
//! by this driver: from the read that began a request head
//! ([`proto::Session::head_started`]), each read may wait only until the
//! deadline (one `setsockopt` per read while a head is incomplete, none
//! otherwise). Without either flag the loop is the plain one: no clock, no
//! extra system call.
//!
//! A chat member (thread, pool) is served by [`crate::chat::threads`].

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use proto::{Session, READ_BUF_SIZE};

use crate::timeouts::{Expiry, Timeouts};
use crate::{stop, Shared, Stats};

/// Serve `stream` until the peer leaves or the session closes. The 16 KiB read
/// buffer lives on this thread's stack.
pub fn serve(mut stream: TcpStream, shared: &Shared) {
    if shared.proto == proto::Proto::Chat {
        return crate::chat::threads::serve(stream, shared);
    }
    serve_borrowed(&mut stream, shared);
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// By protocol: flush done, shut the write side down.
    Clean,
    /// An I/O error or a reset.
    Failed,
    /// A timeout closed it.
    TimedOut(Expiry),
}

/// [`serve`] without closing the socket at the end.
pub fn serve_borrowed(stream: &mut TcpStream, shared: &Shared) {
    let _ = crate::net::prepare(stream);
    let mut session = Session::new(shared.proto, shared.work);
    let mut buf = [0u8; READ_BUF_SIZE];
    let end = if shared.timeouts.any() {
        drive_timed(stream, &mut session, &mut buf, shared.timeouts)
    } else if drive(stream, &mut session, &mut buf) {
        End::Clean
    } else {
        End::Failed
    };
    if let End::TimedOut(expiry) = end {
        expiry.count(shared.stats);
    }
    // Count before the peer can see the close, so counters are final once it does.
    shared.stats.connection_closed(&session);
    if end == End::Clean {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// Returns whether the session ended by protocol (as opposed to an I/O error).
fn drive(stream: &mut TcpStream, session: &mut Session, buf: &mut [u8]) -> bool {
    loop {
        while !session.pending_output().is_empty() {
            match stream.write(session.pending_output()) {
                Ok(0) => return false,
                Ok(n) => session.consume_output(n),
                Err(e) if e.kind() == ErrorKind::Interrupted && !stop::requested() => continue,
                Err(_) => return false,
            }
        }
        if session.is_done() {
            return true;
        }
        match stream.read(buf) {
            Ok(0) => session.peer_closed(),
            Ok(n) => session.receive(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted && !stop::requested() => continue,
            Err(_) => return false,
        }
    }
}

/// A socket timeout ran out (`SO_RCVTIMEO`/`SO_SNDTIMEO` report `EAGAIN`).
fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// [`drive`] with the idle timeout as socket timeouts and the header deadline
/// kept here.
fn drive_timed(stream: &mut TcpStream, session: &mut Session, buf: &mut [u8], timeouts: Timeouts) -> End {
    if stream.set_read_timeout(timeouts.idle).is_err() || stream.set_write_timeout(timeouts.idle).is_err() {
        return End::Failed;
    }
    // The read timeout now set, and the deadline of the incomplete head.
    let mut read_timeout = timeouts.idle;
    let mut head_deadline: Option<Instant> = None;
    loop {
        while !session.pending_output().is_empty() {
            match stream.write(session.pending_output()) {
                Ok(0) => return End::Failed,
                Ok(n) => session.consume_output(n),
                Err(e) if e.kind() == ErrorKind::Interrupted && !stop::requested() => continue,
                Err(e) if timed_out(&e) => return End::TimedOut(Expiry::Idle),
                Err(_) => return End::Failed,
            }
        }
        if session.is_done() {
            return End::Clean;
        }
        let want = match (timeouts.header, session.head_started()) {
            (Some(header), true) => {
                let deadline = *head_deadline.get_or_insert_with(|| Instant::now() + header);
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return End::TimedOut(Expiry::Header);
                }
                // A zero timeout would mean "forever": at least a microsecond.
                Some(timeouts.idle.map_or(left, |idle| idle.min(left)).max(Duration::from_micros(1)))
            }
            _ => {
                head_deadline = None;
                timeouts.idle
            }
        };
        if want != read_timeout {
            if stream.set_read_timeout(want).is_err() {
                return End::Failed;
            }
            read_timeout = want;
        }
        match stream.read(buf) {
            Ok(0) => session.peer_closed(),
            Ok(n) => session.receive(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted && !stop::requested() => continue,
            Err(e) if timed_out(&e) => {
                // The read waited for the head's deadline rather than the idle
                // timeout (or the deadline has passed anyway).
                let for_head = read_timeout < timeouts.idle.or(Some(Duration::MAX));
                let header = head_deadline.is_some_and(|d| for_head || Instant::now() >= d);
                return End::TimedOut(if header { Expiry::Header } else { Expiry::Idle });
            }
            Err(_) => return End::Failed,
        }
    }
}

/// Convenience for models that count a connection as soon as it is accepted.
pub fn accepted(stats: &Stats) {
    Stats::add(&stats.accepted, 1);
}
