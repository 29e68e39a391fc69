//! Stopping on SIGINT/SIGTERM, within a second, whatever each thread blocks in.
//!
//! The signal handler does only async-signal-safe things: it sets a flag and
//! calls `shutdown(2)` on every registered listener. On Linux that wakes a
//! thread blocked in `accept` (which then fails with `EINVAL`) and makes the
//! listener readable to epoll, poll and select, so every accept loop notices the
//! flag at once. Threads blocked on a connection are ended by process exit;
//! forked children are signalled by their parent (and die with it through
//! `PR_SET_PDEATHSIG`). The iterative server, whose only thread may block in
//! `read` on a client, watches that client's socket the same way: checking the
//! flag before `read` would leave a window where the signal lands just before
//! the call and is lost.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

static STOP: AtomicBool = AtomicBool::new(false);

/// Sockets one process can have shut down on a stop: its listeners (one per
/// event-loop thread at most in any model) and the iterative server's client.
const MAX_WATCHED: usize = 1024;
static WATCHED: [AtomicI32; MAX_WATCHED] = [const { AtomicI32::new(-1) }; MAX_WATCHED];

/// Has a stop been requested?
pub fn requested() -> bool {
    STOP.load(Ordering::Acquire)
}

/// Request a stop: set the flag and shut every watched socket down.
/// Async-signal-safe.
pub fn request() {
    STOP.store(true, Ordering::Release);
    for slot in &WATCHED {
        let fd = slot.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: shutdown(2) is async-signal-safe; on a closed or reused fd it
            // fails harmlessly or shuts a socket this process is stopping anyway.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// Shut `fd` down when a stop is requested (and at once if one already was).
pub fn watch(fd: RawFd) -> io::Result<()> {
    let stored = WATCHED.iter().any(|s| s.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire).is_ok());
    if !stored {
        return Err(io::Error::other(format!("more than {MAX_WATCHED} sockets to watch")));
    }
    if requested() {
        request();
    }
    Ok(())
}

/// Stop watching `fd` (before it is closed, so a reused number is never shut).
/// [`watch`] stores it once, in the first free slot, so the scan ends there: the
/// iterative server calls this once per connection.
pub fn unwatch(fd: RawFd) {
    let _ = WATCHED.iter().any(|s| s.compare_exchange(fd, -1, Ordering::AcqRel, Ordering::Acquire).is_ok());
}

/// Forget every watched socket (a forked child owning other sockets).
pub fn forget_watched() {
    for slot in &WATCHED {
        slot.store(-1, Ordering::Release);
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    request();
}

/// Install the SIGINT/SIGTERM handler (without `SA_RESTART`, so blocking calls
/// return `EINTR` on the thread that takes the signal).
pub fn install_handlers() -> io::Result<()> {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls shutdown(2), both
        // async-signal-safe.
        unsafe { signal::sigaction(sig, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// In a freshly forked child that serves one connection: default dispositions
/// and an empty signal mask, so the parent's SIGTERM ends it at once.
pub fn reset_in_child() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGCHLD] {
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { signal::sigaction(sig, &default) };
    }
    let _ = signal::sigprocmask(signal::SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    forget_watched();
}
