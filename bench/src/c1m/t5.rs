//! T5 in network namespaces: the documents' before/after tuning table
//! (003 §6.2: maximum connections 1,024 -> 100,000, latency 100 ms -> 10 ms,
//! throughput 1,000/s -> 50,000/s, CPU 80% -> 30%) measured with the server
//! and its clients in a fresh pair of namespaces per run ([`crate::netns`]), so
//! that the host's own settings are never touched.
//!
//! Two configurations:
//!
//! - `defaults`: the kernel's defaults of a new namespace, and the server's
//!   RLIMIT_NOFILE at 1,024 (the documents' "before");
//! - `tuned`: the documents' script, each per-namespace setting written in
//!   both namespaces with `ip netns exec NS sysctl -w`, and the server's
//!   RLIMIT_NOFILE at the hard limit (the script's `ulimit -n 1048576` cannot
//!   be had here: the hard limit cannot be raised). Settings that are not per
//!   namespace are listed with why and never written.
//!
//! The server is the same in both: `reuseport` with as many processes as the
//! tuned run's 100,000 connections need (the processes are deployment, not
//! tuning). Two workloads, since the documents give none:
//!
//! - `max-conns`: 100,000 connections offered, each asked one request per
//!   window (open loop); served = connections answered at least once. Run once
//!   per configuration: the kernel enforces the descriptor limit.
//! - `short`: 1,000 concurrent clients, each opening a connection per request
//!   from one source address (closed loop): latency (p99), throughput, and the
//!   server's CPU. Port ranges, TIME_WAIT reuse and the accept queue act here.
//!   Repeated in pairs (defaults, tuned), each in fresh namespaces, so no
//!   TIME_WAIT outlives its run; verdicts read the pair ratios.

use std::path::Path;
use std::time::{Duration, Instant};

use super::machine::{self, Counters};
use super::plan::C1mConfig;
use super::procs::{self, Prefix};
use super::record::{NsRun, Setting, SettingClass, T5Info};
use crate::cgroup::Cgroup;
use crate::netns::{self, NsPair};
use crate::results::{write_json, Outcome, SCHEMA};
use crate::signals;

/// 003 §6.2's script, in its order (`ulimit -n` is the process limit, not a sysctl).
pub const SETTINGS: [(&str, &str); 12] = [
    ("net.core.somaxconn", "65536"),
    ("net.core.netdev_max_backlog", "262144"),
    ("net.ipv4.tcp_fin_timeout", "30"),
    ("net.ipv4.tcp_tw_reuse", "1"),
    ("net.ipv4.tcp_tw_recycle", "0"),
    ("net.core.rmem_max", "16777216"),
    ("net.core.wmem_max", "16777216"),
    ("net.ipv4.tcp_rmem", "4096 87380 16777216"),
    ("net.ipv4.tcp_wmem", "4096 65536 16777216"),
    ("fs.file-max", "1048576"),
    (RLIMIT_KEY, "1048576"),
    ("net.ipv4.tcp_congestion_control", "bbr"),
];
/// The script's `ulimit -n` line.
pub const RLIMIT_KEY: &str = "ulimit -n";
/// Connects not done in this long fail: a full accept queue drops SYNs, and
/// waiting the default 20 s for each of 90,000 would take the run's budget.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Share of one source address's ephemeral ports the load generator uses (as its automatic spread does).
pub const PORT_SHARE: f64 = 0.4;

/// The two configurations.
pub const CONFIGS: [&str; 2] = ["defaults", "tuned"];

/// How each of the documents' settings fares here, found with a probe pair of namespaces
/// (each per-namespace candidate is written there once and read back).
pub fn classify(pair: &NsPair, nofile_hard: u64) -> Vec<Setting> {
    SETTINGS
        .iter()
        .map(|(key, value)| {
            let class = if *key == RLIMIT_KEY {
                let want: u64 = value.parse().unwrap_or(u64::MAX);
                SettingClass::ProcessLimit {
                    used: want.min(nofile_hard).to_string(),
                    why: format!(
                        "RLIMIT_NOFILE of the server's processes, set before exec; the hard limit here is {nofile_hard} \
                         and cannot be raised, so the tuned run uses {}",
                        want.min(nofile_hard)
                    ),
                }
            } else if !key.starts_with("net.") {
                SettingClass::Global {
                    why: format!(
                        "machine-wide (not a network setting); not written; the host's value is {}",
                        netns::host_value(key).unwrap_or_else(|| "unreadable".into())
                    ),
                }
            } else if pair.sysctl_read(&pair.server, key).is_some() {
                // Visible inside: per namespace if the documents' value takes there.
                match pair.sysctl_write(&pair.server, key, value) {
                    Ok(()) => SettingClass::PerNamespace,
                    Err(_) => SettingClass::Global {
                        why: format!(
                            "visible inside a namespace but read-only there (only the initial namespace may change it; \
                             a namespace reads {}); not written",
                            pair.sysctl_read(&pair.server, key).unwrap_or_default()
                        ),
                    },
                }
            } else if netns::host_value(key).is_some() {
                SettingClass::Global {
                    why: "the kernel keeps it for the whole machine: it does not exist inside a new namespace; not written"
                        .into(),
                }
            } else {
                SettingClass::Absent { why: "this kernel has no such setting (tcp_tw_recycle was removed in Linux 4.12)".into() }
            };
            Setting { key: key.to_string(), value: value.to_string(), class }
        })
        .collect()
}

/// Where T5 runs.
pub struct T5Ctx<'a> {
    pub bin: &'a Path,
    pub scratch: &'a Path,
    pub out: &'a Path,
    pub server_cpus: &'a [usize],
    pub client_cpus: &'a [usize],
    pub cgroups: bool,
    pub cfg: &'a C1mConfig,
    pub nofile_hard: u64,
}

fn ns_counters(pair: &NsPair, ns: &str) -> Counters {
    let netstat = pair.exec(ns, &["cat", "/proc/net/netstat"]).unwrap_or_default();
    Counters::parse(&netstat, &machine::read("/proc/vmstat"))
}

fn ports_per_address() -> u64 {
    let range = netns::host_value("net.ipv4.ip_local_port_range").unwrap_or_default();
    let mut w = range.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
    let (lo, hi) = (w.next().unwrap_or(32_768), w.next().unwrap_or(60_999));
    ((hi.saturating_sub(lo) + 1) as f64 * PORT_SHARE) as u64
}

/// Run T5; `None` when Ctrl-C stopped it. Files go to `out/t5/`.
pub fn run(ctx: &T5Ctx<'_>, leftovers_removed: usize, say: &dyn Fn(String)) -> Option<T5Info> {
    let cfg = ctx.cfg;
    let server_procs = cfg.procs_for(cfg.t5_max_conns);
    let mut info = T5Info {
        schema: SCHEMA,
        unavailable: None,
        design: design(server_procs, cfg),
        settings: Vec::new(),
        host_before: Vec::new(),
        host_after: Vec::new(),
        server_procs,
        max_conns: cfg.t5_max_conns,
        short_conns: cfg.t5_short_conns,
        reps: cfg.t5_reps,
        leftovers_removed,
    };
    let ip = match netns::available() {
        Ok(ip) => ip,
        Err(why) => {
            info.unavailable = Some(why);
            return Some(info);
        }
    };
    let host_keys: Vec<&str> = SETTINGS.iter().map(|s| s.0).filter(|k| *k != RLIMIT_KEY).collect();
    let host_values = || host_keys.iter().map(|k| (k.to_string(), netns::host_value(k).unwrap_or_default())).collect();
    info.host_before = host_values();
    match NsPair::create(&ip, 1) {
        Ok(probe) => info.settings = classify(&probe, ctx.nofile_hard),
        Err(why) => {
            info.unavailable = Some(format!("cannot create network namespaces here: {why}"));
            info.host_after = host_values();
            return Some(info);
        }
    }
    let mut plan: Vec<(&str, &str, u32)> = CONFIGS.iter().map(|c| (*c, "max-conns", 1)).collect();
    for rep in 1..=cfg.t5_reps {
        plan.extend(CONFIGS.iter().map(|c| (*c, "short", rep)));
    }
    for (i, (config, kind, rep)) in plan.iter().enumerate() {
        say(format!("T5 [{}/{}] {config} {kind} rep {rep}", i + 1, plan.len()));
        let Some(run) = one(ctx, &ip, &info.settings, config, kind, *rep, server_procs) else {
            info.host_after = host_values();
            return None;
        };
        let summary = match &run.load {
            Some(l) => format!(
                "{} of {} served, {:.0} req/s, p99 {}, server CPU {}",
                crate::show::n(l.served() as f64),
                crate::show::n(l.conns as f64),
                l.requests_per_sec,
                l.p99_us.map_or("not measured".into(), crate::show::lat),
                run.cpu_util().map_or("not measured".into(), |u| format!("{:.0}%", u * 100.0))
            ),
            None => run.outcome.label(),
        };
        say(format!("  {summary}"));
        let path = ctx.out.join("t5").join(NsRun::file_name(config, kind, *rep));
        if let Err(e) = write_json(&path, &run, "T5 run") {
            say(format!("  cannot write {}: {e}", path.display()));
        }
    }
    info.host_after = host_values();
    Some(info)
}

fn design(server_procs: u32, cfg: &C1mConfig) -> String {
    format!(
        "Each run makes two network namespaces joined by a veth pair: the server's (10.213.0.1) and the client's \
         (10.213.0.2 and up), so the clients' connections cross a device as between two machines and each side's \
         settings act where they apply; loopback inside one namespace would hide part of the difference, since the \
         kernel's default tcp_tw_reuse = 2 reuses TIME_WAIT ports for loopback only. The server is `reuseport` with \
         {server_procs} processes in both configurations (what {} connections need with this machine's descriptor \
         limit); `defaults` keeps the new namespaces' kernel defaults and gives the server RLIMIT_NOFILE {}, `tuned` \
         writes the documents' per-namespace settings in both namespaces. Namespaces are new for every run and \
         removed after it.",
        crate::show::n(cfg.t5_max_conns as f64),
        super::plan::T5_DEFAULT_NOFILE
    )
}

fn one(
    ctx: &T5Ctx<'_>,
    ip: &Path,
    settings: &[Setting],
    config: &str,
    kind: &str,
    rep: u32,
    server_procs: u32,
) -> Option<NsRun> {
    let cfg = ctx.cfg;
    let started = Instant::now();
    let max = kind == "max-conns";
    let conns = if max { cfg.t5_max_conns } else { cfg.t5_short_conns };
    let addrs = if max { conns.div_ceil(ports_per_address().max(1)) as usize } else { 1 };
    let tuned = config == "tuned";
    let nofile = if tuned { None } else { Some(super::plan::T5_DEFAULT_NOFILE) };
    let mut run = NsRun {
        server_nofile: nofile.unwrap_or(ctx.nofile_hard),
        server_procs,
        server_cpus: ctx.server_cpus.len(),
        started_unix_ms: crate::unix_ms(),
        loadavg_before: machine::loadavg(),
        ..NsRun::new(config, kind, rep)
    };
    let pair = match NsPair::create(ip, addrs) {
        Ok(p) => p,
        Err(why) => {
            run.outcome = Outcome::Failed { stage: "namespace".into(), reason: why };
            return Some(run);
        }
    };
    run.server_ns = pair.server.clone();
    run.client_ns = pair.client.clone();
    if tuned {
        for s in settings.iter().filter(|s| s.class == SettingClass::PerNamespace) {
            for ns in pair.names() {
                if let Err(e) = pair.sysctl_write(ns, &s.key, &s.value) {
                    run.write_errors.push(format!("{} in {ns}: {e}", s.key));
                }
            }
        }
    }
    run.ns_values = settings
        .iter()
        .filter(|s| s.key.starts_with("net."))
        .map(|s| (s.key.clone(), pair.sysctl_read(&pair.server, &s.key), pair.sysctl_read(&pair.client, &s.key)))
        .collect();
    let (before_s, before_c) = (ns_counters(&pair, &pair.server), ns_counters(&pair, &pair.client));
    let make = || if ctx.cgroups { Cgroup::create().ok() } else { None };
    let (server_cg, client_cg) = (super::step::Drained(make()), super::step::Drained(make()));
    let join = |g: &Option<Cgroup>| g.as_ref().map(|g| g.join_paths().to_vec()).unwrap_or_default();
    run.server_args = vec![
        "--model".into(),
        "reuseport".into(),
        "--procs".into(),
        server_procs.to_string(),
        "--addr".into(),
        format!("{}:0", pair.server_ip),
    ];
    let server_prefix = Prefix::in_netns(ip, &pair.server, ctx.bin);
    let server = match procs::start_server(
        &server_prefix,
        &run.server_args,
        ctx.server_cpus,
        nofile,
        &join(&server_cg),
        super::step::READY_TIMEOUT,
    ) {
        Ok(s) => s,
        Err(_) if signals::interrupted() => return None,
        Err(why) => {
            run.outcome = Outcome::Failed { stage: "ready".into(), reason: why };
            run.wall_s = started.elapsed().as_secs_f64();
            return Some(run);
        }
    };
    run.ready_line = Some(server.ready_line.clone());
    let root = server.proc.pid();
    let server_pids = || server_cg.as_ref().map_or_else(|| crate::monitor::tree_of(root), |g| g.pids());
    run.server_fds_base = Some(machine::fds(&server_pids()));
    let w = cfg.t5_window;
    let d = |x: Duration| humantime::format_duration(x).to_string();
    let warmup = if max { Duration::from_secs(2) } else { Duration::from_secs(1) };
    let sources = match (pair.client_ips.first(), pair.client_ips.last()) {
        (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
        (Some(a), _) => a.to_string(),
        _ => String::new(),
    };
    let mut args = vec!["--addr".into(), server.ready.addr.clone(), "--conns".into(), conns.to_string()];
    if max {
        let procs = cfg.procs_for(conns);
        let rate = conns as f64 / w.as_secs_f64();
        args.extend([
            "--procs".into(),
            procs.to_string(),
            "--rate".into(),
            format!("{rate}"),
            "--spin".into(),
            "0s".into(),
            "--timeout".into(),
            "5s".into(),
            // Every connect in flight at once: those a full queue drops fail together after the timeout.
            "--connect-window".into(),
            cfg.conns_per_proc.to_string(),
        ]);
    } else {
        args.extend(["--reqs-per-conn".into(), "1".into(), "--timeout".into(), "2s".into()]);
    }
    args.extend([
        "--threads".into(),
        "1".into(),
        "--warmup".into(),
        d(warmup),
        "--duration".into(),
        d(w),
        "--connect-timeout".into(),
        d(CONNECT_TIMEOUT),
        "--source-ips".into(),
        sources,
    ]);
    run.load_args = args.clone();
    let json = ctx.scratch.join(format!("t5-{}.json", std::process::id()));
    let client_prefix = Prefix::in_netns(ip, &pair.client, ctx.bin);
    let load = match procs::start_load(&client_prefix, &args, &json, ctx.client_cpus, &join(&client_cg)) {
        Ok(l) => l,
        Err(why) => {
            run.outcome = Outcome::Failed { stage: "load".into(), reason: why };
            let stopped = procs::stop_server(server, super::step::STOP_GRACE);
            run.server_stats = stopped.stats;
            run.server_exit = stopped.exit;
            return Some(run);
        }
    };
    // The window starts after the ramp and the warm-up; the ramp of `max-conns` is
    // not known in advance, so its CPU is not sampled (its rows read connections only).
    let cpu =
        |g: &Option<Cgroup>| g.as_ref().and_then(|g| g.sample()).map(|s| (s.cpu_user_us + s.cpu_sys_us) as f64 / 1e6);
    // The short run's window opens after a ramp of a few milliseconds and the warm-up;
    // its CPU is read from half a second in to a second before its end.
    let t0 = load.started + Duration::from_millis(500) + warmup;
    let t1 = t0 + w.saturating_sub(Duration::from_secs(1));
    // (server CPU seconds, when read) at the window's two marks.
    let mut c0: Option<(f64, Instant)> = None;
    let mut c1: Option<(f64, Instant)> = None;
    let mut load = load;
    // Until the load ends: the server's CPU at both marks, and its descriptors (the peak).
    while !load.done() {
        if signals::interrupted() {
            load.proc.kill_all(&[]);
            let mut s = server;
            s.proc.kill_all(&[]);
            return None;
        }
        let now = Instant::now();
        if c0.is_none() && now >= t0 {
            c0 = cpu(&server_cg).map(|c| (c, now));
        }
        if c1.is_none() && now >= t1 {
            c1 = cpu(&server_cg).map(|c| (c, now));
        }
        let pids = server_pids();
        let fds: Vec<u64> = pids.iter().map(|p| machine::fds(&[*p])).collect();
        run.server_fds = run.server_fds.max(Some(fds.iter().sum()));
        run.server_fds_max = run.server_fds_max.max(fds.iter().copied().max());
        std::thread::sleep(Duration::from_millis(500));
    }
    if let (false, Some((a, at_a)), Some((b, at_b))) = (max, c0, c1) {
        run.server_cpu_s = Some(b - a);
        run.window_s = Some((at_b - at_a).as_secs_f64());
    }
    let r = load.collect(Instant::now() + w + Duration::from_secs(30));
    if r.interrupted {
        let mut s = server;
        s.proc.kill_all(&[]);
        return None;
    }
    run.load = r.figures;
    run.load_raw = r.raw;
    run.load_exit = r.exit;
    run.load_stderr_tail = r.stderr_tail;
    if let Some(p) = r.problem {
        run.outcome = Outcome::Failed { stage: "load".into(), reason: p };
    }
    let sock = pair.exec(&pair.client, &["cat", "/proc/net/sockstat"]).ok().map(|t| machine::parse_sockstat(&t));
    run.client_time_wait = sock.map(|s| s.tcp_tw);
    let range = pair.sysctl_read(&pair.client, "net.ipv4.ip_local_port_range").unwrap_or_default();
    let mut ends = range.split_whitespace().filter_map(|x| x.parse::<u64>().ok());
    if let (Some(lo), Some(hi)) = (ends.next(), ends.next()) {
        run.client_ports = Some((hi.saturating_sub(lo) + 1) * pair.client_ips.len() as u64);
    }
    run.server_counters = ns_counters(&pair, &pair.server).since(&before_s);
    run.client_counters = ns_counters(&pair, &pair.client).since(&before_c);
    let stopped = procs::stop_server(server, super::step::STOP_GRACE);
    run.server_stats = stopped.stats;
    run.server_exit = stopped.exit;
    run.server_stderr_tail = stopped.stderr_tail;
    drop(server_cg);
    drop(client_cg);
    drop(pair);
    run.wall_s = started.elapsed().as_secs_f64();
    Some(run)
}
