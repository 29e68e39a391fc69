//! What to plot from a results folder: each function picks its data from
//! [`Results`] and draws one SVG with [`charts`]. Returns the plots written,
//! with a caption, for the report to embed.

use std::path::Path;

use crate::aggregate::Results;
use crate::charts::{self, Lines};
use crate::error::{BenchError, Result};
use crate::matrix::KNEE_P99_US;

/// A plot written: file name inside `plots/`, and a one-line caption.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    pub file: String,
    pub caption: String,
}

/// Connections at which the spectrum plot compares models.
pub const SPECTRUM_CONNS: u64 = 10_000;

/// Draw every plot the results allow into `dir/plots/`.
pub fn draw_all(results: &Results, dir: &Path) -> Result<Vec<Plot>> {
    let out = dir.join("plots");
    std::fs::create_dir_all(&out).map_err(BenchError::io("create", &out))?;
    let mut plots = Vec::new();
    for w in workloads_with_curves(results) {
        plots.extend(per_connection(results, &out, &w)?);
    }
    plots.extend(memory_bars(results, &out)?);
    plots.extend(idle_memory(results, &out)?);
    plots.extend(spectrum(results, &out)?);
    plots.extend(timeline(results, &out)?);
    plots.extend(sweep(results, &out)?);
    plots.extend(idle_active(results, &out)?);
    Ok(plots)
}

/// Closed-loop workloads measured at two or more connection counts.
fn workloads_with_curves(results: &Results) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for g in &results.groups {
        if g.rate.is_some() || g.idle_conns > 0 || names.contains(&g.workload) {
            continue;
        }
        let mut conns: Vec<u64> = results.of(&g.workload).iter().map(|h| h.conns).collect();
        conns.sort_unstable();
        conns.dedup();
        if conns.len() >= 2 {
            names.push(g.workload.clone());
        }
    }
    names
}

/// Every server key in the report's order: plots give each series its index in
/// this list, so a model has the same colour in every plot.
fn palette(results: &Results) -> Vec<String> {
    crate::tables::ordered_servers(results, "")
}

fn per_connection(results: &Results, out: &Path, workload: &str) -> Result<Vec<Plot>> {
    let servers = palette(results);
    let series = |f: &dyn Fn(&crate::aggregate::Group) -> Option<f64>| -> Vec<(String, Vec<(f64, f64)>)> {
        servers
            .iter()
            .map(|s| {
                let pts = results
                    .of(workload)
                    .into_iter()
                    .filter(|g| &g.server == s)
                    .filter_map(|g| f(g).map(|y| (g.conns as f64, y)))
                    .collect();
                (s.clone(), pts)
            })
            .collect()
    };
    let tput = format!("throughput-{workload}.svg");
    charts::lines(
        &out.join(&tput),
        &Lines {
            title: &format!("{workload}: throughput vs connections (median of repetitions)"),
            x_label: "concurrent connections (log)",
            y_label: "requests per second",
            x_log: true,
            y_log: false,
            series: series(&|g| g.rps),
            hline: None,
        },
    )?;
    let p99 = format!("p99-{workload}.svg");
    charts::lines(
        &out.join(&p99),
        &Lines {
            title: &format!("{workload}: p99 latency vs connections"),
            x_label: "concurrent connections (log)",
            y_label: "p99 latency, ms (log)",
            x_log: true,
            y_log: true,
            series: series(&|g| g.p99_us.map(|v| v / 1000.0)),
            hline: None,
        },
    )?;
    Ok(vec![
        Plot {
            file: tput,
            caption: format!("{workload}: requests per second against concurrent connections, one line per model"),
        },
        Plot { file: p99, caption: format!("{workload}: p99 latency against concurrent connections (log-log)") },
    ])
}

fn memory_bars(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    let bars: Vec<(String, f64, usize)> = palette(results)
        .into_iter()
        .enumerate()
        .filter_map(|(i, s)| results.idle_slope(&s).map(|(b, _)| (s, b.max(0.0) / 1024.0, i)))
        .collect();
    if bars.is_empty() {
        return Ok(Vec::new());
    }
    let file = "memory-per-connection.svg".to_string();
    charts::bars(
        &out.join(&file),
        "Server memory per held connection (slope over the idle ladder)",
        "KiB per connection (anonymous PSS of the whole process tree)",
        &bars,
    )?;
    Ok(vec![Plot {
        file,
        caption: "Memory per connection by model: slope of server memory over connections held".into(),
    }])
}

fn idle_memory(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    if results.servers("idle").is_empty() {
        return Ok(Vec::new());
    }
    let servers = palette(results);
    let series = servers
        .iter()
        .map(|s| {
            let pts = results
                .records
                .iter()
                .filter(|r| r.cell.workload == "idle" && &r.cell.server.key == s && r.valid().is_some())
                .map(|r| {
                    let mem = r.derived.peak_pss_anon_bytes.unwrap_or(r.derived.peak_rss_bytes);
                    (r.derived.conns_held.max(1) as f64, mem as f64 / 1048576.0)
                })
                .collect();
            (s.clone(), pts)
        })
        .collect();
    let file = "idle-memory.svg".to_string();
    charts::lines(
        &out.join(&file),
        &Lines {
            title: "Server memory vs connections held (idle workload)",
            x_label: "connections held by the server (log)",
            y_label: "peak memory, MiB (log; anonymous PSS)",
            x_log: true,
            y_log: true,
            series,
            hline: None,
        },
    )?;
    Ok(vec![Plot { file, caption: "Peak server memory against connections held, idle ladder".into() }])
}

fn spectrum(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    let mut series = Vec::new();
    for s in palette(results) {
        let Some(g) = results.find("http-keepalive", &s, SPECTRUM_CONNS) else {
            series.push((s, Vec::new()));
            continue;
        };
        // The repetition with the median throughput.
        let mut recs: Vec<_> = results.records_of(&g.group).into_iter().filter_map(|r| r.valid()).collect();
        recs.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
        let Some(l) = recs.get(recs.len() / 2) else {
            series.push((s, Vec::new()));
            continue;
        };
        let pts: Vec<(f64, f64)> =
            l.spectrum.iter().filter(|(p, _)| *p < 100.0).map(|(p, v)| (1.0 / (1.0 - p / 100.0), v / 1000.0)).collect();
        series.push((s, pts));
    }
    if series.iter().all(|s| s.1.is_empty()) {
        return Ok(Vec::new());
    }
    let file = format!("spectrum-c{SPECTRUM_CONNS}.svg");
    charts::lines(
        &out.join(&file),
        &Lines {
            title: &format!("Latency percentile spectrum at {SPECTRUM_CONNS} connections (http-keepalive)"),
            x_label: "1/(1-p): 10 = p90, 100 = p99, 1k = p99.9 (log)",
            y_label: "latency, ms (log)",
            x_log: true,
            y_log: true,
            series,
            hline: None,
        },
    )?;
    Ok(vec![Plot { file, caption: format!("Latency spectrum of every model at {SPECTRUM_CONNS} connections") }])
}

fn timeline(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    let preferred = ["soak/reactor/c1000", "http-keepalive/reactor/c1000", "http-keepalive/reactor/c100"];
    let rec = preferred
        .iter()
        .find_map(|g| results.records_of(g).into_iter().find(|r| r.valid().is_some_and(|l| !l.timeline.is_empty())))
        .or_else(|| results.records.iter().find(|r| r.valid().is_some_and(|l| l.timeline.len() >= 2)));
    let Some(rec) = rec else { return Ok(Vec::new()) };
    let Some(l) = rec.valid() else { return Ok(Vec::new()) };
    let pts: Vec<(u32, u64, f64)> = l.timeline.iter().map(|t| (t.0, t.1, t.2)).collect();
    let file = "timeline.svg".to_string();
    charts::timeline(&out.join(&file), &format!("Per-second timeline of {}", rec.cell.id), &pts)?;
    Ok(vec![Plot { file, caption: format!("Answers and p99 latency per second, cell {}", rec.cell.id) }])
}

fn sweep(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    if results.servers("sweep").is_empty() {
        return Ok(Vec::new());
    }
    let servers = palette(results);
    let pick = |f: &dyn Fn(&crate::aggregate::Group) -> Option<f64>| -> Vec<(String, Vec<(f64, f64)>)> {
        servers
            .iter()
            .map(|s| {
                let pts = results
                    .of("sweep")
                    .into_iter()
                    .filter(|g| &g.server == s && g.ok > 0)
                    .filter_map(|g| Some((g.rate?, f(g)?)))
                    .collect();
                (s.clone(), pts)
            })
            .collect()
    };
    let t = "sweep-throughput.svg".to_string();
    charts::lines(
        &out.join(&t),
        &Lines {
            title: "Fixed-rate sweep: achieved vs offered rate (100 connections, open loop)",
            x_label: "offered requests per second (log)",
            y_label: "achieved requests per second (log)",
            x_log: true,
            y_log: true,
            series: pick(&|g| g.achieved_rate.or(g.rps)),
            hline: None,
        },
    )?;
    let p = "sweep-p99.svg".to_string();
    charts::lines(
        &out.join(&p),
        &Lines {
            title: "Fixed-rate sweep: p99 latency vs offered rate (the knee)",
            x_label: "offered requests per second (log)",
            y_label: "p99 latency, ms (log, coordinated-omission corrected)",
            x_log: true,
            y_log: true,
            series: pick(&|g| g.p99_us.map(|v| v / 1000.0)),
            hline: Some((KNEE_P99_US / 1000.0, format!("bound: p99 = {} ms", KNEE_P99_US / 1000.0))),
        },
    )?;
    Ok(vec![
        Plot { file: t, caption: "Throughput against offered rate in the fixed-rate sweep".into() },
        Plot {
            file: p,
            caption: "p99 latency against offered rate; the knee is where a line crosses the bound".into(),
        },
    ])
}

fn idle_active(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    let servers = results.servers("idle-active");
    if servers.is_empty() {
        return Ok(Vec::new());
    }
    let series = servers
        .iter()
        .map(|s| {
            let pts = results
                .of("idle-active")
                .into_iter()
                .filter(|g| &g.server == s)
                .filter_map(|g| Some(((g.idle_conns + 1) as f64, g.cpu_us_per_req?)))
                .collect();
            (s.clone(), pts)
        })
        .collect();
    let file = "idle-active.svg".to_string();
    charts::lines(
        &out.join(&file),
        &Lines {
            title: "Cost of a request vs idle connections, per readiness back end",
            x_label: "idle connections + 1 (log)",
            y_label: "server CPU per request, us",
            x_log: true,
            y_log: false,
            series,
            hline: None,
        },
    )?;
    Ok(vec![Plot {
        file,
        caption: "Server CPU per request at 2,000 requests/s as idle connections grow (select/poll/epoll)".into(),
    }])
}
