//! Intervals for the median of repetitions, and how a verdict reads them.
//!
//! Every figure a verdict, a ranking or the main table compares is the median of
//! its repetitions with a distribution-free confidence interval: the
//! order-statistic interval `[x(k), x(n-k+1)]` of the sorted repetitions, whose
//! coverage is exact for any continuous distribution (it is the probability that a
//! Binomial(n, 1/2) lies in `k..=n-k`). With the bench's 5 repetitions the widest
//! such interval, min-max, covers the median with probability 1 - 2/32 = 93.8%;
//! 6 give 96.9%. The coverage is carried with the interval and printed, never
//! rounded up to 95%.
//!
//! Comparisons of two servers use pairs: repetition k of A and repetition k of B
//! ran back to back in the same round, so the ratio A_k / B_k cancels the drift
//! between rounds; the interval is that of the median ratio.

/// The confidence the bench aims for. An interval reaches it from 6 repetitions.
pub const CONFIDENCE: f64 = 0.95;

/// Repetitions of every cell that a verdict or the main table compares.
pub const MIN_REPS: usize = 5;

/// A median with its order-statistic confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub median: f64,
    pub hi: f64,
    /// Repetitions it was computed from.
    pub n: usize,
    /// Probability that `lo..=hi` holds the true median (0 with one repetition).
    pub coverage: f64,
}

/// P(k <= B <= n - k) for B ~ Binomial(n, 1/2).
fn coverage(n: usize, k: usize) -> f64 {
    if 2 * k > n {
        return 0.0;
    }
    let total = 2f64.powi(n as i32);
    let mut c = 1.0f64; // C(n, 0)
    let mut tail = 0.0;
    for i in 0..k {
        tail += c;
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    1.0 - 2.0 * tail / total
}

impl Interval {
    /// The median of `values` (non-finite ones dropped) with the narrowest
    /// order-statistic interval that reaches [`CONFIDENCE`], or min-max when none does.
    pub fn of(values: &[f64]) -> Option<Interval> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        // The largest k (narrowest interval) whose coverage still reaches the target.
        let mut k = 1;
        while coverage(n, k + 1) >= CONFIDENCE {
            k += 1;
        }
        let cov = if n >= 2 { coverage(n, k) } else { 0.0 };
        Some(Interval { lo: v[k - 1], median, hi: v[n - k], n, coverage: cov })
    }

    /// The interval of the median ratio `a_k / b_k` over pairs run back to back.
    pub fn of_ratios(pairs: &[(f64, f64)]) -> Option<Interval> {
        let ratios: Vec<f64> = pairs.iter().filter(|(_, b)| *b != 0.0).map(|(a, b)| a / b).collect();
        Interval::of(&ratios)
    }

    /// A single figure with no interval (one repetition, or a fit).
    pub fn point(x: f64) -> Interval {
        Interval { lo: x, median: x, hi: x, n: 1, coverage: 0.0 }
    }

    /// Where the interval lies against a threshold.
    pub fn against(&self, threshold: f64) -> Side {
        if self.n < 2 {
            Side::Unknown
        } else if self.lo > threshold {
            Side::Above
        } else if self.hi < threshold {
            Side::Below
        } else {
            Side::Straddles
        }
    }

    /// True when the two intervals do not overlap.
    pub fn separated(&self, other: &Interval) -> bool {
        self.n >= 2 && other.n >= 2 && (self.lo > other.hi || other.lo > self.hi)
    }

    /// `61,528 (60,629-64,888, n=5)` with `fmt` for each number.
    pub fn show(&self, fmt: impl Fn(f64) -> String) -> String {
        if self.n < 2 {
            format!("{} (n=1)", fmt(self.median))
        } else {
            format!("{} ({}-{}, n={})", fmt(self.median), fmt(self.lo), fmt(self.hi), self.n)
        }
    }
}

/// An interval's place relative to a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The whole interval is above.
    Above,
    /// The whole interval is below.
    Below,
    /// The threshold lies inside: the data cannot decide.
    Straddles,
    /// One repetition: no interval.
    Unknown,
}

/// `0.9375` -> `93.8%`.
pub fn percent(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

/// A cost measured at two sizes (fewest and most idle descriptors, say), and how
/// it grows between them, pair by pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    pub from: u64,
    pub to: u64,
    pub at_from: Interval,
    pub at_to: Interval,
    /// Pair ratios cost(to) / cost(from), repetition by repetition (or round by round).
    pub ratio: Interval,
}

/// The median of the finite values; `None` when there are none.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Least-squares slope of `y` over `x`; `None` with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_the_binomial_one() {
        assert!((coverage(5, 1) - 0.9375).abs() < 1e-12);
        assert!((coverage(6, 1) - 0.96875).abs() < 1e-12);
        // n = 10: k = 2 covers 1 - 2 * (1 + 10) / 1024.
        assert!((coverage(10, 2) - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        assert_eq!(coverage(3, 2), 0.0);
    }

    #[test]
    fn intervals_of_repetitions() {
        let i = Interval::of(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap_or(Interval::point(0.0));
        assert_eq!((i.lo, i.median, i.hi, i.n), (1.0, 3.0, 5.0, 5));
        // 10 values: k = 2 is the narrowest interval reaching 95%.
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let i = Interval::of(&v).unwrap_or(Interval::point(0.0));
        assert_eq!((i.lo, i.hi), (2.0, 9.0));
        assert!(i.coverage >= CONFIDENCE);
        assert!(Interval::of(&[]).is_none());
        assert!(Interval::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn sides_and_separation() {
        let i = Interval::of(&[1.4, 1.45, 1.5, 1.55, 1.6]).unwrap_or(Interval::point(0.0));
        assert_eq!(i.against(1.5), Side::Straddles);
        assert_eq!(i.against(1.3), Side::Above);
        assert_eq!(i.against(1.7), Side::Below);
        assert_eq!(Interval::point(2.0).against(1.0), Side::Unknown);
        let j = Interval::of(&[1.7, 1.8, 1.9]).unwrap_or(Interval::point(0.0));
        assert!(i.separated(&j));
        assert!(!i.separated(&i));
        let r = Interval::of_ratios(&[(2.0, 1.0), (4.0, 2.0), (3.0, 1.0)]).unwrap_or(Interval::point(0.0));
        assert_eq!(r.median, 2.0);
    }

    #[test]
    fn medians_and_slopes() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        let s = slope(&[(1000.0, 1e6 + 8e6), (5000.0, 1e6 + 40e6), (10_000.0, 1e6 + 80e6)]).unwrap_or(0.0);
        assert!((s - 8000.0).abs() < 1e-6);
        assert_eq!(slope(&[(1.0, 2.0)]), None);
        assert_eq!(slope(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }
}
