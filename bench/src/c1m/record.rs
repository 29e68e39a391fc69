//! The C1M results folder: what is written, and reading it back.
//!
//! ```text
//! results/c1m-<date>-<host>/
//!   env.json                    the machine as measured (the same `EnvInfo` as a standard folder)
//!   c1m.json                    the run: plan, settings, start and end, load average before and after
//!   steps/<model>-c<N>.json.gz  one ladder step: the three processes, memory, counters, limits
//!   t5/namespaces.json          T5: the documents' settings, which are per namespace, host values before and after
//!   t5/<config>-<kind>-rep<k>.json.gz  one T5 run in a pair of network namespaces
//!   plots/c1m-*.svg, C1M.md     drawn and written from the files above
//! ```
//!
//! Every file carries `"schema": 1` ([`crate::results::SCHEMA`]) and is read with
//! [`crate::results::read_json`]. The load generator's whole JSON report is kept
//! beside the figures taken from it ([`LoadFigures`]), which is all the report
//! reads: a field the load generator adds later does not break an older folder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::machine::{Counters, MemInfo, SockStat};
use crate::cgroup::Accounting;
use crate::error::{BenchError, Result};
use crate::results::{read_json, Outcome, ServerStats};

/// One kind of error the load generator met, with its first message (the evidence a limit is named from).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorKind {
    pub kind: String,
    pub count: u64,
    pub conns: u64,
    pub message: String,
}

/// What the report reads of one `c10k load` run. Latencies are `None` when
/// nothing was measured (never 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadFigures {
    pub conns: u64,
    pub procs: u32,
    pub threads: u32,
    pub established: u64,
    pub all_established_s: Option<f64>,
    pub peak_open: u64,
    pub open_at_end: u64,
    /// Connections that got no answer in the whole run.
    pub starved: u64,
    /// Measured requests answered (the window's, drained after it included).
    pub requests: u64,
    pub answers_in_window: u64,
    pub requests_per_sec: f64,
    pub duration_s: f64,
    /// Open loop: requests the schedule placed in the window, and those never sent.
    pub scheduled: Option<u64>,
    pub unsent: Option<u64>,
    /// Connections with no answer inside the window.
    pub unanswered_in_window: Option<u64>,
    pub errors: u64,
    pub error_rate: f64,
    pub error_kinds: Vec<ErrorKind>,
    /// Corrected latency (from the scheduled time), microseconds.
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
    /// Service time (from the send), p99.
    pub service_p99_us: Option<f64>,
    pub connect_p99_us: Option<f64>,
    pub reconnect_p99_us: Option<f64>,
    /// Open loop: the client's own lateness (send minus due, on free connections), p99.
    pub dispatch_lag_p99_us: Option<f64>,
    pub schedule_lag_p99_us: Option<f64>,
    /// The event-loop threads' time runnable but waiting for a CPU, summed.
    pub client_run_queue_wait_s: f64,
    pub client_cpu_s: f64,
    pub client_utilisation: f64,
    pub client_steal_s: f64,
    pub client_idle_spin_s: f64,
    pub client_bound: bool,
    pub client_bound_reasons: Vec<String>,
}

fn some_lat(
    d: &loadgen::json_report::Distribution,
    f: impl Fn(&loadgen::json_report::Distribution) -> f64,
) -> Option<f64> {
    (d.count > 0).then(|| f(d))
}

impl LoadFigures {
    pub fn from_report(r: &loadgen::json_report::Report) -> LoadFigures {
        let c = &r.latency.corrected;
        let ol = r.open_loop.as_ref();
        LoadFigures {
            conns: r.config.settings.conns + r.config.settings.idle_conns,
            procs: r.config.settings.procs,
            threads: r.client.threads,
            established: r.connections.established,
            all_established_s: r.connections.all_established_s,
            peak_open: r.connections.peak_open,
            open_at_end: r.connections.open_at_end,
            starved: r.connections.starved,
            requests: r.totals.requests,
            answers_in_window: r.totals.answers_in_window,
            requests_per_sec: r.totals.requests_per_sec,
            duration_s: r.totals.duration_s,
            scheduled: ol.map(|o| o.scheduled),
            unsent: ol.map(|o| o.unsent),
            unanswered_in_window: r.fairness.as_ref().map(|f| f.unanswered_in_window),
            errors: r.errors.total,
            error_rate: r.errors.rate,
            error_kinds: r
                .errors
                .details
                .iter()
                .map(|d| ErrorKind { kind: d.kind.clone(), count: d.count, conns: d.conns, message: d.message.clone() })
                .collect(),
            p50_us: some_lat(c, |d| d.p50_us),
            p99_us: some_lat(c, |d| d.p99_us),
            p999_us: some_lat(c, |d| d.p999_us),
            max_us: some_lat(c, |d| d.max_us),
            service_p99_us: some_lat(&r.latency.uncorrected, |d| d.p99_us),
            connect_p99_us: some_lat(&r.latency.connect, |d| d.p99_us),
            reconnect_p99_us: some_lat(&r.latency.reconnect, |d| d.p99_us),
            dispatch_lag_p99_us: ol.and_then(|o| some_lat(&o.dispatch_lag, |d| d.p99_us)),
            schedule_lag_p99_us: ol.and_then(|o| some_lat(&o.schedule_lag, |d| d.p99_us)),
            client_run_queue_wait_s: r.client.run_queue_wait_s,
            client_cpu_s: r.client.cpu_user_s + r.client.cpu_sys_s,
            client_utilisation: r.client.utilisation,
            client_steal_s: r.client.steal_s,
            client_idle_spin_s: r.client.idle_spin_s,
            client_bound: r.client_bound,
            client_bound_reasons: r.client_bound_reasons.clone(),
        }
    }

    /// Connections that answered at least once.
    pub fn served(&self) -> u64 {
        self.conns.saturating_sub(self.starved)
    }
}

/// A cgroup's memory (and CPU) at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CgMem {
    /// Anonymous memory (heap, stacks): the processes' user-space memory, each page once.
    pub anon_bytes: u64,
    /// Kernel memory charged to the group (socket, file, epoll objects, page tables...), TCP buffers apart.
    pub kernel_bytes: Option<u64>,
    /// TCP buffers of the group's sockets.
    pub tcp_bytes: Option<u64>,
    /// CPU of every task that ran in the group, microseconds.
    pub cpu_us: u64,
}

impl CgMem {
    /// Kernel memory including TCP buffers; `None` when the kernel counter is unknown.
    pub fn kernel_total(&self) -> Option<u64> {
        Some(self.kernel_bytes? + self.tcp_bytes.unwrap_or(0))
    }
}

/// The machine and both halves at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub at_unix_ms: u64,
    pub mem: MemInfo,
    pub sock: SockStat,
    /// The server's cgroup (its whole process tree); `None` without cgroups.
    pub server: Option<CgMem>,
    /// The load generators' cgroup (the alive check and the probe); `None` without cgroups.
    pub client: Option<CgMem>,
    /// Descriptors open in the server's processes, counted from `/proc`.
    pub server_fds: u64,
    /// Descriptors of the server process that held the most (the one nearest its limit).
    pub server_fds_max: u64,
    pub server_procs: u64,
}

/// Run-queue wait of the server's threads over the probe's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunQueueWindow {
    pub window_s: f64,
    pub wait_s: f64,
    pub on_cpu_s: f64,
    pub threads: u64,
}

/// One rung of the ladder: one model holding N connections.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub schema: u32,
    /// The server configuration's key (`reuseport`, `tokio`).
    pub model: String,
    pub conns: u64,
    pub server_procs: u32,
    pub client_procs: u32,
    pub server_args: Vec<String>,
    pub alive_args: Vec<String>,
    pub probe_args: Vec<String>,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub accounting: Option<Accounting>,
    pub started_unix_ms: u64,
    pub wall_s: f64,
    /// `/proc/loadavg` when the step started (other work on the machine).
    pub loadavg_before: String,
    pub outcome: Outcome,
    pub ready_line: Option<String>,
    pub ready_s: Option<f64>,
    pub server_stats: Option<ServerStats>,
    pub server_exit: String,
    pub server_stderr_tail: String,
    /// Seconds from starting the load generator until the machine held (nearly,
    /// see [`crate::c1m::step::HELD_SLACK`]) both ends of every connection
    /// (`/proc/net/sockstat`): when the runner started the probe. `None` if it never did.
    /// The table reads the load generator's own `all_established_s`.
    pub established_s: Option<f64>,
    /// The server ready, no connection yet.
    pub baseline: Option<Snapshot>,
    /// Mid-way through the probe's window, every connection held.
    pub plateau: Option<Snapshot>,
    /// Counters over the step (end minus start).
    pub counters: Counters,
    pub alive: Option<LoadFigures>,
    pub alive_raw: Option<serde_json::Value>,
    pub alive_exit: String,
    pub alive_stderr_tail: String,
    pub probe: Option<LoadFigures>,
    pub probe_raw: Option<serde_json::Value>,
    pub probe_exit: String,
    pub probe_stderr_tail: String,
    /// The server's threads over the probe's window.
    pub server_run_queue: Option<RunQueueWindow>,
    /// Seconds until the machine's TCP sockets were back near the baseline after the step.
    pub teardown_s: Option<f64>,
}

impl StepRecord {
    pub fn id(&self) -> String {
        step_id(&self.model, self.conns)
    }

    /// Every connection established and answered, no error, and every window
    /// request the load generator sent answered (one it was too late to send
    /// before the window closed, `unsent`, is its own lateness, not the server's).
    pub fn held_all(&self) -> bool {
        self.outcome.is_ok()
            && self.alive.as_ref().is_some_and(|a| {
                let sent_answered = a.requests + a.unsent.unwrap_or(0) >= a.scheduled.unwrap_or(self.conns);
                a.established >= self.conns && a.starved == 0 && a.errors == 0 && sent_answered
            })
    }
}

/// `reuseport-c1000000`.
pub fn step_id(model: &str, conns: u64) -> String {
    format!("{model}-c{conns}")
}

/// How the documents' tuning script's settings fare in a network namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum SettingClass {
    /// A `net.*` sysctl the kernel keeps per namespace (it exists inside a new one): written there.
    PerNamespace,
    /// Not per namespace: writing it would change the host, so it is not written.
    Global { why: String },
    /// This kernel has no such setting.
    Absent { why: String },
    /// A process limit, not a sysctl: set on the server process itself (with the value used).
    ProcessLimit { used: String, why: String },
}

/// One setting of 003 §6.2's script.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    /// The documents' value.
    pub value: String,
    pub class: SettingClass,
}

/// `t5/namespaces.json`: the T5 experiment as a whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct T5Info {
    pub schema: u32,
    /// Why T5 could not run in namespaces here (not root, no `ip`, creating one failed); `None` when it ran.
    pub unavailable: Option<String>,
    /// The design in one paragraph (veth pair, who runs where), for the report.
    pub design: String,
    pub settings: Vec<Setting>,
    /// The host's value of every setting before and after the runs (`/proc/sys`).
    pub host_before: Vec<(String, String)>,
    pub host_after: Vec<(String, String)>,
    pub server_procs: u32,
    pub max_conns: u64,
    pub short_conns: u64,
    pub reps: u32,
    /// Namespaces left by a killed run and removed at the start.
    pub leftovers_removed: usize,
}

impl T5Info {
    /// True when every host value read after the runs equals the one read before.
    pub fn host_unchanged(&self) -> bool {
        !self.host_before.is_empty() && self.host_before == self.host_after
    }
}

/// One run in a pair of namespaces: `defaults` or `tuned`, `max-conns` or `short`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NsRun {
    pub schema: u32,
    pub config: String,
    pub kind: String,
    pub rep: u32,
    /// RLIMIT_NOFILE of the server's processes.
    pub server_nofile: u64,
    pub server_procs: u32,
    pub server_ns: String,
    pub client_ns: String,
    /// Every setting as read inside the server's and the client's namespace before the load.
    pub ns_values: Vec<(String, Option<String>, Option<String>)>,
    /// Writes that failed (key: error); empty when every per-namespace setting took.
    pub write_errors: Vec<String>,
    pub server_args: Vec<String>,
    pub load_args: Vec<String>,
    pub outcome: Outcome,
    pub ready_line: Option<String>,
    pub server_stats: Option<ServerStats>,
    pub server_exit: String,
    pub server_stderr_tail: String,
    pub load: Option<LoadFigures>,
    pub load_raw: Option<serde_json::Value>,
    pub load_exit: String,
    pub load_stderr_tail: String,
    /// The server's CPU over the load's measured window, and that window.
    pub server_cpu_s: Option<f64>,
    pub window_s: Option<f64>,
    pub server_cpus: usize,
    /// Counters inside the server's and the client's namespace over the run.
    pub server_counters: Counters,
    pub client_counters: Counters,
    /// Descriptors of the server's processes once ready, before any connection.
    pub server_fds_base: Option<u64>,
    /// TIME_WAIT sockets in the client's namespace when the load ended.
    pub client_time_wait: Option<u64>,
    /// Ephemeral ports of the client's source addresses (its namespace's range x addresses).
    pub client_ports: Option<u64>,
    /// Descriptors of the server's processes mid-window: all, and the fullest process's.
    pub server_fds: Option<u64>,
    pub server_fds_max: Option<u64>,
    pub started_unix_ms: u64,
    pub wall_s: f64,
    pub loadavg_before: String,
}

impl NsRun {
    /// A run not yet started: `ok`, every figure missing.
    pub fn new(config: &str, kind: &str, rep: u32) -> NsRun {
        NsRun {
            schema: crate::results::SCHEMA,
            config: config.into(),
            kind: kind.into(),
            rep,
            server_nofile: 0,
            server_procs: 0,
            server_ns: String::new(),
            client_ns: String::new(),
            ns_values: Vec::new(),
            write_errors: Vec::new(),
            server_args: Vec::new(),
            load_args: Vec::new(),
            outcome: Outcome::Ok,
            ready_line: None,
            server_stats: None,
            server_exit: String::new(),
            server_stderr_tail: String::new(),
            load: None,
            load_raw: None,
            load_exit: String::new(),
            load_stderr_tail: String::new(),
            server_cpu_s: None,
            window_s: None,
            server_cpus: 0,
            server_counters: Counters::default(),
            client_counters: Counters::default(),
            server_fds_base: None,
            client_time_wait: None,
            client_ports: None,
            server_fds: None,
            server_fds_max: None,
            started_unix_ms: 0,
            wall_s: 0.0,
            loadavg_before: String::new(),
        }
    }

    pub fn file_name(config: &str, kind: &str, rep: u32) -> String {
        format!("{config}-{kind}-rep{rep}.json.gz")
    }

    /// Server CPU utilisation over the window, as a share of its CPUs.
    pub fn cpu_util(&self) -> Option<f64> {
        let (cpu, w) = (self.server_cpu_s?, self.window_s?);
        (w > 0.0 && self.server_cpus > 0).then(|| cpu / w / self.server_cpus as f64)
    }

    /// Connections the server held at once: its peak descriptors less those it had when ready.
    pub fn held_peak(&self) -> Option<u64> {
        Some(self.server_fds?.saturating_sub(self.server_fds_base?))
    }

    /// Server CPU per answered request in the window, microseconds.
    pub fn cpu_us_per_req(&self) -> Option<f64> {
        let l = self.load.as_ref()?;
        let cpu = self.server_cpu_s?;
        (l.answers_in_window > 0).then(|| cpu * 1e6 / l.answers_in_window as f64)
    }
}

/// `c1m.json`: the run as a whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct C1mRun {
    pub schema: u32,
    pub started_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    pub interrupted: bool,
    pub budget_s: f64,
    pub planned_s: f64,
    pub loadavg_before: String,
    pub loadavg_after: String,
    /// The settings of the run (steps, models, windows), as `--flag value` pairs.
    pub settings: Vec<(String, String)>,
    /// Step ids in the order planned.
    pub planned: Vec<String>,
    /// Descriptors one process may hold here (the hard RLIMIT_NOFILE), and how
    /// many connections a process was given.
    pub nofile_hard: u64,
    pub conns_per_proc: u64,
    /// Things the run wants the reader to know (a step skipped for time, T5 not run).
    pub notes: Vec<String>,
}

/// A C1M folder read back.
#[derive(Clone, Debug, Default)]
pub struct C1mResults {
    pub dir: PathBuf,
    /// How the report links to the folder (set by the report, relative to it).
    pub link: String,
    pub run: Option<C1mRun>,
    pub env: Option<crate::env::EnvInfo>,
    pub steps: Vec<StepRecord>,
    pub t5: Option<T5Info>,
    pub t5_runs: Vec<NsRun>,
}

fn files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(BenchError::io("read folder", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    Ok(out)
}

impl C1mResults {
    /// Read a C1M folder. A folder with neither steps nor T5 runs is an error.
    pub fn load(dir: &Path) -> Result<C1mResults> {
        let opt = |name: &str| dir.join(name).exists().then(|| dir.join(name));
        let run = opt("c1m.json").map(|p| read_json::<C1mRun>(&p)).transpose()?;
        let env = opt("env.json").map(|p| read_json::<crate::env::EnvInfo>(&p)).transpose()?;
        let mut steps: Vec<StepRecord> =
            files(&dir.join("steps"), ".json.gz")?.iter().map(|p| read_json(p)).collect::<Result<_>>()?;
        // Ladder order: model as planned, then connections.
        let order = |m: &str| run.as_ref().and_then(|r| r.planned.iter().position(|id| id.starts_with(m)));
        steps.sort_by_key(|s| (order(&s.model).unwrap_or(usize::MAX), s.model.clone(), s.conns));
        let t5 = opt("t5/namespaces.json").map(|p| read_json::<T5Info>(&p)).transpose()?;
        let t5_runs: Vec<NsRun> =
            files(&dir.join("t5"), ".json.gz")?.iter().map(|p| read_json(p)).collect::<Result<_>>()?;
        if steps.is_empty() && t5.is_none() {
            return Err(BenchError::Empty(dir.into()));
        }
        Ok(C1mResults { dir: dir.into(), link: dir.display().to_string(), run, env, steps, t5, t5_runs })
    }

    /// Model keys in ladder order.
    pub fn models(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.steps {
            if !out.contains(&s.model) {
                out.push(s.model.clone());
            }
        }
        out
    }

    pub fn steps_of(&self, model: &str) -> Vec<&StepRecord> {
        self.steps.iter().filter(|s| s.model == model).collect()
    }
}
