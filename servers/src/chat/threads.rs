//! Chat members on blocking threads (thread, M2; pool, M4): one thread per
//! member, one `Mutex<Room>` for all.
//!
//! A member's thread blocks in `ppoll` on its own socket only: readable, and
//! writable while its outbox holds something. Its session sits behind its own
//! lock, because other threads write into it: a command is served on the
//! thread of the member who sent it, which takes the room lock and, for each
//! recipient, takes that member's lock, appends the line to its outbox and, if
//! the outbox was empty, writes it straight onto the recipient's socket with
//! `MSG_DONTWAIT`. So a broadcast costs its sender one `send` per member and
//! wakes nobody, and a sender never waits for a recipient: a full socket keeps
//! the line in the recipient's outbox, and that recipient's thread is woken
//! (see below) to wait for WRITABLE itself; a full outbox drops the recipient
//! as slow.
//!
//! Waking a thread that is blocked in `ppoll` on a socket: a signal
//! ([`WAKE_SIGNAL`], a no-op handler). A member thread keeps it blocked except
//! inside `ppoll`, which unblocks it atomically, so a signal sent while the
//! thread is busy waits and ends its next `ppoll` at once: no wake-up is lost,
//! and no descriptor per member is needed (an eventfd each would double the
//! descriptors, and 10,000 members would pass the 20,000 allowed here). A
//! thread is signalled only while its member is in the room, which it leaves
//! before its thread ends, and only under the room lock, which the leaving
//! takes: the thread exists when the signal is sent.
//!
//! Pool (M4): the workers run the same code, one member each until it leaves;
//! with more members than `--workers`, the others wait in the queue, not yet
//! joined (their `join` line waits unread in their socket): by design, the room
//! holds at most `--workers` members.

use std::io::ErrorKind;
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};

use proto::chat::Leave;
use proto::{Proto, Session, READ_BUF_SIZE};

use super::room::{Effect, MemberId, Room};
use crate::{stop, Shared};

/// The signal that wakes a member's thread out of `ppoll`.
pub const WAKE_SIGNAL: libc::c_int = libc::SIGUSR1;

struct Member {
    id: MemberId,
    fd: RawFd,
    /// The member's thread, to signal.
    thread: libc::pthread_t,
    session: Mutex<Session>,
}

type SharedRoom = Mutex<Room<Arc<Member>>>;

fn room() -> &'static SharedRoom {
    static ROOM: OnceLock<SharedRoom> = OnceLock::new();
    ROOM.get_or_init(|| Mutex::new(Room::default()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each change under these locks is complete or not started: go on after a panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serve one member on the calling thread until it leaves.
pub fn serve(stream: TcpStream, shared: &Shared) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let _ = crate::net::prepare(&stream);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    install_wake_handler();
    let Some(unblocked) = block_wake_signal() else { return };
    let member = Arc::new(Member {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        fd: stream.as_raw_fd(),
        // SAFETY: pthread_self has no preconditions.
        thread: unsafe { libc::pthread_self() },
        session: Mutex::new(Session::new(Proto::Chat, shared.work)),
    });
    let clean = drive(&stream, &member, shared, &unblocked);
    let reason = if lock(&member.session).is_slow() { Leave::Slow } else { Leave::Closed };
    {
        let mut room = lock(room());
        if let Some(line) = room.leave(member.id, reason) {
            let all = Effect::All { line, except: None };
            apply(&room, &member, all);
        }
    }
    let session = lock(&member.session);
    shared.stats.connection_closed(&session);
    if clean && !session.is_slow() {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// Returns whether the session ended by protocol.
fn drive(stream: &TcpStream, member: &Arc<Member>, shared: &Shared, unblocked: &libc::sigset_t) -> bool {
    let mut buf = [0u8; READ_BUF_SIZE];
    loop {
        let (commands, want_read, want_write) = {
            let mut session = lock(&member.session);
            if !flush(&mut session, member.fd) {
                return false;
            }
            if session.is_done() {
                return true;
            }
            (session.take_commands(), session.wants_read(), !session.pending_output().is_empty())
        };
        if !commands.is_empty() {
            for command in commands {
                shared.work.perform();
                let mut room = lock(room());
                let mut effects = Vec::new();
                room.serve(member.id, member, command, &mut effects);
                for effect in effects {
                    apply(&room, member, effect);
                }
            }
            lock(&member.session).commands_done();
            continue;
        }
        let mut events = 0;
        if want_read {
            events |= libc::POLLIN;
        }
        if want_write {
            events |= libc::POLLOUT;
        }
        if events == 0 {
            return true; // neither input nor output wanted, yet not done: cannot happen
        }
        let mut fds = [libc::pollfd { fd: member.fd, events, revents: 0 }];
        // SAFETY: one valid pollfd, no timeout, and a signal mask that lives
        // across the call; ppoll only reads them and writes `revents`.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 1, std::ptr::null(), unblocked) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted && !stop::requested() {
                continue; // woken: our outbox changed
            }
            return false;
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && want_read {
            match std::io::Read::read(&mut &*stream, &mut buf) {
                Ok(0) => lock(&member.session).peer_closed(),
                Ok(n) => lock(&member.session).receive(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => return false,
            }
        } else if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 && !want_read {
            return false;
        }
    }
}

/// Carry out one effect of a command of `me`, under the room lock.
fn apply(room: &Room<Arc<Member>>, me: &Arc<Member>, effect: Effect<Arc<Member>>) {
    match effect {
        Effect::Reply(line) | Effect::Joined(line) => deliver(me, me, &line),
        Effect::Close => lock(&me.session).close(),
        Effect::One { to, line, .. } => deliver(me, &to, &line),
        Effect::All { line, except } => {
            for (id, member) in room.members() {
                if Some(id) != except {
                    deliver(me, member, &line);
                }
            }
        }
    }
}

/// Queue `line` for `to` and write it onto its socket without blocking; wake
/// its thread when it must wait for the socket (or close, slow).
fn deliver(from: &Arc<Member>, to: &Arc<Member>, line: &[u8]) {
    let mut session = lock(&to.session);
    if session.is_slow() {
        return;
    }
    if session.pending_output().len() >= proto::chat::OUTBOX_BOUND {
        // Offer what it holds to its socket first: slow only if that is full.
        let _ = flush(&mut session, to.fd);
    }
    let was_empty = session.pending_output().is_empty();
    let wake = if !session.deliver(line) {
        true // slow: its thread closes it
    } else if was_empty {
        // The socket may take it all at once; if not, its thread must now
        // wait for WRITABLE (it polled without it, or is busy).
        !flush(&mut session, to.fd) || !session.pending_output().is_empty()
    } else {
        false // its thread already waits for WRITABLE, or was woken to
    };
    drop(session);
    if wake && !Arc::ptr_eq(from, to) {
        // SAFETY: `to` is in the room (or is the caller) and we hold the room
        // lock, which its thread takes before it ends: the thread is alive.
        unsafe { libc::pthread_kill(to.thread, WAKE_SIGNAL) };
    }
}

/// Write what the session has without blocking; `false` if the socket failed.
fn flush(session: &mut Session, fd: RawFd) -> bool {
    while !session.pending_output().is_empty() {
        let out = session.pending_output();
        // SAFETY: sends from a live slice; MSG_DONTWAIT never blocks the caller,
        // MSG_NOSIGNAL turns a closed peer into EPIPE instead of SIGPIPE.
        let n = unsafe { libc::send(fd, out.as_ptr().cast(), out.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if n >= 0 {
            session.consume_output(n as usize);
            continue;
        }
        match std::io::Error::last_os_error().kind() {
            ErrorKind::WouldBlock => return true,
            ErrorKind::Interrupted => continue,
            _ => return false,
        }
    }
    true
}

extern "C" fn on_wake(_: libc::c_int) {}

fn install_wake_handler() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler does nothing, which is
        // async-signal-safe, and no SA_RESTART so ppoll returns EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_wake as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(WAKE_SIGNAL, &action, std::ptr::null_mut());
        }
    });
}

/// Block [`WAKE_SIGNAL`] on this thread; the mask for `ppoll`, which lets it through.
fn block_wake_signal() -> Option<libc::sigset_t> {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset/pthread_sigmask
    // before use; pthread_sigmask changes only the calling thread's mask.
    unsafe {
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, WAKE_SIGNAL);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old) != 0 {
            return None;
        }
        libc::sigdelset(&mut old, WAKE_SIGNAL);
        Some(old)
    }
}
