//! Child-process bookkeeping shared by the models that fork (fork, prefork,
//! reuseport): reaping, terminating on stop, and a child's first steps.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::stop;

/// How long children get to exit after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_millis(500);

/// Reap every child that has exited, without blocking.
pub fn reap(live: &mut HashSet<Pid>) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    live.remove(&pid);
                }
            }
        }
    }
}

/// SIGTERM every live child, wait up to [`GRACE`], SIGKILL the rest, reap all.
pub fn terminate(live: &mut HashSet<Pid>) {
    for &pid in live.iter() {
        let _ = kill(pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while !live.is_empty() && Instant::now() < deadline {
        reap(live);
        std::thread::sleep(Duration::from_millis(5));
    }
    for &pid in live.iter() {
        let _ = kill(pid, Signal::SIGKILL);
    }
    for pid in live.drain() {
        let _ = waitpid(pid, None);
    }
}

/// First steps of a forked child: default signal handling, die with the
/// parent, and close the parent's descriptors it must not hold.
pub fn become_child(parent_fds: &[RawFd], parent: Pid) {
    stop::reset_in_child();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        // The parent died before PR_SET_PDEATHSIG took effect.
        // SAFETY: ends this child immediately, as the parent is gone.
        unsafe { libc::_exit(0) };
    }
    for &fd in parent_fds {
        // SAFETY: these descriptors belong to the parent's loop; the child never
        // uses them, and the owning objects are never dropped in the child
        // (it leaves through `_exit`).
        unsafe { libc::close(fd) };
    }
}
