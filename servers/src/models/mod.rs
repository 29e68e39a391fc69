//! One file per concurrency model, and the registry that lists them. Each
//! module's documentation says which model of the documents it is, who blocks
//! where, and what that costs.
//!
//! Adding a model: its module here, and one entry in `registry!` below (name,
//! id, knobs, capabilities, entry point, trade-off, and whether and how it
//! shares a chat room: `--proto chat` is refused with the entry's reason). The CLI, `c10k models`,
//! the knob checks, the scenario table's coverage test and the bench all read
//! the registry.

mod children;
mod fork;
mod iterative;
mod multi_reactor;
mod multi_reactor_pool;
mod pool;
mod prefork;
mod reactor;
mod reactor_conn_thread;
mod reactor_pool;
mod reactor_task;
mod reuseport;
mod spawner;
mod supervisor;
mod thread;
mod tokio;
mod tokio_procs;
mod uring;

use crate::chat::ChatRoom;
use crate::config::Knob;
use crate::model::registry;
use crate::{Ctx, ServeError};

registry! {
    Iterative {
        name: "iterative", id: "M0", knobs: [], cores_knob: None, fixed_concurrency: true,
        run: iterative::run,
        tradeoff: "one connection at a time: no concurrency at all, one idle client stalls everyone",
        chat: ChatRoom::Refused("it serves one connection at a time, so no two members are ever connected together"),
    },
    Fork {
        name: "fork", id: "M1", knobs: [], cores_knob: None, fixed_concurrency: false,
        run: fork::run,
        tradeoff: "a process per connection: full isolation, a fork and a process's memory per client",
        chat: ChatRoom::Refused("a process per connection shares no memory: members in different processes cannot reach each other"),
    },
    Thread {
        name: "thread", id: "M2", knobs: [ThreadStack], cores_knob: None, fixed_concurrency: false,
        run: thread::run,
        tradeoff: "a thread per connection: simple blocking code, a stack and a scheduler entry per client",
        chat: ChatRoom::Shared(
            "one Mutex<Room>; a sender writes a line into each member's outbox and onto its socket without blocking; \
             a member's thread (in ppoll) is woken by a signal only when its socket is full",
        ),
    },
    Prefork {
        name: "prefork", id: "M3", knobs: [Procs, ThreadsPerProc, ThreadStack], cores_knob: Some(Knob::Procs),
        fixed_concurrency: true,
        run: prefork::run,
        tradeoff: "N processes blocking in accept: no fork per client, but N connections at most at once",
        chat: ChatRoom::Refused("its processes share no memory and each serves one connection at a time: the room would be split"),
    },
    Pool {
        name: "pool", id: "M4", knobs: [Workers, Queue, ThreadStack], cores_knob: None, fixed_concurrency: true,
        run: pool::run,
        tradeoff: "fixed worker threads: bounded cost, but long-lived connections hold workers and others wait",
        chat: ChatRoom::Shared("as thread, on the workers: only --workers members are in the room at once, the others wait unjoined"),
    },
    Reactor {
        name: "reactor", id: "M5", knobs: [Backend, Trigger], cores_knob: None, fixed_concurrency: false,
        run: reactor::run,
        tradeoff: "one thread, epoll: cheap idle connections, but any slow handler stalls every connection",
        chat: ChatRoom::Shared("the loop owns the room (a lock no other thread takes); lines go through its inbox, written once a turn"),
    },
    ReactorTask {
        name: "reactor-task", id: "M6", knobs: [ThreadStack], cores_knob: None, fixed_concurrency: false,
        run: reactor_task::run,
        tradeoff: "one I/O thread, a thread created per request: slow handlers tolerated, a spawn per request",
        chat: ChatRoom::Refused(
            "its threads compute answers to requests; a chat command is served against the room by the reactor, \
             so the model would be the plain reactor under another name",
        ),
    },
    ReactorConnThread {
        name: "reactor-conn-thread", id: "M7", knobs: [ThreadStack], cores_knob: None, fixed_concurrency: false,
        run: reactor_conn_thread::run,
        tradeoff: "one I/O thread feeding a thread per connection: a thread per client again, plus two hand-offs",
        chat: ChatRoom::Refused(
            "its threads compute answers to requests; a chat command is served against the room by the reactor, \
             so the model would be the plain reactor under another name",
        ),
    },
    ReactorPool {
        name: "reactor-pool", id: "M8", knobs: [Workers, Pool], cores_knob: None, fixed_concurrency: false,
        run: reactor_pool::run,
        tradeoff: "one I/O thread hands requests to a pool: slow handlers tolerated, two hand-offs per request",
        chat: ChatRoom::Shared(
            "the reactor frames lines; the pool serves commands against one Mutex<Room> and posts lines back to the \
             reactor's inbox (a channel and a mio Waker)",
        ),
    },
    MultiReactor {
        name: "multi-reactor", id: "M9", knobs: [Threads], cores_knob: Some(Knob::Threads), fixed_concurrency: false,
        run: multi_reactor::run,
        tradeoff: "a reactor per core behind an acceptor: uses every core, a slow handler stalls its share",
        chat: ChatRoom::Shared(
            "one Mutex<Room>; a broadcast is one channel message per sub-reactor, woken by its mio Waker, which \
             writes it to its own members",
        ),
    },
    Reuseport {
        name: "reuseport", id: "M10", knobs: [Procs, SharedListener], cores_knob: Some(Knob::Procs),
        fixed_concurrency: false,
        run: reuseport::run,
        tradeoff: "a reactor per process on SO_REUSEPORT (Nginx): kernel balances accepts, no shared state",
        chat: ChatRoom::Refused("its processes share nothing but counters: each would hold a room of its own"),
    },
    MultiReactorPool {
        name: "multi-reactor-pool", id: "M11", knobs: [Threads, Workers, Pool], cores_knob: Some(Knob::Threads),
        fixed_concurrency: false,
        run: multi_reactor_pool::run,
        tradeoff: "reactors per core plus a work pool: most flexible, most hand-offs",
        chat: ChatRoom::Shared("as multi-reactor, with commands served by the pool"),
    },
    Tokio {
        name: "tokio", id: "MN", knobs: [Threads, GlobalQueueInterval, Procs], cores_knob: Some(Knob::Threads),
        fixed_concurrency: false,
        run: tokio::run,
        tradeoff: "M:N tasks over epoll (tokio): blocking-style code at reactor cost, a blocking call stalls a worker",
        chat: ChatRoom::Shared(
            "a Mutex<Room> for names; broadcasts and notices through a tokio broadcast channel each member's task \
             subscribes to when it joins, privates through the member's bounded mpsc",
        ),
    },
    Uring {
        name: "uring", id: "AIO", knobs: [Threads], cores_knob: Some(Knob::Threads), fixed_concurrency: false,
        run: uring::run,
        tradeoff: "io_uring completions: accept, recv and send submitted in batches, fewer syscalls",
        chat: ChatRoom::Shared("as multi-reactor between rings: one Mutex<Room>, a channel per ring, woken by a read on its eventfd"),
    },
}

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
