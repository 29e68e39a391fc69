//! MN, M:N tasks over epoll (004 §5.11; 000's comparison table; 003 §3.3): Go's
//! goroutines, in Rust tokio's multi-thread runtime.
//!
//! `--threads` worker threads (default: one per CPU) run one task per
//! connection; a task reads as if blocking, and tokio parks it on epoll instead
//! of parking a thread. Idle connections cost a task and a socket; work is
//! stolen across workers. A task that blocks (`--block-us`) or computes
//! (`--cpu-us`) holds its worker thread meanwhile, and with it every task
//! queued there: that is the finding, not something worked around here.
//!
//! Fairness at 10,000 connections on one core: a worker's local run queue holds 256
//! tasks; what IO wakes beyond that overflows to the runtime's global queue, which the
//! worker checks only every so many ticks (`--global-queue-interval`; tokio's default is
//! self-tuning). Tasks in the local queue are served again and again while those in
//! the global queue wait, so answers per connection spread wide (Jain index 0.715
//! (0.586-0.869) and a median longest gap of 571.5 ms, against 0.999 and 147.5 ms for
//! the multi-reactor, in results/2026-12-04-vm-b). `--global-queue-interval 1` serves
//! tasks in wake order: Jain 0.999 and a p99 like the event loops' (182.6 ms against
//! 642.8 ms), at 81,743 req/s against 99,842 (README, fairness). Left at tokio's
//! default here: that is what a user gets.
//!
//! `--procs N` runs N such processes on one SO_REUSEPORT port ([`super::tokio_procs`]):
//! for more connections than one process's descriptor limit allows.
//!
//! Chat (`--proto chat`, [`crate::chat::tokio`]): the room's names in a
//! `Mutex<Room>`, broadcasts through a tokio `broadcast` channel each member's
//! task subscribes to when it joins, private lines through the member's
//! bounded `mpsc`; a sender's task never touches the recipients' sockets.
//!
//! Reads go into the worker thread's 16 KiB buffer (`readable().await`, then
//! `try_read`), like the other models, rather than a buffer per task.
//!
//! Timeouts (`--idle-timeout`, `--header-timeout`) use tokio's own timer (a
//! hierarchical timing wheel per runtime): each connection's task keeps one
//! `Sleep`, set to its earliest deadline and raced against the socket. A
//! request only stamps the time it was seen (lazily, as the reactors' wheel
//! does); when the `Sleep` fires before the deadline it is reset to the real
//! one (`Sleep::reset`), so a connection that keeps pinging costs one timer
//! reset per idle period, not one per request. Without the flags the task runs
//! the plain loop, with no timer at all.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::time::Duration;

use tokio::time::Instant;

use proto::{Session, READ_BUF_SIZE};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::net::{classify_accept_error, AcceptFailure, ACCEPT_BACKOFF};
use crate::timeouts::{Expiry, Timeouts};
use crate::{stop, Ctx, ServeError, Shared, Stats};

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF_SIZE].into_boxed_slice());
}

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    if ctx.config.procs > 1 {
        return super::tokio_procs::run(ctx);
    }
    let std_listener = ctx.listen()?;
    let addr = Ctx::local_addr(&std_listener)?;
    serve_on(ctx, std_listener, || ctx.ready(addr))
}

/// A runtime of `--threads` workers accepting on `std_listener` until a stop;
/// `ready` is called once it accepts. One process runs it once, each process
/// of `--procs` (see [`super::tokio_procs`]) on its own listener.
pub(super) fn serve_on(ctx: &Ctx, std_listener: std::net::TcpListener, ready: impl FnOnce()) -> Result<(), ServeError> {
    std_listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(ctx.config.threads).enable_io().enable_time();
    if let Some(ticks) = ctx.config.global_queue_interval {
        builder.global_queue_interval(ticks);
    }
    let runtime = builder.build().map_err(ServeError::io("start the tokio runtime"))?;
    let shared = ctx.shared;
    let result = runtime.block_on(async move {
        let listener = TcpListener::from_std(std_listener).map_err(ServeError::io("register listener"))?;
        ready();
        accept_loop(listener, shared).await
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn accept_loop(listener: TcpListener, shared: Shared) -> Result<(), ServeError> {
    while !stop::requested() {
        match listener.accept().await {
            Ok((stream, _)) => {
                Stats::add(&shared.stats.accepted, 1);
                tokio::spawn(serve(stream, shared));
            }
            Err(e) => match classify_accept_error(&e) {
                AcceptFailure::Retry | AcceptFailure::WouldBlock => {}
                AcceptFailure::Exhausted => {
                    Stats::add(&shared.stats.accept_backoffs, 1);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                AcceptFailure::Fatal if stop::requested() => break,
                AcceptFailure::Fatal => return Err(ServeError::Io { what: "accept", source: e }),
            },
        }
    }
    Ok(())
}

async fn serve(mut stream: TcpStream, shared: Shared) {
    if shared.proto == proto::Proto::Chat {
        return crate::chat::tokio::serve(stream, shared).await;
    }
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(shared.proto, shared.work);
    let clean = if shared.timeouts.any() {
        match drive_timed(&mut stream, &mut session, shared.timeouts).await {
            Ok(clean) => clean,
            Err(expiry) => {
                expiry.count(shared.stats);
                false
            }
        }
    } else {
        drive(&mut stream, &mut session).await
    };
    shared.stats.connection_closed(&session);
    if clean {
        let _ = stream.shutdown().await;
    }
}

async fn drive(stream: &mut TcpStream, session: &mut Session) -> bool {
    loop {
        while !session.pending_output().is_empty() {
            match stream.write(session.pending_output()).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => session.consume_output(n),
            }
        }
        if session.is_done() {
            return true;
        }
        if stream.readable().await.is_err() {
            return false;
        }
        if read_once(stream, session).is_err() {
            return false;
        }
    }
}

/// Read what the socket has into the thread's buffer and hand it to the session.
fn read_once(stream: &TcpStream, session: &mut Session) -> std::io::Result<()> {
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        match stream.try_read(&mut buf) {
            Ok(0) => session.peer_closed(),
            Ok(n) => session.receive(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    })
}

/// The connection's clocks: when it last moved, and when its incomplete head began.
struct Clocks {
    timeouts: Timeouts,
    active: Instant,
    head_since: Option<Instant>,
}

impl Clocks {
    /// The earliest deadline, and which timeout it is; `None`: no deadline now.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let idle = self.timeouts.idle.map(|d| (self.active + d, Expiry::Idle));
        let header = self.timeouts.header.zip(self.head_since).map(|(d, since)| (since + d, Expiry::Header));
        idle.into_iter().chain(header).min_by_key(|(at, _)| *at)
    }

    /// Something moved: stamp it, and start or stop the header clock.
    fn touch(&mut self, session: &Session) {
        self.active = Instant::now();
        if !session.head_started() {
            self.head_since = None;
        } else if self.head_since.is_none() {
            self.head_since = Some(self.active);
        }
    }
}

/// Far enough to mean "no deadline" for a `Sleep` that must exist.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// [`drive`] with one `Sleep` raced against every wait; `Err` names the
/// timeout that closed the connection.
async fn drive_timed(stream: &mut TcpStream, session: &mut Session, timeouts: Timeouts) -> Result<bool, Expiry> {
    let mut clocks = Clocks { timeouts, active: Instant::now(), head_since: None };
    let first = clocks.deadline().map_or(clocks.active + FAR, |(at, _)| at);
    let sleep = tokio::time::sleep_until(first);
    tokio::pin!(sleep);
    loop {
        while !session.pending_output().is_empty() {
            tokio::select! {
                biased;
                written = stream.write(session.pending_output()) => match written {
                    Ok(0) | Err(_) => return Ok(false),
                    Ok(n) => {
                        session.consume_output(n);
                        clocks.touch(session);
                    }
                },
                () = &mut sleep => expired(&clocks, sleep.as_mut())?,
            }
        }
        if session.is_done() {
            return Ok(true);
        }
        // A head that just began may bring the deadline closer than the sleep.
        if let Some((at, _)) = clocks.deadline() {
            if at < sleep.deadline() {
                sleep.as_mut().reset(at);
            }
        }
        tokio::select! {
            biased;
            ready = stream.readable() => {
                if ready.is_err() || read_once(stream, session).is_err() {
                    return Ok(false);
                }
                clocks.touch(session);
            }
            () = &mut sleep => expired(&clocks, sleep.as_mut())?,
        }
    }
}

/// The sleep fired: `Err` if the connection's deadline has passed, otherwise
/// the sleep is moved to the real deadline (activity since it was set).
fn expired(clocks: &Clocks, sleep: std::pin::Pin<&mut tokio::time::Sleep>) -> Result<(), Expiry> {
    match clocks.deadline() {
        Some((at, expiry)) if at <= Instant::now() => Err(expiry),
        Some((at, _)) => {
            sleep.reset(at);
            Ok(())
        }
        None => {
            sleep.reset(Instant::now() + FAR);
            Ok(())
        }
    }
}
