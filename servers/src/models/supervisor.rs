//! The parent of the models that fork their workers up front (prefork, M3;
//! reactors in processes, M10): a small arbiter like Gunicorn's.
//!
//! It forks the workers before any thread exists, prints the ready line once
//! every worker reported ready through a pipe, sleeps in `ppoll` on a signalfd
//! for SIGCHLD, replaces a worker that dies (at most one round per
//! [`RESPAWN_INTERVAL`], so a crashing worker cannot fork-bomb), counts a
//! failed `fork` in `spawn_failures` and retries later, and on SIGINT/SIGTERM
//! terminates the workers (SIGTERM, then SIGKILL after a grace period).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpid, pipe2, ForkResult, Pid};

use super::children;
use crate::{stop, Ctx, ServeError, Stats};

/// Shortest time between two rounds of replacing dead workers.
pub const RESPAWN_INTERVAL: Duration = Duration::from_millis(100);
/// How long the first workers get to report ready.
const STARTUP: Duration = Duration::from_secs(10);

/// A worker's way to tell the parent it accepts connections (the first
/// workers only; replacements report nothing).
pub(super) struct Ready(Option<File>);

impl Ready {
    pub(super) fn signal(self) {
        if let Some(mut pipe) = self.0 {
            let _ = pipe.write_all(b"+");
        }
    }
}

/// Fork `ctx.config.procs` workers running `body`, print the ready line once
/// each reported [`Ready`], then replace workers that die until a stop, and
/// terminate them all. `close_in_child` are parent descriptors workers must not
/// keep. The caller must not have spawned any thread.
pub(super) fn supervise(
    ctx: &Ctx,
    addr: SocketAddr,
    close_in_child: &[RawFd],
    body: impl Fn(Ready) -> Result<(), ServeError>,
) -> Result<(), ServeError> {
    let signals = Signals::block().map_err(ServeError::io("block signals"))?;
    let (ready_rx, ready_tx) = pipe2(OFlag::O_CLOEXEC).map_err(|e| ServeError::io("ready pipe")(e.into()))?;
    let mut close = close_in_child.to_vec();
    close.push(signals.sigchld.as_fd().as_raw_fd());
    let mut startup = close.clone();
    startup.push(ready_rx.as_raw_fd());

    let stats = ctx.shared.stats;
    let mut live = HashSet::new();
    let mut last_error = None;
    for _ in 0..ctx.config.procs {
        match spawn(&startup, Some(&ready_tx), &body, stats) {
            Ok(pid) => {
                live.insert(pid);
            }
            Err(e) => last_error = Some(e),
        }
    }
    drop(ready_tx);
    let started = match (live.len(), last_error) {
        (0, Some(e)) => Err(ServeError::io("fork worker processes")(e)),
        (n, _) => wait_ready(&ready_rx, n, &signals),
    };
    drop(ready_rx);
    let result = match started {
        Ok(true) => {
            ctx.ready(addr);
            arbiter(ctx.config.procs, &mut live, &signals, &close, &body, stats)
        }
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    children::terminate(&mut live);
    signals.restore();
    result
}

/// Wait until `expected` workers reported ready; `Ok(false)` on a stop request.
fn wait_ready(pipe: &OwnedFd, expected: usize, signals: &Signals) -> Result<bool, ServeError> {
    let deadline = Instant::now() + STARTUP;
    let mut file = File::from(pipe.try_clone().map_err(ServeError::io("ready pipe"))?);
    let mut count = 0;
    let mut buf = [0u8; 64];
    while count < expected {
        if stop::requested() {
            return Ok(false);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ServeError::io("start worker processes")(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{count} of {expected} workers ready after {STARTUP:?}"),
            )));
        }
        match signals.wait(Some(pipe), Some(left)) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ServeError::io("wait for workers")(e)),
        }
        match file.read(&mut buf) {
            Ok(0) => {
                return Err(ServeError::io("start worker processes")(io::Error::other(format!(
                    "{} of {expected} workers exited before ready",
                    expected - count
                ))))
            }
            Ok(n) => count += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ServeError::io("wait for workers")(e)),
        }
    }
    Ok(true)
}

/// Keep `procs` workers alive until a stop request.
fn arbiter(
    procs: usize,
    live: &mut HashSet<Pid>,
    signals: &Signals,
    close: &[RawFd],
    body: &impl Fn(Ready) -> Result<(), ServeError>,
    stats: &Stats,
) -> Result<(), ServeError> {
    let mut next_round = Instant::now();
    loop {
        if stop::requested() {
            return Ok(());
        }
        let timeout = (live.len() < procs).then(|| next_round.saturating_duration_since(Instant::now()));
        match signals.wait(None, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ServeError::io("wait for workers")(e)),
        }
        signals.drain();
        if stop::requested() {
            return Ok(());
        }
        reap(live);
        if live.len() < procs && Instant::now() >= next_round {
            next_round = Instant::now() + RESPAWN_INTERVAL;
            while live.len() < procs {
                let Ok(pid) = spawn(close, None, body, stats) else {
                    break;
                };
                live.insert(pid);
            }
        }
    }
}

/// Reap every exited worker, saying how it ended unless the server is stopping.
fn reap(live: &mut HashSet<Pid>) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                let Some(pid) = status.pid() else { continue };
                if live.remove(&pid) && !stop::requested() {
                    crate::warn_rate_limited(&format!("worker {pid} ended ({status:?}); starting another"));
                }
            }
        }
    }
}

/// Fork one worker running `body`. A failed fork is counted and warned about.
fn spawn(
    close: &[RawFd],
    ready: Option<&OwnedFd>,
    body: &impl Fn(Ready) -> Result<(), ServeError>,
    stats: &Stats,
) -> io::Result<Pid> {
    let parent = getpid();
    // SAFETY: the parent is single-threaded (the models that call this spawn
    // no thread before forking), so the child inherits no lock held by another
    // thread; the child never returns from this arm (it `_exit`s).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            children::become_child(close, parent);
            // SAFETY: the parent's `OwnedFd` for this descriptor is never dropped
            // in the child (which leaves through `_exit`), so `File` is its only owner.
            let ready = Ready(ready.map(|fd| unsafe { File::from_raw_fd(fd.as_raw_fd()) }));
            let outcome = catch_unwind(AssertUnwindSafe(|| body(ready)));
            exit_worker(outcome.unwrap_or_else(|_| Err(ServeError::io("worker")(io::Error::other("panicked")))))
        }
        Ok(ForkResult::Parent { child }) => Ok(child),
        Err(e) => {
            Stats::add(&stats.spawn_failures, 1);
            crate::warn_rate_limited(&format!("cannot fork a worker process: {e}"));
            Err(e.into())
        }
    }
}

/// End a worker process: status 0, or 1 after saying why.
pub(super) fn exit_worker(outcome: Result<(), ServeError>) -> ! {
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("c10k serve: worker {}: {e}", getpid());
            1
        }
    };
    // SAFETY: `_exit` ends the worker without running destructors or atexit
    // handlers that belong to the parent's state.
    unsafe { libc::_exit(code) }
}

/// The parent's signals: SIGCHLD arrives through a signalfd, and SIGINT/SIGTERM
/// are blocked except while sleeping in `ppoll`, so a stop request cannot slip
/// in between checking the flag and going to sleep.
struct Signals {
    sigchld: SignalFd,
    /// The mask while sleeping: SIGCHLD blocked, SIGINT and SIGTERM not.
    sleeping: SigSet,
    original: SigSet,
}

impl Signals {
    fn block() -> io::Result<Signals> {
        let original = SigSet::thread_get_mask()?;
        let mut blocked = SigSet::empty();
        for sig in [Signal::SIGCHLD, Signal::SIGINT, Signal::SIGTERM] {
            blocked.add(sig);
        }
        blocked.thread_block()?;
        let mut sleeping = original;
        sleeping.add(Signal::SIGCHLD);
        sleeping.remove(Signal::SIGINT);
        sleeping.remove(Signal::SIGTERM);
        let mut chld = SigSet::empty();
        chld.add(Signal::SIGCHLD);
        let sigchld = SignalFd::with_flags(&chld, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { sigchld, sleeping, original })
    }

    /// Sleep until a child exits, a stop signal arrives (`Interrupted`),
    /// `extra` is readable or `timeout` passes; returns whether `extra` is.
    fn wait(&self, extra: Option<&OwnedFd>, timeout: Option<Duration>) -> io::Result<bool> {
        let mut fds = vec![PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = extra {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        ppoll(&mut fds, timeout.map(Into::into), Some(self.sleeping))?;
        Ok(fds.get(1).is_some_and(|fd| fd.any().unwrap_or(false)))
    }

    /// Consume SIGCHLD notifications, then let a pending SIGINT/SIGTERM run its
    /// handler (ppoll keeps it blocked when a descriptor was ready too), so a
    /// worker killed by the same Ctrl-C as the parent is not replaced.
    fn drain(&self) {
        while self.sigchld.read_signal().ok().flatten().is_some() {}
        let _ = ppoll(&mut [], Some(Duration::ZERO.into()), Some(self.sleeping));
    }

    fn restore(&self) {
        let _ = self.original.thread_set_mask();
    }
}
