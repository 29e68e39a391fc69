//! The epoll back end (mio, edge-triggered), the default: readiness, then
//! the system call.
//!
//! Each socket is registered once, for READABLE|WRITABLE. Requests are written
//! straight away (WRITABLE is only waited for after a short write), and a read
//! shorter than the 16 KiB buffer ends the read loop: the socket is drained, and
//! the next bytes raise a new edge. So the hot path makes one `write` and one
//! `read` per request, and an `epoll_wait` per batch of ready sockets. Deadlines
//! go to a `timerfd` registered beside the sockets (nanosecond precision, where
//! epoll's own timeout has millisecond steps).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use mio::event::Event;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::{Engine, Io, Sent};
use crate::clock::now_ns;
use crate::conn::State;
use crate::error::LoadError;
use crate::plan::Plan;
use crate::recorder::ErrorKind;

/// The timerfd's token; connections use their slot index.
const TIMER: Token = Token(usize::MAX);

/// See the module documentation.
pub struct Mio {
    poll: Poll,
    events: Events,
    timerfd: TimerFd,
    /// The deadline the timerfd is armed for, 0 when it has fired.
    armed_ns: u64,
    /// Each slot's socket, if it has one.
    streams: Vec<Option<TcpStream>>,
    /// The plan's request batch (see [`Plan::batch`]).
    batch: Box<[u8]>,
    /// The thread's one read buffer.
    buf: Box<[u8]>,
}

impl Mio {
    fn arm(&mut self, deadline: u64) -> Result<(), LoadError> {
        if self.armed_ns == deadline {
            return Ok(());
        }
        let spec = TimeSpec::from(Duration::from_nanos(deadline));
        self.timerfd
            .set(Expiration::OneShot(spec), TimerSetTimeFlags::TFD_TIMER_ABSTIME)
            .map_err(|e| LoadError::io("timerfd_settime", e.into()))?;
        self.armed_ns = deadline;
        Ok(())
    }
}

impl Io for Mio {
    fn new(plan: &Plan, slots: usize) -> Result<Self, LoadError> {
        let poll = Poll::new().map_err(|e| LoadError::io("epoll_create", e))?;
        let timerfd = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)
            .map_err(|e| LoadError::io("timerfd_create", e.into()))?;
        poll.registry()
            .register(&mut SourceFd(&timerfd.as_fd().as_raw_fd()), TIMER, Interest::READABLE)
            .map_err(|e| LoadError::io("register timerfd", e))?;
        Ok(Mio {
            poll,
            events: Events::with_capacity(1024),
            timerfd,
            armed_ns: 0,
            streams: (0..slots).map(|_| None).collect(),
            batch: plan.batch.clone().into_boxed_slice(),
            buf: vec![0u8; proto::READ_BUF_SIZE].into_boxed_slice(),
        })
    }

    fn connect(&mut self, i: usize, addr: SocketAddr, source: Option<IpAddr>) -> io::Result<()> {
        let mut stream = TcpStream::from_std(super::socket::open(addr, source)?.into());
        self.poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        self.streams[i] = Some(stream);
        Ok(())
    }

    /// Write until done or `WouldBlock`.
    fn send(&mut self, i: usize, bytes: Range<usize>) -> io::Result<Sent> {
        let Some(stream) = self.streams[i].as_mut() else { return Ok(Sent::Now(0)) };
        let mut written = 0;
        while bytes.start + written < bytes.end {
            match stream.write(&self.batch[bytes.start + written..bytes.end]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Sent::Now(written))
    }

    fn close(&mut self, i: usize) {
        self.streams[i] = None;
    }

    fn turn(engine: &mut Engine<'_, Self>, wake_at: Option<u64>) -> Result<bool, LoadError> {
        let timeout = match wake_at {
            Some(at) => {
                engine.io.arm(at)?;
                None
            }
            None => Some(Duration::ZERO),
        };
        // The events and the buffer are lent out while the engine handles them.
        let mut events = std::mem::replace(&mut engine.io.events, Events::with_capacity(0));
        let polled = engine.io.poll.poll(&mut events, timeout);
        let mut buf = std::mem::take(&mut engine.io.buf);
        let result = match polled {
            Ok(()) => {
                for event in events.iter() {
                    if event.token() == TIMER {
                        engine.io.armed_ns = 0;
                        continue;
                    }
                    on_event(engine, event.token().0, event, &mut buf, now_ns());
                }
                Ok(!events.is_empty())
            }
            // A signal: the loop looks at the stop flag.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(LoadError::io("epoll_wait", e)),
        };
        engine.io.events = events;
        engine.io.buf = buf;
        result
    }

    fn finish(&mut self) {
        for stream in self.streams.iter().flatten() {
            let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
    }
}

/// What epoll said about slot `i`.
fn on_event(engine: &mut Engine<'_, Mio>, i: usize, event: &Event, buf: &mut [u8], now: u64) {
    if engine.slots.conns[i].state == State::Connecting {
        let Some(stream) = engine.io.streams[i].as_ref() else { return };
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => return engine.connect_failed(i, super::connect_kind(&e), &e, now),
            Ok(None) => {}
        }
        match stream.peer_addr() {
            Ok(_) => engine.connected(i, now),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
            Err(e) => return engine.connect_failed(i, ErrorKind::ConnectOther, &e, now),
        }
    }
    if engine.slots.conns[i].state != State::Open {
        return;
    }
    let closed = event.is_read_closed() || event.is_error();
    if event.is_readable() || closed {
        read(engine, i, closed, buf, now);
    }
    if event.is_writable() {
        engine.writable(i, now);
    }
}

/// Read and hand over what slot `i` has; `closed`: the event said the peer
/// closed (or failed), so read on to the end of file.
fn read(engine: &mut Engine<'_, Mio>, i: usize, closed: bool, buf: &mut [u8], now: u64) {
    loop {
        let Some(stream) = engine.io.streams[i].as_mut() else { return };
        match stream.read(buf) {
            Ok(0) => return engine.peer_closed(i, now),
            Ok(n) => {
                // A short read drained the socket: edge-triggered epoll will
                // report the next bytes, no need for a read that says EAGAIN
                // (unless the peer's FIN is already in, which raises no new edge).
                if !engine.received(i, &buf[..n], now) || (n < buf.len() && !closed) {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return engine.io_failed(i, "read from", &e, now),
        }
    }
}
