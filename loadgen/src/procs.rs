//! `--procs P`: the connections spread over P load generator processes, for
//! more connections than one process may open.
//!
//! The parent re-executes its own binary as `c10k load --internal-child`, hands
//! each child a [`ChildSpec`] (the configuration, its share of the connection
//! indices, a common start time) as a line of JSON on stdin, opens the load in
//! all children at once when all have their connections open (`ready` / `go`
//! lines), and reads back the child's raw measurements ([`WireRecorder`]:
//! counters and V2-serialized histograms) from its stdout. The parent adds the histograms, which is exact, and writes
//! the same report as a single process would. Children get `SIGKILL` when the
//! parent dies (`PR_SET_PDEATHSIG`), so none outlives a killed run.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::now_ns;
use crate::config::{Config, Share};
use crate::error::LoadError;
use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::threads::{join_and_merge, run_local};
use crate::wire::WireRecorder;

/// What a child is told to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildSpec {
    pub config: Config,
    /// Its connections (global indices, for the schedule and source addresses).
    pub share: Share,
    /// Common start, monotonic nanoseconds.
    pub epoch: u64,
    /// `--start-at`: when the load starts, monotonic nanoseconds.
    pub load_at: Option<u64>,
}

/// Run the children and merge what they measured.
///
/// Without `--connect-rate` the children open their connections first and say
/// `ready` on stdout; when all have, the parent writes `go <monotonic ns>` to
/// every child's stdin, so that the load (and the measured window) starts at
/// the same instant in all of them: no child loads the server while another
/// is still connecting.
pub fn run_children(
    config: &Config,
    (epoch, load_at): (u64, Option<u64>),
    progress: bool,
) -> Result<Recorder, LoadError> {
    let exe = std::env::current_exe().map_err(|e| LoadError::io("find own executable", e))?;
    let parent = std::process::id();
    // With --start-at every child starts the load at that instant by itself.
    let shared_gate = config.settings.connect_rate.is_none() && load_at.is_none();
    let shares = config.driven().split(config.settings.procs);
    let mut children = Vec::new();
    let mut stdins = Vec::new();
    for (index, &share) in shares.iter().enumerate() {
        let mut cmd = Command::new(&exe);
        cmd.args(["load", "--internal-child"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        // SAFETY: between fork and exec only async-signal-safe calls are made
        // (prctl, getppid, _exit), and nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                // The parent may have died before the line above took effect.
                if std::os::unix::process::parent_id() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| LoadError::io(format!("start {}", exe.display()), e))?;
        let spec = ChildSpec { config: config.clone(), share, epoch, load_at };
        // One line of JSON (serde_json writes no newline inside).
        let mut text = serde_json::to_vec(&spec)?;
        text.push(b'\n');
        let mut stdin =
            child.stdin.take().ok_or_else(|| LoadError::io("child stdin", std::io::Error::other("none")))?;
        stdin.write_all(&text).map_err(|e| LoadError::io("hand a child its work", e))?;
        stdins.push(stdin);
        children.push((index as u32, child));
    }
    let bar = progress.then(|| Progress::new(config));
    let (ready_tx, ready_rx) = mpsc::channel::<u32>();
    std::thread::scope(|scope| {
        let readers: Vec<_> = children
            .into_iter()
            .map(|(index, mut child)| {
                let ready_tx = ready_tx.clone();
                scope.spawn(move || -> Result<Recorder, LoadError> {
                    let mut out = String::new();
                    if let Some(stdout) = child.stdout.take() {
                        let mut stdout = BufReader::new(stdout);
                        if shared_gate {
                            let mut line = String::new();
                            let _ = stdout.read_line(&mut line);
                            // Ready, or dead (EOF): either way, nothing to wait for.
                            let _ = ready_tx.send(index);
                            if line.trim() != "ready" {
                                out.push_str(&line);
                            }
                        }
                        stdout.read_to_string(&mut out).map_err(|e| LoadError::io("read a child's result", e))?;
                    }
                    let status = child.wait().map_err(|e| LoadError::io("wait for a child", e))?;
                    if !status.success() {
                        return Err(LoadError::Child { index, message: format!("exited with {status}") });
                    }
                    let wire: WireRecorder = serde_json::from_str(&out)
                        .map_err(|e| LoadError::Child { index, message: format!("unreadable result: {e}") })?;
                    wire.into_recorder()
                })
            })
            .collect();
        drop(ready_tx);
        if shared_gate {
            // Every reader sends once (or drops its sender when it ends).
            let ready = ready_rx.iter().take(readers.len()).count();
            let go = now_ns();
            for stdin in &mut stdins {
                let _ = writeln!(stdin, "go {go}").and_then(|()| stdin.flush());
            }
            if ready < readers.len() {
                eprintln!("c10k load: {} of {} processes never got ready", readers.len() - ready, readers.len());
            }
        }
        drop(stdins);
        while !readers.iter().all(|r| r.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            if let Some(bar) = &bar {
                if now_ns() >= epoch {
                    bar.show_elapsed(config.settings.procs);
                }
            }
        }
        if let Some(bar) = &bar {
            bar.finish();
        }
        join_and_merge("child reader", readers)
    })
}

/// The child's side: read the spec line from stdin, open the connections, say
/// `ready` and wait for `go` (see [`run_children`]), run, write the result.
pub fn child_main() -> Result<ExitCode, LoadError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| LoadError::io("read the child spec", e))?;
    let spec: ChildSpec = serde_json::from_str(&line)?;
    crate::env::raise_nofile();
    let keeper = || -> u64 {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"ready\n").and_then(|()| out.flush());
        drop(out);
        let mut go = String::new();
        // No answer (the parent is gone): start now.
        let _ = std::io::stdin().lock().read_line(&mut go);
        go.trim().strip_prefix("go ").and_then(|t| t.parse().ok()).unwrap_or_else(now_ns)
    };
    let recorder = run_local(&spec.config, spec.share, (spec.epoch, spec.load_at), false, Some(&keeper))?;
    let out = serde_json::to_string(&WireRecorder::from_recorder(&recorder))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| LoadError::io("write the result", e))?;
    Ok(ExitCode::SUCCESS)
}
