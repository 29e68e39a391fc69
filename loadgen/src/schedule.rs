//! When a connection sends its next request: the one parameter that makes a
//! run closed loop or open loop. The request loop in [`crate::engine`] is the
//! same for both; it asks [`Schedule::next`] and obeys.
//!
//! Open loop follows wrk2: the total rate is shared evenly by the connections;
//! connection `g` of `N` has its own fixed interval `N / rate` and starts at
//! `g / rate`, so the requests of all connections together are evenly spaced.
//! A request's scheduled time advances at the fixed interval whatever the
//! answers do: a request that has to wait for a busy connection is late, and
//! its latency is counted from when it *should* have been sent.

use crate::clock::SEC;

/// The request schedule of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Send as soon as the connection may (an answer freed a pipeline slot).
    Closed,
    /// Fixed rate: each connection every `interval_ns`, connection `g` offset by
    /// `g * interval_ns / conns`.
    Open { interval_ns: u64, conns: u64 },
}

/// What a connection that has room for a request should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send a request scheduled at this time (never later than now).
    Send { scheduled: u64 },
    /// Nothing is due before this time.
    At(u64),
}

impl Schedule {
    /// Closed loop without `rate`, open loop at `rate` requests/s over `conns` connections.
    pub fn new(rate: Option<f64>, conns: u64) -> Self {
        match rate {
            None => Schedule::Closed,
            Some(rate) => {
                let interval_ns = (SEC as f64 * conns as f64 / rate).round().max(1.0) as u64;
                Schedule::Open { interval_ns, conns: conns.max(1) }
            }
        }
    }

    /// The first due time of connection `global` in a run starting at `epoch`.
    pub fn first_due(&self, epoch: u64, global: u64) -> u64 {
        match *self {
            Schedule::Closed => epoch,
            Schedule::Open { interval_ns, conns } => {
                let offset = u128::from(global % conns) * u128::from(interval_ns) / u128::from(conns);
                epoch + offset as u64
            }
        }
    }

    /// The next request of a connection whose next due time is `*due`; advances
    /// `*due` when a request is handed out.
    #[inline]
    pub fn next(&self, due: &mut u64, now: u64) -> Next {
        match *self {
            Schedule::Closed => Next::Send { scheduled: now },
            Schedule::Open { interval_ns, .. } => {
                if *due > now {
                    return Next::At(*due);
                }
                let scheduled = *due;
                *due += interval_ns;
                Next::Send { scheduled }
            }
        }
    }

    /// Open loop: how many requests of a connection whose next due time is
    /// `due` fall in `[start, end)` (the ones it never got to send).
    pub fn remaining(&self, due: u64, start: u64, end: u64) -> u64 {
        let Schedule::Open { interval_ns, .. } = *self else { return 0 };
        let first = if due >= start { due } else { due + (start - due).div_ceil(interval_ns) * interval_ns };
        if first >= end {
            return 0;
        }
        (end - 1 - first) / interval_ns + 1
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_sends_now() {
        let mut due = 0;
        assert_eq!(Schedule::Closed.next(&mut due, 42), Next::Send { scheduled: 42 });
    }

    #[test]
    fn open_spreads_the_rate_evenly() {
        let s = Schedule::new(Some(1000.0), 10);
        assert_eq!(s, Schedule::Open { interval_ns: 10_000_000, conns: 10 });
        let firsts: Vec<u64> = (0..10).map(|g| s.first_due(5, g)).collect();
        assert_eq!(firsts[0], 5);
        assert_eq!(firsts[3], 5 + 3_000_000);
        let mut due = firsts[1];
        assert_eq!(s.next(&mut due, 0), Next::At(5 + 1_000_000));
        // Late by a lot: the schedule does not slip, every missed slot is handed out.
        let now = 5 + 1_000_000 + 35_000_000;
        let sent: Vec<Next> = (0..5).map(|_| s.next(&mut due, now)).collect();
        assert_eq!(sent[0], Next::Send { scheduled: 5 + 1_000_000 });
        assert_eq!(sent[3], Next::Send { scheduled: 5 + 31_000_000 });
        assert_eq!(sent[4], Next::At(5 + 41_000_000));
        // Due at 41 ms (+5 ns): 41, 51, 61 ms fall in [30 ms, 70 ms).
        assert_eq!(s.remaining(5 + 41_000_000, 30_000_000, 70_000_000), 3);
        assert_eq!(s.remaining(5, 30_000_005, 30_000_006), 1);
        assert_eq!(s.remaining(100, 0, 100), 0);
        assert_eq!(Schedule::Closed.remaining(0, 0, 100), 0);
    }
}
