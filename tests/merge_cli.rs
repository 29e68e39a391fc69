//! `c10k load --shard I/N --start-at T --hlog` and `c10k merge`, with the real
//! binary against an in-test HTTP server: three shards make exactly the load
//! asked for, their logs are standard interval logs, the merge adds them
//! exactly (the merged p99 is the p99 of one histogram fed every shard's
//! samples), and bad inputs are refused with the reason.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use loadgen::json_report::Report;
use proto::{Proto, Session, Work};

const BIN: &str = env!("CARGO_BIN_EXE_c10k");

fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn serve(mut stream: TcpStream) {
    let mut session = Session::new(Proto::Http, Work::default());
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return;
        }
        session.receive(&buf[..n]);
        let out = session.pending_output().to_vec();
        if stream.write_all(&out).is_err() {
            return;
        }
        session.consume_output(out.len());
    }
}

fn c10k(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run c10k")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("c10k-merge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn three_shards_add_up_and_merge_exactly() {
    let addr = server();
    let d = dir("shards");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as u64;
    let start = (now_ms + 1_500).to_string();
    let url = format!("http://{addr}/");
    let children: Vec<_> = (0..3)
        .map(|i| {
            let shard = format!("{i}/3");
            let (hlog, json) = (d.join(format!("s{i}.hlog")), d.join(format!("s{i}.json")));
            Command::new(BIN)
                .args(["load", &url, "--conns", "10", "--rate", "1000", "--duration", "1s", "-t", "1", "-q"])
                .args(["--shard", &shard, "--start-at", &start, "--hlog", p(&hlog), "--json", p(&json)])
                .spawn()
                .expect("start a shard")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().expect("shard ends").success());
    }
    let reports: Vec<Report> = (0..3)
        .map(|i| {
            serde_json::from_str(&std::fs::read_to_string(d.join(format!("s{i}.json"))).expect("json")).expect("report")
        })
        .collect();
    // Shards of 10 connections: 4, 3, 3, and the rate split the same way.
    let targets: Vec<u64> = reports.iter().map(|r| r.connections.target).collect();
    assert_eq!(targets, vec![4, 3, 3]);
    let scheduled: u64 = reports.iter().map(|r| r.open_loop.as_ref().expect("open loop").scheduled).sum();
    assert_eq!(scheduled, 1000, "the shards' schedules add up to --rate over the window");
    // Every log is a standard interval log: the crate's reader takes every line.
    let log = std::fs::read_to_string(d.join("s0.hlog")).expect("hlog");
    assert!(log.contains("#[StartTime: ") && log.contains("#[BaseTime: ") && log.contains("Tag=first_byte,"));
    let entries: Vec<_> = IntervalLogIterator::new(log.as_bytes()).collect::<Result<_, _>>().expect("parses");
    assert!(entries.iter().filter(|e| matches!(e, LogEntry::Interval(_))).count() >= 4 * 2);
    let start_s = start.parse::<f64>().expect("ms") / 1000.0;
    assert!(entries.iter().any(|e| matches!(e, LogEntry::StartTime(t) if (t.as_secs_f64() - start_s).abs() < 1e-3)));

    let logs: Vec<PathBuf> = (0..3).map(|i| d.join(format!("s{i}.hlog"))).collect();
    let merged_json = d.join("merged.json");
    let mut args = vec!["merge"];
    args.extend(logs.iter().map(|l| p(l)));
    args.extend(["--json", p(&merged_json)]);
    let out = c10k(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("all aligned") && summary.contains("Requests/sec:"), "{summary}");
    let merged: Report = serde_json::from_str(&std::fs::read_to_string(&merged_json).expect("json")).expect("report");
    assert_eq!(merged.totals.requests, reports.iter().map(|r| r.totals.requests).sum::<u64>());
    assert_eq!(merged.connections.target, 10);
    assert_eq!(merged.errors.total, 0);
    let mut all = loadgen::hist::histogram();
    for r in &reports {
        all.add(loadgen::hist::decode(&r.histograms.corrected).expect("hex")).expect("adds");
    }
    let p99_us = all.value_at_quantile(0.99) as f64 / 1_000.0;
    assert_eq!(merged.latency.corrected.p99_us, p99_us);
    assert_eq!(merged.latency.corrected.count, all.len());

    // Refused: the same log twice, a truncated log, another precision, not a c10k log.
    let err = |args: &[&str]| {
        let out = c10k(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        text(&out.stderr)
    };
    assert!(err(&["merge", p(&logs[0]), p(&logs[0])]).contains("same process"));
    let cut = d.join("cut.hlog");
    std::fs::write(&cut, &log[..log.len() / 2]).expect("write");
    assert!(err(&["merge", p(&logs[1]), p(&cut)]).contains("truncated"));
    let whole_lines = &log[..log[..log.len() / 2].rfind('\n').expect("lines") + 1];
    std::fs::write(&cut, whole_lines).expect("write");
    assert!(err(&["merge", p(&cut)]).contains("truncated"));
    let other = d.join("other.hlog");
    std::fs::write(&other, log.replace("\"significant_digits\":3", "\"significant_digits\":2")).expect("write");
    assert!(err(&["merge", p(&logs[1]), p(&other)]).contains("significant digits"));
    std::fs::write(&other, "Tag=x,0.0,1.0,1.0,AAAA\n").expect("write");
    assert!(err(&["merge", p(&other)]).contains("not a c10k load interval log"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_start_time_in_the_past_is_refused() {
    let out = c10k(&["load", "http://127.0.0.1:9/", "--start-at", "1000", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--start-at 1000 leaves no time"), "{}", text(&out.stderr));
    let out = c10k(&["load", "http://127.0.0.1:9/", "--shard", "3/3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("from 0 to 2"), "{}", text(&out.stderr));
}
