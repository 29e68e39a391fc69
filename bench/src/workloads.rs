//! The workloads, as data: what the server is asked to do per request, what the
//! load generator does, and which claim each one serves.

/// One workload. Sizes (connections, rates) come from the profile's blocks.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    /// One sentence for the README and the report.
    pub about: &'static str,
    /// `http` or `echo`.
    pub proto: &'static str,
    /// Extra `c10k serve` arguments (simulated work).
    pub server_args: &'static [&'static str],
    /// Extra `c10k load` arguments.
    pub load_args: &'static [&'static str],
    /// Per-request timeout, seconds: how long a starved connection is waited for.
    pub timeout_s: f64,
    /// Warm-up override (e.g. 0 when the experiment counts from the first request).
    pub warmup_s: Option<f64>,
    /// Bound the run by this many requests instead of a duration.
    pub by_requests: Option<u64>,
    /// Measured window override, seconds (else the profile's).
    pub duration_s: Option<f64>,
    /// Seconds the load generator may spend before its warm-up (a chat room's
    /// joins, whose notices grow as the square of the members): added to the
    /// cell's time limit, and a fifth of it to its estimate.
    pub setup_s: f64,
}

const fn w(name: &'static str, about: &'static str) -> Workload {
    Workload {
        name,
        about,
        proto: "http",
        server_args: &[],
        load_args: &[],
        timeout_s: 2.0,
        warmup_s: None,
        by_requests: None,
        duration_s: None,
        setup_s: 0.0,
    }
}

/// Every workload the profiles may use.
pub const WORKLOADS: [Workload; 17] = [
    Workload {
        ..w(
            "http-keepalive",
            "HTTP/1.1 keep-alive, closed loop: each connection sends its next GET when the answer arrives",
        )
    },
    Workload { proto: "echo", load_args: &["--msg-size", "64"], ..w("echo", "64-byte echo messages, closed loop") },
    Workload {
        load_args: &["--reqs-per-conn", "1"],
        ..w("http-short", "a new connection per request (`--reqs-per-conn 1`), closed loop")
    },
    Workload {
        server_args: &["--cpu-us", "100"],
        ..w("cpu", "HTTP keep-alive, 100 us of CPU spun per request in the handler")
    },
    Workload {
        server_args: &["--block-us", "1000"],
        ..w("block", "HTTP keep-alive, a 1 ms blocking sleep per request in the handler")
    },
    Workload {
        timeout_s: 5.0,
        ..w("idle", "N connections held, each sending one request per second (open loop, rate = N/s)")
    },
    Workload {
        timeout_s: 2.0,
        ..w("sweep", "open loop at a fixed total rate over 100 connections, one cell per rate, to find the knee")
    },
    Workload {
        timeout_s: 2.0,
        duration_s: Some(2.0),
        ..w("fixed-rate", "HTTP keep-alive, open loop at one rate below the capacity of every model it compares (50,000 requests/s over 1,000 connections): each server does the same work per second, so its CPU per request is its own cost, whatever the client's limit")
    },
    Workload {
        timeout_s: 2.0,
        ..w("idle-active", "10 active connections at a fixed open-loop 2,000 requests/s beside M idle ones: N = 10 + M in all (one active among many, as in libevent's benchmark)")
    },
    Workload {
        server_args: &["--block-us", "1000000"],
        load_args: &["--reqs-per-conn", "1"],
        timeout_s: 10.0,
        warmup_s: Some(0.0),
        by_requests: Some(3),
        ..w("block-3x1s", "3 connections, one request each that blocks 1 s in the handler; the run ends at 3 answers")
    },
    Workload {
        load_args: &["--connect-timeout", "1s", "--connect-window", "10000"],
        ..w("burst", "10,000 connects at once (1 s connect timeout), then keep-alive requests on all of them")
    },
    Workload {
        load_args: &["--reqs-per-conn", "1"],
        ..w("herd", "2,000 new connections per second (open loop, one request each) against 4 processes sharing one listener, on SO_REUSEPORT, or blocking in accept")
    },
    Workload {
        ..w("fd-limit", "2,000 keep-alive connections against a server with RLIMIT_NOFILE 1024 and with the default")
    },
    Workload {
        duration_s: Some(10.0),
        ..w("soak", "HTTP keep-alive at 1,000 connections for 10 s, for the per-second timeline")
    },
    Workload {
        proto: "chat",
        load_args: &["--senders", "10"],
        timeout_s: 5.0,
        warmup_s: Some(1.0),
        duration_s: Some(5.0),
        setup_s: 90.0,
        ..w("chat", "a chat room (document 002 §5): N members join, 10 of them broadcast at a fixed total rate, every member must receive every message; a request is one delivery")
    },
    Workload {
        server_args: &["--idle-timeout", "3s"],
        load_args: &["--silent-conns", "1000"],
        timeout_s: 2.0,
        warmup_s: Some(2.0),
        duration_s: Some(8.0),
        ..w("heartbeat", "10,000 connections each pinging once a second (open loop), 1,000 of them silent after their first request, against --idle-timeout 3s: the silent ones must be closed within the timeout plus a tick, the live ones never")
    },
    Workload {
        load_args: &["--silent-conns", "1000"],
        timeout_s: 2.0,
        warmup_s: Some(2.0),
        duration_s: Some(8.0),
        ..w("heartbeat-off", "the heartbeat workload against the same model without a timeout: what keeping the timers costs, pair by pair")
    },
];

/// The workload named `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}
