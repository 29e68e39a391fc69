//! The io_uring back end (`--engine uring`): completions instead of readiness.
//!
//! With epoll a request costs a `sendto` and a `recvfrom`, and the ready
//! sockets of a turn share an `epoll_wait`. Here a loop turn makes one system
//! call, `io_uring_enter`: it submits the sends the previous turn queued and
//! runs the receives the kernel completed meanwhile. The kernel's work per byte
//! (TCP, loopback) stays; what goes is the entry and exit of two system calls
//! per request, and the file lookups and copies of their arguments.
//!
//! # Design
//!
//! - Ring: `uring_kit::Queue`, single-issuer with deferred task running where
//!   the kernel has it (6.1): completions run only inside this thread's
//!   `io_uring_enter`, never in between.
//! - Connect: the socket is opened and its connect issued as for epoll
//!   ([`super::socket::open`]); a one-shot `POLL_ADD` (`POLLOUT`) then waits for
//!   the outcome, read from `SO_ERROR`. The connect latency spans what it spans
//!   with epoll.
//! - Receive: once established, one multishot `RECV` per connection selects
//!   from the thread's provided buffers (`uring_kit::Buffers`, [`POOL`]): the
//!   kernel takes a buffer only when bytes arrive, the engine frames them where
//!   they lie and gives the buffer back at once. The receive stays armed for the
//!   socket's life; it ends on end of file, on an error, or when the pool ran
//!   dry (`ENOBUFS`): the pool then grows, and each turn re-arms about as many
//!   starved receives as there are buffers. Kernels without multishot receive
//!   (before 6.0) get a single-shot `RECV`, re-armed after each completion.
//! - Send: at most one `SEND` in flight per connection, from the thread's copy
//!   of the request batch, which neither moves nor is freed while a send may
//!   read it; what the schedule issues meanwhile goes when it completes.
//! - Waiting: `io_uring_enter` with a timeout up to the loop's next deadline
//!   (its timer heap: no timerfd), or without waiting while the loop spins.
//! - Close: a socket's requests are cancelled, and its descriptor closed only
//!   when none of them is in flight any more, so that its number cannot go to a
//!   new socket while a submitted request still names it. Every request carries
//!   its slot, the socket's generation and the operation: completions of a
//!   closed socket are recognised and only give back their buffer. At the end of
//!   the run everything is cancelled and reaped (for at most 500 ms) before the
//!   buffers are freed; what is still in flight then is leaked rather than freed.
//! - Time: a request counts as sent when the loop queues it; the kernel takes
//!   it at the end of the turn, after the rest of the turn's completions. The
//!   answers of a turn are timed when its enter returns, one clock read for
//!   all: the kernel ran their receives inside that enter (deferred task
//!   running), so they all arrived then; with epoll each is timed when read.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::types::Fd;
use io_uring::{cqueue, opcode, squeue};
use socket2::Socket;
use uring_kit::buffers::GROUP;
use uring_kit::{Buffers, Pool, Queue};

use super::{Engine, Io, Sent};
use crate::clock::now_ns;
use crate::error::LoadError;
use crate::plan::Plan;
use crate::recorder::ErrorKind;

/// The receive buffers of a thread: 16 KiB each (one `read` of the epoll
/// engine), 64 at first, up to 1,024 (16 MiB of address space; resident is
/// what answers have written, a page or so per buffer for small answers).
pub const POOL: Pool = Pool { size: proto::READ_BUF_SIZE, most: 1024, first: 64 };
/// At the end: how long to wait for the cancelled requests, and how often to look.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
const DRAIN_TICK: Duration = Duration::from_millis(10);

/// The operations, in the low byte of a request's `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Connect = 1,
    Recv = 2,
    Send = 3,
}

/// `user_data` of requests that need no handling (cancels, buffers given back).
const NOTE: u64 = u64::MAX;
/// Generations are compared on 24 bits.
const GEN_MASK: u32 = 0xFF_FFFF;

/// `user_data` of operation `op` on slot `i`'s socket of generation `gen`.
fn token(i: usize, gen: u32, op: Op) -> u64 {
    (i as u64) << 32 | u64::from(gen & GEN_MASK) << 8 | op as u64
}

/// The slot, generation and operation of a `user_data` (`None` for [`NOTE`]).
fn parse(user_data: u64) -> Option<(usize, u32, Op)> {
    let op = match user_data & 0xFF {
        1 => Op::Connect,
        2 => Op::Recv,
        3 => Op::Send,
        _ => return None,
    };
    Some(((user_data >> 32) as usize, (user_data >> 8) as u32 & GEN_MASK, op))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Recv {
    #[default]
    Idle,
    Armed,
    /// It found no buffer (`ENOBUFS`): queued in `starved` to be re-armed.
    Starved,
}

/// One slot's socket and its requests in flight.
#[derive(Debug, Default)]
struct Sock {
    socket: Option<Socket>,
    /// Bumped at each close: completions of an earlier socket are stale.
    gen: u32,
    /// Requests of the current socket whose final completion has not come.
    in_flight: u32,
    connecting: bool,
    recv: Recv,
    sending: bool,
    /// Closed sockets of this slot with requests still in flight: generation,
    /// socket (closed when the last of them completes), requests left.
    closing: Vec<(u32, Socket, u32)>,
}

impl Sock {
    /// Is a completion of generation `gen` (masked) about the current socket?
    fn current(&self, gen: u32) -> bool {
        self.socket.is_some() && self.gen & GEN_MASK == gen
    }

    /// The final completion of a request of closed generation `gen` came.
    fn release(&mut self, gen: u32) {
        if let Some(k) = self.closing.iter().position(|(g, ..)| g & GEN_MASK == gen) {
            self.closing[k].2 -= 1;
            if self.closing[k].2 == 0 {
                self.closing.swap_remove(k); // closes the descriptor
            }
        }
    }
}

/// See the module documentation.
pub struct Uring {
    /// Declared first so that the ring is closed before the buffers are unmapped.
    q: Queue,
    /// Lent out while a turn's completions are handled (see [`Io::turn`]).
    bufs: Option<Buffers>,
    socks: Vec<Sock>,
    /// The plan's request batch, which sends read from.
    batch: Box<[u8]>,
    /// Completions of the current turn: user_data, result, flags.
    cqes: Vec<(u64, i32, u32)>,
    /// Multishot receive (6.0); single-shot once the kernel refused it.
    multishot: bool,
    /// A receive of this turn found no buffer: grow the pool.
    ran_out: bool,
    /// Slots whose receive found no buffer, in order.
    starved: VecDeque<usize>,
}

/// Can this kernel run the engine? The reason it cannot, otherwise.
fn probe() -> Result<(), LoadError> {
    uring_kit::probe(&[
        ("send", opcode::Send::CODE),
        ("recv", opcode::Recv::CODE),
        ("poll", opcode::PollAdd::CODE),
        ("async cancel", opcode::AsyncCancel::CODE),
        ("provide buffers", opcode::ProvideBuffers::CODE),
    ])
    .map_err(LoadError::NoUring)
}

/// The thread's ring.
fn ring() -> Result<Queue, LoadError> {
    Queue::new().map_err(|e| LoadError::NoUring(format!("io_uring_setup failed: {e}")))
}

/// Fail early, before any connection, where `--engine uring` cannot run.
pub fn available() -> Result<(), LoadError> {
    probe()
}

impl Uring {
    /// Queue `entry` for slot `i`'s current socket.
    ///
    /// # Safety
    /// What `entry` points to must stay valid until its final completion.
    unsafe fn push(&mut self, i: usize, op: Op, entry: squeue::Entry) {
        let s = &mut self.socks[i];
        s.in_flight += 1;
        // SAFETY: forwarded from the caller.
        unsafe { self.q.push(entry.user_data(token(i, s.gen, op))) };
    }

    fn cancel(&mut self, i: usize, gen: u32, op: Op) {
        self.q.cancel(token(i, gen, op), NOTE);
    }

    /// Keep a receive armed on slot `i`'s socket.
    fn arm_recv(&mut self, i: usize) {
        let Some(fd) = self.socks[i].socket.as_ref().map(|s| Fd(s.as_raw_fd())) else { return };
        let entry = if self.multishot {
            opcode::RecvMulti::new(fd, GROUP).build()
        } else {
            let len = POOL.size as u32;
            opcode::Recv::new(fd, std::ptr::null_mut(), len)
                .buf_group(GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        };
        self.socks[i].recv = Recv::Armed;
        // SAFETY: the receive selects one of the thread's buffers, which outlive
        // every request (see `Drop`); the descriptor stays open until the
        // request's final completion (`close` defers it).
        unsafe { self.push(i, Op::Recv, entry) };
    }

    /// Wait for slot `i`'s connect to complete.
    fn arm_connect(&mut self, i: usize) {
        let Some(fd) = self.socks[i].socket.as_ref().map(|s| Fd(s.as_raw_fd())) else { return };
        self.socks[i].connecting = true;
        // SAFETY: a poll points to no memory; the descriptor stays open until
        // the request's final completion (`close` defers it).
        unsafe { self.push(i, Op::Connect, opcode::PollAdd::new(fd, libc::POLLOUT as u32).build()) };
    }

    /// Give buffer `bid` back to the kernel.
    fn give_back(q: &mut Queue, bufs: &mut Buffers, bid: Option<u16>) {
        if let Some(entry) = bid.and_then(|bid| bufs.give_back(bid)) {
            // SAFETY: the buffers outlive every request (see `Drop`).
            unsafe { q.push(entry.user_data(NOTE)) };
        }
    }

    /// After the pool ran dry: grow it, and re-arm about as many of the
    /// starved receives as there are buffers (re-arming thousands at once
    /// would starve most of them again).
    fn feed_starved(&mut self) {
        if std::mem::take(&mut self.ran_out) {
            if let Some(entry) = self.bufs.as_mut().and_then(Buffers::grow) {
                // SAFETY: the buffers outlive every request (see `Drop`).
                unsafe { self.q.push(entry.user_data(NOTE)) };
            }
        }
        let room = self.bufs.as_ref().map_or(0, |b| b.provided() / 2);
        for _ in 0..room {
            let Some(i) = self.starved.pop_front() else { break };
            // Closed (and maybe reopened) since: only a receive still starved is re-armed.
            if self.socks[i].recv == Recv::Starved && self.socks[i].socket.is_some() {
                self.arm_recv(i);
            }
        }
    }
}

impl Io for Uring {
    fn new(plan: &Plan, slots: usize) -> Result<Self, LoadError> {
        let q = ring()?;
        let (bufs, provide) =
            Buffers::with_pool(&q.ring, POOL).map_err(|e| LoadError::io("io_uring provided buffers", e))?;
        let mut me = Uring {
            multishot: bufs.is_ring(),
            q,
            bufs: Some(bufs),
            socks: (0..slots).map(|_| Sock::default()).collect(),
            batch: plan.batch.clone().into_boxed_slice(),
            cqes: Vec::with_capacity(1024),
            ran_out: false,
            starved: VecDeque::new(),
        };
        if let Some(entry) = provide {
            // SAFETY: the buffers outlive every request (see `Drop`).
            unsafe { me.q.push(entry.user_data(NOTE)) };
        }
        Ok(me)
    }

    fn connect(&mut self, i: usize, addr: SocketAddr, source: Option<IpAddr>) -> io::Result<()> {
        self.socks[i].socket = Some(super::socket::open(addr, source)?);
        self.arm_connect(i);
        Ok(())
    }

    fn send(&mut self, i: usize, bytes: Range<usize>) -> io::Result<Sent> {
        let Some(fd) = self.socks[i].socket.as_ref().map(|s| Fd(s.as_raw_fd())) else { return Ok(Sent::Now(0)) };
        let data = &self.batch[bytes];
        let entry = opcode::Send::new(fd, data.as_ptr(), data.len() as u32).flags(libc::MSG_NOSIGNAL).build();
        self.socks[i].sending = true;
        // SAFETY: the bytes are the batch's, boxed (they do not move with `self`)
        // and never written; `Drop` frees them only when no request is in flight
        // (it leaks them otherwise). The descriptor stays open until the send's
        // completion (`close` defers it).
        unsafe { self.push(i, Op::Send, entry) };
        Ok(Sent::Queued)
    }

    fn close(&mut self, i: usize) {
        let s = &mut self.socks[i];
        let Some(socket) = s.socket.take() else { return };
        let gen = s.gen;
        s.gen = s.gen.wrapping_add(1);
        let ops = [(s.connecting, Op::Connect), (s.recv == Recv::Armed, Op::Recv), (s.sending, Op::Send)];
        (s.connecting, s.recv, s.sending) = (false, Recv::Idle, false);
        match std::mem::take(&mut s.in_flight) {
            0 => drop(socket),
            left => s.closing.push((gen, socket, left)),
        }
        for (_, op) in ops.into_iter().filter(|(armed, _)| *armed) {
            self.cancel(i, gen, op);
        }
    }

    fn turn(engine: &mut Engine<'_, Self>, wake_at: Option<u64>) -> Result<bool, LoadError> {
        let timeout = wake_at.map(|at| Duration::from_nanos(at.saturating_sub(now_ns())));
        engine.io.q.wait_at_most(timeout).map_err(|e| LoadError::io("io_uring_enter", e))?;
        let mut cqes = std::mem::take(&mut engine.io.cqes);
        cqes.clear();
        engine.io.q.reap(&mut cqes);
        let mut bufs = engine.io.bufs.take().expect("the buffers are put back after every turn");
        // The kernel ran this turn's receives inside the enter that just
        // returned: one instant for all of them (it saves a clock read per
        // completion, and the ones handled last are not timed later than the first).
        let now = now_ns();
        for &(user_data, result, flags) in &cqes {
            complete(engine, &mut bufs, user_data, result, flags, now);
        }
        engine.io.bufs = Some(bufs);
        engine.io.feed_starved();
        let any = !cqes.is_empty();
        engine.io.cqes = cqes;
        Ok(any)
    }

    fn finish(&mut self) {
        let open = self.socks.iter().flat_map(|s| s.socket.iter().chain(s.closing.iter().map(|(_, socket, _)| socket)));
        for socket in open {
            let _ = socket.set_linger(Some(Duration::ZERO));
        }
    }
}

/// Hand one completion to the engine, and its buffer back to the kernel.
fn complete(engine: &mut Engine<'_, Uring>, bufs: &mut Buffers, user_data: u64, result: i32, flags: u32, now: u64) {
    let bid = cqueue::buffer_select(flags);
    let more = cqueue::more(flags);
    if let Some((i, gen, op)) = parse(user_data) {
        let s = &mut engine.io.socks[i];
        if !s.current(gen) {
            if !more {
                s.release(gen);
            }
        } else {
            if !more {
                s.in_flight -= 1;
            }
            match op {
                Op::Connect => connect_completed(engine, i, result, now),
                Op::Send => {
                    s.sending = false;
                    let sent =
                        if result < 0 { Err(io::Error::from_raw_os_error(-result)) } else { Ok(result as usize) };
                    engine.send_completed(i, sent, now);
                }
                Op::Recv => received(engine, bufs, i, (result, bid, more), now),
            }
        }
    }
    Uring::give_back(&mut engine.io.q, bufs, bid);
}

/// Slot `i`'s socket turned writable, or the poll failed.
fn connect_completed(engine: &mut Engine<'_, Uring>, i: usize, result: i32, now: u64) {
    engine.io.socks[i].connecting = false;
    if result < 0 {
        let e = io::Error::from_raw_os_error(-result);
        return engine.connect_failed(i, super::connect_kind(&e), &e, now);
    }
    let Some(socket) = engine.io.socks[i].socket.as_ref() else { return };
    match socket.take_error() {
        Ok(Some(e)) | Err(e) => return engine.connect_failed(i, super::connect_kind(&e), &e, now),
        Ok(None) => {}
    }
    match socket.peer_addr() {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotConnected => return engine.io.arm_connect(i),
        Err(e) => return engine.connect_failed(i, ErrorKind::ConnectOther, &e, now),
    }
    engine.io.arm_recv(i);
    engine.connected(i, now);
}

/// A receive of slot `i` completed: `result` bytes in buffer `bid`, and `more`
/// to come from the same request.
fn received(engine: &mut Engine<'_, Uring>, bufs: &Buffers, i: usize, completion: (i32, Option<u16>, bool), now: u64) {
    let (result, bid, more) = completion;
    let io = &mut engine.io;
    if !more {
        io.socks[i].recv = Recv::Idle;
    }
    match result {
        n if n > 0 => {
            let Some(bid) = bid else {
                let e = io::Error::other("a receive completed without a buffer");
                return engine.io_failed(i, "read from", &e, now);
            };
            if engine.received(i, bufs.filled(bid, n as usize), now) && !more {
                engine.io.arm_recv(i);
            }
        }
        0 => engine.peer_closed(i, now),
        e if e == -libc::ENOBUFS => {
            io.socks[i].recv = Recv::Starved;
            io.starved.push_back(i);
            io.ran_out = true;
        }
        e if e == -libc::EINVAL && io.multishot => {
            // Buffer rings (5.19) without multishot receive (6.0).
            io.multishot = false;
            io.arm_recv(i);
        }
        e => engine.io_failed(i, "read from", &io::Error::from_raw_os_error(-e), now),
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Cancel every request, then reap until none is in flight (bounded), so
        // that no buffer is freed while the kernel may still use it.
        let mut cancels = Vec::new();
        for (i, s) in self.socks.iter().enumerate() {
            let ops = [(s.connecting, Op::Connect), (s.recv == Recv::Armed, Op::Recv), (s.sending, Op::Send)];
            cancels.extend(ops.iter().filter(|(armed, _)| *armed).map(|&(_, op)| token(i, s.gen, op)));
            for (gen, ..) in &s.closing {
                cancels.extend([Op::Connect, Op::Recv, Op::Send].map(|op| token(i, *gen, op)));
            }
        }
        for user_data in cancels {
            self.q.cancel(user_data, NOTE);
        }
        let deadline = Instant::now() + DRAIN_LIMIT;
        while self.q.in_flight > 0 && Instant::now() < deadline {
            if self.q.wait_at_most(Some(DRAIN_TICK)).is_err() {
                break;
            }
            self.cqes.clear();
            self.q.reap(&mut self.cqes);
        }
        match self.bufs.as_mut() {
            Some(bufs) if self.q.in_flight == 0 => {
                let _ = bufs.unregister(&self.q.ring);
            }
            Some(bufs) => {
                // The kernel may still read a send's bytes or write into a
                // buffer: keep both for the rest of the process.
                bufs.leak();
                std::mem::forget(std::mem::take(&mut self.batch));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_slot_generation_and_operation() {
        for (i, gen, op) in [(0, 0, Op::Connect), (19_999, 7, Op::Recv), (u32::MAX as usize, GEN_MASK + 5, Op::Send)] {
            assert_eq!(parse(token(i, gen, op)), Some((i, gen & GEN_MASK, op)));
        }
        assert_eq!(parse(NOTE), None);
    }

    #[test]
    fn a_closed_socket_is_kept_until_its_last_request_completes() {
        let mut s = Sock::default();
        let socket = || Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.socket = Some(socket());
        assert!(s.current(0) && !s.current(1));
        s.closing.push((0, s.socket.take().unwrap(), 2));
        s.gen = 1;
        s.socket = Some(socket());
        assert!(!s.current(0) && s.current(1));
        s.release(0);
        assert_eq!(s.closing.len(), 1);
        s.release(0);
        assert!(s.closing.is_empty());
        s.release(0); // a stale completion of nothing: ignored
    }
}
