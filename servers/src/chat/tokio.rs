//! Chat members as tokio tasks (MN): the room's names in a `Mutex<Room>`,
//! broadcasts and notices through one tokio `broadcast` channel, private lines
//! through each member's bounded `mpsc`.
//!
//! A member's task subscribes to the broadcast channel when it joins, under
//! the room lock (so it gets exactly what is sent after its join), and waits
//! in one `select!` for its socket (readable; writable while its outbox holds
//! something), the broadcast channel and its private queue. A sender's task
//! does not touch the recipients at all: `broadcast::send` stores one `Arc`
//! of the line in the channel's ring and wakes the subscribed tasks, each of
//! which copies it into its own outbox and writes it. The ring
//! ([`BROADCAST_CAPACITY`] lines) is shared, so it is no per-member cost; a
//! task that falls that far behind gets `Lagged`, has lost lines, and is
//! dropped as slow, like a member whose outbox passes its bound. A full
//! private queue ([`PRIVATE_CAPACITY`]) marks its member slow too. Lines from
//! the two channels may interleave differently for different members (a
//! private line and a broadcast sent at the same moment).

use std::cell::RefCell;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use proto::chat::Leave;
use proto::{Proto, Session, READ_BUF_SIZE};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, Notify};

use super::room::{Effect, MemberId, Room};
use crate::Shared;

/// Lines the broadcast ring holds: how far a member's task may fall behind.
pub const BROADCAST_CAPACITY: usize = 16 * 1024;
/// Private lines waiting for a member's task.
pub const PRIVATE_CAPACITY: usize = 64;

/// A line for every member but `except`.
struct Cast {
    line: Arc<[u8]>,
    except: Option<MemberId>,
}

/// How others reach a member.
#[derive(Clone)]
struct Handle {
    private: mpsc::Sender<Arc<[u8]>>,
    /// Set by a sender that found its private queue full.
    slow: Arc<AtomicBool>,
    wake: Arc<Notify>,
}

struct TokioRoom {
    room: Mutex<Room<Handle>>,
    casts: broadcast::Sender<Arc<Cast>>,
}

fn shared_room() -> &'static TokioRoom {
    static ROOM: OnceLock<TokioRoom> = OnceLock::new();
    ROOM.get_or_init(|| TokioRoom {
        room: Mutex::new(Room::default()),
        casts: broadcast::channel(BROADCAST_CAPACITY).0,
    })
}

fn lock(room: &TokioRoom) -> MutexGuard<'_, Room<Handle>> {
    // Each change to the room is complete or not started: go on after a panic.
    room.room.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF_SIZE].into_boxed_slice());
}

/// Serve one member until it leaves.
pub async fn serve(mut stream: TcpStream, shared: Shared) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let _ = stream.set_nodelay(true);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (tx, mut private) = mpsc::channel(PRIVATE_CAPACITY);
    let me = Handle { private: tx, slow: Arc::new(AtomicBool::new(false)), wake: Arc::new(Notify::new()) };
    let mut session = Session::new(Proto::Chat, shared.work);
    let mut casts: Option<broadcast::Receiver<Arc<Cast>>> = None;
    let clean = drive(&mut stream, &mut session, id, &me, &mut casts, &mut private, &shared).await;
    let room = shared_room();
    let reason = if session.is_slow() { Leave::Slow } else { Leave::Closed };
    {
        let mut names = lock(room);
        if let Some(line) = names.leave(id, reason) {
            let _ = room.casts.send(Arc::new(Cast { line, except: None }));
        }
    }
    shared.stats.connection_closed(&session);
    if clean && !session.is_slow() {
        let _ = stream.shutdown().await;
    }
}

async fn drive(
    stream: &mut TcpStream,
    session: &mut Session,
    id: MemberId,
    me: &Handle,
    casts: &mut Option<broadcast::Receiver<Arc<Cast>>>,
    private: &mut mpsc::Receiver<Arc<[u8]>>,
    shared: &Shared,
) -> bool {
    let room = shared_room();
    loop {
        let commands = session.take_commands();
        if !commands.is_empty() {
            for command in commands {
                shared.work.perform();
                let mut names = lock(room);
                let mut effects = Vec::new();
                names.serve(id, me, command, &mut effects);
                for effect in effects {
                    match effect {
                        Effect::Reply(line) => {
                            session.deliver(&line);
                        }
                        Effect::Joined(line) => {
                            *casts = Some(room.casts.subscribe());
                            session.deliver(&line);
                        }
                        Effect::All { line, except } => {
                            let _ = room.casts.send(Arc::new(Cast { line, except }));
                        }
                        Effect::One { to, line, .. } => {
                            if to.private.try_send(line).is_err() {
                                to.slow.store(true, Ordering::Release);
                                to.wake.notify_one();
                            }
                        }
                        Effect::Close => session.close(),
                    }
                }
            }
            session.commands_done();
            continue;
        }
        if me.slow.load(Ordering::Acquire) {
            session.drop_slow();
        }
        if session.is_done() {
            return true;
        }
        let want_write = !session.pending_output().is_empty();
        tokio::select! {
            ready = stream.readable(), if session.wants_read() => {
                if ready.is_err() {
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
            ready = stream.writable(), if want_write => {
                if ready.is_err() {
                    return false;
                }
                match stream.try_write(session.pending_output()) {
                    Ok(n) => session.consume_output(n),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => return false,
                }
            }
            cast = next_cast(casts) => match cast {
                Ok(cast) => {
                    if cast.except != Some(id) {
                        deliver(stream, session, &cast.line);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => session.drop_slow(),
                Err(broadcast::error::RecvError::Closed) => *casts = None,
            },
            line = private.recv() => {
                if let Some(line) = line {
                    deliver(stream, session, &line);
                }
            }
            () = me.wake.notified() => {}
        }
    }
}

/// Queue `line`; when the outbox is at its bound, offer it to the socket first
/// (without waiting): the member is slow only if the socket is full too.
fn deliver(stream: &TcpStream, session: &mut Session, line: &[u8]) {
    while session.pending_output().len() >= proto::chat::OUTBOX_BOUND {
        match stream.try_write(session.pending_output()) {
            Ok(n) if n > 0 => session.consume_output(n),
            _ => break,
        }
    }
    session.deliver(line);
}

/// The next broadcast, once subscribed (never before).
async fn next_cast(
    casts: &mut Option<broadcast::Receiver<Arc<Cast>>>,
) -> Result<Arc<Cast>, broadcast::error::RecvError> {
    match casts {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
