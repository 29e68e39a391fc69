//! "Beyond the documents": what the documents describe but make no claim about,
//! measured by the beyond profile (`make bench-beyond`, its own results folder)
//! and joined to the report with `--beyond DIR`: the chat room (document 002 §5)
//! and heartbeat timeouts (document 001, 应用层探活).
//!
//! No verdicts here: the section states what each model did, with the same
//! intervals as the rest of the report, and names the models that broke the
//! heartbeat's contract (every silent connection closed within the timeout plus a
//! tick, no live one closed).

use std::fmt::Write as _;

use crate::aggregate::{Figure, Group, Results};
use crate::matrix::{CHAT_ROOMS, HEARTBEAT_CONNS, HEARTBEAT_IDLE_TIMEOUT_S, HEARTBEAT_SILENT};
use crate::show::{lat, n};
use crate::stats::Interval;
use crate::verdicts::thresholds::HEARTBEAT_CLOSE_SLACK_S;

/// The section, read from the beyond folder (`link`: its path relative to the report).
pub fn section(b: &Results, link: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Beyond the documents\n");
    let _ = writeln!(
        s,
        "From [`{link}`]({link}) (the beyond profile, `make bench-beyond`): behaviours the documents describe \
         without a claim to check. Server on one core, load generator on the other, as in the main run.\n"
    );
    s.push_str(&chat(b));
    s.push_str(&heartbeat(b));
    s
}

fn show(i: Option<Interval>, f: impl Fn(f64) -> String) -> String {
    i.map(|i| i.show(f)).unwrap_or_else(|| "not measured".into())
}

/// The largest of a figure of the load generator's raw report over a group's repetitions.
fn raw_max(b: &Results, g: &Group, pointer: &str) -> Option<u64> {
    b.records_of(&g.group).iter().filter_map(|r| r.load_raw.as_ref()?.pointer(pointer)?.as_u64()).max()
}

fn chat(b: &Results) -> String {
    let mut s = String::new();
    let groups = b.of("chat");
    let _ = writeln!(s, "### The chat room (document 002 §5)\n");
    if groups.is_empty() {
        let _ = writeln!(s, "Not measured: the beyond folder has no chat cells.\n");
        return s;
    }
    let _ = writeln!(
        s,
        "N members join (each waits for its acknowledgment; the N(N-1)/2 join notices are delivered before the \
         window), 10 of them broadcast at a fixed total rate, and every member must receive every message, its own \
         included. A *delivery* is one message reaching one member: deliveries per second are the fan-out, latency \
         runs from a message's scheduled send to its receipt (coordinated omission corrected), server CPU is per \
         delivery. Rooms: {}. Models that cannot share a room refuse `--proto chat` at start (see the README); the \
         pool runs with a worker per member of the larger room.\n",
        CHAT_ROOMS
            .iter()
            .map(|(m, r)| format!("{} members at {} messages/s", n(*m as f64), n(*r)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "| model | members | deliveries/s | delivery p99 | server CPU per delivery | missing | joins took | members lost |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let mut rows: Vec<&Group> = groups;
    rows.sort_by(|a, c| a.conns.cmp(&c.conns).then(a.server.cmp(&c.server)));
    for g in rows {
        if g.ok == 0 {
            let _ = writeln!(s, "| {} | {} | failed: {} | | | | | |", g.server, n(g.conns as f64), g.status);
            continue;
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            g.server,
            n(g.conns as f64),
            show(b.interval(g, Figure::Rps), n),
            show(b.interval(g, Figure::P99), lat),
            show(b.interval(g, Figure::CpuPerReq), |x| format!("{x:.2} us")),
            g.errors.map(n).unwrap_or_else(|| "not measured".into()),
            g.all_established_s.map(|t| format!("{t:.1} s")).unwrap_or_else(|| "not measured".into()),
            raw_max(b, g, "/deliveries/members_lost").map(|d| n(d as f64)).unwrap_or_else(|| "not measured".into()),
        );
    }
    let _ = writeln!(
        s,
        "\nA client that falls behind its send schedule marks its cell client-bound; missing deliveries count \
         messages some member never got in the window; members lost are members the server dropped (too slow to \
         read) or closed during the window (the worst repetition), not the leave notices of the client's own \
         teardown.\n"
    );
    s
}

/// The heartbeat's figures of one group, from the load generator's raw reports.
struct Closes {
    silent: u64,
    live: u64,
    /// Last request to the server's close, microseconds: the median repetition's p50 and max.
    p50_us: Option<f64>,
    max_us: Option<f64>,
}

fn closes(b: &Results, g: &Group) -> Option<Closes> {
    let mut best: Option<Closes> = None;
    for r in b.records_of(&g.group) {
        let c = r.load_raw.as_ref()?.pointer("/connections/closed_by_server")?;
        let get = |p: &str| c.pointer(p).and_then(|v| v.as_f64());
        let this = Closes {
            silent: get("/silent").unwrap_or(0.0) as u64,
            live: get("/live").unwrap_or(0.0) as u64,
            p50_us: get("/after_last_request/p50_us"),
            max_us: get("/after_last_request/max_us"),
        };
        // The worst repetition: fewest silent closed, then most live closed, then the latest close.
        let worse = |a: &Closes, c: &Closes| {
            (a.silent, std::cmp::Reverse(a.live)) < (c.silent, std::cmp::Reverse(c.live))
                || a.max_us.unwrap_or(0.0) > c.max_us.unwrap_or(0.0)
        };
        if best.as_ref().is_none_or(|b| worse(&this, b)) {
            best = Some(this);
        }
    }
    best
}

fn heartbeat(b: &Results) -> String {
    let mut s = String::new();
    let groups = b.of("heartbeat");
    let _ = writeln!(s, "### Heartbeat and idle timeouts (document 001, 应用层探活)\n");
    if groups.is_empty() {
        let _ = writeln!(s, "Not measured: the beyond folder has no heartbeat cells.\n");
        return s;
    }
    let bound_s = HEARTBEAT_IDLE_TIMEOUT_S * 1.1 + HEARTBEAT_CLOSE_SLACK_S;
    let _ = writeln!(
        s,
        "{} connections each ping once a second (open loop); {} of them go silent after their first request. The \
         server runs with `--idle-timeout {}s`: it must close every silent connection within the timeout plus one \
         tick of its timer (a tenth of the timeout) and never a live one; {} s of scheduling slack on top, as the \
         timeout tests allow, makes the bound {bound_s:.1} s from a connection's last request. Each column shows the \
         worst repetition. Timer upkeep is the server CPU per ping with the timeout over the same model without it \
         (`heartbeat-off`), pair by pair.\n",
        n(HEARTBEAT_CONNS as f64),
        n(HEARTBEAT_SILENT as f64),
        HEARTBEAT_IDLE_TIMEOUT_S,
        HEARTBEAT_CLOSE_SLACK_S
    );
    let _ = writeln!(
        s,
        "| model | silent closed | live closed | last request to close, p50 / max | server CPU per ping | with the timeout over without |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let mut broke = Vec::new();
    for g in &groups {
        let off = b.find("heartbeat-off", &g.server, g.conns);
        let ratio = off.and_then(|o| b.pair_ratio(g, o, Figure::CpuPerReq));
        let Some(c) = closes(b, g) else {
            let _ = writeln!(s, "| {} | not measured ({}) | | | | |", g.server, g.status);
            continue;
        };
        let late = c.max_us.is_some_and(|m| m > bound_s * 1e6);
        if c.silent < HEARTBEAT_SILENT || c.live > 0 || late {
            broke.push(format!(
                "{}: {} of {} silent connections closed, {} live ones closed, the latest close {} after the last \
                 request",
                g.server,
                n(c.silent as f64),
                n(HEARTBEAT_SILENT as f64),
                n(c.live as f64),
                c.max_us.map(lat).unwrap_or_else(|| "not measured".into())
            ));
        }
        let _ = writeln!(
            s,
            "| {} | {} of {} | {} | {} / {} | {} | {} |",
            g.server,
            n(c.silent as f64),
            n(HEARTBEAT_SILENT as f64),
            n(c.live as f64),
            c.p50_us.map(lat).unwrap_or_else(|| "–".into()),
            c.max_us.map(lat).unwrap_or_else(|| "–".into()),
            show(b.interval(g, Figure::CpuPerReq), |x| format!("{x:.2} us")),
            ratio.map(|r| format!("{}x", r.show(|x| format!("{x:.2}")))).unwrap_or_else(|| "not measured".into()),
        );
    }
    if broke.is_empty() {
        let _ = writeln!(
            s,
            "\nEvery model closed every silent connection within the bound and no live one, in every repetition."
        );
    } else {
        let _ = writeln!(s, "\nWhere the contract broke:\n");
        for line in broke {
            let _ = writeln!(s, "- {line}");
        }
    }
    let _ = writeln!(
        s,
        "\nThe event loops keep one hashed timing wheel each (a request only stamps its connection's clock), the \
         thread models socket timeouts, tokio a sleep per task: a ratio whose interval holds 1 says the upkeep is \
         within this machine's noise.\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_folder_says_not_measured() {
        let s = section(&Results::new(None, Vec::new()), "results/beyond-x");
        assert!(s.contains("## Beyond the documents"));
        assert!(s.contains("Not measured: the beyond folder has no chat cells."));
        assert!(s.contains("Not measured: the beyond folder has no heartbeat cells."));
    }
}
