//! What a run was asked for and its report echoes unchanged: one definition,
//! embedded (flattened) both in the validated [`crate::config::Config`] that
//! drives the run and in the report's [`crate::json_report::RunConfig`].
//!
//! Before, the report had its own struct of the same nineteen fields, copied by
//! hand from the configuration; a field added to one and forgotten in the other
//! went unreported. Now a field is written once, here, with the unit the JSON
//! schema gives it: durations are `Duration`s in the code and fractional
//! seconds in the JSON (`warmup` is written `warmup_s`), through [`seconds`].
//! The configuration also travels as JSON (to `--procs` children, in `--hlog`
//! trailers), so the same form serves there; interval logs written before this
//! form (durations as `{"secs": .., "nanos": ..}` under their plain names) are
//! still read.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use proto::Proto;
use serde::{Deserialize, Serialize};

/// See the module documentation. JSON names carry their unit (`_s`: seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Target address, `host:port` as resolved (e.g. `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// Application protocol.
    pub proto: Proto,
    /// Concurrent connections carrying the load, over all processes.
    pub conns: u64,
    /// Connections opened and held without sending (`--idle-conns`), beside `conns`.
    #[serde(default)]
    pub idle_conns: u64,
    /// Of `conns`, connections that fall silent after their first answer
    /// (`--silent-conns`, see [`crate::silent`]).
    #[serde(default)]
    pub silent_conns: u64,
    /// Event-loop threads per process.
    pub threads: u32,
    /// Load generator processes (1 unless `--procs`).
    pub procs: u32,
    /// Requests in flight per connection.
    pub pipeline: u32,
    /// Open loop: target requests per second over all connections.
    pub rate: Option<f64>,
    /// Length of the measured window (JSON `duration_s`, seconds); `None` when
    /// bounded by `requests` only.
    #[serde(rename = "duration_s", alias = "duration", with = "seconds::optional")]
    pub duration: Option<Duration>,
    /// Total measured requests to complete over all connections (`--requests`), if bounded.
    pub requests: Option<u64>,
    /// Answers after which a connection is closed and reopened (`--reqs-per-conn`).
    pub reqs_per_conn: Option<u64>,
    /// Warmup before the measured window (JSON `warmup_s`, seconds).
    #[serde(rename = "warmup_s", alias = "warmup", with = "seconds")]
    pub warmup: Duration,
    /// Per-request timeout (JSON `timeout_s`, seconds).
    #[serde(rename = "timeout_s", alias = "timeout", with = "seconds")]
    pub timeout: Duration,
    /// Connect timeout (JSON `connect_timeout_s`, seconds).
    #[serde(rename = "connect_timeout_s", alias = "connect_timeout", with = "seconds")]
    pub connect_timeout: Duration,
    /// New connections per second over all processes; `None` = as fast as the server accepts.
    pub connect_rate: Option<f64>,
    /// Source addresses the connections are spread over, round-robin by
    /// connection index (empty = kernel's choice).
    pub source_ips: Vec<IpAddr>,
    /// Largest error rate (errors / (answers + errors)) that still passes.
    pub max_error_rate: f64,
    /// `--start-at`: the window's start, Unix milliseconds, common to all shards.
    #[serde(default)]
    pub start_at_unix_ms: Option<u64>,
    /// The event loops' I/O back end (`--engine`); `mio` in reports older than it.
    #[serde(default)]
    pub engine: IoEngine,
}

/// The I/O back end of the event loops (`--engine`): the same loop, connection
/// logic and figures over either; they differ in the system calls they make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IoEngine {
    /// epoll through mio: readiness, then a `write` and a `read` per request.
    #[default]
    Mio,
    /// io_uring: sends queued and submitted once per loop turn, a multishot
    /// receive per connection into provided buffers, one `io_uring_enter` per turn.
    Uring,
}

impl std::fmt::Display for IoEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoEngine::Mio => "mio",
            IoEngine::Uring => "uring",
        })
    }
}

/// Serde with-module: a `Duration` as fractional seconds, the schema's `_s`
/// unit. Reading also takes the `{"secs": .., "nanos": ..}` form serde gives a
/// `Duration` by default (what earlier interval logs hold).
pub mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Seconds(f64),
        Parts(Duration),
    }

    fn from_seconds<E: serde::de::Error>(s: f64) -> Result<Duration, E> {
        Duration::try_from_secs_f64(s).map_err(|e| E::custom(format!("{s} is not a duration in seconds: {e}")))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Either::deserialize(d)? {
            Either::Seconds(s) => from_seconds(s),
            Either::Parts(d) => Ok(d),
        }
    }

    /// The same for an `Option<Duration>` (`null` for `None`).
    pub mod optional {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            match Option::<super::Either>::deserialize(d)? {
                Some(super::Either::Seconds(s)) => super::from_seconds(s).map(Some),
                Some(super::Either::Parts(d)) => Ok(Some(d)),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            addr: "127.0.0.1:8080".parse().unwrap(),
            proto: Proto::Http,
            conns: 100,
            idle_conns: 0,
            silent_conns: 0,
            threads: 1,
            procs: 1,
            pipeline: 1,
            rate: None,
            duration: Some(Duration::from_secs(10)),
            requests: None,
            reqs_per_conn: None,
            warmup: Duration::from_millis(2500),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_micros(100),
            connect_rate: None,
            source_ips: vec!["127.0.0.2".parse().unwrap()],
            max_error_rate: 0.0,
            start_at_unix_ms: None,
            engine: IoEngine::Mio,
        }
    }

    #[test]
    fn durations_are_seconds_in_the_schema_and_round_trip_exactly() {
        let json = serde_json::to_value(settings()).unwrap();
        assert_eq!(json["duration_s"], 10.0);
        assert_eq!(json["warmup_s"], 2.5);
        assert_eq!(json["connect_timeout_s"], 0.0001);
        assert_eq!(json["addr"], "127.0.0.1:8080");
        assert_eq!(json["source_ips"][0], "127.0.0.2");
        assert!(json.get("warmup").is_none());
        assert_eq!(serde_json::from_value::<Settings>(json).unwrap(), settings());
        // Every nanosecond count up to a day survives the trip through f64 seconds.
        for ns in [1, 999, 1_000_001, 123_456_789_012, 86_399_999_999_999] {
            let d = Duration::from_nanos(ns);
            let back: Settings =
                serde_json::from_value(serde_json::to_value(Settings { warmup: d, ..settings() }).unwrap()).unwrap();
            assert_eq!(back.warmup, d, "{ns} ns");
        }
    }

    #[test]
    fn earlier_forms_are_read() {
        // Interval logs written before the schema's units: plain names, serde's Duration.
        let old = r#"{"addr":"127.0.0.1:8080","proto":"http","conns":100,"threads":1,"procs":1,"pipeline":1,
            "rate":null,"duration":{"secs":10,"nanos":0},"requests":null,"reqs_per_conn":null,
            "warmup":{"secs":2,"nanos":500000000},"timeout":{"secs":2,"nanos":0},
            "connect_timeout":{"secs":0,"nanos":100000},"connect_rate":null,"source_ips":["127.0.0.2"],
            "max_error_rate":0.0}"#;
        assert_eq!(serde_json::from_str::<Settings>(old).unwrap(), settings());
        let negative = serde_json::to_string(&settings()).unwrap().replace("\"warmup_s\":2.5", "\"warmup_s\":-1.0");
        let err = serde_json::from_str::<Settings>(&negative).unwrap_err().to_string();
        assert!(err.contains("not a duration"), "{err}");
    }
}
