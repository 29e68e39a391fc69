//! A ring, the submissions it has not taken yet, and the count of requests
//! still owned by the kernel.

use std::io;

use std::time::Duration;

use io_uring::types::{SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring};

/// Submission queue entries; the completion queue gets [`CQ_ENTRIES`].
const SQ_ENTRIES: u32 = 1024;
/// `IORING_ENTER_GETEVENTS` (`include/uapi/linux/io_uring.h`): run the
/// deferred completions and post them, even when waiting for none.
const ENTER_GETEVENTS: u32 = 1;
/// Room for a burst of completions (every connection's send, plus recvs)
/// before the kernel has to keep them on its overflow list.
const CQ_ENTRIES: u32 = 16 * 1024;

/// The ring with its submissions not yet accepted by it, and a count of
/// requests whose final completion has not been reaped.
pub struct Queue {
    pub ring: IoUring,
    /// Entries that did not fit in the submission queue, in order.
    backlog: Vec<squeue::Entry>,
    pub in_flight: usize,
}

impl Queue {
    /// A ring for the calling thread, with the cheapest task-running mode the
    /// kernel has: single-issuer with deferred task running (6.1), else
    /// cooperative (5.19), else plain.
    pub fn new() -> io::Result<Queue> {
        let modes: [fn(&mut io_uring::Builder); 3] = [
            |b| {
                b.setup_single_issuer().setup_defer_taskrun();
            },
            |b| {
                b.setup_coop_taskrun();
            },
            |_| {},
        ];
        let mut refused = None;
        for mode in modes {
            let mut builder = IoUring::builder();
            builder.setup_cqsize(CQ_ENTRIES);
            mode(&mut builder);
            match builder.build(SQ_ENTRIES) {
                Ok(ring) => return Ok(Queue { ring, backlog: Vec::new(), in_flight: 0 }),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(refused.expect("at least one mode was tried"))
    }

    /// Queue `entry` for the next submission.
    ///
    /// # Safety
    /// Whatever `entry` points to (buffers, descriptors) must stay valid and
    /// unmoved until its final completion is reaped.
    pub unsafe fn push(&mut self, entry: squeue::Entry) {
        self.in_flight += 1;
        // SAFETY: forwarded from the caller.
        if !self.backlog.is_empty() || unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.backlog.push(entry);
        }
    }

    /// Cancel the request `user_data`; the cancel itself completes as `note`.
    pub fn cancel(&mut self, user_data: u64, note: u64) {
        // SAFETY: a cancel request points to no memory.
        unsafe { self.push(opcode::AsyncCancel::new(user_data).build().user_data(note)) }
    }

    /// Submit what is queued and wait for at least one completion.
    pub fn wait(&mut self) -> io::Result<()> {
        self.submit_backlog()?;
        transient(self.ring.submit_and_wait(1)).map(drop)
    }

    /// Submit what is queued, and wait for a completion at most `timeout`
    /// (`None`: not at all, only run the completions the kernel deferred to
    /// this thread, so that [`Queue::reap`] finds them).
    pub fn wait_at_most(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.submit_backlog()?;
        let entered = match timeout {
            Some(t) => {
                let ts = Timespec::from(t);
                self.ring.submitter().submit_with_args(1, &SubmitArgs::new().timespec(&ts))
            }
            None => {
                let queued = self.ring.submission().len() as u32;
                // SAFETY: as `submit` does, with the flag it leaves out when it
                // waits for nothing: the count of entries the submission queue
                // holds, and no argument (a null pointer of size 0).
                unsafe { self.ring.submitter().enter::<libc::sigset_t>(queued, 0, ENTER_GETEVENTS, None) }
            }
        };
        match entered {
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(()),
            other => transient(other).map(drop),
        }
    }

    /// Move the backlog into the submission queue, submitting as it fills,
    /// until the kernel wants completions reaped before it takes more.
    fn submit_backlog(&mut self) -> io::Result<()> {
        let mut moved = 0;
        while moved < self.backlog.len() {
            {
                let mut sq = self.ring.submission();
                for entry in &self.backlog[moved..] {
                    // SAFETY: the entry came through `push`, whose caller vouched for it.
                    if unsafe { sq.push(entry) }.is_err() {
                        break;
                    }
                    moved += 1;
                }
            }
            if moved < self.backlog.len() && transient(self.ring.submit())? {
                break; // the kernel wants completions reaped first
            }
        }
        self.backlog.drain(..moved);
        Ok(())
    }

    /// Append every available completion to `batch` as (user_data, result, flags).
    pub fn reap(&mut self, batch: &mut Vec<(u64, i32, u32)>) {
        for cqe in self.ring.completion() {
            if !cqueue::more(cqe.flags()) {
                self.in_flight -= 1;
            }
            batch.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
    }
}

/// `Ok(true)` for an `io_uring_enter` error that only means "reap and retry".
pub fn transient(result: io::Result<usize>) -> io::Result<bool> {
    match result {
        Ok(_) => Ok(false),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => Ok(true),
        Err(e) => Err(e),
    }
}
