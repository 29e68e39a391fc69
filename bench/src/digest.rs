//! Pure functions from raw observations to the figures the report uses: the
//! load generator's report to a [`LoadSummary`], and monitor samples plus that
//! summary to [`Derived`] (peak memory, memory per connection, CPU and context
//! switches per request).

use loadgen::json_report::Report;

use crate::monitor::Sample;
use crate::results::{Derived, LoadSummary};

/// Reduce the load generator's report to the figures the bench reads.
/// `raw` is the same report as JSON, for fields newer than this crate's `loadgen`.
pub fn summarise(r: &Report, raw: &serde_json::Value) -> LoadSummary {
    let lat = &r.latency.corrected;
    let e = &r.errors;
    let window_start = raw
        .get("window_start_unix_ms")
        .and_then(|v| v.as_u64())
        .unwrap_or(r.started_unix_ms + (r.config.settings.warmup.as_secs_f64() * 1000.0) as u64);
    LoadSummary {
        requests: r.totals.requests,
        requests_per_sec: r.totals.requests_per_sec,
        window_s: r.totals.duration_s,
        p50_us: lat.p50_us,
        p90_us: lat.p90_us,
        p99_us: lat.p99_us,
        p999_us: lat.p999_us,
        max_us: lat.max_us,
        mean_us: lat.mean_us,
        p99_uncorrected_us: r.latency.uncorrected.p99_us,
        connect_p99_us: r.latency.connect.p99_us,
        connect_max_us: r.latency.connect.max_us,
        connect_count: r.latency.connect.count,
        spectrum: lat.percentiles.iter().map(|p| (p.percentile, p.value_us)).collect(),
        errors: e.total,
        error_rate: e.rate,
        errors_by_kind: e.details.iter().map(|d| (d.kind.clone(), d.count)).collect(),
        starved: r.connections.starved,
        established: r.connections.established,
        all_established_s: r.connections.all_established_s,
        peak_open: r.connections.peak_open,
        open_at_end: r.connections.open_at_end,
        reconnects: r.connections.reconnects,
        target_rate: r.open_loop.as_ref().map(|o| o.target_rate),
        achieved_rate: r.open_loop.as_ref().map(|o| o.achieved_rate),
        timeline: r.timeline.iter().map(|t| (t.second, t.answers, t.p99_us, t.open_conns)).collect(),
        client_utilisation: r.client.utilisation,
        // The client's working CPU: open-loop cells spin (`--spin busy`) between sends.
        client_cpu_s: (r.client.cpu_user_s + r.client.cpu_sys_s - r.client.idle_spin_s).max(0.0),
        client_bound: r.client_bound,
        client_bound_reasons: r.client_bound_reasons.clone(),
        window_start_unix_ms: window_start,
        jain_index: r.fairness.as_ref().map(|f| f.jain_index),
        below_half_median: r.fairness.as_ref().map(|f| f.below_half_median),
    }
}

/// The figures of a chat load report (`c10k load --proto chat`), read the way the
/// bench reads every cell: a *request* is one delivery of a message to one member,
/// so requests per second are fan-out deliveries per second and CPU per request is
/// CPU per delivery; latency is from a message's scheduled send to its receipt;
/// errors are missing deliveries plus the client's own errors.
pub fn summarise_chat(r: &loadgen::chat::report::ChatReport) -> LoadSummary {
    let lat = &r.latency.corrected;
    let window_s = r.config.duration_s;
    let window_start = r.started_unix_ms + ((r.setup.seconds + r.config.warmup_s) * 1000.0) as u64;
    let errors = r.deliveries.missing + r.errors.connect + r.errors.closed_early + r.errors.error_lines;
    let mut errors_by_kind = Vec::new();
    for (kind, n) in [
        ("missing delivery", r.deliveries.missing),
        ("connect", r.errors.connect),
        ("closed early", r.errors.closed_early),
        ("error line", r.errors.error_lines),
    ] {
        if n > 0 {
            errors_by_kind.push((kind.to_string(), n));
        }
    }
    LoadSummary {
        requests: r.deliveries.received,
        requests_per_sec: r.deliveries.per_sec,
        window_s,
        p50_us: lat.p50_us,
        p90_us: lat.p90_us,
        p99_us: lat.p99_us,
        p999_us: lat.p999_us,
        max_us: lat.max_us,
        mean_us: lat.mean_us,
        p99_uncorrected_us: r.latency.uncorrected.p99_us,
        connect_p99_us: r.setup.join.p99_us,
        connect_max_us: r.setup.join.max_us,
        connect_count: r.setup.join.count,
        spectrum: lat.percentiles.iter().map(|p| (p.percentile, p.value_us)).collect(),
        errors,
        error_rate: r.errors.rate,
        errors_by_kind,
        starved: r.deliveries.members_short,
        established: r.setup.join.count,
        all_established_s: Some(r.setup.seconds),
        peak_open: r.config.members,
        open_at_end: r.config.members.saturating_sub(r.deliveries.members_lost),
        reconnects: 0,
        target_rate: Some(r.config.rate * r.config.members as f64),
        achieved_rate: Some(r.deliveries.per_sec),
        timeline: Vec::new(),
        client_utilisation: r.client.utilisation,
        client_cpu_s: r.client.cpu_user_s + r.client.cpu_sys_s,
        client_bound: r.messages.client_behind,
        client_bound_reasons: if r.messages.client_behind {
            vec!["the client fell behind its send schedule".into()]
        } else {
            Vec::new()
        },
        window_start_unix_ms: window_start,
        jain_index: None,
        below_half_median: None,
    }
}

/// Value of a cumulative counter at time `t` (ms), interpolated between samples.
fn at(samples: &[Sample], t: u64, f: impl Fn(&Sample) -> u64) -> Option<f64> {
    let first = samples.first()?;
    let last = samples.last()?;
    if t <= first.unix_ms {
        return Some(f(first) as f64);
    }
    if t >= last.unix_ms {
        return Some(f(last) as f64);
    }
    let i = samples.iter().position(|s| s.unix_ms >= t)?;
    let (a, b) = (&samples[i - 1], &samples[i]);
    let span = (b.unix_ms - a.unix_ms).max(1) as f64;
    let frac = (t - a.unix_ms) as f64 / span;
    Some(f(a) as f64 + (f(b) as f64 - f(a) as f64) * frac)
}

/// Derive the per-cell figures. `baseline` is a full sample taken before the
/// load started; `server_cpus` is the server's CPU set.
pub fn derive(
    samples: &[Sample],
    baseline: Option<&Sample>,
    load: Option<&LoadSummary>,
    server_cpus: &[usize],
) -> Derived {
    let mut d = Derived { samples: samples.len(), ..Derived::default() };
    let mut gaps: Vec<u64> = samples.windows(2).map(|w| w[1].unix_ms.saturating_sub(w[0].unix_ms)).collect();
    gaps.sort_unstable();
    d.sample_interval_ms = gaps.get(gaps.len() / 2).copied().unwrap_or(0) as f64;
    let peak = |f: &dyn Fn(&Sample) -> Option<u64>| samples.iter().filter_map(f).max();
    d.peak_rss_bytes = peak(&|s| Some(s.rss_bytes)).unwrap_or(0);
    d.peak_pss_bytes = peak(&|s| s.pss_bytes);
    d.peak_pss_anon_bytes = peak(&|s| s.pss_anon_bytes);
    d.peak_vsz_bytes = peak(&|s| Some(s.vsz_bytes)).unwrap_or(0);
    d.peak_threads = peak(&|s| Some(s.threads)).unwrap_or(0);
    d.peak_procs = peak(&|s| Some(s.procs)).unwrap_or(0);
    d.peak_fds = peak(&|s| s.fds).unwrap_or(0);
    d.peak_tcp_mem_bytes = peak(&|s| Some(s.tcp_mem_bytes)).unwrap_or(0);
    let base = baseline.or(samples.first());
    d.baseline_rss_bytes = base.map_or(0, |b| b.rss_bytes);
    d.peak_cg_mem_bytes = peak(&|s| s.cgroup.map(|c| c.mem_bytes));
    pair_memory(&mut d, samples, base);
    let Some(load) = load else { return d };
    d.client_bound = load.client_bound;
    let start = load.window_start_unix_ms;
    let end = start + (load.window_s * 1000.0) as u64;
    let covered = samples.first().is_some_and(|s| s.unix_ms <= start + 200)
        && samples.last().is_some_and(|s| s.unix_ms + 200 >= end);
    if !covered || load.window_s <= 0.0 {
        return d;
    }
    // The cgroup counts every task that ran in it; /proc sampling misses children that
    // lived and died between two samples.
    let from_cgroup = samples.iter().all(|s| s.cgroup.is_some());
    d.cpu_source = Some(if from_cgroup { "cgroup" } else { "proc" }.into());
    let cpu = |s: &Sample| match s.cgroup {
        Some(c) if from_cgroup => c.cpu_user_us + c.cpu_sys_us,
        _ => s.cpu_user_us + s.cpu_sys_us,
    };
    if let (Some(a), Some(b)) = (at(samples, start, cpu), at(samples, end, cpu)) {
        let used = (b - a).max(0.0);
        let capacity = load.window_s * 1e6 * server_cpus.len().max(1) as f64;
        d.server_cpu_util = Some(used / capacity);
        if load.requests > 0 {
            d.cpu_us_per_req = Some(used / load.requests as f64);
        }
        // Busy time of the server's CPUs that was not the server's: other processes.
        let busy = |s: &Sample| server_cpus.iter().map(|&c| s.cpu_busy_us.get(c).copied().unwrap_or(0)).sum::<u64>();
        if samples.iter().all(|s| !s.cpu_busy_us.is_empty()) {
            if let (Some(a), Some(b)) = (at(samples, start, busy), at(samples, end, busy)) {
                d.foreign_cpu_util = Some(((b - a) - used).max(0.0) / capacity);
            }
        }
    }
    // Context switches: between the first and last full samples inside the window,
    // per request answered in that span (at the window's mean rate).
    let inside: Vec<&Sample> =
        samples.iter().filter(|s| s.ctx_switches.is_some() && s.unix_ms >= start && s.unix_ms <= end).collect();
    if let (Some(a), Some(b)) = (inside.first(), inside.last()) {
        let span_s = (b.unix_ms - a.unix_ms) as f64 / 1000.0;
        let ctx = |s: &Sample| s.ctx_switches.unwrap_or(0);
        let reqs = load.requests_per_sec * span_s;
        if span_s > 0.2 && reqs > 0.0 {
            d.ctx_per_req = Some(ctx(b).saturating_sub(ctx(a)) as f64 / reqs);
        }
    }
    d
}

/// Where a memory figure comes from, most exact first.
#[derive(Clone, Copy, PartialEq)]
enum MemSource {
    /// Anonymous memory of the server's cgroup: every page once, children included.
    Cgroup,
    /// Anonymous PSS (several processes) or resident anonymous pages (one).
    PssAnon,
    Rss,
}

fn mem_of(s: &Sample, src: MemSource) -> Option<u64> {
    match src {
        MemSource::Cgroup => s.cgroup.map(|c| c.anon_bytes),
        MemSource::PssAnon => s.pss_anon_bytes,
        MemSource::Rss => Some(s.rss_bytes),
    }
}

/// Connections held by a full sample: distinct sockets (a listener inherited by
/// every forked child counts once), or descriptors when sockets were not read.
fn held_of(s: &Sample, sockets: bool) -> Option<u64> {
    if sockets {
        s.sockets
    } else {
        s.fds
    }
}

/// Memory per connection from one moment: the full sample that held the most
/// connections, and the memory of that same sample, both over the baseline. A
/// peak of memory and a peak of sockets taken from different samples do not
/// pair up (a socket count that lags the memory, or the reverse).
fn pair_memory(d: &mut Derived, samples: &[Sample], base: Option<&Sample>) {
    let Some(base) = base else { return };
    let sockets = base.sockets.is_some() && samples.iter().any(|s| s.sockets.is_some());
    let Some(at) = samples.iter().filter(|s| held_of(s, sockets).is_some()).max_by_key(|s| held_of(s, sockets)) else {
        return;
    };
    let held = held_of(at, sockets).unwrap_or(0).saturating_sub(held_of(base, sockets).unwrap_or(0));
    d.conns_held = held;
    let src = [MemSource::Cgroup, MemSource::PssAnon, MemSource::Rss]
        .into_iter()
        .find(|&m| mem_of(at, m).is_some() && mem_of(base, m).is_some())
        .unwrap_or(MemSource::Rss);
    d.mem_source = Some(
        match src {
            MemSource::Cgroup => "cgroup anon",
            MemSource::PssAnon => "anonymous PSS",
            MemSource::Rss => "RSS",
        }
        .into(),
    );
    let mem = mem_of(at, src).unwrap_or(0);
    d.held_mem_bytes = Some(mem);
    d.held_base_mem_bytes = Some(mem_of(base, src).unwrap_or(0));
    if held == 0 {
        return;
    }
    let per = |a: u64, b: u64| Some(a.saturating_sub(b) as f64 / held as f64);
    d.mem_per_conn_bytes = per(mem, mem_of(base, src).unwrap_or(0));
    let kernel = |s: &Sample| s.tcp_mem_bytes + s.slab_unreclaimable_bytes;
    d.kernel_per_conn_bytes = per(kernel(at), kernel(base));
    if let (Some(a), Some(b)) = (at.cgroup.and_then(|c| c.tcp_bytes), base.cgroup.and_then(|c| c.tcp_bytes)) {
        d.server_tcp_per_conn_bytes = per(a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64, cpu: u64, rss: u64, fds: u64) -> Sample {
        Sample {
            unix_ms: ms,
            cpu_user_us: cpu,
            rss_bytes: rss,
            fds: Some(fds),
            ctx_switches: Some(cpu / 10),
            // CPU 0 is busy 1.25x the server's own use: a quarter of its time is someone else's.
            cpu_busy_us: vec![cpu + cpu / 4],
            ..Sample::default()
        }
    }

    #[test]
    fn cpu_per_request_over_the_window_only() {
        // 1 s of CPU per second of wall time; window 1000..3000 ms; 20,000 requests.
        let samples: Vec<Sample> = (0..=40).map(|i| s(i * 100, i * 100_000, 1 << 20, 10 + i)).collect();
        let load = LoadSummary {
            requests: 20_000,
            requests_per_sec: 10_000.0,
            window_s: 2.0,
            window_start_unix_ms: 1_000,
            ..LoadSummary::default()
        };
        let d = derive(&samples, Some(&s(0, 0, 1 << 20, 10)), Some(&load), &[0]);
        let cpu = d.cpu_us_per_req.expect("covered window");
        assert!((cpu - 100.0).abs() < 1.0, "2 s of CPU over 20,000 requests = 100 us, got {cpu}");
        assert!((d.server_cpu_util.unwrap_or(0.0) - 1.0).abs() < 0.01);
        assert!((d.ctx_per_req.unwrap_or(0.0) - 10.0).abs() < 0.1);
        assert!((d.foreign_cpu_util.unwrap_or(0.0) - 0.25).abs() < 0.01, "{:?}", d.foreign_cpu_util);
        assert_eq!(d.conns_held, 40);
        assert_eq!(d.peak_fds, 50);
    }

    #[test]
    fn memory_per_connection_uses_pss_when_known() {
        let mut a = s(0, 0, 10_000_000, 5);
        a.pss_anon_bytes = Some(4_000_000);
        let mut b = s(100, 0, 30_000_000, 1_005);
        b.pss_anon_bytes = Some(14_000_000);
        let d = derive(&[a.clone(), b], Some(&a), None, &[0]);
        assert_eq!(d.mem_per_conn_bytes, Some(10_000.0));
        assert_eq!(d.peak_rss_bytes, 30_000_000);
    }

    /// A socket count that lags the memory (a light sample saw more memory than any
    /// full sample's connections explain): memory and connections come from one sample.
    #[test]
    fn memory_per_connection_pairs_one_sample() {
        let full = |ms, sockets, mem: u64| Sample {
            unix_ms: ms,
            sockets: Some(sockets),
            fds: Some(sockets),
            pss_anon_bytes: Some(mem),
            ..Sample::default()
        };
        let base = full(0, 1, 1_000_000);
        let mut light = Sample { unix_ms: 300, pss_anon_bytes: Some(1_001_000_000), ..Sample::default() };
        light.fds = None;
        let samples = [base.clone(), full(100, 3_001, 301_000_000), full(200, 6_620, 662_900_000), light];
        let d = derive(&samples, Some(&base), None, &[0]);
        assert_eq!(d.conns_held, 6_619);
        assert_eq!(d.mem_per_conn_bytes, Some(100_000.0), "661.9 MB over 6,619 connections of the same sample");
        assert_eq!(d.held_mem_bytes, Some(662_900_000));
    }

    #[test]
    fn cgroup_counters_win_when_every_sample_has_them() {
        let cg = |cpu_us, anon| {
            Some(crate::cgroup::CgSample { cpu_user_us: cpu_us, anon_bytes: anon, ..Default::default() })
        };
        // /proc sees 0 CPU (the children that did the work died between samples); the cgroup saw 2 s.
        let samples: Vec<Sample> = (0..=40)
            .map(|i| Sample {
                unix_ms: i * 100,
                sockets: Some(1 + i),
                cgroup: cg(i * 100_000, 1_000_000 + i * 10_000),
                ..Sample::default()
            })
            .collect();
        let load = LoadSummary {
            requests: 20_000,
            requests_per_sec: 10_000.0,
            window_s: 2.0,
            window_start_unix_ms: 1_000,
            ..LoadSummary::default()
        };
        let d = derive(&samples, Some(&samples[0]), Some(&load), &[0]);
        assert_eq!(d.cpu_source.as_deref(), Some("cgroup"));
        assert!((d.cpu_us_per_req.unwrap_or(0.0) - 100.0).abs() < 1.0);
        assert_eq!(d.mem_source.as_deref(), Some("cgroup anon"));
        assert_eq!(d.mem_per_conn_bytes, Some(10_000.0));
    }

    #[test]
    fn uncovered_window_gives_no_rates() {
        let samples = vec![s(5_000, 0, 1, 1), s(5_100, 10, 1, 1)];
        let load = LoadSummary { requests: 10, window_s: 2.0, window_start_unix_ms: 1_000, ..LoadSummary::default() };
        let d = derive(&samples, None, Some(&load), &[0]);
        assert!(d.cpu_us_per_req.is_none());
    }
}
