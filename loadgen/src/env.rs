//! The machine: descriptor limits, ephemeral ports, cores, kernel, and the CPU
//! time of the calling thread (for the self-check).

use std::fs;

use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};

use crate::json_report::Environment;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; returns `(soft, hard)` as
/// they are afterwards.
pub fn raise_nofile() -> (u64, u64) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return (1024, 1024);
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return (hard, hard);
    }
    (soft, hard)
}

/// Descriptors a process needs besides its connections: stdio, epoll and
/// timer descriptors per thread, files written at the end.
pub fn fd_overhead(threads: u32) -> u64 {
    32 + 4 * u64::from(threads)
}

/// `ip_local_port_range`, `[low, high]`.
pub fn ephemeral_ports() -> Option<[u32; 2]> {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u32>().ok());
    Some([it.next()??, it.next()??])
}

/// CPUs this process may run on.
pub fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Everything the report says about the machine.
pub fn environment(nofile: (u64, u64)) -> Environment {
    let uname = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_default()
    };
    let cpu_model = fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    Environment {
        hostname: field(|u| u.nodename()),
        kernel: field(|u| u.release()),
        cores: cores(),
        cpu_model,
        nofile_soft: nofile.0,
        nofile_hard: nofile.1,
        ephemeral_ports: ephemeral_ports(),
        somaxconn: read_trimmed("/proc/sys/net/core/somaxconn").and_then(|s| s.parse().ok()),
    }
}

/// CPU use of the calling thread at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadCpu {
    pub user_ns: u64,
    pub sys_ns: u64,
    /// Time runnable but waiting for a CPU (`schedstat`), if the kernel keeps it.
    pub wait_ns: u64,
}

impl ThreadCpu {
    /// Sample the calling thread.
    pub fn now() -> Self {
        let (user_ns, sys_ns) = getrusage(UsageWho::RUSAGE_THREAD)
            .map(|u| (timeval_ns(u.user_time()), timeval_ns(u.system_time())))
            .unwrap_or((0, 0));
        // schedstat: "<on-cpu ns> <run-queue wait ns> <timeslices>".
        let wait_ns = read_trimmed("/proc/thread-self/schedstat")
            .and_then(|s| s.split_whitespace().nth(1).and_then(|w| w.parse().ok()))
            .unwrap_or(0);
        ThreadCpu { user_ns, sys_ns, wait_ns }
    }

    /// CPU used since `earlier`.
    pub fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            user_ns: self.user_ns.saturating_sub(earlier.user_ns),
            sys_ns: self.sys_ns.saturating_sub(earlier.sys_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
        }
    }
}

/// Time the hypervisor ran something else while one of this process's CPUs
/// wanted to run (steal, `/proc/stat`, 10 ms ticks), summed over the CPUs the
/// process may run on; 0 where the kernel does not count it.
///
/// A thread that is stolen from is late by however long the steal lasts: this is
/// the part of the load generator's lateness that no spinning can remove.
pub fn steal_ns() -> u64 {
    use procfs::CurrentSI;
    let Ok(stat) = procfs::KernelStats::current() else { return 0 };
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
    // `cpu_time` lists the online CPUs in order; on a machine with CPUs offline the
    // index is not the CPU number, and then every CPU counts.
    let exact = stat.cpu_time.len()
        == nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_CONF).ok().flatten().map_or(0, |n| n as usize);
    stat.cpu_time
        .iter()
        .enumerate()
        .filter(|(i, _)| !exact || allowed.as_ref().is_none_or(|set| set.is_set(*i).unwrap_or(true)))
        .filter_map(|(_, t)| t.steal_ms())
        .sum::<u64>()
        * 1_000_000
}

fn timeval_ns(tv: nix::sys::time::TimeVal) -> u64 {
    tv.tv_sec() as u64 * 1_000_000_000 + tv.tv_usec() as u64 * 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_ports_are_read() {
        let (soft, hard) = raise_nofile();
        assert_eq!(soft, hard);
        let env = environment((soft, hard));
        assert!(!env.kernel.is_empty());
        assert!(env.cores >= 1);
        let [lo, hi] = env.ephemeral_ports.expect("linux has a port range");
        assert!(lo < hi);
    }

    #[test]
    fn thread_cpu_advances_with_work() {
        let before = ThreadCpu::now();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let used = ThreadCpu::now().since(before);
        assert!(used.user_ns + used.sys_ns >= 10_000_000, "{used:?}");
    }

    #[test]
    fn steal_never_goes_backwards() {
        let a = steal_ns();
        let b = steal_ns();
        assert!(b >= a, "{a} then {b}");
        assert_eq!(a % 1_000_000, 0, "whole milliseconds from ticks");
    }
}
