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
//! Chat (`--proto chat`, [`crate::chat::tokio`]): the room's names in a
//! `Mutex<Room>`, broadcasts through a tokio `broadcast` channel each member's
//! task subscribes to when it joins, private lines through the member's
//! bounded `mpsc`; a sender's task never touches the recipients' sockets.
//!
//! Reads go into the worker thread's 16 KiB buffer (`readable().await`, then
//! `try_read`), like the other models, rather than a buffer per task.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::time::Duration;

use proto::{Session, READ_BUF_SIZE};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::net::{classify_accept_error, AcceptFailure, ACCEPT_BACKOFF};
use crate::{stop, Ctx, ServeError, Shared, Stats};

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF_SIZE].into_boxed_slice());
}

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let std_listener = ctx.listen()?;
    std_listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    let addr = Ctx::local_addr(&std_listener)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(ctx.config.threads).enable_io().enable_time();
    if let Some(ticks) = ctx.config.global_queue_interval {
        builder.global_queue_interval(ticks);
    }
    let runtime = builder.build().map_err(ServeError::io("start the tokio runtime"))?;
    let shared = ctx.shared;
    let result = runtime.block_on(async move {
        let listener = TcpListener::from_std(std_listener).map_err(ServeError::io("register listener"))?;
        ctx.ready(addr);
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
    let clean = drive(&mut stream, &mut session).await;
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
        let outcome = READ_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            match stream.try_read(&mut buf) {
                Ok(0) => session.peer_closed(),
                Ok(n) => session.receive(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
            Ok(())
        });
        if outcome.is_err() {
            return false;
        }
    }
}
