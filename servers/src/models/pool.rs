//! M4, a thread pool (001 §四.2.3; 004 §5.4).
//!
//! The main thread accepts and pushes each connection into a bounded blocking
//! queue (a crossbeam channel of `--queue` places); `--workers` threads pop a
//! connection and serve it, blocking, until it closes. Thread count and memory
//! are bounded whatever the load, which suits short connections. With
//! long-lived connections a worker is held for the connection's whole life: at
//! most `workers` clients are served at once, the rest wait in the queue and
//! then in the listen backlog (claim C5). When the queue is full the acceptor
//! blocks in `send`, so the backlog absorbs the excess, not memory.
//!
//! Chat (`--proto chat`): the workers serve members as `thread` does
//! ([`crate::chat::threads`]: one `Mutex<Room>`, lines written onto members'
//! sockets by the sender's thread). A member holds its worker for as long as
//! it stays, so the room holds at most `--workers` members; the others wait in
//! the queue and the backlog with their `join` unread, and are served (join,
//! get the broadcasts sent from then on) only as members leave.

use std::thread;

use std::time::Duration;

use crossbeam_channel::{bounded, SendTimeoutError};

use crate::{blocking, stop, Ctx, ServeError};

/// How often an acceptor blocked on a full queue looks for a stop request.
const STOP_CHECK: Duration = Duration::from_millis(100);

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    let (tx, rx) = bounded::<std::net::TcpStream>(ctx.config.queue);
    for i in 0..ctx.config.workers {
        let rx = rx.clone();
        let shared = ctx.shared;
        let mut builder = thread::Builder::new().name(format!("worker-{i}"));
        if let Some(stack) = ctx.config.thread_stack {
            builder = builder.stack_size(stack);
        }
        builder
            .spawn(move || {
                for stream in rx {
                    blocking::serve(stream, &shared);
                }
            })
            .map_err(ServeError::io("spawn pool worker"))?;
    }
    ctx.ready(Ctx::local_addr(&listener)?);
    super::accept_loop(&listener, ctx, |mut stream| {
        // Blocks while every worker is busy and the queue is full, looking up
        // every STOP_CHECK to notice a stop request.
        while let Err(SendTimeoutError::Timeout(back)) = tx.send_timeout(stream, STOP_CHECK) {
            if stop::requested() {
                return;
            }
            stream = back;
        }
    })
}
