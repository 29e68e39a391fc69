//! Fairness across connections: who gets served, not only how much. Read from each
//! keep-alive cell's load report (`fairness` in `c10k load --json`: answers per
//! connection over the window, each connection's longest gap between answers), per
//! server the median over repetitions. The report's section, its sentences and the
//! fairness plot read [`rows`]; a model is named as unfair when the median of its
//! Jain index over repetitions lies under [`FAIR_JAIN_MIN`].

use std::fmt::Write;

use loadgen::json_report::Fairness;

use crate::aggregate::Results;
use crate::show::{lat, n};
use crate::stats::{Interval, Side};
use crate::verdicts::thresholds::FAIR_JAIN_MIN;

/// Connections at which the section and the plot compare models: the main table's largest.
pub const FAIRNESS_CONNS: u64 = 10_000;

/// One server's fairness at one connection count.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub server: String,
    pub conns: u64,
    /// Jain's index of answers per connection, over the repetitions.
    pub jain: Interval,
    /// Answers per connection: min, p1, median, p99, max (medians over repetitions).
    pub answers: [f64; 5],
    /// Connections under half the median connection's answers, and their share.
    pub below_half: f64,
    pub below_half_share: f64,
    /// Connections with no answer in the window.
    pub unanswered: f64,
    /// Longest gap between answers: the median connection's and the worst, microseconds.
    pub gap_p50_us: f64,
    pub gap_max_us: f64,
    pub p99_us: Option<f64>,
    pub rps: Option<f64>,
    /// Connections the server accepted (its own counter): above `conns` when the client
    /// gave up on connections and opened new ones.
    pub accepted: Option<f64>,
    /// The client's per-request timeout, seconds.
    pub timeout_s: f64,
}

impl Row {
    /// The median repetition's index under [`FAIR_JAIN_MIN`]. The section describes, it
    /// rules on no claim; where some repetitions were above, the sentence says so.
    pub fn unfair(&self) -> bool {
        self.jain.median < FAIR_JAIN_MIN
    }

    /// Some repetition's index reached [`FAIR_JAIN_MIN`] although the median's did not.
    fn wavers(&self) -> bool {
        self.unfair() && self.jain.against(FAIR_JAIN_MIN) == Side::Straddles
    }
}

/// Every keep-alive server measured at `conns` with fairness figures, in the report's order.
pub fn rows(r: &Results, conns: u64) -> Vec<Row> {
    let mut out = Vec::new();
    for server in crate::report_tables::ordered_servers(r, "http-keepalive") {
        let Some(g) = r.find("http-keepalive", &server, conns).filter(|g| g.ok > 0) else { continue };
        let recs = r.records_of(&g.group);
        let reps: Vec<(Fairness, f64)> = recs
            .iter()
            .filter(|rec| rec.valid().is_some())
            .filter_map(|rec| {
                let f = rec.load_raw.as_ref()?.get("fairness")?.clone();
                Some((serde_json::from_value::<Fairness>(f).ok()?, rec.cell.timeout_s))
            })
            .filter(|(f, _)| f.conns > 0)
            .collect();
        let Some(jain) = Interval::of(&reps.iter().map(|(f, _)| f.jain_index).collect::<Vec<_>>()) else { continue };
        let m = |get: &dyn Fn(&Fairness) -> f64| {
            crate::stats::median(reps.iter().map(|(f, _)| get(f)).collect()).unwrap_or(f64::NAN)
        };
        out.push(Row {
            server: server.clone(),
            conns,
            jain,
            answers: [
                m(&|f| f.answers_min as f64),
                m(&|f| f.answers_p1 as f64),
                m(&|f| f.answers_median as f64),
                m(&|f| f.answers_p99 as f64),
                m(&|f| f.answers_max as f64),
            ],
            below_half: m(&|f| f.below_half_median as f64),
            below_half_share: m(&|f| f.below_half_median_share),
            unanswered: m(&|f| f.unanswered_in_window as f64),
            gap_p50_us: m(&|f| f.longest_gap.p50_us),
            gap_max_us: m(&|f| f.longest_gap.max_us),
            p99_us: g.p99_us,
            rps: g.rps,
            accepted: g.accepted,
            timeout_s: reps[0].1,
        });
    }
    out
}

/// The section: a table at [`FAIRNESS_CONNS`] and a sentence per unfair model. Empty
/// when no cell at that count carries fairness figures (reports older than them).
pub fn section(r: &Results) -> String {
    let rows = rows(r, FAIRNESS_CONNS);
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n### Fairness across connections, {} keep-alive connections\n\nFrom the load generator's count of answers \
         per connection over the measured window and each connection's longest gap between answers (the window's \
         edges count as answers, so a connection never answered has a gap as long as the window). Jain's index is \
         1 when every connection got the same number of answers and k/n when k of n got all of them; a model is named \
         below when the median of its index over repetitions lies under {FAIR_JAIN_MIN}. Medians over repetitions; the same load generator \
         serves every row.\n",
        n(FAIRNESS_CONNS as f64)
    );
    let _ = writeln!(
        s,
        "| server | Jain index | answers per connection, min / p1 / median / p99 / max | under half the median | \
         no answer in the window | longest gap, median connection / worst | p99 latency |\n|---|---|---|---|---|---|---|"
    );
    for row in &rows {
        let a = row.answers;
        let _ = writeln!(
            s,
            "| {} | {} | {} / {} / {} / {} / {} | {} ({:.1}%) | {} | {} / {} | {} |",
            row.server,
            row.jain.show(|v| format!("{v:.3}")),
            n(a[0]),
            n(a[1]),
            n(a[2]),
            n(a[3]),
            n(a[4]),
            n(row.below_half),
            row.below_half_share * 100.0,
            n(row.unanswered),
            lat(row.gap_p50_us),
            lat(row.gap_max_us),
            row.p99_us.map(lat).unwrap_or_else(|| "not measured".into()),
        );
    }
    // The sentences cover the main table's other large count too: a model can be fair at
    // one and not the other (thread-per-connection at 1,000).
    let mut first = true;
    for conns in SENTENCE_CONNS {
        let rows = if conns == FAIRNESS_CONNS { rows.clone() } else { self::rows(r, conns) };
        let fair: Vec<&Row> = rows.iter().filter(|r| !r.unfair()).collect();
        for row in rows.iter().filter(|r| r.unfair()) {
            if first {
                let _ = writeln!(s, "\nWhere the index is low, and why (from the same cells):\n");
                first = false;
            }
            let mut line = sentence(row, &fair);
            for v in rows.iter().filter(|v| !v.unfair() && same_model(v, row)) {
                line.push(' ');
                line.push_str(&setting_sentence(row, v));
            }
            let _ = writeln!(s, "- {line}");
        }
    }
    s
}

/// The model behind a server key, and the arguments that make the key a variant.
fn spec(key: &str) -> Option<crate::matrix::ServerSpec> {
    crate::matrix::ServerSpec::named(key, 1)
}

fn same_model(a: &Row, b: &Row) -> bool {
    a.server != b.server && matches!((spec(&a.server), spec(&b.server)), (Some(x), Some(y)) if x.model == y.model)
}

/// What one setting changes: the same model with `variant`'s arguments, in the same run.
fn setting_sentence(row: &Row, variant: &Row) -> String {
    let args = spec(&variant.server).map(|s| s.args.join(" ")).unwrap_or_default();
    let rps = |r: &Row| r.rps.map(n).unwrap_or_else(|| "not measured".into());
    let why = crate::matrix::setting_note(&variant.server).map(|w| format!("; {w}")).unwrap_or_default();
    format!(
        "With `{args}` ({}{why}), in the same run: Jain index {}, the median connection's longest gap {}, p99 {}, at \
         {} req/s against {}: the spread is that setting's doing, not the load generator's.",
        variant.server,
        variant.jain.show(|v| format!("{v:.3}")),
        lat(variant.gap_p50_us),
        variant.p99_us.map(lat).unwrap_or_else(|| "not measured".into()),
        rps(variant),
        rps(row)
    )
}

/// Connection counts whose unfair models get a sentence.
pub const SENTENCE_CONNS: [u64; 2] = [1_000, FAIRNESS_CONNS];

/// Why a model's index is low, from its own figures: connections never answered (and the
/// reconnects the server counted for them), or connections served rarely while others
/// were served often, beside the fairest model's longest gap.
fn sentence(row: &Row, fair: &[&Row]) -> String {
    let a = row.answers;
    let mut s = format!(
        "**{}** at {} connections: Jain index {}",
        row.server,
        n(row.conns as f64),
        row.jain.show(|v| format!("{v:.3}"))
    );
    if row.wavers() {
        let _ = write!(s, " (some repetitions reached {FAIR_JAIN_MIN}: the unfairness varies from run to run)");
    }
    if a[2] == 0.0 {
        let _ = write!(
            s,
            "; the median connection got no answer in the window: {} of {} connections went unanswered while the \
             busiest got {} answers, so its throughput and latency are those of the few connections it serves",
            n(row.unanswered),
            n(row.conns as f64),
            n(a[4])
        );
    } else if row.unanswered > 0.0 {
        let _ = write!(s, "; {} connections got no answer in the window", n(row.unanswered));
        if let Some(acc) = row.accepted.filter(|acc| *acc > row.conns as f64) {
            let _ = write!(
                s,
                ", and the server accepted {} connections for {}: the {} more are the client's new connections after \
                 waiting out its {} s timeout, connections whose answer did not come",
                n(acc),
                n(row.conns as f64),
                n(acc - row.conns as f64),
                row.timeout_s
            );
        }
    } else {
        let _ = write!(
            s,
            "; every connection was answered, but unevenly: {} to {} answers per connection against a median of {} \
             ({} connections, {:.1}%, got under half the median)",
            n(a[0]),
            n(a[4]),
            n(a[2]),
            n(row.below_half),
            row.below_half_share * 100.0
        );
    }
    if let Some(best) = fair.iter().min_by(|x, y| x.gap_p50_us.total_cmp(&y.gap_p50_us)) {
        let _ = write!(
            s,
            ". The median connection's longest gap between answers was {} against {} for {} (Jain {})",
            lat(row.gap_p50_us),
            lat(best.gap_p50_us),
            best.server,
            best.jain.show(|v| format!("{v:.3}"))
        );
        if let (Some(mine), Some(theirs)) = (row.p99_us, best.p99_us) {
            let _ = write!(s, "; p99 latency {} against {}", lat(mine), lat(theirs));
        }
    }
    s.push('.');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, jain: &[f64], answers: [f64; 5], unanswered: f64, accepted: Option<f64>) -> Row {
        Row {
            server: server.into(),
            conns: 1_000,
            jain: Interval::of(jain).expect("values"),
            answers,
            below_half: 12.0,
            below_half_share: 0.012,
            unanswered,
            gap_p50_us: 200_000.0,
            gap_max_us: 1_500_000.0,
            p99_us: Some(30_000.0),
            rps: Some(90_000.0),
            accepted,
            timeout_s: 2.0,
        }
    }

    #[test]
    fn unfair_when_the_median_is_below_and_wavering_is_said() {
        let low = row("a", &[0.5, 0.6, 0.7, 0.8, 0.85], [0.0; 5], 0.0, None);
        assert!(low.unfair() && !low.wavers());
        let varies = row("b", &[0.42, 0.6, 0.78, 0.85, 0.92], [2.0, 3.0, 12.0, 39.0, 57.0], 0.0, None);
        assert!(varies.unfair() && varies.wavers());
        assert!(
            sentence(&varies, &[]).contains("(some repetitions reached 0.9: the unfairness varies from run to run)")
        );
        assert!(!row("c", &[0.8, 0.88, 0.95, 0.99, 0.999], [0.0; 5], 0.0, None).unfair());
        assert!(row("d", &[0.4], [0.0; 5], 0.0, None).unfair());
    }

    #[test]
    fn sentences_name_the_mechanism_the_figures_show() {
        let fair = row("reactor", &[0.999; 5], [12.0, 12.0, 13.0, 13.0, 14.0], 0.0, None);
        // Unanswered connections with reconnects counted by the server.
        let thread = row("thread", &[0.6, 0.7, 0.72, 0.8, 0.81], [0.0, 0.0, 117.0, 138.0, 160.0], 237.0, Some(1_237.0));
        let s = sentence(&thread, &[&fair]);
        assert!(s.contains("237 connections got no answer"), "{s}");
        assert!(s.contains("accepted 1,237 connections for 1,000: the 237 more"), "{s}");
        assert!(s.contains("against 200.0 ms for reactor"), "{s}");
        // Everyone answered, unevenly.
        let tokio = row("tokio", &[0.79, 0.81, 0.85, 0.86, 0.89], [3.0, 4.0, 12.0, 35.0, 41.0], 0.0, None);
        let s = sentence(&tokio, &[&fair]);
        assert!(s.contains("every connection was answered, but unevenly: 3 to 41 answers"), "{s}");
        // Most connections never served.
        let pool = row("pool", &[0.006], [0.0, 0.0, 0.0, 0.0, 144.0], 936.0, None);
        let s = sentence(&pool, &[]);
        assert!(s.contains("936 of 1,000 connections went unanswered"), "{s}");
        assert!(s.ends_with('.'));
    }

    #[test]
    fn a_fair_setting_of_the_same_model_is_named_beside_it() {
        let tokio = row("tokio", &[0.5, 0.6, 0.6, 0.7, 0.77], [2.0, 3.0, 13.0, 55.0, 113.0], 0.0, None);
        let fifo = row("tokio-gq1", &[0.998, 0.999, 0.999], [12.0, 12.0, 13.0, 14.0, 15.0], 0.0, None);
        assert!(same_model(&tokio, &fifo));
        assert!(!same_model(&tokio, &row("reactor", &[0.999], [0.0; 5], 0.0, None)));
        let s = setting_sentence(&tokio, &fifo);
        assert!(
            s.starts_with("With `--global-queue-interval 1` (tokio-gq1; the global queue interval is")
                && s.contains("), in the same run: Jain index 0.999"),
            "{s}"
        );
    }

    #[test]
    fn no_fairness_figures_no_section() {
        assert_eq!(section(&Results::default()), "");
    }
}
