//! Recorders as text, for the results a `--procs` child hands its parent: every
//! histogram in [`crate::hist`]'s hex form, so that decoding and adding gives back
//! exactly what the children recorded.

use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::hist::{decode, encode};
use crate::intervals::{IntervalHist, Intervals};
use crate::recorder::{Counts, ErrorTally, Recorder, Second};

/// One second of the timeline, as text.
#[derive(Debug, Serialize, Deserialize)]
struct WireSecond {
    answers: u64,
    errors: u64,
    open_conns: u64,
    latency: String,
}

/// A [`Recorder`] as text (what a child process writes to its stdout).
#[derive(Debug, Serialize, Deserialize)]
pub struct WireRecorder {
    corrected: String,
    uncorrected: String,
    connect: String,
    first_byte: String,
    reconnect: String,
    schedule_lag: String,
    dispatch_lag: String,
    answers_per_conn: String,
    longest_gap: String,
    #[serde(default)]
    closed_by_server: crate::json_report::ClosedByServer,
    counts: Counts,
    errors: Vec<ErrorTally>,
    seconds: Vec<WireSecond>,
    /// `--hlog`: the base of the intervals and the finished ones.
    #[serde(default)]
    intervals: Option<(u64, Vec<IntervalHist>)>,
}

impl WireRecorder {
    pub fn from_recorder(r: &Recorder) -> Self {
        WireRecorder {
            corrected: encode(&r.corrected),
            uncorrected: encode(&r.uncorrected),
            connect: encode(&r.connect),
            first_byte: encode(&r.first_byte),
            reconnect: encode(&r.reconnect),
            schedule_lag: encode(&r.schedule_lag),
            dispatch_lag: encode(&r.dispatch_lag),
            answers_per_conn: encode(&r.answers_per_conn),
            longest_gap: encode(&r.longest_gap),
            closed_by_server: r.server_closed.report(),
            counts: r.counts.clone(),
            errors: r.errors.clone(),
            seconds: r
                .seconds
                .iter()
                .map(|s| WireSecond {
                    answers: s.answers,
                    errors: s.errors,
                    open_conns: s.open_conns,
                    latency: encode(&s.latency),
                })
                .collect(),
            intervals: r.intervals.as_ref().map(|iv| (iv.base_ns, iv.done.clone())),
        }
    }

    pub fn into_recorder(self) -> Result<Recorder, LoadError> {
        let mut r = Recorder::new();
        // Decoded histograms keep the bounds they were made with; add them into
        // fresh ones so every recorder has the same shape.
        for (mine, text) in [
            (&mut r.corrected, &self.corrected),
            (&mut r.uncorrected, &self.uncorrected),
            (&mut r.connect, &self.connect),
            (&mut r.first_byte, &self.first_byte),
            (&mut r.reconnect, &self.reconnect),
            (&mut r.schedule_lag, &self.schedule_lag),
            (&mut r.dispatch_lag, &self.dispatch_lag),
            (&mut r.answers_per_conn, &self.answers_per_conn),
            (&mut r.longest_gap, &self.longest_gap),
        ] {
            mine.add(decode(text)?).map_err(|e| LoadError::Histogram(format!("{e:?}")))?;
        }
        r.server_closed = crate::silent::ServerCloses::from_report(&self.closed_by_server)?;
        r.counts = self.counts;
        r.intervals = self.intervals.map(|(base, done)| {
            let mut iv = Intervals::new(base);
            iv.done = done;
            iv
        });
        if self.errors.len() == r.errors.len() {
            r.errors = self.errors;
        }
        for (s, w) in self.seconds.into_iter().enumerate() {
            let second: &mut Second = r.second(s);
            second.answers = w.answers;
            second.errors = w.errors;
            second.open_conns = w.open_conns;
            second.latency.add(decode(&w.latency)?).map_err(|e| LoadError::Histogram(format!("{e:?}")))?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let mut r = Recorder::new();
        for v in [1u64, 999, 1_000_000, 3_000_000_000] {
            r.corrected.record(v).unwrap();
            r.second(3).latency.record(v).unwrap();
        }
        r.counts.requests = 4;
        let text = serde_json::to_string(&WireRecorder::from_recorder(&r)).unwrap();
        let back = serde_json::from_str::<WireRecorder>(&text).unwrap().into_recorder().unwrap();
        assert_eq!(back.corrected, r.corrected);
        assert_eq!(back.seconds.len(), 4);
        assert_eq!(back.seconds[3].latency, r.seconds[3].latency);
        assert_eq!(back.counts, r.counts);
        assert!(decode("zz").is_err());
    }
}
