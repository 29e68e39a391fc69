//! One rung of the ladder: a fresh server holding N connections while the probe
//! measures latency, from `c10k serve` to the [`StepRecord`].
//!
//! ```text
//! server ready ── baseline ── alive check: connect N ──(all held)── warm-up ── window (one request per connection) ──
//!                                                      └─ probe: warm-up ── window ── (plateau sample mid-window)
//! ```
//!
//! The runner watches the machine's TCP sockets (`/proc/net/sockstat`, both
//! ends) to know when every connection is held, starts the probe so that its
//! window falls inside the alive check's, samples memory once mid-way through
//! the probe's window, and reads the server threads' run-queue wait at both
//! ends of it. After the load generators exit it stops the server, removes both
//! cgroups (which kills anything left in them) and waits for the kernel to tear
//! the sockets down before the next step's baseline.

use std::path::Path;
use std::time::{Duration, Instant};

use super::machine::{self, Counters};
use super::plan::{StepSpec, CONNECT_TIMEOUT, REQUEST_TIMEOUT};
use super::procs::{self, Prefix};
use super::record::{CgMem, RunQueueWindow, Snapshot, StepRecord};
use crate::cgroup::{Accounting, Cgroup};
use crate::results::{Outcome, SCHEMA};
use crate::signals;

/// How long the server may take to be ready (52 processes fork).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Between SIGTERM and SIGKILL: closing a million sockets takes the kernel a while.
pub const STOP_GRACE: Duration = Duration::from_secs(20);
/// The ramp is over when the machine's socket count has not grown for this long.
pub const RAMP_STALL: Duration = Duration::from_secs(10);
/// The machine counts as holding every connection within this many sockets of
/// both ends of all of them (or a ten-thousandth of them): `/proc/net/sockstat`
/// counts every TCP socket of the machine, and others come and go meanwhile.
pub const HELD_SLACK: u64 = 16;
/// At most this long after the step for the sockets to be torn down.
pub const TEARDOWN_LIMIT: Duration = Duration::from_secs(120);

/// Where a step runs.
pub struct StepCtx<'a> {
    pub bin: &'a Path,
    pub scratch: &'a Path,
    pub server_cpus: &'a [usize],
    pub client_cpus: &'a [usize],
    pub cgroups: bool,
    pub probe_warmup: Duration,
    pub probe_window: Duration,
    pub alive_warmup: Duration,
    pub alive_period: Duration,
}

/// How long a removed group's processes get to exit: one holding 100,000 sockets
/// takes the kernel seconds to close them, and a group with a task left cannot be removed.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// A cgroup that, when dropped (at the end of a step, on a failure, on Ctrl-C),
/// first kills what is left inside and waits for it to be gone, bounded by
/// [`DRAIN_LIMIT`], so that [`Cgroup`]'s own removal finds it empty.
pub struct Drained(pub Option<Cgroup>);

impl std::ops::Deref for Drained {
    type Target = Option<Cgroup>;
    fn deref(&self) -> &Option<Cgroup> {
        &self.0
    }
}

impl Drop for Drained {
    fn drop(&mut self) {
        let Some(g) = &self.0 else { return };
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            let pids = g.pids();
            if pids.is_empty() || Instant::now() >= deadline {
                return;
            }
            for p in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn cg_mem(g: Option<&Cgroup>) -> Option<CgMem> {
    let g = g?;
    let s = g.sample()?;
    Some(CgMem {
        anon_bytes: s.anon_bytes,
        kernel_bytes: g.kernel_bytes(),
        tcp_bytes: s.tcp_bytes,
        cpu_us: s.cpu_user_us + s.cpu_sys_us,
    })
}

fn server_pids(group: Option<&Cgroup>, root: i32) -> Vec<i32> {
    match group {
        Some(g) => g.pids(),
        None => crate::monitor::tree_of(root),
    }
}

/// The machine and both halves now.
pub fn snapshot(server: Option<&Cgroup>, client: Option<&Cgroup>, pids: &[i32]) -> Snapshot {
    let fds: Vec<u64> = pids.iter().map(|p| machine::fds(&[*p])).collect();
    Snapshot {
        at_unix_ms: crate::unix_ms(),
        mem: machine::parse_meminfo(&machine::read("/proc/meminfo")),
        sock: machine::parse_sockstat(&machine::read("/proc/net/sockstat")),
        server: cg_mem(server),
        client: cg_mem(client),
        server_fds: fds.iter().sum(),
        server_fds_max: fds.iter().copied().max().unwrap_or(0),
        server_procs: pids.len() as u64,
    }
}

fn tcp_inuse() -> u64 {
    machine::parse_sockstat(&machine::read("/proc/net/sockstat")).tcp_inuse
}

fn group(enabled: bool) -> (Option<Cgroup>, Option<Accounting>) {
    if !enabled {
        return (None, Some(Accounting::Proc { reason: "cgroups not used in this run".into() }));
    }
    match Cgroup::create() {
        Ok(g) => {
            let v = g.version();
            (Some(g), Some(Accounting::Cgroup { version: v }))
        }
        Err(reason) => (None, Some(Accounting::Proc { reason })),
    }
}

/// The record of a step before anything is measured: its plan, when it started and the
/// machine's load then, with `outcome`; every measurement empty and no CPU assigned.
pub fn planned(spec: &StepSpec, outcome: Outcome) -> StepRecord {
    StepRecord {
        schema: SCHEMA,
        model: spec.model.clone(),
        conns: spec.conns,
        server_procs: spec.server_procs,
        client_procs: spec.client_procs,
        server_args: spec.server_args.clone(),
        alive_args: spec.alive_args.clone(),
        probe_args: spec.probe_args.clone(),
        server_cpus: Vec::new(),
        client_cpus: Vec::new(),
        accounting: None,
        started_unix_ms: crate::unix_ms(),
        wall_s: 0.0,
        loadavg_before: machine::loadavg(),
        outcome,
        ready_line: None,
        ready_s: None,
        server_stats: None,
        server_exit: String::new(),
        server_stderr_tail: String::new(),
        established_s: None,
        baseline: None,
        plateau: None,
        counters: Default::default(),
        alive: None,
        alive_raw: None,
        alive_exit: String::new(),
        alive_stderr_tail: String::new(),
        probe: None,
        probe_raw: None,
        probe_exit: String::new(),
        probe_stderr_tail: String::new(),
        server_run_queue: None,
        teardown_s: None,
    }
}

/// Run one step; `None` when Ctrl-C stopped it (its processes are killed, nothing is recorded).
pub fn run(ctx: &StepCtx<'_>, spec: &StepSpec, say: &dyn Fn(String)) -> Option<StepRecord> {
    let started = Instant::now();
    let mut rec = StepRecord {
        server_cpus: ctx.server_cpus.to_vec(),
        client_cpus: ctx.client_cpus.to_vec(),
        ..planned(spec, Outcome::Ok)
    };
    let (server_cg, accounting) = group(ctx.cgroups);
    let (client_cg, _) = group(ctx.cgroups && server_cg.is_some());
    // Declared in this order, dropped in reverse: the load generators' group first.
    let (server_cg, client_cg) = (Drained(server_cg), Drained(client_cg));
    rec.accounting = accounting;
    let join = |g: &Option<Cgroup>| g.as_ref().map(|g| g.join_paths().to_vec()).unwrap_or_default();
    let (server_join, client_join) = (join(&server_cg), join(&client_cg));
    let counters_before = Counters::read();
    let prefix = Prefix::direct(ctx.bin);
    let server =
        match procs::start_server(&prefix, &spec.server_args, ctx.server_cpus, None, &server_join, READY_TIMEOUT) {
            Ok(s) => s,
            Err(why) if signals::interrupted() => {
                let _ = why;
                return None;
            }
            Err(why) => {
                rec.outcome = Outcome::Failed { stage: "ready".into(), reason: why };
                rec.wall_s = started.elapsed().as_secs_f64();
                return Some(rec);
            }
        };
    rec.ready_line = Some(server.ready_line.clone());
    rec.ready_s = Some(server.ready_s);
    let root = server.proc.pid();
    let addr = server.ready.addr.clone();
    say(format!("server ready in {:.1} s ({} processes) on {addr}", server.ready_s, spec.server_procs));
    std::thread::sleep(Duration::from_millis(300));
    let base = snapshot(server_cg.as_ref(), client_cg.as_ref(), &server_pids(server_cg.as_ref(), root));
    let base_inuse = base.sock.tcp_inuse;
    rec.baseline = Some(base);

    let with_addr = |args: &[String]| {
        let mut a = vec!["--addr".to_string(), addr.clone()];
        a.extend(args.iter().cloned());
        a
    };
    let alive_json = ctx.scratch.join(format!("alive-{}.json", std::process::id()));
    let probe_json = ctx.scratch.join(format!("probe-{}.json", std::process::id()));
    let alive =
        match procs::start_load(&prefix, &with_addr(&spec.alive_args), &alive_json, ctx.client_cpus, &client_join) {
            Ok(l) => l,
            Err(why) => {
                rec.outcome = Outcome::Failed { stage: "load".into(), reason: why };
                let stopped = procs::stop_server(server, STOP_GRACE);
                rec.server_stats = stopped.stats;
                rec.server_exit = stopped.exit;
                rec.wall_s = started.elapsed().as_secs_f64();
                return Some(rec);
            }
        };
    let mut alive = Some(alive);
    let mut server = Some(server);
    // Ctrl-C: kill every process, record nothing.
    let abort = |alive: &mut Option<procs::Load>, server: Option<procs::Server>| {
        if let Some(mut a) = alive.take() {
            a.proc.kill_all(&[]);
            let _ = a.proc.wait_for(Duration::from_secs(2));
        }
        if let Some(mut s) = server {
            s.proc.kill_all(&[]);
            let _ = s.proc.wait_for(Duration::from_secs(2));
        }
    };

    // The ramp: until the machine holds both ends of every connection, the alive
    // check exits, or the socket count stalls.
    let target = (base_inuse + 2 * spec.conns).saturating_sub(HELD_SLACK.max(spec.conns / 10_000));
    let ramp_limit = CONNECT_TIMEOUT * 3 + Duration::from_secs_f64(spec.conns as f64 / 10_000.0);
    let (mut last, mut grew_at, mut said_at) = (base_inuse, Instant::now(), Instant::now());
    let established = loop {
        if signals::interrupted() {
            abort(&mut alive, server.take());
            return None;
        }
        let now = tcp_inuse();
        if now >= target {
            break true;
        }
        if alive.as_mut().is_some_and(|a| a.done()) || started.elapsed() > ramp_limit {
            break false;
        }
        if now > last {
            last = now;
            grew_at = Instant::now();
        } else if grew_at.elapsed() > RAMP_STALL {
            break false;
        }
        if said_at.elapsed() > Duration::from_secs(5) {
            said_at = Instant::now();
            say(format!(
                "connecting: {} of {} held",
                crate::show::n((now.saturating_sub(base_inuse) / 2) as f64),
                crate::show::n(spec.conns as f64)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let t_held = Instant::now();
    if established {
        let s = alive.as_ref().map_or(0.0, |a| a.started.elapsed().as_secs_f64());
        rec.established_s = Some(s);
        say(format!("all {} connections held after {s:.1} s", crate::show::n(spec.conns as f64)));
    } else {
        say(format!(
            "the machine's TCP sockets stopped growing at {} of {} connections (both ends); going on",
            crate::show::n((tcp_inuse().saturating_sub(base_inuse) / 2) as f64),
            crate::show::n(spec.conns as f64)
        ));
    }

    // The probe's window inside the alive check's: start it `alive_warmup - probe_warmup` after the ramp.
    let probe_at = t_held + ctx.alive_warmup.saturating_sub(ctx.probe_warmup);
    if !procs::sleep_until(probe_at) {
        abort(&mut alive, server.take());
        return None;
    }
    let mut probe =
        match procs::start_load(&prefix, &with_addr(&spec.probe_args), &probe_json, ctx.client_cpus, &client_join) {
            Ok(p) => Some(p),
            Err(why) => {
                rec.probe_exit = why;
                None
            }
        };
    let window_start = Instant::now() + ctx.probe_warmup;
    let pids = server_pids(server_cg.as_ref(), root);
    if probe.is_some() {
        let steps_ok = procs::sleep_until(window_start);
        let (rq0, t0) = (machine::run_queue(&pids), Instant::now());
        let steps_ok = steps_ok && procs::sleep_until(window_start + ctx.probe_window / 2);
        if steps_ok {
            rec.plateau =
                Some(snapshot(server_cg.as_ref(), client_cg.as_ref(), &server_pids(server_cg.as_ref(), root)));
        }
        let steps_ok = steps_ok && procs::sleep_until(window_start + ctx.probe_window);
        let (rq1, t1) = (machine::run_queue(&pids), Instant::now());
        if !steps_ok {
            if let Some(mut p) = probe.take() {
                p.proc.kill_all(&[]);
            }
            abort(&mut alive, server.take());
            return None;
        }
        rec.server_run_queue = Some(RunQueueWindow {
            // As measured: on a loaded machine the runner's own sleeps overshoot.
            window_s: (t1 - t0).as_secs_f64(),
            wait_s: rq1.wait_ns.saturating_sub(rq0.wait_ns) as f64 / 1e9,
            on_cpu_s: rq1.on_cpu_ns.saturating_sub(rq0.on_cpu_ns) as f64 / 1e9,
            threads: rq1.threads,
        });
    }
    if let Some(p) = probe.take() {
        let r = p.collect(Instant::now() + REQUEST_TIMEOUT + Duration::from_secs(10));
        if r.interrupted {
            abort(&mut alive, server.take());
            return None;
        }
        rec.probe = r.figures;
        rec.probe_raw = r.raw;
        rec.probe_exit = r.problem.map_or(r.exit.clone(), |p| format!("{}: {p}", r.exit));
        rec.probe_stderr_tail = r.stderr_tail;
    }
    if rec.plateau.is_none() {
        rec.plateau = Some(snapshot(server_cg.as_ref(), client_cg.as_ref(), &server_pids(server_cg.as_ref(), root)));
    }
    // The load generator starts its load once every connect has succeeded or failed
    // once (up to the connect timeout after the machine held nearly all), then the
    // warm-up, the window, and the answers still in flight.
    let alive_end =
        t_held + CONNECT_TIMEOUT + ctx.alive_warmup + ctx.alive_period + REQUEST_TIMEOUT + Duration::from_secs(15);
    let a = alive.take()?;
    let r = a.collect(alive_end);
    if r.interrupted {
        abort(&mut alive, server.take());
        return None;
    }
    rec.alive = r.figures;
    rec.alive_raw = r.raw;
    rec.alive_exit = r.exit;
    rec.alive_stderr_tail = r.stderr_tail;
    if let Some(problem) = r.problem {
        rec.outcome = Outcome::Failed { stage: "load".into(), reason: problem };
    }
    rec.counters = Counters::read().since(&counters_before);
    let stop_at = Instant::now();
    if let Some(s) = server.take() {
        let stopped = procs::stop_server(s, STOP_GRACE);
        rec.server_stats = stopped.stats;
        rec.server_exit = stopped.exit;
        rec.server_stderr_tail = stopped.stderr_tail;
    }
    drop(server_cg);
    drop(client_cg);
    // Wait for the kernel to close both ends before the next baseline.
    let slack = 1_000u64.max(spec.conns / 100);
    while tcp_inuse() > base_inuse + slack && stop_at.elapsed() < TEARDOWN_LIMIT && !signals::interrupted() {
        std::thread::sleep(Duration::from_millis(200));
    }
    rec.teardown_s = Some(stop_at.elapsed().as_secs_f64());
    rec.wall_s = started.elapsed().as_secs_f64();
    Some(rec)
}
