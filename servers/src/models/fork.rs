//! M1, a process per connection (004 §5.2; 001 性能篇_下 §四.1): the classic
//! inetd/Apache-1 design.
//!
//! A single-threaded parent waits (poll) on the listener and on a signalfd for
//! SIGCHLD. For each accepted connection it forks: the child closes the
//! listener, serves that one connection with blocking calls and exits; the
//! parent closes its copy of the connection and goes back to accepting, reaping
//! finished children as SIGCHLD arrives, so no zombie outlives its connection.
//! Clients are isolated from each other completely, at the price of a `fork`
//! (page tables copied, pages shared copy-on-write) per connection and a
//! process per client. If `fork` fails the connection is closed and counted in
//! `spawn_failures`; the parent goes on. On SIGTERM the parent terminates every
//! child before it exits; a child also dies with its parent (PR_SET_PDEATHSIG).
//!
//! `--proto chat` is refused at start: a child per connection shares no memory
//! with the other children, so no member could reach another.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{fork, ForkResult, Pid};

use super::children;
use crate::net::{classify_accept_error, AcceptFailure, ACCEPT_BACKOFF};
use crate::{blocking, stop, Ctx, ServeError, Shared, Stats};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    listener.set_nonblocking(true).map_err(ServeError::io("non-blocking listener"))?;
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(|e| ServeError::io("block SIGCHLD")(e.into()))?;
    let sigchld = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| ServeError::io("signalfd")(e.into()))?;
    ctx.ready(Ctx::local_addr(&listener)?);

    let mut live: HashSet<Pid> = HashSet::new();
    let result = loop {
        if stop::requested() {
            break Ok(());
        }
        let mut fds =
            [PollFd::new(listener.as_fd(), PollFlags::POLLIN), PollFd::new(sigchld.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(ServeError::io("poll")(e.into())),
        }
        let child_exited = fds[1].any().unwrap_or(false);
        let connection_waiting = fds[0].any().unwrap_or(false);
        if child_exited {
            while sigchld.read_signal().ok().flatten().is_some() {}
            children::reap(&mut live);
        }
        if connection_waiting {
            match listener.accept() {
                Ok((stream, _)) => {
                    Stats::add(&ctx.shared.stats.accepted, 1);
                    spawn_child(stream, &listener, sigchld.as_fd().as_raw_fd(), ctx.shared, &mut live);
                }
                Err(e) => match classify_accept_error(&e) {
                    AcceptFailure::Retry | AcceptFailure::WouldBlock => {}
                    AcceptFailure::Exhausted => {
                        Stats::add(&ctx.shared.stats.accept_backoffs, 1);
                        std::thread::sleep(ACCEPT_BACKOFF);
                        children::reap(&mut live);
                    }
                    AcceptFailure::Fatal if stop::requested() => break Ok(()),
                    AcceptFailure::Fatal => break Err(ServeError::Io { what: "accept", source: e }),
                },
            }
        }
    };
    children::terminate(&mut live);
    result
}

fn spawn_child(stream: TcpStream, listener: &TcpListener, sigchld_fd: RawFd, shared: Shared, live: &mut HashSet<Pid>) {
    let parent = nix::unistd::getpid();
    // SAFETY: the parent is single-threaded (this model spawns no thread), so
    // the child inherits no lock held by another thread; the child never returns
    // from `child_main`.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => child_main(stream, &[listener.as_raw_fd(), sigchld_fd], parent, shared),
        Ok(ForkResult::Parent { child }) => {
            live.insert(child);
        }
        Err(e) => {
            Stats::add(&shared.stats.spawn_failures, 1);
            crate::warn_rate_limited(&format!("cannot fork for a connection: {e}"));
        }
    }
    // The parent's copy of the connection closes here.
}

/// The forked child: serve one connection and exit, never returning to the
/// parent's loop.
fn child_main(stream: TcpStream, parent_fds: &[RawFd], parent: Pid, shared: Shared) -> ! {
    children::become_child(parent_fds, parent);
    let outcome = std::panic::catch_unwind(|| blocking::serve(stream, &shared));
    // SAFETY: `_exit` ends the child at once, without running destructors or
    // atexit handlers that belong to the parent's state.
    unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 1 }) }
}
