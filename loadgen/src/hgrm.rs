//! `--hgrm FILE`: the percentile distribution text HdrHistogram's tools print
//! (`outputPercentileDistribution`, 5 ticks per half distance, milliseconds),
//! readable by the usual plotters (HistogramLogAnalyzer, the web plotter, wrk2
//! tooling).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Nanoseconds per millisecond: the output unit.
const SCALE: f64 = 1_000_000.0;

/// The percentile distribution of `h` (values in ns), in milliseconds.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let sub_buckets = 2u64.pow((2.0 * 10f64.powi(i32::from(h.sigfig()))).log2().ceil() as u32);
    let _ = writeln!(out, "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]", h.mean() / SCALE, h.stdev() / SCALE);
    let _ = writeln!(out, "#[Max     = {:12.3}, Total count    = {:12}]", h.max() as f64 / SCALE, h.len());
    let _ = writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_buckets);
    out
}

/// Where the uncorrected distribution goes next to `--hgrm FILE`:
/// `FILE` without `.hgrm`, plus `.uncorrected.hgrm`.
pub fn uncorrected_path(path: &std::path::Path) -> std::path::PathBuf {
    let text = path.to_string_lossy();
    let stem = text.strip_suffix(".hgrm").unwrap_or(&text);
    std::path::PathBuf::from(format!("{stem}.uncorrected.hgrm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_like_hdrhistogram_output() {
        let mut h = crate::hist::histogram();
        for v in 1..=1000u64 {
            h.record(v * 1_000_000).unwrap();
        }
        let text = percentile_distribution(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].trim_start().starts_with("Value"));
        assert!(lines[1].is_empty());
        assert!(lines[2].trim_start().starts_with("1.000 0.000000000000"), "{}", lines[2]);
        let last_data = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(last_data.contains("1.000000000000"), "{last_data}");
        assert!(text.contains("#[Max     =     1000.",), "{text}");
        assert!(text.contains("SubBuckets     =         2048"));
        assert_eq!(
            uncorrected_path(std::path::Path::new("a/b.hgrm")),
            std::path::PathBuf::from("a/b.uncorrected.hgrm")
        );
    }
}
