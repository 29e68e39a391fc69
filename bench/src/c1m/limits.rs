//! Which limit stopped a step, named from evidence only (pure).
//!
//! Each rule reads a counter or an error kind that only that limit moves:
//!
//! | limit | evidence |
//! |---|---|
//! | descriptors per process | the server's `accept_backoffs` with its fullest process at its RLIMIT_NOFILE; `EMFILE`/`ENFILE` (os error 24/23) in the load generator's errors |
//! | ephemeral ports per source address | `EADDRNOTAVAIL` (os error 99) on connect |
//! | the accept backlog | `ListenOverflows`/`ListenDrops` of `/proc/net/netstat` moved |
//! | memory | an OOM kill (`/proc/vmstat`), `TCPAbortOnMemory`, TCP memory pressure, `ENOMEM`/`ENOBUFS` (os error 12/105) |
//! | the client's CPU | the load generator's own `client_bound` verdict (busy threads, behind its schedule), in a step that fell short |
//! | processes and threads | the server's `spawn_failures` (pid_max counts every thread) |
//!
//! When a step falls short and no rule fires, the finding is that no counter
//! names the limit, with the errors as they were: never a guess.

use super::machine::Counters;
use super::record::{ErrorKind, LoadFigures, NsRun, StepRecord};
use crate::results::ServerStats;
use crate::runner::parse_ready;
use crate::show::n;

/// A limit the experiment can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Descriptors,
    /// The server's accept failed for lack of descriptors or kernel memory, and the
    /// counter does not say which (no process was at its descriptor limit).
    AcceptResources,
    EphemeralPorts,
    AcceptBacklog,
    Memory,
    ClientCpu,
    Processes,
    /// The step fell short and no counter names why.
    Unnamed,
}

impl Limit {
    pub fn label(self) -> &'static str {
        match self {
            Limit::Descriptors => "descriptors per process",
            Limit::AcceptResources => "descriptors or kernel memory at accept",
            Limit::EphemeralPorts => "ephemeral ports per source address",
            Limit::AcceptBacklog => "the accept backlog",
            Limit::Memory => "memory",
            Limit::ClientCpu => "the client's CPU",
            Limit::Processes => "processes and threads",
            Limit::Unnamed => "not named by any counter",
        }
    }
}

/// A limit met, with the evidence in one sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitMet {
    pub limit: Limit,
    pub evidence: String,
}

/// What the rules read.
#[derive(Clone, Copy, Debug)]
pub struct Evidence<'a> {
    /// Connections the step asked for.
    pub target: u64,
    pub load: Option<&'a LoadFigures>,
    pub server: Option<&'a ServerStats>,
    /// RLIMIT_NOFILE of each server process (its ready line).
    pub server_nofile: Option<u64>,
    /// Descriptors of the fullest server process at the plateau.
    pub server_fds_max: Option<u64>,
    /// Counters over the step.
    pub counters: &'a Counters,
    /// The client's sockets in TIME_WAIT when the load ended, and the ephemeral
    /// ports its source addresses have (range x addresses), where measured.
    pub time_wait: Option<u64>,
    pub ports: Option<u64>,
    /// The client's `tcp_tw_reuse` lets a connect take a port in TIME_WAIT (1), so
    /// ports held there are not used up.
    pub time_wait_reusable: bool,
}

/// The client's ports count as used up when at least this share of them is held
/// in TIME_WAIT at the end of a run: a connect then searches past them (the time
/// shows as the load generator's system CPU) or fails with `EADDRNOTAVAIL`.
pub const PORTS_IN_TIME_WAIT: f64 = 0.5;

/// A server process counts as at its limit within this many descriptors of it
/// (the listener, epoll and pipes it holds besides connections).
pub const AT_LIMIT_SLACK: u64 = 32;

/// `(os error N)` messages among the errors: kinds, counts and the first message.
fn with_os_error<'a>(errors: &'a [ErrorKind], codes: &[i32]) -> Vec<&'a ErrorKind> {
    errors.iter().filter(|e| codes.iter().any(|c| e.message.contains(&format!("(os error {c})")))).collect()
}

fn listed(errors: &[&ErrorKind]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {} on {} connections (\"{}\")", n(e.count as f64), e.kind, n(e.conns as f64), e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What fell short, in words; `None` when every connection was established and answered without error.
pub fn shortfall(e: &Evidence) -> Option<String> {
    let Some(l) = e.load else { return Some("the load generator left no report".into()) };
    let mut parts = Vec::new();
    if l.established < e.target {
        parts.push(format!("{} of {} connections established", n(l.established as f64), n(e.target as f64)));
    }
    if l.starved > 0 {
        parts.push(format!("{} never answered", n(l.starved as f64)));
    }
    if l.errors > 0 {
        parts.push(format!("{} errors", n(l.errors as f64)));
    }
    // A window request the client was too late to send (`unsent`) is its own lateness.
    let unsent = l.unsent.unwrap_or(0);
    if let Some(s) = l.scheduled.filter(|s| l.requests + unsent < *s) {
        parts.push(format!("{} of {} window requests sent and answered", n(l.requests as f64), n((s - unsent) as f64)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Every limit the evidence names (possibly several), in the table's order.
pub fn name(e: &Evidence) -> Vec<LimitMet> {
    let mut out = Vec::new();
    let errors: &[ErrorKind] = e.load.map(|l| l.error_kinds.as_slice()).unwrap_or(&[]);
    let c = e.counters;
    let backoffs = e.server.map_or(0, |s| s.counters.accept_backoffs);
    if backoffs > 0 {
        let full = match (e.server_fds_max, e.server_nofile) {
            (Some(fds), Some(limit)) => Some((fds, limit, fds + AT_LIMIT_SLACK >= limit)),
            _ => None,
        };
        match full {
            Some((fds, limit, true)) => out.push(LimitMet {
                limit: Limit::Descriptors,
                evidence: format!(
                    "the server's accept failed {} times for lack of a descriptor (accept_backoffs) and its fullest \
                     process held {} of its {} (RLIMIT_NOFILE)",
                    n(backoffs as f64),
                    n(fds as f64),
                    n(limit as f64)
                ),
            }),
            _ => out.push(LimitMet {
                limit: Limit::AcceptResources,
                evidence: format!(
                    "the server's accept failed {} times (accept_backoffs: EMFILE, ENFILE, ENOMEM or ENOBUFS) \
                     while no process was at its descriptor limit{}",
                    n(backoffs as f64),
                    full.map(|(f, l, _)| format!(" (fullest: {} of {})", n(f as f64), n(l as f64))).unwrap_or_default()
                ),
            }),
        }
    }
    let fd_errors = with_os_error(errors, &[libc::EMFILE, libc::ENFILE]);
    if !fd_errors.is_empty() {
        out.push(LimitMet { limit: Limit::Descriptors, evidence: format!("load generator: {}", listed(&fd_errors)) });
    }
    let port_errors = with_os_error(errors, &[libc::EADDRNOTAVAIL]);
    let mut ports = Vec::new();
    if !port_errors.is_empty() {
        ports.push(format!("connect found no free source port: {}", listed(&port_errors)));
    }
    if let (Some(tw), Some(p), false) = (e.time_wait, e.ports.filter(|p| *p > 0), e.time_wait_reusable) {
        if tw as f64 >= PORTS_IN_TIME_WAIT * p as f64 {
            ports.push(format!(
                "{} of the client's {} ephemeral ports were held in TIME_WAIT when the load ended{}",
                n(tw as f64),
                n(p as f64),
                e.load.map_or(String::new(), |l| format!(
                    " (the load generator's threads spent {:.2} s of CPU, {:.0}% of their window)",
                    l.client_cpu_s,
                    100.0 * l.client_utilisation
                ))
            ));
        }
    }
    if !ports.is_empty() {
        out.push(LimitMet { limit: Limit::EphemeralPorts, evidence: ports.join("; ") });
    }
    if c.listen_overflows > 0 || c.listen_drops > 0 {
        let timeouts: Vec<&ErrorKind> = errors.iter().filter(|e| e.kind == "connect_timeout").collect();
        out.push(LimitMet {
            limit: Limit::AcceptBacklog,
            evidence: format!(
                "the kernel dropped {} connections at full accept queues (ListenOverflows) and {} SYNs at listeners \
                 (ListenDrops){}",
                n(c.listen_overflows as f64),
                n(c.listen_drops as f64),
                if timeouts.is_empty() { String::new() } else { format!("; {}", listed(&timeouts)) }
            ),
        });
    }
    let mem_errors = with_os_error(errors, &[libc::ENOMEM, libc::ENOBUFS]);
    let mut mem = Vec::new();
    if c.oom_kill > 0 {
        mem.push(format!("the OOM killer ended {} processes (oom_kill)", n(c.oom_kill as f64)));
    }
    if c.tcp_abort_on_memory > 0 {
        mem.push(format!(
            "{} connections aborted for lack of TCP memory (TCPAbortOnMemory)",
            n(c.tcp_abort_on_memory as f64)
        ));
    }
    if c.tcp_memory_pressures > 0 {
        mem.push(format!(
            "TCP entered memory pressure {} times (TCPMemoryPressures)",
            n(c.tcp_memory_pressures as f64)
        ));
    }
    if !mem_errors.is_empty() {
        mem.push(listed(&mem_errors));
    }
    if !mem.is_empty() {
        out.push(LimitMet { limit: Limit::Memory, evidence: mem.join("; ") });
    }
    // The client's CPU stops a step only when the step fell short; otherwise a
    // client-bound run is a caveat on its latency, shown beside it.
    if let Some(l) = e.load.filter(|l| l.client_bound && shortfall(e).is_some()) {
        out.push(LimitMet {
            limit: Limit::ClientCpu,
            evidence: format!(
                "the load generator said it was the bottleneck: {}; its threads waited {:.1} s for a CPU",
                l.client_bound_reasons.join(" "),
                l.client_run_queue_wait_s
            ),
        });
    }
    let spawn = e.server.map_or(0, |s| s.counters.spawn_failures);
    if spawn > 0 {
        out.push(LimitMet {
            limit: Limit::Processes,
            evidence: format!(
                "the server failed to create a process or thread {} times (spawn_failures)",
                n(spawn as f64)
            ),
        });
    }
    if out.is_empty() {
        if let Some(short) = shortfall(e) {
            let errs: Vec<&ErrorKind> = errors.iter().collect();
            out.push(LimitMet {
                limit: Limit::Unnamed,
                evidence: format!(
                    "{short}; no counter moved{}",
                    if errs.is_empty() { String::new() } else { format!(" (errors: {})", listed(&errs)) }
                ),
            });
        }
    }
    out
}

/// The limits as one sentence for a table cell.
pub fn sentence(limits: &[LimitMet]) -> String {
    limits.iter().map(|l| format!("{}: {}", l.limit.label(), l.evidence)).collect::<Vec<_>>().join("; ")
}

/// The limits a step met, from its record.
pub fn step_limits(s: &StepRecord) -> Vec<LimitMet> {
    let nofile = s.ready_line.as_deref().and_then(parse_ready).and_then(|r| r.nofile);
    name(&Evidence {
        target: s.conns,
        load: s.alive.as_ref(),
        server: s.server_stats.as_ref(),
        server_nofile: nofile,
        server_fds_max: s.plateau.as_ref().map(|p| p.server_fds_max),
        counters: &s.counters,
        time_wait: None,
        ports: None,
        time_wait_reusable: false,
    })
}

/// The limits a T5 run met.
pub fn run_limits(r: &NsRun) -> Vec<LimitMet> {
    let counters = Counters {
        listen_overflows: r.server_counters.listen_overflows,
        listen_drops: r.server_counters.listen_drops,
        ..r.client_counters.clone()
    };
    name(&Evidence {
        target: r.load.as_ref().map_or(0, |l| l.conns),
        load: r.load.as_ref(),
        server: r.server_stats.as_ref(),
        server_nofile: Some(r.server_nofile),
        server_fds_max: r.server_fds_max,
        counters: &counters,
        time_wait: r.client_time_wait,
        ports: r.client_ports,
        time_wait_reusable: r
            .ns_values
            .iter()
            .any(|(k, _, client)| k == "net.ipv4.tcp_tw_reuse" && client.as_deref() == Some("1")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(backoffs: u64, spawn: u64) -> ServerStats {
        let mut s = ServerStats::default();
        s.counters.accept_backoffs = backoffs;
        s.counters.spawn_failures = spawn;
        s
    }

    fn load(conns: u64, established: u64, starved: u64, errors: Vec<ErrorKind>) -> LoadFigures {
        LoadFigures {
            conns,
            established,
            starved,
            requests: conns - starved,
            errors: errors.iter().map(|e| e.count).sum(),
            error_kinds: errors,
            ..LoadFigures::default()
        }
    }

    fn err(kind: &str, count: u64, message: &str) -> ErrorKind {
        ErrorKind { kind: kind.into(), count, conns: count, message: message.into() }
    }

    /// Recorded in a namespace with RLIMIT_NOFILE 1,024 (kernel defaults) and 100,000 connections offered.
    #[test]
    fn descriptor_limit_and_backlog_of_the_defaults_run() {
        let l = load(
            100_000,
            30_000,
            93_900,
            vec![
                err("connect_timeout", 70_000, "connect to 10.213.0.1:41234: connection timed out after 2s"),
                err("timeout", 24_000, "no answer within 5s"),
            ],
        );
        let s = stats(1_917, 0);
        let c = Counters { listen_overflows: 512_311, listen_drops: 512_311, ..Counters::default() };
        let e = Evidence {
            target: 100_000,
            load: Some(&l),
            server: Some(&s),
            server_nofile: Some(1_024),
            server_fds_max: Some(1_024),
            counters: &c,
            time_wait: None,
            ports: None,
            time_wait_reusable: false,
        };
        let named = name(&e);
        let kinds: Vec<Limit> = named.iter().map(|m| m.limit).collect();
        assert_eq!(kinds, [Limit::Descriptors, Limit::AcceptBacklog]);
        assert!(named[0].evidence.contains("held 1,024 of its 1,024"), "{}", named[0].evidence);
        assert!(named[1].evidence.contains("512,311") && named[1].evidence.contains("70,000 connect_timeout"));
        assert!(shortfall(&e).is_some_and(|s| s.contains("30,000 of 100,000 connections established")));
    }

    #[test]
    fn ports_memory_client_and_processes() {
        let l = LoadFigures {
            client_bound: true,
            client_bound_reasons: vec!["threads 99% busy.".into()],
            client_run_queue_wait_s: 26.9,
            ..load(
                1_000,
                990,
                0,
                vec![
                    err(
                        "connect_other",
                        5_000,
                        "connect to 10.213.0.1:80 from 10.213.0.2: Cannot assign requested address (os error 99)",
                    ),
                    err("other", 3, "read: Cannot allocate memory (os error 12)"),
                    err("connect_other", 2, "socket: Too many open files (os error 24)"),
                ],
            )
        };
        let s = stats(0, 4);
        let c = Counters { oom_kill: 1, ..Counters::default() };
        let e = Evidence {
            target: 1_000,
            load: Some(&l),
            server: Some(&s),
            server_nofile: None,
            server_fds_max: None,
            counters: &c,
            time_wait: None,
            ports: None,
            time_wait_reusable: false,
        };
        let kinds: Vec<Limit> = name(&e).iter().map(|m| m.limit).collect();
        assert_eq!(
            kinds,
            [Limit::Descriptors, Limit::EphemeralPorts, Limit::Memory, Limit::ClientCpu, Limit::Processes]
        );
    }

    #[test]
    fn ports_held_in_time_wait() {
        let l = LoadFigures { client_cpu_s: 1.9, client_utilisation: 0.96, ..load(100, 100, 0, vec![]) };
        let c = Counters::default();
        let e = Evidence {
            target: 100,
            load: Some(&l),
            server: None,
            server_nofile: None,
            server_fds_max: None,
            counters: &c,
            time_wait: Some(15_335),
            ports: Some(28_232),
            time_wait_reusable: false,
        };
        let named = name(&e);
        assert_eq!(named.iter().map(|m| m.limit).collect::<Vec<_>>(), [Limit::EphemeralPorts]);
        assert!(named[0].evidence.contains("15,335 of the client's 28,232"), "{}", named[0].evidence);
        assert!(name(&Evidence { time_wait: Some(10_000), ..e }).is_empty());
        assert!(name(&Evidence { time_wait_reusable: true, ..e }).is_empty(), "tcp_tw_reuse = 1 reuses them");
    }

    #[test]
    fn backoffs_below_the_descriptor_limit_are_not_called_descriptors() {
        let l = load(10, 10, 0, vec![]);
        let s = stats(3, 0);
        let c = Counters::default();
        let e = Evidence {
            target: 10,
            load: Some(&l),
            server: Some(&s),
            server_nofile: Some(20_000),
            server_fds_max: Some(12_000),
            counters: &c,
            time_wait: None,
            ports: None,
            time_wait_reusable: false,
        };
        assert_eq!(name(&e).iter().map(|m| m.limit).collect::<Vec<_>>(), [Limit::AcceptResources]);
    }

    #[test]
    fn a_clean_step_names_nothing_and_a_short_one_without_counters_says_so() {
        let c = Counters::default();
        let ok = load(300_000, 300_000, 0, vec![]);
        let e = Evidence {
            target: 300_000,
            load: Some(&ok),
            server: None,
            server_nofile: None,
            server_fds_max: None,
            counters: &c,
            time_wait: None,
            ports: None,
            time_wait_reusable: false,
        };
        assert!(name(&e).is_empty());
        assert_eq!(shortfall(&e), None);
        let short = load(300_000, 300_000, 12, vec![err("timeout", 12, "no answer within 10s")]);
        let e = Evidence { load: Some(&short), ..e };
        let named = name(&e);
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].limit, Limit::Unnamed);
        assert!(named[0].evidence.contains("no counter moved") && named[0].evidence.contains("12 timeout"));
    }
}
