//! One latency histogram, defined once: its bounds, its summary for the report,
//! and its text form (HdrHistogram V2 serialization in hex) that the report, the
//! `--procs` children and the shards of several hosts exchange. Decoding and
//! adding gives back exactly the histograms that were encoded.

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::clock::SEC;
use crate::error::LoadError;
use crate::json_report::{Distribution, PercentilePoint};

/// Highest latency a histogram holds (larger values are clamped): one hour.
pub const HIGHEST_NS: u64 = 3_600 * SEC;

/// A latency histogram in nanoseconds, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: creation cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds")
}

/// Nanoseconds as microseconds.
pub fn us(ns: u64) -> f64 {
    ns as f64 / 1_000.0
}

/// The summary figures and the full percentile list of a histogram in ns.
pub fn distribution(h: &Histogram<u64>) -> Distribution {
    if h.is_empty() {
        return Distribution::default();
    }
    let q = |q: f64| us(h.value_at_quantile(q));
    let mut total = 0;
    let percentiles = h
        .iter_quantiles(5)
        .map(|v| {
            total += v.count_since_last_iteration();
            PercentilePoint {
                percentile: v.quantile_iterated_to() * 100.0,
                value_us: us(h.highest_equivalent(v.value_iterated_to())),
                count: total,
            }
        })
        .collect();
    Distribution {
        count: h.len(),
        min_us: us(h.min()),
        mean_us: h.mean() / 1_000.0,
        stdev_us: h.stdev() / 1_000.0,
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
        p999_us: q(0.999),
        p9999_us: q(0.9999),
        max_us: us(h.highest_equivalent(h.max())),
        percentiles,
    }
}

/// V2-serialize and hex-encode a histogram.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for an in-range histogram (the only
    // errors are I/O errors of the writer and counts that overflow i64).
    if V2Serializer::new().serialize(h, &mut bytes).is_err() {
        return String::new();
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

/// Decode what [`encode`] wrote.
pub fn decode(text: &str) -> Result<Histogram<u64>, LoadError> {
    let bad = |why: String| LoadError::Histogram(why);
    if text.len() % 2 != 0 {
        return Err(bad("odd number of hex digits".into()));
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| bad(format!("{e:?}")))
}
