//! Child processes of the runner: spawned pinned to a CPU set, in their own
//! process group (so a terminal's Ctrl-C reaches only the runner, which then
//! stops them itself), with stdout read line by line and the tail of stderr kept.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Bytes of a child's stderr kept for the cell record.
const STDERR_TAIL: usize = 4 * 1024;

/// A running child with its output readers.
pub struct Spawned {
    pub child: Child,
    /// stdout, one line at a time, until EOF (the channel then disconnects).
    pub lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a child is started.
pub struct Launch<'a> {
    pub bin: &'a Path,
    pub args: Vec<String>,
    /// CPUs the child (and everything it forks or spawns) may run on; empty = inherit.
    pub cpus: &'a [usize],
    /// RLIMIT_NOFILE, soft and hard, set before exec.
    pub nofile: Option<u64>,
    /// `cgroup.procs` files the child joins before exec (see [`crate::cgroup`]).
    pub cgroup: &'a [std::ffi::CString],
}

/// How long `spawn` keeps retrying an executable that is still open for writing.
const TEXT_BUSY_RETRY: Duration = Duration::from_secs(1);

/// `cmd.spawn()`, retried while exec fails with `ETXTBSY`.
///
/// A program file that some process still holds open for writing cannot be
/// executed. That holds not only while it is being written: when another
/// thread forks while this process writes a file (a freshly built binary, a
/// test's script), the child inherits the descriptor until its own exec closes
/// it. The window is a few microseconds to milliseconds, so the spawn is
/// retried for up to [`TEXT_BUSY_RETRY`] (as Cargo and Go's `os/exec` tests do)
/// before the error is reported.
fn spawn_retrying(cmd: &mut Command) -> std::io::Result<Child> {
    let start = Instant::now();
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && start.elapsed() < TEXT_BUSY_RETRY => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Start `launch` in a new process group.
pub fn spawn(launch: &Launch<'_>) -> std::io::Result<Spawned> {
    let mut cmd = Command::new(launch.bin);
    cmd.args(&launch.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut set = nix::sched::CpuSet::new();
    for &cpu in launch.cpus {
        set.set(cpu).map_err(std::io::Error::from)?;
    }
    let pin = !launch.cpus.is_empty();
    let nofile = launch.nofile;
    let cgroup: Vec<std::ffi::CString> = launch.cgroup.to_vec();
    // SAFETY: the closure runs in the child between fork and exec; it only makes
    // system calls (prctl, sched_setaffinity, setrlimit, open/write/close) on values
    // prepared before the fork, allocates nothing and takes no lock, so it is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // If the runner dies (even by SIGKILL), the child is killed too: no server
            // outlives its bench. (Tied to the spawning thread, which runs the whole cell.)
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if pin {
                nix::sched::sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)?;
            }
            if let Some(n) = nofile {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n)
                    .map_err(std::io::Error::from)?;
            }
            // Join the cell's cgroup before exec, so every descendant is born inside it.
            for path in &cgroup {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let wrote = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if wrote != 1 {
                    return Err(err);
                }
            }
            Ok(())
        });
    }
    let mut child = spawn_retrying(&mut cmd)?;
    let (tx, lines) = crossbeam_channel::unbounded();
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        }));
    }
    if let Some(mut err) = child.stderr.take() {
        let tail = Arc::clone(&stderr);
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let Ok(mut t) = tail.lock() else { break };
                t.extend(&buf[..n]);
                let excess = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..excess);
            }
        }));
    }
    Ok(Spawned { child, lines, stderr, readers })
}

impl Spawned {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The last few KiB of stderr, lossily decoded.
    pub fn stderr_tail(&self) -> String {
        let bytes: Vec<u8> = self.stderr.lock().map(|t| t.iter().copied().collect()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).trim().to_string()
    }

    /// The exit status if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Wait for the next stdout line for at most `timeout`; `Err(true)` when stdout closed.
    pub fn next_line(&self, timeout: Duration) -> Result<String, bool> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(false),
            Err(RecvTimeoutError::Disconnected) => Err(true),
        }
    }

    /// Wait up to `limit` for the child to exit, polling; `None` if it is still running.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ask the process to stop (`SIGTERM` to it alone, as its contract says), wait
    /// `grace`, then `SIGKILL` its whole process group and any `extra` pids (tree
    /// members that left the group). Returns the exit status and whether it had to be killed.
    pub fn stop(&mut self, grace: Duration, extra: &[i32]) -> (Option<ExitStatus>, bool) {
        let pid = Pid::from_raw(self.pid());
        if self.exited().is_none() {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let status = self.wait_for(grace);
        let killed = status.is_none();
        self.kill_all(extra);
        let status = status.or_else(|| self.wait_for(Duration::from_secs(2)));
        (status, killed)
    }

    /// `SIGKILL` the process group and `extra`; never waits.
    pub fn kill_all(&mut self, extra: &[i32]) {
        let pid = Pid::from_raw(self.pid());
        // The group may be empty already (ESRCH): nothing to do then.
        let _ = killpg(pid, Signal::SIGKILL);
        for &p in extra {
            if p > 1 {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }

    /// Wait (bounded) for the output readers to reach EOF and return the remaining lines.
    pub fn finish(mut self) -> (Vec<String>, String) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut rest = Vec::new();
        while Instant::now() < deadline {
            match self.next_line(Duration::from_millis(50)) {
                Ok(line) => rest.push(line),
                Err(true) => break,
                Err(false) => {}
            }
        }
        // Let the readers reach EOF (the stderr tail is complete then), but not forever:
        // a reader still blocked (a grandchild kept the pipe open) is left behind.
        while Instant::now() < deadline && !self.readers.iter().all(|r| r.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        for r in self.readers.drain(..) {
            if r.is_finished() {
                let _ = r.join();
            }
        }
        let tail = self.stderr_tail();
        (rest, tail)
    }
}

/// Whether `status` is a plain success.
pub fn describe(status: Option<ExitStatus>) -> String {
    match status {
        None => "still running".into(),
        Some(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "unknown exit".into(),
        },
    }
}
