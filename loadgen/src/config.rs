//! The validated configuration of a run, built once from the CLI (see
//! [`crate::cli`]) and handed unchanged to every thread and child process.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use proto::Proto;
use serde::{Deserialize, Serialize};

use crate::report::{LoopMode, RunConfig};
use crate::schedule::Schedule;

/// See the module documentation. Durations and counts are final: defaults are
/// filled in and every value was checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub addr: SocketAddr,
    /// `Host` header of HTTP requests (the `--addr` as given).
    pub host: String,
    pub proto: Proto,
    /// Connections over all processes.
    pub conns: u64,
    /// Event-loop threads per process.
    pub threads: u32,
    pub procs: u32,
    /// Requests in flight per connection.
    pub pipeline: u32,
    /// Open loop: total requests per second.
    pub rate: Option<f64>,
    /// Measured window; `None` when only `requests` bounds the run.
    pub duration: Option<Duration>,
    /// Total measured requests over all connections.
    pub requests: Option<u64>,
    /// Close and reopen a connection after this many answers.
    pub reqs_per_conn: Option<u64>,
    pub warmup: Duration,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// New connections per second over all processes; `None`: open them all
    /// first, then start the load.
    pub connect_rate: Option<f64>,
    /// Connects in progress at once, per process.
    pub connect_window: u32,
    /// Echo: request size. HTTP: ignored (the request is `GET /`).
    pub msg_size: usize,
    /// Source addresses, used round-robin by connection index.
    pub source_ips: Vec<IpAddr>,
    pub max_error_rate: f64,
}

/// The connections one process or thread drives: global indices `first..first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub first: u64,
    pub count: u64,
}

impl Share {
    /// Split into `parts` contiguous shares whose sizes differ by at most one.
    pub fn split(self, parts: u32) -> Vec<Share> {
        let parts = u64::from(parts.max(1));
        let mut first = self.first;
        (0..parts)
            .map(|i| {
                let count = self.count / parts + u64::from(i < self.count % parts);
                let share = Share { first, count };
                first += count;
                share
            })
            .collect()
    }
}

impl Config {
    pub fn mode(&self) -> LoopMode {
        if self.rate.is_some() {
            LoopMode::Open
        } else {
            LoopMode::Closed
        }
    }

    pub fn schedule(&self) -> Schedule {
        Schedule::new(self.rate, self.conns)
    }

    /// Measured requests connection `global` may send (`u64::MAX` = unbounded):
    /// `--requests` spread so that the shares add up exactly.
    pub fn request_budget(&self, global: u64) -> u64 {
        match self.requests {
            None => u64::MAX,
            Some(total) => total / self.conns + u64::from(global < total % self.conns),
        }
    }

    /// The source address of connection `global`, if bound.
    pub fn source_for(&self, global: u64) -> Option<IpAddr> {
        if self.source_ips.is_empty() {
            return None;
        }
        Some(self.source_ips[(global % self.source_ips.len() as u64) as usize])
    }

    /// The bytes of one request.
    pub fn request_bytes(&self) -> Vec<u8> {
        match self.proto {
            Proto::Http => proto::client::http_request(&self.host),
            Proto::Echo => proto::client::echo_message(self.msg_size),
        }
    }

    /// The configuration as the report echoes it.
    pub fn echo(&self) -> RunConfig {
        RunConfig {
            addr: self.addr.to_string(),
            proto: self.proto,
            mode: self.mode(),
            conns: self.conns,
            threads: self.threads,
            procs: self.procs,
            pipeline: self.pipeline,
            rate: self.rate,
            duration_s: self.duration.map(|d| d.as_secs_f64()),
            requests: self.requests,
            reqs_per_conn: self.reqs_per_conn,
            warmup_s: self.warmup.as_secs_f64(),
            timeout_s: self.timeout.as_secs_f64(),
            connect_timeout_s: self.connect_timeout.as_secs_f64(),
            connect_rate: self.connect_rate,
            msg_size: self.request_bytes().len() as u64,
            source_ips: self.source_ips.iter().map(ToString::to_string).collect(),
            max_error_rate: self.max_error_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_everything_once() {
        let parts = Share { first: 10, count: 103 }.split(4);
        assert_eq!(parts.iter().map(|s| s.count).sum::<u64>(), 103);
        assert_eq!(parts[0], Share { first: 10, count: 26 });
        assert_eq!(parts[3].first + parts[3].count, 113);
    }
}
