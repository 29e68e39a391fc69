//! A thread's clock of the run: when the load started, the measured window
//! (`--warmup` after the load starts, `--duration` long, or cut short by a
//! stop or by `--requests`), the seconds of the timeline as they pass, the
//! housekeeping period, and when the run is over. Pure arithmetic on
//! monotonic nanoseconds: no clock is read here.

use crate::clock::{MS, SEC};

/// Housekeeping period bounds: timeouts are checked every `timeout / 20`
/// within these (a sweep visits every connection, so not too often).
const MIN_SWEEP: u64 = 10 * MS;
const MAX_SWEEP: u64 = 100 * MS;

/// See the module documentation. Times are monotonic nanoseconds.
#[derive(Debug)]
pub struct Window {
    /// The load has started (the gate opened).
    pub loaded: bool,
    /// Stopped (SIGINT) before the load started.
    pub stopped: bool,
    /// The measured window, `u64::MAX` until the gate opens.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The end of the next second of the timeline.
    next_second_ns: u64,
    next_sweep_ns: u64,
    sweep_every_ns: u64,
    /// Last answer, or the start of the load: a `--requests` run with no
    /// answer for `timeout + connect_timeout` gives up.
    pub last_progress_ns: u64,
}

impl Window {
    /// Before the load: connects start at `epoch`; requests time out after `timeout_ns`.
    pub fn new(epoch: u64, timeout_ns: u64) -> Self {
        Window {
            loaded: false,
            stopped: false,
            start_ns: u64::MAX,
            end_ns: u64::MAX,
            next_second_ns: u64::MAX,
            next_sweep_ns: epoch,
            sweep_every_ns: (timeout_ns / 20).clamp(MIN_SWEEP, MAX_SWEEP),
            last_progress_ns: epoch,
        }
    }

    /// The load started at `released` (seen at `now`): the window opens
    /// `warmup_ns` later and lasts `duration_ns` (none: until stopped).
    pub fn open(&mut self, released: u64, now: u64, warmup_ns: u64, duration_ns: Option<u64>) {
        self.loaded = true;
        self.last_progress_ns = now;
        self.start_ns = released + warmup_ns;
        self.end_ns = duration_ns.map_or(u64::MAX, |d| self.start_ns + d);
        self.next_second_ns = self.start_ns + SEC;
    }

    /// True when `now` is inside the measured window.
    #[inline]
    pub fn contains(&self, now: u64) -> bool {
        now >= self.start_ns && now < self.end_ns
    }

    /// The second of the window `now` falls in, if it is inside.
    #[inline]
    pub fn second(&self, now: u64) -> Option<usize> {
        self.contains(now).then(|| ((now - self.start_ns) / SEC) as usize)
    }

    /// A stop was asked for at `now`: the window ends now (before the load
    /// started, the run does).
    pub fn stop(&mut self, now: u64) {
        if now >= self.end_ns {
            return;
        }
        if self.loaded {
            self.end_ns = now.max(self.start_ns);
        } else {
            self.stopped = true;
        }
    }

    /// The next second of the window that ended by `now`, once each.
    pub fn second_passed(&mut self, now: u64) -> Option<usize> {
        if self.next_second_ns > now || self.next_second_ns > self.end_ns {
            return None;
        }
        let s = ((self.next_second_ns - self.start_ns) / SEC - 1) as usize;
        self.next_second_ns += SEC;
        Some(s)
    }

    /// The window ends at `now` (if it has not already): returns the second
    /// of a partial last second, which is still to be closed.
    pub fn close(&mut self, now: u64) -> Option<usize> {
        let end = now.min(self.end_ns);
        let partial =
            (end > self.start_ns && (end - self.start_ns) % SEC != 0).then(|| ((end - self.start_ns) / SEC) as usize);
        self.end_ns = self.end_ns.min(now.max(self.start_ns));
        partial
    }

    /// Is housekeeping due at `now`? If so, the next is scheduled.
    pub fn sweep_due(&mut self, now: u64) -> bool {
        if now < self.next_sweep_ns {
            return false;
        }
        self.next_sweep_ns = now + self.sweep_every_ns;
        true
    }

    /// The earliest of the next sweep and the end of the current second.
    pub fn next_tick(&self) -> u64 {
        self.next_sweep_ns.min(self.next_second_ns)
    }

    /// Is the run over at `now`, with `in_flight` measured requests unanswered?
    /// It is when the window ended and they are answered, or when they had
    /// `timeout_ns` (and two sweeps to notice) to be; a run bounded only by
    /// `--requests` ends when nothing was answered for `stall_ns`.
    pub fn finished(&self, now: u64, in_flight: u64, timeout_ns: u64, stall_ns: u64) -> bool {
        let drained = now >= self.end_ns && in_flight == 0;
        let timed_out = now >= self.end_ns.saturating_add(timeout_ns + 2 * self.sweep_every_ns);
        let stalled = self.end_ns == u64::MAX && self.loaded && now.saturating_sub(self.last_progress_ns) > stall_ns;
        self.stopped || drained || timed_out || stalled
    }

    /// Length of the window as it was at `now` (0 if the load never started).
    pub fn length(&self, now: u64) -> u64 {
        if self.loaded {
            self.end_ns.min(now).saturating_sub(self.start_ns)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_after_the_warmup_and_counts_its_seconds() {
        let mut w = Window::new(100, 2 * SEC);
        assert!(!w.contains(100) && !w.loaded);
        w.open(1_000, 1_005, 500, Some(3 * SEC));
        assert_eq!((w.start_ns, w.end_ns, w.last_progress_ns), (1_500, 1_500 + 3 * SEC, 1_005));
        assert!(!w.contains(1_499) && w.contains(1_500) && !w.contains(w.end_ns));
        assert_eq!(w.second(1_500 + SEC), Some(1));
        assert_eq!(w.second_passed(1_500 + SEC - 1), None);
        let passed: Vec<_> = std::iter::from_fn(|| w.second_passed(1_500 + 5 * SEC)).collect();
        assert_eq!(passed, vec![0, 1, 2], "not past the end");
        assert_eq!(w.close(1_500 + 5 * SEC), None, "ended on a whole second");
        assert_eq!(w.length(u64::MAX), 3 * SEC);
    }

    #[test]
    fn a_stop_cuts_the_window_and_leaves_a_partial_second() {
        let mut w = Window::new(0, SEC);
        w.stop(10);
        assert!(w.stopped && w.finished(11, 0, SEC, SEC), "stopped before the load: over");
        let mut w = Window::new(0, SEC);
        w.open(0, 0, 0, None);
        w.stop(SEC + 250);
        assert_eq!(w.end_ns, SEC + 250);
        assert_eq!(w.close(SEC + 300), Some(1));
        assert_eq!(w.length(5 * SEC), SEC + 250);
        assert!(!w.finished(SEC + 300, 1, SEC, SEC), "a request in flight is waited for");
        assert!(w.finished(SEC + 300, 0, SEC, SEC));
        assert!(!w.finished(SEC + 250 + SEC + 99 * MS, 1, SEC, SEC));
        assert!(w.finished(SEC + 250 + SEC + 100 * MS, 1, SEC, SEC), "but not past its timeout and two sweeps");
    }

    #[test]
    fn an_unbounded_window_ends_when_nothing_is_answered() {
        let mut w = Window::new(0, 2 * SEC);
        assert_eq!(w.sweep_every_ns, MAX_SWEEP);
        w.open(0, 0, 0, None);
        assert!(!w.finished(3 * SEC, 5, 2 * SEC, 3 * SEC));
        assert!(w.finished(3 * SEC + 1, 5, 2 * SEC, 3 * SEC));
        w.last_progress_ns = 2 * SEC;
        assert!(!w.finished(3 * SEC + 1, 5, 2 * SEC, 3 * SEC));
    }

    #[test]
    fn sweeps_come_every_twentieth_of_the_timeout_within_bounds() {
        let mut w = Window::new(0, SEC);
        assert!(w.sweep_due(0) && !w.sweep_due(49 * MS) && w.sweep_due(50 * MS));
        assert_eq!(w.next_tick(), 100 * MS);
        assert_eq!(Window::new(0, 1).sweep_every_ns, MIN_SWEEP);
    }
}
