//! Server counters, shared across threads *and* forked processes.
//!
//! The counters live in one anonymous `MAP_SHARED` page mapped before any fork,
//! so a child serving a connection adds to the same numbers its parent prints
//! at exit. Hot paths do not touch them per request: a connection adds its
//! answers once, when it closes.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// Live counters. Obtain the process-wide instance with [`Stats::shared`].
#[derive(Debug, Default)]
#[repr(C)]
pub struct Stats {
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    pub answered: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub spawn_failures: AtomicU64,
    pub accept_backoffs: AtomicU64,
    pub rejected: AtomicU64,
    pub listener_wakeups: AtomicU64,
    pub accept_would_block: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub slow_members_dropped: AtomicU64,
}

/// A copy of the counters, printed as the `stats {json}` line at exit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsSnapshot {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed after being served.
    pub closed: u64,
    /// Requests answered on closed connections (errors included).
    pub answered: u64,
    /// Requests answered 400/413/431/501.
    pub protocol_errors: u64,
    /// Connections closed unserved because a thread or process could not be created.
    pub spawn_failures: u64,
    /// Times accept ran out of descriptors (or memory) and backed off.
    pub accept_backoffs: u64,
    /// Connections refused by the model itself (e.g. select past FD_SETSIZE).
    pub rejected: u64,
    /// Times a listener was reported ready to a waiter (thundering-herd measure).
    pub listener_wakeups: u64,
    /// Accept attempts that found nothing to accept after a wake-up.
    pub accept_would_block: u64,
    /// Connections closed by `--idle-timeout` (also counted in `closed`).
    pub idle_timeouts: u64,
    /// Connections closed by `--header-timeout` (also counted in `closed`).
    pub header_timeouts: u64,
    /// Chat members disconnected because their outbox passed its bound
    /// (`proto::chat::OUTBOX_BOUND`): they did not read what the room sent.
    pub slow_members_dropped: u64,
}

struct Mapping(NonNull<Stats>);
// SAFETY: the mapping is never unmapped and only accessed through atomics.
unsafe impl Send for Mapping {}
// SAFETY: as above; `Stats` is all atomics.
unsafe impl Sync for Mapping {}

static SHARED: OnceLock<Mapping> = OnceLock::new();

impl Stats {
    /// The process-wide counters, in memory that survives `fork` as shared.
    /// Call it before forking so parent and children see the same page.
    pub fn shared() -> &'static Stats {
        let mapping = SHARED.get_or_init(|| Mapping(map_shared().unwrap_or_else(leak_private)));
        // SAFETY: the pointer comes from a mapping (or allocation) that lives for
        // the rest of the process and holds a valid, zero-initialised `Stats`.
        unsafe { mapping.0.as_ref() }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            accepted: self.accepted.load(Relaxed),
            closed: self.closed.load(Relaxed),
            answered: self.answered.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            spawn_failures: self.spawn_failures.load(Relaxed),
            accept_backoffs: self.accept_backoffs.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            listener_wakeups: self.listener_wakeups.load(Relaxed),
            accept_would_block: self.accept_would_block.load(Relaxed),
            idle_timeouts: self.idle_timeouts.load(Relaxed),
            header_timeouts: self.header_timeouts.load(Relaxed),
            slow_members_dropped: self.slow_members_dropped.load(Relaxed),
        }
    }

    /// Record a finished connection's session.
    pub fn connection_closed(&self, session: &proto::Session) {
        Stats::add(&self.closed, 1);
        Stats::add(&self.answered, session.answered());
        Stats::add(&self.protocol_errors, session.errors());
        Stats::add(&self.slow_members_dropped, u64::from(session.is_slow()));
    }
}

fn map_shared() -> Option<NonNull<Stats>> {
    let len = std::num::NonZeroUsize::new(std::mem::size_of::<Stats>())?;
    // SAFETY: an anonymous mapping touches no existing memory; the kernel zero-fills
    // it, and all-zero bytes are a valid `Stats` (every field is an AtomicU64).
    let ptr = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            len,
            nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
            nix::sys::mman::MapFlags::MAP_SHARED,
        )
    }
    .ok()?;
    Some(ptr.cast())
}

fn leak_private() -> NonNull<Stats> {
    NonNull::from(Box::leak(Box::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_counters_survive_fork() {
        let stats = Stats::shared();
        let before = stats.snapshot().rejected;
        // SAFETY: the child only does an atomic add and `_exit`s, both safe after fork
        // in a multi-threaded process.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                Stats::add(&stats.rejected, 5);
                // SAFETY: `_exit` ends the child without running the parent's destructors.
                unsafe { libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).expect("waitpid");
            }
        }
        assert_eq!(stats.snapshot().rejected, before + 5);
    }
}
