//! A cgroup per server: the exact cost of a whole process tree.
//!
//! Sampling `/proc` cannot see a forked child that lives and dies between two
//! samples, and a walk of parent links races with `fork`. A cgroup counts every
//! task that ever ran in it: the runner creates one per cell, the server joins
//! it between `fork` and `exec` (so every descendant is born inside), and the
//! monitor reads the tree's CPU, memory and TCP buffer memory from it.
//!
//! - cgroup v1 (this machine): `cpuacct` (`cpuacct.usage`, exact, split by `cpuacct.usage_user`/`usage_sys`, ns)
//!   and `memory` (`memory.usage_in_bytes`, `rss` of `memory.stat`,
//!   `memory.kmem.tcp.usage_in_bytes`, which counts only once a TCP limit is
//!   written, so the runner writes the largest one). The memory hierarchy may be
//!   nested: the new group is created under the runner's own memory cgroup.
//! - cgroup v2: `cpu.stat` (`usage_usec`, exact, split by `user_usec`/`system_usec`), `memory.current`,
//!   `anon` and `sock` of `memory.stat`, under the runner's own cgroup.
//!
//! Where no cgroup can be created (not root, read-only hierarchy) the runner
//! falls back to `/proc` sampling and says so ([`Accounting`]). Groups are
//! named `c10k-bench-<runner pid>-<n>`; [`Cgroup`]'s `Drop` kills what is left
//! inside and removes the group (also on a failed cell and on Ctrl-C), and
//! [`clean_leftovers`] removes those of a runner that was killed.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const ROOT: &str = "/sys/fs/cgroup";
const PREFIX: &str = "c10k-bench-";

/// How the server's cost is accounted in a run, for env.json and every cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Accounting {
    /// A cgroup per server (`v1` or `v2`).
    Cgroup { version: u8 },
    /// `/proc` sampling of the process tree, with why no cgroup could be used.
    Proc { reason: String },
}

impl Accounting {
    pub fn label(&self) -> String {
        match self {
            Accounting::Cgroup { version } => format!("a cgroup (v{version}) per server"),
            Accounting::Proc { reason } => format!("/proc sampling of the process tree (no cgroup: {reason})"),
        }
    }
}

/// One reading of a cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CgSample {
    /// User CPU of every task that ran in the group, microseconds.
    pub cpu_user_us: u64,
    /// System CPU, as above.
    pub cpu_sys_us: u64,
    /// Memory charged to the group (pages, page cache and kernel memory), bytes.
    pub mem_bytes: u64,
    /// Anonymous memory (heap, stacks), counted once however many processes map it.
    pub anon_bytes: u64,
    /// TCP socket buffer memory of the group's sockets (the server's end only).
    pub tcp_bytes: Option<u64>,
}

/// Which layout the group lives in.
#[derive(Clone, Debug)]
enum Layout {
    V1 { cpu: PathBuf, mem: PathBuf },
    V2 { dir: PathBuf },
}

/// A cgroup of one cell's server; removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    layout: Layout,
    /// `cgroup.procs` of every hierarchy, for the child to join before exec.
    join: Vec<CString>,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// The runner's own path in hierarchy `name` (v1 controller or `""` for v2), from `/proc/self/cgroup`.
fn own_path(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if name.is_empty() { ctrls.is_empty() } else { ctrls.split(',').any(|c| c == name) };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("write {}: {e}", path.display()))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn num(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// The group's CPU as (user, system), microseconds, from the exact total and the
/// tick-sampled split. `cpuacct.usage` (v1) and `usage_usec` (v2) add up every task's
/// run time as the scheduler charges it; `cpuacct.usage_user`/`usage_sys` and
/// `user_usec`/`system_usec` come from the timer tick, which a server waking 2,000 times
/// a second for a few microseconds each is rarely running at: in a standard run of
/// 2026-12-04 the reactor at 2,000 requests/s read 0 there in 3 of 5 windows in which
/// `/proc` counted about 80 ms. The total is kept exact and split in the ticks' proportion;
/// with no tick at all the split is unknown and the total is counted as system time.
pub fn split(total_us: u64, user_ticks: u64, sys_ticks: u64) -> (u64, u64) {
    let ticks = user_ticks + sys_ticks;
    if ticks == 0 {
        return (0, total_us);
    }
    let user = (total_us as u128 * user_ticks as u128 / ticks as u128) as u64;
    (user, total_us - user)
}

/// `key value` lines (memory.stat, cpu.stat).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn procs_path(dir: &Path) -> Result<CString, String> {
    CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())
}

impl Cgroup {
    /// Create a new group for one server, or say why not.
    pub fn create() -> Result<Cgroup, String> {
        let me = read(Path::new("/proc/self/cgroup")).ok_or("cannot read /proc/self/cgroup")?;
        let name = format!("{PREFIX}{}-{}", std::process::id(), SERIAL.fetch_add(1, Ordering::Relaxed));
        let root = Path::new(ROOT);
        let v1 = root.join("cpuacct").join("cpuacct.usage").exists() || root.join("cpuacct").is_dir();
        if v1 && root.join("memory").is_dir() {
            let cpu = root.join("cpuacct").join(own_path(&me, "cpuacct").unwrap_or_default()).join(&name);
            let mem = root.join("memory").join(own_path(&me, "memory").unwrap_or_default()).join(&name);
            std::fs::create_dir(&cpu).map_err(|e| format!("mkdir {}: {e}", cpu.display()))?;
            let mut group = Cgroup { layout: Layout::V1 { cpu: cpu.clone(), mem: mem.clone() }, join: Vec::new() };
            std::fs::create_dir(&mem).map_err(|e| format!("mkdir {}: {e}", mem.display()))?;
            // TCP accounting of a v1 memory cgroup starts once a TCP limit is set.
            let tcp = mem.join("memory.kmem.tcp.limit_in_bytes");
            if tcp.exists() {
                write(&tcp, "-1")?;
            }
            group.join = vec![procs_path(&cpu)?, procs_path(&mem)?];
            return Ok(group);
        }
        if root.join("cgroup.controllers").exists() {
            let parent = root.join(own_path(&me, "").unwrap_or_default());
            let controllers = read(&parent.join("cgroup.subtree_control")).unwrap_or_default();
            if !(controllers.contains("cpu") && controllers.contains("memory")) {
                write(&parent.join("cgroup.subtree_control"), "+cpu +memory")
                    .map_err(|e| format!("cannot enable cpu and memory for child cgroups: {e}"))?;
            }
            let dir = parent.join(&name);
            std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            let join = vec![procs_path(&dir)?];
            return Ok(Cgroup { layout: Layout::V2 { dir }, join });
        }
        Err(format!("no cgroup v1 cpuacct+memory or v2 hierarchy under {ROOT}"))
    }

    /// Paths of `cgroup.procs` the child writes `0` to before exec (see [`crate::child`]).
    pub fn join_paths(&self) -> &[CString] {
        &self.join
    }

    pub fn version(&self) -> u8 {
        match self.layout {
            Layout::V1 { .. } => 1,
            Layout::V2 { .. } => 2,
        }
    }

    /// Pids of the processes in the group now: the server's whole tree, exactly.
    pub fn pids(&self) -> Vec<i32> {
        let dir = match &self.layout {
            Layout::V1 { mem, .. } => mem,
            Layout::V2 { dir } => dir,
        };
        read(&dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// The group's counters now; `None` if they cannot be read.
    pub fn sample(&self) -> Option<CgSample> {
        match &self.layout {
            Layout::V1 { cpu, mem } => {
                let stat = read(&mem.join("memory.stat"))?;
                let (cpu_user_us, cpu_sys_us) = split(
                    num(&cpu.join("cpuacct.usage"))? / 1_000,
                    num(&cpu.join("cpuacct.usage_user"))?,
                    num(&cpu.join("cpuacct.usage_sys"))?,
                );
                Some(CgSample {
                    cpu_user_us,
                    cpu_sys_us,
                    mem_bytes: num(&mem.join("memory.usage_in_bytes"))?,
                    anon_bytes: field(&stat, "rss")?,
                    tcp_bytes: num(&mem.join("memory.kmem.tcp.usage_in_bytes")),
                })
            }
            Layout::V2 { dir } => {
                let cpu = read(&dir.join("cpu.stat"))?;
                let stat = read(&dir.join("memory.stat"))?;
                let (cpu_user_us, cpu_sys_us) =
                    split(field(&cpu, "usage_usec")?, field(&cpu, "user_usec")?, field(&cpu, "system_usec")?);
                Some(CgSample {
                    cpu_user_us,
                    cpu_sys_us,
                    mem_bytes: num(&dir.join("memory.current"))?,
                    anon_bytes: field(&stat, "anon")?,
                    tcp_bytes: field(&stat, "sock"),
                })
            }
        }
    }

    /// Kernel memory charged to the group, TCP buffers apart (those are `tcp_bytes`):
    /// socket, file and epoll objects, page tables, stacks. v1: `memory.kmem.usage_in_bytes`;
    /// v2: `kernel` of `memory.stat` (slab, stacks and page tables where it is missing).
    pub fn kernel_bytes(&self) -> Option<u64> {
        match &self.layout {
            Layout::V1 { mem, .. } => num(&mem.join("memory.kmem.usage_in_bytes")),
            Layout::V2 { dir } => {
                let stat = read(&dir.join("memory.stat"))?;
                field(&stat, "kernel").or_else(|| {
                    Some(field(&stat, "slab")? + field(&stat, "kernel_stack")? + field(&stat, "pagetables")?)
                })
            }
        }
    }

    /// Highest memory charged to the group since it was created (v1 only keeps it).
    pub fn peak_mem_bytes(&self) -> Option<u64> {
        match &self.layout {
            Layout::V1 { mem, .. } => num(&mem.join("memory.max_usage_in_bytes")),
            Layout::V2 { dir } => num(&dir.join("memory.peak")),
        }
    }

    fn dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { cpu, mem } => vec![mem.clone(), cpu.clone()],
            Layout::V2 { dir } => vec![dir.clone()],
        }
    }
}

/// Kill every process in `dirs` and remove them; waits at most about two seconds.
fn remove_dirs(dirs: &[PathBuf]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    for dir in dirs {
        if !dir.exists() {
            continue;
        }
        loop {
            let pids: Vec<i32> = read(&dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            for &p in &pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
            // rmdir succeeds once no task is left (zombies awaiting their parent count as gone).
            match std::fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => return Err(format!("rmdir {}: {e}", dir.display())),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    Ok(())
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = remove_dirs(&self.dirs()) {
            eprintln!("warning: cannot remove the cell's cgroup: {e}");
        }
    }
}

/// What accounting a run gets here: try to create (and remove) one group.
pub fn probe() -> Accounting {
    match Cgroup::create() {
        Ok(g) => Accounting::Cgroup { version: g.version() },
        Err(reason) => Accounting::Proc { reason },
    }
}

/// Remove groups left by runners that no longer exist (killed with SIGKILL).
/// Returns how many were removed.
pub fn clean_leftovers() -> usize {
    let me = read(Path::new("/proc/self/cgroup")).unwrap_or_default();
    let root = Path::new(ROOT);
    let parents = [
        root.join("cpuacct").join(own_path(&me, "cpuacct").unwrap_or_default()),
        root.join("memory").join(own_path(&me, "memory").unwrap_or_default()),
        root.join(own_path(&me, "").unwrap_or_default()),
    ];
    let mut removed = 0;
    for parent in parents {
        let Ok(entries) = std::fs::read_dir(&parent) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(owner) = name.strip_prefix(PREFIX).and_then(|r| r.split('-').next()?.parse::<i32>().ok()) else {
                continue;
            };
            let alive = owner == std::process::id() as i32 || Path::new(&format!("/proc/{owner}")).exists();
            if !alive && remove_dirs(&[e.path()]).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_total_is_exact_and_split_by_ticks() {
        assert_eq!(split(80_000, 0, 0), (0, 80_000));
        assert_eq!(split(1_000, 3, 1), (750, 250));
        assert_eq!(split(0, 5, 5), (0, 0));
        let (u, s) = split(1_234_567, 7, 13);
        assert_eq!(u + s, 1_234_567);
    }

    #[test]
    fn own_paths_parse() {
        let t = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu,cpuacct:/x\n0::/user.slice\n";
        assert_eq!(own_path(t, "memory").as_deref(), Some("process_api/abc"));
        assert_eq!(own_path(t, "cpuacct").as_deref(), Some(""));
        assert_eq!(own_path(t, "").as_deref(), Some("user.slice"));
        assert_eq!(own_path(t, "pids"), None);
    }

    #[test]
    fn stat_fields_parse() {
        let t = "cache 90112\nrss 4096\nrss_huge 0\ntotal_rss 8192\n";
        assert_eq!(field(t, "rss"), Some(4096));
        assert_eq!(field(t, "total_rss"), Some(8192));
        assert_eq!(field(t, "anon"), None);
    }

    /// Where a cgroup can be made (root on this machine), a child that joins it and
    /// exits is still counted, and the group is gone after the drop.
    #[test]
    fn counts_a_child_that_has_exited() {
        let group = match Cgroup::create() {
            Ok(g) => g,
            Err(why) => {
                eprintln!("skipped: no cgroup here ({why})");
                return;
            }
        };
        let dirs = group.dirs();
        let procs: Vec<String> = group.join_paths().iter().map(|p| p.to_string_lossy().to_string()).collect();
        let script = format!(
            "for p in {}; do echo 0 > $p; done; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done",
            procs.join(" ")
        );
        let status = std::process::Command::new("sh").args(["-c", &script]).status().expect("sh");
        assert!(status.success());
        let s = group.sample().expect("readable counters");
        assert!(s.cpu_user_us + s.cpu_sys_us > 1_000, "the exited shell's CPU is counted: {s:?}");
        assert!(group.pids().is_empty());
        drop(group);
        assert!(dirs.iter().all(|d| !d.exists()), "removed on drop");
    }
}
