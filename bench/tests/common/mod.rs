//! Test doubles: a fake `c10k` (a bash script) whose server behaviour is chosen
//! by `--model`, and whose `load` copies a recorded load generator report.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bench::matrix::{self, Cell, Profile, Sizing};
use bench::runner::RunCtx;

/// A fresh temporary folder, removed by the caller (or left for inspection on failure).
pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("c10k-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Write the fake binary into `dir`. Its `load` sleeps `load_secs` then writes the fixture report.
///
/// Server behaviours (`--model`): `fail` exits 3 before the ready line; `hang`
/// never prints it; `stubborn` ignores SIGTERM; `forky` forks two children;
/// `die` exits 0.3 s after the ready line; anything else behaves. Its `load`
/// with `--rate` reports an open loop that fell short of 80,000 offered requests/s.
pub fn fake(dir: &Path, load_secs: f64) -> PathBuf {
    let report = fixtures().join("load-report.json");
    let saturated = fixtures().join("load-report-saturated.json");
    let script = format!(
        r#"#!/bin/bash
cmd=$1; shift
if [ "$cmd" = serve ]; then
  model=""
  while [ $# -gt 0 ]; do case $1 in --model) model=$2; shift;; esac; shift; done
  case $model in
    fail) echo "c10k: error: model fail cannot run here: no such back end" >&2; exit 3;;
    hang) for i in $(seq 1 300); do sleep 0.1 & wait $!; done; exit 0;;
  esac
  stats='stats {{"accepted":5,"answered":50,"listener_wakeups":7,"future_counter":1}}'
  if [ "$model" = stubborn ]; then trap '' TERM; else trap 'echo "$stats"; kill $(jobs -p) 2>/dev/null; exit 0' TERM; fi
  if [ "$model" = forky ]; then sleep 60 & sleep 60 & fi
  echo "listening 127.0.0.1:9 model=$model proto=http pid=$$ nofile=1024"
  if [ "$model" = die ]; then sleep 0.3; exit 9; fi
  for i in $(seq 1 300); do sleep 0.1 & wait $!; done
  exit 0
fi
if [ "$cmd" = load ]; then
  json=""
  report="{report}"
  while [ $# -gt 0 ]; do case $1 in --json) json=$2; shift;; --rate) report="{saturated}"; shift;; esac; shift; done
  sleep {load_secs}
  cp "$report" "$json"
  exit 0
fi
exit 2
"#,
        report = report.display(),
        saturated = saturated.display()
    );
    let path = dir.join("fake-c10k");
    std::fs::write(&path, script).expect("write fake");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod fake");
    path
}

/// The run context of the fake, with short timeouts.
pub fn ctx(bin: PathBuf, scratch: &Path) -> RunCtx {
    let cpus = bench::env::allowed_cpus();
    let mut ctx = RunCtx::new(bin, cpus.clone(), cpus, scratch.to_path_buf());
    // Long enough for bash to start on a busy machine, short enough for the `hang` case.
    ctx.ready_timeout = std::time::Duration::from_secs(3);
    ctx.stop_grace = std::time::Duration::from_millis(500);
    ctx
}

/// A quick-profile cell whose server behaves as `behaviour`.
pub fn cell(behaviour: &str) -> Cell {
    let sizing = Sizing { server_cpus: vec![0], client_cpus: vec![0] };
    let mut cell = matrix::plan(Profile::Quick, &sizing, &["reactor".into()], 1).remove(0);
    if let Some(i) = cell.server_args.iter().position(|a| a == "--model") {
        cell.server_args[i + 1] = behaviour.into();
    }
    cell.server.key = behaviour.into();
    cell.id = format!("test/{behaviour}/c100/rep1");
    cell.group = format!("test/{behaviour}/c100");
    cell
}

/// True if a process with this pid exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}
