//! Every threshold a verdict decides on, once. The checks compare against these
//! constants and the sentences that state them format the same constants, so
//! changing a number here changes both the verdict and the report's words.
//! The documents' own figures (what is claimed) are in [`super::figures`].

/// T1: a row ranks above another when the pair ratio of their requests per server
/// CPU-second lies wholly above this (1.0: any separated difference).
pub const T1_ORDER: f64 = 1.0;
/// T1: two rows are equal, and the documents' ordering between them does not hold,
/// when the interval of their pair ratios lies wholly within this factor either
/// way (the documents' rows differ by 1.33x at the least).
pub const T1_EQUAL: f64 = 1.05;

/// T2, T3: a row "~X" holds as a floor when the model served at least this share of X.
pub const FLOOR_SHARE: f64 = 0.95;
/// T2, T3: a row "~X" holds as a ceiling when the model failed to serve
/// `CEILING_FACTOR x X` (where the ladder reaches that far).
pub const CEILING_FACTOR: f64 = 10.0;

/// T4, C12: O(n) is read as the cost per request growing by at least this factor
/// from the fewest to the most idle connections.
pub const GROWS_MIN: f64 = 1.5;
/// T4, C12: O(1) is read as growing by at most this factor.
pub const FLAT_MAX: f64 = 1.25;

/// C1: collapse is failing to serve this share of 10,000 connections.
pub const C1_COLLAPSE_SHARE: f64 = 0.95;

/// C2: the measured total counts as matching the documents' within this factor either way.
pub const C2_FACTOR: f64 = 2.0;

/// C3: a blocking reactor is serial when its throughput is at most this factor
/// above one handler at a time.
pub const C3_SERIAL_SLACK: f64 = 1.2;
/// C3: the models that run handlers on threads overlap them when their best
/// throughput is at least this many times the reactor's.
pub const C3_OVERLAP_MIN: f64 = 3.0;
/// C3, CPU-bound: the reactor is the bottleneck when its p99 is at least this
/// factor above the threaded models' best.
pub const C3_CPU_P99_FACTOR: f64 = 1.25;

/// C4: the single reactor is worse when its failed connects exceed the
/// multi-reactor's by more than this share of the connections...
pub const C4_FAIL_SHARE: f64 = 0.01;
/// ...or its connect p99 is more than this factor above the multi-reactor's.
pub const C4_P99_FACTOR: f64 = 2.0;

/// C6: the multi-reactor wins when reactor-pool costs at least this factor more
/// server CPU per request (pair ratio).
pub const C6_MIN_GAIN: f64 = 1.05;

/// C7: a time within this band around the documents' counts as matching.
pub const C7_LOW: f64 = 0.9;
pub const C7_HIGH: f64 = 1.25;

/// C9: "much faster" is at least this ratio of keep-alive to a connection per request.
pub const C9_MUCH: f64 = 2.0;

/// C10: a herd is at least this factor of SO_REUSEPORT's context switches per connection.
pub const C10_HERD: f64 = 1.5;
/// C10: blocking accept "wakes one" when within this factor of SO_REUSEPORT's.
pub const C10_ONE: f64 = 1.25;

/// C11: "very good" is requests per server CPU-second at least this share of the
/// most efficient model that served every connection.
pub const C11_SHARE: f64 = 0.8;
/// C11's fixed-rate experiment: a model sustained the offered rate when it completed at
/// least this share of it (the rest of the models are left out of the comparison).
pub const FIXED_RATE_SUSTAINED: f64 = 0.98;

/// C14: a scheme does worse than thread per connection when its server CPU per request
/// is above this factor of thread's, pair by pair (1.0: any separated difference).
pub const C14_WORSE: f64 = 1.0;

/// Beyond the documents, heartbeat: seconds of scheduling allowed on top of the idle
/// timeout plus one tick (a tenth of it), as `tests/timeouts.rs` allows.
pub const HEARTBEAT_CLOSE_SLACK_S: f64 = 0.3;

/// C13: sendfile "lowers CPU" when it costs at most this factor of read+write's CPU per GiB.
pub const C13_MAX: f64 = 0.8;

/// Fairness section: a model is named as unfair when the median of Jain's index of
/// answers per connection over repetitions is under this (0.9: as if a tenth of the
/// connections got nothing).
pub const FAIR_JAIN_MIN: f64 = 0.9;

/// `0.05` -> `"5%"`, `1.25` -> `"25%"` above 1: a factor as the percentage a sentence uses.
pub fn pct_over(factor: f64) -> String {
    format!("{:.0}%", (factor - 1.0).abs() * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(pct_over(C6_MIN_GAIN), "5%");
        assert_eq!(pct_over(C7_HIGH), "25%");
        assert_eq!(pct_over(C7_LOW), "10%");
    }
}
