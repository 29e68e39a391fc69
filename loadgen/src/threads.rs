//! The event-loop threads of one process: start them on their shares of the
//! connections, draw the progress line while they run, join them and merge what
//! they measured. Used by a single process ([`crate::run`]) and by each
//! `--procs` child ([`crate::procs`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::{Config, Share};
use crate::error::LoadError;
use crate::plan::{Live, Plan};
use crate::progress::Progress;
use crate::recorder::Recorder;

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

/// Asked once this process's connections have all been tried, when its gate
/// is shared with other processes: returns when the load starts (monotonic ns).
pub type GateKeeper<'a> = &'a (dyn Fn() -> u64 + Sync);

/// Drive `share` of the connections with `config.threads` threads of this
/// process, starting at `epoch`. With `gate_keeper`, the load starts when it
/// says (a `--procs` child), not as soon as this process's connections are open.
pub fn run_local(
    config: &Config,
    share: Share,
    (epoch, load_at): (u64, Option<u64>),
    progress: bool,
    gate_keeper: Option<GateKeeper<'_>>,
) -> Result<Recorder, LoadError> {
    let plan = Plan::new(config.clone(), epoch, load_at, &STOP, share.count, gate_keeper.is_some());
    let threads = config.settings.threads.min(u32::try_from(share.count).unwrap_or(u32::MAX)).max(1);
    let shares = share.split(threads);
    let lives: Vec<Live> = (0..threads).map(|_| Live::default()).collect();
    let bar = progress.then(|| Progress::new(config));
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (t, (&share, live)) in shares.iter().zip(&lives).enumerate() {
            let plan = &plan;
            let handle = std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn_scoped(scope, move || crate::engine::run_thread(plan, share, live))
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
        let opening = plan.opening_at_load.load(Ordering::Acquire);
        if opening > 0 {
            eprintln!("c10k load: --start-at came with {opening} connections of this process still opening");
        }
        join_and_merge("load thread", handles)
    })
}

/// Join every thread (a load thread, or the reader of a child process) and add
/// what each measured: the one place where the parts of a run are merged.
pub fn join_and_merge(
    what: &str,
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<Recorder, LoadError>>>,
) -> Result<Recorder, LoadError> {
    let mut merged = Recorder::merge_base();
    for handle in handles {
        let rec = handle.join().map_err(|_| LoadError::io(what, std::io::Error::other("panicked")))??;
        merged.merge(&rec).map_err(|e| LoadError::Histogram(format!("{e:?}")))?;
    }
    Ok(merged)
}
