//! The T3 and T5 rows a C1M folder measures, for the verdicts in
//! [`crate::verdicts::numeric`] (pure). Without a folder, or where the folder
//! lacks a row, each says "not measured" with the reason.

use super::thresholds::{CEILING_FACTOR, FLOOR_SHARE};
use super::{combine_status, judge, reading, Status, Verdict};
use crate::c1m::limits::{self, run_limits, step_limits};
use crate::c1m::record::{C1mResults, NsRun, SettingClass, StepRecord, T5Info};
use crate::show::{lat, n};
use crate::stats::Interval;

/// T5's latency, throughput and CPU rows move the documents' way when the
/// interval of the pair ratios (defaults over tuned, or tuned over defaults for
/// throughput) lies wholly above this. The documents claim 10x, 50x and 2.7x.
pub const T5_GAIN: f64 = 2.0;

/// Why a row is not measured when the report was given no C1M folder.
pub const NO_FOLDER: &str =
    "no C1M results folder was given to the report (`make bench-c1m`, then `c10k report DIR --c1m C1MDIR`)";

/// How a step reads: connections served (answered at least once) and answered in the window.
fn served(s: &StepRecord) -> Option<(u64, u64)> {
    let a = s.alive.as_ref()?;
    Some((a.served(), a.requests.min(s.conns)))
}

fn step_words(s: &StepRecord) -> String {
    match (&s.outcome, served(s)) {
        (crate::results::Outcome::Skipped { reason }, _) => {
            format!("{} connections: skipped ({reason})", n(s.conns as f64))
        }
        (_, Some((served, window))) => {
            let limit = limits::sentence(&step_limits(s));
            format!(
                "{} of {} connections served, {} answered in the window ({} processes){}",
                n(served as f64),
                n(s.conns as f64),
                n(window as f64),
                s.server_procs,
                if s.held_all() || limit.is_empty() { String::new() } else { format!("; stopped by {limit}") }
            )
        }
        (o, None) => format!("{} connections: {}", n(s.conns as f64), o.label()),
    }
}

/// T3 row "~claim connections" for `server` from the C1M ladder, read as T2/T3
/// read every row: at least [`FLOOR_SHARE`] of the claim served, and, where the
/// ladder offers [`CEILING_FACTOR`] x the claim, failing before that. `Err`: why not measured.
pub fn t3_row(c1m: Option<&C1mResults>, server: &str, claim: f64) -> Result<(Status, String), String> {
    let c = c1m.ok_or_else(|| NO_FOLDER.to_string())?;
    let steps = c.steps_of(server);
    if steps.is_empty() {
        return Err(format!("the C1M run ({}) did not include {server}", c.link));
    }
    let ran = |s: &&&StepRecord| !matches!(s.outcome, crate::results::Outcome::Skipped { .. }) && s.alive.is_some();
    let Some(at) = steps.iter().filter(ran).filter(|s| s.conns as f64 >= claim).min_by_key(|s| s.conns) else {
        let top = steps.iter().filter(ran).map(|s| s.conns).max();
        return Err(format!(
            "the C1M ladder of {server} did not reach {} ({})",
            n(claim),
            top.map_or("no step ran".into(), |t| format!("largest step run: {}", n(t as f64)))
        ));
    };
    let (got, _) = served(at).unwrap_or((0, 0));
    let far = CEILING_FACTOR * claim;
    let ceiling = steps
        .iter()
        .filter(ran)
        .filter(|s| s.conns as f64 >= far)
        .filter_map(|s| served(s))
        .map(|(s, _)| (s as f64) < far)
        .reduce(|a, b| a || b);
    let floor = got as f64 >= FLOOR_SHARE * claim;
    let (status, how) = match (floor, ceiling) {
        (false, _) => (Status::DoesNotHold, format!("below the floor of {}", n(FLOOR_SHARE * claim))),
        (true, Some(true)) => (Status::Holds, format!("holds: failed before {}", n(far))),
        (true, Some(false)) => (Status::DoesNotHold, format!("not a ceiling: served {} or more", n(far))),
        (true, None) => {
            (Status::Nuance, format!("holds as a floor; the ceiling test ({} offered) is beyond the ladder", n(far)))
        }
    };
    let ladder: Vec<String> = steps.iter().map(|s| step_words(s)).collect();
    Ok((status, format!("C1M ladder ({}): {}: {how}", c.link, ladder.join("; "))))
}

/// Where the standard ladder left a row's ceiling test open (`Status::Nuance`), the
/// C1M ladder may have offered [`CEILING_FACTOR`] x the claim: its reading, if so.
pub fn t3_ceiling(c1m: Option<&C1mResults>, server: &str, claim: f64) -> Option<(Status, String)> {
    let c = c1m?;
    let far = CEILING_FACTOR * claim;
    let s = c
        .steps_of(server)
        .into_iter()
        .filter(|s| s.conns as f64 >= far && s.alive.is_some())
        .min_by_key(|s| s.conns)?;
    let (got, _) = served(s)?;
    let words = step_words(s);
    Some(if (got as f64) < far {
        (
            Status::Holds,
            format!(
                "the C1M ladder ({}) offered {}: {words}: holds: failed before {}",
                c.link,
                n(s.conns as f64),
                n(far)
            ),
        )
    } else {
        (
            Status::DoesNotHold,
            format!("the C1M ladder ({}) offered {}: {words}: not a ceiling", c.link, n(s.conns as f64)),
        )
    })
}

/// T3's sentence about the rows past one process's descriptors.
pub fn t3_note(c1m: Option<&C1mResults>) -> String {
    match c1m {
        Some(c) => format!(
            "The 100,000 and 1,000,000 rows, and ceiling tests past the ladder, are read from the C1M run ({}): the \
             same models in as many processes as the descriptor limit needs, every connection proven alive by one \
             request in the window (see the C1M section).",
            c.link
        ),
        None => format!("The 100,000 and 1,000,000 rows are not measured: {NO_FOLDER}; a projection from memory per connection is given instead."),
    }
}

fn runs<'a>(c: &'a C1mResults, config: &str, kind: &str) -> Vec<&'a NsRun> {
    c.t5_runs.iter().filter(|r| r.config == config && r.kind == kind).collect()
}

/// Pair ratios `f(a) / f(b)` over repetitions of the short run, `a` and `b` configurations.
fn pair(c: &C1mResults, a: &str, b: &str, f: impl Fn(&NsRun) -> Option<f64>) -> Option<Interval> {
    let bs = runs(c, b, "short");
    let pairs: Vec<(f64, f64)> = runs(c, a, "short")
        .into_iter()
        .filter_map(|x| Some((f(x)?, f(bs.iter().find(|y| y.rep == x.rep)?)?)))
        .filter(|(_, y)| *y > 0.0)
        .collect();
    Interval::of_ratios(&pairs)
}

fn median(c: &C1mResults, config: &str, f: impl Fn(&NsRun) -> Option<f64>) -> Option<Interval> {
    Interval::of(&runs(c, config, "short").into_iter().filter_map(f).collect::<Vec<_>>())
}

/// A T5 row: what, the documents' figures, whether up is better, the figure, and how to show it.
type Row<'a> = (&'a str, &'a str, bool, &'a dyn Fn(&NsRun) -> Option<f64>, &'a dyn Fn(f64) -> String);

fn p99(r: &NsRun) -> Option<f64> {
    r.load.as_ref()?.p99_us
}
fn rps(r: &NsRun) -> Option<f64> {
    r.load.as_ref().map(|l| l.requests_per_sec).filter(|v| *v > 0.0)
}
fn cpu(r: &NsRun) -> Option<f64> {
    r.cpu_util()
}

/// T5: the namespace runs when the C1M folder has them; else the standard
/// folder's verdict (`standard`) with why the namespace rows are missing.
pub fn t5(c1m: Option<&C1mResults>, standard: Verdict) -> Verdict {
    let missing = |why: String| Verdict {
        why: format!("{} The namespace runs that measure every row: not measured, {why}.", standard.why),
        ..standard.clone()
    };
    let Some(c) = c1m else { return missing(NO_FOLDER.to_string()) };
    let Some(info) = &c.t5 else { return missing(format!("the C1M run ({}) did not run T5", c.link)) };
    if let Some(why) = &info.unavailable {
        return missing(format!("network namespaces could not be used here: {why}"));
    }
    if c.t5_runs.is_empty() {
        return missing(format!("the C1M run ({}) holds no T5 run", c.link));
    }
    let mut evidence = Vec::new();
    let mut parts = Vec::new();
    // Maximum connections: the per-process limit caps the defaults run, tuning lifts it.
    let max_of = |config: &str| runs(c, config, "max-conns").into_iter().next();
    if let (Some(d), Some(t)) = (max_of("defaults"), max_of("tuned")) {
        if let (Some(dh), Some(th), Some(tl)) = (d.held_peak(), t.held_peak(), &t.load) {
            let cap = d.server_nofile * u64::from(d.server_procs);
            let tuned_held = th.min(tl.served());
            let holds = dh <= cap && tuned_held as f64 >= FLOOR_SHARE * info.max_conns as f64;
            parts.push(if holds { Status::Holds } else { Status::DoesNotHold });
            let lim = |r: &NsRun| {
                let l = limits::sentence(&run_limits(r));
                if l.is_empty() {
                    String::new()
                } else {
                    format!("; {l}")
                }
            };
            evidence.push(format!(
                "max concurrent connections (documents 1,024 -> 100,000), {} offered: defaults (RLIMIT_NOFILE {} x {} \
                 server processes, at most {}) held {} at once{}; tuned (RLIMIT_NOFILE {}) held {} at once, {} of them \
                 answered{}",
                n(info.max_conns as f64),
                n(d.server_nofile as f64),
                d.server_procs,
                n(cap as f64),
                n(dh as f64),
                lim(d),
                n(t.server_nofile as f64),
                n(th as f64),
                n(tl.served() as f64),
                lim(t)
            ));
        }
    }
    let rows: [Row; 3] = [
        ("latency p99", "100 ms -> 10 ms", false, &p99, &|v| lat(v)),
        ("throughput", "1,000/s -> 50,000/s", true, &rps, &|v| format!("{}/s", n(v))),
        ("server CPU", "80% -> 30%", false, &cpu, &|v| format!("{:.0}%", v * 100.0)),
    ];
    for (what, docs, up, f, show) in rows {
        let (Some(d), Some(t)) = (median(c, "defaults", f), median(c, "tuned", f)) else { continue };
        // The documents' direction: tuned over defaults for throughput, defaults over tuned otherwise.
        let Some(ratio) = (if up { pair(c, "tuned", "defaults", f) } else { pair(c, "defaults", "tuned", f) }) else {
            continue;
        };
        parts.push(judge(&ratio, T5_GAIN, true));
        let bound = |config: &str| {
            let rs = runs(c, config, "short");
            let k = rs.iter().filter(|r| r.load.as_ref().is_some_and(|l| l.client_bound)).count();
            (k > 0).then(|| format!("{config} {k} of {}", rs.len()))
        };
        let bound: Vec<String> = ["defaults", "tuned"].into_iter().filter_map(bound).collect();
        let bound = if bound.is_empty() {
            String::new()
        } else {
            format!(
                " (the load generator was the bottleneck in {} runs: there the figure is its limit, not the server's)",
                bound.join(", ")
            )
        };
        evidence.push(format!(
            "{what} (documents {docs}), {} short-connection clients: defaults {} -> tuned {}: {}x {} per pair{}{bound}",
            n(info.short_conns as f64),
            d.show(show),
            t.show(show),
            ratio.show(|x| format!("{x:.2}")),
            if up { "higher" } else { "lower" },
            reading(&ratio, T5_GAIN, true)
        ));
    }
    // Beside the CPU row: CPU per request, which the documents' percentage hides.
    if let (Some(d), Some(t)) =
        (median(c, "defaults", NsRun::cpu_us_per_req), median(c, "tuned", NsRun::cpu_us_per_req))
    {
        evidence.push(format!(
            "server CPU per request: defaults {} -> tuned {}",
            d.show(|v| format!("{v:.1} us")),
            t.show(|v| format!("{v:.1} us"))
        ));
    }
    for r in runs(c, "defaults", "short").into_iter().chain(runs(c, "tuned", "short")).filter(|r| r.rep == 1) {
        let l = limits::sentence(&run_limits(r));
        if !l.is_empty() {
            evidence.push(format!("{} short run 1: {l}", r.config));
        }
    }
    evidence.push(settings_line(info));
    evidence.push(host_line(info));
    for e in &standard.evidence {
        evidence.push(format!("standard run (fd-limit workload, loopback): {e}"));
    }
    let why = format!(
        "Measured in network namespaces made for the run, the host's settings untouched. {} A row moves the \
         documents' way when the interval of its pair ratios lies wholly beyond {T5_GAIN}x (the documents claim 10x, \
         50x and 2.7x); the connection row holds when the defaults run stays within its descriptor limits and the \
         tuned run serves at least {FLOOR_SHARE} of {} (that row is a demonstration: the kernel enforces the limit). \
         The documents give no workload; the short-connection one is where their settings act (accept queue, source \
         ports, TIME_WAIT reuse).",
        info.design,
        n(info.max_conns as f64)
    );
    Verdict::new(combine_status(&parts), evidence, why)
}

fn settings_line(info: &T5Info) -> String {
    let of = |want: fn(&SettingClass) -> bool| {
        info.settings.iter().filter(|s| want(&s.class)).map(|s| s.key.clone()).collect::<Vec<_>>()
    };
    let written = of(|c| *c == SettingClass::PerNamespace);
    let global: Vec<String> = info
        .settings
        .iter()
        .filter_map(|s| match &s.class {
            SettingClass::Global { why } => Some(format!("{} ({why})", s.key)),
            SettingClass::Absent { why } => Some(format!("{} ({why})", s.key)),
            SettingClass::ProcessLimit { why, .. } => Some(format!("{} ({why})", s.key)),
            SettingClass::PerNamespace => None,
        })
        .collect();
    format!(
        "the documents' settings written in both namespaces: {}; not per namespace or not a sysctl, so not written: {}",
        written.join(", "),
        global.join("; ")
    )
}

fn host_line(info: &T5Info) -> String {
    if info.host_unchanged() {
        format!(
            "the host's values of all {} sysctls, read before and after the runs: unchanged",
            info.host_before.len()
        )
    } else {
        let changed: Vec<String> = info
            .host_before
            .iter()
            .filter_map(|(k, v)| {
                let after = info.host_after.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str()).unwrap_or("unread");
                (after != v).then(|| format!("{k}: {v} -> {after}"))
            })
            .collect();
        format!(
            "the host's values changed during the runs (not by this run's writes, which go to the namespaces only): {}",
            changed.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::c1m::fit::tests::step;
    use crate::c1m::record::{LoadFigures, Setting};

    fn folder(steps: Vec<StepRecord>) -> C1mResults {
        C1mResults { link: "results/c1m-x".into(), steps, ..C1mResults::default() }
    }

    #[test]
    fn t3_rows_from_the_ladder() {
        let c = folder(vec![step("tokio", 100_000, (0, 0), (0, 0), 1), step("tokio", 1_000_000, (0, 0), (0, 0), 1)]);
        let (s, line) = t3_row(Some(&c), "tokio", 100_000.0).expect("measured");
        assert_eq!(s, Status::DoesNotHold, "1,000,000 served: ~100,000 is not a ceiling ({line})");
        let (s, _) = t3_row(Some(&c), "tokio", 1_000_000.0).expect("measured");
        assert_eq!(s, Status::Nuance);
        assert!(t3_row(None, "tokio", 100_000.0).unwrap_err().contains("no C1M results folder"));
        assert!(t3_row(Some(&c), "reuseport", 100_000.0).unwrap_err().contains("did not include reuseport"));
        assert_eq!(t3_ceiling(Some(&c), "tokio", 10_000.0).map(|x| x.0), Some(Status::DoesNotHold));
        // A step that fell short names its limit and fails the floor.
        let mut short = step("tokio", 1_000_000, (0, 0), (0, 0), 1);
        if let Some(a) = short.alive.as_mut() {
            a.established = 900_000;
            a.starved = 100_000;
        }
        short.counters.listen_overflows = 7;
        let c = folder(vec![short]);
        let (s, line) = t3_row(Some(&c), "tokio", 1_000_000.0).expect("measured");
        assert_eq!(s, Status::DoesNotHold);
        assert!(line.contains("the accept backlog"), "{line}");
    }

    /// `(served, conns, p99, rps, cpu)` of one run.
    fn ns(config: &str, kind: &str, rep: u32, (served, conns, p99, rps, cpu): (u64, u64, f64, f64, f64)) -> NsRun {
        NsRun {
            server_nofile: if config == "defaults" { 1_024 } else { 20_000 },
            server_procs: 6,
            server_cpu_s: Some(cpu * 10.0),
            server_fds_base: Some(30),
            server_fds: Some(30 + served.min(if config == "defaults" { 6_100 } else { served })),
            window_s: Some(10.0),
            server_cpus: 1,
            load: Some(LoadFigures {
                conns,
                established: conns,
                starved: conns - served,
                p99_us: Some(p99),
                requests_per_sec: rps,
                answers_in_window: (rps * 10.0) as u64,
                ..LoadFigures::default()
            }),
            ..NsRun::new(config, kind, rep)
        }
    }

    #[test]
    fn t5_reads_the_namespace_runs() {
        let standard = Verdict::new(Status::Nuance, vec!["fd-limit line".into()], "Only the first row.");
        let mut c = folder(vec![]);
        assert!(t5(Some(&c), standard.clone()).why.contains("did not run T5"));
        assert!(t5(None, standard.clone()).why.contains("no C1M results folder"));
        c.t5 = Some(T5Info {
            settings: vec![Setting {
                key: "net.core.somaxconn".into(),
                value: "65536".into(),
                class: SettingClass::PerNamespace,
            }],
            host_before: vec![("net.core.somaxconn".into(), "4096".into())],
            host_after: vec![("net.core.somaxconn".into(), "4096".into())],
            max_conns: 100_000,
            short_conns: 1_000,
            ..T5Info::default()
        });
        c.t5_runs = vec![
            ns("defaults", "max-conns", 1, (6_100, 100_000, 0.0, 0.0, 0.0)),
            ns("tuned", "max-conns", 1, (100_000, 100_000, 0.0, 0.0, 0.0)),
        ];
        for rep in 1..=3 {
            c.t5_runs.push(ns("defaults", "short", rep, (1_000, 1_000, 900_000.0, 2_500.0, 0.3)));
            c.t5_runs.push(ns("tuned", "short", rep, (1_000, 1_000, 30_000.0, 9_000.0, 0.9)));
        }
        let v = t5(Some(&c), standard);
        // Connections hold, latency and throughput move the documents' way, CPU does not: nuance.
        assert_eq!(v.status, Status::Nuance, "{v:#?}");
        assert!(v.evidence.iter().any(|e| e.contains("unchanged")));
        assert!(v.evidence.iter().any(|e| e.starts_with("standard run")));
        assert!(
            v.evidence.iter().any(|e| e.contains("throughput") && e.contains("3.60 (3.60-3.60, n=3)x higher")),
            "{:#?}",
            v.evidence
        );
    }
}
