//! Verdicts: one pure function per claim, over a results folder read back
//! ([`Results`]). Each states the evidence it used, with the numbers, and the
//! thresholds that decide the verdict are written next to the comparison.
//!
//! - [`tables`]: the numeric tables T1..T5.
//! - [`prose`]: the prose claims C1..C13.

pub mod prose;
pub mod tables;

use crate::aggregate::{Group, Results};

/// A verdict's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Holds,
    DoesNotHold,
    /// Holds in part or with a qualification (said in `why`).
    Nuance,
    /// This run could not measure it (said why).
    NotMeasured,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::DoesNotHold => "does not hold",
            Status::Nuance => "holds with nuance",
            Status::NotMeasured => "not measured",
        }
    }
}

/// The verdict on one claim.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub id: &'static str,
    pub status: Status,
    /// The measurements used, one line each, with the groups they come from.
    pub evidence: Vec<String>,
    /// Why this status (the nuance, or why not measured).
    pub why: String,
}

impl Verdict {
    pub fn new(id: &'static str, status: Status, evidence: Vec<String>, why: impl Into<String>) -> Verdict {
        Verdict { id, status, evidence, why: why.into() }
    }

    pub fn not_measured(id: &'static str, why: impl Into<String>) -> Verdict {
        Verdict::new(id, Status::NotMeasured, Vec::new(), why)
    }
}

/// Every claim's verdict, in the order of [`crate::claims::CLAIMS`].
pub fn all(r: &Results) -> Vec<Verdict> {
    vec![
        tables::t1(r),
        tables::t2(r),
        tables::t3(r),
        tables::t4(r),
        tables::t5(r),
        prose::c1(r),
        prose::c2(r),
        prose::c3(r),
        prose::c4(r),
        prose::c5(r),
        prose::c6(r),
        prose::c7(r),
        prose::c8(r),
        prose::c9(r),
        prose::c10(r),
        prose::c11(r),
        prose::c12(r),
        prose::c13(r),
    ]
}

/// A valid (at least one ok repetition) group.
pub fn ok<'a>(r: &'a Results, workload: &str, server: &str, conns: u64) -> Option<&'a Group> {
    r.find(workload, server, conns).filter(|g| g.ok > 0)
}

/// `12345.6` -> `12,346`.
pub fn n(x: f64) -> String {
    let v = x.round() as i64;
    let s = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Microseconds as a readable latency: `850 us`, `12.3 ms`, `2.10 s`.
pub fn lat(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

/// Bytes as MiB or KiB.
pub fn bytes(b: f64) -> String {
    if b.abs() >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / 1073741824.0)
    } else if b.abs() >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1048576.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// `g.rps` as text, with the min-max spread when repeated.
pub fn rps(g: &Group) -> String {
    match (g.rps, g.rps_min, g.rps_max) {
        (Some(m), Some(lo), Some(hi)) if g.ok > 1 => format!("{} req/s ({}-{})", n(m), n(lo), n(hi)),
        (Some(m), _, _) => format!("{} req/s", n(m)),
        _ => "no figure".into(),
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
    if parts.is_empty() {
        Status::NotMeasured
    } else if parts.iter().all(|p| *p) {
        Status::Holds
    } else if parts.iter().any(|p| *p) {
        Status::Nuance
    } else {
        Status::DoesNotHold
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
    fn combining() {
        assert_eq!(combine(&[true, true]), Status::Holds);
        assert_eq!(combine(&[true, false]), Status::Nuance);
        assert_eq!(combine(&[false]), Status::DoesNotHold);
        assert_eq!(combine(&[]), Status::NotMeasured);
    }
}
