//! The claims registry: every claim the report checks, in one entry each (id,
//! where the documents make it, what it says, and the function that judges it),
//! and the documents' figures shown beside ours. The checks live in
//! [`crate::verdicts`]; adding a claim is one entry here plus its check.

use crate::aggregate::Results;
use crate::keys;
use crate::verdicts::{numeric, prose, Verdict};

/// The five source documents (in `shared/seeds/`).
pub const DOC_000: &str = "000_21e48ed792ebbae1.txt";
pub const DOC_001: &str = "001_57233637127164a3.txt";
pub const DOC_002: &str = "002_5fd0a71908cd23de.txt";
pub const DOC_003: &str = "003_cdbf77a354ded1f2.txt";
pub const DOC_004: &str = "004_1e920840dd615eda.txt";

/// One claim: id, where it is made, what it says (in our words), how it is judged.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub id: &'static str,
    /// `file §section`, one or more.
    pub source: &'static str,
    pub statement: &'static str,
    /// The verdict from a results folder (its `id` is filled in from this entry).
    pub check: fn(&Results) -> Verdict,
    /// The workloads whose cells are its evidence (none: a probe's).
    pub workloads: &'static [&'static str],
    /// The folder of another experiment its check reads too, when the report joins one
    /// (`c10k report --c1m`, `--beyond`): read from a standard folder alone, as `c10k
    /// compare` does, its verdict can differ from REPORT.md's.
    pub joined: Option<Joined>,
}

/// A folder of another experiment that a claim's check reads when it is joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// `c10k c1m`'s folder (`--c1m`).
    C1m,
    /// The beyond profile's folder (`--beyond`).
    Beyond,
}

impl Joined {
    pub fn folder(self) -> &'static str {
        match self {
            Joined::C1m => "a C1M folder",
            Joined::Beyond => "a beyond folder",
        }
    }
}

/// Every claim's verdict on a results folder, in the registry's order.
pub fn verdicts(r: &Results) -> Vec<Verdict> {
    CLAIMS.iter().map(|c| Verdict { id: c.id, ..(c.check)(r) }).collect()
}

/// Every claim the report checks, in report order.
pub const CLAIMS: &[Claim] = &[
    Claim {
        id: "T1",
        source: "000_21e48ed792ebbae1.txt §并发模型 (不同并发模型对比)",
        statement: "Model comparison: single thread ~1,000 QPS / 50 MB; multi-thread (3 processes x 4 threads, Gunicorn) ~10,000 QPS / 200 MB; async coroutines (asyncio) ~20,000 QPS / 100 MB; Go goroutines ~50,000+ QPS / 150 MB.",
        check: numeric::t1,
        workloads: &["http-keepalive", "sweep"],
        joined: None,
    },
    Claim {
        id: "T2",
        source: "003_cdbf77a354ded1f2.txt §3.1 (传统方案的局限性)",
        statement: "Connection ceilings: one thread per connection ~100 (very high memory and CPU); thread pool ~1,000 (high); event driven 10,000+ (low).",
        check: numeric::t2,
        workloads: &["http-keepalive", "idle"],
        joined: None,
    },
    Claim {
        id: "T3",
        source: "003_cdbf77a354ded1f2.txt §3.3 (处理能力对比)",
        statement: "Concurrent connections: Apache + threads ~1,000; Nginx + epoll ~10,000; Node.js event loop ~10,000; Go goroutines ~100,000; Rust async/await ~1,000,000.",
        check: numeric::t3,
        workloads: &["http-keepalive", "idle"],
        joined: Some(Joined::C1m),
    },
    Claim {
        id: "T4",
        source: "002_5fd0a71908cd23de.txt §2.5; 003_cdbf77a354ded1f2.txt §4.1",
        statement: "select is capped at 1024 descriptors and O(n); poll is unlimited and O(n); epoll is unlimited and O(1) in the number of watched descriptors.",
        check: numeric::t4,
        workloads: &["idle-active"],
        joined: None,
    },
    Claim {
        id: "T5",
        source: "003_cdbf77a354ded1f2.txt §6.2 (参数调优效果对比)",
        statement: "Tuning takes max concurrent connections from 1,024 to 100,000, latency from 100 ms to 10 ms, throughput from 1,000/s to 50,000/s, CPU from 80% to 30%.",
        check: numeric::t5,
        workloads: &["fd-limit"],
        joined: Some(Joined::C1m),
    },
    Claim {
        id: "C1",
        source: "003_cdbf77a354ded1f2.txt §3.1",
        statement: "Each thread or process costs 1-8 MB of stack; 10,000 threads need 10 GB+ and the system collapses.",
        check: prose::c1,
        workloads: &["idle"],
        joined: None,
    },
    Claim {
        id: "C2",
        source: "001_57233637127164a3.txt 性能篇_下 §二.2",
        statement: "C10K with default buffers needs (16 + 87 + 20) KB x 10,000 = 1.23 GB of memory.",
        check: prose::c2,
        workloads: &["idle"],
        joined: None,
    },
    Claim {
        id: "C3",
        source: "001_57233637127164a3.txt §四.3.2; 004_1e920840dd615eda.txt §5.6",
        statement: "A single reactor is the bottleneck when handlers compute (or block): while one callback runs, no other connection is served.",
        check: prose::c3,
        workloads: &["cpu", "block"],
        joined: None,
    },
    Claim {
        id: "C4",
        source: "001_57233637127164a3.txt §四.4.2",
        statement: "A single reactor that also accepts has a low connection success rate under a burst of connects; a main reactor that only accepts fixes it.",
        check: prose::c4,
        workloads: &["burst"],
        joined: None,
    },
    Claim {
        id: "C5",
        source: "001_57233637127164a3.txt §四.2.3",
        statement: "A fixed thread pool suits short connections; with long-lived connections some connections are not served in time.",
        check: prose::c5,
        workloads: &["http-keepalive"],
        joined: None,
    },
    Claim {
        id: "C6",
        source: "004_1e920840dd615eda.txt §5.8",
        statement: "Handing each request to a thread pool is contended and bounces caches: reactors in threads (M9) beat reactor + pool (M8) for cheap handlers.",
        check: prose::c6,
        workloads: &["http-keepalive", "cpu"],
        joined: None,
    },
    Claim {
        id: "C7",
        source: "000_21e48ed792ebbae1.txt §并发模型",
        statement: "With 3 ready connections each needing 1 s of blocking work, a single thread takes 3 s and a 4-worker pool takes 1 s.",
        check: prose::c7,
        workloads: &["block-3x1s"],
        joined: None,
    },
    Claim {
        id: "C8",
        source: "004_1e920840dd615eda.txt §5.1",
        statement: "The iterative server is not concurrent: while one client is connected, no other is served.",
        check: prose::c8,
        workloads: &["http-keepalive"],
        joined: None,
    },
    Claim {
        id: "C9",
        source: "000_21e48ed792ebbae1.txt §长连接; 003_cdbf77a354ded1f2.txt §5.2",
        statement: "Keep-alive avoids a handshake per request and is much faster than a connection per request.",
        check: prose::c9,
        workloads: &["http-short"],
        joined: None,
    },
    Claim {
        id: "C10",
        source: "004_1e920840dd615eda.txt §5.4",
        statement: "Thundering herd: with epoll on a shared listener one new connection can wake every worker; a modern blocking accept wakes one.",
        check: prose::c10,
        workloads: &["herd"],
        joined: None,
    },
    Claim {
        id: "C11",
        source: "004_1e920840dd615eda.txt §5.6",
        statement: "A Redis-style single reactor performs very well for IO-bound work.",
        check: prose::c11,
        workloads: &["http-keepalive"],
        joined: Some(Joined::Beyond),
    },
    Claim {
        id: "C12",
        source: "003_cdbf77a354ded1f2.txt §3.3, §4.1",
        statement: "epoll's cost does not grow with the number of idle connections (O(1)); poll's and select's does (O(n)).",
        check: prose::c12,
        workloads: &["idle-active"],
        joined: None,
    },
    Claim {
        id: "C13",
        source: "000_21e48ed792ebbae1.txt; 003_cdbf77a354ded1f2.txt §5.1",
        statement: "sendfile (zero copy) cuts copies from 4 to 2 and lowers CPU for large transfers.",
        check: prose::c13,
        workloads: &[],
        joined: None,
    },
    Claim {
        id: "C14",
        source: "004_1e920840dd615eda.txt §5.7",
        statement: "Schemes 6 and 7 (reactor + a thread per request, reactor + a thread per connection) are transitional: they fall back to a thread per connection and perform worse than scheme 2 (thread per connection).",
        check: prose::c14,
        workloads: &["http-keepalive", "http-short", "cpu"],
        joined: None,
    },
    Claim {
        id: "C15",
        source: "003_cdbf77a354ded1f2.txt §5.2",
        statement: "HTTP/2 multiplexing carries parallel requests on one connection without head-of-line blocking (3 requests of 2 s: 6 s over HTTP/1.1 in turn, 2 s on one HTTP/2 connection).",
        check: prose::c15,
        workloads: &[],
        joined: None,
    },
];

/// The documents' figure for a model, shown beside our measurement in the main table.
#[derive(Clone, Copy, Debug)]
pub struct SeedFigure {
    /// Server key (base configuration) it is compared with.
    pub server: &'static str,
    /// Which table.
    pub table: &'static str,
    /// The documents' row, in our words, and the figure.
    pub text: &'static str,
    pub source: &'static str,
}

/// The documents' figures that map onto a model of ours.
pub const SEED_FIGURES: [SeedFigure; 9] = [
    SeedFigure { server: keys::ITERATIVE, table: "T1", text: "single thread: ~1,000 QPS, 50 MB", source: DOC_000 },
    SeedFigure { server: keys::PREFORK, table: "T1", text: "3 proc x 4 threads: ~10,000 QPS, 200 MB", source: DOC_000 },
    SeedFigure { server: keys::REACTOR, table: "T1", text: "asyncio: ~20,000 QPS, 100 MB", source: DOC_000 },
    SeedFigure { server: keys::TOKIO, table: "T1", text: "goroutines: ~50,000+ QPS, 150 MB", source: DOC_000 },
    SeedFigure { server: keys::THREAD, table: "T2", text: "~100 connections", source: DOC_003 },
    SeedFigure { server: keys::POOL, table: "T2", text: "~1,000 connections", source: DOC_003 },
    SeedFigure {
        server: keys::REACTOR,
        table: "T2/T3",
        text: "event driven 10,000+; Node.js ~10,000 connections",
        source: DOC_003,
    },
    SeedFigure { server: keys::REUSEPORT, table: "T3", text: "Nginx + epoll ~10,000 connections", source: DOC_003 },
    SeedFigure {
        server: keys::TOKIO,
        table: "T3",
        text: "Go ~100,000; Rust async ~1,000,000 connections",
        source: DOC_003,
    },
];

/// The claims whose evidence `workload`'s cells are, in report order.
pub fn claims_of(workload: &str) -> Vec<&'static str> {
    CLAIMS.iter().filter(|c| c.workloads.contains(&workload)).map(|c| c.id).collect()
}

/// The documents' figures for `server`, joined for a table cell.
pub fn seed_text(server: &str) -> String {
    SEED_FIGURES
        .iter()
        .filter(|f| f.server == server)
        .map(|f| format!("{}: {}", f.table, f.text))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_claim_once_and_sourced() {
        let mut ids: Vec<&str> = CLAIMS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CLAIMS.len());
        let docs = [DOC_000, DOC_001, DOC_002, DOC_003, DOC_004];
        for c in CLAIMS {
            assert!(docs.iter().any(|d| c.source.contains(d)), "{} names its document", c.id);
            for w in c.workloads {
                assert!(crate::workloads::find(w).is_some(), "{} names an unknown workload {w}", c.id);
            }
        }
        assert!(seed_text("reactor").contains("asyncio"));
        assert_eq!(seed_text("fork"), "");
    }
}
