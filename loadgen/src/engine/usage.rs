//! What a thread measures of itself over the window, for the self-check: its
//! CPU time (`RUSAGE_THREAD`) and run-queue wait, the CPU it spent spinning
//! with nothing to do before a send (not work: left out of its utilisation),
//! and the hypervisor's steal on the process's CPUs.

use crate::env::ThreadCpu;
use crate::recorder::Counts;

/// See the module documentation. Times are monotonic nanoseconds.
#[derive(Debug, Default)]
pub struct Usage {
    /// Taken when the window opened and when it closed.
    start: Option<(u64, ThreadCpu)>,
    end: Option<(u64, ThreadCpu)>,
    /// CPU spent spinning with nothing to do, in all and when the window opened.
    idle_spin_ns: u64,
    idle_spin_at_start_ns: u64,
    /// Steal on the process's CPUs when the window opened.
    steal_at_start_ns: u64,
}

impl Usage {
    /// `ns` of a turn that only waited for a deadline.
    #[inline]
    pub fn spun_idle(&mut self, ns: u64) {
        self.idle_spin_ns += ns;
    }

    /// The next instant this wants to be woken at: the window's start or end,
    /// until each was taken.
    pub fn next_edge(&self, window_start: u64, window_end: u64) -> u64 {
        match (&self.start, &self.end) {
            (None, _) => window_start.min(window_end),
            (Some(_), None) => window_end,
            (Some(_), Some(_)) => u64::MAX,
        }
    }

    /// Take the start figures once the window has opened at `now`.
    pub fn begin_if_due(&mut self, now: u64, window_start: u64) {
        if self.start.is_none() && now >= window_start {
            self.start = Some((now, ThreadCpu::now()));
            self.idle_spin_at_start_ns = self.idle_spin_ns;
            self.steal_at_start_ns = crate::env::steal_ns();
        }
    }

    /// Has the window been closed (`end` taken)?
    pub fn ended(&self) -> bool {
        self.end.is_some()
    }

    /// Take the end figures at `now` into `counts` (once).
    pub fn end(&mut self, now: u64, counts: &mut Counts) {
        if self.end.is_some() {
            return;
        }
        self.end = Some((now, ThreadCpu::now()));
        counts.idle_spin_ns = self.idle_spin_ns - self.idle_spin_at_start_ns;
        if self.start.is_some() {
            counts.steal_ns = crate::env::steal_ns().saturating_sub(self.steal_at_start_ns);
        }
    }

    /// The thread's CPU over the window into `counts` (at `now`, if the
    /// window never opened or closed).
    pub fn report(&self, now: u64, counts: &mut Counts) {
        let (t0, cpu0) = self.start.unwrap_or_else(|| (now, ThreadCpu::now()));
        let (t1, cpu1) = self.end.unwrap_or_else(|| (now, ThreadCpu::now()));
        let used = cpu1.since(cpu0);
        counts.cpu_user_ns = used.user_ns;
        counts.cpu_sys_ns = used.sys_ns;
        counts.cpu_wait_ns = used.wait_ns;
        if self.end.is_none() {
            counts.idle_spin_ns = self.idle_spin_ns - self.idle_spin_at_start_ns;
        }
        let working = (used.user_ns + used.sys_ns).saturating_sub(counts.idle_spin_ns);
        counts.max_thread_util = if t1 > t0 { working as f64 / (t1 - t0) as f64 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_spin_counts_from_the_window_on_and_edges_are_taken_once() {
        let mut u = Usage::default();
        assert_eq!(u.next_edge(u64::MAX, u64::MAX), u64::MAX, "before the load");
        assert_eq!(u.next_edge(100, 200), 100);
        u.spun_idle(7);
        u.begin_if_due(99, 100);
        assert_eq!(u.next_edge(100, 200), 100, "not yet");
        u.begin_if_due(100, 100);
        assert_eq!(u.next_edge(100, 200), 200);
        u.spun_idle(5);
        let mut counts = Counts::default();
        u.end(300, &mut counts);
        u.spun_idle(1_000);
        u.end(400, &mut counts);
        assert!(u.ended());
        assert_eq!(counts.idle_spin_ns, 5, "spinning before the window and after it is left out");
        u.report(500, &mut counts);
        assert_eq!(counts.idle_spin_ns, 5);
        assert!(counts.max_thread_util >= 0.0);
    }
}
