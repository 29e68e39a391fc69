//! Three load shards on three "hosts" against one server, as `deploy/` runs
//! them, on one machine: network namespaces of their own (one for `c10k serve`,
//! one per shard), each shard joined to the server's namespace by a veth pair
//! with its own addresses (10.201.I.1 on the server's side, 10.201.I.2 on the
//! shard's). The shards start one window with `--start-at`, write interval logs,
//! and `c10k merge` adds them: the requests add up, the merged p99 equals the
//! p99 of one histogram fed every shard's samples, and nothing failed.
//!
//! Root only (namespaces need CAP_SYS_ADMIN): elsewhere the test says why it did
//! not run and passes. Names carry this process's id; a guard deletes the
//! namespaces (and with them the veth pairs) and stops the server however the
//! test ends. No traffic leaves those namespaces.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::json_report::Report;

const BIN: &str = env!("CARGO_BIN_EXE_c10k");
const SHARDS: usize = 3;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The namespaces and the server; dropped (deleted, killed) on every exit.
struct Lab {
    namespaces: Vec<String>,
    server: Option<Child>,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("the ip command (iproute2) is not installed".into());
    }
    None
}

fn build_lab() -> Result<(Lab, String), String> {
    let id = std::process::id();
    let server_ns = format!("c10k-{id}-srv");
    let mut lab = Lab {
        namespaces: vec![server_ns.clone()],
        server: None,
        dir: std::env::temp_dir().join(format!("c10k-netns-{id}")),
    };
    std::fs::create_dir_all(&lab.dir).map_err(|e| e.to_string())?;
    ip(&["netns", "add", &server_ns])?;
    ip(&["-n", &server_ns, "link", "set", "lo", "up"])?;
    for i in 0..SHARDS {
        let ns = format!("c10k-{id}-s{i}");
        ip(&["netns", "add", &ns])?;
        lab.namespaces.push(ns.clone());
        // Interface names: at most 15 bytes.
        let (outer, inner) = (format!("c{}a{i}", id % 1_000_000), format!("c{}b{i}", id % 1_000_000));
        ip(&["-n", &server_ns, "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns])?;
        ip(&["-n", &server_ns, "addr", "add", &format!("10.201.{i}.1/24"), "dev", &outer])?;
        ip(&["-n", &ns, "addr", "add", &format!("10.201.{i}.2/24"), "dev", &inner])?;
        for (n, dev) in [(&server_ns, &outer), (&ns, &inner), (&ns, &"lo".to_string())] {
            ip(&["-n", n, "link", "set", dev, "up"])?;
        }
    }
    let mut server = Command::new("ip")
        .args(["netns", "exec", &server_ns, BIN, "serve", "--model", "reactor", "--addr", "0.0.0.0:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start the server: {e}"))?;
    let stdout = server.stdout.take().ok_or("no server stdout")?;
    lab.server = Some(server);
    let line = BufReader::new(stdout).lines().map_while(Result::ok).take(20).find(|l| l.starts_with("listening "));
    let port = line
        .as_deref()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|a| a.rsplit(':').next())
        .ok_or("the server said no port")?
        .to_string();
    Ok((lab, port))
}

#[test]
fn three_shards_in_namespaces_merge_exactly() {
    if let Some(why) = skip_reason() {
        println!("SKIPPED three_shards_in_namespaces_merge_exactly: {why}");
        return;
    }
    let (lab, port) = build_lab().unwrap_or_else(|e| panic!("setting up the namespaces: {e}"));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let start = (now_ms + 2_000).to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let shards: Vec<Child> = (0..SHARDS)
        .map(|i| {
            let (hlog, json) = (lab.dir.join(format!("s{i}.hlog")), lab.dir.join(format!("s{i}.json")));
            Command::new("ip")
                .args(["netns", "exec", &lab.namespaces[i + 1], BIN, "load"])
                .arg(format!("http://10.201.{i}.1:{port}/"))
                .args(["--conns", "30", "--rate", "3000", "--duration", "2s", "-t", "1", "-q"])
                .args(["--shard", &format!("{i}/{SHARDS}"), "--start-at", &start])
                .arg("--hlog")
                .arg(&hlog)
                .arg("--json")
                .arg(&json)
                .spawn()
                .expect("start a shard")
        })
        .collect();
    for mut shard in shards {
        loop {
            if let Some(status) = shard.try_wait().expect("wait") {
                assert!(status.success(), "a shard failed: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "a shard did not finish in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let reports: Vec<Report> = (0..SHARDS)
        .map(|i| {
            let text = std::fs::read_to_string(lab.dir.join(format!("s{i}.json"))).expect("shard JSON");
            serde_json::from_str(&text).expect("a report")
        })
        .collect();
    let merged_json = lab.dir.join("merged.json");
    let mut merge = Command::new(BIN);
    merge.arg("merge").arg("-q").arg("--json").arg(&merged_json);
    for i in 0..SHARDS {
        merge.arg(lab.dir.join(format!("s{i}.hlog")));
    }
    let out = merge.output().expect("run c10k merge");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged: Report = serde_json::from_str(&std::fs::read_to_string(&merged_json).expect("json")).expect("report");
    let requests: u64 = reports.iter().map(|r| r.totals.requests).sum();
    assert_eq!(merged.totals.requests, requests);
    assert!(requests >= 5_900, "3 shards of 3,000 req/s over 2 s: {requests}");
    for r in &reports {
        assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    }
    assert_eq!(merged.errors.total, 0);
    let mut all = loadgen::hist::histogram();
    for r in &reports {
        all.add(loadgen::hist::decode(&r.histograms.corrected).expect("hex")).expect("adds");
    }
    assert_eq!(merged.latency.corrected.count, all.len());
    assert_eq!(merged.latency.corrected.p99_us, all.value_at_quantile(0.99) as f64 / 1_000.0);
    drop(lab);
}
