//! The processes of a C1M step or a T5 run: a server started and awaited, a
//! load generator started and collected, each a [`child::Spawned`] (own process
//! group, pinned, in its cgroup, killed with the runner). Nothing here panics on
//! a misbehaving child; every failure is returned as text for the record.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::record::LoadFigures;
use crate::child::{self, Launch, Spawned};
use crate::results::ServerStats;
use crate::runner::{parse_ready, parse_stats, Ready};
use crate::signals;

/// How a program is started: a binary, and arguments put before the `c10k`
/// subcommand (`ip netns exec NS c10k ...` runs it in a namespace).
#[derive(Clone, Debug)]
pub struct Prefix {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Prefix {
    /// `c10k` itself.
    pub fn direct(bin: &Path) -> Prefix {
        Prefix { program: bin.to_path_buf(), args: Vec::new() }
    }

    /// `ip netns exec NS c10k`: `ip` enters the namespace and execs `c10k` in
    /// place (same pid, same CPU mask, limits and cgroup set before exec).
    pub fn in_netns(ip: &Path, ns: &str, bin: &Path) -> Prefix {
        Prefix {
            program: ip.to_path_buf(),
            args: vec!["netns".into(), "exec".into(), ns.into(), bin.display().to_string()],
        }
    }
}

/// A started server.
pub struct Server {
    pub proc: Spawned,
    pub ready_line: String,
    pub ready: Ready,
    pub ready_s: f64,
}

/// Start `prefix serve args...` and wait for its ready line (at most `timeout`).
/// `Err` holds why, with the tail of its stderr.
pub fn start_server(
    prefix: &Prefix,
    args: &[String],
    cpus: &[usize],
    nofile: Option<u64>,
    cgroup: &[std::ffi::CString],
    timeout: Duration,
) -> Result<Server, String> {
    let started = Instant::now();
    let mut all = prefix.args.clone();
    all.push("serve".into());
    all.extend(args.iter().cloned());
    let launch = Launch { bin: &prefix.program, args: all, cpus, nofile, cgroup };
    let mut proc = child::spawn(&launch).map_err(|e| format!("cannot start the server: {e}"))?;
    let deadline = started + timeout;
    loop {
        let why = if signals::interrupted() {
            Some("interrupted".to_string())
        } else if Instant::now() >= deadline {
            Some(format!("no ready line in {timeout:?}"))
        } else {
            match proc.next_line(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(ready) = parse_ready(&line) {
                        let ready_s = started.elapsed().as_secs_f64();
                        return Ok(Server { proc, ready_line: line, ready, ready_s });
                    }
                    None
                }
                Err(closed) if closed || proc.exited().is_some() => {
                    let _ = proc.wait_for(Duration::from_secs(1));
                    Some(format!("the server exited before its ready line ({})", child::describe(proc.exited())))
                }
                Err(_) => None,
            }
        };
        if let Some(why) = why {
            proc.kill_all(&[]);
            let _ = proc.wait_for(Duration::from_secs(2));
            let (_, tail) = proc.finish();
            return Err(if tail.is_empty() { why } else { format!("{why}: {}", last_line(&tail)) });
        }
    }
}

/// What a stopped server said.
pub struct Stopped {
    pub stats: Option<ServerStats>,
    pub exit: String,
    pub stderr_tail: String,
}

/// SIGTERM, wait `grace`, SIGKILL the group; parse the stats line.
pub fn stop_server(server: Server, grace: Duration) -> Stopped {
    let mut proc = server.proc;
    let (status, killed) = proc.stop(grace, &[]);
    let mut exit = child::describe(status);
    if killed {
        exit.push_str(" (did not stop on SIGTERM within the grace period)");
    }
    let (lines, stderr_tail) = proc.finish();
    Stopped { stats: lines.iter().find_map(|l| parse_stats(l)), exit, stderr_tail }
}

/// A running load generator writing its JSON report to `json`.
pub struct Load {
    pub proc: Spawned,
    pub json: PathBuf,
    pub started: Instant,
}

/// Start `prefix load args... --json FILE -q`.
pub fn start_load(
    prefix: &Prefix,
    args: &[String],
    json: &Path,
    cpus: &[usize],
    cgroup: &[std::ffi::CString],
) -> Result<Load, String> {
    let _ = std::fs::remove_file(json);
    let mut all = prefix.args.clone();
    all.push("load".into());
    all.extend(args.iter().cloned());
    all.extend(["--json".into(), json.display().to_string(), "-q".into()]);
    let launch = Launch { bin: &prefix.program, args: all, cpus, nofile: None, cgroup };
    let proc = child::spawn(&launch).map_err(|e| format!("cannot start the load generator: {e}"))?;
    Ok(Load { proc, json: json.to_path_buf(), started: Instant::now() })
}

/// What a load generator left.
#[derive(Default)]
pub struct LoadResult {
    pub figures: Option<LoadFigures>,
    pub raw: Option<serde_json::Value>,
    pub exit: String,
    pub stderr_tail: String,
    /// Why there is no report, or that the time limit cut it short.
    pub problem: Option<String>,
    pub interrupted: bool,
}

impl Load {
    /// True once the process has exited.
    pub fn done(&mut self) -> bool {
        self.proc.exited().is_some()
    }

    /// Wait until it exits, `deadline` passes (SIGINT: it ends early and still
    /// writes its report; SIGKILL 5 s later) or Ctrl-C (killed).
    pub fn collect(mut self, deadline: Instant) -> LoadResult {
        let mut cut = false;
        let mut interrupted = false;
        let status = loop {
            if let Some(s) = self.proc.exited() {
                break Some(s);
            }
            if signals::interrupted() {
                interrupted = true;
                self.proc.kill_all(&[]);
                break self.proc.wait_for(Duration::from_secs(2));
            }
            if Instant::now() >= deadline {
                cut = true;
                let _ = kill(Pid::from_raw(self.proc.pid()), Signal::SIGINT);
                let status = self.proc.wait_for(Duration::from_secs(5));
                self.proc.kill_all(&[]);
                break status.or_else(|| self.proc.wait_for(Duration::from_secs(2)));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let exit = child::describe(status);
        let (_, stderr_tail) = self.proc.finish();
        let (figures, raw, parse_error) = read_report(&self.json);
        let _ = std::fs::remove_file(&self.json);
        let problem = match (cut, parse_error) {
            (true, _) => Some(format!(
                "stopped at its time limit after {:.0} s{}",
                self.started.elapsed().as_secs_f64(),
                if figures.is_some() { "; its partial report is kept" } else { "" }
            )),
            (false, Some(e)) => Some(format!("load generator {exit}, no report ({e}): {}", last_line(&stderr_tail))),
            (false, None) => None,
        };
        LoadResult { figures, raw, exit, stderr_tail, problem, interrupted }
    }
}

/// The load generator's JSON: its figures and the whole document, or why not.
pub fn read_report(path: &Path) -> (Option<LoadFigures>, Option<serde_json::Value>, Option<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (None, None, Some(format!("read {}: {e}", path.display()))),
    };
    let raw: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return (None, None, Some(format!("parse: {e}"))),
    };
    match serde_json::from_value::<loadgen::json_report::Report>(raw.clone()) {
        Ok(r) => (Some(LoadFigures::from_report(&r)), Some(raw), None),
        Err(e) => (None, Some(raw), Some(format!("not a load report: {e}"))),
    }
}

/// The last non-empty line of a stderr tail.
pub fn last_line(tail: &str) -> String {
    tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string()
}

/// Sleep until `at`, waking every 100 ms for Ctrl-C; false when interrupted.
pub fn sleep_until(at: Instant) -> bool {
    while Instant::now() < at {
        if signals::interrupted() {
            return false;
        }
        std::thread::sleep((at - Instant::now()).min(Duration::from_millis(100)));
    }
    !signals::interrupted()
}
