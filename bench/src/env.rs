//! The environment of a run, as measured: `env.json`. The report prints it
//! before any number.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::matrix::Profile;

/// `env.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvInfo {
    pub schema: u32,
    pub hostname: String,
    pub cpu_model: String,
    /// Online CPUs of the machine.
    pub cores: usize,
    /// CPUs the runner itself may use (its affinity when it started).
    pub allowed_cpus: Vec<usize>,
    pub kernel: String,
    pub os: String,
    pub mem_total_bytes: u64,
    /// RLIMIT_NOFILE of the runner (servers and load generator raise their soft limit to the hard one).
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub somaxconn: Option<u64>,
    pub tcp_rmem: String,
    pub tcp_wmem: String,
    pub tcp_mem: String,
    pub ip_local_port_range: String,
    pub tcp_tw_reuse: String,
    pub pid_max: Option<u64>,
    pub threads_max: Option<u64>,
    /// `vm.max_map_count`: each thread's stack and guard are mappings, so it caps threads per process.
    #[serde(default)]
    pub max_map_count: Option<u64>,
    pub clocksource: String,
    pub c10k_version: String,
    pub rustc: String,
    pub git_commit: String,
    pub git_dirty: bool,
    /// The binary that ran `serve` and `load`.
    pub binary: String,
    pub profile: Option<Profile>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    /// `--threads` handed to the load generator.
    pub client_threads: usize,
    /// The CPUs the runner (and its monitor thread) ran on.
    pub runner_cpus: Vec<usize>,
    pub planned_cells: usize,
    pub planned_s: f64,
    pub started_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    /// True when Ctrl-C stopped the run before the plan was done.
    pub interrupted: bool,
    /// The command line of the run.
    pub command: Vec<String>,
    /// How each server's CPU and memory were accounted: a cgroup per server, or
    /// `/proc` sampling (with why no cgroup could be made).
    #[serde(default)]
    pub accounting: Option<crate::cgroup::Accounting>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}

fn read_u64(path: &str) -> Option<u64> {
    read(path).parse().ok()
}

fn run(cmd: &str, args: &[&str], dir: Option<&Path>) -> String {
    let mut c = Command::new(cmd);
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else { return Vec::new() };
    (0..nix::sched::CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).collect()
}

/// Measure the machine now. `repo` is where to ask git for the commit.
pub fn collect(repo: &Path, binary: &Path) -> EnvInfo {
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let meminfo = read("/proc/meminfo");
    let mem_total_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| l.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_string())
        .unwrap_or_default();
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap_or((0, 0));
    let uname = nix::sys::utsname::uname().ok();
    // Uncommitted changes to the code; results and the report are outputs, not code.
    let status = run(
        "git",
        &["status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", ":(exclude)REPORT.md"],
        Some(repo),
    );
    EnvInfo {
        schema: crate::results::SCHEMA,
        hostname: crate::hostname(),
        cpu_model,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).max(online_cpus()),
        allowed_cpus: allowed_cpus(),
        kernel: uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
        os,
        mem_total_bytes: mem_total_kib * 1024,
        nofile_soft: soft,
        nofile_hard: hard,
        somaxconn: read_u64("/proc/sys/net/core/somaxconn"),
        tcp_rmem: read("/proc/sys/net/ipv4/tcp_rmem").split_whitespace().collect::<Vec<_>>().join(" "),
        tcp_wmem: read("/proc/sys/net/ipv4/tcp_wmem").split_whitespace().collect::<Vec<_>>().join(" "),
        tcp_mem: read("/proc/sys/net/ipv4/tcp_mem").split_whitespace().collect::<Vec<_>>().join(" "),
        ip_local_port_range: read("/proc/sys/net/ipv4/ip_local_port_range")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("-"),
        tcp_tw_reuse: read("/proc/sys/net/ipv4/tcp_tw_reuse"),
        pid_max: read_u64("/proc/sys/kernel/pid_max"),
        threads_max: read_u64("/proc/sys/kernel/threads-max"),
        max_map_count: read_u64("/proc/sys/vm/max_map_count"),
        clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        c10k_version: env!("CARGO_PKG_VERSION").to_string(),
        rustc: run("rustc", &["--version"], None),
        git_commit: run("git", &["rev-parse", "HEAD"], Some(repo)),
        git_dirty: !status.is_empty(),
        binary: binary.display().to_string(),
        started_unix_ms: crate::unix_ms(),
        command: std::env::args().collect(),
        ..EnvInfo::default()
    }
}

fn online_cpus() -> usize {
    // "0-1" or "0,2-3"
    read("/sys/devices/system/cpu/online")
        .split(',')
        .filter_map(|r| {
            let mut it = r.split('-').filter_map(|x| x.parse::<usize>().ok());
            let a = it.next()?;
            Some(it.next().map_or(1, |b| b + 1 - a))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_this_machine() {
        let e = collect(Path::new("."), Path::new("/bin/true"));
        assert!(e.cores >= 1);
        assert!(!e.kernel.is_empty());
        assert!(!e.allowed_cpus.is_empty());
        assert!(e.nofile_soft > 0);
    }
}
