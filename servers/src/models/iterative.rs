//! M0, the iterative server (004 §5.1 方案 0; 002 §4.1 单线程阻塞).
//!
//! One thread: accept a connection, serve it until it closes, then accept the
//! next. Who blocks where: the only thread blocks in `read` on the current
//! client, so every other client waits in the listen backlog, served only
//! after the current one leaves (claim C8). It needs no synchronisation and no
//! memory per waiting client, and it is not concurrent at all: one idle client
//! stalls the server indefinitely.
//!
//! `--proto chat` is refused at start: with one connection at a time no two
//! members are ever in the room together.

use std::os::fd::AsRawFd;

use crate::{blocking, stop, Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    ctx.ready(Ctx::local_addr(&listener)?);
    super::accept_loop(&listener, ctx, |mut stream| {
        // A stop shuts the current client down too, so a `read` it interrupts
        // (or that starts just after the signal) returns at once.
        let fd = stream.as_raw_fd();
        let watched = stop::watch(fd).is_ok();
        blocking::serve_borrowed(&mut stream, &ctx.shared);
        if watched {
            stop::unwatch(fd);
        }
        drop(stream);
    })
}
