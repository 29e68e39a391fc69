//! The results folder and its versioned schema.
//!
//! ```text
//! results/<date>-<host>/
//!   env.json              the machine, limits, versions, pinning, the plan   (env::EnvInfo)
//!   cells/<id>.json.gz    one per cell, gzip-compressed JSON (older folders: <id>.json): plan, outcome, load generator report,
//!                         server stats, monitor samples, derived figures      (CellRecord)
//!   summary.csv           one row per group (cells differing only in repetition): medians
//!   plots/*.svg
//! ```
//!
//! Every JSON file has a `schema` field; [`SCHEMA`] changes when a field changes
//! meaning or disappears, and a reader refuses a schema it does not know.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BenchError, Result};
use crate::matrix::Cell;
use crate::monitor::Sample;

/// Version of the results schema (cell files and env.json).
pub const SCHEMA: u32 = 1;

/// How a cell ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Ran to the end; the figures are valid (starved connections are a finding, not a failure).
    Ok,
    /// The model cannot run here: the server exited before its ready line.
    CannotRun { reason: String },
    /// Something went wrong; figures present are partial. `stage`: ready, load, server, limit.
    Failed { stage: String, reason: String },
    /// Not run on purpose (a sweep past its knee).
    Skipped { reason: String },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// One short phrase for tables.
    pub fn label(&self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::CannotRun { reason } => format!("cannot run: {reason}"),
            Outcome::Failed { stage, reason } => format!("failed ({stage}): {reason}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        }
    }
}

/// The server's exit `stats {json}` line: the servers' own counters, and any key
/// they do not know (a newer or older server) kept in `other`. Stored flat, as printed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    #[serde(flatten)]
    pub counters: servers::StatsSnapshot,
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, serde_json::Value>,
}

/// What the server process said and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerRun {
    /// The ready line as printed.
    pub ready_line: Option<String>,
    pub pid: Option<i32>,
    /// `nofile=` of the ready line.
    pub nofile: Option<u64>,
    /// Milliseconds from spawn to the ready line.
    pub ready_ms: Option<u64>,
    pub stats: Option<ServerStats>,
    /// `exit status 0`, `killed by signal 9`, ...
    pub exit: String,
    /// True when SIGTERM was not enough and the group was killed.
    pub killed: bool,
    pub stderr_tail: String,
    /// How the server's cost was accounted in this cell (cgroup or `/proc`, and why).
    #[serde(default)]
    pub accounting: Option<crate::cgroup::Accounting>,
    /// After the load: the server's CPU by its cgroup and by `/proc`, at one moment.
    #[serde(default)]
    pub cpu_check: Option<CpuCheck>,
}

/// The server's whole CPU since it started, counted two independent ways.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuCheck {
    /// `cpuacct` / `cpu.stat` of its cgroup, microseconds.
    pub cgroup_us: u64,
    /// Sum over live members of `utime + stime + cutime + cstime`, microseconds.
    pub proc_us: u64,
    /// Processes in the group at that moment.
    pub members: u64,
}

/// The figures of the load generator's report the bench uses (the full report is kept in `load_raw`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary {
    pub requests: u64,
    pub requests_per_sec: f64,
    pub window_s: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// Service-time (uncorrected) p99, microseconds.
    pub p99_uncorrected_us: f64,
    pub connect_p99_us: f64,
    pub connect_max_us: f64,
    pub connect_count: u64,
    /// `(percentile, microseconds)` of the corrected distribution.
    pub spectrum: Vec<(f64, f64)>,
    pub errors: u64,
    pub error_rate: f64,
    /// `(kind, count)` for every kind that occurred.
    pub errors_by_kind: Vec<(String, u64)>,
    pub starved: u64,
    pub established: u64,
    pub all_established_s: Option<f64>,
    pub peak_open: u64,
    pub open_at_end: u64,
    pub reconnects: u64,
    /// Open loop: target and achieved rates.
    pub target_rate: Option<f64>,
    pub achieved_rate: Option<f64>,
    /// `(second, answers, p99 us, open connections)`.
    pub timeline: Vec<(u32, u64, f64, u64)>,
    pub client_utilisation: f64,
    pub client_cpu_s: f64,
    pub client_bound: bool,
    pub client_bound_reasons: Vec<String>,
    /// Start of the measured window, ms since the epoch (estimated when the report lacks it).
    pub window_start_unix_ms: u64,
    /// Jain's index of answers per connection over the window, and the connections
    /// with under half the median's answers (`c10k load`'s fairness figures; `None`
    /// in reports older than them).
    #[serde(default)]
    pub jain_index: Option<f64>,
    #[serde(default)]
    pub below_half_median: Option<u64>,
}

/// Figures derived from the monitor samples and the load report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    pub baseline_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    pub peak_pss_bytes: Option<u64>,
    /// Peak of the anonymous part of PSS (what grows with connections).
    pub peak_pss_anon_bytes: Option<u64>,
    pub peak_vsz_bytes: u64,
    pub peak_threads: u64,
    pub peak_procs: u64,
    pub peak_fds: u64,
    pub peak_tcp_mem_bytes: u64,
    /// `(memory - baseline) / connections held`, bytes, both from the sample that held the
    /// most connections (`mem_source` says which memory).
    pub mem_per_conn_bytes: Option<f64>,
    /// `(TCP buffer memory + unreclaimable slab, that sample - baseline) / connections held`: kernel
    /// memory per connection, both ends of the loopback connection, machine-wide (noisy).
    pub kernel_per_conn_bytes: Option<f64>,
    /// Server CPU (user + system) over the measured window per answered request, microseconds.
    pub cpu_us_per_req: Option<f64>,
    /// Server CPU over the window as a fraction of its CPU set (1.0 = all its CPUs busy).
    pub server_cpu_util: Option<f64>,
    /// Context switches (voluntary + involuntary) over the window per request.
    pub ctx_per_req: Option<f64>,
    /// Busy time of the server's CPUs spent on *other* processes over the window, as a
    /// fraction of their capacity: a noisy neighbour (0 on a quiet machine).
    #[serde(default)]
    pub foreign_cpu_util: Option<f64>,
    /// Connections the server held at the peak (distinct sockets over baseline).
    pub conns_held: u64,
    /// The load generator was (or may have been) the bottleneck.
    pub client_bound: bool,
    /// `cgroup` or `proc`: where the CPU figures come from (see [`crate::cgroup`]).
    #[serde(default)]
    pub cpu_source: Option<String>,
    /// Where the memory per connection comes from (`cgroup anon`, `anonymous PSS`, `RSS`).
    #[serde(default)]
    pub mem_source: Option<String>,
    /// Memory (of `mem_source`) in the sample that held `conns_held`, and in the baseline.
    #[serde(default)]
    pub held_mem_bytes: Option<u64>,
    #[serde(default)]
    pub held_base_mem_bytes: Option<u64>,
    /// The server's own TCP buffer memory per connection (its cgroup), same sample.
    #[serde(default)]
    pub server_tcp_per_conn_bytes: Option<f64>,
    /// Highest memory charged to the server's cgroup in a sample.
    #[serde(default)]
    pub peak_cg_mem_bytes: Option<u64>,
    /// Samples taken, and their median spacing in ms.
    pub samples: usize,
    pub sample_interval_ms: f64,
}

/// Everything known about one cell: the file `cells/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub schema: u32,
    pub cell: Cell,
    pub outcome: Outcome,
    pub server_cpus: Vec<usize>,
    pub client_cpus: Vec<usize>,
    pub started_unix_ms: u64,
    pub wall_s: f64,
    pub server: ServerRun,
    pub load: Option<LoadSummary>,
    /// Exit status of `c10k load`, and the tail of its stderr.
    pub load_exit: Option<String>,
    pub load_stderr_tail: String,
    /// The load generator's full JSON report (`loadgen::json_report::Report`), as written.
    pub load_raw: Option<serde_json::Value>,
    pub samples: Vec<Sample>,
    pub derived: Derived,
}

impl CellRecord {
    /// Ok and with a load report.
    pub fn valid(&self) -> Option<&LoadSummary> {
        if self.outcome.is_ok() {
            self.load.as_ref()
        } else {
            None
        }
    }
}

/// File name of a cell: its id with `/` replaced, gzip-compressed JSON.
pub fn cell_file(dir: &Path, id: &str) -> PathBuf {
    dir.join("cells").join(format!("{}.json.gz", id.replace('/', "__")))
}

/// The file that holds a cell's record, compressed or (an older folder) plain, if either exists.
pub fn existing_cell_file(dir: &Path, id: &str) -> Option<PathBuf> {
    let gz = cell_file(dir, id);
    let plain = gz.with_extension("");
    [gz, plain].into_iter().find(|p| p.exists())
}

fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "gz")
}

/// Write `value` as JSON to `path`, atomically (temp file + rename): gzip-compressed when the
/// name ends in `.gz`, pretty-printed otherwise.
pub fn write_json<T: Serialize>(path: &Path, value: &T, what: &'static str) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(BenchError::io("create", parent))?;
    }
    let ser = |source| BenchError::Serialise { what, source };
    let bytes = if is_gz(path) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        serde_json::to_writer(&mut enc, value).map_err(ser)?;
        enc.flush().and_then(|_| enc.finish()).map_err(BenchError::io("compress", path))?
    } else {
        serde_json::to_string_pretty(value).map_err(ser)?.into_bytes()
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(BenchError::io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(BenchError::io("rename", path))
}

/// Read a JSON file (gzip-compressed when its name ends in `.gz`) whose top level has a
/// `schema` field equal to [`SCHEMA`].
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    use std::io::Read;
    let raw = std::fs::read(path).map_err(BenchError::io("read", path))?;
    let text = if is_gz(path) {
        let mut out = String::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut out)
            .map_err(|e| BenchError::Parse { path: path.into(), reason: format!("gzip: {e}") })?;
        out
    } else {
        String::from_utf8(raw).map_err(|e| BenchError::Parse { path: path.into(), reason: e.to_string() })?
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BenchError::Parse { path: path.into(), reason: e.to_string() })?;
    let schema = value.get("schema").and_then(|v| v.as_u64());
    if schema != Some(u64::from(SCHEMA)) {
        return Err(BenchError::Parse {
            path: path.into(),
            reason: format!("schema {schema:?}, this c10k reads schema {SCHEMA}"),
        });
    }
    serde_json::from_value(value).map_err(|e| BenchError::Parse { path: path.into(), reason: e.to_string() })
}

/// The cell files of a folder, `<id>.json.gz` or `<id>.json`, in file-name order; an id stored
/// both ways is an error (which one is the truth?).
fn cell_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let cells_dir = dir.join("cells");
    let entries = std::fs::read_dir(&cells_dir).map_err(BenchError::io("read folder", &cells_dir))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".json") || name.ends_with(".json.gz")
        })
        .collect();
    paths.sort();
    for pair in paths.windows(2) {
        let stem = |p: &Path| p.to_string_lossy().trim_end_matches(".gz").to_string();
        if stem(&pair[0]) == stem(&pair[1]) {
            return Err(BenchError::Parse {
                path: pair[1].clone(),
                reason: format!("the cell is stored twice ({} too); remove one", pair[0].display()),
            });
        }
    }
    Ok(paths)
}

/// Every cell record of a results folder, in file-name order.
pub fn read_cells(dir: &Path) -> Result<Vec<CellRecord>> {
    let paths = cell_paths(dir)?;
    let records = paths.iter().map(|p| read_json::<CellRecord>(p)).collect::<Result<Vec<_>>>()?;
    if records.is_empty() {
        return Err(BenchError::Empty(dir.into()));
    }
    Ok(records)
}

/// What [`compress_cells`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compressed {
    pub files: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Rewrite every plain `cells/<id>.json` of a folder as `<id>.json.gz`. Each record is read,
/// written compressed, read back and compared before the plain file is removed, so nothing
/// the report or `compare` reads is lost.
pub fn compress_cells(dir: &Path) -> Result<Compressed> {
    let mut done = Compressed::default();
    for plain in cell_paths(dir)?.into_iter().filter(|p| !is_gz(p)) {
        let rec: CellRecord = read_json(&plain)?;
        let mut gz = plain.as_os_str().to_owned();
        gz.push(".gz");
        let gz = PathBuf::from(gz);
        write_json(&gz, &rec, "cell record")?;
        let back: CellRecord = read_json(&gz)?;
        if back != rec {
            std::fs::remove_file(&gz).map_err(BenchError::io("remove", &gz))?;
            return Err(BenchError::Parse { path: plain, reason: "the compressed copy differs; left as is".into() });
        }
        done.files += 1;
        done.bytes_before += std::fs::metadata(&plain).map_err(BenchError::io("stat", &plain))?.len();
        done.bytes_after += std::fs::metadata(&gz).map_err(BenchError::io("stat", &gz))?.len();
        std::fs::remove_file(&plain).map_err(BenchError::io("remove", &plain))?;
    }
    Ok(done)
}
