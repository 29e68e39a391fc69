//! From cell records to groups (cells differing only in repetition) with the
//! median of each figure and the min-max spread of throughput; `summary.csv`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::env::EnvInfo;
use crate::error::{BenchError, Result};
use crate::results::{self, CellRecord, LoadSummary};
use crate::stats::{median, slope, Interval};

/// Median figures of one group of repetitions. `None` when no repetition gave the figure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub group: String,
    pub workload: String,
    pub server: String,
    pub model: String,
    pub id: String,
    pub conns: u64,
    pub idle_conns: u64,
    pub rate: Option<f64>,
    pub runs: usize,
    pub ok: usize,
    /// Why no repetition is ok (the first reason), when none is.
    pub status: String,
    pub rps: Option<f64>,
    pub rps_min: Option<f64>,
    pub rps_max: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub peak_rss: Option<f64>,
    pub peak_pss: Option<f64>,
    pub mem_per_conn: Option<f64>,
    pub cpu_us_per_req: Option<f64>,
    /// The load generator's CPU per request: why a cell is client-bound.
    pub client_cpu_us_per_req: Option<f64>,
    pub ctx_per_req: Option<f64>,
    pub server_cpu_util: Option<f64>,
    pub starved: Option<f64>,
    pub errors: Option<f64>,
    pub error_rate: Option<f64>,
    pub established: Option<f64>,
    /// Connections that got at least one answer: established minus starved.
    pub served: Option<f64>,
    /// Failed connect attempts (refused, timed out, other).
    pub connect_errors: Option<f64>,
    pub kernel_per_conn: Option<f64>,
    /// The server's own TCP buffer memory per connection (its cgroup).
    pub server_tcp_per_conn: Option<f64>,
    pub conns_held: Option<f64>,
    pub peak_threads: Option<f64>,
    pub peak_procs: Option<f64>,
    pub connect_p99_us: Option<f64>,
    pub all_established_s: Option<f64>,
    pub achieved_rate: Option<f64>,
    pub window_s: Option<f64>,
    pub listener_wakeups: Option<f64>,
    pub accepted: Option<f64>,
    pub accept_would_block: Option<f64>,
    pub client_bound: bool,
    /// Largest share of the server's CPUs taken by other processes in a repetition.
    pub foreign_cpu: Option<f64>,
    /// Repetitions in which the load generator was the bottleneck.
    pub client_bound_reps: usize,
    /// Jain's index of answers per connection (median over repetitions).
    pub jain: Option<f64>,
    /// Connections with under half the median connection's answers (median over repetitions).
    pub below_half_median: Option<f64>,
    /// Medians with their confidence intervals ([`crate::stats`]), over the ok repetitions.
    pub rps_ci: Option<Interval>,
    pub p99_ci: Option<Interval>,
    pub cpu_ci: Option<Interval>,
}

/// Median of the values present.
impl Group {
    /// The load generator was the bottleneck in at least one repetition.
    pub fn client_limited(&self) -> bool {
        self.client_bound_reps > 0
    }

    /// Some connections got no answer at all.
    pub fn starving(&self) -> bool {
        self.starved.is_some_and(|s| s > 0.0)
    }
}

fn group_of(records: &[&CellRecord]) -> Group {
    let first = records[0];
    let c = &first.cell;
    let ok: Vec<(&CellRecord, &LoadSummary)> = records.iter().filter_map(|r| r.valid().map(|l| (*r, l))).collect();
    let m =
        |f: &dyn Fn(&CellRecord, &LoadSummary) -> Option<f64>| median(ok.iter().filter_map(|(r, l)| f(r, l)).collect());
    let rps: Vec<f64> = ok.iter().map(|(_, l)| l.requests_per_sec).collect();
    let stat = |f: &dyn Fn(&servers::StatsSnapshot) -> u64| {
        median(ok.iter().filter_map(|(r, _)| r.server.stats.as_ref().map(|s| f(&s.counters) as f64)).collect())
    };
    Group {
        group: c.group.clone(),
        workload: c.workload.clone(),
        server: c.server.key.clone(),
        model: c.server.model.clone(),
        id: c.server.id.clone(),
        conns: c.conns,
        idle_conns: c.idle_conns,
        rate: c.rate,
        runs: records.len(),
        ok: ok.len(),
        status: if ok.is_empty() { first.outcome.label() } else { "ok".into() },
        rps: median(rps.clone()),
        rps_min: rps.iter().copied().reduce(f64::min),
        rps_max: rps.iter().copied().reduce(f64::max),
        p50_us: m(&|_, l| Some(l.p50_us)),
        p99_us: m(&|_, l| Some(l.p99_us)),
        p999_us: m(&|_, l| Some(l.p999_us)),
        peak_rss: m(&|r, _| Some(r.derived.peak_rss_bytes as f64)),
        peak_pss: m(&|r, _| r.derived.peak_pss_bytes.map(|v| v as f64)),
        mem_per_conn: m(&|r, _| r.derived.mem_per_conn_bytes),
        cpu_us_per_req: m(&|r, _| r.derived.cpu_us_per_req),
        client_cpu_us_per_req: m(&|_, l| {
            (l.requests > 0 && l.client_cpu_s > 0.0).then(|| l.client_cpu_s * 1e6 / l.requests as f64)
        }),
        ctx_per_req: m(&|r, _| r.derived.ctx_per_req),
        server_cpu_util: m(&|r, _| r.derived.server_cpu_util),
        starved: m(&|_, l| Some(l.starved as f64)),
        errors: m(&|_, l| Some(l.errors as f64)),
        error_rate: m(&|_, l| Some(l.error_rate)),
        established: m(&|_, l| Some(l.established as f64)),
        // `starved` counts connection slots with no answer, established or not.
        served: m(&|r, l| Some(r.cell.conns.saturating_sub(l.starved).min(l.established) as f64)),
        connect_errors: m(&|_, l| {
            Some(l.errors_by_kind.iter().filter(|(k, _)| k.starts_with("connect")).map(|(_, n)| *n as f64).sum())
        }),
        kernel_per_conn: m(&|r, _| r.derived.kernel_per_conn_bytes),
        server_tcp_per_conn: m(&|r, _| r.derived.server_tcp_per_conn_bytes),
        conns_held: m(&|r, _| Some(r.derived.conns_held as f64)),
        peak_threads: m(&|r, _| Some(r.derived.peak_threads as f64)),
        peak_procs: m(&|r, _| Some(r.derived.peak_procs as f64)),
        connect_p99_us: m(&|_, l| Some(l.connect_p99_us)),
        all_established_s: m(&|_, l| l.all_established_s),
        achieved_rate: m(&|_, l| l.achieved_rate),
        window_s: m(&|_, l| Some(l.window_s)),
        listener_wakeups: stat(&|s| s.listener_wakeups),
        accepted: stat(&|s| s.accepted),
        accept_would_block: stat(&|s| s.accept_would_block),
        client_bound: ok.iter().any(|(_, l)| l.client_bound),
        foreign_cpu: ok.iter().filter_map(|(r, _)| r.derived.foreign_cpu_util).reduce(f64::max),
        client_bound_reps: ok.iter().filter(|(_, l)| l.client_bound).count(),
        jain: m(&|_, l| l.jain_index),
        below_half_median: m(&|_, l| l.below_half_median.map(|v| v as f64)),
        rps_ci: Interval::of(&rps),
        p99_ci: Interval::of(&ok.iter().map(|(_, l)| l.p99_us).collect::<Vec<_>>()),
        cpu_ci: Interval::of(&ok.iter().filter_map(|(r, _)| r.derived.cpu_us_per_req).collect::<Vec<_>>()),
    }
}

/// A figure of one repetition, for intervals and pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    Rps,
    P99,
    /// Service-time p99 (without the coordinated-omission correction).
    P99Uncorrected,
    /// Open loop: the achieved request rate.
    AchievedRate,
    /// Server CPU per request, microseconds.
    CpuPerReq,
    /// Server context switches per request (per accepted connection in `herd`).
    CtxPerReq,
    /// Failed connects.
    ConnectErrors,
    ConnectP99,
    /// The measured window, seconds (C7: time until the last answer).
    Window,
    /// Peak memory of the server tree, bytes (PSS where measured, else RSS).
    PeakMem,
}

impl Figure {
    fn of(self, r: &CellRecord, l: &LoadSummary) -> Option<f64> {
        match self {
            Figure::Rps => Some(l.requests_per_sec),
            Figure::P99 => Some(l.p99_us),
            Figure::P99Uncorrected => Some(l.p99_uncorrected_us),
            Figure::AchievedRate => l.achieved_rate,
            Figure::CpuPerReq => r.derived.cpu_us_per_req,
            Figure::CtxPerReq => r.derived.ctx_per_req,
            Figure::ConnectErrors => {
                Some(l.errors_by_kind.iter().filter(|(k, _)| k.starts_with("connect")).map(|(_, n)| *n as f64).sum())
            }
            Figure::ConnectP99 => Some(l.connect_p99_us),
            Figure::Window => Some(l.window_s),
            Figure::PeakMem => Some(r.derived.peak_pss_bytes.unwrap_or(r.derived.peak_rss_bytes) as f64),
        }
        .filter(|x| x.is_finite())
    }
}

/// A results folder, read back: environment, every cell, the groups.
#[derive(Clone, Debug, Default)]
pub struct Results {
    pub env: Option<EnvInfo>,
    pub records: Vec<CellRecord>,
    pub groups: Vec<Group>,
    /// The sendfile probe (`probes/sendfile.json`), when the run made one.
    pub sendfile: Option<crate::probe::SendfileProbe>,
    /// The pollers probe (`probes/pollers.json`), when the run made one.
    pub pollers: Option<crate::probe::pollers::PollersProbe>,
    /// The C1M folder given to the report (`--c1m`), if any: T3's rows past one
    /// process's descriptors and T5's namespace rows read it.
    pub c1m: Option<crate::c1m::C1mResults>,
}

/// Lookups name a workload and a server the bench defines: a renamed model or a
/// mistyped key fails the tests (every verdict runs over an empty folder in
/// `verdicts::tests`) instead of quietly turning a verdict into "not measured".
fn known(workload: &str, server: Option<&str>) {
    debug_assert!(crate::workloads::WORKLOADS.iter().any(|w| w.name == workload), "unknown workload {workload:?}");
    if let Some(key) = server {
        debug_assert!(crate::matrix::ServerSpec::named(key, 1).is_some(), "unknown server key {key:?}");
    }
}

impl Results {
    /// Build from records (env optional), groups in first-seen order.
    pub fn new(env: Option<EnvInfo>, records: Vec<CellRecord>) -> Results {
        let mut order: Vec<String> = Vec::new();
        let mut by: BTreeMap<String, Vec<&CellRecord>> = BTreeMap::new();
        for r in &records {
            if !by.contains_key(&r.cell.group) {
                order.push(r.cell.group.clone());
            }
            by.entry(r.cell.group.clone()).or_default().push(r);
        }
        let groups = order.iter().filter_map(|g| by.get(g)).map(|rs| group_of(rs)).collect();
        Results { env, records, groups, sendfile: None, pollers: None, c1m: None }
    }

    /// Read `dir` (cells and, if present, env.json).
    pub fn load(dir: &Path) -> Result<Results> {
        let records = results::read_cells(dir)?;
        let env_path = dir.join("env.json");
        let env = if env_path.exists() { Some(results::read_json::<EnvInfo>(&env_path)?) } else { None };
        Ok(Results {
            sendfile: crate::probe::load(dir)?,
            pollers: crate::probe::pollers::load(dir)?,
            ..Results::new(env, records)
        })
    }

    /// The group of `workload` x `server` at `conns` (any idle count and rate).
    pub fn find(&self, workload: &str, server: &str, conns: u64) -> Option<&Group> {
        known(workload, Some(server));
        self.groups.iter().find(|g| g.workload == workload && g.server == server && g.conns == conns)
    }

    /// The group of `workload` x `server` with `idle` idle connections.
    pub fn find_idle(&self, workload: &str, server: &str, idle: u64) -> Option<&Group> {
        known(workload, Some(server));
        self.groups.iter().find(|g| g.workload == workload && g.server == server && g.idle_conns == idle)
    }

    /// Every group of `workload`.
    pub fn of(&self, workload: &str) -> Vec<&Group> {
        known(workload, None);
        self.groups.iter().filter(|g| g.workload == workload).collect()
    }

    /// Server keys in first-seen order, for `workload` (or all when empty).
    pub fn servers(&self, workload: &str) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for g in self.groups.iter().filter(|g| workload.is_empty() || g.workload == workload) {
            if !keys.contains(&g.server) {
                keys.push(g.server.clone());
            }
        }
        keys
    }

    /// Cell records of one group.
    pub fn records_of(&self, group: &str) -> Vec<&CellRecord> {
        self.records.iter().filter(|r| r.cell.group == group).collect()
    }

    /// Memory per connection of `server` as the slope of memory over the connections
    /// the server held, across the idle ladder. Each point pairs the two from one
    /// sample (the one that held the most connections; see [`crate::digest`]), and
    /// only cells where every connection was established and answered are fitted.
    /// Returns `(bytes per connection, points used)`.
    pub fn idle_slope(&self, server: &str) -> Option<(f64, usize)> {
        let points: Vec<(f64, f64)> = self
            .records
            .iter()
            .filter(|r| r.cell.workload == "idle" && r.cell.server.key == server)
            .filter_map(|r| r.valid().map(|l| (r, l)))
            .filter(|(r, l)| l.established >= r.cell.conns && l.starved == 0 && r.derived.conns_held > 0)
            .map(|(r, _)| {
                let mem = r
                    .derived
                    .held_mem_bytes
                    .unwrap_or(r.derived.peak_pss_anon_bytes.unwrap_or(r.derived.peak_rss_bytes));
                (r.derived.conns_held as f64, mem as f64)
            })
            .collect();
        slope(&points).map(|s| (s, points.len()))
    }

    /// Most connections `server` held (server-side descriptors over baseline) in any idle cell
    /// where every connection was established and answered.
    pub fn held(&self, server: &str) -> Option<u64> {
        self.records
            .iter()
            .filter(|r| r.cell.workload == "idle" && r.cell.server.key == server)
            .filter_map(|r| r.valid().map(|l| (r, l)))
            .filter(|(r, l)| l.established >= r.cell.conns && l.starved == 0)
            .map(|(r, _)| r.cell.conns)
            .max()
    }
}

impl Results {
    /// `(repetition, figure)` of every ok repetition of `group`.
    pub fn per_rep(&self, group: &str, fig: Figure) -> Vec<(u32, f64)> {
        self.records_of(group).into_iter().filter_map(|r| Some((r.cell.rep, fig.of(r, r.valid()?)?))).collect()
    }

    /// The median of `fig` over the repetitions of `g`, with its interval.
    pub fn interval(&self, g: &Group, fig: Figure) -> Option<Interval> {
        Interval::of(&self.per_rep(&g.group, fig).into_iter().map(|(_, v)| v).collect::<Vec<_>>())
    }

    /// The median ratio `a / b` of `fig` over repetitions run in the same round
    /// (repetition k of `a` with repetition k of `b`), with its interval.
    pub fn pair_ratio(&self, a: &Group, b: &Group, fig: Figure) -> Option<Interval> {
        let bs = self.per_rep(&b.group, fig);
        let pairs: Vec<(f64, f64)> = self
            .per_rep(&a.group, fig)
            .into_iter()
            .filter_map(|(k, va)| bs.iter().find(|(kb, _)| *kb == k).map(|(_, vb)| (va, *vb)))
            .collect();
        Interval::of_ratios(&pairs)
    }

    /// Most connections `server` served (got at least one answer) in any idle cell, and that cell's N.
    pub fn served_max(&self, server: &str) -> Option<(f64, u64)> {
        self.of("idle")
            .into_iter()
            .filter(|g| g.server == server)
            .filter_map(|g| g.served.map(|s| (s, g.conns)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }
}

/// `Some(x)` with `D` decimals, `None` as an empty field.
fn fixed<const D: usize, S: serde::Serializer>(v: &Option<f64>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match v {
        Some(x) => s.collect_str(&format_args!("{x:.D$}")),
        None => s.serialize_str(""),
    }
}

/// One row of `summary.csv`: a group's medians. The header is these field names.
#[derive(serde::Serialize)]
struct SummaryRow<'a> {
    group: &'a str,
    workload: &'a str,
    server: &'a str,
    model: &'a str,
    id: &'a str,
    conns: u64,
    idle_conns: u64,
    #[serde(serialize_with = "fixed::<0, _>")]
    rate: Option<f64>,
    runs: usize,
    ok: usize,
    status: &'a str,
    #[serde(serialize_with = "fixed::<1, _>")]
    rps_median: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    rps_min: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    rps_max: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    p50_us: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    p99_us: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    p999_us: Option<f64>,
    #[serde(serialize_with = "fixed::<2, _>")]
    peak_rss_mib: Option<f64>,
    #[serde(serialize_with = "fixed::<2, _>")]
    peak_pss_mib: Option<f64>,
    #[serde(serialize_with = "fixed::<2, _>")]
    mem_per_conn_kib: Option<f64>,
    #[serde(serialize_with = "fixed::<2, _>")]
    cpu_us_per_req: Option<f64>,
    #[serde(serialize_with = "fixed::<2, _>")]
    client_cpu_us_per_req: Option<f64>,
    #[serde(serialize_with = "fixed::<3, _>")]
    ctx_per_req: Option<f64>,
    #[serde(serialize_with = "fixed::<3, _>")]
    server_cpu_util: Option<f64>,
    #[serde(serialize_with = "fixed::<0, _>")]
    starved: Option<f64>,
    #[serde(serialize_with = "fixed::<0, _>")]
    errors: Option<f64>,
    #[serde(serialize_with = "fixed::<4, _>")]
    error_rate: Option<f64>,
    #[serde(serialize_with = "fixed::<0, _>")]
    conns_held: Option<f64>,
    #[serde(serialize_with = "fixed::<0, _>")]
    peak_threads: Option<f64>,
    #[serde(serialize_with = "fixed::<0, _>")]
    peak_procs: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    connect_p99_us: Option<f64>,
    #[serde(serialize_with = "fixed::<1, _>")]
    achieved_rate: Option<f64>,
    client_bound: bool,
    #[serde(serialize_with = "fixed::<3, _>")]
    foreign_cpu_max: Option<f64>,
}

impl<'a> SummaryRow<'a> {
    fn of(g: &'a Group) -> SummaryRow<'a> {
        const MIB: f64 = 1024.0 * 1024.0;
        SummaryRow {
            group: &g.group,
            workload: &g.workload,
            server: &g.server,
            model: &g.model,
            id: &g.id,
            conns: g.conns,
            idle_conns: g.idle_conns,
            rate: g.rate,
            runs: g.runs,
            ok: g.ok,
            status: &g.status,
            rps_median: g.rps,
            rps_min: g.rps_min,
            rps_max: g.rps_max,
            p50_us: g.p50_us,
            p99_us: g.p99_us,
            p999_us: g.p999_us,
            peak_rss_mib: g.peak_rss.map(|b| b / MIB),
            peak_pss_mib: g.peak_pss.map(|b| b / MIB),
            mem_per_conn_kib: g.mem_per_conn.map(|b| b / 1024.0),
            cpu_us_per_req: g.cpu_us_per_req,
            client_cpu_us_per_req: g.client_cpu_us_per_req,
            ctx_per_req: g.ctx_per_req,
            server_cpu_util: g.server_cpu_util,
            starved: g.starved,
            errors: g.errors,
            error_rate: g.error_rate,
            conns_held: g.conns_held,
            peak_threads: g.peak_threads,
            peak_procs: g.peak_procs,
            connect_p99_us: g.connect_p99_us,
            achieved_rate: g.achieved_rate,
            client_bound: g.client_bound,
            foreign_cpu_max: g.foreign_cpu,
        }
    }
}

/// Write `summary.csv`: one row per group, the header from [`SummaryRow`]'s fields.
pub fn write_summary(results: &Results, path: &Path) -> Result<()> {
    let io = |e: csv::Error| BenchError::io("write", path)(std::io::Error::other(e));
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    for g in &results.groups {
        w.serialize(SummaryRow::of(g)).map_err(io)?;
    }
    w.flush().map_err(BenchError::io("write", path))
}
