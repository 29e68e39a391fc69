//! Turning a merged [`Recorder`] into the [`Report`]: distributions, rates,
//! error summary and the client self-check. Pure: no I/O, no clock.

use crate::clock::secs;
use crate::config::Config;
use crate::json_report::*;
use crate::recorder::{ErrorKind, Recorder};

use crate::hist::{distribution, us};

/// A thread busier than this (CPU time over wall time) is called the bottleneck.
pub const BUSY_THRESHOLD: f64 = 0.9;
/// Open loop: the client is behind its schedule when the p99 of its own
/// dispatch lag exceeds this, in microseconds.
pub const DISPATCH_LAG_LIMIT_US: f64 = 10_000.0;

/// Where the run's clocks stood.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Times {
    pub epoch: u64,
    pub started_unix_ms: u64,
    /// Unix time minus monotonic time, ns: turns the run's monotonic instants into wall-clock ones.
    pub unix_offset_ns: i128,
}

/// Build the report of a finished run.
pub fn build(config: &Config, env: Environment, rec: &Recorder, times: Times) -> Report {
    let c = &rec.counts;
    let window = secs(c.window_ns);
    let per_sec = |n: u64| if window > 0.0 { n as f64 / window } else { 0.0 };
    let errors = errors(rec);
    let latency = Latencies {
        corrected: distribution(&rec.corrected),
        uncorrected: distribution(&rec.uncorrected),
        connect: distribution(&rec.connect),
        first_byte: distribution(&rec.first_byte),
        reconnect: distribution(&rec.reconnect),
    };
    let open_loop = config.settings.rate.map(|target_rate| {
        let dispatch_lag = distribution(&rec.dispatch_lag);
        OpenLoop {
            target_rate,
            achieved_rate: per_sec(c.requests),
            sent_rate: per_sec(c.sent),
            scheduled: c.sent + c.unsent,
            unsent: c.unsent,
            schedule_lag: distribution(&rec.schedule_lag),
            client_behind: dispatch_lag.p99_us > DISPATCH_LAG_LIMIT_US,
            dispatch_lag,
        }
    });
    let threads = c.threads.max(1);
    // Spinning with nothing to do is CPU spent, not work: the utilisations leave it out.
    let working = secs((c.cpu_user_ns + c.cpu_sys_ns).saturating_sub(c.idle_spin_ns));
    let capacity = f64::from(threads) * window;
    let client = ClientUsage {
        threads,
        cpu_user_s: secs(c.cpu_user_ns),
        cpu_sys_s: secs(c.cpu_sys_ns),
        utilisation: if capacity > 0.0 { working / capacity } else { 0.0 },
        max_thread_utilisation: c.max_thread_util,
        idle_spin_s: secs(c.idle_spin_ns),
        steal_s: secs(c.steal_ns),
        run_queue_wait_s: secs(c.cpu_wait_ns),
    };
    let reasons = self_check(&client, open_loop.as_ref(), capacity);
    let timeline = rec
        .seconds
        .iter()
        .enumerate()
        .map(|(s, sec)| TimelineSecond {
            second: s as u32,
            answers: sec.answers,
            errors: sec.errors,
            p50_us: if sec.latency.is_empty() { 0.0 } else { us(sec.latency.value_at_quantile(0.5)) },
            p99_us: if sec.latency.is_empty() { 0.0 } else { us(sec.latency.value_at_quantile(0.99)) },
            open_conns: sec.open_conns,
        })
        .collect();
    Report {
        schema: SCHEMA,
        tool: format!("c10k load {}", env!("CARGO_PKG_VERSION")),
        started_unix_ms: times.started_unix_ms,
        config: config.echo(),
        env,
        totals: Totals {
            requests: c.requests,
            answers_in_window: c.answers_in_window,
            requests_sent: c.sent,
            duration_s: window,
            requests_per_sec: per_sec(c.answers_in_window),
            bytes_sent: c.bytes_sent,
            bytes_received: c.bytes_received,
            received_bytes_per_sec: per_sec(c.bytes_received),
            status_classes: (config.settings.proto == proto::Proto::Http).then(|| {
                let s = &c.status_classes;
                StatusClasses {
                    success: s[2],
                    redirect: s[3],
                    client_error: s[4],
                    server_error: s[5],
                    other: s[0] + s[1] + s[6],
                }
            }),
        },
        passed: errors.rate <= config.settings.max_error_rate,
        errors,
        latency,
        connections: Connections {
            target: config.driven().count,
            established: c.established,
            all_established_s: c
                .all_established_ns
                .filter(|_| c.established == c.slots)
                .map(|t| secs(t.saturating_sub(c.first_connect_ns.unwrap_or(times.epoch)))),
            peak_open: c.peak_open,
            open_at_end: c.open_at_end,
            reconnects: c.reconnects,
            server_closes: c.server_closes,
            starved: c.starved,
            closed_by_server: rec.server_closed.report(),
        },
        open_loop,
        timeline,
        client,
        client_bound: !reasons.is_empty(),
        client_bound_reasons: reasons,
        fairness: crate::fairness::of(&rec.answers_per_conn, &rec.longest_gap, c.fair_sum, c.fair_sum_sq),
        histograms: Histograms {
            encoding: HISTOGRAM_ENCODING.into(),
            unit: "ns".into(),
            corrected: crate::hist::encode(&rec.corrected),
            uncorrected: crate::hist::encode(&rec.uncorrected),
            connect: crate::hist::encode(&rec.connect),
            first_byte: crate::hist::encode(&rec.first_byte),
            reconnect: crate::hist::encode(&rec.reconnect),
        },
    }
}

fn errors(rec: &Recorder) -> Errors {
    let n = |k| rec.error_count(k);
    let total = rec.total_errors();
    let answered = rec.counts.requests;
    let details = ErrorKind::ALL
        .iter()
        .filter(|&&k| n(k) > 0)
        .map(|&k| {
            let t = rec.error_tally(k);
            ErrorDetail {
                kind: k.name().into(),
                count: t.count,
                conns: t.conns,
                message: t.message.clone().unwrap_or_default(),
            }
        })
        .collect();
    Errors {
        total,
        // A bad status is an answer too: count it once in the denominator.
        rate: if total == 0 { 0.0 } else { total as f64 / (answered + total - n(ErrorKind::BadStatus)) as f64 },
        connect_refused: n(ErrorKind::ConnectRefused),
        connect_timeout: n(ErrorKind::ConnectTimeout),
        connect_other: n(ErrorKind::ConnectOther),
        reset: n(ErrorKind::Reset),
        timeout: n(ErrorKind::Timeout),
        bad_answer: n(ErrorKind::BadAnswer),
        bad_status: n(ErrorKind::BadStatus),
        closed_early: n(ErrorKind::ClosedEarly),
        other: n(ErrorKind::Other),
        starved_conns: rec.counts.starved,
        details,
    }
}

/// Why the figures may be the client's limit rather than the server's.
fn self_check(client: &ClientUsage, open_loop: Option<&OpenLoop>, capacity: f64) -> Vec<String> {
    let mut reasons = Vec::new();
    if client.max_thread_utilisation > BUSY_THRESHOLD {
        reasons.push(format!(
            "a load generator thread was {:.0}% busy (threshold {:.0}%): the client may be the bottleneck",
            client.max_thread_utilisation * 100.0,
            BUSY_THRESHOLD * 100.0
        ));
    }
    let cpu = client.cpu_user_s + client.cpu_sys_s - client.idle_spin_s;
    if capacity > 0.0 && (cpu + client.run_queue_wait_s) / capacity > BUSY_THRESHOLD && client.run_queue_wait_s > 0.0 {
        reasons.push(format!(
            "load generator threads were busy or waiting for a CPU {:.0}% of the time ({:.2} s waiting): \
             the machine is oversubscribed",
            (cpu + client.run_queue_wait_s) / capacity * 100.0,
            client.run_queue_wait_s
        ));
    }
    if let Some(ol) = open_loop.filter(|ol| ol.client_behind) {
        reasons.push(format!(
            "open loop fell behind its schedule on free connections (dispatch lag p99 {:.1} ms{})",
            ol.dispatch_lag.p99_us / 1_000.0,
            if client.steal_s > 0.0 {
                format!("; the hypervisor stole {:.0} ms of the client's CPUs in the window", client.steal_s * 1e3)
            } else {
                String::new()
            }
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_of_known_values() {
        let mut h = crate::hist::histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1_000).unwrap();
        }
        let d = distribution(&h);
        assert_eq!(d.count, 10_000);
        assert!((d.p50_us - 5_000.0).abs() < 5.0, "{}", d.p50_us);
        assert!((d.p99_us - 9_900.0).abs() < 10.0, "{}", d.p99_us);
        assert!((d.max_us - 10_000.0).abs() < 10.0);
        let last = d.percentiles.last().unwrap();
        assert_eq!(last.percentile, 100.0);
        assert_eq!(last.count, 10_000);
        assert!(d.percentiles.windows(2).all(|w| w[0].percentile <= w[1].percentile));
    }
}
