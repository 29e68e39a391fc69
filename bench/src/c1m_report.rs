//! The C1M section of the report, its plots, and `C1M.md` (the section alone,
//! written into the C1M folder at the end of a run). Drawn only from the folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::c1m::fit::{self, KernelMethod, PerConn, StepMemory};
use crate::c1m::limits::{self, run_limits, step_limits};
use crate::c1m::record::{C1mResults, NsRun, StepRecord};
use crate::error::{BenchError, Result};
use crate::plots::draw::{self, Lines, Pt, HOLLOW_MEANS};
use crate::plots::Plot;
use crate::results::Outcome;
use crate::show::{bytes, lat, n};

const NM: &str = "not measured";

fn opt_bytes(v: Option<f64>) -> String {
    v.map_or(NM.into(), bytes)
}

fn per(v: Option<PerConn>) -> String {
    v.map_or(NM.into(), |p| format!("{}{}", bytes(p.bytes), if p.points == 1 { " (one step)" } else { "" }))
}

fn opt_lat(v: Option<f64>) -> String {
    v.map_or(NM.into(), lat)
}

/// Draw the C1M plots into `c.dir/plots/`; the plots written.
pub fn draw(c: &C1mResults) -> Result<Vec<Plot>> {
    let out = c.dir.join("plots");
    std::fs::create_dir_all(&out).map_err(BenchError::io("create", &out))?;
    let mut plots = Vec::new();
    let mib = 1024.0 * 1024.0;
    let mut mem_series = Vec::new();
    let mut lat_series = Vec::new();
    for model in c.models() {
        let steps = c.steps_of(&model);
        let mems: Vec<(&StepRecord, StepMemory)> =
            steps.iter().filter_map(|s| Some((*s, fit::step_memory(s)?))).collect();
        let pt = |s: &StepRecord, y: Option<f64>| {
            y.map(|y| Pt {
                x: s.conns as f64,
                y,
                lo: None,
                hi: None,
                hollow: !s.held_all() || s.alive.as_ref().is_some_and(|a| a.client_bound),
            })
        };
        for (what, f) in [
            ("server user space", (|m: &StepMemory| m.server_user) as fn(&StepMemory) -> Option<f64>),
            ("server kernel", |m| m.server_kernel),
            ("client kernel", |m| m.client_kernel),
            ("machine in use", |m| Some(m.machine)),
        ] {
            let pts: Vec<Pt> = mems.iter().filter_map(|(s, m)| pt(s, f(m).map(|v| v / mib))).collect();
            if !pts.is_empty() {
                mem_series.push((format!("{model}: {what}"), pts));
            }
        }
        for (what, f) in [
            (
                "probe p99 (closed loop)",
                (|s: &StepRecord| s.probe.as_ref().and_then(|p| p.p99_us)) as fn(&StepRecord) -> Option<f64>,
            ),
            ("alive check p99 (open loop)", |s| s.alive.as_ref().and_then(|a| a.p99_us)),
            ("client lateness p99", |s| s.alive.as_ref().and_then(|a| a.dispatch_lag_p99_us)),
        ] {
            let pts: Vec<Pt> = steps.iter().filter_map(|s| pt(s, f(s).map(|v| v / 1000.0))).collect();
            if !pts.is_empty() {
                lat_series.push((format!("{model}: {what}"), pts));
            }
        }
    }
    if !mem_series.is_empty() {
        let file = "c1m-memory.svg";
        draw::lines(
            &out.join(file),
            &Lines {
                title: "Memory above the step's baseline vs connections held",
                x_label: "connections held",
                y_label: "MiB",
                x_log: false,
                y_log: false,
                series: mem_series,
                hline: None,
            },
        )?;
        plots.push(Plot {
            file: file.into(),
            caption: format!(
                "C1M: memory above each step's own baseline at the plateau, by model: the server's user space \
                 (anonymous memory of its cgroup) and kernel memory (its cgroup's kernel objects and TCP buffers), the \
                 load generators' kernel memory, and the machine's memory in use (both ends); {HOLLOW_MEANS} \
                 (a step that did not hold every connection, or a client-bound alive check)"
            ),
        });
    }
    if !lat_series.is_empty() {
        let file = "c1m-p99.svg";
        draw::lines(
            &out.join(file),
            &Lines {
                title: "Latency while N connections are held",
                x_label: "connections held",
                y_label: "ms (log)",
                x_log: false,
                y_log: true,
                series: lat_series,
                hline: None,
            },
        )?;
        plots.push(Plot {
            file: file.into(),
            caption: format!(
                "C1M: p99 of the closed-loop probe (100 connections), of the alive check's one request per \
                 connection (open loop, from the scheduled time), and the load generator's own lateness (dispatch \
                 lag p99), against connections held; {HOLLOW_MEANS}"
            ),
        });
    }
    Ok(plots)
}

/// Where the two sides ran.
fn cpus(c: &C1mResults) -> String {
    match c.steps.iter().find(|s| !s.server_cpus.is_empty()) {
        Some(s) if s.server_cpus == s.client_cpus => format!("{} {:?}", crate::c1m::plan::UNPINNED, s.server_cpus),
        Some(s) => format!("the server pinned to CPUs {:?}, the load generators to {:?}", s.server_cpus, s.client_cpus),
        None => "no step ran".into(),
    }
}

fn setting(c: &C1mResults, key: &str) -> String {
    c.run.as_ref().and_then(|r| r.settings.iter().find(|(k, _)| k == key)).map_or("?".into(), |(_, v)| v.clone())
}

/// The section's Markdown; plots are linked as `plot_dir/FILE`.
pub fn section(c: &C1mResults, plots: &[Plot], plot_dir: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### One million connections (C1M)\n");
    let when = c.run.as_ref().map_or(String::new(), |r| {
        format!(
            " The run took {} (budget {}); load average before and after: {} / {}{}.",
            r.finished_unix_ms.map_or("an unknown time (not finished)".into(), |f| format!(
                "{} s",
                (f.saturating_sub(r.started_unix_ms)) / 1000
            )),
            humantime::format_duration(std::time::Duration::from_secs(r.budget_s as u64)),
            r.loadavg_before,
            if r.loadavg_after.is_empty() { "?" } else { &r.loadavg_after },
            if r.interrupted { "; interrupted, finished steps kept" } else { "" }
        )
    });
    let per_proc = c.run.as_ref().map_or(String::new(), |r| {
        format!(
            "{} connections per process (the hard RLIMIT_NOFILE of {} less what a process holds besides)",
            n(r.conns_per_proc as f64),
            n(r.nofile_hard as f64)
        )
    });
    let _ = writeln!(
        s,
        "From [`{link}`]({link}) (`make bench-c1m`). Each step starts a fresh server in as few processes as the \
         descriptor limit allows, {per_proc}; {}. The *alive check* opens \
         every connection and sends each one request every {} on a fixed open-loop schedule; its window is one \
         period, so it holds exactly one request per connection and a connection answered there is proven alive. \
         Meanwhile a *probe* of {} closed-loop connections measures latency. Beside every latency: the load \
         generator's own lateness (dispatch lag p99 of the alive check) and the time threads spent runnable but \
         waiting for a CPU (the load generators', from their reports; the server's, from `/proc/<pid>/task/*/schedstat` \
         over the probe's window): with dozens of processes on 2 cores, scheduling, not the model, can set the \
         latency. Memory is one snapshot mid-way through the probe's window less the step's own baseline.{when}\n",
        cpus(c),
        setting(c, "alive-period"),
        setting(c, "probe-conns"),
        link = c.link
    );
    if c.steps.is_empty() {
        let _ = writeln!(s, "The ladder was not run.\n");
    } else {
        ladder_table(&mut s, c);
        memory_table(&mut s, c);
        slopes_and_margin(&mut s, c);
    }
    for p in plots {
        let _ = writeln!(s, "**{}**\n\n![{}]({plot_dir}/{})\n", p.caption, p.caption, p.file);
    }
    t5_table(&mut s, c);
    s
}

fn ladder_table(s: &mut String, c: &C1mResults) {
    let _ = writeln!(
        s,
        "| model | connections | processes (server + load) | established / answered in the window | all established after | \
         probe p50 / p99 (req/s) | alive check p99 | client lateness p99 | run-queue wait: load generators (alive, probe) / server threads | limit met |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    for st in &c.steps {
        if let Outcome::Skipped { reason } = &st.outcome {
            let _ = writeln!(
                s,
                "| {} | {} | {} + {} | skipped: {reason} | | | | | | |",
                st.model,
                n(st.conns as f64),
                st.server_procs,
                st.client_procs
            );
            continue;
        }
        let a = st.alive.as_ref();
        let p = st.probe.as_ref();
        let held = a.map_or_else(
            || st.outcome.label(),
            |a| {
                let mut extra = Vec::new();
                if let Some(u) = a.unsent.filter(|u| *u > 0) {
                    extra.push(format!("{} not sent in time by the client", n(u as f64)));
                }
                if a.errors > 0 {
                    extra.push(format!("{} errors", n(a.errors as f64)));
                }
                if a.starved > 0 {
                    extra.push(format!("{} never answered", n(a.starved as f64)));
                }
                let extra = if extra.is_empty() { String::new() } else { format!(" ({})", extra.join(", ")) };
                format!("{} / {}{extra}", n(a.established as f64), n(a.requests.min(st.conns) as f64))
            },
        );
        let probe = p.map_or(format!("{NM} ({})", st.probe_exit), |p| {
            format!("{} / {} ({})", opt_lat(p.p50_us), opt_lat(p.p99_us), n(p.requests_per_sec))
        });
        let rq = format!(
            "{}, {} / {}",
            a.map_or(NM.into(), |a| format!("{:.1} s", a.client_run_queue_wait_s)),
            p.map_or(NM.into(), |p| format!("{:.1} s", p.client_run_queue_wait_s)),
            st.server_run_queue
                .map_or(NM.into(), |r| format!("{:.1} s over {:.0} s ({} threads)", r.wait_s, r.window_s, r.threads))
        );
        let limits = step_limits(st);
        let limit = match (limits.is_empty(), st.held_all()) {
            (true, true) => "none".into(),
            (true, false) => st.outcome.label(),
            (false, true) => {
                format!("met and recovered from (every connection held): {}", limits::sentence(&limits))
            }
            (false, false) => limits::sentence(&limits),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} + {} | {held} | {} | {probe} | {} | {} | {rq} | {} |",
            st.model,
            n(st.conns as f64),
            st.server_procs,
            st.client_procs,
            a.and_then(|a| a.all_established_s).map_or(NM.into(), |x| format!("{x:.1} s")),
            a.map_or(NM.into(), |a| opt_lat(a.p99_us)),
            a.map_or(NM.into(), |a| opt_lat(a.dispatch_lag_p99_us)),
            limit.replace('|', "/")
        );
    }
    let _ = writeln!(
        s,
        "\nEstablished, answered and \"all established after\" (from the first connect) come from the alive check's \
         report; a window request the client was too late to send before the window closed is its lateness, not the \
         server's, and is shown apart. A limit is named only from its evidence (error kinds \
         and messages, `accept_backoffs`, `ListenOverflows`, OOM kills, the load generator's own client-bound \
         verdict); \"none\" means no such counter moved.\n"
    );
}

fn memory_table(s: &mut String, c: &C1mResults) {
    let _ = writeln!(
        s,
        "| model | connections held | server user space | server kernel (of which TCP buffers) | load generators' user space | load generators' kernel | machine in use (above baseline) | machine in use / total |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let mut method = None;
    for st in &c.steps {
        let Some(m) = fit::step_memory(st) else { continue };
        method = Some(m.kernel_method);
        let pc = |v: Option<f64>| {
            v.map_or(NM.into(), |b| format!("{} ({} per connection)", bytes(b), bytes(b / m.conns.max(1) as f64)))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {} of {} |",
            st.model,
            n(m.conns as f64),
            pc(m.server_user),
            pc(m.server_kernel),
            opt_bytes(m.server_tcp),
            pc(m.client_user),
            pc(m.client_kernel),
            pc(Some(m.machine)),
            bytes(m.used_bytes as f64),
            bytes(m.total_bytes as f64)
        );
    }
    let how = match method {
        Some(KernelMethod::Cgroup) => "Kernel memory is each side's own: the server's cgroup (`memory.kmem.usage_in_bytes`: socket, file and epoll objects, page tables) plus its TCP buffers (`memory.kmem.tcp.usage_in_bytes`), and the same for the load generators' cgroup; the machine's figure is `MemTotal - MemAvailable` (both ends and everything else).",
        Some(KernelMethod::MachineHalf) => "No cgroup could be made, so the kernel's socket memory is the machine's (slab plus TCP buffer pages, `/proc/meminfo` and `/proc/net/sockstat`) split in halves: on loopback each connection is one socket at each end. User space is not measured without a cgroup.",
        None => "No step has both snapshots.",
    };
    let _ = writeln!(s, "\n{how}\n");
}

fn slopes_and_margin(s: &mut String, c: &C1mResults) {
    for model in c.models() {
        let steps = c.steps_of(&model);
        let sl = fit::slopes(&steps);
        let _ = writeln!(
            s,
            "- **{model}**, per connection (slope over the steps that held every connection): server {} user + {} kernel; load generators {} user + {} kernel; the machine {}.",
            per(sl.server_user),
            per(sl.server_kernel),
            per(sl.client_user),
            per(sl.client_kernel),
            per(sl.machine)
        );
        match fit::margin(&steps) {
            Some(m) => {
                let _ = writeln!(
                    s,
                    "  At {} connections (both ends on this machine) it used {} of {}: a margin of {} ({:.0}%){}.",
                    n(m.conns as f64),
                    bytes(m.used_bytes as f64),
                    bytes(m.total_bytes as f64),
                    bytes(m.margin_bytes() as f64),
                    100.0 * m.margin_bytes() as f64 / m.total_bytes.max(1) as f64,
                    m.more_conns.map_or(String::new(), |x| format!(
                        "; at the machine's slope, what was still available would hold about {} connections more",
                        n(x)
                    ))
                );
            }
            None => {
                let _ = writeln!(s, "  No step held every connection, so no margin is given.");
            }
        }
    }
    let _ = writeln!(s);
}

fn t5_table(s: &mut String, c: &C1mResults) {
    let Some(info) = &c.t5 else { return };
    let _ = writeln!(s, "### T5 in network namespaces\n");
    if let Some(why) = &info.unavailable {
        let _ = writeln!(s, "Not run: {why}.\n");
        return;
    }
    let _ = writeln!(s, "{}\n", info.design);
    let _ = writeln!(
        s,
        "| configuration | run | server RLIMIT_NOFILE | held at once / answered at least once / offered | req/s | p99 (connect p99) | client lateness p99 / run-queue wait | server CPU (per request) | errors | limit met |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut runs: Vec<&NsRun> = c.t5_runs.iter().collect();
    runs.sort_by_key(|r| (r.kind != "max-conns", r.rep, r.config.clone()));
    for r in runs {
        let l = r.load.as_ref();
        let _ = writeln!(
            s,
            "| {} | {} {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.config,
            r.kind,
            r.rep,
            n(r.server_nofile as f64),
            l.map_or(r.outcome.label(), |l| format!(
                "{} / {} / {}",
                r.held_peak().map_or(NM.into(), |h| n(h as f64)),
                n(l.served() as f64),
                n(l.conns as f64)
            )),
            l.map_or(NM.into(), |l| n(l.requests_per_sec)),
            l.map_or(NM.into(), |l| format!(
                "{} ({})",
                opt_lat(l.p99_us),
                opt_lat(l.connect_p99_us.or(l.reconnect_p99_us))
            )),
            l.map_or(NM.into(), |l| format!(
                "{} / {:.1} s",
                l.dispatch_lag_p99_us.map_or("closed loop".into(), lat),
                l.client_run_queue_wait_s
            )),
            match (r.cpu_util(), r.cpu_us_per_req()) {
                (Some(u), Some(p)) => format!("{:.0}% ({p:.1} us)", u * 100.0),
                (Some(u), None) => format!("{:.0}%", u * 100.0),
                _ => NM.into(),
            },
            l.map_or(NM.into(), |l| n(l.errors as f64)),
            Some(limits::sentence(&run_limits(r)))
                .filter(|x| !x.is_empty())
                .unwrap_or_else(|| "none".into())
                .replace('|', "/")
        );
    }
    let _ = writeln!(
        s,
        "\n\"Held at once\" is the server's peak of descriptors above those it had when ready (sampled every half \
         second): the connections it held concurrently. \"Answered at least once\" counts connections, over the whole \
         run, that got an answer, including reconnects after a failure.\n"
    );
}

/// After a run: draw the plots and write `DIR/C1M.md`; its path.
pub fn write_folder(dir: &Path) -> Result<PathBuf> {
    let mut c = C1mResults::load(dir)?;
    c.link = ".".into();
    let plots = draw(&c)?;
    let mut text =
        String::from("# C1M run\n\nGenerated by `c10k c1m`; `c10k report STDDIR --c1m THIS` puts it in REPORT.md.\n\n");
    text.push_str(&section(&c, &plots, "plots"));
    let t5 = crate::verdicts::c1m::t5(Some(&c), crate::verdicts::Verdict::not_measured("(no standard folder here)."));
    let _ = writeln!(text, "T5 read from these runs: **{}**.\n", t5.status.label());
    for e in &t5.evidence {
        let _ = writeln!(text, "- {e}");
    }
    let path = dir.join("C1M.md");
    std::fs::write(&path, text).map_err(BenchError::io("write", &path))?;
    Ok(path)
}
