//! The server's resource monitor: samples the whole process tree (the server,
//! its threads, and every descendant process) from `/proc` every 100 ms, plus
//! the kernel's TCP memory from `/proc/net/sockstat`.
//!
//! Reading `/proc` for 10,000 threads or processes is not free, so the interval
//! stretches to four times the cost of the last sample: the monitor never takes
//! more than about a fifth of a CPU, and each sample records its own cost.
//! Costly figures (descriptors, PSS, per-thread context switches) are read in
//! *full* samples only: every half second and at the marks the runner asks for
//! (just inside the load generator's measured window, at both ends).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cgroup::{CgSample, Cgroup};

/// Nominal interval between samples.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Most time between two full samples (descriptors, PSS, context switches).
pub const FULL_EVERY: Duration = Duration::from_millis(500);
/// Up to this many threads a full sample also splits voluntary and involuntary switches.
pub const SPLIT_TASKS: u64 = 256;

/// One sample of the server's process tree. Every sample reads `stat` of each
/// process (cheap); a *full* sample also counts descriptors, reads PSS and sums
/// the context switches of every thread, which costs more with 10,000 threads,
/// so it is taken every [`FULL_EVERY`] and at the requested marks only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Wall clock, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Processes in the tree (the server and its descendants).
    pub procs: u64,
    /// Threads over the tree.
    pub threads: u64,
    /// Resident set size summed over the tree (shared pages counted in every process).
    pub rss_bytes: u64,
    /// Virtual size summed over the tree.
    pub vsz_bytes: u64,
    /// User CPU of the tree, including reaped children, microseconds since the server started.
    pub cpu_user_us: u64,
    /// System CPU of the tree, as above.
    pub cpu_sys_us: u64,
    /// `/proc/net/sockstat` TCP `inuse` (whole network namespace: client sockets too).
    pub tcp_inuse: u64,
    /// `/proc/net/sockstat` TCP `mem`, in bytes: socket buffer memory of both ends.
    pub tcp_mem_bytes: u64,
    /// `/proc/net/sockstat` TCP `tw` (TIME_WAIT sockets).
    pub tcp_tw: u64,
    /// `/proc/meminfo` `SUnreclaim`: kernel slab memory, machine-wide (socket objects live there).
    pub slab_unreclaimable_bytes: u64,
    /// `/proc/stat`: busy time of each CPU of the machine (user, nice, system, steal),
    /// microseconds since boot, indexed by CPU number. With the tree's own CPU time it
    /// tells how much *other* work ran on the server's CPUs (a noisy neighbour).
    #[serde(default)]
    pub cpu_busy_us: Vec<u64>,
    /// Full samples of multi-process trees only: proportional set size summed over
    /// the tree (pages shared between the processes split among them).
    pub pss_bytes: Option<u64>,
    /// Full samples only: anonymous memory (heap, stacks; not the binary's file
    /// pages, which the load generator's process shares). Multi-process trees: the
    /// anonymous part of PSS (copy-on-write pages split); one process: its
    /// resident anonymous pages (`statm`), which reads no memory map: walking the
    /// map of a 10,000-thread process would stall its thread creation.
    pub pss_anon_bytes: Option<u64>,
    /// Full samples only: open descriptors over the tree.
    pub fds: Option<u64>,
    /// Full samples only: distinct sockets open in the tree (a listener inherited by
    /// every child counts once): connections held, plus listeners.
    pub sockets: Option<u64>,
    /// Full samples only: times a thread of the tree was switched in, summed over
    /// every live thread (`schedstat`): voluntary plus involuntary switches.
    pub ctx_switches: Option<u64>,
    /// Full samples of trees of at most [`SPLIT_TASKS`] threads: voluntary switches (`status`).
    pub ctx_voluntary: Option<u64>,
    /// As above, involuntary switches.
    pub ctx_involuntary: Option<u64>,
    /// How long taking this sample took, microseconds.
    pub cost_us: u64,
    /// The server's cgroup at this moment, when it has one: CPU of every task that
    /// ever ran in it (children that exited included), memory and TCP buffers.
    #[serde(default)]
    pub cgroup: Option<CgSample>,
}

/// A running monitor; [`Monitor::stop`] returns its samples.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(Vec<Sample>, Vec<i32>)>>,
}

impl Monitor {
    /// Start sampling the tree rooted at `root`; take full samples at each of
    /// `marks` (ms since the epoch) besides the periodic ones.
    /// With `cgroup`, the tree is the group's members (exact, no race with `fork`) and
    /// every sample also reads the group's counters.
    pub fn start(root: i32, mut marks: Vec<u64>, cgroup: Option<Arc<Cgroup>>) -> Monitor {
        marks.sort_unstable();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || {
                let mut samples = Vec::new();
                let mut last_tree = Vec::new();
                let mut last_full: Option<(Instant, Duration)> = None;
                let mut marks = marks.into_iter().peekable();
                while !flag.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let now = crate::unix_ms();
                    // A full sample of 10,000 processes can take a second of the client's
                    // CPU: between marks, take one at most every ten times its cost.
                    let mut full = last_full.is_none_or(|(t, cost)| t.elapsed() >= FULL_EVERY.max(cost * 10));
                    while marks.peek().is_some_and(|m| *m <= now) {
                        marks.next();
                        full = true;
                    }
                    let tree = members(root, cgroup.as_deref());
                    if tree.is_empty() {
                        break;
                    }
                    let mut s = sample(&tree, full);
                    s.cgroup = cgroup.as_ref().and_then(|g| g.sample());
                    if full {
                        last_full = Some((start, start.elapsed()));
                    }
                    s.cost_us = start.elapsed().as_micros() as u64;
                    samples.push(s);
                    last_tree = tree;
                    let mut wait = INTERVAL.max(start.elapsed() * 4);
                    if let Some(m) = marks.peek() {
                        let to_mark = Duration::from_millis(m.saturating_sub(crate::unix_ms()));
                        wait = wait.min(to_mark);
                    }
                    sleep_unless(&flag, wait);
                }
                (samples, last_tree)
            })
            .ok();
        Monitor { stop, handle }
    }

    /// Stop and return the samples and the last tree seen (pids to clean up if they outlive the server).
    pub fn stop(mut self) -> (Vec<Sample>, Vec<i32>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Take a single full sample of `root`'s tree now (for a baseline), `None` if it is gone.
pub fn sample_now(root: i32, cgroup: Option<&Cgroup>) -> Option<Sample> {
    let start = Instant::now();
    let tree = members(root, cgroup);
    if tree.is_empty() {
        return None;
    }
    let mut s = sample(&tree, true);
    s.cgroup = cgroup.and_then(|g| g.sample());
    s.cost_us = start.elapsed().as_micros() as u64;
    Some(s)
}

fn sleep_unless(flag: &AtomicBool, wait: Duration) {
    let until = Instant::now() + wait;
    while !flag.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// The server's processes: its cgroup's members when it has one, else the tree
/// found from parent links. Empty once the root is gone.
fn members(root: i32, cgroup: Option<&Cgroup>) -> Vec<i32> {
    match cgroup {
        Some(g) if procfs::process::Process::new(root).is_ok() => {
            let mut pids = g.pids();
            // The root first, as in a tree walk.
            pids.sort_by_key(|p| (*p != root, *p));
            pids
        }
        Some(_) => Vec::new(),
        None => tree_of(root),
    }
}

/// `root` and all its descendants, found by a scan of every process's parent.
pub fn tree_of(root: i32) -> Vec<i32> {
    if procfs::process::Process::new(root).is_err() {
        return Vec::new();
    }
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(all) = procfs::process::all_processes() {
        for p in all.flatten() {
            if let Ok(stat) = p.stat() {
                children.entry(stat.ppid).or_default().push(stat.pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(kids) = children.get(&tree[i]) {
            tree.extend(kids.iter().copied().filter(|k| *k != root));
        }
        i += 1;
    }
    tree
}

fn sample(tree: &[i32], full: bool) -> Sample {
    let tick_us = 1_000_000 / procfs::ticks_per_second().max(1);
    let page = procfs::page_size();
    let mut s = Sample { unix_ms: crate::unix_ms(), ..Sample::default() };
    let mut procs = Vec::with_capacity(tree.len());
    for &pid in tree {
        let Ok(p) = procfs::process::Process::new(pid) else { continue };
        let Ok(stat) = p.stat() else { continue };
        s.procs += 1;
        s.threads += stat.num_threads.max(0) as u64;
        s.rss_bytes += stat.rss * page;
        s.vsz_bytes += stat.vsize;
        s.cpu_user_us += (stat.utime + stat.cutime.max(0) as u64) * tick_us;
        s.cpu_sys_us += (stat.stime + stat.cstime.max(0) as u64) * tick_us;
        procs.push(p);
    }
    if full {
        full_part(&mut s, &procs, page);
    }
    let (inuse, mem_pages, tw) = sockstat();
    s.tcp_inuse = inuse;
    s.tcp_mem_bytes = mem_pages * page;
    s.tcp_tw = tw;
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    s.slab_unreclaimable_bytes = kib_field(&meminfo, "SUnreclaim:").unwrap_or(0);
    s.cpu_busy_us = parse_cpu_busy(&std::fs::read_to_string("/proc/stat").unwrap_or_default(), tick_us);
    s
}

/// Busy microseconds per CPU from the `cpuN` lines of `/proc/stat`.
pub fn parse_cpu_busy(text: &str, tick_us: u64) -> Vec<u64> {
    let mut busy = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(Ok(cpu)) = name.strip_prefix("cpu").filter(|n| !n.is_empty()).map(str::parse::<usize>) else {
            continue;
        };
        // user nice system idle iowait irq softirq steal ...
        let v: Vec<u64> = words.take(8).filter_map(|w| w.parse().ok()).collect();
        if v.len() < 8 {
            continue;
        }
        // irq and softirq are left out: loopback packet processing of the cell's own
        // traffic lands there without being charged to any process.
        let ticks = v[0] + v[1] + v[2] + v[7];
        if busy.len() <= cpu {
            busy.resize(cpu + 1, 0);
        }
        busy[cpu] = ticks * tick_us;
    }
    busy
}

/// Descriptors, memory and context switches: the costly part of a full sample.
fn full_part(s: &mut Sample, procs: &[procfs::process::Process], page: u64) {
    let split = s.threads <= SPLIT_TASKS;
    let (mut fds, mut switches, mut v, mut nv) = (0, 0, 0, 0);
    let (mut pss_sum, mut anon_sum) = (Some(0), Some(0));
    let mut sockets = std::collections::HashSet::new();
    for p in procs {
        fds += socket_inodes(p.pid(), &mut sockets);
        if procs.len() > 1 {
            let (pss, anon) = pss(p.pid());
            if pss.is_none() && !std::path::Path::new(&format!("/proc/{}", p.pid())).exists() {
                continue; // exited since the tree was listed: it holds no memory now
            }
            pss_sum = pss_sum.zip(pss).map(|(a, b)| a + b);
            anon_sum = anon_sum.zip(anon).map(|(a, b)| a + b);
        } else {
            anon_sum = p.statm().ok().map(|m| m.resident.saturating_sub(m.shared) * page);
            pss_sum = None;
        }
        let Ok(tasks) = p.tasks() else { continue };
        for t in tasks.flatten() {
            switches += t.schedstat().map(|st| st.pcount).unwrap_or(0);
            if split {
                if let Ok(st) = t.status() {
                    v += st.voluntary_ctxt_switches.unwrap_or(0);
                    nv += st.nonvoluntary_ctxt_switches.unwrap_or(0);
                }
            }
        }
    }
    s.fds = Some(fds);
    s.sockets = Some(sockets.len() as u64);
    s.pss_bytes = pss_sum;
    s.pss_anon_bytes = anon_sum;
    s.ctx_switches = Some(switches);
    if split {
        s.ctx_voluntary = Some(v);
        s.ctx_involuntary = Some(nv);
    }
}

/// Count `pid`'s descriptors and add the inodes of its sockets to `inodes`.
fn socket_inodes(pid: i32, inodes: &mut std::collections::HashSet<u64>) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    let mut count = 0;
    for entry in dir.flatten() {
        count += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        let target = target.to_string_lossy();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
            if let Ok(i) = inode.parse() {
                inodes.insert(i);
            }
        }
    }
    count
}

/// `Pss:` and `Pss_Anon:` of `/proc/PID/smaps_rollup`, bytes.
fn pss(pid: i32) -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else { return (None, None) };
    (kib_field(&text, "Pss:"), kib_field(&text, "Pss_Anon:"))
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// `(inuse, mem pages, tw)` of the `TCP:` line of `/proc/net/sockstat`.
fn sockstat() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    parse_sockstat(&text)
}

pub fn parse_sockstat(text: &str) -> (u64, u64, u64) {
    let Some(line) = text.lines().find(|l| l.starts_with("TCP:")) else { return (0, 0, 0) };
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| {
        words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("inuse"), field("mem"), field("tw"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_parses() {
        let t = "sockets: used 11\nTCP: inuse 7 orphan 0 tw 3 alloc 9 mem 345\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat(t), (7, 345, 3));
        assert_eq!(parse_sockstat(""), (0, 0, 0));
    }

    #[test]
    fn samples_own_process_and_a_forked_child() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().expect("spawn sleep");
        let me = std::process::id() as i32;
        let tree = tree_of(me);
        assert!(tree.contains(&(child.id() as i32)), "the child is in the tree");
        let s = sample_now(me, None).expect("sample");
        assert!(s.procs >= 2 && s.threads >= 2 && s.rss_bytes > 0 && s.fds > Some(0));
        assert!(s.pss_anon_bytes.is_some() && s.pss_bytes.is_some(), "two processes: PSS read");
        assert!(s.ctx_switches.is_some_and(|c| c > 0) && s.ctx_voluntary.is_some());
        let _ = child.kill();
        let _ = child.wait();
        let mark = crate::unix_ms() + 150;
        let m = Monitor::start(me, vec![mark], None);
        std::thread::sleep(Duration::from_millis(400));
        let (samples, last) = m.stop();
        assert!(samples.len() >= 3 && last.contains(&me));
        assert!(samples.iter().any(|s| s.fds.is_some() && s.unix_ms >= mark), "a full sample at the mark");
        assert!(samples.iter().any(|s| s.fds.is_none()), "light samples between full ones");
    }

    #[test]
    fn cpu_busy_parses() {
        let t = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 4 1 2 50 9 1 1 1 0 0\ncpu1 6 0 8 50 0 0 0 0 0 0\nintr 1\n";
        assert_eq!(parse_cpu_busy(t, 10_000), vec![80_000, 140_000]);
    }

    #[test]
    fn gone_root_gives_no_sample() {
        assert!(sample_now(i32::MAX - 1, None).is_none());
    }
}
