//! What a thread measures: latency histograms, counters, errors by kind and a
//! per-second timeline. One [`Recorder`] per thread, no sharing on the hot path;
//! recorders of threads and processes merge exactly (HdrHistograms add).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::hist::{histogram, HIGHEST_NS};
use crate::intervals::{Intervals, Phase};

/// The smaller histogram of one second of the timeline (2 significant digits).
fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 2).expect("valid histogram bounds")
}

/// Kinds of error counted in a run (see [`crate::json_report::Errors`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    ConnectRefused,
    ConnectTimeout,
    ConnectOther,
    Reset,
    Timeout,
    BadAnswer,
    BadStatus,
    ClosedEarly,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectOther,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::BadAnswer,
        ErrorKind::BadStatus,
        ErrorKind::ClosedEarly,
        ErrorKind::Other,
    ];

    /// The field name in the report.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectOther => "connect_other",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::BadAnswer => "bad_answer",
            ErrorKind::BadStatus => "bad_status",
            ErrorKind::ClosedEarly => "closed_early",
            ErrorKind::Other => "other",
        }
    }

    /// Connect kinds count attempts; the others count requests.
    pub fn is_connect(self) -> bool {
        matches!(self, ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout | ErrorKind::ConnectOther)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Plain counters of a thread (all summed when merging, except where noted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Measured requests answered.
    pub requests: u64,
    pub answers_in_window: u64,
    /// Measured requests handed to the socket.
    pub sent: u64,
    /// Open loop: requests scheduled in the window but never sent (their
    /// connection stayed busy until the window ended).
    pub unsent: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub reconnects: u64,
    pub server_closes: u64,
    /// Connection slots driven.
    pub slots: u64,
    /// Slots established at least once.
    pub established: u64,
    /// When the last slot was first established (max when merging); `None` if
    /// some slot never was (then `None` when merging).
    pub all_established_ns: Option<u64>,
    /// First connect call (min when merging).
    pub first_connect_ns: Option<u64>,
    pub peak_open: u64,
    pub open_at_end: u64,
    pub starved: u64,
    /// Last measured answer (max when merging).
    pub last_answer_ns: u64,
    /// Length of the measured window as the thread saw it (max when merging):
    /// the duration, or less when `--requests` or a stop ended the run.
    pub window_ns: u64,
    /// Event-loop threads.
    pub threads: u32,
    pub cpu_user_ns: u64,
    pub cpu_sys_ns: u64,
    pub cpu_wait_ns: u64,
    /// CPU spent spinning idle before a send (summed when merging).
    #[serde(default)]
    pub idle_spin_ns: u64,
    /// Steal on the client's CPUs over the window (max when merging: every thread
    /// and process reads the same CPUs).
    #[serde(default)]
    pub steal_ns: u64,
    /// Fairness: answers in the window summed over the connections that carried
    /// load, and the sum of their squares (exact below 2^53), for Jain's index.
    #[serde(default)]
    pub fair_sum: u64,
    #[serde(default)]
    pub fair_sum_sq: f64,
    /// Busiest thread's CPU fraction of its window (max when merging).
    pub max_thread_util: f64,
    /// Measured HTTP answers by status / 100 (0: echo; 6 and more: in the last).
    #[serde(default)]
    pub status_classes: [u64; 7],
    /// When the thread stopped (monotonic ns; max when merging): the end of the last interval.
    #[serde(default)]
    pub ended_ns: u64,
    /// When the measured window started (monotonic ns; min when merging), once it did.
    #[serde(default)]
    pub window_start_ns: Option<u64>,
}

/// Errors of one kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorTally {
    pub count: u64,
    /// Connection slots that saw it.
    pub conns: u64,
    /// First message seen.
    pub message: Option<String>,
}

/// One second of the timeline.
#[derive(Clone, Debug)]
pub struct Second {
    pub answers: u64,
    pub errors: u64,
    pub open_conns: u64,
    /// Corrected latency of the answers of this second.
    pub latency: Histogram<u64>,
}

impl Second {
    fn new() -> Self {
        Second { answers: 0, errors: 0, open_conns: 0, latency: second_histogram() }
    }
}

/// Everything one thread (or, merged, a whole run) measured.
#[derive(Clone, Debug)]
pub struct Recorder {
    pub corrected: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    pub connect: Histogram<u64>,
    /// Send to the first byte of the answer, ns.
    pub first_byte: Histogram<u64>,
    pub reconnect: Histogram<u64>,
    pub schedule_lag: Histogram<u64>,
    pub dispatch_lag: Histogram<u64>,
    /// Per connection that carried load: answers in the window (a count, not ns).
    pub answers_per_conn: Histogram<u64>,
    /// Per connection that carried load: its longest gap between answers, ns.
    pub longest_gap: Histogram<u64>,
    /// Connections the server closed on its own (see [`crate::silent`]).
    pub server_closed: crate::silent::ServerCloses,
    pub counts: Counts,
    pub errors: Vec<ErrorTally>,
    pub seconds: Vec<Second>,
    /// `--hlog`: the phases per 1-second interval.
    pub intervals: Option<Intervals>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            corrected: histogram(),
            uncorrected: histogram(),
            connect: histogram(),
            first_byte: histogram(),
            reconnect: histogram(),
            schedule_lag: histogram(),
            dispatch_lag: histogram(),
            answers_per_conn: histogram(),
            longest_gap: histogram(),
            server_closed: crate::silent::ServerCloses::default(),
            counts: Counts::default(),
            errors: vec![ErrorTally::default(); ErrorKind::ALL.len()],
            seconds: Vec::new(),
            intervals: None,
        }
    }

    /// Record a sample of `phase` taken at `now_ns`: into its histogram and,
    /// with `--hlog`, into its interval.
    #[inline]
    pub fn record(&mut self, phase: Phase, now_ns: u64, value: u64) {
        self.phase_mut(phase).saturating_record(value);
        if let Some(iv) = &mut self.intervals {
            iv.record(phase, now_ns, value);
        }
    }

    /// The histogram of `phase`.
    pub fn phase(&self, phase: Phase) -> &Histogram<u64> {
        match phase {
            Phase::Corrected => &self.corrected,
            Phase::Uncorrected => &self.uncorrected,
            Phase::FirstByte => &self.first_byte,
            Phase::Connect => &self.connect,
        }
    }

    pub fn phase_mut(&mut self, phase: Phase) -> &mut Histogram<u64> {
        match phase {
            Phase::Corrected => &mut self.corrected,
            Phase::Uncorrected => &mut self.uncorrected,
            Phase::FirstByte => &mut self.first_byte,
            Phase::Connect => &mut self.connect,
        }
    }

    /// The timeline entry of second `s` of the window, created on first use.
    pub fn second(&mut self, s: usize) -> &mut Second {
        if self.seconds.len() <= s {
            self.seconds.resize_with(s + 1, Second::new);
        }
        &mut self.seconds[s]
    }

    /// Count one error. `new_conn` says this slot had not seen this kind before;
    /// `message` is asked for only the first time.
    pub fn error(&mut self, kind: ErrorKind, n: u64, new_conn: bool, message: impl FnOnce() -> String) {
        let tally = &mut self.errors[kind.index()];
        tally.count += n;
        tally.conns += u64::from(new_conn);
        if tally.message.is_none() {
            tally.message = Some(message());
        }
    }

    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()].count
    }

    pub fn error_tally(&self, kind: ErrorKind) -> &ErrorTally {
        &self.errors[kind.index()]
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().map(|t| t.count).sum()
    }

    /// Add `other` (another thread or process) into `self`.
    pub fn merge(&mut self, other: &Recorder) -> Result<(), hdrhistogram::AdditionError> {
        self.corrected.add(&other.corrected)?;
        self.uncorrected.add(&other.uncorrected)?;
        self.connect.add(&other.connect)?;
        self.first_byte.add(&other.first_byte)?;
        self.reconnect.add(&other.reconnect)?;
        self.schedule_lag.add(&other.schedule_lag)?;
        self.dispatch_lag.add(&other.dispatch_lag)?;
        self.answers_per_conn.add(&other.answers_per_conn)?;
        self.longest_gap.add(&other.longest_gap)?;
        self.server_closed.merge(&other.server_closed)?;
        self.counts.fair_sum_sq += other.counts.fair_sum_sq;
        for (mine, theirs) in self.errors.iter_mut().zip(&other.errors) {
            mine.count += theirs.count;
            mine.conns += theirs.conns;
            if mine.message.is_none() {
                mine.message.clone_from(&theirs.message);
            }
        }
        for (s, theirs) in other.seconds.iter().enumerate() {
            let mine = self.second(s);
            mine.answers += theirs.answers;
            mine.errors += theirs.errors;
            mine.open_conns += theirs.open_conns;
            mine.latency.add(&theirs.latency)?;
        }
        let (a, b) = (&mut self.counts, &other.counts);
        a.all_established_ns = match (a.all_established_ns, b.all_established_ns) {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
        a.first_connect_ns = match (a.first_connect_ns, b.first_connect_ns) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.last_answer_ns = a.last_answer_ns.max(b.last_answer_ns);
        a.window_ns = a.window_ns.max(b.window_ns);
        a.max_thread_util = a.max_thread_util.max(b.max_thread_util);
        a.steal_ns = a.steal_ns.max(b.steal_ns);
        for (x, y) in [
            (&mut a.requests, b.requests),
            (&mut a.answers_in_window, b.answers_in_window),
            (&mut a.sent, b.sent),
            (&mut a.unsent, b.unsent),
            (&mut a.bytes_sent, b.bytes_sent),
            (&mut a.bytes_received, b.bytes_received),
            (&mut a.reconnects, b.reconnects),
            (&mut a.server_closes, b.server_closes),
            (&mut a.slots, b.slots),
            (&mut a.established, b.established),
            (&mut a.peak_open, b.peak_open),
            (&mut a.open_at_end, b.open_at_end),
            (&mut a.starved, b.starved),
            (&mut a.cpu_user_ns, b.cpu_user_ns),
            (&mut a.cpu_sys_ns, b.cpu_sys_ns),
            (&mut a.cpu_wait_ns, b.cpu_wait_ns),
            (&mut a.idle_spin_ns, b.idle_spin_ns),
            (&mut a.fair_sum, b.fair_sum),
        ] {
            *x += y;
        }
        a.threads += b.threads;
        a.ended_ns = a.ended_ns.max(b.ended_ns);
        a.window_start_ns = match (a.window_start_ns, b.window_start_ns) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        if let Some(theirs) = &other.intervals {
            let mine = self.intervals.get_or_insert_with(|| Intervals::new(theirs.base_ns));
            mine.done.extend(theirs.done.iter().cloned());
        }
        for (x, y) in a.status_classes.iter_mut().zip(b.status_classes) {
            *x += y;
        }
        Ok(())
    }

    /// The start of a merge: an empty recorder whose "all established" time is
    /// known (nothing to wait for) until a part says otherwise.
    pub fn merge_base() -> Self {
        let mut r = Recorder::new();
        r.counts.all_established_ns = Some(0);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_exactly() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for v in 1..=1000u64 {
            a.corrected.record(v * 1000).unwrap();
            b.corrected.record(v * 2000).unwrap();
        }
        a.second(2).answers = 5;
        b.second(0).answers = 1;
        b.error(ErrorKind::Reset, 3, true, || "reset".into());
        a.counts.all_established_ns = Some(10);
        b.counts.all_established_ns = Some(20);
        let mut all = Recorder::merge_base();
        all.merge(&a).unwrap();
        all.merge(&b).unwrap();
        assert_eq!(all.corrected.len(), 2000);
        assert_eq!(all.corrected.max(), b.corrected.max());
        assert_eq!(all.seconds.len(), 3);
        assert_eq!(all.seconds[2].answers, 5);
        assert_eq!(all.error_count(ErrorKind::Reset), 3);
        assert_eq!(all.counts.all_established_ns, Some(20));
    }
}
