//! The validated configuration of a run, built once from the CLI (see
//! [`crate::cli`]) and handed unchanged to every thread and child process.

use std::net::IpAddr;
use std::time::Duration;

use proto::Proto;
use serde::{Deserialize, Serialize};

use crate::json_report::{LoopMode, RunConfig};
use crate::schedule::{Arrivals, Schedule, DEFAULT_SEED};
pub use crate::settings::Settings;
use crate::target::HttpRequest;

/// See the module documentation. Durations and counts are final: defaults are
/// filled in and every value was checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// What the report echoes as given (target, connections, threads, window,
    /// timeouts...): defined once, in [`Settings`].
    #[serde(flatten)]
    pub settings: Settings,
    /// `Host` header of HTTP requests (the `--addr` as given).
    pub host: String,
    /// Connects in progress at once, per process.
    pub connect_window: u32,
    /// Echo: request size. HTTP: ignored (see `request`).
    pub msg_size: usize,
    /// HTTP: the request every connection sends (method, path, headers, body).
    #[serde(default)]
    pub request: HttpRequest,
    /// Open loop: how requests are spaced.
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Seed of the Poisson arrivals.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Open loop: how a thread waits for its next send.
    #[serde(default)]
    pub spin: Spin,
    /// `--shard I/N`: this process group drives shard I (0-based) of N.
    #[serde(default)]
    pub shard: Option<ShardOf>,
    /// `--hlog`: record 1-second interval histograms.
    #[serde(default)]
    pub intervals: bool,
}

/// `--shard I/N`: shard `index` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOf {
    pub index: u32,
    pub count: u32,
}

impl ShardOf {
    /// `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<ShardOf, String> {
        let (i, n) = text.split_once('/').ok_or("expected I/N, e.g. 0/3")?;
        let index: u32 = i.trim().parse().map_err(|_| format!("{i:?} is not a shard index"))?;
        let count: u32 = n.trim().parse().map_err(|_| format!("{n:?} is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index counts from 0 to {} (as JOB_COMPLETION_INDEX)",
                count.max(1) - 1
            ));
        }
        Ok(ShardOf { index, count })
    }
}

impl std::fmt::Display for ShardOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn default_seed() -> u64 {
    DEFAULT_SEED
}

/// Open loop: how a thread waits for its next send (`--spin`).
///
/// A thread that sleeps in epoll until a send is due wakes up late by however long
/// the CPU takes to wake: on this VM that was 300-800 us at the 99th percentile in
/// about half of the runs of `--rate 2000 --conns 100` (a halted vCPU is woken by the
/// hypervisor). Sleeping until shortly before and spinning the rest hides most of it;
/// never sleeping hides all of it, at the price of a core per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Spin {
    /// Sleep (timerfd) until this long before the next deadline, then poll without blocking.
    Before(Duration),
    /// Never sleep: poll without blocking all the time.
    Busy,
}

impl Spin {
    /// The default: 100 us before each deadline.
    pub const DEFAULT: Spin = Spin::Before(Duration::from_micros(100));

    /// `busy`, or a duration (`100us`, `2ms`, `0s`: no spin at all).
    pub fn parse(text: &str) -> Result<Spin, String> {
        if text == "busy" {
            return Ok(Spin::Busy);
        }
        humantime::parse_duration(text)
            .map(Spin::Before)
            .map_err(|e| format!("expected a duration such as 100us or the word busy: {e}"))
    }

    /// How long before a deadline the thread stops sleeping (`u64::MAX`: always).
    pub fn ns(self) -> u64 {
        match self {
            Spin::Before(d) => crate::clock::ns(d),
            Spin::Busy => u64::MAX,
        }
    }
}

impl Default for Spin {
    fn default() -> Spin {
        Spin::DEFAULT
    }
}

impl std::fmt::Display for Spin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spin::Before(d) => write!(f, "{}", humantime::format_duration(*d)),
            Spin::Busy => f.write_str("busy"),
        }
    }
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
        if self.settings.rate.is_some() {
            LoopMode::Open
        } else {
            LoopMode::Closed
        }
    }

    pub fn schedule(&self) -> Schedule {
        Schedule::new(self.settings.rate, self.settings.conns, self.arrivals, self.seed)
    }

    /// Connection slots over all processes and shards: the active ones and the idle ones.
    pub fn slots(&self) -> u64 {
        self.settings.conns + self.settings.idle_conns
    }

    /// The slots this process group drives: all of them, or its shard's
    /// contiguous share (shares differ by at most one and add up to all). Each
    /// slot keeps its global index, so schedules, budgets and rates are the
    /// shard's exact part of the whole.
    pub fn driven(&self) -> Share {
        let all = Share { first: 0, count: self.slots() };
        match self.shard {
            Some(s) => all.split(s.count)[s.index as usize],
            None => all,
        }
    }

    /// HTTP `HEAD`: answers carry no body.
    pub fn head_request(&self) -> bool {
        self.settings.proto == Proto::Http && self.request.is_head()
    }

    /// The rank among the active connections of slot `global`, or `None` for
    /// an idle slot. Active slots are spread evenly over all slots, so every
    /// thread and process gets its share of both kinds.
    pub fn active_rank(&self, global: u64) -> Option<u64> {
        if self.settings.idle_conns == 0 {
            return Some(global);
        }
        let (active, slots) = (u128::from(self.settings.conns), u128::from(self.slots()));
        let slot = u128::from(global);
        let (before, after) = (slot * active / slots, (slot + 1) * active / slots);
        (after > before).then_some(before as u64)
    }

    /// Measured requests slot `global` may send (`u64::MAX` = unbounded, 0 for
    /// an idle slot): `--requests` spread so that the shares add up exactly.
    pub fn request_budget(&self, global: u64) -> u64 {
        let Some(rank) = self.active_rank(global) else { return 0 };
        let conns = self.settings.conns;
        match self.settings.requests {
            None => u64::MAX,
            Some(total) => total / conns + u64::from(rank < total % conns),
        }
    }

    /// The first due time of slot `global`'s schedule and its generator's state.
    pub fn first_due(&self, schedule: &Schedule, epoch: u64, global: u64) -> (u64, u64) {
        schedule.first_due(epoch, self.active_rank(global).unwrap_or(0))
    }

    /// The source address of connection `global`, if bound.
    pub fn source_for(&self, global: u64) -> Option<IpAddr> {
        let ips = &self.settings.source_ips;
        if ips.is_empty() {
            return None;
        }
        Some(ips[(global % ips.len() as u64) as usize])
    }

    /// The bytes of one request.
    pub fn request_bytes(&self) -> Vec<u8> {
        match self.settings.proto {
            Proto::Http => self.request.bytes(&self.host),
            Proto::Echo => proto::client::echo_message(self.msg_size),
            // `--proto chat` runs in `crate::chat`, which writes its own lines.
            Proto::Chat => Vec::new(),
        }
    }

    /// The configuration as the report echoes it: the [`Settings`] as they
    /// are, and what the report derives from the rest.
    pub fn echo(&self) -> RunConfig {
        let open = self.settings.rate.is_some();
        let http = self.settings.proto == Proto::Http;
        RunConfig {
            settings: self.settings.clone(),
            mode: self.mode(),
            msg_size: self.request_bytes().len() as u64,
            arrivals: open.then_some(self.arrivals),
            seed: (open && self.arrivals == Arrivals::Poisson).then_some(self.seed),
            spin: open.then(|| self.spin.to_string()),
            method: http.then(|| self.request.method.clone()),
            path: http.then(|| self.request.path.clone()),
            headers: self.request.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect(),
            body_bytes: self.request.body.as_ref().map(|b| b.len() as u64),
            shard: self.shard.map(|s| s.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_slots_are_spread_and_take_no_requests() {
        let text = r#"{"addr":"127.0.0.1:1","host":"h","proto":"http","conns":3,"idle_conns":7,"threads":1,"procs":1,
            "pipeline":1,"rate":null,"duration":null,"requests":30,"reqs_per_conn":null,
            "warmup":{"secs":0,"nanos":0},"timeout":{"secs":1,"nanos":0},"connect_timeout":{"secs":1,"nanos":0},
            "connect_rate":null,"connect_window":1,"msg_size":1,"source_ips":[],"max_error_rate":0.0}"#;
        let config: Config = serde_json::from_str(text).unwrap();
        let ranks: Vec<_> = (0..10).map(|g| config.active_rank(g)).collect();
        assert_eq!(ranks.iter().flatten().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(ranks.iter().filter(|r| r.is_none()).count(), 7);
        assert!(ranks[..5].iter().any(Option::is_some) && ranks[5..].iter().any(Option::is_some), "spread: {ranks:?}");
        assert_eq!((0..10).map(|g| config.request_budget(g)).sum::<u64>(), 30);
    }

    #[test]
    fn shards_parse_and_add_up() {
        assert_eq!(ShardOf::parse("2/3"), Ok(ShardOf { index: 2, count: 3 }));
        assert!(ShardOf::parse("3/3").unwrap_err().contains("from 0 to 2"));
        assert!(ShardOf::parse("1").is_err() && ShardOf::parse("0/0").is_err());
        let whole = Share { first: 0, count: 1000 }.split(3);
        assert_eq!(whole.iter().map(|s| s.count).sum::<u64>(), 1000);
    }

    #[test]
    fn shares_cover_everything_once() {
        let parts = Share { first: 10, count: 103 }.split(4);
        assert_eq!(parts.iter().map(|s| s.count).sum::<u64>(), 103);
        assert_eq!(parts[0], Share { first: 10, count: 26 });
        assert_eq!(parts[3].first + parts[3].count, 113);
    }
}
