//! Fairness across connections: who was served, not only how much.
//!
//! A percentile of request latency cannot tell whether every connection is served
//! a little late or some are served much less often than others (a pool that
//! serves 64 of 1,000 connections, a thread that is not scheduled for seconds).
//! Each connection slot that carries load counts its answers in the measured
//! window and its longest gap between answers (from the window's start to its
//! first answer and from its last answer to the window's end count as gaps, so a
//! connection never answered has a gap of the whole window). The thread records
//! both into histograms and keeps the exact sums Jain's index needs, so threads
//! and processes merge exactly.
//!
//! Jain's fairness index of answers per connection, `(Σx)² / (n · Σx²)`, is 1 when
//! every connection got the same number of answers and `k / n` when `k` of `n`
//! got equal shares and the rest none.

use hdrhistogram::Histogram;

use crate::json_report::{Distribution, Fairness};

/// Jain's index of `n` values with sum `sum` and sum of squares `sum_sq`; 1 for no
/// answers at all (nothing was unequal), `None` without connections.
pub fn jain(n: u64, sum: f64, sum_sq: f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    if sum_sq <= 0.0 {
        return Some(1.0);
    }
    Some((sum * sum / (n as f64 * sum_sq)).min(1.0))
}

/// The fairness figures of a run from its per-connection histograms and sums;
/// `None` when no connection carried load in a measured window.
pub fn of(answers: &Histogram<u64>, gaps: &Histogram<u64>, sum: u64, sum_sq: f64) -> Option<Fairness> {
    let n = answers.len();
    let index = jain(n, sum as f64, sum_sq)?;
    let median = answers.value_at_quantile(0.5);
    // Values below 2,048 are exact in a 3-digit histogram; above, within 0.1%.
    let half = median / 2;
    let below_half: u64 = answers
        .iter_recorded()
        .filter(|v| answers.highest_equivalent(v.value_iterated_to()) < half)
        .map(|v| v.count_at_value())
        .sum();
    let never: u64 = answers.count_at(0);
    let gap: Distribution = crate::hist::distribution(gaps);
    Some(Fairness {
        conns: n,
        jain_index: index,
        answers_min: answers.min(),
        answers_p1: answers.value_at_quantile(0.01),
        answers_median: median,
        answers_p99: answers.value_at_quantile(0.99),
        answers_max: answers.max(),
        below_half_median: below_half,
        below_half_median_share: below_half as f64 / n as f64,
        unanswered_in_window: never,
        longest_gap: gap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::histogram;

    fn fairness(per_conn: &[u64], gaps_ns: &[u64]) -> Fairness {
        let (mut a, mut g) = (histogram(), histogram());
        for &x in per_conn {
            a.record(x).unwrap();
        }
        for &x in gaps_ns {
            g.record(x).unwrap();
        }
        let sum = per_conn.iter().sum();
        let sum_sq = per_conn.iter().map(|&x| (x as f64) * (x as f64)).sum();
        of(&a, &g, sum, sum_sq).expect("connections")
    }

    #[test]
    fn equal_shares_are_fair() {
        let f = fairness(&[100; 10], &[1_000_000; 10]);
        assert!((f.jain_index - 1.0).abs() < 1e-12);
        assert_eq!((f.answers_min, f.answers_median, f.answers_max), (100, 100, 100));
        assert_eq!((f.below_half_median, f.unanswered_in_window), (0, 0));
    }

    #[test]
    fn a_pool_serving_two_of_eight_scores_a_quarter() {
        let f = fairness(&[500, 500, 0, 0, 0, 0, 0, 0], &[10; 8]);
        assert!((f.jain_index - 0.25).abs() < 1e-12, "{}", f.jain_index);
        assert_eq!(f.unanswered_in_window, 6);
        assert_eq!(f.answers_median, 0, "most connections got nothing");
        assert_eq!(f.conns, 8);
    }

    #[test]
    fn a_few_starved_connections_show_below_half_the_median() {
        let mut v = vec![1_000u64; 97];
        v.extend([10, 20, 400]);
        let f = fairness(&v, &[5_000_000; 100]);
        assert_eq!(f.below_half_median, 3);
        assert!((f.below_half_median_share - 0.03).abs() < 1e-12);
        assert!(f.jain_index > 0.95 && f.jain_index < 1.0, "{}", f.jain_index);
        assert_eq!(f.answers_min, 10);
    }

    #[test]
    fn no_connections_no_figures() {
        assert!(of(&histogram(), &histogram(), 0, 0.0).is_none());
        assert_eq!(jain(4, 0.0, 0.0), Some(1.0));
    }
}
