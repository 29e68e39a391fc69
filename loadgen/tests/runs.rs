//! The load generator against in-test servers: exact counts, coordinated
//! omission, every error kind, each over both I/O back ends (`mio::*` and
//! `uring::*`). Each run is short and bounded.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use proto::Proto;
use support::{Mode, TestServer};

/// `support::load_on`; an engine the kernel cannot run fails the test with the reason.
fn load(engine: &str, args: &[&str]) -> loadgen::Outcome {
    support::load_on(engine, args).unwrap_or_else(|why| panic!("{engine}: {why}"))
}

fn closed_loop_completes_exactly_n_times_k(engine: &str) {
    let server = TestServer::start(Mode::Serve(Proto::Http));
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "50", "--requests", "1000", "--threads", "2"]);
    let r = &out.report;
    assert_eq!(r.totals.requests, 1000, "{:?}", r.totals);
    assert_eq!(r.totals.requests_sent, 1000);
    assert_eq!(out.recorder.corrected.len(), 1000);
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    assert_eq!(r.connections.established, 50);
    assert_eq!(r.errors.starved_conns, 0);
    assert!(r.passed);
    assert!(r.connections.all_established_s.is_some());
    assert_eq!(r.config.settings.engine.to_string(), engine, "the report says which engine ran");
    assert_eq!(loadgen::summary::render(r).contains(", engine uring)"), engine == "uring");
}

fn idle_connections_are_held_but_never_send(engine: &str) {
    let server = TestServer::start(Mode::Serve(Proto::Http));
    let addr = server.addr.to_string();
    let out =
        load(engine, &["--addr", &addr, "--conns", "4", "--idle-conns", "40", "--requests", "400", "--threads", "2"]);
    let r = &out.report;
    assert_eq!(r.config.settings.conns, 4);
    assert_eq!(r.config.settings.idle_conns, 40);
    assert_eq!(r.totals.requests, 400, "only the active connections' budget");
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    assert_eq!(r.connections.target, 44);
    assert_eq!(r.connections.established, 44, "idle connections are opened too");
    assert_eq!(r.errors.starved_conns, 0, "an idle connection is not starved");
    assert_eq!(server.accepted.load(std::sync::atomic::Ordering::Relaxed), 44);
}

fn pipelined_echo_is_exact_and_checked(engine: &str) {
    let server = TestServer::start(Mode::Serve(Proto::Echo));
    let addr = server.addr.to_string();
    let out = load(
        engine,
        &[
            "--addr",
            &addr,
            "--proto",
            "echo",
            "--conns",
            "10",
            "--requests",
            "2000",
            "--pipeline",
            "8",
            "--msg-size",
            "300",
            "--threads",
            "1",
        ],
    );
    let r = &out.report;
    assert_eq!(r.totals.requests, 2000);
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    assert_eq!(r.totals.bytes_received, 2000 * 300);
}

fn echo_longer_than_the_socket_buffers_is_exact(engine: &str) {
    // 1 MiB messages, 8 in flight per connection: the server echoes each while
    // the client is still writing it.
    let server = TestServer::start(Mode::Serve(Proto::Echo));
    let addr = server.addr.to_string();
    let args = ["--proto", "echo", "--msg-size", "1048576", "--pipeline", "8", "--conns", "8", "--requests", "256"];
    let out = load(engine, &[&["--addr", &addr, "--threads", "1"][..], &args].concat());
    let r = &out.report;
    assert_eq!((r.totals.requests, r.errors.total), (256, 0), "{:?}", r.errors);
    assert_eq!(r.totals.bytes_received, 256 << 20);
}

fn reqs_per_conn_reconnects_and_counts(engine: &str) {
    let server = TestServer::start(Mode::Serve(Proto::Http));
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "10", "--requests", "200", "--reqs-per-conn", "5", "-t", "1"]);
    let r = &out.report;
    assert_eq!(r.totals.requests, 200);
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    // 20 requests per slot, 5 per socket: 4 sockets, 3 reconnects each.
    assert_eq!(r.connections.reconnects, 30);
    assert_eq!(r.latency.reconnect.count, 30);
    assert_eq!(server.accepted.load(std::sync::atomic::Ordering::Relaxed), 40);
}

fn open_loop_corrects_for_a_stall_and_closed_loop_max_shows_it(engine: &str) {
    let stall = Mode::Stall { proto: Proto::Http, at: Duration::from_millis(1200), len: Duration::from_millis(500) };
    let server = TestServer::start(stall);
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "10", "--rate", "1000", "--duration", "3s", "-t", "1"]);
    let r = &out.report;
    let ol = r.open_loop.as_ref().expect("open loop figures");
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    assert!(r.totals.requests > 2_700, "{}", r.totals.requests);
    assert!((ol.achieved_rate - 1000.0).abs() < 100.0, "{}", ol.achieved_rate);
    let corrected_p99_ms = r.latency.corrected.p99_us / 1e3;
    let uncorrected_p99_ms = r.latency.uncorrected.p99_us / 1e3;
    assert!(corrected_p99_ms > 300.0, "corrected p99 {corrected_p99_ms} ms should show the 500 ms stall");
    assert!(uncorrected_p99_ms < 50.0, "uncorrected p99 {uncorrected_p99_ms} ms should not");
    assert!(r.latency.uncorrected.max_us / 1e3 > 300.0, "the stalled requests themselves are seen");
    assert!(!ol.client_behind, "dispatch lag p99 {} us", ol.dispatch_lag.p99_us);
    assert!(ol.scheduled.abs_diff(3000) <= 10 && ol.unsent < 20, "{} scheduled, {} unsent", ol.scheduled, ol.unsent);

    let server = TestServer::start(stall);
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "10", "--duration", "2s", "-t", "1"]);
    let r = &out.report;
    assert!(r.latency.corrected.max_us / 1e3 > 300.0, "closed-loop max {} us", r.latency.corrected.max_us);
    assert_eq!(r.latency.corrected, r.latency.uncorrected, "closed loop: scheduled = sent");
}

fn busy_spin_keeps_the_counts_and_reports_its_idle_cpu_apart(engine: &str) {
    let server = TestServer::start(Mode::Serve(Proto::Http));
    let addr = server.addr.to_string();
    let out = load(
        engine,
        &["--addr", &addr, "--conns", "4", "--rate", "400", "--requests", "400", "--spin", "busy", "-t", "1"],
    );
    let r = &out.report;
    assert_eq!((r.totals.requests, r.errors.total), (400, 0), "{:?}", r.errors);
    assert_eq!(r.config.spin.as_deref(), Some("busy"));
    // About a second at 400 req/s: the thread polled all of it, nearly all for nothing.
    let cpu = r.client.cpu_user_s + r.client.cpu_sys_s;
    assert!(r.client.idle_spin_s > 0.3, "idle spin {} s of {cpu} s", r.client.idle_spin_s);
    assert!(r.client.idle_spin_s <= cpu + 0.01, "idle spin {} s is CPU spent, at most {cpu} s", r.client.idle_spin_s);
    assert!(r.client.max_thread_utilisation < 0.9, "idle spinning is not work: {}", r.client.max_thread_utilisation);
    assert!(!r.client_bound_reasons.iter().any(|s| s.contains("busy")), "{:?}", r.client_bound_reasons);
    let ol = r.open_loop.as_ref().expect("open loop");
    assert_eq!(ol.schedule_lag.count, 400, "every measured send has its lateness");
    // Sends whose connection was still waiting for the previous answer are not the client's lateness.
    assert!(ol.dispatch_lag.count >= 360, "most sends found their connection free: {}", ol.dispatch_lag.count);
}

fn detail<'a>(r: &'a loadgen::json_report::Report, kind: &str) -> &'a loadgen::json_report::ErrorDetail {
    r.errors.details.iter().find(|d| d.kind == kind).unwrap_or_else(|| panic!("no {kind} in {:?}", r.errors))
}

fn refused_port_is_connect_refused(engine: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = load(engine, &["--addr", &addr, "--conns", "20", "--duration", "300ms", "-t", "1"]);
    let r = &out.report;
    assert!(r.errors.connect_refused >= 20, "{:?}", r.errors);
    assert_eq!(r.errors.total, r.errors.connect_refused);
    let d = detail(r, "connect_refused");
    assert_eq!(d.conns, 20);
    assert!(d.message.contains(&addr) && d.message.contains("refused"), "{}", d.message);
    assert_eq!(r.errors.starved_conns, 20);
    assert!(!r.passed);
    assert_eq!(r.errors.rate, 1.0);
}

fn resetting_server_is_reset(engine: &str) {
    let server = TestServer::start(Mode::Reset);
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "5", "--duration", "300ms", "-t", "1"]);
    let r = &out.report;
    assert!(r.errors.reset > 0, "{:?}", r.errors);
    assert!(detail(r, "reset").message.contains("reset"), "{:?}", r.errors);
    assert!(!r.passed);
}

fn garbage_answer_is_bad_answer(engine: &str) {
    let server = TestServer::start(Mode::Garbage);
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "5", "--duration", "300ms", "-t", "1"]);
    let r = &out.report;
    assert!(r.errors.bad_answer > 0, "{:?}", r.errors);
    assert_eq!(r.totals.requests, 0);
    let d = detail(r, "bad_answer");
    assert!(d.message.starts_with(&format!("bad answer from {addr}")), "{}", d.message);
}

fn silent_server_is_timeout_and_starved(engine: &str) {
    let server = TestServer::start(Mode::Silent);
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "5", "--duration", "600ms", "--timeout", "200ms", "-t", "1"]);
    let r = &out.report;
    assert!(r.errors.timeout >= 5, "{:?}", r.errors);
    assert_eq!(detail(r, "timeout").conns, 5);
    assert!(detail(r, "timeout").message.contains("unanswered after 200ms"));
    assert_eq!(r.errors.starved_conns, 5);
    assert_eq!(r.connections.starved, 5);
}

fn error_rate_threshold_decides_pass(engine: &str) {
    let server = TestServer::start(Mode::Garbage);
    let addr = server.addr.to_string();
    let out =
        load(engine, &["--addr", &addr, "--conns", "2", "--duration", "200ms", "--max-error-rate", "1", "-t", "1"]);
    assert!(out.report.passed, "a rate of 1 allows everything");
}

fn warmup_is_excluded_and_timeline_covers_the_window(engine: &str) {
    let server = TestServer::start(Mode::Serve(Proto::Http));
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "4", "--warmup", "500ms", "--duration", "2s", "-t", "1"]);
    let r = &out.report;
    assert!((r.totals.duration_s - 2.0).abs() < 0.01, "{}", r.totals.duration_s);
    assert_eq!(r.timeline.len(), 2, "{:?}", r.timeline);
    let in_timeline: u64 = r.timeline.iter().map(|s| s.answers).sum();
    assert_eq!(in_timeline, r.totals.answers_in_window);
    assert!(r.timeline.iter().all(|s| s.open_conns == 4 && s.p99_us > 0.0));
    // What the warmup answered is not in any figure.
    let all_answers = out.recorder.counts.requests;
    assert!(all_answers <= r.totals.answers_in_window + 4, "{all_answers} vs {}", r.totals.answers_in_window);
    let json = serde_json::to_string(r).unwrap();
    let back: loadgen::json_report::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.totals.requests, r.totals.requests);
    assert_eq!(back.timeline.len(), r.timeline.len());
    assert_eq!(back.histograms, r.histograms);
    assert_eq!(back.schema, loadgen::json_report::SCHEMA);
    let h = loadgen::hist::decode(&back.histograms.corrected).unwrap();
    assert_eq!(h.len(), r.totals.requests);
}

fn requests_bound_run_gives_up_when_nothing_answers(engine: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = load(
        engine,
        &[
            "--addr",
            &addr,
            "--conns",
            "3",
            "--requests",
            "30",
            "--timeout",
            "300ms",
            "--connect-timeout",
            "300ms",
            "-t",
            "1",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(out.report.totals.requests, 0);
    assert!(out.report.errors.connect_refused >= 3);
}

fn open_loop_counts_what_it_could_not_send(engine: &str) {
    let server = TestServer::start(Mode::Silent);
    let addr = server.addr.to_string();
    let out = load(
        engine,
        &["--addr", &addr, "--conns", "2", "--rate", "100", "--duration", "1s", "--timeout", "1500ms", "-t", "1"],
    );
    let ol = out.report.open_loop.expect("open loop");
    assert_eq!(out.report.totals.requests_sent, 2, "one request per connection, never answered");
    assert_eq!(ol.scheduled, 100, "{ol:?}");
    assert_eq!(ol.unsent, 98);
    assert_eq!(out.report.errors.timeout, 2, "drained until the timeout: {:?}", out.report.errors);
}

fn error_status_is_bad_status_and_still_timed(engine: &str) {
    let server = TestServer::start(Mode::NotFound);
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "2", "--requests", "100", "-t", "1"]);
    let r = &out.report;
    assert_eq!(r.totals.requests, 100);
    assert_eq!(r.errors.bad_status, 100);
    assert_eq!(r.latency.corrected.count, 100);
    assert!(detail(r, "bad_status").message.contains("404"));
    assert_eq!(r.errors.rate, 1.0);
}

fn server_closes_are_followed_without_errors(engine: &str) {
    let server = TestServer::start(Mode::CloseEvery(7));
    let addr = server.addr.to_string();
    let out = load(engine, &["--addr", &addr, "--conns", "4", "--requests", "400", "--pipeline", "3", "-t", "1"]);
    let r = &out.report;
    assert_eq!(r.totals.requests, 400, "{:?}", r.errors);
    assert_eq!(r.errors.total, 0, "{:?}", r.errors);
    assert!(r.connections.server_closes >= 400 / 7 - 4, "{}", r.connections.server_closes);
    assert_eq!(r.connections.reconnects, r.connections.server_closes);
}

over_engines!(
    closed_loop_completes_exactly_n_times_k,
    idle_connections_are_held_but_never_send,
    pipelined_echo_is_exact_and_checked,
    echo_longer_than_the_socket_buffers_is_exact,
    reqs_per_conn_reconnects_and_counts,
    open_loop_corrects_for_a_stall_and_closed_loop_max_shows_it,
    busy_spin_keeps_the_counts_and_reports_its_idle_cpu_apart,
    refused_port_is_connect_refused,
    resetting_server_is_reset,
    garbage_answer_is_bad_answer,
    silent_server_is_timeout_and_starved,
    error_rate_threshold_decides_pass,
    warmup_is_excluded_and_timeline_covers_the_window,
    requests_bound_run_gives_up_when_nothing_answers,
    open_loop_counts_what_it_could_not_send,
    error_status_is_bad_status_and_still_timed,
    server_closes_are_followed_without_errors,
);
