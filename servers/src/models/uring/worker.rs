//! One thread's ring: its accept, its connections, its buffers.

use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, Timespec};
use io_uring::{cqueue, opcode, squeue};
use proto::{Session, READ_BUF_SIZE};
use slab::Slab;

use super::buffers::{Buffers, GROUP};
use super::queue::{transient, Queue};
use crate::net::{self, classify_accept_error, AcceptFailure};
use crate::{stop, Shared, Stats};

/// The accept back-off ([`net::ACCEPT_BACKOFF`], 50 ms), read by the kernel
/// when the timeout request is submitted.
static BACKOFF: Timespec = Timespec::new().nsec(50_000_000);
/// While stopping: how often to look at the clock, and for how long to wait
/// for the cancelled requests' completions.
static DRAIN_TICK: Timespec = Timespec::new().nsec(10_000_000);
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// Send buffers kept for reuse, and the largest capacity worth keeping.
const SPARE_SENDS: usize = 64;
const SPARE_CAPACITY: usize = 64 * 1024;

/// `user_data` of the requests. Connection requests carry their slab key.
mod token {
    pub const ACCEPT: u64 = u64::MAX;
    pub const BACKOFF: u64 = u64::MAX - 1;
    pub const TICK: u64 = u64::MAX - 2;
    /// Cancels and buffer provisions: nothing to do when they complete.
    pub const NOTE: u64 = u64::MAX - 3;
    pub fn recv(key: usize) -> u64 {
        (key as u64) << 1
    }
    pub fn send(key: usize) -> u64 {
        (key as u64) << 1 | 1
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accept {
    Armed,
    Backoff,
    Idle,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recv {
    Idle,
    Armed,
    /// Cancelled; its final completion has not arrived yet.
    Cancelling,
    /// It found no buffer (`ENOBUFS`): queued in `starved` to be re-armed.
    Starved,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// The session is done: flush, shut the write side down, close.
    Graceful,
    /// The peer reset, or a send failed: drop what is left.
    Abort,
}

struct Conn {
    stream: TcpStream,
    session: Session,
    /// The bytes of the send in flight (taken out of the session); empty, with
    /// no allocation, when none is. Never touched while `sending`.
    out: Vec<u8>,
    sent: usize,
    sending: bool,
    recv: Recv,
    closing: Option<Closing>,
}

pub struct Worker<'a> {
    /// Declared first so that it is dropped (closed) before the buffers.
    q: Queue,
    bufs: Buffers,
    conns: Slab<Conn>,
    listener: &'a TcpListener,
    shared: Shared,
    accept: Accept,
    /// Multishot accept and recv (5.19 / 6.0); single-shot requests otherwise.
    multishot_accept: bool,
    multishot_recv: bool,
    /// Connections to drive once the current batch of completions is handled.
    dirty: Vec<usize>,
    /// A recv of this batch found no buffer: hand the kernel more.
    ran_out: bool,
    /// Connections whose recv found no buffer, in order. Re-arming them all at
    /// once while data waits on thousands of sockets would fail most of them
    /// again, round after round; each batch re-arms as many as there are buffers.
    starved: VecDeque<usize>,
    spare: Vec<Vec<u8>>,
}

impl<'a> Worker<'a> {
    /// Create the ring and buffers on the calling thread (the ring is
    /// single-issuer) and arm the accept.
    pub fn new(listener: &'a TcpListener, shared: Shared) -> io::Result<Worker<'a>> {
        let q = Queue::new()?;
        let (bufs, provide) = Buffers::new(&q.ring)?;
        let modern = bufs.is_ring();
        let mut worker = Worker {
            q,
            bufs,
            conns: Slab::with_capacity(1024),
            listener,
            shared,
            accept: Accept::Idle,
            multishot_accept: modern,
            multishot_recv: modern,
            dirty: Vec::new(),
            ran_out: false,
            starved: VecDeque::new(),
            spare: Vec::new(),
        };
        if let Some(entry) = provide {
            // SAFETY: the buffers live as long as the worker and are freed only
            // when nothing is in flight (see `Drop`).
            unsafe { worker.q.push(entry.user_data(token::NOTE)) };
        }
        worker.arm_accept();
        transient(worker.q.ring.submit())?;
        Ok(worker)
    }

    /// Serve until a stop is requested, then cancel everything in flight.
    pub fn run(mut self) -> io::Result<()> {
        let result = self.serve();
        if self.drain() {
            self.bufs.unregister(&self.q.ring)?;
        }
        result
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut batch = Vec::with_capacity(1024);
        while !stop::requested() {
            self.q.wait()?;
            batch.clear();
            self.q.reap(&mut batch);
            for &(user_data, result, flags) in &batch {
                self.complete(user_data, result, flags)?;
            }
            self.feed_starved();
            let mut dirty = std::mem::take(&mut self.dirty);
            for key in dirty.drain(..) {
                self.advance(key);
            }
            self.dirty = dirty;
            if self.accept == Accept::Idle && !stop::requested() {
                self.arm_accept();
            }
        }
        Ok(())
    }

    /// After the pool ran out: grow it, and let the starved recvs try again,
    /// about as many as there are buffers.
    fn feed_starved(&mut self) {
        if std::mem::take(&mut self.ran_out) {
            if let Some(entry) = self.bufs.grow() {
                // SAFETY: the buffers outlive every request (see `Drop`).
                unsafe { self.q.push(entry.user_data(token::NOTE)) };
            }
        }
        for _ in 0..self.bufs.provided() / 2 {
            let Some(key) = self.starved.pop_front() else { break };
            // The key may have been closed and reused since: only a connection
            // still starved is re-armed.
            if let Some(conn) = self.conns.get_mut(key).filter(|c| c.recv == Recv::Starved) {
                conn.recv = Recv::Idle;
                self.dirty.push(key);
            }
        }
    }

    fn arm_accept(&mut self) {
        let fd = Fd(self.listener.as_raw_fd());
        let entry = if self.multishot_accept {
            opcode::AcceptMulti::new(fd).flags(libc::SOCK_CLOEXEC).build()
        } else {
            let (addr, len) = (std::ptr::null_mut(), std::ptr::null_mut());
            opcode::Accept::new(fd, addr, len).flags(libc::SOCK_CLOEXEC).build()
        };
        // SAFETY: no address buffer is passed; the listener is borrowed for the
        // worker's lifetime and the accept is cancelled and reaped in `drain`.
        unsafe { self.q.push(entry.user_data(token::ACCEPT)) };
        self.accept = Accept::Armed;
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) -> io::Result<()> {
        match user_data {
            token::ACCEPT => return self.accepted(result, flags),
            token::BACKOFF => self.accept = Accept::Idle,
            token::TICK | token::NOTE => {}
            op if op & 1 == 0 => self.received((op >> 1) as usize, result, flags),
            op => self.sent((op >> 1) as usize, result),
        }
        Ok(())
    }

    fn accepted(&mut self, result: i32, flags: u32) -> io::Result<()> {
        if !cqueue::more(flags) {
            self.accept = Accept::Idle;
        }
        if result >= 0 {
            // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            Stats::add(&self.shared.stats.accepted, 1);
            let _ = net::prepare(&stream);
            let session = Session::new(self.shared.proto, self.shared.work);
            let key = self.conns.insert(Conn {
                stream,
                session,
                out: Vec::new(),
                sent: 0,
                sending: false,
                recv: Recv::Idle,
                closing: None,
            });
            self.dirty.push(key);
            return Ok(());
        }
        let err = io::Error::from_raw_os_error(-result);
        match classify_accept_error(&err) {
            AcceptFailure::Retry | AcceptFailure::WouldBlock => {}
            AcceptFailure::Exhausted => {
                Stats::add(&self.shared.stats.accept_backoffs, 1);
                let timeout = opcode::Timeout::new(&BACKOFF).build();
                // SAFETY: the timespec is a static.
                unsafe { self.q.push(timeout.user_data(token::BACKOFF)) };
                self.accept = Accept::Backoff;
            }
            AcceptFailure::Fatal if stop::requested() => {}
            AcceptFailure::Fatal => return Err(err),
        }
        Ok(())
    }

    fn received(&mut self, key: usize, result: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        if let Some(conn) = self.conns.get_mut(key) {
            if !cqueue::more(flags) {
                conn.recv = Recv::Idle;
            }
            match result {
                n if n > 0 => match bid {
                    Some(bid) => conn.session.receive(self.bufs.filled(bid, n as usize)),
                    None => conn.closing = Some(Closing::Abort),
                },
                0 => conn.session.peer_closed(),
                e if e == -libc::ENOBUFS => {
                    if conn.recv == Recv::Idle {
                        conn.recv = Recv::Starved;
                        self.starved.push_back(key);
                    }
                    self.ran_out = true;
                }
                e if e == -libc::ECANCELED => {}
                e if e == -libc::EINVAL && self.multishot_recv => {
                    crate::warn_rate_limited("io_uring: no multishot recv (Linux < 6.0), using single-shot recv");
                    self.multishot_recv = false;
                }
                _ => {
                    conn.closing.get_or_insert(Closing::Abort);
                }
            }
            self.dirty.push(key);
        }
        if let Some(bid) = bid {
            if let Some(entry) = self.bufs.give_back(bid) {
                // SAFETY: the buffers outlive every request (see `Drop`).
                unsafe { self.q.push(entry.user_data(token::NOTE)) };
            }
        }
    }

    fn sent(&mut self, key: usize, result: i32) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.sending = false;
        if result > 0 {
            conn.sent += result as usize;
        } else {
            conn.closing = Some(Closing::Abort);
        }
        if conn.sent < conn.out.len() && conn.closing != Some(Closing::Abort) {
            self.send(key); // a partial send: the rest, before anything else
        } else {
            let mut out = std::mem::take(&mut conn.out);
            if self.spare.len() < SPARE_SENDS && out.capacity() <= SPARE_CAPACITY {
                out.clear();
                self.spare.push(out);
            }
            self.dirty.push(key);
        }
    }

    /// Submit a send of the rest of `out`.
    fn send(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let rest = &conn.out[conn.sent..];
        let entry = opcode::Send::new(Fd(conn.stream.as_raw_fd()), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        conn.sending = true;
        // SAFETY: `out` is neither resized nor dropped while `sending`, and the
        // connection (its descriptor and its `out`) is removed from the slab only
        // once no send is in flight; moving the `Conn` within the slab does not
        // move the bytes `out` points to.
        unsafe { self.q.push(entry.user_data(token::send(key))) };
    }

    fn recv_entry(multishot: bool, fd: RawFd) -> squeue::Entry {
        if multishot {
            opcode::RecvMulti::new(Fd(fd), GROUP).build()
        } else {
            opcode::Recv::new(Fd(fd), std::ptr::null_mut(), READ_BUF_SIZE as u32)
                .buf_group(GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        }
    }

    /// The driver step of `proto::session`, in completion form: start a send if
    /// output waits and none is in flight, keep a recv armed exactly while the
    /// session wants input, and close once nothing is in flight any more.
    fn advance(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing.is_none() {
            if !conn.sending && !conn.session.pending_output().is_empty() {
                let mut out = self.spare.pop().unwrap_or_default();
                out.extend_from_slice(conn.session.pending_output());
                conn.session.consume_output(out.len());
                conn.out = out;
                conn.sent = 0;
                self.send(key);
            }
            let conn = &mut self.conns[key];
            if conn.session.is_done() && !conn.sending {
                conn.closing = Some(Closing::Graceful);
            } else if conn.session.wants_read() {
                if conn.recv == Recv::Idle {
                    let entry = Self::recv_entry(self.multishot_recv, conn.stream.as_raw_fd());
                    conn.recv = Recv::Armed;
                    // SAFETY: the recv selects one of the thread's provided
                    // buffers, which outlive every request; the descriptor stays
                    // open until the connection leaves the slab, which waits for
                    // the recv's final completion.
                    unsafe { self.q.push(entry.user_data(token::recv(key))) };
                }
            } else if conn.recv == Recv::Armed {
                // Output over the high-water mark, or the peer is done: stop
                // reading until it drains (bounded buffering).
                conn.recv = Recv::Cancelling;
                self.q.cancel(token::recv(key), token::NOTE);
            }
        }
        let conn = &mut self.conns[key];
        let Some(how) = conn.closing else {
            return;
        };
        if conn.recv == Recv::Armed {
            conn.recv = Recv::Cancelling;
            self.q.cancel(token::recv(key), token::NOTE);
        }
        if conn.sending {
            if how == Closing::Abort {
                self.q.cancel(token::send(key), token::NOTE);
            }
            return; // its completion drives this connection again
        }
        if conn.recv == Recv::Cancelling {
            return;
        }
        let conn = self.conns.remove(key);
        if how == Closing::Graceful {
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        self.shared.stats.connection_closed(&conn.session);
    }

    /// Cancel every request and wait (bounded) for their completions, so that
    /// no buffer is freed while the kernel may still use it. True when nothing
    /// is left in flight.
    fn drain(&mut self) -> bool {
        for (key, conn) in &self.conns {
            if matches!(conn.recv, Recv::Armed | Recv::Cancelling) {
                self.q.cancel(token::recv(key), token::NOTE);
            }
            if conn.sending {
                self.q.cancel(token::send(key), token::NOTE);
            }
        }
        match self.accept {
            Accept::Armed => self.q.cancel(token::ACCEPT, token::NOTE),
            Accept::Backoff => self.q.cancel(token::BACKOFF, token::NOTE),
            Accept::Idle => {}
        }
        let deadline = Instant::now() + DRAIN_LIMIT;
        let mut ticking = false;
        let mut batch = Vec::new();
        while self.q.in_flight > 0 && Instant::now() < deadline {
            if self.q.in_flight == usize::from(ticking) {
                self.q.cancel(token::TICK, token::NOTE); // only the clock is left
            } else if !ticking {
                let tick = opcode::Timeout::new(&DRAIN_TICK).build();
                // SAFETY: the timespec is a static.
                unsafe { self.q.push(tick.user_data(token::TICK)) };
                ticking = true;
            }
            if self.q.wait().is_err() {
                break;
            }
            batch.clear();
            self.q.reap(&mut batch);
            ticking &= !batch.iter().any(|&(user_data, ..)| user_data == token::TICK);
        }
        self.q.in_flight == 0
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        if self.q.in_flight > 0 {
            // The kernel may still read a send's bytes or write into a buffer:
            // keep both for the rest of the process rather than free them.
            crate::warn_rate_limited("io_uring: requests still in flight at exit; leaking their buffers");
            self.bufs.leak();
            std::mem::forget(std::mem::take(&mut self.conns));
        }
    }
}
