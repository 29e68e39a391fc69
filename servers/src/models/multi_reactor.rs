//! M9, the multi-reactor (001 §四.4.2; 004 §5.9; 003 §6.1): muduo's and Netty's
//! "one loop per thread".
//!
//! A main reactor does nothing but accept: it waits on the listener in its own
//! epoll, accepts every pending connection, and hands each one round-robin to
//! one of `--threads` sub-reactors (default: one per CPU) through a channel,
//! waking that sub-reactor's epoll with a `mio::Waker`. Each sub-reactor is the
//! single-reactor loop over its own connections. Accepting never waits behind
//! request handling (claim C4) and every core runs a loop; a slow handler still
//! stalls the other connections of its own sub-reactor.
//!
//! Chat (`--proto chat`): one `Mutex<Room>` for all sub-reactors
//! ([`crate::chat::hub`]). A sub-reactor serves its members' commands itself
//! (M11: hands them to the pool) and posts what they send, under the lock, to
//! every sub-reactor's inbox (a channel) that holds a recipient, waking it
//! with its `Waker`: a broadcast costs one message and at most one wake-up per
//! sub-reactor, which writes it to its own members.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use crossbeam_channel::{unbounded, Sender};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::event_loop::{accept_ready, EventLoop, Source, WAKER};
use crate::poller::MioPoller;
use crate::{stop, work_pool, Ctx, ServeError, Stats};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    serve(ctx, None)
}

/// A sub-reactor as the acceptor sees it.
struct Sub {
    tx: Sender<TcpStream>,
    waker: Arc<Waker>,
    handed: bool,
}

/// The multi-reactor, with its sub-reactors handing requests to a pool of
/// `pool_workers` threads when given (M11).
pub(crate) fn serve(ctx: &Ctx, pool_workers: Option<usize>) -> Result<(), ServeError> {
    let std_listener = ctx.listen()?;
    std_listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    let addr = Ctx::local_addr(&std_listener)?;
    let mut listener = TcpListener::from_std(std_listener);
    let (subs, handles) = spawn_subs(ctx, pool_workers)?;

    let mut poll = Poll::new().map_err(ServeError::io("create epoll instance"))?;
    poll.registry()
        .register(&mut listener, Token(0), Interest::READABLE)
        .map_err(ServeError::io("register listener"))?;
    ctx.ready(addr);
    let mut subs = subs;
    let result = accept_and_hand_off(&mut poll, &listener, &mut subs, ctx.shared.stats);
    // Wake every sub-reactor so it sees the stop. The wakers stay alive until the
    // threads are joined: closing an eventfd would drop its pending wake-up.
    for sub in &subs {
        let _ = sub.waker.wake();
    }
    for handle in handles {
        let _ = handle.join();
    }
    result
}

fn spawn_subs(ctx: &Ctx, pool_workers: Option<usize>) -> Result<(Vec<Sub>, Vec<thread::JoinHandle<()>>), ServeError> {
    let threads = ctx.config.threads;
    let mut pollers = Vec::with_capacity(threads);
    let mut wakers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let poller = MioPoller::new().map_err(ServeError::io("create epoll instance"))?;
        wakers.push(Arc::new(poller.waker(WAKER).map_err(ServeError::io("create waker"))?));
        pollers.push(poller);
    }
    let chat_wakes = wakers.iter().map(|w| crate::chat::hub::Wake::Mio(Arc::clone(w))).collect();
    let mut chats = crate::chat::reactor::links(ctx, chat_wakes, pool_workers)?;
    let chat = ctx.config.proto == proto::Proto::Chat;
    let mut links: Vec<_> = match pool_workers {
        Some(workers) if !chat => work_pool::start(ctx.config.pool, workers, ctx.shared.work, &wakers)
            .map_err(ServeError::io("spawn pool worker"))?
            .into_iter()
            .map(Some)
            .collect(),
        _ => (0..threads).map(|_| None).collect(),
    };
    let mut subs = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for (i, (poller, waker)) in pollers.into_iter().zip(wakers).enumerate() {
        let (tx, rx) = unbounded();
        let link = links[i].take();
        let chat = chats[i].take();
        let shared = ctx.shared;
        let handle = thread::Builder::new()
            .name(format!("sub-reactor-{i}"))
            .spawn(move || {
                let outcome = EventLoop::new(poller, Source::Handoff(rx), shared)
                    .and_then(|l| l.with_pool(link).with_chat(chat).run());
                if let Err(e) = outcome {
                    eprintln!("c10k serve: sub-reactor {i} failed: {e}");
                }
            })
            .map_err(ServeError::io("spawn sub-reactor"))?;
        subs.push(Sub { tx, waker, handed: false });
        handles.push(handle);
    }
    Ok((subs, handles))
}

fn accept_and_hand_off(
    poll: &mut Poll,
    listener: &TcpListener,
    subs: &mut [Sub],
    stats: &Stats,
) -> Result<(), ServeError> {
    let mut events = Events::with_capacity(64);
    let mut next = 0;
    let mut paused_until: Option<Instant> = None;
    while !stop::requested() {
        let timeout = paused_until.map(|t| t.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ServeError::Io { what: "main reactor poll", source: e }),
        }
        if !events.is_empty() {
            Stats::add(&stats.listener_wakeups, 1);
        }
        if paused_until.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        let count = subs.len();
        paused_until = accept_ready(listener, stats, |stream| {
            let sub = &mut subs[next];
            next = (next + 1) % count;
            if sub.tx.send(stream).is_ok() {
                sub.handed = true;
            }
        })
        .map_err(|e| ServeError::Io { what: "accept", source: e })?;
        for sub in subs.iter_mut().filter(|s| s.handed) {
            sub.handed = false;
            let _ = sub.waker.wake();
        }
    }
    Ok(())
}
