//! Ctrl-C (SIGINT), SIGTERM and SIGHUP set a flag; the runner checks it between
//! steps, stops the cell's processes itself and keeps the cells already done.
//! Children run in their own process groups, so a terminal's Ctrl-C reaches only
//! the runner.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::{BenchError, Result};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Install the handlers (idempotent).
pub fn install() -> Result<()> {
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe,
        // and replaces no handler another part of this process relies on.
        unsafe { sigaction(sig, &action) }
            .map_err(|source| BenchError::Sys { what: "install signal handler", source })?;
    }
    Ok(())
}

/// True once a stop was asked for.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Ask for a stop from inside the process (tests, time budget).
pub fn request_stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}
