//! `--hlog`: the phases of every request also recorded per 1-second interval,
//! so that HdrHistogram's interval-log tools can plot them over time and
//! `c10k merge` can add the logs of several hosts exactly.
//!
//! Each thread keeps one live histogram per [`Phase`] for the current interval
//! and, when a sample falls in a later interval, stores the finished ones
//! V2-deflate-serialized (a few hundred bytes each, instead of the 270 KiB a
//! 3-digit histogram up to an hour holds in memory). Intervals start at
//! `base_ns + k s`: with `--start-at` the base lies on whole seconds before the
//! common window start, so the intervals of every shard start at the same instants.
//! Every sample the totals hold is in exactly one interval.

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::clock::SEC;

/// A phase of a request with its own histogram and interval-log tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// From the scheduled send to the whole answer (coordinated-omission corrected).
    Corrected = 0,
    /// From the actual send to the whole answer (service time: the full answer).
    Uncorrected = 1,
    /// From the actual send to the answer's first byte.
    FirstByte = 2,
    /// From the connect call to the connection established.
    Connect = 3,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Corrected, Phase::Uncorrected, Phase::FirstByte, Phase::Connect];

    /// The tag of its lines in an interval log.
    pub fn tag(self) -> &'static str {
        match self {
            Phase::Corrected => "corrected",
            Phase::Uncorrected => "uncorrected",
            Phase::FirstByte => "first_byte",
            Phase::Connect => "connect",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.tag() == tag)
    }
}

/// One finished interval of one phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalHist {
    /// The interval: `[base + index s, base + (index + 1) s)`.
    pub index: u64,
    /// [`Phase`] as a number.
    pub phase: u8,
    /// The histogram, V2 deflate serialization.
    pub bytes: Vec<u8>,
}

/// A thread's interval histograms. See the module documentation.
#[derive(Clone, Debug)]
pub struct Intervals {
    /// Monotonic start of interval 0, ns.
    pub base_ns: u64,
    current: u64,
    next_at_ns: u64,
    live: Vec<Histogram<u64>>,
    /// Finished intervals, in the order they ended.
    pub done: Vec<IntervalHist>,
}

impl Intervals {
    pub fn new(base_ns: u64) -> Self {
        let live = Phase::ALL.iter().map(|_| crate::hist::histogram()).collect();
        Intervals { base_ns, current: 0, next_at_ns: base_ns + SEC, live, done: Vec::new() }
    }

    /// Record `value` of `phase` at `now_ns`.
    #[inline]
    pub fn record(&mut self, phase: Phase, now_ns: u64, value: u64) {
        if now_ns >= self.next_at_ns {
            self.flush();
            self.current = now_ns.saturating_sub(self.base_ns) / SEC;
            self.next_at_ns = self.base_ns + (self.current + 1) * SEC;
        }
        self.live[phase as usize].saturating_record(value);
    }

    /// Store the live interval's histograms (the run ended, or a later interval began).
    pub fn flush(&mut self) {
        for (phase, h) in self.live.iter_mut().enumerate() {
            if h.is_empty() {
                continue;
            }
            let mut bytes = Vec::new();
            // Serializing in-range counts into a Vec cannot fail.
            if V2DeflateSerializer::new().serialize(h, &mut bytes).is_ok() {
                self.done.push(IntervalHist { index: self.current, phase: phase as u8, bytes });
            }
            h.reset();
        }
    }
}

/// Where interval 0 starts: the window's start less whole seconds when that start
/// is fixed in advance (`--start-at`), so that every shard's intervals line up;
/// otherwise the run's start.
pub fn base_ns(epoch_ns: u64, window_start_ns: Option<u64>) -> u64 {
    match window_start_ns {
        Some(start) if start >= epoch_ns => start - (start - epoch_ns).div_ceil(SEC) * SEC,
        Some(start) => start,
        None => epoch_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn samples_land_in_their_second_once() {
        let mut iv = Intervals::new(1_000);
        iv.record(Phase::Corrected, 1_000, 5);
        iv.record(Phase::Corrected, 1_000 + SEC - 1, 6);
        iv.record(Phase::Connect, 1_000 + 3 * SEC, 7);
        iv.flush();
        let got: Vec<(u64, u8, u64)> = iv
            .done
            .iter()
            .map(|d| {
                let h: Histogram<u64> = Deserializer::new().deserialize(&mut d.bytes.as_slice()).unwrap();
                (d.index, d.phase, h.len())
            })
            .collect();
        assert_eq!(got, vec![(0, 0, 2), (3, 3, 1)]);
    }

    #[test]
    fn the_base_lies_whole_seconds_before_a_fixed_window() {
        assert_eq!(base_ns(100, None), 100);
        assert_eq!(base_ns(SEC / 2, Some(3 * SEC)), 0);
        assert_eq!(base_ns(SEC, Some(3 * SEC)), SEC);
        assert_eq!(Phase::from_tag("first_byte"), Some(Phase::FirstByte));
    }
}
