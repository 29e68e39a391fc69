//! The Markdown tables of the report: the main model comparison, the knee of
//! the sweep, and one table per workload. Every cell of every table comes from
//! [`Results`].

use std::fmt::Write as _;

use servers::Model;

use crate::aggregate::{Group, Results};
use crate::claims::seed_text;
use crate::matrix::KNEE_P99_US;
use crate::show::{bytes, lat, n};

/// Server keys in a stable order: the models in `Model::ALL` order, then variants as first seen.
pub fn ordered_servers(r: &Results, workload: &str) -> Vec<String> {
    let seen = r.servers(workload);
    let mut keys: Vec<String> = Model::ALL.iter().map(|m| m.name().to_string()).filter(|k| seen.contains(k)).collect();
    let rest: Vec<String> = seen.into_iter().filter(|k| !keys.contains(k)).collect();
    keys.extend(rest);
    keys
}

fn cell(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".into())
}

fn ok_group<'a>(r: &'a Results, w: &str, s: &str, c: u64) -> Option<&'a Group> {
    r.find(w, s, c).filter(|g| g.ok > 0)
}

/// What a group shows when it has no figure: its status, shortened.
fn status_note(r: &Results, w: &str, s: &str, c: u64) -> String {
    match r.find(w, s, c) {
        Some(g) if g.ok == 0 => short(&g.status),
        _ => "–".into(),
    }
}

fn short(s: &str) -> String {
    let s = s.replace('|', "/");
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Marks a figure whose cell was client-bound (in any repetition).
pub const CLIENT_BOUND_MARK: &str = "†";
/// Marks a figure whose cell left connections without any answer.
pub const STARVED_MARK: &str = "‡";

/// The markers a group's figure carries.
fn marks(g: &Group) -> String {
    let mut m = String::new();
    if g.client_limited() {
        m.push_str(CLIENT_BOUND_MARK);
    }
    if g.starving() {
        m.push_str(STARVED_MARK);
    }
    m
}

/// A group's req/s with its interval and markers.
fn rps_cell(g: &Group) -> Option<String> {
    Some(format!("{}{}", g.rps_ci?.show(n), marks(g)))
}

/// The main table: one row per model of the main comparison.
pub fn main_table(r: &Results) -> String {
    let mut out = String::from(
        "| id | model | req/s, 100 conns | req/s, 10,000 conns | p50 / p99 / p99.9, 100 conns | p99, 10,000 conns | \
         peak memory | memory / conn | CPU / req, server / client (100 conns) | req per server CPU-second (100 conns) | \
         conns served (idle) | fairness (Jain), 1,000 / 10,000 conns | the documents say |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let us = |v: f64| format!("{v:.1}");
    for s in ordered_servers(r, "http-keepalive") {
        let any = r.of("http-keepalive").into_iter().find(|g| g.server == s).cloned().unwrap_or_default();
        let g100 = ok_group(r, "http-keepalive", &s, 100);
        let g10k = ok_group(r, "http-keepalive", &s, 10_000);
        let lat100 = g100.and_then(|g| Some(format!("{} / {} / {}", lat(g.p50_us?), lat(g.p99_us?), lat(g.p999_us?))));
        let peak = r
            .of("http-keepalive")
            .into_iter()
            .filter(|g| g.server == s && g.ok > 0)
            .max_by_key(|g| g.conns)
            .and_then(|g| Some(format!("{} @{}", bytes(g.peak_pss.or(g.peak_rss)?), n(g.conns as f64))));
        let per_conn = r.idle_slope(&s).map(|(b, _)| bytes(b.max(0.0)));
        let cpu = g100.and_then(|g| {
            let server = g.cpu_ci?.show(us);
            Some(match g.client_cpu_us_per_req {
                Some(c) => format!("{server} us / {c:.1} us"),
                None => format!("{server} us / not measured"),
            })
        });
        // Requests per server CPU-second: the inverse of CPU per request, bounds swapped.
        let efficiency = g100.and_then(|g| g.cpu_ci).filter(|c| c.lo > 0.0).map(|c| {
            let inv = crate::stats::Interval { lo: 1e6 / c.hi, median: 1e6 / c.median, hi: 1e6 / c.lo, ..c };
            inv.show(n)
        });
        let held = r.served_max(&s).map(|(served, at)| format!("{} of {}", n(served), n(at as f64)));
        let jain = |c: u64| ok_group(r, "http-keepalive", &s, c).and_then(|g| g.jain).map(|j| format!("{j:.3}"));
        let fairness = match (jain(1_000), jain(10_000)) {
            (None, None) => None,
            (a, b) => Some(format!("{} / {}", cell(a), cell(b))),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            any.id,
            if crate::reference::is_reference(&s) { format!("{s} (reference)") } else { s.clone() },
            g100.and_then(rps_cell).unwrap_or_else(|| status_note(r, "http-keepalive", &s, 100)),
            g10k.and_then(rps_cell).unwrap_or_else(|| status_note(r, "http-keepalive", &s, 10_000)),
            cell(lat100),
            cell(g10k.and_then(|g| g.p99_us).map(lat)),
            cell(peak),
            cell(per_conn),
            cell(cpu),
            cell(efficiency),
            cell(held),
            cell(fairness),
            cell(Some(seed_text(&s)).filter(|t| !t.is_empty()))
        );
    }
    let _ = writeln!(
        out,
        "\nMedians with their intervals (lowest-highest repetition, n = repetitions; see the method). \
         {CLIENT_BOUND_MARK} the load generator was the bottleneck in at least one repetition: req/s there is the \
         client's limit, not the server's; compare such rows on requests per server CPU-second, which stays valid. \
         {STARVED_MARK} some connections got no answer in the whole run (the count is in the appendix). A missing \
         figure is shown as – or the cell's status, never as zero. Fairness is Jain's index of answers per \
         connection over the window: 1 when every connection was served equally, k/n when k of n were."
    );
    out
}

/// The knee of each server's sweep: the highest offered rate whose p99 stayed under the bound.
pub fn knee_table(r: &Results) -> String {
    let servers = ordered_servers(r, "sweep");
    if servers.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "| model | knee: last rate before the first with p99 over {} | p99 there | first rate past the knee | its p99 / achieved | client lateness p99 there (hypervisor steal on the client's CPU in the window) |\n|---|---|---|---|---|---|\n",
        lat(KNEE_P99_US)
    );
    for s in servers {
        let mut pts: Vec<&Group> = r.of("sweep").into_iter().filter(|g| g.server == s && g.rate.is_some()).collect();
        pts.sort_by(|a, b| a.rate.unwrap_or(0.0).total_cmp(&b.rate.unwrap_or(0.0)));
        let under = |g: &&Group| {
            g.ok > 0
                && g.p99_us.is_some_and(|p| p <= KNEE_P99_US)
                && g.achieved_rate.or(g.rps).unwrap_or(0.0) >= 0.9 * g.rate.unwrap_or(0.0)
        };
        let (knee, past) = knee_of(&pts, under);
        let _ = writeln!(
            out,
            "| {s} | {} | {} | {} | {} | {} |",
            knee.and_then(|g| g.rate)
                .map(|v| format!("{} req/s", n(v)))
                .unwrap_or_else(|| "below the lowest rate".into()),
            cell(knee.and_then(|g| g.p99_us).map(lat)),
            cell(past.and_then(|g| g.rate).map(|v| format!("{} req/s", n(v)))),
            cell(past.map(|g| {
                if g.ok == 0 {
                    short(&g.status)
                } else {
                    format!(
                        "{} / {}",
                        g.p99_us.map(lat).unwrap_or_default(),
                        n(g.achieved_rate.or(g.rps).unwrap_or(0.0))
                    )
                }
            })),
            cell(past.and_then(|g| {
                let lag = lat(dispatch_lag_p99(r, g)?);
                Some(match client_steal_s(r, g) {
                    Some(steal) => format!("{lag} (steal {:.0} ms)", steal * 1e3),
                    None => lag,
                })
            }))
        );
    }
    out
}

/// The median over a group's repetitions of one figure of the load generator's raw
/// report (a JSON pointer); `None` for reports older than the figure.
fn raw_median(r: &Results, g: &Group, pointer: &str) -> Option<f64> {
    let values: Vec<f64> =
        r.records_of(&g.group).iter().filter_map(|rec| rec.load_raw.as_ref()?.pointer(pointer)?.as_f64()).collect();
    crate::stats::median(values)
}

/// The load generator's own lateness in a group: the p99 dispatch lag, how late
/// requests on free connections left the client.
fn dispatch_lag_p99(r: &Results, g: &Group) -> Option<f64> {
    raw_median(r, g, "/open_loop/dispatch_lag/p99_us")
}

/// The hypervisor's steal on the client's CPUs over the window.
fn client_steal_s(r: &Results, g: &Group) -> Option<f64> {
    raw_median(r, g, "/client/steal_s")
}

/// The knee (the highest rate under the bound) and the rate after it. Misses
/// below the knee are latency spikes at a rate the server then kept up with at
/// higher rates, not its limit.
/// The knee: the last rate before the first rate that fails the bound (a p99 that
/// passes again at a higher rate does not move it), and that first failing rate.
fn knee_of<'a>(pts: &[&'a Group], under: impl Fn(&&'a Group) -> bool) -> (Option<&'a Group>, Option<&'a Group>) {
    let first_fail = pts.iter().position(|g| !under(g));
    match first_fail {
        Some(0) => (None, pts.first().copied()),
        Some(i) => (Some(pts[i - 1]), Some(pts[i])),
        None => (pts.last().copied(), None),
    }
}

/// Label of a group's size point: `1,000`, `10 + 1,000 idle`, `5,000/s`.
fn point(g: &Group) -> String {
    let mut p = n(g.conns as f64);
    if g.idle_conns > 0 {
        p = format!("{p} + {} idle", n(g.idle_conns as f64));
    }
    if let Some(rate) = g.rate {
        p = format!("{p} @ {}/s", n(rate));
    }
    p
}

/// One table per workload: servers by size points, `req/s · p99` in each cell.
pub fn workload_table(r: &Results, workload: &str) -> String {
    let groups = r.of(workload);
    let mut points: Vec<(u64, u64, i64, String)> = Vec::new();
    for g in &groups {
        let key = (g.conns, g.idle_conns, g.rate.unwrap_or(0.0) as i64, point(g));
        if !points.contains(&key) {
            points.push(key);
        }
    }
    points.sort();
    let mut out = format!(
        "| model | {} |\n|---|{}\n",
        points.iter().map(|p| p.3.clone()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(points.len())
    );
    for s in ordered_servers(r, workload) {
        let cells: Vec<String> = points
            .iter()
            .map(|p| {
                let g = groups.iter().find(|g| {
                    g.server == s && g.conns == p.0 && g.idle_conns == p.1 && g.rate.unwrap_or(0.0) as i64 == p.2
                });
                match g {
                    None => "–".into(),
                    Some(g) if g.ok == 0 => short(&g.status),
                    Some(g) => {
                        let mut c =
                            format!("{} · p99 {}", n(g.rps.unwrap_or(0.0)), g.p99_us.map(lat).unwrap_or_default());
                        if g.starved.unwrap_or(0.0) > 0.0 {
                            c.push_str(&format!(" · {} starved", n(g.starved.unwrap_or(0.0))));
                        }
                        if g.client_bound {
                            c.push_str(" · client-bound");
                        }
                        c
                    }
                }
            })
            .collect();
        let _ = writeln!(out, "| {s} | {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_knee_is_the_last_rate_before_the_first_failing_one() {
        let g = |rate: f64, p99: f64| Group { rate: Some(rate), p99_us: Some(p99), ..Group::default() };
        // Passes at 1,000 and 3,000/s, fails at 10,000/s, passes again at 30,000/s: the
        // knee stays at 3,000/s (a later pass does not move it).
        let pts = [g(1_000.0, 900.0), g(3_000.0, 2_000.0), g(10_000.0, 13_000.0), g(30_000.0, 3_000.0)];
        let refs: Vec<&Group> = pts.iter().collect();
        let under = |x: &&Group| x.p99_us.is_some_and(|p| p <= KNEE_P99_US);
        let (knee, past) = knee_of(&refs, under);
        assert_eq!(knee.and_then(|k| k.rate), Some(3_000.0));
        assert_eq!(past.and_then(|p| p.rate), Some(10_000.0));
        let (all, none_past) = knee_of(&refs[..2], under);
        assert_eq!(all.and_then(|k| k.rate), Some(3_000.0));
        assert!(none_past.is_none());
        let pts = [g(1_000.0, 14_000.0)];
        let refs: Vec<&Group> = pts.iter().collect();
        let (none, first) = knee_of(&refs[..1], under);
        assert!(none.is_none());
        assert_eq!(first.and_then(|p| p.rate), Some(1_000.0));
    }
}
