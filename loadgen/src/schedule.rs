//! When a connection sends its next request: the one parameter that makes a
//! run closed loop or open loop. The request loop in [`crate::engine`] is the
//! same for both; it asks [`Schedule::next`] and obeys.
//!
//! Open loop follows wrk2: the total rate is shared evenly by the connections,
//! each with a mean gap of `N / rate` between its requests. With uniform
//! arrivals connection `g` of `N` sends every `N / rate` starting at `g / rate`,
//! so the requests of all connections together are evenly spaced. With Poisson
//! arrivals each connection's gaps are exponential with that mean, drawn from
//! its own generator seeded by the run's seed and the connection's rank, so the
//! merged stream is a Poisson process at `rate` and a seed reproduces it.
//! A request's scheduled time advances by its gap whatever the answers do: a
//! request that has to wait for a busy connection is late, and its latency is
//! counted from when it *should* have been sent.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::clock::SEC;

/// How open-loop requests are spaced in time (`--arrivals`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Fixed gaps: each connection every `conns / rate` seconds.
    #[default]
    Uniform,
    /// Exponential gaps with the same mean, from a seeded generator.
    Poisson,
}

/// The seed of the Poisson generators when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 1;

/// The request schedule of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Send as soon as the connection may (an answer freed a pipeline slot).
    Closed,
    /// Each connection with a mean gap of `interval_ns` between requests.
    /// Uniform: connection `g` offset by `g * interval_ns / conns`.
    Open { interval_ns: u64, conns: u64, arrivals: Arrivals, seed: u64 },
}

/// What a connection that has room for a request should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send a request scheduled at this time (never later than now).
    Send { scheduled: u64 },
    /// Nothing is due before this time.
    At(u64),
}

/// SplitMix64: one step of a connection's generator (`state` advances).
#[inline]
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An exponential gap with mean `mean_ns`, in nanoseconds.
#[inline]
fn exponential_ns(state: &mut u64, mean_ns: u64) -> u64 {
    // Uniform in (0, 1]: never 0, so the logarithm is finite.
    let u = ((splitmix64(state) >> 11) + 1) as f64 / (1u64 << 53) as f64;
    (-u.ln() * mean_ns as f64).round() as u64
}

impl Schedule {
    /// Closed loop without `rate`, open loop at `rate` requests/s over `conns` connections.
    pub fn new(rate: Option<f64>, conns: u64, arrivals: Arrivals, seed: u64) -> Self {
        match rate {
            None => Schedule::Closed,
            Some(rate) => {
                let interval_ns = (SEC as f64 * conns as f64 / rate).round().max(1.0) as u64;
                Schedule::Open { interval_ns, conns: conns.max(1), arrivals, seed }
            }
        }
    }

    /// The first due time of the connection of rank `global` in a run starting
    /// at `epoch`, and the state of its generator after that draw.
    pub fn first_due(&self, epoch: u64, global: u64) -> (u64, u64) {
        match *self {
            Schedule::Closed => (epoch, 0),
            Schedule::Open { interval_ns, conns, arrivals: Arrivals::Uniform, .. } => {
                let offset = u128::from(global % conns) * u128::from(interval_ns) / u128::from(conns);
                (epoch + offset as u64, 0)
            }
            Schedule::Open { interval_ns, arrivals: Arrivals::Poisson, seed, .. } => {
                // Decorrelate the streams: the rank goes through the mixer too.
                let mut mix = seed ^ global.wrapping_mul(0xD6E8_FEB8_6659_FD93);
                let mut rng = splitmix64(&mut mix);
                (epoch + exponential_ns(&mut rng, interval_ns), rng)
            }
        }
    }

    /// The gap after a request of a connection whose generator is `rng`.
    #[inline]
    fn gap(&self, rng: &mut u64) -> u64 {
        match *self {
            Schedule::Closed => 0,
            Schedule::Open { interval_ns, arrivals: Arrivals::Uniform, .. } => interval_ns,
            Schedule::Open { interval_ns, arrivals: Arrivals::Poisson, .. } => exponential_ns(rng, interval_ns),
        }
    }

    /// The next request of a connection whose next due time is `*due` and whose
    /// generator is `*rng`; advances both when a request is handed out.
    #[inline]
    pub fn next(&self, due: &mut u64, rng: &mut u64, now: u64) -> Next {
        match *self {
            Schedule::Closed => Next::Send { scheduled: now },
            Schedule::Open { .. } => {
                if *due > now {
                    return Next::At(*due);
                }
                let scheduled = *due;
                *due += self.gap(rng);
                Next::Send { scheduled }
            }
        }
    }

    /// Open loop: how many requests of a connection whose next due time is
    /// `due` (generator `rng`) fall in `[start, end)` (the ones it never got to send).
    pub fn remaining(&self, due: u64, rng: u64, start: u64, end: u64) -> u64 {
        match *self {
            Schedule::Closed => 0,
            Schedule::Open { interval_ns, arrivals: Arrivals::Uniform, .. } => {
                let first = if due >= start { due } else { due + (start - due).div_ceil(interval_ns) * interval_ns };
                if first >= end {
                    return 0;
                }
                (end - 1 - first) / interval_ns + 1
            }
            Schedule::Open { arrivals: Arrivals::Poisson, .. } => {
                // Replay the connection's generator: as many steps as it had requests left.
                let (mut due, mut rng, mut n) = (due, rng, 0);
                while due < end {
                    n += u64::from(due >= start);
                    due += self.gap(&mut rng);
                }
                n
            }
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(rate: f64, conns: u64) -> Schedule {
        Schedule::new(Some(rate), conns, Arrivals::Uniform, DEFAULT_SEED)
    }

    #[test]
    fn closed_sends_now() {
        let (mut due, mut rng) = (0, 0);
        assert_eq!(Schedule::Closed.next(&mut due, &mut rng, 42), Next::Send { scheduled: 42 });
    }

    #[test]
    fn open_spreads_the_rate_evenly() {
        let s = uniform(1000.0, 10);
        assert_eq!(
            s,
            Schedule::Open { interval_ns: 10_000_000, conns: 10, arrivals: Arrivals::Uniform, seed: DEFAULT_SEED }
        );
        let firsts: Vec<u64> = (0..10).map(|g| s.first_due(5, g).0).collect();
        assert_eq!(firsts[0], 5);
        assert_eq!(firsts[3], 5 + 3_000_000);
        let (mut due, mut rng) = (firsts[1], 0);
        assert_eq!(s.next(&mut due, &mut rng, 0), Next::At(5 + 1_000_000));
        // Late by a lot: the schedule does not slip, every missed slot is handed out.
        let now = 5 + 1_000_000 + 35_000_000;
        let sent: Vec<Next> = (0..5).map(|_| s.next(&mut due, &mut rng, now)).collect();
        assert_eq!(sent[0], Next::Send { scheduled: 5 + 1_000_000 });
        assert_eq!(sent[3], Next::Send { scheduled: 5 + 31_000_000 });
        assert_eq!(sent[4], Next::At(5 + 41_000_000));
        // Due at 41 ms (+5 ns): 41, 51, 61 ms fall in [30 ms, 70 ms).
        assert_eq!(s.remaining(5 + 41_000_000, 0, 30_000_000, 70_000_000), 3);
        assert_eq!(s.remaining(5, 0, 30_000_005, 30_000_006), 1);
        assert_eq!(s.remaining(100, 0, 0, 100), 0);
        assert_eq!(Schedule::Closed.remaining(0, 0, 0, 100), 0);
    }

    /// The due times of `conns` connections over `[0, end)`, merged and sorted.
    fn merged(s: &Schedule, conns: u64, end: u64) -> Vec<u64> {
        let mut all = Vec::new();
        for g in 0..conns {
            let (mut due, mut rng) = s.first_due(0, g);
            while let Next::Send { scheduled } = s.next(&mut due, &mut rng, end) {
                if scheduled >= end {
                    break;
                }
                all.push(scheduled);
            }
        }
        all.sort_unstable();
        all
    }

    #[test]
    fn uniform_gaps_are_exact() {
        let s = uniform(2000.0, 4);
        let all = merged(&s, 4, SEC);
        assert_eq!(all.len(), 2000);
        assert!(all.windows(2).all(|w| w[1] - w[0] == 500_000), "every merged gap is 1 / rate");
    }

    #[test]
    fn poisson_mean_gap_and_exponential_shape() {
        let s = Schedule::new(Some(10_000.0), 10, Arrivals::Poisson, 7);
        let all = merged(&s, 10, 10 * SEC);
        // 100,000 expected; a Poisson count's sd is ~316, so 2% is over 6 sd.
        assert!((98_000..=102_000).contains(&all.len()), "{} arrivals", all.len());
        let gaps: Vec<f64> = all.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 100_000.0).abs() < 2_000.0, "mean gap {mean} ns, want 100 us");
        // Exponential: a coefficient of variation of 1, P(gap > mean) = 1/e.
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((var.sqrt() / mean - 1.0).abs() < 0.05, "cv {}", var.sqrt() / mean);
        let over = gaps.iter().filter(|&&g| g > mean).count() as f64 / gaps.len() as f64;
        assert!((over - (-1.0f64).exp()).abs() < 0.01, "share over the mean {over}");
    }

    #[test]
    fn poisson_is_reproducible_by_seed() {
        let a = Schedule::new(Some(1000.0), 3, Arrivals::Poisson, 42);
        let b = Schedule::new(Some(1000.0), 3, Arrivals::Poisson, 43);
        assert_eq!(merged(&a, 3, SEC), merged(&a, 3, SEC));
        assert_ne!(merged(&a, 3, SEC), merged(&b, 3, SEC));
        // Connections draw different streams.
        assert_ne!(a.first_due(0, 0).0, a.first_due(0, 1).0);
    }

    #[test]
    fn poisson_remaining_replays_the_generator() {
        let s = Schedule::new(Some(1000.0), 1, Arrivals::Poisson, 9);
        let (due, rng) = s.first_due(0, 0);
        let expected = merged(&s, 1, 2 * SEC).iter().filter(|&&t| t >= SEC).count() as u64;
        assert_eq!(s.remaining(due, rng, SEC, 2 * SEC), expected);
        assert!(expected > 900 && expected < 1100, "{expected}");
    }
}
