//! One file per concurrency model. Each module's documentation says which model
//! of the documents it is, who blocks where, and what that costs; the registry
//! that lists them is [`crate::model`].
//!
//! Adding a model: its module here, and one entry in the registry (name, id,
//! knobs, capabilities, entry point, trade-off, and whether and how it shares a
//! chat room: `--proto chat` is refused with the entry's reason). The CLI,
//! `c10k models`, the knob checks, the scenario table's coverage test and the
//! bench all read the registry.

mod children;
pub(crate) mod fork;
pub(crate) mod iterative;
pub(crate) mod multi_reactor;
pub(crate) mod multi_reactor_pool;
pub(crate) mod pool;
pub(crate) mod prefork;
pub(crate) mod reactor;
pub(crate) mod reactor_conn_thread;
pub(crate) mod reactor_pool;
pub(crate) mod reactor_task;
pub(crate) mod reuseport;
mod spawner;
mod supervisor;
pub(crate) mod thread;
pub(crate) mod tokio;
mod tokio_procs;
pub(crate) mod uring;

use crate::{Ctx, ServeError};

/// Run the configured model until a stop is requested.
pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    (ctx.config.model.info().run)(ctx)
}

/// The accept loop of the blocking models: accept until a stop, backing off
/// when descriptors run out, handing each connection to `serve`.
pub(crate) fn accept_loop(
    listener: &std::net::TcpListener,
    ctx: &Ctx,
    mut serve: impl FnMut(std::net::TcpStream),
) -> Result<(), ServeError> {
    use crate::net::{classify_accept_error, AcceptFailure, ACCEPT_BACKOFF};
    use crate::{stop, Stats};
    while !stop::requested() {
        match listener.accept() {
            Ok((stream, _)) => {
                Stats::add(&ctx.shared.stats.accepted, 1);
                serve(stream);
            }
            Err(e) => match classify_accept_error(&e) {
                AcceptFailure::Retry | AcceptFailure::WouldBlock => {}
                AcceptFailure::Exhausted => {
                    Stats::add(&ctx.shared.stats.accept_backoffs, 1);
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
                AcceptFailure::Fatal if stop::requested() => break,
                AcceptFailure::Fatal => return Err(ServeError::Io { what: "accept", source: e }),
            },
        }
    }
    Ok(())
}
