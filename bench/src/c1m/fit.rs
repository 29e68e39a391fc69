//! Memory per connection, both halves, from the step records (pure).
//!
//! Each step starts a fresh server, so every figure is the plateau (every
//! connection held, mid-way through the probe's window) less that step's own
//! baseline (the server ready, no connection), and pairs memory with the
//! connections held in **one** snapshot. The connections held are the server's
//! descriptors above its baseline, counted from `/proc` (the probe's included).
//!
//! - user space: the anonymous memory of the server's cgroup (each page once,
//!   whatever the processes), and of the load generators' cgroup;
//! - kernel: the kernel memory charged to each cgroup (socket, file, epoll
//!   objects, page tables) plus its TCP buffers. Where no cgroup could be made,
//!   the machine's kernel socket memory (slab plus TCP buffer pages) is split in
//!   halves: on loopback every connection is one socket at each end, and the
//!   cgroup runs show the two halves within a few percent of each other;
//! - the machine: `MemTotal - MemAvailable`, both ends and everything else.
//!
//! The slope per connection is the least-squares slope over the steps that
//! held every connection (one step: its own figure over its connections).

use super::record::{CgMem, StepRecord};
use crate::stats::slope;

/// Where the kernel halves come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelMethod {
    /// Each side's cgroup.
    Cgroup,
    /// The machine's kernel socket memory, half to each side.
    MachineHalf,
}

/// One step's memory above its baseline, bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct StepMemory {
    pub conns: u64,
    pub server_user: Option<f64>,
    pub server_kernel: Option<f64>,
    pub server_tcp: Option<f64>,
    pub client_user: Option<f64>,
    pub client_kernel: Option<f64>,
    /// `MemTotal - MemAvailable` above the baseline.
    pub machine: f64,
    /// Slab plus TCP buffer pages above the baseline (both ends).
    pub machine_kernel: f64,
    pub kernel_method: KernelMethod,
    /// The machine's memory in use at the plateau, and its total, bytes.
    pub used_bytes: u64,
    pub total_bytes: u64,
}

fn delta(at: Option<u64>, base: Option<u64>) -> Option<f64> {
    Some(at? as f64 - base? as f64)
}

fn cg<T>(m: &Option<CgMem>, f: impl Fn(&CgMem) -> Option<T>) -> Option<T> {
    m.as_ref().and_then(f)
}

/// The step's memory, or `None` without both snapshots.
pub fn step_memory(s: &StepRecord) -> Option<StepMemory> {
    let (base, at) = (s.baseline.as_ref()?, s.plateau.as_ref()?);
    let conns = at.server_fds.saturating_sub(base.server_fds);
    let page = 4096.0;
    let machine_kernel = (at.mem.slab_kib as f64 - base.mem.slab_kib as f64) * 1024.0
        + (at.sock.tcp_mem_pages as f64 - base.sock.tcp_mem_pages as f64) * page;
    let from_cg = |side: fn(&super::record::Snapshot) -> &Option<CgMem>| {
        delta(cg(side(at), |m| m.kernel_total()), cg(side(base), |m| m.kernel_total()))
    };
    let (server_kernel, client_kernel, method) = match (from_cg(|x| &x.server), from_cg(|x| &x.client)) {
        (Some(sk), ck) => (Some(sk), ck, KernelMethod::Cgroup),
        (None, _) => (Some(machine_kernel / 2.0), Some(machine_kernel / 2.0), KernelMethod::MachineHalf),
    };
    Some(StepMemory {
        conns,
        server_user: delta(cg(&at.server, |m| Some(m.anon_bytes)), cg(&base.server, |m| Some(m.anon_bytes))),
        server_kernel,
        server_tcp: delta(cg(&at.server, |m| m.tcp_bytes), cg(&base.server, |m| m.tcp_bytes)),
        client_user: delta(cg(&at.client, |m| Some(m.anon_bytes)), cg(&base.client, |m| Some(m.anon_bytes))),
        client_kernel,
        machine: at.mem.used_bytes() as f64 - base.mem.used_bytes() as f64,
        machine_kernel,
        kernel_method: method,
        used_bytes: at.mem.used_bytes(),
        total_bytes: at.mem.total_kib * 1024,
    })
}

/// Bytes per connection, and how it was found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerConn {
    pub bytes: f64,
    /// Steps it rests on.
    pub points: usize,
}

/// The slope of one quantity over the steps that held every connection.
pub fn per_conn(steps: &[&StepRecord], quantity: impl Fn(&StepMemory) -> Option<f64>) -> Option<PerConn> {
    let points: Vec<(f64, f64)> = steps
        .iter()
        .filter(|s| s.held_all())
        .filter_map(|s| step_memory(s))
        .filter(|m| m.conns > 0)
        .filter_map(|m| Some((m.conns as f64, quantity(&m)?)))
        .collect();
    match points.as_slice() {
        [] => None,
        [(n, y)] => Some(PerConn { bytes: y / n, points: 1 }),
        _ => slope(&points).map(|bytes| PerConn { bytes, points: points.len() }),
    }
}

/// The five per-connection figures of one model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slopes {
    pub server_user: Option<PerConn>,
    pub server_kernel: Option<PerConn>,
    pub client_user: Option<PerConn>,
    pub client_kernel: Option<PerConn>,
    pub machine: Option<PerConn>,
}

pub fn slopes(steps: &[&StepRecord]) -> Slopes {
    Slopes {
        server_user: per_conn(steps, |m| m.server_user),
        server_kernel: per_conn(steps, |m| m.server_kernel),
        client_user: per_conn(steps, |m| m.client_user),
        client_kernel: per_conn(steps, |m| m.client_kernel),
        machine: per_conn(steps, |m| Some(m.machine)),
    }
}

/// How the largest step that held every connection sits in the machine's memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Margin {
    pub conns: u64,
    pub used_bytes: u64,
    pub total_bytes: u64,
    /// Connections (both ends on this machine) the machine's slope says would
    /// use what was still available at that step.
    pub more_conns: Option<f64>,
}

impl Margin {
    pub fn margin_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.used_bytes)
    }
}

pub fn margin(steps: &[&StepRecord]) -> Option<Margin> {
    let best = steps.iter().filter(|s| s.held_all()).max_by_key(|s| s.conns)?;
    let m = step_memory(best)?;
    let available = best.plateau.as_ref()?.mem.available_kib as f64 * 1024.0;
    let machine = per_conn(steps, |m| Some(m.machine)).filter(|p| p.bytes > 0.0);
    Some(Margin {
        conns: best.conns,
        used_bytes: m.used_bytes,
        total_bytes: m.total_bytes,
        more_conns: machine.map(|p| available / p.bytes),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::machine::{MemInfo, SockStat};
    use super::super::plan::StepSpec;
    use super::super::record::{LoadFigures, Snapshot};
    use super::*;
    use crate::results::Outcome;

    /// A step record as the runner writes it, with the figures that matter here.
    pub(crate) fn step(model: &str, conns: u64, server: (u64, u64), client: (u64, u64), used_kib: u64) -> StepRecord {
        let snap = |fds: u64, s: (u64, u64), c: (u64, u64), used: u64| Snapshot {
            mem: MemInfo {
                total_kib: 24_000_000,
                available_kib: 24_000_000 - used,
                slab_kib: used / 2,
                ..MemInfo::default()
            },
            sock: SockStat { tcp_inuse: 2 * fds, ..SockStat::default() },
            server: Some(CgMem { anon_bytes: s.0, kernel_bytes: Some(s.1), tcp_bytes: Some(0), cpu_us: 0 }),
            client: Some(CgMem { anon_bytes: c.0, kernel_bytes: Some(c.1), tcp_bytes: Some(0), cpu_us: 0 }),
            server_fds: fds,
            server_fds_max: fds,
            ..Snapshot::default()
        };
        let alive = LoadFigures { conns, established: conns, requests: conns, ..LoadFigures::default() };
        let spec = StepSpec {
            model: model.into(),
            conns,
            server_procs: 1,
            client_procs: 1,
            server_args: vec![],
            alive_args: vec![],
            probe_args: vec![],
            estimate_s: 0.0,
        };
        StepRecord {
            schema: 1,
            server_cpus: vec![0],
            client_cpus: vec![1],
            started_unix_ms: 0,
            loadavg_before: String::new(),
            established_s: Some(1.0),
            baseline: Some(snap(10, (1_000_000, 500_000), (0, 0), 700_000)),
            plateau: Some(snap(10 + conns, server, client, used_kib)),
            alive: Some(alive),
            ..super::super::step::planned(&spec, Outcome::Ok)
        }
    }

    #[test]
    fn slopes_over_held_steps_and_the_margin() {
        // 300 B user and 3,900 B kernel per connection on the server, plus a fixed 2 MB.
        let mk = |n: u64| {
            step("reuseport", n, (3_000_000 + 300 * n, 2_500_000 + 3_900 * n), (400 * n, 4_000 * n), 700_000 + 7 * n)
        };
        let (a, b, mut c) = (mk(100_000), mk(300_000), mk(1_000_000));
        let m = step_memory(&b).expect("memory");
        assert_eq!(m.conns, 300_000);
        assert_eq!(m.kernel_method, KernelMethod::Cgroup);
        assert_eq!(m.server_user, Some(2_000_000.0 + 300.0 * 300_000.0));
        let s = slopes(&[&a, &b, &c]);
        let su = s.server_user.expect("fit");
        assert_eq!(su.points, 3);
        assert!((su.bytes - 300.0).abs() < 1e-6, "{su:?}");
        assert!((s.server_kernel.expect("fit").bytes - 3_900.0).abs() < 1e-6);
        assert!((s.machine.expect("fit").bytes - 7.0 * 1024.0).abs() < 1e-6);
        let margin = margin(&[&a, &b, &c]).expect("margin");
        assert_eq!(margin.conns, 1_000_000);
        assert_eq!(margin.used_bytes, 7_700_000 * 1024);
        assert_eq!(margin.margin_bytes(), (24_000_000 - 7_700_000) * 1024);
        // A step that did not hold every connection is left out of the fit.
        if let Some(al) = c.alive.as_mut() {
            al.starved = 5;
        }
        assert_eq!(slopes(&[&a, &b, &c]).server_user.map(|p| p.points), Some(2));
        assert_eq!(super::margin(&[&a, &b, &c]).map(|m| m.conns), Some(300_000));
        assert_eq!(per_conn(&[&c], |m| m.server_user), None);
    }

    #[test]
    fn without_cgroups_the_machine_is_split_in_halves() {
        let mut s = step("tokio", 100_000, (0, 0), (0, 0), 1_700_000);
        for snap in [s.baseline.as_mut(), s.plateau.as_mut()].into_iter().flatten() {
            snap.server = None;
            snap.client = None;
        }
        let m = step_memory(&s).expect("memory");
        assert_eq!(m.kernel_method, KernelMethod::MachineHalf);
        assert_eq!(m.server_kernel, m.client_kernel);
        assert_eq!(m.server_user, None, "user space is not measured without a cgroup, not zero");
        let one = per_conn(&[&s], |m| m.server_kernel).expect("one step");
        assert_eq!(one.points, 1);
    }
}
