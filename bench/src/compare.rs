//! `c10k compare OLD NEW`: what changed between two results folders, cell by cell and
//! verdict by verdict.
//!
//! A cell's figure changed only where the two intervals of its median (see [`crate::stats`])
//! do not overlap, as criterion reads a change: *improved* or *regressed* by the figure's
//! direction (more requests per second is better; a lower p99 or server CPU per request is
//! better), *no change* where they overlap, and *not comparable* where either side has a
//! single repetition (no interval) or lacks the figure. Verdicts are recomputed from each
//! folder with this binary's thresholds, so a change of status is a change of the data.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::aggregate::{Figure, Group, Results};
use crate::claims::{Joined, CLAIMS};
use crate::error::{BenchError, Result};
use crate::show::{lat, n};
use crate::stats::Interval;

/// The figures compared cell by cell, with the direction that counts as better.
pub const FIGURES: [(Figure, &str, Better); 3] = [
    (Figure::Rps, "req/s", Better::Higher),
    (Figure::P99, "p99", Better::Lower),
    (Figure::CpuPerReq, "server CPU/req", Better::Lower),
];

/// Which way a figure improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Better {
    Higher,
    Lower,
}

/// The reading of one figure of one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Improved,
    Regressed,
    NoChange,
    /// One side has one repetition (no interval) or lacks the figure.
    NotComparable,
}

impl Change {
    pub fn label(self) -> &'static str {
        match self {
            Change::Improved => "improved",
            Change::Regressed => "regressed",
            Change::NoChange => "no change",
            Change::NotComparable => "not comparable",
        }
    }
}

/// Read two intervals of a figure.
pub fn change(old: Option<&Interval>, new: Option<&Interval>, better: Better) -> Change {
    let (Some(o), Some(nw)) = (old, new) else { return Change::NotComparable };
    if o.n < 2 || nw.n < 2 {
        Change::NotComparable
    } else if !o.separated(nw) {
        Change::NoChange
    } else if (nw.median > o.median) == (better == Better::Higher) {
        Change::Improved
    } else {
        Change::Regressed
    }
}

/// One figure of one group in both folders.
#[derive(Clone, Debug, Serialize)]
pub struct CellChange {
    pub group: String,
    pub figure: &'static str,
    pub old: Option<Span>,
    pub new: Option<Span>,
    /// `new / old` of the medians.
    pub ratio: Option<f64>,
    pub change: Change,
}

/// An interval, serialisable.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Span {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl From<Interval> for Span {
    fn from(i: Interval) -> Span {
        Span { median: i.median, lo: i.lo, hi: i.hi, n: i.n }
    }
}

/// One claim's status in both folders.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictChange {
    pub id: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub changed: bool,
}

/// Everything `compare` found.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub old: String,
    pub new: String,
    pub verdicts: Vec<VerdictChange>,
    pub cells: Vec<CellChange>,
    /// Groups present in only one folder.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

impl Comparison {
    pub fn verdicts_changed(&self) -> usize {
        self.verdicts.iter().filter(|v| v.changed).count()
    }

    /// How many cells of `figure` read `change`.
    pub fn count(&self, figure: &str, change: Change) -> usize {
        self.cells.iter().filter(|c| c.figure == figure && c.change == change).count()
    }
}

/// Load a folder for comparison: a folder without cells, or one whose run was interrupted
/// or has fewer cell files than it planned, is an error (a partial run would read as
/// regressions).
pub fn load_complete(dir: &Path) -> Result<Results> {
    if !dir.is_dir() {
        return Err(BenchError::Args(format!("{} is not a results folder", dir.display())));
    }
    let r = Results::load(dir)?;
    let partial = |why: String| BenchError::Partial(dir.into(), why);
    let env = r.env.as_ref().ok_or_else(|| partial("no env.json".into()))?;
    if env.interrupted {
        return Err(partial("the run was interrupted".into()));
    }
    if env.finished_unix_ms.is_none() {
        return Err(partial("the run has not finished (no finish time in env.json)".into()));
    }
    if r.records.len() < env.planned_cells {
        return Err(partial(format!("{} of {} planned cells", r.records.len(), env.planned_cells)));
    }
    Ok(r)
}

/// Compare two loaded folders.
pub fn compare(old: &Results, new: &Results, old_name: &str, new_name: &str) -> Comparison {
    let verdicts = crate::claims::verdicts(old)
        .into_iter()
        .zip(crate::claims::verdicts(new))
        .map(|(o, nw)| VerdictChange {
            id: o.id,
            old: o.status.label(),
            new: nw.status.label(),
            changed: o.status != nw.status,
        })
        .collect();
    let find = |r: &Results, g: &str| r.groups.iter().find(|x| x.group == g).cloned();
    let mut cells = Vec::new();
    for og in &old.groups {
        let Some(ng) = find(new, &og.group) else { continue };
        for (fig, name, better) in FIGURES {
            let (oi, ni) = (old.interval(og, fig), new.interval(&ng, fig));
            if oi.is_none() && ni.is_none() {
                continue;
            }
            cells.push(CellChange {
                group: og.group.clone(),
                figure: name,
                ratio: oi.zip(ni).filter(|(o, _)| o.median != 0.0).map(|(o, nw)| nw.median / o.median),
                change: change(oi.as_ref(), ni.as_ref(), better),
                old: oi.map(Span::from),
                new: ni.map(Span::from),
            });
        }
    }
    let missing = |a: &Results, b: &Results| -> Vec<String> {
        a.groups.iter().filter(|g| find(b, &g.group).is_none()).map(|g: &Group| g.group.clone()).collect()
    };
    Comparison {
        old: old_name.into(),
        new: new_name.into(),
        verdicts,
        cells,
        only_old: missing(old, new),
        only_new: missing(new, old),
    }
}

fn show(figure: &str, s: Option<Span>) -> String {
    let Some(s) = s else { return "not measured".into() };
    let f = |x: f64| match figure {
        "p99" => lat(x),
        "server CPU/req" => format!("{x:.2} us"),
        _ => n(x),
    };
    Interval { lo: s.lo, median: s.median, hi: s.hi, n: s.n, coverage: 0.0 }.show(f)
}

/// Which verdicts REPORT.md can read differently, from the claims that read a joined
/// folder too: "REPORT.md can differ on T3 and T5, read also from a C1M folder, and C11, ...".
fn joined_note() -> String {
    /// "a", "a and b", "a, b and c" (`last` before the final item).
    fn listed(items: &[String], last: &str) -> Option<String> {
        let (tail, head) = items.split_last()?;
        Some(if head.is_empty() { tail.clone() } else { format!("{}{last}{tail}", head.join(", ")) })
    }
    let parts: Vec<String> = [Joined::C1m, Joined::Beyond]
        .into_iter()
        .filter_map(|kind| {
            let ids: Vec<String> = CLAIMS.iter().filter(|c| c.joined == Some(kind)).map(|c| c.id.to_string()).collect();
            Some(format!("{}, read also from {}", listed(&ids, " and ")?, kind.folder()))
        })
        .collect();
    match listed(&parts, ", and ") {
        Some(list) => format!("REPORT.md can differ on {list}"),
        None => "no claim reads a joined folder".into(),
    }
}

/// The text `compare` prints: verdicts, then the cells that changed (every cell with `all`),
/// then a count per figure.
pub fn render(c: &Comparison, all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "c10k compare {} -> {}", c.old, c.new);
    let _ = writeln!(out, "\nVerdicts: {} of {} changed", c.verdicts_changed(), c.verdicts.len());
    let _ = writeln!(out, "  (each folder read alone; {})", joined_note());
    for v in &c.verdicts {
        let mark = if v.changed { "CHANGED" } else { "same" };
        let _ = writeln!(out, "  {:<4} {:<18} -> {:<18} {mark}", v.id, v.old, v.new);
    }
    let shown: Vec<&CellChange> =
        c.cells.iter().filter(|x| all || matches!(x.change, Change::Improved | Change::Regressed)).collect();
    let _ = writeln!(
        out,
        "\nCells{} (a change counts where the intervals do not overlap):",
        if all { "" } else { " that changed" }
    );
    if shown.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for x in shown {
        let ratio = x.ratio.map(|r| format!("{:+.1}%", (r - 1.0) * 100.0)).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<44} {:<15} {} -> {}  {ratio}  {}",
            x.group,
            x.figure,
            show(x.figure, x.old),
            show(x.figure, x.new),
            x.change.label()
        );
    }
    let _ = writeln!(out, "\nSummary:");
    for (_, name, _) in FIGURES {
        let _ = writeln!(
            out,
            "  {:<15} {} improved, {} regressed, {} no change, {} not comparable (one repetition or missing)",
            name,
            c.count(name, Change::Improved),
            c.count(name, Change::Regressed),
            c.count(name, Change::NoChange),
            c.count(name, Change::NotComparable),
        );
    }
    if !c.only_old.is_empty() || !c.only_new.is_empty() {
        let _ = writeln!(
            out,
            "  groups only in the old folder: {}; only in the new: {}",
            c.only_old.len(),
            c.only_new.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(v: &[f64]) -> Option<Interval> {
        Interval::of(v)
    }

    #[test]
    fn the_header_names_exactly_the_claims_that_read_a_joined_folder() {
        let note = joined_note();
        let words: Vec<&str> = note.split(|c: char| !c.is_alphanumeric()).collect();
        for claim in CLAIMS {
            let named = words.contains(&claim.id);
            assert_eq!(named, claim.joined.is_some(), "{}: {note}", claim.id);
            if let Some(kind) = claim.joined {
                assert!(note.contains(kind.folder()), "{note}");
            }
        }
    }

    #[test]
    fn a_change_counts_only_outside_both_intervals() {
        let old = iv(&[100.0, 101.0, 102.0, 103.0, 104.0]);
        let up = iv(&[110.0, 111.0, 112.0, 113.0, 114.0]);
        let overlap = iv(&[103.5, 105.0, 106.0, 107.0, 108.0]);
        assert_eq!(change(old.as_ref(), up.as_ref(), Better::Higher), Change::Improved);
        assert_eq!(change(old.as_ref(), up.as_ref(), Better::Lower), Change::Regressed);
        assert_eq!(change(old.as_ref(), overlap.as_ref(), Better::Higher), Change::NoChange);
        assert_eq!(change(old.as_ref(), iv(&[120.0]).as_ref(), Better::Higher), Change::NotComparable);
        assert_eq!(change(old.as_ref(), None, Better::Higher), Change::NotComparable);
    }
}
