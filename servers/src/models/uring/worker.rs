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
use super::chat::RingChat;
use super::queue::{transient, Queue};
use crate::net::{self, classify_accept_error, AcceptFailure};
use crate::timeouts::{input_waiting, Due, Expiry, Watch, Wheel};
use crate::{stop, Shared, Stats};

/// The accept back-off ([`net::ACCEPT_BACKOFF`], 50 ms), read by the kernel
/// when the timeout request is submitted.
static BACKOFF: Timespec = Timespec::new().nsec(50_000_000);
/// While stopping: how often to look at the clock, and for how long to wait
/// for the cancelled requests' completions.
static DRAIN_TICK: Timespec = Timespec::new().nsec(10_000_000);
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// Bytes after which a multishot recv ends by itself (`IORING_RECV_MULTISHOT`
/// with a total length in `sqe->optlen`, Linux 6.17) and is re-armed only if the
/// session still wants input. Without it one wake-up of a flooded socket hands
/// the ring as many buffers as the kernel can fill (up to the pool, 4 MiB), all
/// for a connection that may have stopped wanting input at the first.
const RECV_CAP: usize = READ_BUF_SIZE;
/// Most bytes one capped recv can deliver: the kernel checks the cap after each
/// buffer it fills, so the last one may overshoot it by up to a buffer less a byte.
const RECV_CAP_MAX_DELIVERED: usize = RECV_CAP + READ_BUF_SIZE - 1;
/// Byte offset of the `optlen` field (the union with `file_index`) in an SQE.
const SQE_OPTLEN_OFFSET: usize = 44;

/// `user_data` of the requests. Connection requests carry their slab key.
mod token {
    pub const ACCEPT: u64 = u64::MAX;
    pub const BACKOFF: u64 = u64::MAX - 1;
    pub const TICK: u64 = u64::MAX - 2;
    /// Cancels and buffer provisions: nothing to do when they complete.
    pub const NOTE: u64 = u64::MAX - 3;
    /// The timing wheel's tick (`--idle-timeout`, `--header-timeout`).
    pub const WHEEL: u64 = u64::MAX - 4;
    /// The chat inbox's eventfd read.
    pub const WAKE: u64 = u64::MAX - 5;
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
pub(super) enum Closing {
    /// The session is done: flush, shut the write side down, close.
    Graceful,
    /// The peer reset, or a send failed: drop what is left.
    Abort,
}

pub(super) struct Conn {
    stream: TcpStream,
    pub(super) session: Session,
    /// Unique within this ring (slab keys are reused).
    pub(super) id: u64,
    /// A send of the session's pending output, from the session's own buffer,
    /// is in flight: until it completes the session is not called through
    /// `&mut` (see [`Worker::send`]).
    pub(super) sending: bool,
    /// Bytes received while a send is in flight, handed to the session when it
    /// completes. No recv is armed while any wait here, so this holds at most
    /// what one recv delivers.
    held: Vec<u8>,
    /// The peer's end of stream, received while a send was in flight.
    held_eof: bool,
    recv: Recv,
    /// Bytes delivered by the current recv (checked against [`RECV_CAP`]).
    recv_bytes: usize,
    /// The current (or last) recv was armed multishot.
    recv_multishot: bool,
    pub(super) closing: Option<Closing>,
    /// Its idle and header clocks, when the thread keeps a timing wheel.
    watch: Watch,
    /// Chat: lines for this member that came while a send was in flight,
    /// handed to the session when it completes.
    pub(super) held_out: Vec<u8>,
    /// Chat: dropped as slow while a send was in flight.
    pub(super) slow: bool,
    /// Chat: the member quit while a send was in flight.
    pub(super) close_after_send: bool,
}

pub struct Worker<'a> {
    /// Declared first so that it is dropped (closed) before the buffers.
    q: Queue,
    bufs: Buffers,
    conns: Slab<Conn>,
    listener: &'a TcpListener,
    shared: Shared,
    accept: Accept,
    /// Multishot accept (5.19) and capped multishot recv (6.17); single-shot
    /// requests otherwise.
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
    /// Timeouts: the same timing wheel as the readiness loops, woken by one
    /// timeout request per tick while it holds entries, rather than a linked
    /// timeout per recv (a timer per connection, re-armed with every recv, and
    /// no use for a multishot recv, which stays armed across requests).
    wheel: Option<Wheel>,
    /// The tick's length as the kernel reads it (when the request is submitted;
    /// boxed so that it stays put while the worker moves).
    tick: Box<Timespec>,
    tick_armed: bool,
    due: Vec<Due>,
    /// The chat room, when the protocol is chat.
    chat: Option<RingChat>,
    next_id: u64,
}

impl<'a> Worker<'a> {
    /// Create the ring and buffers on the calling thread (the ring is
    /// single-issuer) and arm the accept.
    pub fn new(listener: &'a TcpListener, shared: Shared, chat: Option<RingChat>) -> io::Result<Worker<'a>> {
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
            wheel: Wheel::new(shared.timeouts),
            tick: Box::new(Timespec::new()),
            tick_armed: false,
            due: Vec::new(),
            chat,
            next_id: 0,
        };
        if let Some(entry) = provide {
            // SAFETY: the buffers live as long as the worker and are freed only
            // when nothing is in flight (see `Drop`).
            unsafe { worker.q.push(entry.user_data(token::NOTE)) };
        }
        worker.arm_accept();
        worker.arm_wake();
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
            self.arm_tick();
            self.q.wait()?;
            if let Some(wheel) = &mut self.wheel {
                wheel.set_now(Instant::now());
            }
            batch.clear();
            self.q.reap(&mut batch);
            for &(user_data, result, flags) in &batch {
                self.complete(user_data, result, flags)?;
            }
            self.feed_starved();
            loop {
                self.chat_turn();
                let mut dirty = std::mem::take(&mut self.dirty);
                if dirty.is_empty() {
                    break;
                }
                for key in dirty.drain(..) {
                    self.advance(key);
                }
                self.dirty = dirty;
            }
            self.expire();
            self.arm_wake();
            if self.accept == Accept::Idle && !stop::requested() {
                self.arm_accept();
            }
        }
        Ok(())
    }

    /// Keep one timeout request in flight, ending at the wheel's next tick,
    /// while the wheel holds entries.
    fn arm_tick(&mut self) {
        let Some(left) = self.wheel.as_ref().and_then(Wheel::timeout) else { return };
        if self.tick_armed {
            return;
        }
        *self.tick = Timespec::from(left.max(Duration::from_micros(100)));
        let timeout = opcode::Timeout::new(&*self.tick).build();
        // SAFETY: the timespec is boxed and owned by the worker, and is not
        // changed again until this request's completion clears `tick_armed`
        // (the kernel reads it when the request is submitted anyway).
        unsafe { self.q.push(timeout.user_data(token::WHEEL)) };
        self.tick_armed = true;
    }

    /// Close the connections whose timeout passed (cancelling their requests
    /// first, as any close does); move the others on.
    fn expire(&mut self) {
        let Some(wheel) = &mut self.wheel else { return };
        let mut due = std::mem::take(&mut self.due);
        wheel.expired(&mut due);
        for entry in due.drain(..) {
            let (Some(wheel), Some(conn)) = (&mut self.wheel, self.conns.get_mut(entry.key)) else { continue };
            if conn.id != entry.id || conn.closing.is_some() {
                continue;
            }
            match wheel.check(&mut conn.watch, entry, false) {
                None => {}
                // Bytes the kernel holds that no completion has brought yet
                // (a backlog of completions, a starved recv) for a session
                // that wants them: not idle.
                Some(Expiry::Idle)
                    if conn.session.wants_read() && conn.held.is_empty() && input_waiting(conn.stream.as_raw_fd()) =>
                {
                    wheel.postpone(&mut conn.watch, entry.key, entry.id);
                }
                Some(expiry) => {
                    expiry.count(self.shared.stats);
                    conn.closing = Some(Closing::Abort);
                    self.advance(entry.key);
                }
            }
        }
        self.due = due;
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

    /// Chat: serve the commands of the connections completions touched, and
    /// fan out what the inbox holds (closes in `advance` post leave notices to
    /// it, hence the loop in `serve` until nothing is left).
    fn chat_turn(&mut self) {
        let Some(chat) = self.chat.as_mut() else { return };
        for &key in &self.dirty {
            if let Some(conn) = self.conns.get_mut(key) {
                chat.serve(key, conn);
            }
        }
        chat.drain(&mut self.conns, &mut self.dirty);
    }

    /// Chat: keep a read armed on the inbox's eventfd.
    fn arm_wake(&mut self) {
        let Some(chat) = self.chat.as_mut() else { return };
        if chat.armed || stop::requested() {
            return;
        }
        if let Some(entry) = chat.wake_read() {
            chat.armed = true;
            // SAFETY: the read writes 8 bytes into the link's boxed counter,
            // which the worker keeps until every request is reaped (`drain`,
            // `Drop`); the eventfd is owned by the hub, which the link keeps alive.
            unsafe { self.q.push(entry.user_data(token::WAKE)) };
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
            token::WHEEL => self.tick_armed = false,
            token::TICK | token::NOTE => {}
            token::WAKE => {
                if let Some(chat) = self.chat.as_mut() {
                    chat.armed = false; // drained by `chat_turn`, re-armed after
                }
            }
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
            self.next_id += 1;
            let key = self.conns.insert(Conn {
                stream,
                session,
                id: self.next_id,
                sending: false,
                held: Vec::new(),
                held_eof: false,
                recv: Recv::Idle,
                recv_bytes: 0,
                recv_multishot: false,
                closing: None,
                watch: Watch::default(),
                held_out: Vec::new(),
                slow: false,
                close_after_send: false,
            });
            if let Some(wheel) = &mut self.wheel {
                let conn = &mut self.conns[key];
                wheel.watch(&mut conn.watch, key, conn.id);
            }
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
            let more = cqueue::more(flags);
            if !more {
                conn.recv = Recv::Idle;
            }
            match result {
                n if n > 0 => match bid {
                    Some(bid) => {
                        // Bytes that arrive after the session stopped wanting
                        // input (the recv is being cancelled, or its cap is not
                        // reached yet) wait in the session's input, or in `held`
                        // while a send is in flight: at most what one capped recv
                        // delivers.
                        let data = self.bufs.filled(bid, n as usize);
                        if conn.sending {
                            conn.held.extend_from_slice(data);
                        } else {
                            conn.session.receive(data);
                        }
                        conn.recv_bytes += n as usize;
                        if more && conn.recv == Recv::Armed && conn.recv_bytes > RECV_CAP_MAX_DELIVERED {
                            // The kernel took the request but not its cap:
                            // nothing would bound what a flooded socket hands over.
                            crate::warn_rate_limited(
                                "io_uring: the kernel ignores the multishot recv cap, using single-shot recv",
                            );
                            self.multishot_recv = false;
                            conn.recv = Recv::Cancelling;
                            self.q.cancel(token::recv(key), token::NOTE);
                        }
                    }
                    None => conn.closing = Some(Closing::Abort),
                },
                0 if conn.sending => conn.held_eof = true,
                0 => conn.session.peer_closed(),
                e if e == -libc::ENOBUFS => {
                    if conn.recv == Recv::Idle {
                        conn.recv = Recv::Starved;
                        self.starved.push_back(key);
                    }
                    self.ran_out = true;
                }
                e if e == -libc::ECANCELED => {}
                e if e == -libc::EINVAL && conn.recv_multishot => {
                    crate::warn_rate_limited(
                        "io_uring: no capped multishot recv (Linux < 6.17), using single-shot recv",
                    );
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
        // The kernel is done with the session's buffer: the session may be
        // called again, first with what arrived meanwhile, in order.
        if result > 0 {
            conn.session.consume_output(result as usize);
        } else {
            conn.closing = Some(Closing::Abort);
        }
        if !conn.held.is_empty() {
            conn.session.receive(&conn.held);
            conn.held.clear();
            if conn.held.capacity() > READ_BUF_SIZE {
                conn.held = Vec::new();
            }
        }
        if std::mem::take(&mut conn.held_eof) {
            conn.session.peer_closed();
        }
        if !conn.held_out.is_empty() {
            // Taken whole while what the send left is under the outbox bound;
            // the member is dropped as slow otherwise (the kernel took too little).
            conn.session.deliver(&conn.held_out);
            conn.held_out = Vec::new();
        }
        if std::mem::take(&mut conn.close_after_send) {
            conn.session.close();
        }
        self.dirty.push(key); // a partial send: `advance` sends the rest
    }

    /// Submit a send of the session's pending output, from its own buffer.
    fn send(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let out = conn.session.pending_output();
        let len = out.len().min(u32::MAX as usize) as u32;
        let entry = opcode::Send::new(Fd(conn.stream.as_raw_fd()), out.as_ptr(), len).flags(libc::MSG_NOSIGNAL).build();
        conn.sending = true;
        // SAFETY: the bytes are the session's pending output. Until this send's
        // completion the session is called only through `&self` (`received`
        // keeps data and end of stream in `held` while `sending`; `sent` is the
        // first to call it through `&mut` again), and `Session` has no interior
        // mutability, so its output buffer is neither reallocated nor freed
        // meanwhile. The connection (its descriptor and session) leaves the slab
        // only once no send is in flight, and moving the `Conn` within the slab
        // does not move the buffer's heap memory.
        unsafe { self.q.push(entry.user_data(token::send(key))) };
    }

    fn recv_entry(multishot: bool, fd: RawFd) -> squeue::Entry {
        if multishot {
            capped(opcode::RecvMulti::new(Fd(fd), GROUP).build(), RECV_CAP as u32)
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
        if let Some(wheel) = &mut self.wheel {
            // Driven after a completion (bytes in or out, an end of stream):
            // the connection moved.
            wheel.touch(&mut conn.watch, key, conn.id, conn.session.head_started());
        }
        if conn.closing.is_none() {
            if !conn.sending && !conn.session.pending_output().is_empty() {
                self.send(key);
            }
            let conn = &mut self.conns[key];
            if conn.session.is_done() && !conn.sending {
                conn.closing = Some(Closing::Graceful);
            } else if conn.session.wants_read() {
                // Not while bytes wait in `held`: that bounds them to one recv.
                if conn.recv == Recv::Idle && conn.held.is_empty() {
                    let entry = Self::recv_entry(self.multishot_recv, conn.stream.as_raw_fd());
                    conn.recv = Recv::Armed;
                    conn.recv_bytes = 0;
                    conn.recv_multishot = self.multishot_recv;
                    // SAFETY: the recv selects one of the thread's provided
                    // buffers, which outlive every request; the descriptor stays
                    // open until the connection leaves the slab, which waits for
                    // the recv's final completion.
                    unsafe { self.q.push(entry.user_data(token::recv(key))) };
                }
            } else if conn.recv == Recv::Armed {
                // Output (the send in flight included) over the high-water
                // mark, or the peer is done: stop reading until it drains
                // (bounded buffering). A recv is armed (a starved one re-armed)
                // only in the branch above, while the session wants input.
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
        let mut conn = self.conns.remove(key);
        if how == Closing::Graceful {
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        if conn.slow {
            conn.session.drop_slow(); // nothing is in flight any more
        }
        if let Some(chat) = self.chat.as_mut() {
            chat.closed(key, &conn);
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
        if self.chat.as_ref().is_some_and(|c| c.armed) {
            self.q.cancel(token::WAKE, token::NOTE);
        }
        match self.accept {
            Accept::Armed => self.q.cancel(token::ACCEPT, token::NOTE),
            Accept::Backoff => self.q.cancel(token::BACKOFF, token::NOTE),
            Accept::Idle => {}
        }
        if self.tick_armed {
            self.q.cancel(token::WHEEL, token::NOTE);
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

/// `entry` (a multishot recv) with a total byte cap: the kernel ends it, without
/// `IORING_CQE_F_MORE`, once it has delivered `cap` bytes. Kernels before 6.17
/// refuse the request with `EINVAL` (the field was `file_index`, which a recv
/// must leave zero), which [`Worker::received`] answers by falling back to
/// single-shot recv.
fn capped(mut entry: squeue::Entry, cap: u32) -> squeue::Entry {
    const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);
    let sqe = std::ptr::addr_of_mut!(entry).cast::<u8>();
    // SAFETY: `squeue::Entry` is a `#[repr(C)]` wrapper of the kernel's 64-byte
    // `struct io_uring_sqe` (size checked above), whose bytes 44..48 are the
    // `__u32` union of `optlen` and `file_index` (checked against the crate's
    // own `SetSockOpt` builder in the tests below); the write stays in bounds
    // and any bit pattern is a valid value there.
    unsafe { sqe.add(SQE_OPTLEN_OFFSET).cast::<u32>().write_unaligned(cap) };
    entry
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        if self.q.in_flight > 0 {
            // The kernel may still read a send's bytes or write into a buffer:
            // keep both for the rest of the process rather than free them.
            crate::warn_rate_limited("io_uring: requests still in flight at exit; leaking their buffers");
            self.bufs.leak();
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(self.chat.take()); // its eventfd read's counter
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(entry: &squeue::Entry) -> [u8; 64] {
        let mut out = [0u8; 64];
        // SAFETY: an `Entry` is 64 initialised bytes (a zeroed SQE that the
        // builders fill in), read here through a byte pointer into a local copy.
        unsafe { std::ptr::copy_nonoverlapping(std::ptr::addr_of!(*entry).cast::<u8>(), out.as_mut_ptr(), 64) };
        out
    }

    #[test]
    fn the_cap_lands_where_the_kernel_reads_optlen() {
        let optlen = 0x1234_5678u32;
        let reference = opcode::SetSockOpt::new(Fd(3), 0, 0, std::ptr::null(), optlen).build();
        let at = &bytes(&reference)[SQE_OPTLEN_OFFSET..SQE_OPTLEN_OFFSET + 4];
        assert_eq!(at, optlen.to_ne_bytes(), "optlen is not at byte {SQE_OPTLEN_OFFSET}");

        let plain = opcode::RecvMulti::new(Fd(3), GROUP).build().user_data(7);
        let with_cap = capped(plain.clone(), RECV_CAP as u32);
        let (before, after) = (bytes(&plain), bytes(&with_cap));
        for i in 0..64 {
            if (SQE_OPTLEN_OFFSET..SQE_OPTLEN_OFFSET + 4).contains(&i) {
                continue;
            }
            assert_eq!(before[i], after[i], "byte {i} changed");
        }
        assert_eq!(&after[SQE_OPTLEN_OFFSET..SQE_OPTLEN_OFFSET + 4], (RECV_CAP as u32).to_ne_bytes());
        assert_eq!(with_cap.get_user_data(), 7);
    }
}
