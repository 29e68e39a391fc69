//! The report from a fixture results folder: tables, every verdict, plots,
//! summary.csv. The folder (`tests/fixtures/results/`) is synthetic, with numbers
//! chosen so that each verdict's outcome is known (see `fixture/mod.rs`).

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;
mod fixture;

use std::path::{Path, PathBuf};

use bench::aggregate::Results;
use bench::verdicts::{self, Status};

fn fixture_dir() -> PathBuf {
    common::fixtures().join("results")
}

/// Copy the fixture folder (env.json, cells/) to a temp folder: the report writes beside it.
fn copy_fixture(name: &str) -> PathBuf {
    let dir = common::tmp(name);
    std::fs::create_dir_all(dir.join("cells")).expect("cells dir");
    std::fs::copy(fixture_dir().join("env.json"), dir.join("env.json")).expect("copy env");
    for e in std::fs::read_dir(fixture_dir().join("cells")).expect("fixture cells") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.join("cells").join(p.file_name().expect("name"))).expect("copy cell");
    }
    dir
}

#[test]
#[ignore = "writes tests/fixtures/results; run after a schema change"]
fn regenerate_fixture() {
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cells")).expect("cells dir");
    // Plain, pretty JSON (an older folder's form, which readers still take): the
    // compression test compresses a copy of it.
    for s in fixture::cells() {
        let rec = s.record();
        let path = dir.join("cells").join(format!("{}.json", rec.cell.id.replace('/', "__")));
        std::fs::write(&path, serde_json::to_string_pretty(&rec).expect("cell as JSON")).expect("write cell");
    }
    bench::results::write_json(&dir.join("env.json"), &fixture::env(), "env").expect("write env");
}

#[test]
fn every_verdict_on_the_fixture() {
    let r = Results::load(&fixture_dir()).expect("fixture reads back");
    let got: Vec<(&str, Status)> = bench::claims::verdicts(&r).iter().map(|v| (v.id, v.status)).collect();
    let want = [
        // Throughput orders as the documents say, but the fixture gives every model the
        // same peak memory: six memory orderings are equal figures, 6 of 9 fail.
        ("T1", Status::DoesNotHold),
        // Row by row: thread is not capped near 100, the pool reaches 1,000 only
        // sized for it (not in the fixture), event driven holds.
        ("T2", Status::DoesNotHold),
        ("T3", Status::Nuance),
        ("T4", Status::Holds),
        ("T5", Status::Nuance),
        ("C1", Status::DoesNotHold),
        // The measured total is below the documents' arithmetic: their conclusion holds, the figure does not.
        ("C2", Status::Nuance),
        // Blocking holds; the CPU-bound part does not (the reactor's p99 is not worse than the threaded models').
        ("C3", Status::DoesNotHold),
        ("C4", Status::DoesNotHold),
        ("C5", Status::Holds),
        // Judged on server CPU per request, which the fixture gives both models alike.
        ("C6", Status::DoesNotHold),
        ("C7", Status::Holds),
        ("C8", Status::Holds),
        ("C9", Status::Holds),
        ("C10", Status::Holds),
        ("C11", Status::Holds),
        ("C12", Status::Holds),
        ("C13", Status::NotMeasured),
        // Both schemes cost more server CPU per request than thread in every cell.
        ("C14", Status::Holds),
        // No model speaks HTTP/2.
        ("C15", Status::NotMeasured),
    ];
    assert_eq!(got, want);
    // The sentences state the thresholds the checks use.
    let t4 = verdicts::numeric::t4(&r);
    assert!(t4.why.contains(&format!("at least {}x", verdicts::thresholds::GROWS_MIN)), "{}", t4.why);
    assert!(t4.why.contains(&format!("at most {}x", verdicts::thresholds::FLAT_MAX)), "{}", t4.why);
    for v in bench::claims::verdicts(&r) {
        assert!(!v.why.is_empty(), "{} explains itself", v.id);
        assert!(v.status == Status::NotMeasured || !v.evidence.is_empty(), "{} has evidence", v.id);
    }
}

#[test]
fn verdicts_flip_with_the_numbers() {
    // C7 no longer holds when the pool takes as long as the single thread.
    let mut cells = fixture::cells();
    for c in cells.iter_mut().filter(|c| c.w == "block-3x1s" && c.s.contains("pool")) {
        c.window = 3.0;
    }
    let r = Results::new(None, cells.iter().map(|c| c.record()).collect());
    assert_eq!(verdicts::prose::c7(&r).status, Status::DoesNotHold);
    // Nothing run at all: every claim is "not measured", with a reason.
    let empty = Results::new(None, vec![fixture::s("echo", "reactor", "reactor", "M5", 1, 1.0).record()]);
    for v in bench::claims::verdicts(&empty) {
        assert_eq!(v.status, Status::NotMeasured, "{}", v.id);
        assert!(!v.why.is_empty());
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn report_tables_plots_and_summary_from_the_fixture() {
    let dir = copy_fixture("report");
    let out = dir.join("docs").join("REPORT.md");
    bench::report::generate(&dir, &out).expect("report");
    let md = read(&out);
    // 1. Environment before any number, 2. main table, 3. claims, 4. plots, 5. caveats.
    let order = [
        "## 1. Environment",
        "## 2. The models compared",
        "## 3. The documents' claims",
        "## 4. Plots",
        "## 5. Caveats",
    ];
    let pos: Vec<usize> = order.iter().map(|h| md.find(h).unwrap_or_else(|| panic!("missing {h}"))).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "sections in order");
    assert!(md.contains("Synthetic CPU"));
    assert!(
        md.contains("| M5 | reactor | 50,000 (49,000-51,000, n=3) | 39,200 (n=1) |"),
        "main table row with spread:\n{md}"
    );
    assert!(md.contains("T1: asyncio: ~20,000 QPS, 100 MB"), "seed figure beside ours");
    assert!(md.contains("`uring` (http-keepalive): io_uring is not permitted here"), "cannot-run listed");
    assert!(md.contains("| reactor | 20,000 req/s |"), "knee of the sweep");
    for c in bench::claims::CLAIMS {
        assert!(md.contains(&format!("### {}\n", c.id)), "claim {} has a section", c.id);
    }
    assert!(md.contains("**Verdict: not measured** (finding). No server model serves files"));
    assert!(
        md.contains("10 group(s) had a repetition during which other processes took more than 10%"),
        "noisy cells flagged"
    );
    // Plots exist, are SVG, and are linked relative to the report.
    let plots: Vec<String> = std::fs::read_dir(dir.join("plots"))
        .expect("plots")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    for want in [
        "throughput-http-keepalive.svg",
        "p99-http-keepalive.svg",
        "memory-per-connection.svg",
        "idle-memory.svg",
        "cpu-per-req-http-keepalive.svg",
        "spectrum-c100.svg",
        "timeline.svg",
        "sweep-throughput.svg",
        "sweep-p99.svg",
        "sweep-latency-throughput.svg",
        "sweep-latency-throughput-uncorrected.svg",
        "idle-active.svg",
    ] {
        assert!(plots.iter().any(|p| p == want), "plot {want} written: {plots:?}");
        assert!(md.contains(&format!("](../plots/{want})")), "plot {want} embedded");
        let svg = read(&dir.join("plots").join(want));
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
    }
    // Spread and marks: the fixture's three repetitions at 100 connections draw error bars, its
    // starved pool and iterative cells hollow markers with the legend saying so.
    let tput = read(&dir.join("plots/throughput-http-keepalive.svg"));
    assert!(tput.contains(bench::plots::draw::HOLLOW_MEANS), "hollow markers explained in the legend");
    assert!(md.contains("error bars: the interval of the median"), "captions say what the bars are");
    assert!(md.contains("up to 3 repetitions"), "captions read the repetitions from the cells");
    // A stale plot from an earlier report is removed, not left to be read as current.
    std::fs::write(dir.join("plots/spectrum-c10000.svg"), "<svg></svg>").expect("stale plot");
    bench::report::generate(&dir, &dir.join("again.md")).expect("report again");
    assert!(!dir.join("plots/spectrum-c10000.svg").exists(), "stale plot removed");
    // summary.csv: a header and one row per group.
    let csv = read(&dir.join("summary.csv"));
    let r = Results::load(&dir).expect("reads back");
    assert_eq!(csv.lines().count(), r.groups.len() + 1);
    assert!(csv.lines().next().is_some_and(|h| h.starts_with("group,workload,server")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_command_rebuilds_without_running() {
    let dir = copy_fixture("report-cli");
    let args = bench::cli::ReportArgs { dir: dir.clone(), output: None, joins: Default::default() };
    let code = bench::cli::run_report(args).expect("report");
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert!(dir.join("REPORT.md").exists());
    let bad = bench::cli::run_report(bench::cli::ReportArgs {
        dir: dir.join("nope"),
        output: None,
        joins: Default::default(),
    });
    assert!(bad.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A beyond folder's fixed-rate rounds: every model of the experiment at the one rate, the
/// reactor costing `reactor_us` per request and uring `uring_us`, the others more.
fn fixed_rate_folder(reactor_us: f64, uring_us: f64) -> Results {
    use bench::matrix::{FIXED_RATE, FIXED_RATE_MODELS, FIXED_RATE_REPS};
    let (conns, rate) = FIXED_RATE;
    let mut records = Vec::new();
    for rep in 1..=FIXED_RATE_REPS {
        // Round-to-round drift that both sides of a pair share.
        let drift = 1.0 + 0.02 * f64::from(rep % 3);
        for (i, &key) in FIXED_RATE_MODELS.iter().enumerate() {
            let cpu = match key {
                "reactor" => reactor_us,
                "uring" => uring_us,
                _ => uring_us * (1.2 + 0.1 * i as f64),
            } * drift;
            let mut c = fixture::s("fixed-rate", key, key, "M", conns, rate);
            c.rate = Some(rate);
            c.rep = rep;
            c.cpu = cpu;
            records.push(c.record());
        }
    }
    Results::new(Some(fixture::env()), records)
}

#[test]
fn c11_is_judged_on_the_fixed_rate_experiment_when_joined() {
    let mut r = Results::load(&fixture_dir()).expect("fixture reads back");
    let alone = verdicts::prose::c11(&r);
    assert!(alone.why.contains("no beyond folder"), "{}", alone.why);

    // Level with the best: holds, the closed-loop cells shown beside.
    r.beyond = Some((Box::new(fixed_rate_folder(10.0, 10.0)), "beyond-fixture".into()));
    let level = verdicts::prose::c11(&r);
    assert_eq!(level.status, Status::Holds, "{:?}", level.evidence);
    assert!(level.why.contains("fixed-rate experiment"), "{}", level.why);
    assert!(level.evidence.iter().any(|e| e.contains("beyond-fixture")), "{:?}", level.evidence);

    // 1.5x the best's CPU per request: 0.67 of its requests per CPU-second, under 0.8.
    r.beyond = Some((Box::new(fixed_rate_folder(15.0, 10.0)), "beyond-fixture".into()));
    let costly = verdicts::prose::c11(&r);
    assert_eq!(costly.status, Status::DoesNotHold, "{:?}", costly.evidence);
    assert!(costly.evidence.iter().any(|e| e.contains("uring") && e.contains("0.67")), "{:?}", costly.evidence);

    // A model that did not sustain the rate is left out, not taken as the best.
    let mut slow = fixed_rate_folder(10.0, 10.0);
    let mut records: Vec<_> = slow.records.clone();
    for rec in records.iter_mut().filter(|x| x.cell.server.key == "thread") {
        if let Some(l) = rec.load.as_mut() {
            l.requests_per_sec = 30_000.0;
        }
        rec.derived.cpu_us_per_req = Some(1.0);
    }
    slow = Results::new(Some(fixture::env()), records);
    r.beyond = Some((Box::new(slow), "beyond-fixture".into()));
    let v = verdicts::prose::c11(&r);
    assert_eq!(v.status, Status::Holds, "{:?}", v.evidence);
    assert!(v.evidence.iter().any(|e| e.contains("thread left out")), "{:?}", v.evidence);
}
