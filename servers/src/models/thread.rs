//! M2, a thread per connection (004 §5.3; 001 §四.2; 002 §4.1.2).
//!
//! The main thread blocks in `accept`; each accepted connection gets its own
//! OS thread that blocks in `read`/`write` on that connection alone. Code stays
//! sequential and a slow client delays only itself, but every connection costs
//! a kernel task and a stack (`--thread-stack-kib`, Rust's 2 MiB by default, of
//! which only touched pages become resident), and the scheduler juggles as many
//! threads as clients (claims C1, T2). If a thread cannot be created the
//! connection is closed and counted in `spawn_failures`; the server goes on.
//!
//! Besides the kernel's task limits (which make `clone` fail cleanly), every
//! thread costs memory mappings (its stack and guard page, and the alternate
//! signal stack the standard library maps inside the new thread), and a process
//! has at most `vm.max_map_count` of them (65,530 by default: about 16,000
//! threads). Past it the mapping fails *inside* the new thread, where the
//! standard library can only abort the process. So the model measures the
//! mappings a thread costs at start-up and refuses a connection, like a failed
//! spawn, once the next thread would not fit: the limit stays a finding (a
//! closed, counted connection), not a crash.
//!
//! Chat (`--proto chat`, [`crate::chat::threads`]): one `Mutex<Room>`. The
//! sender's own thread puts each line in every member's outbox and writes it
//! onto the member's socket with `MSG_DONTWAIT`, so a broadcast costs its
//! sender one `send` per member and wakes no other thread; a member's thread,
//! blocked in `ppoll` on its socket, is woken by a signal only when its socket
//! is full and it must wait for WRITABLE itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crate::{blocking, Ctx, ServeError, Stats};

/// Mappings kept free for everything else the process maps (heap arenas, buffers).
const MAPS_RESERVE: usize = 1_024;
/// Threads started to measure the mappings a thread costs.
const PROBE_THREADS: usize = 40;
/// The last threads of the probe, whose mappings give the cost of one.
const PROBE_MARGINAL: usize = 8;

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    let listener = ctx.listen()?;
    let builder = || {
        let b = thread::Builder::new();
        match ctx.config.thread_stack {
            Some(stack) => b.stack_size(stack),
            None => b,
        }
    };
    let budget = MapBudget::measure(builder);
    ctx.ready(Ctx::local_addr(&listener)?);
    let shared = ctx.shared;
    let live = Arc::new(AtomicUsize::new(0));
    super::accept_loop(&listener, ctx, |stream| {
        if let Some(b) = &budget {
            if live.load(Ordering::Acquire) >= b.threads {
                Stats::add(&shared.stats.spawn_failures, 1);
                crate::warn_rate_limited(&format!(
                    "cannot spawn a thread for a connection: {} threads reached, the most that fit in \
                     vm.max_map_count = {} at {} mappings per thread",
                    b.threads, b.max_map_count, b.per_thread
                ));
                return; // the stream is dropped: the connection closes
            }
        }
        let counter = Arc::clone(&live);
        counter.fetch_add(1, Ordering::AcqRel);
        // On failure the closure (and the stream it owns) is dropped: the connection closes.
        let spawned = builder().spawn(move || {
            blocking::serve(stream, &shared);
            counter.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            live.fetch_sub(1, Ordering::AcqRel);
            Stats::add(&shared.stats.spawn_failures, 1);
            crate::warn_rate_limited(&format!("cannot spawn a thread for a connection: {e}"));
        }
    })
}

/// How many connection threads fit in the process's memory-mapping limit
/// (also used by `reactor-task` and `reactor-conn-thread`, see `spawner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MapBudget {
    pub(super) threads: usize,
    pub(super) per_thread: usize,
    pub(super) max_map_count: usize,
}

impl MapBudget {
    /// Start parked threads built like the connection threads and count this
    /// process's mappings as they start: the cost of a thread is the growth over
    /// the last [`PROBE_MARGINAL`] of [`PROBE_THREADS`] (the first ones also create
    /// malloc arenas, at most 8 per core, a cost that stops). `None` where the
    /// counts cannot be read (no /proc): the kernel's own failure is all there is then.
    pub(super) fn measure(builder: impl Fn() -> thread::Builder) -> Option<MapBudget> {
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()?;
        let (release, parked) = crossbeam_channel::bounded::<()>(0);
        let (started, running) = crossbeam_channel::bounded::<()>(0);
        let mut threads = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..PROBE_THREADS {
            let (started, parked) = (started.clone(), parked.clone());
            let Ok(t) = builder().spawn(move || {
                // Running the closure means the thread's own set-up (its signal stack) is
                // done; a small allocation takes the arena a serving thread would.
                let warm = vec![0u8; 64];
                let _ = started.send(());
                let _ = parked.recv();
                drop(warm);
            }) else {
                break;
            };
            threads.push(t);
            if running.recv().is_err() {
                break;
            }
            counts.push(maps());
        }
        drop(release);
        for t in threads {
            let _ = t.join();
        }
        let n = counts.len();
        let (Some(Some(last)), Some(Some(earlier))) = (counts.last(), counts.get(n.checked_sub(PROBE_MARGINAL + 1)?))
        else {
            return None;
        };
        let per_thread = (last.saturating_sub(*earlier)).div_ceil(PROBE_MARGINAL);
        // The probe's threads are gone, their mappings with them.
        Some(MapBudget::new(max_map_count, maps()?, per_thread))
    }

    fn new(max_map_count: usize, maps_now: usize, per_thread: usize) -> MapBudget {
        let per_thread = per_thread.max(1);
        let free = max_map_count.saturating_sub(maps_now + MAPS_RESERVE);
        MapBudget { threads: free / per_thread, per_thread, max_map_count }
    }
}

fn maps() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps").ok().map(|m| m.lines().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_a_reserve_and_divides_by_the_cost_of_a_thread() {
        let b = MapBudget::new(65_530, 506, 4);
        assert_eq!(b.threads, (65_530 - 506 - MAPS_RESERVE) / 4);
        assert_eq!(MapBudget::new(1_000, 500, 4).threads, 0, "nothing left after the reserve");
        assert_eq!(MapBudget::new(10_000, 0, 0).per_thread, 1, "a thread always counts");
    }

    #[test]
    fn a_thread_costs_at_least_one_mapping() {
        let b = MapBudget::measure(thread::Builder::new).expect("/proc is readable");
        assert!(b.per_thread >= 1 && b.threads > 0, "{b:?}");
        assert!(b.threads < b.max_map_count);
    }
}
