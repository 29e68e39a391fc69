//! The C1M logic on records of real runs on the 2-core machine
//! (`tests/fixtures/c1m/`, the load generators' raw reports removed): memory per
//! connection from a step that held 300,000, and the limits named from a million
//! that collapsed and from T5's defaults runs in network namespaces.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use bench::c1m::fit;
use bench::c1m::limits::Limit;
use bench::c1m::limits::{run_limits, step_limits};
use bench::c1m::record::{NsRun, StepRecord};
use bench::results::read_json;

fn fixture<T: for<'de> serde::Deserialize<'de>>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c1m").join(name);
    read_json(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn kinds(limits: &[bench::c1m::limits::LimitMet]) -> Vec<Limit> {
    limits.iter().map(|l| l.limit).collect()
}

#[test]
fn a_held_step_gives_memory_per_connection_of_both_halves() {
    let s: StepRecord = fixture("reuseport-c300000.json.gz");
    assert!(s.held_all(), "300,000 held and answered: {:?}", s.alive);
    // The accept queues overflowed during the ramp (SYNs dropped and retried): met, and recovered from.
    assert_eq!(kinds(&step_limits(&s)), [Limit::AcceptBacklog]);
    let m = fit::step_memory(&s).expect("both snapshots");
    assert_eq!(m.kernel_method, fit::KernelMethod::Cgroup);
    // The probe's connections are held too.
    assert!((300_000..=300_200).contains(&m.conns), "{}", m.conns);
    let per = |v: Option<f64>| v.expect("measured") / m.conns as f64;
    let (user, kernel, client) = (per(m.server_user), per(m.server_kernel), per(m.client_kernel));
    assert!(user > 0.0 && user < 2048.0, "server user space per connection: {user}");
    assert!(kernel > 1024.0 && kernel < 10_240.0, "server kernel per connection: {kernel}");
    // Each connection is a socket at each end: the halves are of the same size.
    assert!((client / kernel - 1.0).abs() < 0.5, "client {client} against server {kernel}");
    assert!(m.machine > (m.server_kernel.unwrap_or(0.0) + m.client_kernel.unwrap_or(0.0)) * 0.8);
}

#[test]
fn the_collapsed_million_names_the_clients_cpu() {
    let s: StepRecord = fixture("tokio-c1000000-period20.json.gz");
    assert!(!s.held_all());
    let a = s.alive.as_ref().expect("partial report kept");
    assert!(a.errors > 100_000 && a.client_bound);
    let limits = step_limits(&s);
    // TCP entered memory pressure once (tcp_mem), and the load generators fell behind.
    assert_eq!(kinds(&limits), [Limit::Memory, Limit::ClientCpu], "{limits:?}");
    assert!(limits[1].evidence.contains("waited"), "{}", limits[1].evidence);
    assert_eq!(fit::per_conn(&[&s], |m| m.server_user), None, "a failed step is not fitted");
}

#[test]
fn the_defaults_namespace_runs_name_descriptors_backlog_and_ports() {
    let max: NsRun = fixture("t5-defaults-max-conns.json.gz");
    assert_eq!(max.server_nofile, 1_024);
    let held = max.held_peak().expect("descriptors sampled");
    assert!(held <= 1_024 * u64::from(max.server_procs), "{held} held at once");
    let named = kinds(&run_limits(&max));
    assert_eq!(named[..2], [Limit::Descriptors, Limit::AcceptBacklog], "{named:?}");

    let short: NsRun = fixture("t5-defaults-short.json.gz");
    assert_eq!(kinds(&run_limits(&short)), [Limit::EphemeralPorts], "every connection answered: the ports alone");
    let tuned: NsRun = fixture("t5-tuned-short.json.gz");
    assert!(!kinds(&run_limits(&tuned)).contains(&Limit::EphemeralPorts), "TIME_WAIT ports are reused when tuned");
    let (d, t) = (short.load.as_ref().expect("load"), tuned.load.as_ref().expect("load"));
    assert!(t.requests_per_sec > 2.0 * d.requests_per_sec, "{} vs {}", t.requests_per_sec, d.requests_per_sec);
}
