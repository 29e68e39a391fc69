//! What the threads of one process share: the [`Plan`] fixed before they
//! start (configuration, schedule, window, request bytes, the gate), and the
//! [`Live`] counters each thread publishes for the progress line.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::Config;
use crate::schedule::Schedule;

/// What every thread of a process shares, fixed before the threads start.
#[derive(Debug)]
pub struct Plan {
    pub config: Config,
    pub schedule: Schedule,
    /// Connects start here (monotonic ns, the same in every process).
    pub epoch: u64,
    /// The measured window starts this long after the load starts (the gate opens).
    pub warmup_ns: u64,
    /// Length of the measured window; `None` when only `--requests` bounds the run.
    pub duration_ns: Option<u64>,
    /// One request.
    pub request: Vec<u8>,
    /// `pipeline` requests back to back.
    pub batch: Vec<u8>,
    /// Connections driven by this process.
    pub slots: u64,
    /// Set to end the run early (SIGINT).
    pub stop: &'static AtomicBool,
    /// Slots of this process not yet established (or failed) once. Without
    /// `--connect-rate` the load starts only when this reaches zero: opening
    /// thousands of connections while others already load the server starves
    /// the late ones in its accept queue.
    pub gate: AtomicU64,
    /// When the load starts (monotonic ns), 0 before: when `gate` reached
    /// zero, or, with `external_gate`, when the `--procs` parent says so.
    pub released_at: AtomicU64,
    /// The gate is shared with other processes: reaching zero only sets
    /// `ready`, and the parent opens the gate of all its children at once.
    pub external_gate: bool,
    /// `gate` reached zero (with `external_gate`).
    pub ready: AtomicBool,
    /// `--start-at`: the load starts at this instant (monotonic ns; the window
    /// `warmup` later), whether or not every connection is open by then.
    pub load_at: Option<u64>,
    /// Connections of this process still opening when `load_at` came.
    pub opening_at_load: AtomicU64,
}

impl Plan {
    /// The plan of a process driving `slots` connections; `shared_gate`: it is
    /// one of several `--procs` children.
    pub fn new(
        config: Config,
        epoch: u64,
        load_at: Option<u64>,
        stop: &'static AtomicBool,
        slots: u64,
        shared_gate: bool,
    ) -> Self {
        let warmup_ns = crate::clock::ns(config.settings.warmup);
        let duration_ns = config.settings.duration.map(crate::clock::ns);
        let request = config.request_bytes();
        let batch = request.repeat(config.settings.pipeline as usize);
        let gate = if config.settings.connect_rate.is_some() { 0 } else { slots };
        // A ramp (`--connect-rate`) loads from the start, in every process alike.
        let external_gate = shared_gate && config.settings.connect_rate.is_none() && load_at.is_none();
        Plan {
            schedule: config.schedule(),
            config,
            epoch,
            warmup_ns,
            duration_ns,
            request,
            batch,
            stop,
            slots,
            gate: AtomicU64::new(gate),
            released_at: AtomicU64::new(if gate == 0 && !external_gate { epoch } else { 0 }),
            external_gate,
            ready: AtomicBool::new(gate == 0),
            load_at,
            opening_at_load: AtomicU64::new(0),
        }
    }

    /// Slot first established, or failed to connect: count it through the gate.
    pub fn pass_gate(&self, now: u64) {
        if self.gate.fetch_sub(1, Ordering::AcqRel) == 1 {
            if self.external_gate || self.load_at.is_some() {
                self.ready.store(true, Ordering::Release);
            } else {
                self.release(now);
            }
        }
    }

    /// Start the load (the window starts `warmup` later).
    pub fn release(&self, at: u64) {
        self.released_at.store(at.max(1), Ordering::Release);
    }

    /// Where `--hlog` interval 0 starts (see [`crate::intervals::base_ns`]).
    pub fn interval_base_ns(&self) -> u64 {
        crate::intervals::base_ns(self.epoch, self.load_at.map(|t| t + self.warmup_ns))
    }

    /// `--start-at`: when `load_at` has come, start the load exactly then (the
    /// first thread to see it does; the others find it done). Returns when the load started.
    pub fn release_on_time(&self, now: u64) -> Option<u64> {
        let at = self.load_at.filter(|&t| now >= t)?;
        if self.released_at.compare_exchange(0, at.max(1), Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.opening_at_load.store(self.gate.load(Ordering::Acquire), Ordering::Release);
        }
        Some(self.released_at.load(Ordering::Acquire))
    }
}

/// Counters a thread publishes for the progress line (never read on the hot path).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Live {
    pub answers: AtomicU64,
    pub errors: AtomicU64,
    pub open: AtomicU64,
    pub done: AtomicBool,
}
