//! Connections the server closes on its own: what a heartbeat run measures
//! (document 001, 应用层探活: a server must notice silent peers itself).
//!
//! `--silent-conns M`: M of the `--conns` connections (spread evenly over the
//! active ones, so every thread gets its share) send one request, read its
//! answer and then fall silent, connected, until the server closes them. They
//! are not reopened, and are left out of the open-loop unsent count, of
//! starvation and of fairness, since they stopped asking on purpose.
//!
//! Every connection the server closes while nothing is outstanding on it, and
//! without announcing it (`Connection: close`), is counted here as
//! `closed_by_server`, apart from errors (a close with a request outstanding
//! stays a `closed_early` error): split into silent ones (`--silent-conns` and
//! `--idle-conns`, which never send) and live ones (still sending: a server
//! with an idle timeout should have kept them), with the time from each one's
//! last request (or its connect, if it sent none) to the close in a histogram.
//! Counted over the whole run, warmup included: a silent connection falls
//! silent at the start and is closed when the server's timeout says.

use hdrhistogram::Histogram;

use crate::config::Config;
use crate::error::LoadError;
use crate::json_report::ClosedByServer;

/// Is slot `global` one of the `--silent-conns`?
pub fn is_silent(config: &Config, global: u64) -> bool {
    if config.settings.silent_conns == 0 {
        return false;
    }
    let Some(rank) = config.active_rank(global) else { return false };
    let (silent, active, rank) =
        (u128::from(config.settings.silent_conns), u128::from(config.settings.conns), u128::from(rank));
    (rank + 1) * silent / active > rank * silent / active
}

/// Server closes as one thread (or, merged, a run) saw them.
#[derive(Clone, Debug)]
pub struct ServerCloses {
    pub silent: u64,
    pub live: u64,
    /// Nanoseconds from the last request (or the connect) to the close.
    pub after_last_request: Histogram<u64>,
}

impl Default for ServerCloses {
    fn default() -> Self {
        ServerCloses { silent: 0, live: 0, after_last_request: crate::hist::histogram() }
    }
}

impl ServerCloses {
    pub fn record(&mut self, silent: bool, since_last_request_ns: u64) {
        if silent {
            self.silent += 1;
        } else {
            self.live += 1;
        }
        self.after_last_request.saturating_record(since_last_request_ns);
    }

    pub fn merge(&mut self, other: &ServerCloses) -> Result<(), hdrhistogram::AdditionError> {
        self.silent += other.silent;
        self.live += other.live;
        self.after_last_request.add(&other.after_last_request)
    }

    /// The report's section.
    pub fn report(&self) -> ClosedByServer {
        ClosedByServer {
            count: self.silent + self.live,
            silent: self.silent,
            live: self.live,
            after_last_request: crate::hist::distribution(&self.after_last_request),
            histogram: crate::hist::encode(&self.after_last_request),
        }
    }

    /// Back from the report's section (a child process's output).
    pub fn from_report(report: &ClosedByServer) -> Result<ServerCloses, LoadError> {
        let mut closes = ServerCloses { silent: report.silent, live: report.live, ..ServerCloses::default() };
        if !report.histogram.is_empty() {
            let decoded = crate::hist::decode(&report.histogram)?;
            closes.after_last_request.add(decoded).map_err(|e| LoadError::Histogram(format!("{e:?}")))?;
        }
        Ok(closes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(conns: u64, silent: u64, idle: u64) -> Config {
        let text = format!(
            r#"{{"addr":"127.0.0.1:1","host":"h","proto":"http","conns":{conns},"idle_conns":{idle},
            "silent_conns":{silent},"threads":1,"procs":1,"pipeline":1,"rate":null,"duration":null,
            "requests":null,"reqs_per_conn":null,"warmup":{{"secs":0,"nanos":0}},"timeout":{{"secs":1,"nanos":0}},
            "connect_timeout":{{"secs":1,"nanos":0}},"connect_rate":null,"connect_window":1,"msg_size":1,
            "source_ips":[],"max_error_rate":0.0}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn silent_slots_are_spread_over_the_active_ones() {
        let c = config(100, 10, 0);
        let silent: Vec<u64> = (0..100).filter(|&g| is_silent(&c, g)).collect();
        assert_eq!(silent.len(), 10);
        assert!(silent.windows(2).all(|w| w[1] - w[0] == 10), "{silent:?}");
        let c = config(10, 3, 20);
        assert_eq!((0..30).filter(|&g| is_silent(&c, g)).count(), 3);
        assert!((0..30).filter(|&g| is_silent(&c, g)).all(|g| c.active_rank(g).is_some()), "never an idle slot");
        assert_eq!((0..10).filter(|&g| is_silent(&config(10, 0, 0), g)).count(), 0);
        assert_eq!((0..10).filter(|&g| is_silent(&config(10, 10, 0), g)).count(), 10);
    }

    #[test]
    fn closes_merge_and_round_trip() {
        let mut a = ServerCloses::default();
        a.record(true, 1_100_000_000);
        a.record(false, 5_000_000);
        let mut b = ServerCloses::default();
        b.record(true, 1_200_000_000);
        a.merge(&b).unwrap();
        let report = a.report();
        assert_eq!((report.count, report.silent, report.live), (3, 2, 1));
        assert!((report.after_last_request.max_us - 1_200_000.0).abs() < 1_000.0, "{report:?}");
        let back = ServerCloses::from_report(&report).unwrap();
        assert_eq!(back.after_last_request, a.after_last_request);
        assert_eq!((back.silent, back.live), (2, 1));
    }
}
