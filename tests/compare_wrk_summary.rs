//! `scripts/compare-wrk.sh summary`: the medians, pair ranges and the pairs that meet
//! issue 11's bar, from a comparison's raw rows. It needs only bash, awk and sort (not
//! wrk, nginx or root), so it runs everywhere `make test` does.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run the summary of the raw folder `dir` with `CLIENT_QUOTA` = `quota`.
fn summary(dir: &Path, quota: &str) -> (bool, String, String) {
    let out = Command::new("bash")
        .arg(root().join("scripts/compare-wrk.sh"))
        .arg("summary")
        .env("OUT_DIR", dir)
        .env("CLIENT_QUOTA", quota)
        .output()
        .expect("bash runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("c10k-cmpwrk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The line of `text` that starts with the connection count and tool.
fn line<'a>(text: &'a str, conns: &str, tool: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().take(2).eq([conns, tool]))
        .unwrap_or_else(|| panic!("no line for {conns} {tool} in:\n{text}"))
}

#[test]
fn pairs_are_read_per_rep_and_counted_against_the_bar() {
    let dir = scratch("pairs");
    // conns tool rps vs_wrk incl_ramp cpu_us cs_per_req nginx_us load1 user_us sys_us; three reps.
    // c10k/wrk rate per rep: 1.30, 1.20, 1.50; CPU per request: 0.75, 0.85, 0.70.
    let rows = "\
100 wrk 100000 - - 8.00 0.001 8.00 1.0 0.70 7.30
100 c10k-uring 130000 1.300 129000 6.00 0.020 7.00 1.0 0.40 5.60
100 wrk 100000 - - 8.00 0.001 8.00 1.0 0.70 7.30
100 c10k-uring 120000 1.200 119000 6.80 0.020 7.00 1.0 0.40 6.40
100 wrk 80000 - - 10.00 0.001 9.00 1.0 0.70 9.30
100 c10k-uring 120000 1.500 119000 7.00 0.020 7.00 1.0 0.40 6.60
";
    std::fs::write(dir.join("rows.txt"), rows).unwrap();
    let (ok, out, err) = summary(&dir, "0.5");
    assert!(ok, "summary failed: {err}");
    let uring = line(&out, "100", "c10k-uring");
    assert!(uring.contains("1.300 (1.200-1.500)"), "rate: median and range of the pairs: {uring}");
    assert!(uring.contains("0.750 (0.700-0.850)"), "CPU per request: median and range: {uring}");
    // nginx's share of its core: 7 us x 120,000/s = 0.84 (the median of 0.91, 0.84, 0.84).
    assert!(uring.split_whitespace().any(|w| w == "0.840"), "nginx_core: {uring}");
    assert!(out.contains("cap of\n# 0.5"), "the cap is named: {out}");
    let bar = out.lines().find(|l| l.starts_with("100 ") && l.contains(" rate ")).expect("bar line");
    assert!(bar.contains("rate 2 of 3 pairs, CPU per request 2 of 3 pairs"), "{bar}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_folder_without_rows_is_a_clear_error() {
    let dir = scratch("empty");
    let (ok, _, err) = summary(&dir, "");
    assert!(!ok);
    assert!(err.contains("rows.txt"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The committed comparison's summary.txt is what its raw rows say.
#[test]
fn the_committed_summary_is_reproduced_from_its_rows() {
    let run = root().join("results/compare-wrk-2026-12-06-vm");
    let committed = std::fs::read_to_string(run.join("summary.txt")).unwrap();
    for (raw, quota) in [("raw-load", ""), ("raw-capped", "0.5")] {
        let (ok, out, err) = summary(&run.join(raw), quota);
        assert!(ok, "{raw}: {err}");
        assert!(committed.contains(out.trim_end()), "{raw}'s summary differs from summary.txt:\n{out}");
    }
}
