//! Simulated per-request work, identical in every model.
//!
//! `cpu` is spent spinning on the calling thread's own CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`), so a request costs the same CPU whether or not
//! its thread is preempted: a model that runs many more threads than cores does
//! not get cheaper requests for it. `block` is a plain blocking sleep, what a
//! database call does to a thread. Whatever either does to a model is the
//! finding; no model works around it.

use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

/// The work done for every request a server answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// CPU time to burn per request.
    pub cpu: Duration,
    /// Time to sleep in a blocking call per request.
    pub block: Duration,
}

impl Work {
    pub fn from_micros(cpu_us: u64, block_us: u64) -> Self {
        Work { cpu: Duration::from_micros(cpu_us), block: Duration::from_micros(block_us) }
    }

    pub fn is_none(&self) -> bool {
        self.cpu.is_zero() && self.block.is_zero()
    }

    /// Do the work on the calling thread.
    pub fn perform(&self) {
        if !self.cpu.is_zero() {
            spin_thread_cpu(self.cpu);
        }
        if !self.block.is_zero() {
            std::thread::sleep(self.block);
        }
    }
}

fn thread_cpu_now() -> Option<Duration> {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok().map(Duration::from)
}

/// Burn `amount` of this thread's CPU time. Falls back to wall time where the
/// thread CPU clock is unavailable.
fn spin_thread_cpu(amount: Duration) {
    match thread_cpu_now() {
        Some(start) => {
            let end = start + amount;
            while thread_cpu_now().is_some_and(|now| now < end) {
                std::hint::spin_loop();
            }
        }
        None => {
            let end = Instant::now() + amount;
            while Instant::now() < end {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_work_consumes_thread_cpu_time() {
        let before = thread_cpu_now().expect("thread cpu clock");
        Work::from_micros(2_000, 0).perform();
        let spent = thread_cpu_now().unwrap() - before;
        assert!(spent >= Duration::from_micros(2_000), "spent only {spent:?}");
    }

    #[test]
    fn block_work_sleeps() {
        let start = Instant::now();
        Work::from_micros(0, 3_000).perform();
        assert!(start.elapsed() >= Duration::from_micros(3_000));
    }

    #[test]
    fn no_work_is_none() {
        assert!(Work::default().is_none());
        assert!(!Work::from_micros(1, 0).is_none());
    }
}
