//! AIO, asynchronous completion I/O (001 §四.5; 004 §5.5; 003 §4.3), on io_uring:
//! the Proactor the documents could only describe. They set Linux AIO aside
//! because `io_submit` cannot do sockets; io_uring can.
//!
//! A readiness model asks "which sockets can I read?" and then reads; here the
//! thread hands the kernel the operations themselves (accept, recv, send) and
//! later reaps their results. `--threads` threads (default: one per CPU) each
//! own a ring, their connections, and a pool of receive buffers; a thread blocks
//! in one place only, `io_uring_enter`, which submits everything queued since
//! the last call and waits for at least one completion: one system call per
//! batch, not per operation. Like the multi-reactor, a handler that computes
//! (`--cpu-us`) or blocks (`--block-us`) stalls the other connections of its
//! thread; what changes is the cost of moving the bytes.
//!
//! # Design
//!
//! - Accept: every thread has its own SO_REUSEPORT listener on the one port and
//!   keeps one multishot accept (5.19) on it; the kernel hashes each new
//!   connection to one listener, so exactly one ring learns of it. Sharing one
//!   listener instead starves all rings but one: a multishot accept's wait is
//!   exclusive and stays at the head of the listener's queue, so the first ring
//!   took all 10,000 connections of a test while the other took none. The cost
//!   of SO_REUSEPORT is that the balance is by hash, not by load (as for the
//!   `reuseport` model), and one listener per thread to watch for stop. On
//!   `EMFILE`/`ENFILE` the accept ends; a 50 ms timeout request re-arms it.
//! - Reads: provided buffers, not a buffer per connection. Each thread registers
//!   a buffer ring (up to 256 buffers of 16 KiB, `READ_BUF_SIZE`) and keeps one
//!   multishot recv armed per connection, while its session wants input, that
//!   selects from it: the kernel takes a buffer only when data has arrived, and
//!   the completion is handed to the session and the buffer put back within the
//!   same batch; no buffer is ever held for a connection. A connection waiting
//!   for its next request costs its socket and a slab entry, no buffer. Each
//!   recv is capped (`sqe->optlen`, Linux 6.17): it ends by itself once it has
//!   delivered 16 KiB (`RECV_CAP`) and is re-armed if the session still wants
//!   input, about every 550 pipelined `GET`s. The pool starts at 16 buffers and
//!   doubles whenever a batch ran out, so its resident memory (at most 4 MiB per
//!   thread) follows the largest burst, not the connection count. A recv that
//!   found no buffer ends with `ENOBUFS`; its connection waits in a queue, and
//!   each batch re-arms only as many of them as there are buffers (re-arming
//!   thousands at once fails most again, round after round: 47,000 `ENOBUFS`
//!   for 10,000 requests, against 64 this way).
//! - Writes: at most one send in flight per connection, so answers stay in order,
//!   straight from the session's own buffer (no copy): until it completes, the
//!   session is not called through `&mut`, so its buffer neither grows nor
//!   moves, and what arrives meanwhile (data, end of stream) waits in the
//!   connection's `held` buffer, handed to the session, in order, when the send
//!   completes. The session consumes the bytes as the kernel reports them sent:
//!   its pending output, which its high-water mark limits, includes the send in
//!   flight, and its buffer empties whenever a send completes whole (consuming
//!   at submission instead, and copying, held the output twice; consuming in
//!   pieces while answering meanwhile kept every answer ever sent in a buffer
//!   that never emptied). A partial send is resubmitted for the rest.
//! - Bounded buffering: while the session does not want input (output over the
//!   64 KiB high-water mark, the send in flight included, or the peer is done),
//!   the recv is cancelled, and it is re-armed only once the output drains below
//!   the mark; nor is it re-armed while bytes wait in `held`. What arrives before
//!   the cancel takes effect waits in the session's input (or in `held`), and
//!   the cap bounds it: one recv delivers at most 32 KiB less a byte (the kernel
//!   checks the cap after each buffer it fills). Without the cap, one wake-up of
//!   a flooded socket filled buffers for as long as the pool had any, all for a
//!   connection that had stopped wanting input at the first: 500 clients
//!   pipelining 1 MiB each without reading grew the server by 334 MiB (issue
//!   14; 656 KiB a connection in `tests/hostile.rs`, 1.7 MiB with 32 MiB
//!   each). A client that never reads now costs at most the output bound and
//!   three reads of input, within `proto::CONN_MEMORY_BOUND` (160 KiB), which
//!   `tests/hostile.rs` holds every model to: about 110-150 KiB here.
//! - Buffer lifetime: a request's memory must stay put until its completion. A
//!   connection leaves the slab (closing its socket and freeing its session,
//!   whose buffer a send reads) only when neither its recv nor its send is in
//!   flight: closing first cancels them and waits for their final completions.
//!   The receive buffers live as long as the thread's ring; on stop every
//!   request is cancelled and reaped (for at most 500 ms) before the buffer
//!   ring is unregistered and freed, and anything still in flight after that
//!   is leaked rather than freed.
//! - Stop: the signal handler shuts every listener down, which completes each
//!   ring's pending accept with an error; the thread that took the signal also
//!   returns from `io_uring_enter` with `EINTR`. Each thread then sees
//!   [`stop::requested`] and drains.
//! - Kernels: the ring is set up single-issuer with deferred task running (6.1)
//!   where possible, else cooperative (5.19), else plain. Without buffer rings
//!   (before 5.19) the same buffers are given through `PROVIDE_BUFFERS`
//!   requests, with single-shot accept and recv. Without the recv cap (before
//!   6.17, which refuses the field with `EINVAL`) recv is single-shot, one buffer
//!   per request: an uncapped multishot recv cannot be kept to the bound. Where
//!   io_uring cannot be set up at all (not built, `kernel.io_uring_disabled`, a
//!   seccomp filter) or lacks the socket opcodes (before 5.7), the model refuses
//!   to start with the reason, before the ready line.
//!
//! - Chat (`--proto chat`, `chat`): the rings share one room as the
//!   multi-reactor's loops do (one `Mutex<Room>`, an inbox per ring), and a
//!   ring is woken by a read completing on its own eventfd.
//!
//! # Layout
//!
//! - this file: the module's entry point, the kernel probe, one thread per ring.
//! - `worker`: one thread's loop: accept, recv, send, close, drain on stop.
//! - `buffers`: the thread's provided-buffer pool (buffer ring or PROVIDE_BUFFERS).
//! - `queue`: the ring's submissions, and the count of requests in flight.
//! - `chat`: a ring's side of the chat room.

mod buffers;
mod chat;
mod queue;
mod worker;

use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;

use io_uring::opcode;

use crate::{net, stop, Ctx, ServeError};
use worker::Worker;

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    probe().map_err(|reason| ServeError::Unsupported { model: ctx.config.model, reason })?;
    let threads = ctx.config.threads.max(1);
    let listen_error = |addr, source| ServeError::Listen { addr, source };
    let first = net::listen(ctx.config.addr, true).map_err(|e| listen_error(ctx.config.addr, e))?;
    let addr = Ctx::local_addr(&first)?;
    let mut listeners = vec![first];
    while listeners.len() < threads {
        listeners.push(net::listen(addr, true).map_err(|e| listen_error(addr, e))?);
    }
    for listener in &listeners {
        stop::watch(listener.as_raw_fd()).map_err(ServeError::io("watch listener"))?;
    }
    let shared = ctx.shared;
    let mut chats = chat::links(ctx, threads)?;
    thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::with_capacity(threads);
        let mut failure = None;
        for (i, listener) in listeners.iter().enumerate() {
            let ready_tx = ready_tx.clone();
            let chat = chats[i].take();
            let spawned = thread::Builder::new().name(format!("uring-{i}")).spawn_scoped(scope, move || {
                match Worker::new(listener, shared, chat) {
                    Ok(worker) => {
                        let _ = ready_tx.send(Ok(()));
                        worker.run()
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        Ok(())
                    }
                }
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    failure = Some(ServeError::Io { what: "spawn io_uring thread", source: e });
                    break;
                }
            }
        }
        drop(ready_tx);
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    failure.get_or_insert(ServeError::Io { what: "set up an io_uring thread", source: e });
                }
                Err(_) => break,
            }
        }
        match failure {
            Some(_) => stop::request(), // end the threads that did start
            None => ctx.ready(addr),
        }
        for handle in handles {
            let outcome = handle.join().unwrap_or_else(|_| Err(std::io::Error::other("an io_uring thread panicked")));
            if let Err(e) = outcome {
                stop::request();
                failure.get_or_insert(ServeError::Io { what: "io_uring thread", source: e });
            }
        }
        failure.map_or(Ok(()), Err)
    })
}

/// Can this kernel run the model? The reason it cannot, otherwise.
fn probe() -> Result<(), String> {
    uring_kit::probe(&[
        ("accept", opcode::Accept::CODE),
        ("recv", opcode::Recv::CODE),
        ("send", opcode::Send::CODE),
        ("async cancel", opcode::AsyncCancel::CODE),
        ("timeout", opcode::Timeout::CODE),
        ("provide buffers", opcode::ProvideBuffers::CODE),
    ])
}
