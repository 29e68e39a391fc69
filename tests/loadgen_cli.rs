//! `c10k load` as a user runs it: the real binary, its outputs (summary, JSON,
//! hgrm), exit statuses, `--procs` merging, and children dying with the parent.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use loadgen::json_report::Report;
use proto::{Proto, Session, Work};

const BIN: &str = env!("CARGO_BIN_EXE_c10k");

/// A thread-per-connection HTTP server on 127.0.0.1:0 that answers (or, when
/// `silent`, reads and never answers). Lives until the test process ends.
fn server(silent: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(stream, silent));
        }
    });
    addr
}

fn serve(mut stream: TcpStream, silent: bool) {
    let mut session = Session::new(Proto::Http, Work::default());
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if silent {
            continue;
        }
        session.receive(&buf[..n]);
        let out = session.pending_output().to_vec();
        if stream.write_all(&out).is_err() {
            return;
        }
        session.consume_output(out.len());
    }
}

fn load(args: &[&str]) -> Output {
    Command::new(BIN).arg("load").args(args).output().expect("run c10k load")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("c10k-loadgen-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn summary_json_and_hgrm() {
    let addr = server(false);
    let dir = temp_dir("outputs");
    let (json, hgrm) = (dir.join("run.json"), dir.join("run.hgrm"));
    let out = load(&[
        "--addr",
        &addr,
        "--conns",
        "8",
        "--requests",
        "800",
        "-t",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    for needle in ["Requests/sec:", "99.990%", "800 requests in", "Errors: none", "8 connections"] {
        assert!(summary.contains(needle), "no {needle:?} in\n{summary}");
    }
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("a loadgen report");
    assert_eq!(report.schema, loadgen::json_report::SCHEMA);
    assert_eq!(report.totals.requests, 800);
    assert!(report.env.nofile_soft > 0 && !report.env.kernel.is_empty());
    let hgrm = std::fs::read_to_string(&hgrm).unwrap();
    assert!(hgrm.trim_start().starts_with("Value"), "{hgrm}");
    assert!(hgrm.contains("#[Max     =") && hgrm.contains("Total count    =          800]"), "{hgrm}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn errors_exit_non_zero_with_a_clear_message() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = load(&["--addr", &addr, "--conns", "10", "--duration", "300ms", "-t", "1", "--json", "-"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("connect to {addr}")), "{err}");
    assert!(err.to_lowercase().contains("connection refused") && err.contains("(10 of 10 connections)"), "{err}");
    let report: Report = serde_json::from_slice(&out.stdout).expect("--json - writes the report to stdout");
    assert!(!report.passed && report.errors.connect_refused >= 10);
    // The same run passes when any error rate is allowed.
    let out = load(&["--addr", &addr, "--conns", "2", "--duration", "200ms", "--max-error-rate", "1", "-q"]);
    assert!(out.status.success());
}

#[test]
fn too_many_connections_for_one_process_suggests_procs() {
    let out = load(&["--addr", "127.0.0.1:9", "--conns", "5000000", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("--procs"), "{err}");
}

#[test]
fn procs_merge_exactly() {
    let addr = server(false);
    // The children run the engine the parent was given.
    for engine in ["mio", "uring"] {
        let args = ["--conns", "12", "--requests", "1200", "--procs", "3", "-t", "1", "--engine", engine];
        let out = load(&[&["--addr", &addr, "--json", "-", "-q"][..], &args].concat());
        assert!(out.status.success(), "{engine}: {}", text(&out.stderr));
        let r: Report = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r.config.settings.engine.to_string(), engine);
        assert_eq!(r.config.settings.procs, 3);
        assert_eq!(r.client.threads, 3);
        assert_eq!(r.totals.requests, 1200);
        assert_eq!(r.latency.corrected.count, 1200);
        assert_eq!(r.connections.established, 12);
        assert_eq!(r.errors.total, 0);
    }
}

fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| s.rsplit(") ").next().map(str::to_string))
                .and_then(|rest| rest.split_whitespace().nth(1).and_then(|pp| pp.parse::<u32>().ok()))
                == Some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit(") ").next().unwrap_or("").starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn children_die_with_the_parent() {
    let addr = server(true);
    let mut parent = Command::new(BIN)
        .args(["load", "--addr", &addr, "--conns", "4", "--procs", "2", "--duration", "30s", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut kids = Vec::new();
    while kids.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        kids = children_of(parent.id());
    }
    assert_eq!(kids.len(), 2, "two load generator children");
    parent.kill().unwrap();
    parent.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while kids.iter().any(|&k| alive(k)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(kids.iter().all(|&k| !alive(k)), "children outlived their parent");
}

#[test]
fn procs_share_one_window() {
    let addr = server(false);
    let args = ["--addr", &addr, "--conns", "6", "--procs", "2", "-t", "1", "--duration", "1s", "--json", "-", "-q"];
    let out = load(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert!((r.totals.duration_s - 1.0).abs() < 1e-3, "{}", r.totals.duration_s);
    assert_eq!(r.timeline.len(), 1, "{:?}", r.timeline);
    assert_eq!(r.timeline[0].open_conns, 6);
    assert_eq!(r.timeline[0].answers, r.totals.answers_in_window);
    // A ramp loads from the start in every process: no ready/go exchange.
    let mut ramp = args.to_vec();
    ramp.extend(["--connect-rate", "1000"]);
    let out = load(&ramp);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.connections.established, 6);
    assert!(r.totals.requests > 0);
}

/// A server that serves at most `cap` connections at once and closes the others at once.
fn capped_server(cap: u64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap().to_string();
    let live = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            if live.load(Ordering::SeqCst) >= cap {
                drop(stream);
                continue;
            }
            live.fetch_add(1, Ordering::SeqCst);
            let live = live.clone();
            std::thread::spawn(move || {
                serve(stream, false);
                live.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    addr
}

#[test]
fn a_ramp_stops_at_the_bound_and_names_the_most_connections_within_it() {
    let addr = capped_server(10);
    let out = load(&[
        &format!("http://{addr}/"),
        "--conns",
        "4:16:4",
        "--step",
        "300ms",
        "--until-error-rate",
        "0",
        "-t",
        "1",
        "--json",
        "-",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = text(&out.stderr);
    assert!(lines.contains("step   1:       4 connections") && lines.contains("within"), "{lines}");
    assert!(lines.contains("step   3:      12 connections") && lines.contains("PAST THE BOUND"), "{lines}");
    assert!(lines.contains("Most connections held within the bound: 8"), "{lines}");
    let ramp: loadgen::ramp::RampReport = serde_json::from_slice(&out.stdout).expect("a ramp report");
    assert_eq!(ramp.most_conns_within, Some(8));
    assert_eq!(ramp.steps.iter().map(|s| s.conns).collect::<Vec<_>>(), vec![4, 8, 12], "stops at the first step past");
    assert_eq!(ramp.steps[1].report.connections.established, 8);
    // A bound on p99 that every step keeps: all steps run, the last is the most.
    let addr = server(false);
    let out = load(&["--addr", &addr, "--conns", "2:6:2", "--step", "200ms", "--until-p99", "1s", "-t", "1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Most connections held within the bound: 6"), "{}", text(&out.stdout));
    // A ramp without a bound, or with --rate, is refused before anything is sent.
    let out = load(&["--addr", &addr, "--conns", "2:6:2"]);
    assert!(out.status.code() == Some(2) && text(&out.stderr).contains("needs its bound"), "{}", text(&out.stderr));
    let out = load(&["--addr", &addr, "--conns", "2:6:2", "--until-p99", "1s", "--rate", "10"]);
    assert!(text(&out.stderr).contains("--rate (a ramp is closed loop) cannot be used"), "{}", text(&out.stderr));
}
