//! M2, a thread per connection (004 §5.3; 001 §四.2; 002 §4.1.2).
//!
//! The main thread blocks in `accept`; each accepted connection gets its own
//! OS thread that blocks in `read`/`write` on that connection alone. Code stays
//! sequential and a slow client delays only itself, but every connection costs
//! a kernel task and a stack (`--thread-stack-kib`, Rust's 2 MiB by default, of
//! which only touched pages become resident), and the scheduler juggles as many
//! threads as clients (claims C1, T2). If a thread cannot be created the
//! connection is closed and counted in `spawn_failures`; the server goes on.

use std::thread;

use crate::{blocking, Ctx, ServeError, Stats};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    ctx.ready(Ctx::local_addr(&listener)?);
    let shared = ctx.shared;
    super::accept_loop(&listener, ctx, |stream| {
        let mut builder = thread::Builder::new();
        if let Some(stack) = ctx.config.thread_stack {
            builder = builder.stack_size(stack);
        }
        // On failure the closure (and the stream it owns) is dropped: the connection closes.
        if let Err(e) = builder.spawn(move || blocking::serve(stream, &shared)) {
            Stats::add(&shared.stats.spawn_failures, 1);
            crate::warn_rate_limited(&format!("cannot spawn a thread for a connection: {e}"));
        }
    })
}
