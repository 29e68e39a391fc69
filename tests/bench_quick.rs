//! End to end: `c10k bench --profile quick` over two real models, with the real
//! binary running `c10k serve` and `c10k load` as separate processes, then
//! `c10k report` rebuilding the report from the results folder alone.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn proc_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn quick_run_of_two_models_then_report() {
    let bin = env!("CARGO_BIN_EXE_c10k");
    let dir = std::env::temp_dir().join(format!("c10k-bench-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let report = dir.join("REPORT.md");
    let out = Command::new(bin)
        .args(["bench", "--profile", "quick", "--only", "reactor,thread"])
        .arg("--out")
        .arg(&dir)
        .arg("--report")
        .arg(&report)
        .output()
        .expect("run c10k bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "c10k bench failed:\n{stderr}");

    let records = bench::results::read_cells(&dir).expect("cell files read back with serde");
    assert_eq!(records.len(), 4, "2 models x 100 and 1,000 connections");
    for r in &records {
        assert!(r.outcome.is_ok(), "{}: {:?}\n{}", r.cell.id, r.outcome, r.server.stderr_tail);
        let load = r.load.as_ref().expect("load report");
        assert!(load.requests > 0, "{} answered requests", r.cell.id);
        assert_eq!(load.starved, 0, "{}: both models serve every connection", r.cell.id);
        assert!(
            r.server.stats.as_ref().is_some_and(|s| s.counters.accepted >= r.cell.conns),
            "{}: stats line",
            r.cell.id
        );
        assert!(!r.samples.is_empty() && r.derived.peak_rss_bytes > 0, "{}: monitor samples", r.cell.id);
        let pid = r.server.pid.expect("server pid");
        assert!(!proc_alive(pid), "{}: server {pid} still running", r.cell.id);
    }
    let thread = records.iter().find(|r| r.cell.id == "http-keepalive/thread/c1000/rep1").expect("thread at 1,000");
    // A thread per connection (not all 1,000 need be open at the same sample).
    assert!(thread.derived.peak_threads > 300, "a thread per connection: {:?}", thread.derived);

    let env: bench::env::EnvInfo = bench::results::read_json(&dir.join("env.json")).expect("env.json");
    assert!(env.cores >= 1 && !env.kernel.is_empty() && !env.server_cpus.is_empty());
    assert!(dir.join("summary.csv").exists());
    assert!(dir.join("plots/throughput-http-keepalive.svg").exists());
    let md = std::fs::read_to_string(&report).expect("REPORT.md");
    assert!(md.contains("| M5 | reactor |") && md.contains("| M2 | thread |"), "{md}");

    // `c10k report` rebuilds the report from the folder alone.
    let again = dir.join("again.md");
    let status =
        Command::new(bin).arg("report").arg(&dir).arg("--output").arg(&again).status().expect("run c10k report");
    assert!(status.success());
    let md2 = std::fs::read_to_string(&again).expect("again.md");
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| M")).count(),
        md2.lines().filter(|l| l.starts_with("| M")).count()
    );
    if Path::new(&dir).exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
