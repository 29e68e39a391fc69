//! T4 and C12, one readiness wait against the number of idle descriptors: the
//! libevent benchmark's "one active among N", run on the reactor's own back ends
//! (`servers::poller`: mio's edge-triggered epoll, level-triggered epoll, poll(2),
//! select(2)) without the rest of a server around them.
//!
//! Why a probe beside the `idle-active` cells: a server at 2,000 requests/s
//! spends about 20 us of CPU per request on waking up, parsing and answering, and
//! on this kind of machine that figure moves by a third between repetitions; a
//! per-wait scan of 10,000 descriptors shows through it (poll grows 9x), but
//! "does not grow" cannot be told from "grows by a fifth" (epoll's growth read
//! 1.00x with an interval of 0.95-1.42 in five pairs). Here the only work per
//! round trip is one wait, one 1-byte read and one 1-byte write, so what the wait
//! costs per watched descriptor is most of what changes with N.
//!
//! Set-up: N + 1 loopback TCP connections made once in this process; the server
//! ends stay at low descriptor numbers (select needs them under FD_SETSIZE) and
//! the client ends are moved to the top of the descriptor table. One connection
//! is active: a client thread (on the client's CPU) sends one byte and waits for
//! one back; the prober (on the server's CPU) waits on the back end with N idle
//! server ends and the active one registered, reads the byte and answers. The
//! prober's thread CPU time (`CLOCK_THREAD_CPUTIME_ID`: the wait's system call
//! included) per round trip is the figure. Every back end runs at every N once per
//! round, in an order that reverses each round; ratios are taken within a round.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use servers::conn::Wants;
use servers::poller::{EpollLevel, MioPoller, PollPoller, Poller, SelectPoller, FD_SETSIZE};

use super::sendfile::{pin, thread_cpu};
use crate::keys;
use crate::stats::{Growth, Interval};
use crate::Result;

/// Version of `probes/pollers.json`.
pub const SCHEMA: u32 = 1;
/// The back ends, by the server keys of the reactor variants that use them.
pub const BACKENDS: [&str; 4] = [keys::REACTOR, keys::REACTOR_LEVEL, keys::REACTOR_POLL, keys::REACTOR_SELECT];
/// Idle descriptors watched beside the active one (select stops below its cap).
pub const IDLE: [u64; 3] = [90, 990, 9_000];
/// Rounds by default: 15 pairs give the order-statistic interval `[x(4), x(12)]` (96.5%).
pub const ROUNDS: u32 = 15;
/// Most measured round trips per run, after [`WARMUP_TRIPS`].
pub const TRIPS: u32 = 2_000;
/// Fewest measured round trips per run...
pub const MIN_TRIPS: u32 = 50;
/// ...and a run stops once it has those and has measured this long, so that a back
/// end that costs milliseconds per wait (poll over 9,000 descriptors) does not take
/// a hundred times longer than the others.
pub const RUN_MS: u64 = 50;
/// Round trips before the measurement starts (caches, the first wake-ups).
pub const WARMUP_TRIPS: u32 = 20;
/// A wait that reports nothing for this long ends the probe with an error.
const STALL: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PollersConfig {
    pub idle: Vec<u64>,
    pub rounds: u32,
    /// Most measured round trips per run.
    pub trips: u32,
    /// Fewest measured round trips per run; past them a run ends after `run_ms`.
    pub min_trips: u32,
    pub run_ms: u64,
    pub warmup_trips: u32,
    /// CPU of the prober (the "server").
    pub prober_cpu: Option<usize>,
    /// CPU of the client thread.
    pub client_cpu: Option<usize>,
}

impl Default for PollersConfig {
    fn default() -> PollersConfig {
        PollersConfig {
            idle: IDLE.to_vec(),
            rounds: ROUNDS,
            trips: TRIPS,
            min_trips: MIN_TRIPS,
            run_ms: RUN_MS,
            warmup_trips: WARMUP_TRIPS,
            prober_cpu: None,
            client_cpu: None,
        }
    }
}

/// One run: one back end, N idle descriptors, `trips` round trips.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PollerRun {
    pub backend: String,
    pub idle: u64,
    pub round: u32,
    pub trips: u32,
    /// The prober's CPU time per round trip, microseconds.
    pub cpu_us_per_trip: f64,
    /// Wall time per round trip, microseconds.
    pub wall_us_per_trip: f64,
    /// Waits per round trip (1 when every wait returns the active descriptor).
    pub waits_per_trip: f64,
}

/// `probes/pollers.json`: the configuration, every run, or why it stopped.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PollersProbe {
    pub schema: u32,
    pub config: PollersConfig,
    pub runs: Vec<PollerRun>,
    /// Set when the probe failed; `runs` then holds what finished before.
    pub error: Option<String>,
}

impl PollersProbe {
    /// The idle counts a back end runs at: select only while every descriptor fits in its set.
    pub fn idle_of(&self, backend: &str) -> Vec<u64> {
        self.config.idle.iter().copied().filter(|&n| backend != keys::REACTOR_SELECT || fits_select(n)).collect()
    }

    /// The growth of `backend`'s cost per round trip from its fewest to its most idle
    /// descriptors, from the rounds that ran both.
    pub fn growth(&self, backend: &str) -> Option<Growth> {
        let idle = self.idle_of(backend);
        let (lo, hi) = (*idle.first()?, *idle.last()?);
        if lo == hi {
            return None;
        }
        let at = |n: u64, round: u32| {
            self.runs
                .iter()
                .find(|r| r.backend == backend && r.idle == n && r.round == round)
                .map(|r| r.cpu_us_per_trip)
        };
        let rounds: Vec<u32> = (1..=self.config.rounds).collect();
        let pairs: Vec<(f64, f64)> = rounds.iter().filter_map(|&k| Some((at(hi, k)?, at(lo, k)?))).collect();
        Some(Growth {
            from: lo,
            to: hi,
            at_from: Interval::of(&pairs.iter().map(|p| p.1).collect::<Vec<_>>())?,
            at_to: Interval::of(&pairs.iter().map(|p| p.0).collect::<Vec<_>>())?,
            ratio: Interval::of_ratios(&pairs)?,
        })
    }
}

/// select watches descriptors below FD_SETSIZE: the active one, `n` idle ones and a few others.
fn fits_select(n: u64) -> bool {
    n + 32 < FD_SETSIZE as u64
}

/// Where the probe's result lives in a results folder.
pub fn path(dir: &Path) -> PathBuf {
    super::file(dir, "pollers")
}

/// Read `probes/pollers.json` of a results folder, if there is one.
pub fn load(dir: &Path) -> Result<Option<PollersProbe>> {
    super::load_file(dir, "pollers")
}

/// Write the probe into a results folder.
pub fn save(dir: &Path, probe: &PollersProbe) -> Result<()> {
    super::save_file(dir, "pollers", probe)
}

/// Run the probe. Never fails as a whole: a failure is recorded in `error`.
pub fn run(config: &PollersConfig, mut progress: impl FnMut(&PollerRun) + Send) -> PollersProbe {
    let mut probe = PollersProbe { schema: SCHEMA, config: config.clone(), runs: Vec::new(), error: None };
    // On a thread of its own: the prober pins itself to the server's CPU, the caller stays where it is.
    let outcome = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("probe-pollers".into())
            .spawn_scoped(s, || run_into(config, &mut probe, &mut progress))
            .map_err(|e| format!("spawn the prober: {e}"))?
            .join()
            .map_err(|_| "the prober panicked".to_string())?
    });
    if let Err(e) = outcome {
        probe.error = Some(e);
    }
    probe
}

/// The connections of the probe: `active` and the idle ones, server ends
/// non-blocking, client ends held open (and high in the descriptor table).
struct Conns {
    active: TcpStream,
    active_client: TcpStream,
    idle: Vec<TcpStream>,
    _idle_clients: Vec<OwnedFd>,
}

fn run_into(
    config: &PollersConfig,
    probe: &mut PollersProbe,
    progress: &mut dyn FnMut(&PollerRun),
) -> Result<(), String> {
    let max_idle = config.idle.iter().copied().max().unwrap_or(0);
    if config.idle.is_empty() || config.rounds == 0 || config.trips == 0 {
        return Err("nothing to run: idle counts, rounds and trips must be at least 1".into());
    }
    let nofile = servers::net::raise_nofile().map_err(|e| format!("raise RLIMIT_NOFILE: {e}"))?;
    // Both ends of every connection live here, plus a few dozen descriptors of our own.
    let needed = 2 * (max_idle + 1) + 64;
    if nofile < needed {
        return Err(format!(
            "{max_idle} idle connections need {needed} descriptors (both ends in one process); the limit is {nofile}"
        ));
    }
    let conns = connect(max_idle, (nofile - max_idle - 2) as RawFd)?;
    pin(config.prober_cpu)?;
    let mut plan: Vec<(&str, u64)> = Vec::new();
    for backend in BACKENDS {
        for n in probe.idle_of(backend) {
            plan.push((backend, n));
        }
    }
    for round in 1..=config.rounds {
        let order: Vec<(&str, u64)> = if round % 2 == 0 { plan.iter().rev().copied().collect() } else { plan.clone() };
        for (backend, n) in order {
            let run = one_run(config, &conns, backend, n, round)?;
            progress(&run);
            probe.runs.push(run);
        }
    }
    Ok(())
}

/// Make `max_idle + 1` connections; client ends are moved to descriptors at or above `high`.
fn connect(max_idle: u64, high: RawFd) -> Result<Conns, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("listen on loopback: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let pair = || -> Result<(TcpStream, OwnedFd), String> {
        let client = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        server.set_nonblocking(true).map_err(|e| e.to_string())?;
        server.set_nodelay(true).map_err(|e| e.to_string())?;
        client.set_nodelay(true).map_err(|e| e.to_string())?;
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor this function owns (`client`
        // is alive until the end of the statement); it returns a new descriptor or -1.
        let moved = unsafe { libc::fcntl(client.as_raw_fd(), libc::F_DUPFD_CLOEXEC, high) };
        if moved < 0 {
            return Err(format!("move a client descriptor above {high}: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `moved` was just returned by fcntl and is owned by nothing else.
        Ok((server, unsafe { OwnedFd::from_raw_fd(moved) }))
    };
    let (active, active_client) = pair()?;
    let active_client = TcpStream::from(active_client);
    let mut idle = Vec::new();
    let mut idle_clients = Vec::new();
    for _ in 0..max_idle {
        let (s, c) = pair()?;
        idle.push(s);
        idle_clients.push(c);
    }
    Ok(Conns { active, active_client, idle, _idle_clients: idle_clients })
}

fn poller(backend: &str) -> Result<Box<dyn Poller>, String> {
    Ok(match backend {
        keys::REACTOR => Box::new(MioPoller::new().map_err(|e| format!("epoll: {e}"))?),
        keys::REACTOR_LEVEL => Box::new(EpollLevel::new().map_err(|e| format!("epoll: {e}"))?),
        keys::REACTOR_POLL => Box::new(PollPoller::new()),
        keys::REACTOR_SELECT => Box::new(SelectPoller::new()),
        other => return Err(format!("unknown back end {other}")),
    })
}

fn one_run(config: &PollersConfig, conns: &Conns, backend: &str, n: u64, round: u32) -> Result<PollerRun, String> {
    let mut poller = poller(backend)?;
    let read = Wants { read: true, write: false };
    let fail = |what: &str, e: std::io::Error| format!("{backend} with {n} idle: {what}: {e}");
    poller.register(conns.active.as_raw_fd(), 0, read).map_err(|e| fail("register", e))?;
    for (i, s) in conns.idle.iter().take(n as usize).enumerate() {
        poller.register(s.as_raw_fd(), i + 1, read).map_err(|e| fail("register", e))?;
    }
    let mut client = conns.active_client.try_clone().map_err(|e| fail("clone the client end", e))?;
    let client_cpu = config.client_cpu;
    // Set by the prober before it answers the last ping, so the client stops after reading it.
    let last = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&last);
    let pinger = std::thread::Builder::new()
        .name("probe-pinger".into())
        .spawn(move || -> Result<(), String> {
            pin(client_cpu)?;
            client.set_read_timeout(Some(STALL)).map_err(|e| e.to_string())?;
            let mut b = [0u8; 1];
            // Bounded: the prober ends a run within `warmup + trips` round trips.
            while !seen.load(Ordering::SeqCst) {
                client.write_all(b"p").map_err(|e| format!("client write: {e}"))?;
                client.read_exact(&mut b).map_err(|e| format!("client read: {e}"))?;
            }
            Ok(())
        })
        .map_err(|e| fail("spawn the client thread", e))?;
    let measured = serve(&mut *poller, &conns.active, config, &last);
    if measured.is_err() {
        // Let the client thread end on its read timeout.
        last.store(true, Ordering::SeqCst);
    }
    let pinged = pinger.join().map_err(|_| format!("{backend} with {n} idle: the client thread panicked"))?;
    let m = measured.map_err(|e| format!("{backend} with {n} idle: {e}"))?;
    pinged.map_err(|e| format!("{backend} with {n} idle: {e}"))?;
    let trips = f64::from(m.trips);
    let (cpu_s, wall_s, waits) = (m.cpu_s, m.wall_s, m.waits);
    Ok(PollerRun {
        backend: backend.to_string(),
        idle: n,
        round,
        trips: m.trips,
        cpu_us_per_trip: cpu_s * 1e6 / trips,
        wall_us_per_trip: wall_s * 1e6 / trips,
        waits_per_trip: waits as f64 / trips,
    })
}

/// What one run measured, from the end of the warm-up.
struct Measured {
    trips: u32,
    cpu_s: f64,
    wall_s: f64,
    waits: u64,
}

/// Answer pings on `active`: `warmup_trips`, then measured ones until `trips`, or
/// until at least `min_trips` and `run_ms` have passed. `last` is raised before the
/// final answer is written.
fn serve(
    poller: &mut dyn Poller,
    mut active: &TcpStream,
    config: &PollersConfig,
    last: &AtomicBool,
) -> Result<Measured, String> {
    let mut events = Vec::with_capacity(64);
    let mut buf = [0u8; 64];
    let (mut done, mut waits) = (0u32, 0u64);
    let mut start: Option<(f64, Instant)> = None;
    let run_for = Duration::from_millis(config.run_ms);
    loop {
        if done == config.warmup_trips && start.is_none() {
            start = Some((thread_cpu()?, Instant::now()));
            waits = 0;
        }
        events.clear();
        poller.wait(&mut events, Some(STALL)).map_err(|e| format!("wait: {e}"))?;
        waits += 1;
        if events.is_empty() {
            return Err(format!("no readiness in {STALL:?} after {done} round trips"));
        }
        for ev in &events {
            if ev.token != 0 {
                return Err(format!("idle connection {} reported ready", ev.token));
            }
            match active.read(&mut buf) {
                Ok(0) => return Err("the client closed".into()),
                Ok(_) => {
                    done += 1;
                    let measured = done.saturating_sub(config.warmup_trips);
                    let enough = measured >= config.trips
                        || (measured >= config.min_trips && start.is_some_and(|(_, t)| t.elapsed() >= run_for));
                    if enough {
                        let (cpu0, wall0) = start.ok_or("no round trip measured")?;
                        let (cpu_s, wall_s) = (thread_cpu()? - cpu0, wall0.elapsed().as_secs_f64());
                        last.store(true, Ordering::SeqCst);
                        active.write_all(b"a").map_err(|e| format!("answer: {e}"))?;
                        return Ok(Measured { trips: measured, cpu_s, wall_s, waits });
                    }
                    active.write_all(b"a").map_err(|e| format!("answer: {e}"))?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(backend: &str, idle: u64, round: u32, cpu: f64) -> PollerRun {
        PollerRun {
            backend: backend.into(),
            idle,
            round,
            trips: 100,
            cpu_us_per_trip: cpu,
            wall_us_per_trip: cpu * 2.0,
            waits_per_trip: 1.0,
        }
    }

    #[test]
    fn growth_pairs_rounds_and_select_stops_below_its_cap() {
        let config = PollersConfig { rounds: 3, ..PollersConfig::default() };
        let mut runs = Vec::new();
        for round in 1..=3 {
            let drift = f64::from(round);
            runs.push(run_of(keys::REACTOR_POLL, 90, round, 10.0 * drift));
            runs.push(run_of(keys::REACTOR_POLL, 9_000, round, 100.0 * drift));
            runs.push(run_of(keys::REACTOR_SELECT, 90, round, 10.0));
            runs.push(run_of(keys::REACTOR_SELECT, 990, round, 30.0));
        }
        let probe = PollersProbe { schema: SCHEMA, config, runs, error: None };
        let poll = probe.growth(keys::REACTOR_POLL).expect("poll ran at both ends");
        assert_eq!((poll.from, poll.to), (90, 9_000));
        // Drift across rounds cancels in the pair ratios.
        assert_eq!((poll.ratio.lo, poll.ratio.hi), (10.0, 10.0));
        assert_eq!(probe.idle_of(keys::REACTOR_SELECT), vec![90, 990]);
        assert_eq!(probe.growth(keys::REACTOR_SELECT).map(|g| g.ratio.median), Some(3.0));
        assert!(probe.growth(keys::REACTOR).is_none(), "epoll did not run");
    }

    /// A real, small probe: every back end answers, each wait returns the active descriptor.
    #[test]
    fn a_small_probe_runs_every_backend() {
        let config = PollersConfig {
            idle: vec![10, 200],
            rounds: 2,
            trips: 50,
            min_trips: 50,
            warmup_trips: 5,
            ..Default::default()
        };
        let probe = run(&config, |_| {});
        assert_eq!(probe.error, None);
        assert_eq!(probe.runs.len(), 2 * 2 * BACKENDS.len());
        for r in &probe.runs {
            assert!(r.cpu_us_per_trip > 0.0 && r.wall_us_per_trip >= r.cpu_us_per_trip * 0.5, "{r:?}");
            assert!((r.waits_per_trip - 1.0).abs() < 0.2, "one wait per round trip: {r:?}");
            assert_eq!(r.trips, 50);
        }
        for b in BACKENDS {
            assert!(probe.growth(b).is_some(), "{b}");
        }
    }

    #[test]
    fn bad_config_is_an_error_not_a_panic() {
        let probe = run(&PollersConfig { rounds: 0, ..PollersConfig::default() }, |_| {});
        assert!(probe.error.is_some_and(|e| e.contains("at least 1")));
    }
}
