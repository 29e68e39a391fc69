//! What to plot from a results folder: each function picks its data from
//! [`Results`] and draws one SVG with [`draw`]. Returns the plots written,
//! with a caption, for the report to embed.

pub mod draw;

use std::path::Path;

use crate::aggregate::{Figure, Group, Results};
use crate::error::{BenchError, Result};
use crate::matrix::KNEE_P99_US;
use draw::{Lines, Pt, HOLLOW_MEANS};

/// A plot written: file name inside `plots/`, and a one-line caption.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    pub file: String,
    pub caption: String,
}

/// Connections at which the spectrum plot compares models: the main table's first column.
pub const SPECTRUM_CONNS: u64 = 100;

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
    plots.extend(fairness(results, &out)?);
    // A plot an earlier report drew from data this folder no longer has would be read as current.
    let entries = std::fs::read_dir(&out).map_err(BenchError::io("read folder", &out))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".svg") && !plots.iter().any(|p| p.file == name) {
            std::fs::remove_file(&path).map_err(BenchError::io("remove stale plot", &path))?;
        }
    }
    Ok(plots)
}

/// Closed-loop workloads measured at two or more connection counts.
/// Draw `lines` into `out/file`: the one plot of its kind, with `caption`.
fn one(out: &Path, file: String, lines: &Lines<'_>, caption: String) -> Result<Vec<Plot>> {
    draw::lines(&out.join(&file), lines)?;
    Ok(vec![Plot { file, caption }])
}

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
    crate::report_tables::ordered_servers(results, "")
}

/// A group's figure as a point at `x`: the median with its interval, divided by `scale`,
/// hollow when the group was client-bound or starved.
fn point(results: &Results, g: &Group, fig: Figure, x: f64, scale: f64) -> Option<Pt> {
    let i = results.interval(g, fig)?;
    let spread = i.n >= 2;
    Some(Pt {
        x,
        y: i.median / scale,
        lo: spread.then_some(i.lo / scale),
        hi: spread.then_some(i.hi / scale),
        hollow: g.client_limited() || g.starving(),
    })
}

/// What a workload is and how its cells were run, from the workload table and the cells
/// themselves: `HTTP/1.1 keep-alive, ...; 5 repetitions, 0.5 s warm-up + 1.5 s window`.
pub fn caption_of(results: &Results, workload: &str) -> String {
    let about = crate::workloads::find(workload).map_or(workload, |w| w.about);
    format!("{about}; {}", runs_of(results, workload))
}

/// How a workload's cells were run, read from the cells: `5 repetitions, 0.5 s warm-up + 1.5 s window; ...`.
fn runs_of(results: &Results, workload: &str) -> String {
    let cells: Vec<_> = results.records.iter().filter(|r| r.cell.workload == workload).map(|r| &r.cell).collect();
    let reps = cells.iter().map(|c| c.rep).max().unwrap_or(0);
    let window =
        cells.iter().filter_map(|c| c.duration_s).fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
    let warmup = cells.iter().map(|c| c.warmup_s).fold(0.0, f64::max);
    let run = match window {
        Some(d) => format!("{warmup} s warm-up + {d} s window"),
        None => "bounded by a request count".into(),
    };
    let reps = if reps == 1 { "1 repetition".to_string() } else { format!("up to {reps} repetitions") };
    format!("{reps}, {run}; error bars: the interval of the median, {HOLLOW_MEANS}")
}

fn per_connection(results: &Results, out: &Path, workload: &str) -> Result<Vec<Plot>> {
    let servers = palette(results);
    let series = |fig: Figure, scale: f64| -> Vec<(String, Vec<Pt>)> {
        servers
            .iter()
            .map(|s| {
                let pts = results
                    .of(workload)
                    .into_iter()
                    .filter(|g| &g.server == s)
                    .filter_map(|g| point(results, g, fig, g.conns as f64, scale))
                    .collect();
                (s.clone(), pts)
            })
            .collect()
    };
    let about = caption_of(results, workload);
    let mut plots = Vec::new();
    let charts_of = [
        ("throughput", "throughput vs connections", "requests per second", false, Figure::Rps, 1.0),
        ("p99", "p99 latency vs connections", "p99 latency, ms (log)", true, Figure::P99, 1000.0),
        (
            "cpu-per-req",
            "server CPU per request vs connections",
            "server CPU per request, us (log)",
            true,
            Figure::CpuPerReq,
            1.0,
        ),
    ];
    for (stem, what, y_label, y_log, fig, scale) in charts_of {
        let file = format!("{stem}-{workload}.svg");
        let data = series(fig, scale);
        if data.iter().all(|(_, p)| p.is_empty()) {
            continue;
        }
        draw::lines(
            &out.join(&file),
            &Lines {
                title: &format!("{workload}: {what}"),
                x_label: "concurrent connections (log)",
                y_label,
                x_log: true,
                y_log,
                series: data,
                hline: None,
            },
        )?;
        plots.push(Plot { file, caption: format!("{workload}: {what}, one line per model. {about}") });
    }
    Ok(plots)
}

/// Answers per connection relative to each model's median connection, where a median
/// connection was answered; beyond this the row is clipped and labelled.
const FAIRNESS_CLIP: f64 = 6.0;

fn fairness(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    use crate::fairness::{rows, FAIRNESS_CONNS};
    let rows = rows(results, FAIRNESS_CONNS);
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let colours = palette(results);
    let ranges: Vec<draw::Range> = rows
        .iter()
        .map(|r| {
            let colour = colours.iter().position(|s| *s == r.server).unwrap_or(0);
            let med = r.answers[2];
            let jain = format!("Jain {:.3}", r.jain.median);
            if med > 0.0 {
                draw::Range { label: r.server.clone(), colour, quantiles: Some(r.answers.map(|a| a / med)), note: jain }
            } else {
                let note = format!(
                    "median connection unanswered: {} of {} without an answer, {jain}",
                    crate::show::n(r.unanswered),
                    crate::show::n(r.conns as f64)
                );
                draw::Range { label: r.server.clone(), colour, quantiles: None, note }
            }
        })
        .collect();
    let file = format!("fairness-c{FAIRNESS_CONNS}.svg");
    draw::ranges(
        &out.join(&file),
        &format!("Answers per connection at {} keep-alive connections", crate::show::n(FAIRNESS_CONNS as f64)),
        "answers per connection / the median connection's (line: min-max, bar: p1-p99, tick: median)",
        &ranges,
        FAIRNESS_CLIP,
    )?;
    Ok(vec![Plot {
        file,
        caption: format!(
            "Who gets served at {} connections: each model's answers per connection over the window, relative to its \
             median connection (1 = the median); a fair server is a short range around 1. Medians over repetitions.",
            crate::show::n(FAIRNESS_CONNS as f64)
        ),
    }])
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
    draw::bars(
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
                    Pt {
                        hollow: r.valid().is_some_and(|l| l.starved > 0 || l.client_bound),
                        ..Pt::from((r.derived.conns_held.max(1) as f64, mem as f64 / 1048576.0))
                    }
                })
                .collect();
            (s.clone(), pts)
        })
        .collect();
    let file = "idle-memory.svg".to_string();
    let lines = Lines::log_log(
        "Server memory vs connections held (idle workload)",
        "connections held by the server (log)",
        "peak memory, MiB (log; anonymous PSS)",
        series,
    );
    let caption = format!(
        "Peak server memory against connections held, one point per repetition. {}",
        caption_of(results, "idle")
    );
    one(out, file, &lines, caption)
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
        let hollow = g.client_limited() || g.starving();
        let pts: Vec<Pt> = l
            .spectrum
            .iter()
            .filter(|(p, _)| *p < 100.0)
            .map(|(p, v)| Pt { hollow, ..Pt::from((1.0 / (1.0 - p / 100.0), v / 1000.0)) })
            .collect();
        series.push((s, pts));
    }
    if series.iter().all(|s| s.1.is_empty()) {
        return Ok(Vec::new());
    }
    let file = format!("spectrum-c{SPECTRUM_CONNS}.svg");
    let title = format!("Latency percentile spectrum at {SPECTRUM_CONNS} connections (http-keepalive)");
    let lines = Lines::log_log(
        &title,
        "1/(1-p): 10 = p90, 100 = p99, 1k = p99.9 (log)",
        "latency, ms (log, coordinated-omission corrected)",
        series,
    );
    let caption = format!(
        "Latency spectrum of every model at {SPECTRUM_CONNS} connections, the repetition with the median req/s. {}",
        caption_of(results, "http-keepalive")
    );
    one(out, file, &lines, caption)
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
    draw::timeline(&out.join(&file), &format!("Per-second timeline of {}", rec.cell.id), &pts)?;
    Ok(vec![Plot { file, caption: format!("Answers and p99 latency per second, cell {}", rec.cell.id) }])
}

fn sweep(results: &Results, out: &Path) -> Result<Vec<Plot>> {
    if results.servers("sweep").is_empty() {
        return Ok(Vec::new());
    }
    let servers = palette(results);
    // x: the achieved rate of each offered rate (median), y: a figure with its interval.
    let pick = |x_of: &dyn Fn(&Group) -> Option<f64>, fig: Figure, scale: f64| -> Vec<(String, Vec<Pt>)> {
        servers
            .iter()
            .map(|s| {
                let pts = results
                    .of("sweep")
                    .into_iter()
                    .filter(|g| &g.server == s && g.ok > 0)
                    .filter_map(|g| point(results, g, fig, x_of(g)?, scale))
                    .collect();
                (s.clone(), pts)
            })
            .collect()
    };
    let offered = |g: &Group| g.rate;
    let achieved = |g: &Group| results.interval(g, Figure::AchievedRate).map(|i| i.median).or(g.rps);
    let about = caption_of(results, "sweep");
    let bound = Some((KNEE_P99_US / 1000.0, format!("bound: p99 = {} ms", KNEE_P99_US / 1000.0)));
    let specs = [
        (
            "sweep-throughput.svg",
            "Fixed-rate sweep: achieved vs offered rate (open loop)",
            "offered requests per second (log)",
            "achieved requests per second (log)",
            pick(&offered, Figure::AchievedRate, 1.0),
            None,
            "Achieved against offered rate",
        ),
        (
            "sweep-p99.svg",
            "Fixed-rate sweep: p99 latency vs offered rate (the knee)",
            "offered requests per second (log)",
            "p99 latency, ms (log, coordinated-omission corrected)",
            pick(&offered, Figure::P99, 1000.0),
            bound.clone(),
            "p99 latency against offered rate; the knee is the last rate below the bound",
        ),
        (
            "sweep-latency-throughput.svg",
            "Latency vs achieved throughput (corrected for coordinated omission)",
            "achieved requests per second (log)",
            "p99 latency from each request's intended start, ms (log)",
            pick(&achieved, Figure::P99, 1000.0),
            bound.clone(),
            "p99 latency (coordinated-omission corrected) against achieved throughput",
        ),
        (
            "sweep-latency-throughput-uncorrected.svg",
            "Latency vs achieved throughput (service time, uncorrected)",
            "achieved requests per second (log)",
            "p99 latency from each request's actual send, ms (log)",
            pick(&achieved, Figure::P99Uncorrected, 1000.0),
            bound,
            "p99 service time (not corrected: what a closed-loop tool reports) against achieved throughput",
        ),
    ];
    let mut plots = Vec::new();
    for (file, title, x_label, y_label, series, hline, caption) in specs {
        draw::lines(&out.join(file), &Lines { title, x_label, y_label, x_log: true, y_log: true, series, hline })?;
        plots.push(Plot { file: file.into(), caption: format!("{caption}. {about}") });
    }
    Ok(plots)
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
                .filter_map(|g| point(results, g, Figure::CpuPerReq, g.idle_conns as f64, 1.0))
                .collect();
            (s.clone(), pts)
        })
        .collect();
    let groups = results.of("idle-active");
    let active: Vec<u64> = groups.iter().map(|g| g.conns).collect();
    let rates: Vec<f64> = groups.iter().filter_map(|g| g.rate).collect();
    let load = match (active.iter().min(), active.iter().max(), rates.first()) {
        (Some(a), Some(b), Some(r)) if a == b && rates.iter().all(|x| x == r) => {
            format!("{a} active connections at {} requests/s in total (open loop)", crate::show::n(*r))
        }
        (Some(a), Some(b), None) if a == b => format!("{a} active connections, closed loop"),
        _ => "active connections as in each cell".into(),
    };
    let file = "idle-active.svg".to_string();
    let lines = Lines {
        title: "Cost of a request vs idle connections, per readiness back end",
        x_label: "idle connections held open beside the active ones",
        y_label: "server CPU per request, us",
        x_log: false,
        y_log: false,
        series,
        hline: None,
    };
    let caption = format!(
        "Server CPU per request as idle connections grow, {load}: a scan of every descriptor per wait shows as a \
         line that rises with the idle count; {}",
        runs_of(results, "idle-active")
    );
    one(out, file, &lines, caption)
}
