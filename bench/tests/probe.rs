//! The sendfile probe (C13): a real small run over loopback, its file in a
//! results folder read back, and the verdict it leads to.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use bench::aggregate::Results;
use bench::probe::{self, ProbeConfig, ProbeRun, SendfileProbe, PROBE_SCHEMA};
use bench::verdicts::{prose, Status};

#[test]
fn both_methods_send_every_byte_and_read_back() {
    let dir = common::tmp("probe");
    let config = ProbeConfig { file_bytes: 4 << 20, sends_per_run: 2, runs: 2, dir: dir.clone(), ..Default::default() };
    let mut seen = 0;
    let result = probe::run(&config, |_| seen += 1);
    assert_eq!(result.error, None);
    assert_eq!(seen, 4, "progress per run");
    let methods: Vec<&str> = result.runs.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["read+write", "sendfile", "read+write", "sendfile"], "alternating");
    for r in &result.runs {
        assert_eq!(r.bytes, 8 << 20, "{}: file size x sends", r.method);
        assert!(r.sender_cpu_s > 0.0 && r.wall_s > 0.0, "{r:?}");
    }
    let leftovers = std::fs::read_dir(&dir).expect("dir").filter(|e| e.is_ok()).count();
    assert_eq!(leftovers, 0, "the temporary file is removed");

    probe::save(&dir, &result).expect("save");
    let back = probe::load(&dir).expect("probe file reads back");
    assert_eq!(back.as_ref().map(|p| p.runs.len()), Some(4));
    let verdict = prose::c13(&Results { sendfile: back, ..Results::default() });
    assert_ne!(verdict.status, Status::NotMeasured, "{verdict:?}");
    assert!(verdict.evidence.iter().any(|e| e.starts_with("read+write")));
    assert!(verdict.evidence.iter().any(|e| e.starts_with("sendfile")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_probe_that_cannot_run_says_why() {
    let config = ProbeConfig { dir: "/nonexistent/c10k".into(), ..Default::default() };
    let result = probe::run(&config, |_| {});
    assert!(result.error.as_deref().is_some_and(|e| e.contains("/nonexistent/c10k")), "{:?}", result.error);
    let verdict = prose::c13(&Results { sendfile: Some(result), ..Results::default() });
    assert_eq!(verdict.status, Status::NotMeasured);
    assert!(verdict.why.contains("failed"), "{}", verdict.why);
}

fn synthetic(pairs: &[(f64, f64)]) -> Results {
    let run =
        |method: &str, cpu: f64| ProbeRun { method: method.into(), bytes: 1 << 30, wall_s: 1.0, sender_cpu_s: cpu };
    let runs = pairs.iter().flat_map(|&(rw, sf)| [run("read+write", rw), run("sendfile", sf)]).collect();
    let probe = SendfileProbe { schema: PROBE_SCHEMA, config: ProbeConfig::default(), runs, error: None };
    Results { sendfile: Some(probe), ..Results::default() }
}

#[test]
fn verdict_follows_the_cpu_ratio() {
    let steady = |sf: f64| synthetic(&[(0.4, sf), (0.4, sf), (0.4, sf)]);
    assert_eq!(prose::c13(&steady(0.2)).status, Status::Holds);
    assert_eq!(prose::c13(&steady(0.36)).status, Status::DoesNotHold);
    // Pair ratios 0.5 .. 1.0 straddle the 0.8 threshold: inconclusive.
    let wide = synthetic(&[(0.4, 0.2), (0.4, 0.3), (0.4, 0.4)]);
    let v = prose::c13(&wide);
    assert_eq!(v.status, Status::Inconclusive, "{v:?}");
    assert!(v.evidence[1].contains("inconclusive"), "{:?}", v.evidence);
    let v = prose::c13(&steady(0.2));
    assert!(v.evidence[0].contains("400 ms of sender CPU per GiB"), "{:?}", v.evidence);
    assert!(v.evidence[1].contains("0.50"), "{:?}", v.evidence);
    assert!(v.why.contains(&format!("{}x", bench::verdicts::thresholds::C13_MAX)), "the sentence reads the constant");
    assert_eq!(prose::c13(&Results::default()).status, Status::NotMeasured);
}
