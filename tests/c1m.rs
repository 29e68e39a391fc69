//! End to end: `c10k c1m` at a few thousand connections over 2 processes per
//! side (seconds), with the real binary, then `c10k report STDDIR --c1m DIR`.
//! T5's namespace runs take part where this runs as root (else the folder says
//! why not, which is checked too). Nothing is left behind: no server, no cgroup,
//! no namespace.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_small_ladder_and_t5_then_the_report() {
    let bin = env!("CARGO_BIN_EXE_c10k");
    let root = std::env::temp_dir().join(format!("c10k-c1m-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("c1m");
    let out = Command::new(bin)
        .args(["c1m", "--steps", "3000", "--models", "reuseport,tokio", "--conns-per-proc", "1500"])
        .args(["--alive-period", "2s", "--alive-warmup", "1s", "--probe-warmup", "500ms", "--probe-window", "1s"])
        .args(["--t5-max-conns", "3000", "--t5-short-conns", "100", "--t5-reps", "1", "--t5-window", "2s"])
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run c10k c1m");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "c10k c1m failed:\n{stderr}");

    let c = bench::c1m::C1mResults::load(&dir).expect("the folder reads back");
    assert_eq!(c.steps.len(), 2, "{stderr}");
    for s in &c.steps {
        assert_eq!((s.server_procs, s.client_procs), (2, 2), "3,000 at 1,500 per process");
        assert!(s.held_all(), "{}: {:?}\n{stderr}", s.id(), s.alive);
        let probe = s.probe.as_ref().expect("probe report");
        assert!(probe.requests > 0 && probe.p99_us.is_some());
        assert!(s.server_run_queue.is_some_and(|r| r.threads >= 2));
        let m = bench::c1m::fit::step_memory(s).expect("memory");
        assert!(m.conns >= 3_000, "{} connections held by the server", m.conns);
        assert!(s.server_stats.as_ref().is_some_and(|st| st.counters.accepted >= 3_000));
    }
    let t5 = c.t5.as_ref().expect("t5/namespaces.json");
    match &t5.unavailable {
        Some(why) => eprintln!("T5 not run here: {why}"),
        None => {
            assert_eq!(c.t5_runs.len(), 4, "2 max-connection runs and 1 pair of short runs");
            assert!(
                t5.host_unchanged(),
                "the host's settings are untouched: {:?} vs {:?}",
                t5.host_before,
                t5.host_after
            );
            let tuned = c.t5_runs.iter().find(|r| r.config == "tuned" && r.kind == "short").expect("tuned short run");
            let somaxconn = tuned.ns_values.iter().find(|v| v.0 == "net.core.somaxconn").expect("read back");
            assert_eq!(somaxconn.1.as_deref(), Some("65536"), "written inside the server's namespace");
            let ip = bench::netns::ip_binary().expect("ip");
            let list = String::from_utf8_lossy(&Command::new(ip).args(["netns", "list"]).output().expect("ip").stdout)
                .to_string();
            assert!(!list.contains(&format!("c10k-{}-", std::process::id())), "namespaces removed: {list}");
        }
    }
    assert!(
        dir.join("C1M.md").exists()
            && dir.join("plots/c1m-memory.svg").exists()
            && dir.join("plots/c1m-p99.svg").exists()
    );

    // The report joins it: the C1M section, and T3's rows past one process's descriptors read it.
    let std_dir = root.join("standard");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tests/fixtures/results"), &std_dir);
    let report = root.join("REPORT.md");
    let status = Command::new(bin)
        .arg("report")
        .arg(&std_dir)
        .arg("--c1m")
        .arg(&dir)
        .arg("--output")
        .arg(&report)
        .status()
        .expect("run c10k report");
    assert!(status.success());
    let md = std::fs::read_to_string(&report).expect("REPORT.md");
    assert!(md.contains("### One million connections (C1M)") && md.contains("c1m/plots/c1m-memory.svg"), "{md}");
    // A ladder of 3,000 does not reach T3's rows: they say so, with the reason.
    assert!(
        md.contains("not measured (the C1M ladder of tokio did not reach 100,000 (largest step run: 3,000))"),
        "{md}"
    );
    assert!(md.contains("read from the C1M run (c1m)"), "{md}");
    let _ = std::fs::remove_dir_all(&root);
}
