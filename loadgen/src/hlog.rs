//! `--hlog FILE`: the run as a standard HdrHistogram interval log, written with
//! the `hdrhistogram` crate's `interval_log` writer (what HdrHistogram's
//! `HistogramLogProcessor` and HistogramLogAnalyzer read): `#[StartTime]` (the
//! window's start), `#[BaseTime]` (interval 0's start), `#[MaxValueDivisor]`
//! (values are ns, the max column in ms), then per 1-second interval one line
//! per tag (`corrected`, `uncorrected`, `first_byte`, `connect`), each a V2
//! deflate histogram in base64.
//!
//! Two comment lines make a log mergeable without loss: a header
//! (`#[c10k-log {json}]`: the run's id, shard, unit and precision) and a trailer
//! (`#[c10k-end {json}]`: the configuration, the counters, errors and timeline of
//! the run, and how many intervals and samples per tag it wrote). Standard tools
//! skip both as comments. [`read`] checks a log against its trailer, so a
//! truncated or edited file is an error rather than a smaller total.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::clock::SEC;
use crate::config::Config;
use crate::error::LoadError;
use crate::intervals::Phase;
use crate::json_report::Environment;
use crate::outcome::Times;
use crate::recorder::Recorder;
use crate::wire::WireRecorder;

/// Version of the header and trailer lines.
pub const LOG_VERSION: u32 = 1;
/// Values are nanoseconds; the max column is divided into milliseconds.
const MAX_VALUE_DIVISOR: f64 = 1_000_000.0;

/// The `#[c10k-log ...]` header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub tool: String,
    /// Unique per process run: host, pid and start time.
    pub run: String,
    /// `I/N`, or `None` for a whole load.
    pub shard: Option<String>,
    /// Unit of the recorded values.
    pub unit: String,
    /// Significant digits of every histogram.
    pub significant_digits: u8,
}

/// The `#[c10k-end ...]` trailer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Trailer {
    pub run: String,
    /// Interval lines written (intervals x tags).
    pub lines: u64,
    /// Samples written per tag, in [`Phase::ALL`] order.
    pub samples: Vec<u64>,
    pub config: Config,
    pub env: Environment,
    pub started_unix_ms: u64,
    /// Wall-clock start of the window, Unix ns.
    pub window_start_unix_ns: Option<i128>,
    /// Everything else the run measured; its phase histograms are in the intervals.
    pub recorder: WireRecorder,
}

/// A run id: host, pid, wall-clock start.
pub fn run_id(env: &Environment, started_unix_ms: u64) -> String {
    format!("{}-{}-{}", env.hostname, std::process::id(), started_unix_ms)
}

fn decode(bytes: &[u8]) -> Result<Histogram<u64>, String> {
    Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| format!("{e:?}"))
}

fn unix_time(ns: i128) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// Write the interval log of a finished run.
pub fn write(
    out: &mut impl Write,
    config: &Config,
    env: &Environment,
    rec: &Recorder,
    times: &Times,
) -> Result<(), LoadError> {
    let bad = |e: String| LoadError::Histogram(e);
    let io = |e: std::io::Error| LoadError::io("write the interval log", e);
    let Some(iv) = &rec.intervals else { return Err(bad("no intervals were recorded".into())) };
    let run = run_id(env, times.started_unix_ms);
    // Add every thread's (and process's) histograms of the same interval and phase.
    let last = iv.done.iter().map(|d| d.index).max();
    let count = last.map_or(0, |l| l + 1) as usize;
    let mut table: Vec<Vec<Histogram<u64>>> =
        (0..count).map(|_| Phase::ALL.iter().map(|_| crate::hist::histogram()).collect()).collect();
    for d in &iv.done {
        table[d.index as usize][usize::from(d.phase)]
            .add(decode(&d.bytes).map_err(bad)?)
            .map_err(|e| bad(format!("{e:?}")))?;
    }
    let wall = |mono: u64| i128::from(mono) + times.unix_offset_ns;
    let window_start = rec.counts.window_start_ns.map(|w| match config.settings.start_at_unix_ms {
        Some(ms) => i128::from(ms) * 1_000_000,
        None => wall(w),
    });
    // With --start-at, interval 0 lies whole seconds before the exact start.
    let base = match (config.settings.start_at_unix_ms, window_start, rec.counts.window_start_ns) {
        (Some(_), Some(start), Some(w)) => start - i128::from(w - iv.base_ns),
        _ => wall(iv.base_ns),
    };
    let header = Header {
        version: LOG_VERSION,
        tool: format!("c10k load {}", env!("CARGO_PKG_VERSION")),
        run: run.clone(),
        shard: config.shard.map(|s| s.to_string()),
        unit: "ns".into(),
        significant_digits: crate::hist::histogram().sigfig(),
    };
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment(&format!("[c10k-log {}]", serde_json::to_string(&header)?))
        .add_comment("[Tags: corrected (from the scheduled send), uncorrected (full answer, from the send), first_byte, connect]")
        .with_base_time(unix_time(base))
        .with_max_value_divisor(MAX_VALUE_DIVISOR);
    builder.with_start_time(unix_time(window_start.unwrap_or(base)));
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = builder.begin_log_with(out, &mut serializer).map_err(io)?;
    let end = rec.counts.ended_ns.max(iv.base_ns);
    let mut samples = vec![0u64; Phase::ALL.len()];
    let mut lines = 0;
    for (index, row) in table.iter().enumerate() {
        let start = index as u64 * SEC;
        let length = (end - iv.base_ns).saturating_sub(start).clamp(1, SEC);
        for phase in Phase::ALL {
            let h = &row[phase as usize];
            samples[phase as usize] += h.len();
            let tag = Tag::new(phase.tag());
            writer
                .write_histogram(h, Duration::from_nanos(start), Duration::from_nanos(length), tag)
                .map_err(|e| bad(e.to_string()))?;
            lines += 1;
        }
    }
    let mut rest = rec.clone();
    for phase in Phase::ALL {
        rest.phase_mut(phase).reset();
    }
    rest.intervals = None;
    let trailer = Trailer {
        run,
        lines,
        samples,
        config: config.clone(),
        env: env.clone(),
        started_unix_ms: times.started_unix_ms,
        window_start_unix_ns: window_start,
        recorder: WireRecorder::from_recorder(&rest),
    };
    writer.write_comment(&format!("[c10k-end {}]", serde_json::to_string(&trailer)?)).map_err(io)?;
    Ok(())
}

/// One interval line as read back.
#[derive(Debug)]
pub struct Interval {
    pub phase: Phase,
    /// Absolute start, Unix ms (BaseTime + the line's timestamp).
    pub start_unix_ms: i64,
    pub histogram: Histogram<u64>,
}

/// A log read back and checked.
#[derive(Debug)]
pub struct Log {
    pub header: Header,
    pub trailer: Trailer,
    pub intervals: Vec<Interval>,
}

/// Read and check the interval log `text` (named `name` in errors): written by
/// `c10k load`, complete (its trailer is there and agrees with what was read),
/// every histogram decodable and of the header's precision.
pub fn read(name: &str, text: &str) -> Result<Log, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(format!("{name}: truncated: the last line is incomplete"));
    }
    let (mut header, mut trailer, mut base_s) = (None::<Header>, None::<Trailer>, None::<f64>);
    let mut intervals = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{name}:{}", n + 1);
        if trailer.is_some() {
            return Err(format!("{}: a line after the end line: two logs in one file?", at()));
        }
        if let Some(json) = line.strip_prefix("#[c10k-log ").and_then(|l| l.strip_suffix(']')) {
            header = Some(serde_json::from_str(json).map_err(|e| format!("{}: bad header: {e}", at()))?);
        } else if let Some(json) = line.strip_prefix("#[c10k-end ").and_then(|l| l.strip_suffix(']')) {
            trailer = Some(serde_json::from_str(json).map_err(|e| format!("{}: bad end line: {e}", at()))?);
        } else if let Some(t) = line.strip_prefix("#[BaseTime: ") {
            let secs = t.split(' ').next().and_then(|s| s.parse::<f64>().ok());
            base_s = Some(secs.ok_or_else(|| format!("{}: bad BaseTime", at()))?);
        } else if line.starts_with('#') || line.starts_with('"') || line.is_empty() {
            continue;
        } else {
            let Some(h) = header.as_ref() else {
                return Err(format!(
                    "{name}: not a c10k load interval log (no #[c10k-log ...] header before the intervals)"
                ));
            };
            let with_newline = format!("{line}\n");
            let entry = IntervalLogIterator::new(with_newline.as_bytes()).next();
            let Some(Ok(LogEntry::Interval(iv))) = entry else {
                return Err(format!("{}: not an interval line", at()));
            };
            let phase = iv
                .tag()
                .and_then(|t| Phase::from_tag(t.as_str()))
                .ok_or_else(|| format!("{}: unknown tag {:?}", at(), iv.tag().map(|t| t.as_str().to_string())))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(iv.encoded_histogram())
                .map_err(|e| format!("{}: bad base64: {e}", at()))?;
            let histogram = decode(&bytes).map_err(|e| format!("{}: bad histogram: {e}", at()))?;
            if histogram.sigfig() != h.significant_digits {
                return Err(format!(
                    "{}: a histogram of {} significant digits in a log that says {}",
                    at(),
                    histogram.sigfig(),
                    h.significant_digits
                ));
            }
            let base = base_s.ok_or_else(|| format!("{}: an interval before #[BaseTime]", at()))?;
            let start = base + iv.start_timestamp().as_secs_f64();
            intervals.push(Interval { phase, start_unix_ms: (start * 1000.0).round() as i64, histogram });
        }
    }
    let header = header.ok_or_else(|| format!("{name}: not a c10k load interval log (no #[c10k-log ...] header)"))?;
    let trailer = trailer.ok_or_else(|| format!("{name}: truncated: no #[c10k-end ...] line (was the run killed?)"))?;
    if trailer.run != header.run {
        return Err(format!("{name}: the end line belongs to run {}, the header to {}", trailer.run, header.run));
    }
    if trailer.lines != intervals.len() as u64 {
        return Err(format!(
            "{name}: {} interval lines, the end line says {}: truncated or edited",
            intervals.len(),
            trailer.lines
        ));
    }
    for phase in Phase::ALL {
        let read: u64 = intervals.iter().filter(|i| i.phase == phase).map(|i| i.histogram.len()).sum();
        if Some(&read) != trailer.samples.get(phase as usize) {
            return Err(format!(
                "{name}: {read} {} samples, the end line says {:?}",
                phase.tag(),
                trailer.samples.get(phase as usize)
            ));
        }
    }
    Ok(Log { header, trailer, intervals })
}
