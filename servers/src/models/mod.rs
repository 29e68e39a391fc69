//! One file per concurrency model. Each module's documentation says which model
//! of the documents it is, who blocks where, and what that costs.

mod children;
mod fork;
mod iterative;
mod multi_reactor;
mod multi_reactor_pool;
mod pool;
mod prefork;
mod reactor;
mod reactor_pool;
mod reuseport;
mod supervisor;
mod thread;
mod tokio;
mod tokio_procs;
mod uring;

use crate::{Ctx, Model, ServeError};

/// Run the configured model until a stop is requested.
pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    match ctx.config.model {
        Model::Iterative => iterative::run(ctx),
        Model::Fork => fork::run(ctx),
        Model::Thread => thread::run(ctx),
        Model::Pool => pool::run(ctx),
        Model::Reactor => reactor::run(ctx),
        Model::MultiReactor => multi_reactor::run(ctx),
        Model::Tokio => tokio::run(ctx),
        Model::Prefork => prefork::run(ctx),
        Model::ReactorPool => reactor_pool::run(ctx),
        Model::MultiReactorPool => multi_reactor_pool::run(ctx),
        Model::Reuseport => reuseport::run(ctx),
        Model::Uring => uring::run(ctx),
    }
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
