//! The human summary, in wrk's layout with the tail percentiles added and the
//! client self-check said out loud.

use std::fmt::Write as _;

use crate::json_report::{Distribution, LoopMode, Report};
use crate::settings::IoEngine;

/// A latency in microseconds, as wrk prints it.
pub fn latency(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut n = n;
    let mut unit = 0;
    while n >= 1024.0 && unit < UNITS.len() - 1 {
        n /= 1024.0;
        unit += 1;
    }
    format!("{n:.2}{}", UNITS[unit])
}

fn distribution(out: &mut String, title: &str, d: &Distribution) {
    let _ = writeln!(out, "  {title}");
    for (label, v) in [
        ("50.000%", d.p50_us),
        ("90.000%", d.p90_us),
        ("99.000%", d.p99_us),
        ("99.900%", d.p999_us),
        ("99.990%", d.p9999_us),
        ("100.000%", d.max_us),
    ] {
        let _ = writeln!(out, "    {label:>8}  {:>9}", latency(v));
    }
}

/// The summary of `r`.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let (c, settings) = (&r.config, &r.config.settings);
    let mode = match (c.mode, settings.rate) {
        (LoopMode::Open, Some(rate)) => format!("open loop at {rate} req/s"),
        _ => "closed loop".to_string(),
    };
    let length = match (settings.duration, settings.requests) {
        (Some(d), _) => format!("{}", humantime::format_duration(d)),
        (None, Some(n)) => format!("{n}-request"),
        (None, None) => "unbounded".into(),
    };
    let request = match (&c.method, &c.path) {
        (Some(m), Some(p)) if (m.as_str(), p.as_str()) != ("GET", "/") => format!(" {m} {p}"),
        _ => String::new(),
    };
    // The default engine goes unsaid, as before there was a choice.
    let engine = match settings.engine {
        IoEngine::Mio => String::new(),
        other => format!(", engine {other}"),
    };
    let _ = writeln!(
        out,
        "Running {length} test @ {}{request} ({}, {mode}, pipeline {}{engine})",
        settings.addr, settings.proto, settings.pipeline
    );
    let procs = if settings.procs > 1 { format!(" in {} processes", settings.procs) } else { String::new() };
    let est = match r.connections.all_established_s {
        Some(s) => format!("all established in {}", latency(s * 1e6)),
        None => format!("{} of {} established", r.connections.established, r.connections.target),
    };
    let sources = match settings.source_ips.as_slice() {
        [] => String::new(),
        [one] => format!(" from {one}"),
        [first, .., last] => format!(" from {} source addresses ({first}..{last})", settings.source_ips.len()),
    };
    let idle = if settings.idle_conns > 0 { format!(" (+{} idle)", settings.idle_conns) } else { String::new() };
    let conns = match &c.shard {
        Some(shard) => {
            format!(
                "{} of {} connection slots (shard {shard})",
                r.connections.target,
                settings.conns + settings.idle_conns
            )
        }
        None => format!("{} connections", settings.conns),
    };
    let _ = writeln!(out, "  {} threads{procs} and {conns}{idle}{sources}; {est}", r.client.threads);
    // The phases of a request: connect, first byte of the answer, whole answer.
    for (title, d) in [
        ("Connect    ", &r.latency.connect),
        ("First byte ", &r.latency.first_byte),
        ("Full answer", &r.latency.uncorrected),
    ] {
        if d.count > 0 {
            let _ = writeln!(
                out,
                "  {title} p50 {}, p99 {}, max {}",
                latency(d.p50_us),
                latency(d.p99_us),
                latency(d.max_us)
            );
        }
    }
    let lat = &r.latency.corrected;
    let _ = writeln!(out, "  Thread Stats   Avg      Stdev     Max");
    let _ = writeln!(
        out,
        "    Latency   {:>8}  {:>8}  {:>8}",
        latency(lat.mean_us),
        latency(lat.stdev_us),
        latency(lat.max_us)
    );
    match c.mode {
        LoopMode::Open => {
            distribution(&mut out, "Latency Distribution (from scheduled send: corrected)", lat);
            distribution(&mut out, "Service Time (from actual send: uncorrected)", &r.latency.uncorrected);
        }
        LoopMode::Closed => distribution(&mut out, "Latency Distribution", lat),
    }
    let t = &r.totals;
    let _ = writeln!(out, "  {} requests in {:.2}s, {} read", t.requests, t.duration_s, bytes(t.bytes_received as f64));
    if r.connections.reconnects > 0 {
        let rl = &r.latency.reconnect;
        let _ = writeln!(
            out,
            "  Reconnects: {} ({} by the server), reconnect time p50 {}, p99 {}",
            r.connections.reconnects,
            r.connections.server_closes,
            latency(rl.p50_us),
            latency(rl.p99_us)
        );
    }
    let closed = &r.connections.closed_by_server;
    if closed.count > 0 || c.settings.silent_conns > 0 {
        let _ = writeln!(
            out,
            "  Closed by the server: {} ({} of the {} silent connections, {} live), last request to close p50 {}, max {}",
            closed.count,
            closed.silent,
            c.settings.silent_conns + c.settings.idle_conns,
            closed.live,
            latency(closed.after_last_request.p50_us),
            latency(closed.after_last_request.max_us)
        );
    }
    let e = &r.errors;
    if e.total == 0 {
        let _ = writeln!(out, "  Errors: none");
    } else {
        let _ = writeln!(out, "  Errors: {} ({:.3}% of requests)", e.total, e.rate * 100.0);
        for d in &e.details {
            let _ = writeln!(
                out,
                "    {}: {} ({} of {} connections): {}",
                d.kind, d.count, d.conns, settings.conns, d.message
            );
        }
    }
    if let Some(s) = t.status_classes.as_ref().filter(|s| s.redirect + s.client_error + s.server_error + s.other > 0) {
        let _ = writeln!(
            out,
            "  Non-2xx answers: 3xx {}, 4xx {}, 5xx {}, other {} (2xx {})",
            s.redirect, s.client_error, s.server_error, s.other, s.success
        );
    }
    if e.starved_conns > 0 {
        let _ = writeln!(out, "  Starved connections (no answer in the whole run): {}", e.starved_conns);
    }
    if let Some(ol) = &r.open_loop {
        let _ = writeln!(
            out,
            "  Open loop ({}, spin {}): target {:.0} req/s, achieved {:.0} req/s, schedule lag p99 {}, dispatch lag \
             p99 {}",
            match (r.config.arrivals, r.config.seed) {
                (Some(crate::schedule::Arrivals::Poisson), Some(seed)) => format!("poisson arrivals, seed {seed}"),
                (Some(crate::schedule::Arrivals::Poisson), None) => "poisson arrivals".to_string(),
                _ => "uniform arrivals".to_string(),
            },
            r.config.spin.as_deref().unwrap_or("not recorded"),
            ol.target_rate,
            ol.achieved_rate,
            latency(ol.schedule_lag.p99_us),
            latency(ol.dispatch_lag.p99_us)
        );
        if ol.unsent > 0 {
            let _ = writeln!(
                out,
                "  {} of {} scheduled requests were never sent: their connections were still waiting for answers",
                ol.unsent, ol.scheduled
            );
        }
    }
    if let Some(f) = &r.fairness {
        let _ = writeln!(
            out,
            "  Fairness over {} connections: Jain index {:.3}; answers per connection min {}, p1 {}, median {}, \
             p99 {}, max {}; {} ({:.1}%) got under half the median, {} none; longest gap p50 {}, p99 {}, max {}",
            f.conns,
            f.jain_index,
            f.answers_min,
            f.answers_p1,
            f.answers_median,
            f.answers_p99,
            f.answers_max,
            f.below_half_median,
            f.below_half_median_share * 100.0,
            f.unanswered_in_window,
            latency(f.longest_gap.p50_us),
            latency(f.longest_gap.p99_us),
            latency(f.longest_gap.max_us)
        );
    }
    let _ = writeln!(out, "Requests/sec: {:>10.2}", t.requests_per_sec);
    let _ = writeln!(out, "Transfer/sec: {:>10}", bytes(t.received_bytes_per_sec));
    let u = &r.client;
    let _ = writeln!(
        out,
        "Client: {} thread(s), {:.0}% of their CPU capacity (busiest {:.0}%, user {:.2}s, sys {:.2}s{})",
        u.threads,
        u.utilisation * 100.0,
        u.max_thread_utilisation * 100.0,
        u.cpu_user_s,
        u.cpu_sys_s,
        if u.idle_spin_s > 0.0 { format!(", of which {:.2}s spinning idle", u.idle_spin_s) } else { String::new() }
    );
    if u.steal_s > 0.0 {
        let _ =
            writeln!(out, "Steal: the hypervisor took {:.0} ms of the client's CPUs in the window", u.steal_s * 1e3);
    }
    for reason in &r.client_bound_reasons {
        let _ = writeln!(out, "CLIENT-BOUND: {reason}");
    }
    out
}
