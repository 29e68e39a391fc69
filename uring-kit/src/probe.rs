//! Can this kernel run io_uring, with the operations a caller needs? Asked
//! before anything starts, so that a refusal comes with its reason instead of
//! as a failed request later.

use io_uring::{IoUring, Probe};

/// Set up a small ring and check that the kernel supports `ops` (name, opcode);
/// the reason it cannot be used otherwise.
pub fn probe(ops: &[(&str, u8)]) -> Result<(), String> {
    let ring = IoUring::new(8).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::ENOSYS) => " (kernel built without io_uring)",
            Some(libc::EPERM | libc::EACCES) => " (refused: see sysctl kernel.io_uring_disabled, or a seccomp filter)",
            _ => "",
        };
        format!("io_uring_setup failed: {e}{hint}")
    })?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("cannot probe io_uring opcodes (Linux < 5.6?): {e}"))?;
    let missing: Vec<_> = ops.iter().filter(|(_, code)| !probe.is_supported(*code)).map(|(name, _)| *name).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("this kernel's io_uring lacks {} (Linux >= 5.7 needed)", missing.join(", ")))
    }
}
