//! The report of a chat run: what `--json FILE` writes (`ChatReport`, its own
//! schema, with the load report's conventions: units in field names, latency
//! distributions in microseconds from exact HdrHistograms, the raw histograms
//! hex-encoded), and the summary text.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{ChatConfig, Totals};
use crate::clock::secs;
use crate::hist::distribution;
use crate::json_report::{Distribution, Environment};
use crate::summary::latency;

/// Version of this schema.
pub const SCHEMA: u32 = 1;

/// One `c10k load --proto chat` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatReport {
    pub schema: u32,
    /// `c10k load <version>`.
    pub tool: String,
    /// Always `chat`: tells this report from a request-answer one.
    pub kind: String,
    pub started_unix_ms: u64,
    pub config: ChatRunConfig,
    pub env: Environment,
    pub setup: Setup,
    pub messages: Messages,
    pub deliveries: Deliveries,
    pub latency: DeliveryLatency,
    pub errors: ChatErrors,
    pub client: ChatClient,
    /// The error rate was within `config.max_error_rate` and set-up succeeded.
    pub passed: bool,
    pub histograms: ChatHistograms,
}

/// The configuration, as validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRunConfig {
    pub addr: String,
    /// Members in the room (`--conns`).
    pub members: u64,
    /// Members that send (`--senders`).
    pub senders: u64,
    /// Messages per second over all senders (`--rate`).
    pub rate: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub threads: u32,
    /// Bytes of each message's content (`--msg-size`).
    pub msg_size: u64,
    pub timeout_s: f64,
    pub max_error_rate: f64,
}

/// Joining the room, before the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    /// From the first connect until every member had joined and every join
    /// notice had arrived.
    pub seconds: f64,
    /// Join notices received, and how many a complete set-up produces (N(N-1)/2).
    pub notices: u64,
    pub notices_expected: u64,
    /// Connect call to join acknowledgment, per member.
    pub join: Distribution,
    /// Why set-up did not complete (then nothing was measured).
    pub failure: Option<String>,
}

/// Messages sent in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// Messages scheduled in the window and sent.
    pub sent: u64,
    /// `sent / duration_s`.
    pub per_sec: f64,
    /// Actual send minus scheduled send, every message (the client's lateness).
    pub dispatch_lag: Distribution,
    /// The dispatch lag's p99 passed 10 ms (`outcome::DISPATCH_LAG_LIMIT_US`):
    /// the client did not keep to its schedule, and latencies from the
    /// scheduled send include its lateness.
    pub client_behind: bool,
}

/// Deliveries of the window's messages: every member must get every one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deliveries {
    /// `messages.sent x members`.
    pub expected: u64,
    pub received: u64,
    /// Expected but not received by the end of the drain.
    pub missing: u64,
    /// Received more than expected.
    pub duplicates: u64,
    /// `received / duration_s`: the fan-out rate.
    pub per_sec: f64,
    /// Per member, deliveries received: least and most.
    pub member_min: u64,
    pub member_max: u64,
    /// Members that received fewer than `messages.sent`.
    pub members_short: u64,
    /// Members the room announced as gone during the load (dropped or closed).
    pub members_lost: u64,
    /// How long after the window the last deliveries were waited for, seconds.
    pub drain_s: f64,
}

/// Delivery latency of every delivery of the window's messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryLatency {
    /// From the message's scheduled send to the member's receipt.
    pub corrected: Distribution,
    /// From the message's actual send to the member's receipt.
    pub uncorrected: Distribution,
}

/// Failures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatErrors {
    /// `(missing + duplicates + the counts below) / expected` (1.0 when set-up failed).
    pub rate: f64,
    pub connect: u64,
    /// Members whose connection the server ended.
    pub closed_early: u64,
    /// `error` lines the server sent.
    pub error_lines: u64,
    /// Lines that were not chat lines, or broadcasts of this run that did not parse.
    pub bad_lines: u64,
    /// The first failure seen.
    pub first: Option<String>,
}

/// The load generator's own CPU over the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatClient {
    pub threads: u32,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// `(user + sys) / (threads x window)`.
    pub utilisation: f64,
    /// Runnable but waiting for a CPU, seconds summed over threads
    /// (`/proc/thread-self/schedstat`): high on an oversubscribed machine.
    pub run_queue_wait_s: f64,
}

/// Raw histograms (HdrHistogram V2, hex, ns), as in the load report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatHistograms {
    pub encoding: String,
    pub unit: String,
    pub corrected: String,
    pub uncorrected: String,
}

/// The report of a finished run.
pub fn build(config: &ChatConfig, env: Environment, t: &Totals, started_unix_ms: u64) -> ChatReport {
    let window = secs(t.window_ns);
    let per_sec = |n: u64| if window > 0.0 { n as f64 / window } else { 0.0 };
    let expected = t.sent * config.members;
    let missing = expected.saturating_sub(t.delivered);
    let duplicates = t.delivered.saturating_sub(expected);
    let failures = missing + duplicates + t.connect_errors + t.closed_early + t.error_lines + t.bad_lines;
    let rate = if t.setup_failure.is_some() {
        1.0
    } else if expected == 0 {
        if failures > 0 {
            1.0
        } else {
            0.0
        }
    } else {
        failures as f64 / expected as f64
    };
    let cpu = secs(t.cpu_user_ns + t.cpu_sys_ns);
    ChatReport {
        schema: SCHEMA,
        tool: format!("c10k load {}", env!("CARGO_PKG_VERSION")),
        kind: "chat".into(),
        started_unix_ms,
        config: ChatRunConfig {
            addr: config.addr.to_string(),
            members: config.members,
            senders: config.senders,
            rate: config.rate,
            duration_s: config.duration.as_secs_f64(),
            warmup_s: config.warmup.as_secs_f64(),
            threads: config.threads,
            msg_size: config.msg_size as u64,
            timeout_s: config.timeout.as_secs_f64(),
            max_error_rate: config.max_error_rate,
        },
        env,
        setup: Setup {
            seconds: secs(t.setup_ns),
            notices: t.notices,
            notices_expected: config.members * config.members.saturating_sub(1) / 2,
            join: distribution(&t.join),
            failure: t.setup_failure.clone(),
        },
        messages: Messages {
            sent: t.sent,
            per_sec: per_sec(t.sent),
            client_behind: distribution(&t.dispatch_lag).p99_us > crate::outcome::DISPATCH_LAG_LIMIT_US,
            dispatch_lag: distribution(&t.dispatch_lag),
        },
        deliveries: Deliveries {
            expected,
            received: t.delivered,
            missing,
            duplicates,
            per_sec: per_sec(t.delivered),
            member_min: t.member_min,
            member_max: t.member_max,
            members_short: t.members_short,
            members_lost: t.members_lost,
            drain_s: secs(t.drain_ns),
        },
        latency: DeliveryLatency { corrected: distribution(&t.corrected), uncorrected: distribution(&t.uncorrected) },
        errors: ChatErrors {
            rate,
            connect: t.connect_errors,
            closed_early: t.closed_early,
            error_lines: t.error_lines,
            bad_lines: t.bad_lines,
            first: t.first_error.clone(),
        },
        client: ChatClient {
            threads: t.threads,
            cpu_user_s: secs(t.cpu_user_ns),
            cpu_sys_s: secs(t.cpu_sys_ns),
            utilisation: if window > 0.0 { cpu / (f64::from(t.threads.max(1)) * window) } else { 0.0 },
            run_queue_wait_s: secs(t.cpu_wait_ns),
        },
        passed: t.setup_failure.is_none() && rate <= config.max_error_rate,
        histograms: ChatHistograms {
            encoding: crate::json_report::HISTOGRAM_ENCODING.into(),
            unit: "ns".into(),
            corrected: crate::hist::encode(&t.corrected),
            uncorrected: crate::hist::encode(&t.uncorrected),
        },
    }
}

/// The summary text.
pub fn render(r: &ChatReport) -> String {
    let mut out = String::new();
    let c = &r.config;
    let _ = writeln!(
        out,
        "Running {}s chat test @ {}: {} members, {} senders at {} msg/s in total, {} B messages",
        c.duration_s, c.addr, c.members, c.senders, c.rate, c.msg_size
    );
    let s = &r.setup;
    match &s.failure {
        Some(why) => {
            let _ = writeln!(out, "  Set-up FAILED after {:.2}s: {why}", s.seconds);
        }
        None => {
            let _ = writeln!(
                out,
                "  Set-up: {} members joined and {} join notices delivered in {:.2}s; join p50 {}, p99 {}",
                c.members,
                s.notices,
                s.seconds,
                latency(s.join.p50_us),
                latency(s.join.p99_us)
            );
        }
    }
    let l = &r.latency.corrected;
    let _ = writeln!(out, "  Delivery latency (from scheduled send)   (from actual send)");
    for (label, a, b) in [
        ("50.000%", l.p50_us, r.latency.uncorrected.p50_us),
        ("90.000%", l.p90_us, r.latency.uncorrected.p90_us),
        ("99.000%", l.p99_us, r.latency.uncorrected.p99_us),
        ("99.900%", l.p999_us, r.latency.uncorrected.p999_us),
        ("100.000%", l.max_us, r.latency.uncorrected.max_us),
    ] {
        let _ = writeln!(out, "    {label:>8}  {:>12}  {:>12}", latency(a), latency(b));
    }
    let d = &r.deliveries;
    let _ = writeln!(
        out,
        "  {} messages sent ({:.1}/s), {} of {} deliveries received, {} missing{}",
        r.messages.sent,
        r.messages.per_sec,
        d.received,
        d.expected,
        d.missing,
        if d.duplicates > 0 { format!(", {} duplicates", d.duplicates) } else { String::new() }
    );
    let _ = writeln!(
        out,
        "  Per member: {} to {} deliveries; {} members short, {} lost; dispatch lag p99 {}",
        d.member_min,
        d.member_max,
        d.members_short,
        d.members_lost,
        latency(r.messages.dispatch_lag.p99_us)
    );
    let e = &r.errors;
    if let Some(first) = &e.first {
        let _ = writeln!(
            out,
            "  Errors: rate {:.4}%; connect {}, closed by the server {}, error lines {}, bad lines {}; first: {first}",
            e.rate * 100.0,
            e.connect,
            e.closed_early,
            e.error_lines,
            e.bad_lines
        );
    } else if d.missing > 0 {
        let _ = writeln!(out, "  Errors: rate {:.4}% (missing deliveries)", e.rate * 100.0);
    } else {
        let _ = writeln!(out, "  Errors: none");
    }
    let _ = writeln!(out, "Deliveries/sec: {:>10.2}", d.per_sec);
    let u = &r.client;
    let _ = writeln!(
        out,
        "Client: {} thread(s), {:.0}% of their CPU capacity (user {:.2}s, sys {:.2}s, {:.2}s waiting for a CPU)",
        u.threads,
        u.utilisation * 100.0,
        u.cpu_user_s,
        u.cpu_sys_s,
        u.run_queue_wait_s
    );
    if r.messages.client_behind {
        let _ = writeln!(
            out,
            "CLIENT-BEHIND: sends were late by {} at p99: latency from the scheduled send includes the client's lateness",
            latency(r.messages.dispatch_lag.p99_us)
        );
    }
    out
}
