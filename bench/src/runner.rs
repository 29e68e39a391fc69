//! Run one cell: start `c10k serve` pinned to the server CPUs, wait for its
//! ready line, sample its process tree, run `c10k load` pinned to the client
//! CPUs, stop the server (SIGTERM, then SIGKILL of its group), and assemble the
//! [`CellRecord`]. Nothing here panics on a misbehaving child: every failure
//! becomes an [`Outcome`] with its reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::cgroup::CgSample;
use crate::cgroup::{self, Accounting, Cgroup};
use crate::child::{self, Launch, Spawned};
use crate::digest;
use crate::matrix::Cell;
use crate::monitor::{self, Monitor};
use crate::results::{CellRecord, CpuCheck, Derived, LoadSummary, Outcome, ServerRun, ServerStats, SCHEMA};
use crate::signals;

/// How long a server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Where and how cells run.
#[derive(Clone, Debug)]
pub struct RunCtx {
    /// The `c10k` binary.
    pub bin: PathBuf,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// Scratch folder for the load generator's JSON.
    pub scratch: PathBuf,
    /// How long a server may take to print its ready line ([`READY_TIMEOUT`]).
    pub ready_timeout: Duration,
    /// Between SIGTERM and SIGKILL ([`STOP_GRACE`]).
    pub stop_grace: Duration,
    /// Start each server in a cgroup of its own ([`crate::cgroup`]); else `/proc` sampling only.
    pub cgroups: bool,
}

impl RunCtx {
    /// A context with the default timeouts.
    pub fn new(bin: PathBuf, server_cpus: Vec<usize>, client_cpus: Vec<usize>, scratch: PathBuf) -> RunCtx {
        RunCtx {
            bin,
            server_cpus,
            client_cpus,
            scratch,
            ready_timeout: READY_TIMEOUT,
            stop_grace: STOP_GRACE,
            cgroups: matches!(cgroup::probe(), cgroup::Accounting::Cgroup { .. }),
        }
    }
}

/// The ready line's fields.
#[derive(Debug, PartialEq)]
pub struct Ready {
    pub addr: String,
    pub pid: Option<i32>,
    pub nofile: Option<u64>,
}

/// Parse `listening 127.0.0.1:PORT model=NAME proto=http pid=N nofile=N ...`.
pub fn parse_ready(line: &str) -> Option<Ready> {
    let mut words = line.split_whitespace();
    if words.next()? != "listening" {
        return None;
    }
    let addr = words.next()?.to_string();
    let mut ready = Ready { addr, pid: None, nofile: None };
    for kv in words {
        match kv.split_once('=') {
            Some(("pid", v)) => ready.pid = v.parse().ok(),
            Some(("nofile", v)) => ready.nofile = v.parse().ok(),
            _ => {}
        }
    }
    Some(ready)
}

/// Parse a `stats {json}` line.
pub fn parse_stats(line: &str) -> Option<ServerStats> {
    serde_json::from_str(line.strip_prefix("stats ")?).ok()
}

/// `None` when the run was interrupted (Ctrl-C) during the cell: nothing to record.
pub fn run_cell(ctx: &RunCtx, cell: &Cell) -> Option<CellRecord> {
    let started = Instant::now();
    let mut rec = CellRecord {
        schema: SCHEMA,
        cell: cell.clone(),
        outcome: Outcome::Ok,
        server_cpus: ctx.server_cpus.clone(),
        client_cpus: ctx.client_cpus.clone(),
        started_unix_ms: crate::unix_ms(),
        wall_s: 0.0,
        server: ServerRun::default(),
        load: None,
        load_exit: None,
        load_stderr_tail: String::new(),
        load_raw: None,
        samples: Vec::new(),
        derived: Derived::default(),
    };
    // The server: `c10k serve`, or nginx for the reference row (its config written under the results folder).
    let reference = crate::reference::is_reference(&cell.server.model);
    let (bin, args, listen) = if reference {
        match nginx_launch(ctx, cell) {
            Ok(l) => l,
            Err(outcome) => {
                rec.outcome = outcome;
                return Some(rec);
            }
        }
    } else {
        let mut args = vec!["serve".to_string()];
        args.extend(cell.server_args.iter().cloned());
        (ctx.bin.clone(), args, None)
    };
    // The cgroup is removed when `group` (and the monitor's handle) drop: at every return below.
    let group = if ctx.cgroups {
        match Cgroup::create() {
            Ok(g) => {
                rec.server.accounting = Some(Accounting::Cgroup { version: g.version() });
                Some(Arc::new(g))
            }
            Err(reason) => {
                rec.server.accounting = Some(Accounting::Proc { reason });
                None
            }
        }
    } else {
        rec.server.accounting = Some(Accounting::Proc { reason: "cgroups not used in this run".into() });
        None
    };
    let join = group.as_ref().map(|g| g.join_paths().to_vec()).unwrap_or_default();
    let launch = Launch { bin: &bin, args, cpus: &ctx.server_cpus, nofile: cell.server.nofile, cgroup: &join };
    let mut server = match child::spawn(&launch) {
        Ok(s) => s,
        Err(e) => {
            rec.outcome = Outcome::Failed { stage: "ready".into(), reason: format!("cannot start the server: {e}") };
            return Some(rec);
        }
    };
    let waited = match listen {
        Some(addr) => wait_listening(&mut server, addr, ctx.ready_timeout),
        None => wait_ready(&mut server, ctx.ready_timeout),
    };
    let ready = match waited {
        Ok(r) => r,
        Err(stop) => {
            let interrupted = stop == ReadyFailure::Interrupted;
            let (status, killed) = server.stop(Duration::from_millis(500), &[]);
            let exit = child::describe(status);
            let (_, tail) = server.finish();
            if interrupted {
                return None;
            }
            rec.outcome = match stop {
                ReadyFailure::Exited => Outcome::CannotRun { reason: first_line(&tail, &exit) },
                _ => Outcome::Failed {
                    stage: "ready".into(),
                    reason: format!("no ready line in {:?}", ctx.ready_timeout),
                },
            };
            rec.server = ServerRun { exit, killed, stderr_tail: tail, ..ServerRun::default() };
            rec.wall_s = started.elapsed().as_secs_f64();
            return Some(rec);
        }
    };
    rec.server.ready_ms = Some(started.elapsed().as_millis() as u64);
    rec.server.ready_line = Some(ready.0.clone());
    rec.server.pid = ready.1.pid.or(Some(server.pid()));
    rec.server.nofile = ready.1.nofile;
    let root = server.pid();
    let baseline = monitor::sample_now(root, group.as_deref());
    // Full samples just inside both ends of the load generator's measured window.
    let now = crate::unix_ms();
    let window_start = now + (cell.warmup_s * 1000.0) as u64 + 100;
    let mut marks = vec![window_start];
    if let Some(d) = cell.duration_s {
        marks.push(window_start + ((d * 1000.0) as u64).saturating_sub(250));
    }
    let monitor = Monitor::start(root, marks, group.clone());
    let load = run_load(ctx, cell, &ready.1.addr, &mut server);
    let (mut samples, tree) = monitor.stop();
    samples.extend(monitor::sample_now(root, group.as_deref()));
    if let Some(g) = &group {
        rec.server.cpu_check = cpu_check(g);
    }
    let (status, killed) = server.stop(ctx.stop_grace, &tree);
    let server_exit = child::describe(status);
    let (lines, tail) = server.finish();
    rec.server.stats = lines.iter().find_map(|l| parse_stats(l));
    rec.server.exit = server_exit;
    rec.server.killed = killed;
    rec.server.stderr_tail = tail;
    let load = load?;
    rec.load_exit = load.exit;
    rec.load_stderr_tail = load.stderr_tail;
    rec.load_raw = load.raw;
    rec.load = load.summary;
    rec.outcome = load.outcome;
    if rec.outcome.is_ok() && killed {
        rec.server.exit.push_str(" (did not stop on SIGTERM within the grace period)");
    }
    rec.derived = digest::derive(&samples, baseline.as_ref(), rec.load.as_ref(), &ctx.server_cpus);
    rec.samples = samples;
    rec.wall_s = started.elapsed().as_secs_f64();
    Some(rec)
}

/// The server's CPU counted two independent ways at one moment: its cgroup, and
/// `/proc` (every live member's `utime + stime`, plus `cutime + cstime`: the
/// children each one has reaped). They agree when the server reaps its children.
fn cpu_check(g: &Cgroup) -> Option<CpuCheck> {
    // A child that exited but is not yet reaped has left the group and is not yet in its
    // parent's cutime: wait (bounded) while children are still exiting after the load.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = (g.pids().len(), Instant::now());
    while last.0 > 1 && Instant::now() < deadline && last.1.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(25));
        let now = g.pids().len();
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    // Children that have left the group but wait to be reaped (zombies) are in neither
    // count's reach yet: give their parents a moment (bounded) to reap them.
    let zombie_deadline = Instant::now() + Duration::from_secs(1);
    while zombies_of(&g.pids()) > 0 && Instant::now() < zombie_deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    let tick_us = 1_000_000 / procfs::ticks_per_second().max(1);
    let before = g.sample()?;
    let mut proc_us = 0;
    for pid in g.pids() {
        let Ok(stat) = procfs::process::Process::new(pid).and_then(|p| p.stat()) else { continue };
        proc_us += (stat.utime + stat.stime + stat.cutime.max(0) as u64 + stat.cstime.max(0) as u64) * tick_us;
    }
    let after = g.sample()?;
    let cg = |s: CgSample| s.cpu_user_us + s.cpu_sys_us;
    Some(CpuCheck { cgroup_us: (cg(before) + cg(after)) / 2, proc_us, members: g.pids().len() as u64 })
}

/// Zombie children of `parents` (exited, not yet reaped).
fn zombies_of(parents: &[i32]) -> usize {
    let Ok(all) = procfs::process::all_processes() else { return 0 };
    all.flatten().filter_map(|p| p.stat().ok()).filter(|st| st.state == 'Z' && parents.contains(&st.ppid)).count()
}

/// nginx's binary, arguments and address for a reference cell, or why it cannot run.
fn nginx_launch(ctx: &RunCtx, cell: &Cell) -> Result<(PathBuf, Vec<String>, Option<SocketAddr>), Outcome> {
    let Some(bin) = crate::reference::nginx_binary() else {
        return Err(Outcome::CannotRun {
            reason: "nginx is not installed (Debian: apt-get install nginx-light)".into(),
        });
    };
    let failed = |e: std::io::Error| Outcome::Failed { stage: "ready".into(), reason: format!("nginx: {e}") };
    let port = crate::reference::free_port().map_err(failed)?;
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |l| l.1);
    let workers = ctx.server_cpus.len().max(1);
    let args = crate::reference::prepare(&ctx.scratch, &cell.id, port, workers, nofile).map_err(failed)?;
    Ok((bin, args, Some(SocketAddr::from(([127, 0, 0, 1], port)))))
}

/// A server with no ready line (nginx): ready once its port accepts.
fn wait_listening(server: &mut Spawned, addr: SocketAddr, timeout: Duration) -> Result<(String, Ready), ReadyFailure> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if signals::interrupted() {
            return Err(ReadyFailure::Interrupted);
        }
        if server.exited().is_some() {
            return Err(ReadyFailure::Exited);
        }
        if crate::reference::wait_listening(addr, Duration::from_millis(200)) {
            let line = format!("listening {addr} model=nginx pid={}", server.pid());
            return Ok((line, Ready { addr: addr.to_string(), pid: Some(server.pid()), nofile: None }));
        }
    }
    Err(ReadyFailure::Timeout)
}

fn first_line(tail: &str, exit: &str) -> String {
    let msg = error_line(tail);
    if msg.is_empty() {
        format!("server {exit} before its ready line")
    } else {
        format!("{msg} ({exit})")
    }
}

#[derive(Debug, PartialEq)]
enum ReadyFailure {
    Exited,
    Timeout,
    Interrupted,
}

fn wait_ready(server: &mut Spawned, timeout: Duration) -> Result<(String, Ready), ReadyFailure> {
    let deadline = Instant::now() + timeout;
    loop {
        if signals::interrupted() {
            return Err(ReadyFailure::Interrupted);
        }
        if Instant::now() >= deadline {
            return Err(ReadyFailure::Timeout);
        }
        match server.next_line(Duration::from_millis(50)) {
            Ok(line) => {
                if let Some(r) = parse_ready(&line) {
                    return Ok((line, r));
                }
            }
            Err(true) => {
                // stdout closed: the server exited (or is about to).
                let _ = server.wait_for(Duration::from_secs(1));
                return Err(ReadyFailure::Exited);
            }
            Err(false) => {
                if server.exited().is_some() {
                    return Err(ReadyFailure::Exited);
                }
            }
        }
    }
}

struct LoadRun {
    outcome: Outcome,
    exit: Option<String>,
    stderr_tail: String,
    raw: Option<serde_json::Value>,
    summary: Option<LoadSummary>,
}

/// Run the load generator to its end, the cell's time limit, or an interrupt (`None`).
fn run_load(ctx: &RunCtx, cell: &Cell, addr: &str, server: &mut Spawned) -> Option<LoadRun> {
    let json = ctx.scratch.join(format!("load-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&json);
    let mut args = vec!["load".to_string(), "--addr".into(), addr.into()];
    args.extend(cell.load_args.iter().cloned());
    args.extend(["--json".into(), json.display().to_string()]);
    let launch = Launch { bin: &ctx.bin, args, cpus: &ctx.client_cpus, nofile: None, cgroup: &[] };
    let mut load = match child::spawn(&launch) {
        Ok(l) => l,
        Err(e) => {
            return Some(LoadRun {
                outcome: Outcome::Failed {
                    stage: "load".into(),
                    reason: format!("cannot start the load generator: {e}"),
                },
                exit: None,
                stderr_tail: String::new(),
                raw: None,
                summary: None,
            })
        }
    };
    let limit = Duration::from_secs_f64(cell.time_limit_s);
    let start = Instant::now();
    let mut server_died = None;
    let mut timed_out = false;
    let status = loop {
        if signals::interrupted() {
            load.kill_all(&[]);
            let _ = load.wait_for(Duration::from_secs(2));
            let _ = load.finish();
            return None;
        }
        if let Some(status) = load.exited() {
            break Some(status);
        }
        if server_died.is_none() {
            server_died = server.exited().map(|s| child::describe(Some(s)));
        }
        if start.elapsed() >= limit {
            // SIGINT first: the load generator ends its run early and still writes
            // its report, so what it saw (starved connections) is kept.
            timed_out = true;
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(load.pid()), nix::sys::signal::Signal::SIGINT);
            let status = load.wait_for(Duration::from_secs(3));
            load.kill_all(&[]);
            break status.or_else(|| load.wait_for(Duration::from_secs(2)));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let exit = child::describe(status);
    let (_, stderr_tail) = load.finish();
    let (raw, summary, parse_error) = read_load(&json);
    let _ = std::fs::remove_file(&json);
    let outcome = if timed_out {
        let kept = if summary.is_some() { "; the load generator's partial report is kept" } else { "" };
        Outcome::Failed {
            stage: "limit".into(),
            reason: format!("cell time limit of {:.0} s reached{kept}", cell.time_limit_s),
        }
    } else if let Some(died) = server_died {
        Outcome::Failed { stage: "server".into(), reason: format!("server died during the load: {died}") }
    } else if let Some(err) = parse_error {
        let msg = error_line(&stderr_tail);
        Outcome::Failed { stage: "load".into(), reason: format!("load generator {exit}, no report ({err}): {msg}") }
    } else if let Some(s) = summary.as_ref().filter(|s| s.requests == 0 && s.starved >= cell.conns) {
        Outcome::Failed {
            stage: "load".into(),
            reason: format!("every connection starved ({} of {})", s.starved, cell.conns),
        }
    } else if let Some(s) = summary.as_ref().filter(|s| s.requests == 0 && cell.duration_s.is_some()) {
        Outcome::Failed { stage: "load".into(), reason: nothing_measured(s, raw.as_ref()) }
    } else {
        Outcome::Ok
    };
    Some(LoadRun { outcome, exit: Some(exit), stderr_tail, raw, summary })
}

/// Why a window measured no request. In an open loop a server that fell behind during the
/// warm-up still answers earlier requests inside the window while every connection waits
/// on one of them, so none of the window's own requests is sent: that is saturation, not
/// silence, and the reason says so with the counts.
fn nothing_measured(s: &LoadSummary, raw: Option<&serde_json::Value>) -> String {
    let answers = (s.requests_per_sec * s.window_s).round() as u64;
    let open = raw.and_then(|r| r.get("open_loop"));
    let count = |k: &str| open.and_then(|o| o.get(k)).and_then(serde_json::Value::as_u64);
    match (count("scheduled"), count("unsent")) {
        (Some(scheduled), Some(unsent)) if answers > 0 => format!(
            "saturated before the window: {unsent} of the window's {scheduled} scheduled requests could not be \
             sent (every connection still awaited an earlier answer); {answers} answers to warm-up requests \
             arrived in the window, so no latency of the window's own requests exists"
        ),
        _ => format!("no request answered in the measured window ({} errors, {} starved)", s.errors, s.starved),
    }
}

/// The most telling line of a child's stderr: the last one mentioning an error, else the last.
fn error_line(tail: &str) -> String {
    let lines: Vec<&str> = tail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.to_lowercase().contains("error"))
        .or(lines.last())
        .map(|l| l.to_string())
        .unwrap_or_default()
}

fn read_load(path: &Path) -> (Option<serde_json::Value>, Option<LoadSummary>, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (None, None, Some(e.to_string())),
    };
    let raw: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return (None, None, Some(format!("not JSON: {e}"))),
    };
    if raw.get("kind").and_then(|k| k.as_str()) == Some("chat") {
        return match serde_json::from_value::<loadgen::chat::report::ChatReport>(raw.clone()) {
            Ok(report) => {
                let summary = digest::summarise_chat(&report);
                (Some(raw), Some(summary), None)
            }
            Err(e) => (Some(raw), None, Some(format!("not a chat report: {e}"))),
        };
    }
    match serde_json::from_value::<loadgen::json_report::Report>(raw.clone()) {
        Ok(report) => {
            let summary = digest::summarise(&report, &raw);
            (Some(raw), Some(summary), None)
        }
        Err(e) => {
            (Some(raw), None, Some(format!("not a loadgen report (schema {}): {e}", loadgen::json_report::SCHEMA)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_parses() {
        let r = parse_ready("listening 127.0.0.1:4242 model=reactor proto=http pid=77 nofile=20000 backend=epoll");
        assert_eq!(r, Some(Ready { addr: "127.0.0.1:4242".into(), pid: Some(77), nofile: Some(20000) }));
        assert!(parse_ready("warming up").is_none());
    }

    #[test]
    fn stats_line_parses_and_keeps_unknown_keys() {
        let s = parse_stats(r#"stats {"accepted":3,"answered":9,"new_counter":1}"#).expect("stats");
        assert_eq!((s.counters.accepted, s.counters.answered, s.counters.closed), (3, 9, 0));
        assert!(s.other.contains_key("new_counter"));
        assert!(parse_stats("stats {").is_none());
    }

    #[test]
    fn an_open_loop_behind_before_its_window_is_called_saturated() {
        // The figures of idle-active/reactor-poll/c10/i9990/r2000/rep2 in a standard run of 2026-12-03 (not kept).
        let s = LoadSummary { requests: 0, requests_per_sec: 851.333_333, window_s: 1.5, ..LoadSummary::default() };
        let raw = serde_json::json!({"open_loop": {"scheduled": 3000, "unsent": 3000}});
        let reason = nothing_measured(&s, Some(&raw));
        assert!(reason.starts_with("saturated before the window: 3000 of the window's 3000"), "{reason}");
        assert!(reason.contains("1277 answers to warm-up requests"), "{reason}");
        // Nothing answered at all, or a closed loop: the plain reason.
        let silent = LoadSummary { errors: 4, ..LoadSummary::default() };
        assert_eq!(
            nothing_measured(&silent, Some(&raw)),
            "no request answered in the measured window (4 errors, 0 starved)"
        );
        assert!(nothing_measured(&s, None).starts_with("no request answered"));
    }

    #[test]
    fn error_line_prefers_errors() {
        let tail = "error: unexpected argument '--idle-conns' found\n\nUsage: c10k load\n\nFor more information, try '--help'.";
        assert_eq!(error_line(tail), "error: unexpected argument '--idle-conns' found");
        assert_eq!(error_line("just this"), "just this");
        assert_eq!(error_line(""), "");
    }
}
