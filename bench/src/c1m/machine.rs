//! What the C1M experiment reads from the kernel, as pure parsers over the text
//! of `/proc` files (tested on recorded fixtures) and thin readers around them.
//!
//! - `/proc/meminfo`: the machine's memory in use (`MemTotal - MemAvailable`, what
//!   `free` calls used) and its slab.
//! - `/proc/net/sockstat`: TCP sockets in use (both ends of every loopback
//!   connection), in TIME_WAIT, and the pages of TCP buffers.
//! - `/proc/net/netstat` (`TcpExt`) and `/proc/vmstat`: the counters that name a
//!   limit (listen queue overflows, aborts for lack of memory, OOM kills).
//! - `/proc/<pid>/task/*/schedstat`: how long each thread waited for a CPU
//!   while runnable (the run-queue wait that 104 processes on 2 cores pay).
//! - `/proc/<pid>/fd`: descriptors held, counted exactly.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The figures of `/proc/meminfo` the experiment uses, KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    pub total_kib: u64,
    pub available_kib: u64,
    pub free_kib: u64,
    pub slab_kib: u64,
    pub sunreclaim_kib: u64,
}

impl MemInfo {
    /// Memory in use as `free` reports it: total less what is available, bytes.
    pub fn used_bytes(&self) -> u64 {
        self.total_kib.saturating_sub(self.available_kib) * 1024
    }
}

/// Parse `/proc/meminfo`; a missing line reads 0 (a kernel without it).
pub fn parse_meminfo(text: &str) -> MemInfo {
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    MemInfo {
        total_kib: field("MemTotal"),
        available_kib: field("MemAvailable"),
        free_kib: field("MemFree"),
        slab_kib: field("Slab"),
        sunreclaim_kib: field("SUnreclaim"),
    }
}

/// The `sockets:` and `TCP:` lines of `/proc/net/sockstat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SockStat {
    /// Sockets of every kind in use.
    pub sockets_used: u64,
    /// TCP sockets in use (established, listening, in the accept queue, closing).
    pub tcp_inuse: u64,
    pub tcp_orphan: u64,
    pub tcp_tw: u64,
    pub tcp_alloc: u64,
    /// Pages of TCP send and receive buffers (`mem`).
    pub tcp_mem_pages: u64,
}

pub fn parse_sockstat(text: &str) -> SockStat {
    let line = |prefix: &str| -> Vec<&str> {
        text.lines().find(|l| l.starts_with(prefix)).map(|l| l.split_whitespace().collect()).unwrap_or_default()
    };
    let field = |words: &[&str], name: &str| -> u64 {
        words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let sockets = line("sockets:");
    let tcp = line("TCP:");
    SockStat {
        sockets_used: field(&sockets, "used"),
        tcp_inuse: field(&tcp, "inuse"),
        tcp_orphan: field(&tcp, "orphan"),
        tcp_tw: field(&tcp, "tw"),
        tcp_alloc: field(&tcp, "alloc"),
        tcp_mem_pages: field(&tcp, "mem"),
    }
}

/// The `TcpExt` (and `IpExt`) counters of `/proc/net/netstat`: a line of names
/// followed by a line of values per group.
pub fn parse_netstat(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((group, names)), Some((_, values))) = (names.split_once(':'), values.split_once(':')) else {
            continue;
        };
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = value.parse() {
                out.insert(format!("{group}.{name}"), v);
            }
        }
    }
    out
}

/// `name value` lines (`/proc/vmstat`).
pub fn parse_vmstat(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The counters that can name a limit, read at the start and the end of a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Connections the kernel dropped because a listener's accept queue was full.
    pub listen_overflows: u64,
    /// SYNs dropped at a listener (overflows included).
    pub listen_drops: u64,
    /// Connections aborted because TCP ran out of memory (`tcp_mem`).
    pub tcp_abort_on_memory: u64,
    /// Times TCP entered memory pressure.
    pub tcp_memory_pressures: u64,
    /// SYN cookies sent (the SYN queue overflowed).
    pub syncookies_sent: u64,
    /// Processes the kernel's OOM killer ended, machine-wide.
    pub oom_kill: u64,
}

impl Counters {
    /// Counters from the text of `/proc/net/netstat` and `/proc/vmstat`.
    pub fn parse(netstat: &str, vmstat: &str) -> Counters {
        let n = parse_netstat(netstat);
        let get = |k: &str| n.get(k).copied().unwrap_or(0);
        Counters {
            listen_overflows: get("TcpExt.ListenOverflows"),
            listen_drops: get("TcpExt.ListenDrops"),
            tcp_abort_on_memory: get("TcpExt.TCPAbortOnMemory"),
            tcp_memory_pressures: get("TcpExt.TCPMemoryPressures"),
            syncookies_sent: get("TcpExt.SyncookiesSent"),
            oom_kill: parse_vmstat(vmstat, "oom_kill").unwrap_or(0),
        }
    }

    /// This machine's (this network namespace's) counters now.
    pub fn read() -> Counters {
        Counters::parse(&read("/proc/net/netstat"), &read("/proc/vmstat"))
    }

    /// `self - before`, counter by counter (a counter never goes back; 0 if it did).
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            listen_overflows: self.listen_overflows.saturating_sub(before.listen_overflows),
            listen_drops: self.listen_drops.saturating_sub(before.listen_drops),
            tcp_abort_on_memory: self.tcp_abort_on_memory.saturating_sub(before.tcp_abort_on_memory),
            tcp_memory_pressures: self.tcp_memory_pressures.saturating_sub(before.tcp_memory_pressures),
            syncookies_sent: self.syncookies_sent.saturating_sub(before.syncookies_sent),
            oom_kill: self.oom_kill.saturating_sub(before.oom_kill),
        }
    }
}

/// `/proc/<pid>/task/<tid>/schedstat`: time on a CPU, time waiting on a run queue, ns.
pub fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut w = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((w.next()??, w.next()??))
}

/// Run-queue wait summed over every thread of `pids`, with the threads counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunQueue {
    pub on_cpu_ns: u64,
    pub wait_ns: u64,
    pub threads: u64,
}

/// Every thread of `pids` (a thread that exits between listing and reading is skipped).
pub fn run_queue(pids: &[i32]) -> RunQueue {
    let mut rq = RunQueue::default();
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for t in tasks.flatten() {
            if let Some((on, wait)) = parse_schedstat(&read_path(&t.path().join("schedstat"))) {
                rq.on_cpu_ns += on;
                rq.wait_ns += wait;
                rq.threads += 1;
            }
        }
    }
    rq
}

/// Descriptors open in `pids`, counted from `/proc/<pid>/fd` (exact, no sampling).
pub fn fds(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok()).map(|d| d.count() as u64).sum()
}

fn read_path(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A file's text, empty when unreadable.
pub fn read(path: &str) -> String {
    read_path(Path::new(path))
}

/// `uptime`'s load averages (`/proc/loadavg`'s first three fields), for the record.
pub fn loadavg() -> String {
    read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24681368 kB\nMemFree:        11534100 kB\nMemAvailable:   24181240 kB\n\
        Buffers:           10452 kB\nSlab:             422408 kB\nSReclaimable:     367020 kB\nSUnreclaim:        55388 kB\n";

    #[test]
    fn meminfo_fields() {
        let m = parse_meminfo(MEMINFO);
        assert_eq!((m.total_kib, m.available_kib, m.slab_kib, m.sunreclaim_kib), (24681368, 24181240, 422408, 55388));
        assert_eq!(m.used_bytes(), (24681368 - 24181240) * 1024);
        assert_eq!(parse_meminfo(""), MemInfo::default());
    }

    #[test]
    fn sockstat_fields() {
        // Recorded at 100,000 loopback connections (both ends) on the C1M machine.
        let t = "sockets: used 200020\nTCP: inuse 200007 orphan 0 tw 1 alloc 200008 mem 37\nUDP: inuse 0 mem 0\n";
        let s = parse_sockstat(t);
        assert_eq!(
            (s.sockets_used, s.tcp_inuse, s.tcp_tw, s.tcp_alloc, s.tcp_mem_pages),
            (200020, 200007, 1, 200008, 37)
        );
        assert_eq!(parse_sockstat("garbage"), SockStat::default());
    }

    #[test]
    fn netstat_pairs_names_with_values() {
        let t = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPAbortOnMemory\nTcpExt: 3 17 19 0\n\
                 IpExt: InNoRoutes InOctets\nIpExt: 0 123456\n";
        let n = parse_netstat(t);
        assert_eq!(n.get("TcpExt.ListenOverflows"), Some(&17));
        assert_eq!(n.get("IpExt.InOctets"), Some(&123456));
        let c = Counters::parse(t, "nr_free_pages 5\noom_kill 2\n");
        assert_eq!((c.listen_overflows, c.listen_drops, c.syncookies_sent, c.oom_kill), (17, 19, 3, 2));
        let later = Counters { listen_overflows: 20, oom_kill: 2, ..c.clone() };
        assert_eq!(later.since(&c).listen_overflows, 3);
        assert_eq!(c.since(&later).listen_overflows, 0, "never negative");
    }

    #[test]
    fn schedstat_and_own_threads() {
        assert_eq!(parse_schedstat("1234 5678 9\n"), Some((1234, 5678)));
        assert_eq!(parse_schedstat(""), None);
        let me = run_queue(&[std::process::id() as i32]);
        assert!(me.threads >= 1 && me.on_cpu_ns > 0, "{me:?}");
        assert!(fds(&[std::process::id() as i32]) >= 3);
    }
}
