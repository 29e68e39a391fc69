//! Verdicts on the documents' numeric tables, T1..T5.

use super::figures::FD_SETSIZE;
use super::thresholds::{CEILING_FACTOR, FLAT_MAX, FLOOR_SHARE, GROWS_MIN, T1_EQUAL, T1_ORDER};
use super::{bytes, client_note, combine_status, judge, lat, n, ok, reading, rps, Status, Verdict};
use crate::aggregate::{Figure, Group, Results};
use crate::keys;
use crate::matrix::{IDLE_ACTIVE_CONNS, IDLE_LADDER, POOL_SIZED_WORKERS};
use crate::probe::pollers::{PollersProbe, BACKENDS};
use crate::stats::Growth;
use crate::stats::Interval;
use servers::config::DEFAULT_WORKERS;

/// Connections at which T1's throughput is compared (the table gives none).
pub const T1_CONNS: u64 = 100;

/// T1: how one ordering reads. Above 1 holds, below fails, straddling is a tie;
/// an interval wholly within [`T1_EQUAL`] either way is two equal figures, which
/// the documents' ordering (rows 1.33x apart at the least) does not survive.
fn t1_order(ratio: &Interval) -> (Status, String) {
    let equal = ratio.n >= 2 && ratio.lo >= 1.0 / T1_EQUAL && ratio.hi <= T1_EQUAL;
    if equal {
        let pct = super::thresholds::pct_over(T1_EQUAL);
        (Status::DoesNotHold, format!(" — equal: {:.2}-{:.2} lies within {pct} either way", ratio.lo, ratio.hi))
    } else {
        (judge(ratio, T1_ORDER, true), reading(ratio, T1_ORDER, true))
    }
}

/// T1: the ranking single thread < multi-thread < async < goroutines, in
/// throughput and in memory, and our figures beside theirs. A rank order counts
/// only where the pair ratios separate from 1; a client-bound pair is compared on
/// requests per server CPU-second, which stays valid when the client is the limit.
pub fn t1(r: &Results) -> Verdict {
    // (server, the documents' row, QPS, MB), in the documents' throughput order.
    let rows = [
        (keys::ITERATIVE, "single thread", 1_000.0, 50.0),
        (keys::PREFORK, "3 processes x 4 threads", 10_000.0, 200.0),
        (keys::REACTOR, "async coroutines (asyncio)", 20_000.0, 100.0),
        (keys::TOKIO, "Go goroutines", 50_000.0, 150.0),
    ];
    let mut evidence = Vec::new();
    let mut measured: Vec<(&str, &Group, f64)> = Vec::new();
    for (server, row, qps, mb) in rows {
        let Some(g) = ok(r, "http-keepalive", server, T1_CONNS) else { continue };
        let Some(mem) = r.interval(g, Figure::PeakMem) else { continue };
        evidence.push(format!(
            "{row} -> {} {server}: documents ~{} QPS / {mb:.0} MB; measured {} at {T1_CONNS} connections, peak memory {}{}",
            g.id,
            n(qps),
            rps(g),
            mem.show(bytes),
            client_note(&[g])
        ));
        measured.push((row, g, mb));
    }
    if measured.len() < 2 {
        return Verdict::not_measured(format!("http-keepalive at {T1_CONNS} connections was not run for these models"));
    }
    let mut parts = Vec::new();
    // Throughput: each row against the next one up.
    for w in measured.windows(2) {
        let ((lo_row, lo, _), (hi_row, hi, _)) = (w[0], w[1]);
        let bound = lo.client_bound_reps > 0 || hi.client_bound_reps > 0;
        let (ratio, what) = if bound {
            // Requests per server CPU-second: the inverse of CPU per request.
            (r.pair_ratio(lo, hi, Figure::CpuPerReq), "requests per server CPU-second (a client-bound pair)")
        } else {
            (r.pair_ratio(hi, lo, Figure::Rps), "req/s")
        };
        let Some(ratio) = ratio else { continue };
        let (status, read) = t1_order(&ratio);
        evidence
            .push(format!("{hi_row} over {lo_row} in {what}: {}x per pair{read}", ratio.show(|x| format!("{x:.2}"))));
        parts.push(status);
    }
    // Memory: every pair the documents order, in their order.
    for (i, a) in measured.iter().enumerate() {
        for b in &measured[i + 1..] {
            let (small, big) = if a.2 < b.2 { (a, b) } else { (b, a) };
            let Some(ratio) = r.pair_ratio(big.1, small.1, Figure::PeakMem) else { continue };
            let (status, read) = t1_order(&ratio);
            evidence.push(format!(
                "memory, {} ({:.0} MB) over {} ({:.0} MB): measured {}x per pair{read}",
                big.0,
                big.2,
                small.0,
                small.2,
                ratio.show(|x| format!("{x:.2}")),
            ));
            parts.push(status);
        }
    }
    let ranked = parts.len();
    let held = parts.iter().filter(|s| **s == Status::Holds).count();
    let status = match combine_status(&parts) {
        Status::Holds => Status::Nuance,
        s => s,
    };
    Verdict::new(
        status,
        evidence,
        format!(
            "{held} of the {ranked} orderings the documents' table implies (throughput between neighbouring rows, \
             memory between every pair) are separated in the documents' direction. An ordering counts only where the \
             interval of the pair ratios lies wholly above {T1_ORDER}; one that straddles it is a tie, and one wholly \
             within {} either way is two equal figures, which the documents' ordering does not survive. Even where \
             the ranking holds, the absolute figures are not comparable: the documents measure Python and Go \
             frameworks, these are the bare scheduling models in Rust on one server core, with one protocol.",
            super::thresholds::pct_over(T1_EQUAL)
        ),
    )
}

/// How a table row "~X connections" reads against the idle ladder, the same way
/// for T2 and T3: as a floor (the model served at least [`FLOOR_SHARE`] of X) and,
/// unless the row says "X+", as a ceiling (it failed to serve [`CEILING_FACTOR`] x X,
/// where the ladder offered that many). A row whose ceiling the ladder cannot
/// reach holds only as a floor: a nuance.
pub fn capacity_row(r: &Results, server: &str, claim: f64, floor_only: bool) -> Option<(Status, String)> {
    let (served, at) = r.served_max(server)?;
    let floor = served >= FLOOR_SHARE * claim;
    let far = CEILING_FACTOR * claim;
    let ceiling = r
        .of("idle")
        .into_iter()
        .filter(|g| g.server == server && g.conns as f64 >= far)
        .filter_map(|g| g.served)
        .map(|s| s < far)
        .reduce(|a, b| a || b);
    let (status, how) = match (floor, floor_only, ceiling) {
        (false, _, _) => (Status::DoesNotHold, format!("below the floor of {}", n(FLOOR_SHARE * claim))),
        (true, true, _) => (Status::Holds, "holds as the floor the row states".to_string()),
        (true, false, Some(true)) => (Status::Holds, format!("holds: failed before {}", n(far))),
        (true, false, Some(false)) => (Status::DoesNotHold, format!("not a ceiling: served {} or more", n(far))),
        (true, false, None) => {
            (Status::Nuance, format!("holds as a floor; the ceiling test ({} offered) is beyond the ladder", n(far)))
        }
    };
    let per = r.idle_slope(server).map(|(b, _)| format!(", {} per connection", bytes(b))).unwrap_or_default();
    Some((status, format!("served {} of {} offered in the idle ladder{per}: {how}", n(served), n(at as f64))))
}

/// T2: connection ceilings of thread-per-connection, thread pool and event-driven servers.
pub fn t2(r: &Results) -> Verdict {
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    if let Some((s, line)) = capacity_row(r, keys::THREAD, 100.0, false) {
        evidence.push(format!("thread per connection, documents ~100: {line}"));
        parts.push(s);
    }
    if let Some((s, line)) = capacity_row(r, keys::POOL, 1_000.0, false) {
        evidence.push(format!("thread pool with its default {DEFAULT_WORKERS} workers, documents ~1,000: {line}"));
        // The pool's ceiling is its worker count: sized for the connections, it holds them.
        let sized = capacity_row(r, keys::POOL_SIZED, 1_000.0, false);
        parts.push(match (&sized, s) {
            (Some((Status::Holds | Status::Nuance, _)), Status::DoesNotHold) => Status::Nuance,
            _ => s,
        });
        if let Some((_, line)) = sized {
            evidence.push(format!("thread pool with {POOL_SIZED_WORKERS} workers ({}): {line}", keys::POOL_SIZED));
        }
    }
    if let Some((s, line)) = capacity_row(r, keys::REACTOR, 10_000.0, true) {
        evidence.push(format!("event driven (reactor), documents 10,000+: {line}"));
        parts.push(s);
    }
    if parts.is_empty() {
        return Verdict::not_measured("the idle workload was not run");
    }
    let held = parts.iter().filter(|s| **s == Status::Holds).count();
    let why = format!(
        "Row by row ({held} of {} hold as stated). Each '~X' is read as a capacity, the same way as T3: at least \
         {FLOOR_SHARE} of X served, and, where the idle ladder offers {CEILING_FACTOR}x X, failing before that; \
         '10,000+' is a floor only. A thread per connection is not capped near 100 on a modern kernel (stacks are \
         reserved, not resident). A pool's ceiling for long-lived connections is its worker count, not ~1,000: it is \
         measured at its default ({DEFAULT_WORKERS}) and with workers sized for the connections ({POOL_SIZED_WORKERS}); \
         the row holds with a nuance when only the sized pool reaches it.",
        parts.len()
    );
    Verdict::new(combine_status(&parts), evidence, why)
}

/// T3: connection counts per technology; measurable up to the descriptor limit only.
pub fn t3(r: &Results) -> Verdict {
    let reach = IDLE_LADDER.iter().copied().max().unwrap_or(0) as f64;
    let rows = [
        (keys::THREAD, "Apache + threads", 1_000.0),
        (keys::REUSEPORT, "Nginx + epoll", 10_000.0),
        (keys::REACTOR, "Node.js event loop", 10_000.0),
        (keys::TOKIO, "Go goroutines", 100_000.0),
        (keys::TOKIO, "Rust async/await", 1_000_000.0),
    ];
    let ram = r.env.as_ref().map(|e| e.mem_total_bytes as f64);
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    for (server, tech, claim) in rows {
        if claim <= reach {
            let Some((mut s, mut line)) = capacity_row(r, server, claim, false) else { continue };
            // A ceiling test beyond the idle ladder may be in the C1M ladder.
            if s == Status::Nuance {
                if let Some((c1m_status, c1m_line)) = crate::verdicts::c1m::t3_ceiling(r.c1m.as_ref(), server, claim) {
                    (s, line) = (c1m_status, format!("{line}; {c1m_line}"));
                }
            }
            evidence.push(format!("{tech} ~{} -> {server}: {line}", n(claim)));
            parts.push(s);
        } else if let Ok((s, line)) = crate::verdicts::c1m::t3_row(r.c1m.as_ref(), server, claim) {
            evidence.push(format!("{tech} ~{} -> {server}: {line}", n(claim)));
            parts.push(s);
        } else {
            let why = crate::verdicts::c1m::t3_row(r.c1m.as_ref(), server, claim).err().unwrap_or_default();
            let Some((served, at)) = r.served_max(server) else { continue };
            let projected = match (r.idle_slope(server), ram) {
                (Some((b, _)), Some(ram)) => format!(
                    "; at the measured {} of user-space memory per connection (kernel memory not included), {} \
                     connections would need {} (this machine has {})",
                    bytes(b),
                    n(claim),
                    bytes(b * claim),
                    bytes(ram)
                ),
                _ => String::new(),
            };
            evidence.push(format!(
                "{tech} ~{} -> {server}: not measured ({why}), beyond one process's descriptors here (served {} of {}){projected}",
                n(claim),
                n(served),
                n(at as f64)
            ));
        }
    }
    if evidence.is_empty() {
        return Verdict::not_measured("the idle workload was not run");
    }
    let why = format!(
        "Each '~X' is read as a capacity, the same way as T2: at least {FLOOR_SHARE} of X served and, where the \
         ladder offers {CEILING_FACTOR}x X, failing before that. The idle ladder goes up to {} connections: one \
         process has RLIMIT_NOFILE 20,000 here. {}",
        n(reach),
        crate::verdicts::c1m::t3_note(r.c1m.as_ref())
    );
    Verdict::new(combine_status(&parts), evidence, why)
}

/// How a back end's server CPU per request grows from the fewest to the most idle
/// connections in idle-active, over the cells where it held every connection: a
/// server that refuses some (select past FD_SETSIZE) also pays for the refused
/// clients' reconnects, which is not the cost of watching idle descriptors.
pub fn cost_growth(r: &Results, server: &str) -> Option<Growth> {
    let held_all = |g: &&Group| g.starved == Some(0.0) && g.errors == Some(0.0);
    let mut pts: Vec<&Group> =
        r.of("idle-active").into_iter().filter(|g| g.server == server && g.ok > 0).filter(held_all).collect();
    pts.sort_by_key(|g| g.idle_conns);
    let (a, b) = (*pts.first()?, *pts.last()?);
    if b.idle_conns <= a.idle_conns {
        return None;
    }
    Some(Growth {
        from: a.idle_conns,
        to: b.idle_conns,
        at_from: r.interval(a, Figure::CpuPerReq)?,
        at_to: r.interval(b, Figure::CpuPerReq)?,
        ratio: r.pair_ratio(b, a, Figure::CpuPerReq)?,
    })
}

/// The evidence line and status of one back end's growth: O(n) wants the ratio
/// above [`GROWS_MIN`], O(1) below [`FLAT_MAX`]. `cost` names the figure, `per`
/// what a ratio pairs (`pair`, `round`).
pub fn growth_line(label: &str, cost: &str, per: &str, g: &Growth, grows: bool) -> (Status, String) {
    let (t, want_above) = if grows { (GROWS_MIN, true) } else { (FLAT_MAX, false) };
    let us = |x: f64| format!("{x:.1} us");
    (
        judge(&g.ratio, t, want_above),
        format!(
            "{label}: {} of {cost} with {} idle, {} with {} idle; growth {}x per {per}{}",
            g.at_from.show(us),
            n(g.from as f64),
            g.at_to.show(us),
            n(g.to as f64),
            g.ratio.show(|x| format!("{x:.2}")),
            reading(&g.ratio, t, want_above)
        ),
    )
}

/// The idle-active experiment in words, read from the cells that ran (an older
/// folder may hold the closed-loop design).
pub fn idle_active_method(r: &Results) -> String {
    let groups = r.of("idle-active");
    let active = groups.first().map_or(IDLE_ACTIVE_CONNS, |g| g.conns);
    let mut totals: Vec<u64> = groups.iter().map(|g| g.conns + g.idle_conns).collect();
    totals.sort_unstable();
    totals.dedup();
    let totals = totals.iter().map(|t| n(*t as f64)).collect::<Vec<_>>().join(", ");
    match groups.first().and_then(|g| g.rate) {
        Some(rate) => format!(
            "{active} active connections at a fixed open-loop {} requests/s among N idle ones ({totals} in all), so \
             that each wait returns about one ready descriptor and a per-call scan of every watched descriptor is \
             paid per request (the libevent benchmark's one-active-among-N). Cost is the server's CPU per request, \
             compared as pair ratios (the most idle connections against the fewest, repetition by repetition), over \
             the cells where the back end held every connection",
            n(rate)
        ),
        None => format!(
            "{active} active connections in a closed loop among N idle ones ({totals} in all); with that many busy \
             connections each wait returns many ready ones, so a per-call scan is shared by many requests and may \
             not show. Cost is the server's CPU per request, compared as pair ratios (the most idle connections \
             against the fewest, repetition by repetition), over the cells where the back end held every connection"
        ),
    }
}

/// The pollers probe in words, from its configuration.
fn pollers_method(p: &PollersProbe) -> String {
    let idle = p.config.idle.iter().map(|i| n(*i as f64)).collect::<Vec<_>>().join(", ");
    format!(
        "Judged on the pollers probe, which isolates the wait: one active loopback connection among N idle ones \
         ({idle}; select only below its cap), a one-byte ping-pong, the waiting thread on the server's CPU using the \
         reactor's own back ends; the figure is that thread's CPU time per round trip (the wait's system call \
         included), compared as ratios within each of {} rounds (most idle against fewest). The server-level \
         idle-active cells are shown beside it, not judged: their cost per request (about 20 us) moves by a third \
         between repetitions here, which hides a growth of a few percent either way",
        p.config.rounds
    )
}

/// How each back end's cost grows with idle descriptors, one evidence line per
/// source, and the statuses that decide: the pollers probe where the folder has
/// it, else the idle-active cells. `expect` pairs a server key with whether the
/// claim says its cost grows (O(n)) or stays flat (O(1)).
pub fn scaling(r: &Results, expect: &[(&str, bool)]) -> (Vec<Status>, Vec<String>, String) {
    let probe = r.pollers.as_ref().filter(|p| BACKENDS.iter().any(|b| p.growth(b).is_some()));
    let (mut parts, mut evidence) = (Vec::new(), Vec::new());
    for &(server, grows) in expect {
        if let Some(g) = probe.and_then(|p| p.growth(server)) {
            let (s, line) = growth_line(&format!("probe, {server}"), "CPU per round trip", "round", &g, grows);
            parts.push(s);
            evidence.push(line);
        }
        if let Some(g) = cost_growth(r, server) {
            let (s, line) = growth_line(server, "server CPU per request", "pair", &g, grows);
            if probe.is_some() {
                evidence.push(format!("server-level (idle-active, not judged), {line}"));
            } else {
                parts.push(s);
                evidence.push(line);
            }
        }
    }
    let method = match probe {
        Some(p) => format!("{}. The cells: {}", pollers_method(p), idle_active_method(r)),
        None => idle_active_method(r),
    };
    (parts, evidence, method)
}

/// T4: select capped at 1024 and O(n); poll O(n); epoll O(1) in idle descriptors.
pub fn t4(r: &Results) -> Verdict {
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    let over_cap: Vec<_> = r
        .of("idle-active")
        .into_iter()
        .filter(|g| g.server == keys::REACTOR_SELECT && g.idle_conns > FD_SETSIZE)
        .filter(|g| g.ok > 0 || !harness_failure(r, g))
        .collect();
    for g in &over_cap {
        let refused = g.ok == 0 || g.errors.is_some_and(|e| e > 0.0) || g.starved.is_some_and(|s| s > 0.0);
        let said = match (g.ok, g.errors, g.starved) {
            (0, _, _) => g.status.clone(),
            (_, Some(e), Some(s)) => format!("{} errors, {} starved", n(e), n(s)),
            _ => "no error counts recorded".into(),
        };
        evidence.push(format!("select with {} idle connections: {said}", n(g.idle_conns as f64)));
        parts.push(if refused { Status::Holds } else { Status::DoesNotHold });
    }
    let expect = [
        (keys::REACTOR_SELECT, true),
        (keys::REACTOR_POLL, true),
        (keys::REACTOR, false),
        (keys::REACTOR_LEVEL, false),
    ];
    let (statuses, lines, method) = scaling(r, &expect);
    if statuses.is_empty() && parts.is_empty() {
        let why = r.of("idle-active").first().map(|g| format!("no idle-active cell succeeded ({})", g.status));
        return Verdict::not_measured(
            why.unwrap_or_else(|| "neither the pollers probe nor the idle-active workload ran".into()),
        );
    }
    parts.extend(statuses);
    evidence.extend(lines);
    Verdict::new(
        combine_status(&parts),
        evidence,
        format!(
            "{method}. O(n) is read as at least {GROWS_MIN}x more CPU from the fewest to the most idle descriptors; \
             O(1) as at most {FLAT_MAX}x; an interval that straddles its threshold is inconclusive. select is judged \
             only below its {FD_SETSIZE}-descriptor cap (past it the refused clients reconnect, a cost of its own); \
             the cap is read from the idle-active cells with more idle connections than FD_SETSIZE."
        ),
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

/// T5: before/after tuning, from the C1M folder's namespace runs when the report has one,
/// else the descriptor-limit row of this folder alone (see [`crate::verdicts::c1m::t5`]).
pub fn t5(r: &Results) -> Verdict {
    crate::verdicts::c1m::t5(r.c1m.as_ref(), t5_fd_limit(r))
}

/// T5 from the standard folder: only the descriptor-limit row is measured.
pub fn t5_fd_limit(r: &Results) -> Verdict {
    let limited = r.of("fd-limit").into_iter().find(|g| g.server == keys::REACTOR_NOFILE1024);
    let default = r.of("fd-limit").into_iter().find(|g| g.server == keys::REACTOR);
    let (Some(l), Some(d)) = (limited, default) else {
        return Verdict::not_measured("the fd-limit workload was not run");
    };
    let (Some(_), Some(_)) = (l.served, d.served) else {
        return Verdict::not_measured("the fd-limit cells recorded no served count");
    };
    let served = |g: &Group| g.served.unwrap_or_default();
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
    let v = Verdict::new(
        if holds { Status::Nuance } else { Status::DoesNotHold },
        evidence,
        "Only the first row is measured: the descriptor limit caps connections near 1,024 and raising it lifts the cap. \
         The latency, throughput and CPU rows come from sysctl tuning (somaxconn, TCP buffers, TIME_WAIT reuse) that \
         would change a shared machine's kernel settings, so they are not measured; the documents give no workload for them. \
         The measured row is a demonstration: the kernel enforces the descriptor limit, so it holds by construction, \
         at 2,000 connections rather than the claimed 100,000 (one process holds at most about 20,000 here).",
    );
    v.demonstration()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::pollers::{PollerRun, PollersConfig, PollersProbe, SCHEMA};

    /// A probe whose back ends cost `base` at the fewest idle descriptors and
    /// `base * growth(round)` at the most.
    fn probe(growth: impl Fn(&str, u32) -> f64) -> PollersProbe {
        let config = PollersConfig { rounds: 9, ..PollersConfig::default() };
        let mut runs = Vec::new();
        for round in 1..=config.rounds {
            for b in BACKENDS {
                let idle =
                    PollersProbe { schema: SCHEMA, config: config.clone(), runs: vec![], error: None }.idle_of(b);
                for (i, &n) in idle.iter().enumerate() {
                    let cpu = if i + 1 == idle.len() { 20.0 * growth(b, round) } else { 20.0 };
                    runs.push(PollerRun {
                        backend: b.into(),
                        idle: n,
                        round,
                        trips: 100,
                        cpu_us_per_trip: cpu,
                        wall_us_per_trip: cpu,
                        waits_per_trip: 1.0,
                    });
                }
            }
        }
        PollersProbe { schema: SCHEMA, config, runs, error: None }
    }

    #[test]
    fn t1_orderings_above_below_tied_and_equal() {
        let i = |lo: f64, hi: f64, n: usize| Interval { lo, median: (lo + hi) / 2.0, hi, n, coverage: 0.9 };
        assert_eq!(t1_order(&i(1.2, 1.9, 5)).0, Status::Holds);
        assert_eq!(t1_order(&i(0.7, 0.9, 5)).0, Status::DoesNotHold);
        // Straddles 1 beyond the equality band: a tie, inconclusive.
        assert_eq!(t1_order(&i(0.9, 1.2, 5)).0, Status::Inconclusive);
        // Wholly within T1_EQUAL either way: equal, and the documents' ordering fails.
        let (s, why) = t1_order(&i(0.97, 1.03, 5));
        assert_eq!(s, Status::DoesNotHold);
        assert!(why.contains(&super::super::thresholds::pct_over(T1_EQUAL)), "{why}");
        // Moving the band moves the reading: 1.04-1.06 is separated above 1, not equal.
        assert_eq!(t1_order(&i(1.04, 1.06, 5)).0, Status::Holds);
    }

    fn with(p: PollersProbe) -> Results {
        Results { pollers: Some(p), ..Results::new(None, Vec::new()) }
    }

    #[test]
    fn t4_and_c12_read_the_pollers_probe() {
        let on_n = |b: &str, _| if b == keys::REACTOR_POLL || b == keys::REACTOR_SELECT { 8.0 } else { 1.01 };
        let r = with(probe(on_n));
        assert_eq!(t4(&r).status, Status::Holds);
        assert_eq!(crate::verdicts::prose::c12(&r).status, Status::Holds);
        assert!(t4(&r).why.contains("pollers probe"), "{}", t4(&r).why);
    }

    #[test]
    fn epoll_straddling_flat_is_inconclusive_and_a_flat_poll_fails() {
        // epoll's growth spreads 1.1-1.4 over rounds: straddles FLAT_MAX.
        let wavering = |b: &str, k: u32| {
            if b == keys::REACTOR_POLL || b == keys::REACTOR_SELECT {
                8.0
            } else {
                1.0 + 0.05 * f64::from(k)
            }
        };
        assert_eq!(crate::verdicts::prose::c12(&with(probe(wavering))).status, Status::Inconclusive);
        // poll does not grow: the O(n) half fails.
        let flat_poll = |b: &str, _| if b == keys::REACTOR_SELECT { 8.0 } else { 1.0 };
        let v = t4(&with(probe(flat_poll)));
        assert_ne!(v.status, Status::Holds, "{v:?}");
        assert!(v.evidence.iter().any(|l| l.starts_with("probe, reactor-poll")), "{:?}", v.evidence);
    }

    #[test]
    fn without_probe_or_cells_t4_is_not_measured() {
        let v = t4(&Results::new(None, Vec::new()));
        assert_eq!(v.status, Status::NotMeasured);
        assert!(v.why.contains("pollers probe"), "{}", v.why);
    }
}
