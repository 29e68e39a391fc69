//! Verdicts on the documents' numeric tables, T1..T5.

use super::{bytes, combine, lat, n, ok, rps, Status, Verdict};
use crate::aggregate::Results;
use crate::claims::figures::FD_SETSIZE;
use crate::matrix::IDLE_LADDER;

/// Connections at which T1's throughput is compared (the table gives none).
pub const T1_CONNS: u64 = 100;

/// T1: the ranking single thread < multi-thread < async < goroutines, and our figures beside theirs.
pub fn t1(r: &Results) -> Verdict {
    let rows = [
        ("iterative", "single thread", 1_000.0, 50.0),
        ("prefork", "3 processes x 4 threads", 10_000.0, 200.0),
        ("reactor", "async coroutines (asyncio)", 20_000.0, 100.0),
        ("tokio", "Go goroutines", 50_000.0, 150.0),
    ];
    let mut evidence = Vec::new();
    let mut measured = Vec::new();
    for (server, row, qps, mb) in rows {
        let Some(g) = ok(r, "http-keepalive", server, T1_CONNS) else { continue };
        let Some(ours) = g.rps else { continue };
        let mem = g.peak_pss.or(g.peak_rss).unwrap_or(0.0);
        evidence.push(format!(
            "{row} -> {} {server}: documents ~{} QPS / {mb:.0} MB; measured {} at {T1_CONNS} connections, peak memory {}",
            g.id,
            n(qps),
            rps(g),
            bytes(mem)
        ));
        measured.push((row, ours));
    }
    if measured.len() < 2 {
        return Verdict::not_measured(
            "T1",
            format!("http-keepalive at {T1_CONNS} connections was not run for these models"),
        );
    }
    // An inversion: a row the documents rank lower measured more than 10% faster than a higher one.
    let mut inversions = Vec::new();
    for i in 0..measured.len() {
        for j in i + 1..measured.len() {
            if measured[i].1 > 1.1 * measured[j].1 {
                inversions.push(format!(
                    "{} ({}) > {} ({})",
                    measured[i].0,
                    n(measured[i].1),
                    measured[j].0,
                    n(measured[j].1)
                ));
            }
        }
    }
    if inversions.is_empty() {
        Verdict::new(
            "T1",
            Status::Nuance,
            evidence,
            "The ranking holds. The absolute figures are not comparable: the documents measure Python and Go frameworks, \
             these are the bare scheduling models in Rust on one server core, with one protocol.",
        )
    } else {
        Verdict::new(
            "T1",
            Status::DoesNotHold,
            evidence,
            format!("The ranking does not hold here: {}.", inversions.join("; ")),
        )
    }
}

/// T2: connection ceilings of thread-per-connection, thread pool and event-driven servers.
pub fn t2(r: &Results) -> Verdict {
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    let row = |server: &str, claim: f64, evidence: &mut Vec<String>| -> Option<f64> {
        let (served, at) = r.served_max(server)?;
        let per = r.idle_slope(server).map(|(b, _)| format!(", {} per connection", bytes(b))).unwrap_or_default();
        evidence.push(format!(
            "{server}: documents ~{}; served {} connections of {} offered in the idle ladder{per}",
            n(claim),
            n(served),
            n(at as f64)
        ));
        Some(served)
    };
    if let Some(s) = row("thread", 100.0, &mut evidence) {
        // A ceiling of ~100 holds if the model fails well below 10x that.
        parts.push(s < 1_000.0);
    }
    if let Some(s) = row("pool", 1_000.0, &mut evidence) {
        parts.push((500.0..=2_000.0).contains(&s));
    }
    if let Some(s) = row("reactor", 10_000.0, &mut evidence) {
        parts.push(s >= 10_000.0);
    }
    if parts.is_empty() {
        return Verdict::not_measured("T2", "the idle workload was not run");
    }
    let status = combine(&parts);
    let why = match status {
        Status::Holds => "Each ceiling is where the documents put it.".to_string(),
        _ => "The event-driven row is checked against 10,000+; the others against their ceilings. A thread per \
              connection is not capped near 100 on a modern kernel (stacks are reserved, not resident), and a pool's \
              ceiling for long-lived connections is its worker count (connections beyond it wait unanswered), not ~1,000."
            .to_string(),
    };
    Verdict::new("T2", status, evidence, why)
}

/// T3: connection counts per technology; measurable up to the descriptor limit only.
pub fn t3(r: &Results) -> Verdict {
    let reach = IDLE_LADDER.iter().copied().max().unwrap_or(0) as f64;
    let rows = [
        ("thread", "Apache + threads", 1_000.0),
        ("reuseport", "Nginx + epoll", 10_000.0),
        ("reactor", "Node.js event loop", 10_000.0),
        ("tokio", "Go goroutines", 100_000.0),
        ("tokio", "Rust async/await", 1_000_000.0),
    ];
    let ram = r.env.as_ref().map_or(0.0, |e| e.mem_total_bytes as f64);
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    for (server, tech, claim) in rows {
        let Some((served, at)) = r.served_max(server) else { continue };
        if claim <= reach {
            parts.push(served >= 0.95 * claim);
            evidence.push(format!("{tech} ~{} -> {server}: served {} of {}", n(claim), n(served), n(at as f64)));
        } else {
            let projected = r
                .idle_slope(server)
                .map(|(b, _)| format!("; at the measured {} per connection, {} connections would need {} of server memory (this machine has {})", bytes(b), n(claim), bytes(b * claim), bytes(ram)))
                .unwrap_or_default();
            evidence.push(format!(
                "{tech} ~{} -> {server}: not reachable here (served {} of {}){projected}",
                n(claim),
                n(served),
                n(at as f64)
            ));
        }
    }
    if evidence.is_empty() {
        return Verdict::not_measured("T3", "the idle workload was not run");
    }
    let why = format!(
        "Measured up to {} connections: one process has RLIMIT_NOFILE 20,000 here and the client runs on the same \
         machine, so the 100,000 and 1,000,000 rows are not measured (a projection from memory per connection is given \
         instead). Rows at or below that are checked as 'can hold at least this many'.",
        n(reach)
    );
    let status = match combine(&parts) {
        Status::Holds => Status::Nuance,
        s => s,
    };
    Verdict::new("T3", status, evidence, why)
}

/// CPU per request of `server` in idle-active with `idle` idle connections.
pub fn idle_cost(r: &Results, server: &str, idle: u64) -> Option<f64> {
    r.find_idle("idle-active", server, idle).filter(|g| g.ok > 0).and_then(|g| g.cpu_us_per_req)
}

/// `(smallest idle count, its cost, largest idle count, its cost)` of a back end,
/// over the cells where it held every connection: a server that refuses some
/// (select past FD_SETSIZE) also pays for the refused clients' reconnects, which
/// is not the cost of watching idle descriptors.
pub fn cost_growth(r: &Results, server: &str) -> Option<(u64, f64, u64, f64)> {
    let held_all = |g: &&crate::aggregate::Group| g.starved.unwrap_or(0.0) == 0.0 && g.errors.unwrap_or(0.0) == 0.0;
    let mut pts: Vec<(u64, f64)> = r
        .of("idle-active")
        .into_iter()
        .filter(|g| g.server == server && g.ok > 0)
        .filter(held_all)
        .filter_map(|g| Some((g.idle_conns, g.cpu_us_per_req?)))
        .collect();
    pts.sort_by_key(|p| p.0);
    let (a, b) = (pts.first()?, pts.last()?);
    (b.0 > a.0).then_some((a.0, a.1, b.0, b.1))
}

/// T4: select capped at 1024 and O(n); poll O(n); epoll O(1) in idle descriptors.
pub fn t4(r: &Results) -> Verdict {
    if r.of("idle-active").is_empty() {
        return Verdict::not_measured("T4", "the idle-active workload was not run");
    }
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    let over_cap: Vec<_> = r
        .of("idle-active")
        .into_iter()
        .filter(|g| g.server == "reactor-select" && g.idle_conns > FD_SETSIZE)
        .filter(|g| g.ok > 0 || !harness_failure(r, g))
        .collect();
    for g in &over_cap {
        let refused = g.ok == 0 || g.errors.unwrap_or(0.0) > 0.0 || g.starved.unwrap_or(0.0) > 0.0;
        evidence.push(format!(
            "select with {} idle connections: {}",
            n(g.idle_conns as f64),
            if g.ok == 0 {
                g.status.clone()
            } else {
                format!("{} errors, {} starved", n(g.errors.unwrap_or(0.0)), n(g.starved.unwrap_or(0.0)))
            }
        ));
        parts.push(refused);
    }
    for (server, grows) in
        [("reactor-select", true), ("reactor-poll", true), ("reactor", false), ("reactor-level", false)]
    {
        let Some((a, ca, b, cb)) = cost_growth(r, server) else { continue };
        let ratio = cb / ca.max(1e-9);
        evidence.push(format!(
            "{server}: {:.1} us/request with {} idle, {:.1} us with {} idle ({ratio:.2}x)",
            ca,
            n(a as f64),
            cb,
            n(b as f64)
        ));
        // O(n): at least 1.5x more CPU per request; O(1): at most 1.25x.
        parts.push(if grows { ratio >= 1.5 } else { ratio <= 1.25 });
    }
    if !r.of("idle-active").iter().any(|g| g.ok > 0) {
        let why = r.of("idle-active").first().map(|g| g.status.clone()).unwrap_or_default();
        return Verdict::not_measured("T4", format!("no idle-active cell succeeded ({why})"));
    }
    let status = combine(&parts);
    Verdict::new(
        "T4",
        status,
        evidence,
        "Cost is server CPU per request with 100 active connections (closed loop) as idle connections are added, \
         N = 100, 1,000, 5,000 and 10,000 in all, over the cells where the back end held every connection (select \
         only up to its cap: past it the refused clients reconnect, a cost of its own). O(n) is read as at least \
         1.5x more CPU per request from the smallest to the largest idle count; O(1) as at most 1.25x. With 100 \
         busy connections each wait returns many ready ones, so a per-call scan is shared by many requests: below \
         1,024 descriptors select's scan may not show at all. The select cap is read from the cells with more idle \
         connections than FD_SETSIZE.",
    )
}

/// True when a group failed because of the harness (the load generator did not run
/// or gave no report), not because of the server: such a cell is no evidence.
pub fn harness_failure(r: &Results, g: &crate::aggregate::Group) -> bool {
    r.records_of(&g.group).iter().all(|rec| match &rec.outcome {
        crate::results::Outcome::Failed { stage, reason } => stage == "load" && reason.contains("no report"),
        crate::results::Outcome::Ok => false,
        _ => false,
    }) && g.ok == 0
}

/// T5: before/after tuning. Only the descriptor-limit row is measured.
pub fn t5(r: &Results) -> Verdict {
    let limited = r.of("fd-limit").into_iter().find(|g| g.server == "reactor-nofile1024");
    let default = r.of("fd-limit").into_iter().find(|g| g.server == "reactor");
    let (Some(l), Some(d)) = (limited, default) else {
        return Verdict::not_measured("T5", "the fd-limit workload was not run");
    };
    let served = |g: &crate::aggregate::Group| g.served.unwrap_or(0.0);
    let evidence = vec![
        format!(
            "RLIMIT_NOFILE 1024: {} of {} connections served ({}); p99 {}",
            n(served(l)),
            n(l.conns as f64),
            l.status,
            l.p99_us.map(lat).unwrap_or_default()
        ),
        format!(
            "default limit (nofile {}): {} of {} served; p99 {}",
            r.env.as_ref().map_or("?".into(), |e| n(e.nofile_hard as f64)),
            n(served(d)),
            n(d.conns as f64),
            d.p99_us.map(lat).unwrap_or_default()
        ),
    ];
    let holds = served(l) <= 1_024.0 && served(d) >= 0.99 * d.conns as f64;
    Verdict::new(
        "T5",
        if holds { Status::Nuance } else { Status::DoesNotHold },
        evidence,
        "Only the first row is measured: the descriptor limit caps connections near 1,024 and raising it lifts the cap. \
         The latency, throughput and CPU rows come from sysctl tuning (somaxconn, TCP buffers, TIME_WAIT reuse) that \
         would change a shared machine's kernel settings, so they are not measured; the documents give no workload for them.",
    )
}
