//! One monotonic clock for everything: nanoseconds of `CLOCK_MONOTONIC`.
//!
//! The value is system-wide, so the processes of a `--procs` run agree on it:
//! the parent hands its children one epoch and they all start the measured
//! window at the same instant.

use nix::time::{clock_gettime, ClockId};

/// Nanoseconds per second.
pub const SEC: u64 = 1_000_000_000;
/// Nanoseconds per millisecond.
pub const MS: u64 = 1_000_000;

/// Now, in nanoseconds of `CLOCK_MONOTONIC` (a vDSO call, ~20 ns).
#[inline]
pub fn now_ns() -> u64 {
    // CLOCK_MONOTONIC exists on every Linux this runs on; failing is not possible
    // short of a broken libc, so a panic with the reason is the honest answer.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    ts.tv_sec() as u64 * SEC + ts.tv_nsec() as u64
}

/// Nanoseconds to seconds.
pub fn secs(ns: u64) -> f64 {
    ns as f64 / SEC as f64
}

/// A `Duration` in nanoseconds, saturating.
pub fn ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Unix time minus `CLOCK_MONOTONIC`, in nanoseconds, sampled now: add it to a
/// monotonic instant to get wall-clock time (`--start-at`, interval logs).
pub fn unix_minus_monotonic_ns() -> i128 {
    let before = now_ns();
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
    let after = now_ns();
    unix - i128::from(before / 2 + after / 2)
}
