//! Running a configuration: event-loop threads in this process (or child
//! processes, see [`crate::procs`]), the live progress line, merging what the
//! threads measured, and the report.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

use crate::clock::{now_ns, MS};
use crate::config::{Config, Share};
use crate::engine::{Engine, Live, Plan};
use crate::error::LoadError;
use crate::outcome::{self, Times};
use crate::recorder::Recorder;
use crate::report::Report;

/// Set by SIGINT/SIGTERM: end the measured window now and report.
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Make the first SIGINT or SIGTERM end the run early (with a report); a second
/// one kills as usual.
pub fn install_stop_handler() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe,
        // and it replaces no handler another part of the program relies on.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// A finished run: the report and the merged recorder behind it.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub recorder: Recorder,
}

/// Run `config` to the end and build its report. `progress` draws the live
/// line on stderr (only when stderr is a terminal).
pub fn run_config(config: &Config, progress: bool) -> Result<Outcome, LoadError> {
    let nofile = crate::env::raise_nofile();
    check_descriptors(config, nofile.1)?;
    let env = crate::env::environment(nofile);
    let started_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let progress = progress && std::io::stderr().is_terminal();
    let (epoch, recorder) = if config.procs > 1 {
        // Children need time to start before the common epoch.
        let epoch = now_ns() + 300 * MS;
        (epoch, crate::procs::run_children(config, epoch, progress)?)
    } else {
        let epoch = now_ns() + 5 * MS;
        let all = Share { first: 0, count: config.slots() };
        (epoch, run_local(config, all, epoch, progress, None)?)
    };
    let report = outcome::build(config, env, &recorder, Times { epoch, started_unix_ms });
    Ok(Outcome { report, recorder })
}

/// Fail early, with advice, when one process cannot hold its connections.
fn check_descriptors(config: &Config, hard: u64) -> Result<(), LoadError> {
    let procs = u64::from(config.procs);
    let per_proc = config.slots().div_ceil(procs);
    let overhead = crate::env::fd_overhead(config.threads);
    if per_proc + overhead <= hard {
        return Ok(());
    }
    let usable = hard.saturating_sub(overhead).max(1);
    Err(LoadError::TooManyConns {
        conns: config.slots(),
        needed: per_proc + overhead,
        limit: hard,
        procs: config.slots().div_ceil(usable).max(procs + 1),
    })
}

/// Asked once this process's connections have all been tried, when its gate
/// is shared with other processes: returns when the load starts (monotonic ns).
pub type GateKeeper<'a> = &'a (dyn Fn() -> u64 + Sync);

/// Drive `share` of the connections with `config.threads` threads of this
/// process, starting at `epoch`. With `gate_keeper`, the load starts when it
/// says (a `--procs` child), not as soon as this process's connections are open.
pub fn run_local(
    config: &Config,
    share: Share,
    epoch: u64,
    progress: bool,
    gate_keeper: Option<GateKeeper<'_>>,
) -> Result<Recorder, LoadError> {
    let plan = Plan::new(config.clone(), epoch, &STOP, share.count, gate_keeper.is_some());
    let threads = config.threads.min(u32::try_from(share.count).unwrap_or(u32::MAX)).max(1);
    let shares = share.split(threads);
    let lives: Vec<Live> = (0..threads).map(|_| Live::default()).collect();
    let bar = progress.then(|| Progress::new(config));
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (t, (&share, live)) in shares.iter().zip(&lives).enumerate() {
            let plan = &plan;
            let handle = std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn_scoped(scope, move || Engine::new(plan, share)?.run(live))
                .map_err(|e| LoadError::io("spawn thread", e))?;
            handles.push(handle);
        }
        if let (Some(keeper), true) = (gate_keeper, plan.external_gate) {
            let plan = &plan;
            let done = || lives.iter().all(|l| l.done.load(Ordering::Acquire));
            scope.spawn(move || {
                while !plan.ready.load(Ordering::Acquire) && !done() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                plan.release(keeper());
            });
        }
        while !lives.iter().all(|l| l.done.load(Ordering::Acquire)) {
            if handles.iter().all(|h| h.is_finished()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(if bar.is_some() { 200 } else { 20 }));
            if let Some(bar) = &bar {
                bar.update(&lives);
            }
        }
        if let Some(bar) = &bar {
            bar.finish();
        }
        let mut merged = Recorder::merge_base();
        for handle in handles {
            let rec = handle.join().map_err(|_| LoadError::io("load thread", std::io::Error::other("panicked")))??;
            merged.merge(&rec).map_err(|e| LoadError::Histogram(format!("{e:?}")))?;
        }
        Ok(merged)
    })
}

/// The live line: elapsed time, answers, rate, errors, open connections.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    /// The bar shows time (duration-bound run) rather than answers.
    by_time: bool,
    conns: u64,
    last: std::cell::Cell<(Instant, u64)>,
}

impl Progress {
    pub fn new(config: &Config) -> Self {
        let total = config.duration.map(|d| d + config.warmup);
        let bar = match total {
            Some(t) => ProgressBar::new(t.as_millis() as u64),
            None => ProgressBar::new(config.requests.unwrap_or(0)),
        };
        let style = ProgressStyle::with_template("{elapsed:>4} [{bar:20}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let now = Instant::now();
        Progress {
            bar,
            start: now,
            by_time: total.is_some(),
            conns: config.conns,
            last: std::cell::Cell::new((now, 0)),
        }
    }

    /// Redraw from the threads' published counters.
    pub fn update(&self, lives: &[Live]) {
        let sum = |f: fn(&Live) -> u64| lives.iter().map(f).sum::<u64>();
        let answers = sum(|l| l.answers.load(Ordering::Relaxed));
        self.show(answers, sum(|l| l.errors.load(Ordering::Relaxed)), sum(|l| l.open.load(Ordering::Relaxed)));
    }

    /// Redraw with these totals.
    pub fn show(&self, answers: u64, errors: u64, open: u64) {
        let now = Instant::now();
        let (then, before) = self.last.replace((now, answers));
        let dt = now.duration_since(then).as_secs_f64();
        let rate = if dt > 0.0 { answers.saturating_sub(before) as f64 / dt } else { 0.0 };
        self.bar.set_position(if self.by_time { self.start.elapsed().as_millis() as u64 } else { answers });
        self.bar.set_message(format!("{answers} answers, {rate:.0}/s, {errors} errors, {open}/{} open", self.conns));
    }

    /// Redraw the time only (the counts live in child processes).
    pub fn show_elapsed(&self, procs: u32) {
        if self.by_time {
            self.bar.set_position(self.start.elapsed().as_millis() as u64);
        }
        self.bar.set_message(format!("{procs} load generator processes, {} connections", self.conns));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
