//! Verdicts: one pure function per claim, over a results folder read back
//! ([`Results`]). Each states the evidence it used, with the numbers, and the
//! thresholds that decide the verdict are written next to the comparison.
//!
//! - [`numeric`]: the numeric tables T1..T5.
//! - [`prose`]: the prose claims C1..C13.
//! - [`thresholds`]: every number a verdict compares against, written once; the
//!   sentences that state a threshold format the same constant.
//!
//! A verdict that compares a noisy figure reads its confidence interval
//! ([`crate::stats`]): beyond the threshold on one side it holds or does not, and
//! an interval that straddles the threshold makes the verdict *inconclusive*.

pub mod c1m;
pub mod figures;
pub mod numeric;
pub mod prose;
pub mod thresholds;

use crate::aggregate::{Group, Results};
use crate::show::{bytes, lat, n};
use crate::stats::{Interval, Side};

/// A verdict's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Holds,
    DoesNotHold,
    /// Holds in part or with a qualification (said in `why`).
    Nuance,
    /// The interval of the compared quantity straddles the threshold (said by how much).
    Inconclusive,
    /// This run could not measure it (said why).
    NotMeasured,
}

/// What kind of evidence a verdict is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Could have come out either way: evidence about the claim.
    Finding,
    /// True by how the workload is built (a fixed pool starving long connections,
    /// the kernel enforcing a descriptor limit): it shows the mechanism, it proves little.
    Demonstration,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Finding => "finding",
            Kind::Demonstration => "demonstration",
        }
    }
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::DoesNotHold => "does not hold",
            Status::Nuance => "holds with nuance",
            Status::Inconclusive => "inconclusive",
            Status::NotMeasured => "not measured",
        }
    }
}

/// How an interval reads against a threshold: `Holds` when it lies wholly on the
/// side the claim wants (`want_above`), `DoesNotHold` when wholly on the other,
/// `Inconclusive` when it straddles, and, with one repetition, the point decides
/// but the caller is told (`Side::Unknown`).
pub fn judge(i: &Interval, threshold: f64, want_above: bool) -> Status {
    match (i.against(threshold), want_above) {
        (Side::Above, true) | (Side::Below, false) => Status::Holds,
        (Side::Above, false) | (Side::Below, true) => Status::DoesNotHold,
        (Side::Straddles, _) => Status::Inconclusive,
        (Side::Unknown, _) => {
            if (i.median >= threshold) == want_above {
                Status::Holds
            } else {
                Status::DoesNotHold
            }
        }
    }
}

/// ` — inconclusive: the interval 1.41-1.62 straddles 1.5` and the like, for evidence lines.
pub fn reading(i: &Interval, threshold: f64, want_above: bool) -> String {
    match judge(i, threshold, want_above) {
        Status::Inconclusive => {
            let by = (i.hi - threshold).min(threshold - i.lo);
            format!(" — inconclusive: {:.2}-{:.2} straddles {threshold} (by {by:.2})", i.lo, i.hi)
        }
        _ if i.n < 2 => " — one repetition, no interval".into(),
        _ => String::new(),
    }
}

/// The verdict on one claim.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub id: &'static str,
    pub status: Status,
    pub kind: Kind,
    /// The measurements used, one line each, with the groups they come from.
    pub evidence: Vec<String>,
    /// Why this status (the nuance, or why not measured).
    pub why: String,
}

impl Verdict {
    /// A finding; its claim's id is filled in by [`crate::claims::verdicts`] from the registry.
    pub fn new(status: Status, evidence: Vec<String>, why: impl Into<String>) -> Verdict {
        Verdict { id: "", status, kind: Kind::Finding, evidence, why: why.into() }
    }

    /// The same verdict, labelled a demonstration.
    pub fn demonstration(self) -> Verdict {
        Verdict { kind: Kind::Demonstration, ..self }
    }

    pub fn not_measured(why: impl Into<String>) -> Verdict {
        Verdict::new(Status::NotMeasured, Vec::new(), why)
    }
}

/// A valid (at least one ok repetition) group.
pub fn ok<'a>(r: &'a Results, workload: &str, server: &str, conns: u64) -> Option<&'a Group> {
    r.find(workload, server, conns).filter(|g| g.ok > 0)
}

/// `g.rps` as text, with its confidence interval when repeated.
pub fn rps(g: &Group) -> String {
    match g.rps_ci {
        Some(i) => format!("{} req/s", i.show(n)),
        None => "no req/s figure".into(),
    }
}

/// ` (client-bound: ...)` when any of `groups` had a client-bound repetition.
pub fn client_note(groups: &[&Group]) -> String {
    if groups.iter().any(|g| g.client_bound) {
        " (client-bound: the load generator, not the server, may have set this figure)".into()
    } else {
        String::new()
    }
}

/// The status of several parts: all hold -> holds, none -> does not hold, else nuance.
pub fn combine(parts: &[bool]) -> Status {
    let s: Vec<Status> = parts.iter().map(|p| if *p { Status::Holds } else { Status::DoesNotHold }).collect();
    combine_status(&s)
}

/// The status of several parts judged on intervals: all hold -> holds; half or
/// more do not hold -> does not hold; otherwise holds with nuance. An
/// inconclusive part leaves the whole inconclusive only where it could change the
/// outcome: the parts are combined twice, every open part read once as holding
/// and once as failing, and a verdict both readings agree on stands.
pub fn combine_status(parts: &[Status]) -> Status {
    let decided: Vec<Status> = parts.iter().copied().filter(|s| *s != Status::NotMeasured).collect();
    if decided.is_empty() {
        return Status::NotMeasured;
    }
    let read_open = |open_as: Status| -> Status {
        let all: Vec<Status> = decided.iter().map(|s| if *s == Status::Inconclusive { open_as } else { *s }).collect();
        let fail = all.iter().filter(|s| **s == Status::DoesNotHold).count();
        if 2 * fail >= all.len() {
            Status::DoesNotHold
        } else if all.iter().all(|s| *s == Status::Holds) {
            Status::Holds
        } else {
            Status::Nuance
        }
    };
    let (best, worst) = (read_open(Status::Holds), read_open(Status::DoesNotHold));
    if best == worst {
        best
    } else {
        Status::Inconclusive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(n(1234567.4), "1,234,567");
        assert_eq!(n(999.0), "999");
        assert_eq!(n(-1500.0), "-1,500");
        assert_eq!(lat(850.0), "850 us");
        assert_eq!(lat(12_345.0), "12.3 ms");
        assert_eq!(lat(2_100_000.0), "2.10 s");
        assert_eq!(bytes(2048.0), "2.0 KiB");
        assert_eq!(bytes(3.5 * 1048576.0), "3.5 MiB");
    }

    #[test]
    fn straddling_is_inconclusive() {
        let i = Interval::of(&[1.4, 1.45, 1.5, 1.55, 1.6]).unwrap_or(Interval::point(0.0));
        assert_eq!(judge(&i, 1.5, true), Status::Inconclusive);
        assert!(reading(&i, 1.5, true).contains("inconclusive"));
        assert_eq!(judge(&i, 1.3, true), Status::Holds);
        assert_eq!(judge(&i, 1.3, false), Status::DoesNotHold);
        assert_eq!(judge(&i, 1.7, false), Status::Holds);
    }

    /// Every verdict looks its cells up by workload and server key; a key that no
    /// longer names a server (a renamed model) trips the check in `Results::find`.
    #[test]
    fn verdicts_and_tables_name_only_known_servers() {
        let empty = Results::new(None, Vec::new());
        let verdicts = crate::claims::verdicts(&empty);
        assert_eq!(verdicts.len(), crate::claims::CLAIMS.len());
        assert!(verdicts.iter().all(|v| v.status == Status::NotMeasured), "an empty folder measures nothing");
        let _ = crate::report_tables::main_table(&empty);
    }

    #[test]
    fn combining() {
        assert_eq!(combine(&[true, true]), Status::Holds);
        assert_eq!(combine(&[true, true, false]), Status::Nuance);
        assert_eq!(combine(&[true, false]), Status::DoesNotHold);
        assert_eq!(combine_status(&[Status::Holds, Status::Inconclusive]), Status::Inconclusive);
        assert_eq!(combine_status(&[Status::DoesNotHold, Status::Inconclusive]), Status::DoesNotHold);
        // One open part among seven decided: holds with nuance whichever way it falls.
        let mut parts = vec![Status::Holds; 6];
        parts.extend([Status::DoesNotHold, Status::Inconclusive]);
        assert_eq!(combine_status(&parts), Status::Nuance);
        // Four hold, four fail, one open: it decides between nuance and does not hold.
        let mut parts = vec![Status::Holds; 4];
        parts.extend([Status::DoesNotHold; 4]);
        parts.push(Status::Inconclusive);
        assert_eq!(combine_status(&parts), Status::Inconclusive);
        assert_eq!(combine_status(&[Status::Holds, Status::Nuance]), Status::Nuance);
        assert_eq!(combine(&[false]), Status::DoesNotHold);
        assert_eq!(combine(&[]), Status::NotMeasured);
    }
}
