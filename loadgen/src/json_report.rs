//! The machine-readable result of one `c10k load` run: what `--json FILE` writes.
//!
//! These types are the contract with the bench runner, which reads the JSON back
//! with `serde_json::from_str::<loadgen::json_report::Report>`. Fields are only ever
//! added; a change that removes or changes the meaning of a field bumps
//! [`SCHEMA`].
//!
//! # Conventions
//!
//! - Field names carry their unit: `_s` seconds, `_us` microseconds, `_ns`
//!   nanoseconds, `_per_sec` per second of the measured window.
//! - "Measured window": `duration` long, starting `warmup` after the load
//!   starts. Without `--connect-rate` the load starts once every connection
//!   (of every `--procs` process) has been opened, or has failed, once, so the connection
//!   ramp is not in the window (its figures are in [`Connections`] and
//!   [`Latencies::connect`]); with `--connect-rate` the load starts at once. A
//!   request belongs to the window when it was *scheduled* in it (open loop:
//!   its slot in the fixed-rate schedule; closed loop: the moment it was
//!   sent). Requests of the warmup and their answers appear in no figure. When
//!   the window ends no new request is sent; those still in flight are waited
//!   for (up to `--timeout`) so a stall at the very end is not silently
//!   dropped. Connect errors count from the first connect on.
//! - Latency distributions are exact HdrHistograms (3 significant digits) in
//!   nanoseconds, reported in microseconds. [`Histograms`] holds each one
//!   serialized (V2 format, no compression, hex) so that runs of several
//!   processes merge exactly: decode the hex, deserialize with
//!   `hdrhistogram::serialization::Deserializer`, then `Histogram::add`.

use serde::{Deserialize, Serialize};

pub use crate::settings::Settings;

/// Version of this schema; the `schema` field of every [`Report`].
pub const SCHEMA: u32 = 1;

/// Encoding of the strings in [`Histograms`].
pub const HISTOGRAM_ENCODING: &str = "hdrhistogram-v2-hex";

/// One run of `c10k load`, merged over all its threads and processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`] of the writer.
    pub schema: u32,
    /// `c10k load <crate version>`.
    pub tool: String,
    /// Wall-clock start of the run (first connect), milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// The configuration, as validated (defaults filled in).
    pub config: RunConfig,
    /// The machine the load generator ran on.
    pub env: Environment,
    /// Counts and rates over the measured window.
    pub totals: Totals,
    /// Every failure, by kind; never silently dropped.
    pub errors: Errors,
    /// Latency distributions.
    pub latency: Latencies,
    /// Connection establishment, reconnects, starvation.
    pub connections: Connections,
    /// Open-loop schedule figures; `None` in closed loop.
    pub open_loop: Option<OpenLoop>,
    /// One entry per second of the measured window, in order.
    pub timeline: Vec<TimelineSecond>,
    /// The load generator's own CPU use over the measured window.
    pub client: ClientUsage,
    /// True when the figures are (or may be) limited by the load generator
    /// rather than the server: its threads were near 100% busy, or an open-loop
    /// run could not keep to its schedule on idle connections.
    pub client_bound: bool,
    /// Why `client_bound` is true (empty when false), one sentence each.
    pub client_bound_reasons: Vec<String>,
    /// True when the error rate was within `config.max_error_rate` (the exit
    /// status is non-zero otherwise).
    pub passed: bool,
    /// The raw histograms, for exact merging across runs or processes.
    pub histograms: Histograms,
    /// How evenly the connections were served over the window; `None` when no
    /// connection carried load in a measured window.
    #[serde(default)]
    pub fairness: Option<Fairness>,
}

/// Answers per connection over the measured window, and each connection's longest
/// gap between answers (see [`crate::fairness`]). Idle connections are left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// Connections that carried load.
    pub conns: u64,
    /// Jain's index of answers per connection: 1 = all equal, k/n = k of n served equally.
    pub jain_index: f64,
    pub answers_min: u64,
    pub answers_p1: u64,
    pub answers_median: u64,
    pub answers_p99: u64,
    pub answers_max: u64,
    /// Connections with fewer than half the median's answers, and their share.
    pub below_half_median: u64,
    pub below_half_median_share: f64,
    /// Connections with no answer in the window.
    pub unanswered_in_window: u64,
    /// Longest gap between answers per connection (window edges count), microseconds.
    pub longest_gap: Distribution,
}

/// Request loop: closed (send on answer) or open (fixed rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopMode {
    /// Each connection sends its next request when an answer arrives
    /// (`pipeline` requests in flight).
    Closed,
    /// Requests are scheduled at a fixed total rate, latency measured from the
    /// scheduled time (coordinated-omission corrected).
    Open,
}

/// The validated configuration of the run: the [`Settings`] as given (their
/// fields appear at this level: `addr`, `conns`, `duration_s`, ...), and what the
/// report derives from the rest of the configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Target, connections, threads, window, timeouts: see [`Settings`].
    #[serde(flatten)]
    pub settings: Settings,
    /// Closed or open loop.
    pub mode: LoopMode,
    /// Echo: bytes per request. HTTP: size of the request sent.
    pub msg_size: u64,
    /// Open loop: how requests were spaced (`uniform` or `poisson`); `None` in closed loop.
    #[serde(default)]
    pub arrivals: Option<crate::schedule::Arrivals>,
    /// Poisson arrivals: the generators' seed (`--seed`, default 1); `None` otherwise.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Open loop: how long before each send the thread stopped sleeping (`100us`), or
    /// `busy` (it never slept); `None` in closed loop.
    #[serde(default)]
    pub spin: Option<String>,
    /// HTTP: the request method (`-m`, default `GET`); `None` for echo.
    #[serde(default)]
    pub method: Option<String>,
    /// HTTP: the request's path and query (from the URL, default `/`); `None` for echo.
    #[serde(default)]
    pub path: Option<String>,
    /// HTTP: the `-H` headers as sent, `Name: value`.
    #[serde(default)]
    pub headers: Vec<String>,
    /// HTTP: size of the request body (`--body`, `--body-file`), bytes; `None` without one.
    #[serde(default)]
    pub body_bytes: Option<u64>,
    /// `--shard I/N` (0-based): this run drove shard I's part of the load; `None` for all of it.
    #[serde(default)]
    pub shard: Option<String>,
}

/// The machine the load generator ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Host name.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// CPUs this process may run on.
    pub cores: u32,
    /// CPU model name from `/proc/cpuinfo`, if known.
    pub cpu_model: Option<String>,
    /// `RLIMIT_NOFILE` soft limit as the run had it (after raising it to the hard limit).
    pub nofile_soft: u64,
    /// `RLIMIT_NOFILE` hard limit.
    pub nofile_hard: u64,
    /// `/proc/sys/net/ipv4/ip_local_port_range`, `[low, high]`.
    pub ephemeral_ports: Option<[u32; 2]>,
    /// `/proc/sys/net/core/somaxconn`.
    pub somaxconn: Option<u64>,
}

/// Counts and rates of the measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Measured requests answered (including answers that arrived while
    /// draining after the window); the count behind the latency figures.
    pub requests: u64,
    /// Answers that arrived inside the window (any request); `requests_per_sec`
    /// is computed from this, as wrk does.
    pub answers_in_window: u64,
    /// Measured requests sent (fully written).
    pub requests_sent: u64,
    /// Length of the measured window, seconds (shorter than `duration` when a
    /// `--requests` bound ended the run first).
    pub duration_s: f64,
    /// `answers_in_window / duration_s`.
    pub requests_per_sec: f64,
    /// Bytes written during the window.
    pub bytes_sent: u64,
    /// Bytes read during the window.
    pub bytes_received: u64,
    /// `bytes_received / duration_s`.
    pub received_bytes_per_sec: f64,
    /// HTTP: measured answers by status class (interim 1xx answers are skipped,
    /// not counted); `None` for echo.
    #[serde(default)]
    pub status_classes: Option<StatusClasses>,
}

/// Measured HTTP answers by status class. Statuses of 400 and more are also
/// counted as `bad_status` errors; 3xx are answers, not errors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusClasses {
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "3xx")]
    pub redirect: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
    /// Statuses outside 200..=599.
    pub other: u64,
}

/// Failures by kind. Request-level kinds count failed requests (each request in
/// flight on a connection that fails counts once); connect kinds count failed
/// connect attempts. Only the measured window counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Errors {
    /// Sum of all kinds below (not `starved_conns`).
    pub total: u64,
    /// `total / (totals.requests + total - bad_status)` (a bad status is also an
    /// answer); 1.0 when nothing was answered and something failed.
    pub rate: f64,
    /// Connect attempts refused (`ECONNREFUSED`).
    pub connect_refused: u64,
    /// Connect attempts not completed within `--connect-timeout`.
    pub connect_timeout: u64,
    /// Connect attempts failing otherwise (e.g. `EADDRNOTAVAIL`: out of source ports).
    pub connect_other: u64,
    /// Requests lost to a connection reset by the peer.
    pub reset: u64,
    /// Requests unanswered after `--timeout`.
    pub timeout: u64,
    /// Answers that do not frame or do not match the request (echo byte check, HTTP framing).
    pub bad_answer: u64,
    /// HTTP answers with a status of 400 or more (their latency is still recorded).
    pub bad_status: u64,
    /// Requests lost because the server closed the connection before answering them.
    pub closed_early: u64,
    /// Other I/O errors on established connections.
    pub other: u64,
    /// Connection slots that got no answer at all during the whole run (warmup included).
    pub starved_conns: u64,
    /// One entry per kind that occurred: how often, on how many connection slots,
    /// and the first error message seen.
    pub details: Vec<ErrorDetail>,
}

/// One kind of error that occurred.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The field name in [`Errors`], e.g. `connect_refused`.
    pub kind: String,
    /// Occurrences (same as the field of that name).
    pub count: u64,
    /// Distinct connection slots that saw it at least once.
    pub conns: u64,
    /// First message seen, e.g. `connect to 127.0.0.1:1: Connection refused (os error 111)`.
    pub message: String,
}

/// Latency distributions of the measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// Answer time minus *scheduled* time (coordinated-omission corrected). In
    /// closed loop a request is scheduled when sent, so it equals `uncorrected`.
    pub corrected: Distribution,
    /// Answer time minus the time the request was actually sent (service time).
    pub uncorrected: Distribution,
    /// Connect latency of the initial connections (connect call to established).
    pub connect: Distribution,
    /// Time to first byte: from the request's send to the first byte of its
    /// answer (an interim 1xx counts). The full answer is `uncorrected`.
    #[serde(default)]
    pub first_byte: Distribution,
    /// Time to reopen a connection: from closing the old socket to the new one
    /// being established (`--reqs-per-conn`, server-side closes, failures).
    pub reconnect: Distribution,
}

/// A latency distribution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Samples.
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub stdev_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
    /// The full distribution as HdrHistogram prints it (5 steps per halving of
    /// the remaining tail), for a spectrum plot with x = 1/(1 - percentile/100).
    pub percentiles: Vec<PercentilePoint>,
}

/// One point of a percentile distribution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PercentilePoint {
    /// Percentile, 0..=100.
    pub percentile: f64,
    /// Latency at that percentile, microseconds.
    pub value_us: f64,
    /// Samples at or below `value_us`.
    pub count: u64,
}

/// Connection establishment and reuse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    /// Connection slots this run drove (`--conns` plus `--idle-conns`, or a shard's part of them).
    pub target: u64,
    /// Connection slots established at least once.
    pub established: u64,
    /// Seconds from the first connect call until all `target` connections had
    /// been established; `None` if they never all were.
    pub all_established_s: Option<f64>,
    /// Highest number of connections open at once.
    pub peak_open: u64,
    /// Connections open when the measured window ended.
    pub open_at_end: u64,
    /// Reconnects during the measured window (planned and after failures).
    pub reconnects: u64,
    /// Reconnects because the server closed (e.g. `Connection: close`) between answers.
    pub server_closes: u64,
    /// Connection slots that got no answer in the whole run (same as `errors.starved_conns`).
    pub starved: u64,
    /// Connections the server closed on its own, silent and live (see [`crate::silent`]).
    #[serde(default)]
    pub closed_by_server: ClosedByServer,
}

/// Open-loop schedule figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenLoop {
    /// Requests per second asked for.
    pub target_rate: f64,
    /// Measured requests answered per second of the window.
    pub achieved_rate: f64,
    /// Measured requests sent per second of the window.
    pub sent_rate: f64,
    /// Requests the schedule placed in the window (`totals.requests_sent + unsent`).
    pub scheduled: u64,
    /// Requests scheduled in the window but never sent, because their connection
    /// was still waiting for earlier answers when the window ended: the server
    /// did not keep up. They are in no latency figure.
    #[serde(default)]
    pub unsent: u64,
    /// Send time minus scheduled time, for every measured request: waiting for a
    /// free connection (server slowness) plus the client's own lateness.
    pub schedule_lag: Distribution,
    /// Send time minus scheduled time for requests whose connection was free
    /// when they came due: the load generator's own lateness alone.
    pub dispatch_lag: Distribution,
    /// True when the client itself fell behind (dispatch lag p99 over 10 ms).
    pub client_behind: bool,
}

/// One second of the measured window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineSecond {
    /// Seconds since the start of the window (0 for the first).
    pub second: u32,
    /// Answers received during this second.
    pub answers: u64,
    /// Errors (all kinds) during this second.
    pub errors: u64,
    /// Median corrected latency of this second's answers, microseconds (0 if none).
    pub p50_us: f64,
    /// 99th percentile corrected latency of this second's answers, microseconds.
    pub p99_us: f64,
    /// Connections open at the end of this second.
    pub open_conns: u64,
}

/// The load generator's own CPU use over the measured window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientUsage {
    /// Event-loop threads over all processes.
    pub threads: u32,
    /// User CPU of the event-loop threads, seconds.
    pub cpu_user_s: f64,
    /// System CPU of the event-loop threads, seconds.
    pub cpu_sys_s: f64,
    /// `(cpu_user_s + cpu_sys_s) / (threads * window)`: 1.0 = every thread always busy.
    pub utilisation: f64,
    /// Busiest thread's CPU time over the window, less its idle spinning: the
    /// fraction of the window it spent working.
    pub max_thread_utilisation: f64,
    /// CPU the event-loop threads spent spinning with nothing to do while waiting for a
    /// send (`--spin`), seconds summed over threads; included in `cpu_*_s`, not in the
    /// utilisations.
    #[serde(default)]
    pub idle_spin_s: f64,
    /// Time the hypervisor took the client's CPUs over the window (steal in
    /// `/proc/stat`, 10 ms resolution), seconds summed over those CPUs.
    #[serde(default)]
    pub steal_s: f64,
    /// Time the event-loop threads were runnable but waiting for a CPU
    /// (`/proc/thread-self/schedstat`), seconds summed over threads: high when
    /// the machine is oversubscribed.
    pub run_queue_wait_s: f64,
}

/// Raw histograms: HdrHistogram V2 serialization (uncompressed), hex-encoded,
/// values in nanoseconds. Empty histograms are serialized too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// Always [`HISTOGRAM_ENCODING`].
    pub encoding: String,
    /// Unit of the recorded values: `ns`.
    pub unit: String,
    /// See [`Latencies::corrected`].
    pub corrected: String,
    /// See [`Latencies::uncorrected`].
    pub uncorrected: String,
    /// See [`Latencies::connect`].
    pub connect: String,
    /// See [`Latencies::reconnect`].
    pub reconnect: String,
    /// See [`Latencies::first_byte`] (absent in reports older than it).
    #[serde(default)]
    pub first_byte: String,
}

/// Connections the server closed on its own (`connections.closed_by_server`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClosedByServer {
    /// Closed by the server with nothing outstanding and unannounced, over the
    /// whole run (warmup included). Not errors.
    pub count: u64,
    /// Of which silent ones (`--silent-conns`, `--idle-conns`): each closed
    /// once, not reopened.
    pub silent: u64,
    /// Of which live ones, still sending: the server should have kept them.
    pub live: u64,
    /// From each one's last request (or its connect, if it sent none) to the close.
    pub after_last_request: Distribution,
    /// The same as an HdrHistogram (V2, hex, nanoseconds), for exact merging.
    pub histogram: String,
}
