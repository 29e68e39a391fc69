//! `deploy/` cannot rot unseen: the Kubernetes Indexed Job manifest is parsed
//! and held to what sharding needs (Indexed mode, completions = parallelism =
//! the N of `--shard`, the index from `JOB_COMPLETION_INDEX`, one start time for
//! every pod), and its command line is parsed by `c10k load`'s own arguments;
//! the ssh recipe must at least be valid bash.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use clap::Parser;
use serde_yaml::Value;

const MANIFEST: &str = include_str!("../../deploy/k8s/c10k-load-job.yaml");

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: loadgen::cli::LoadArgs,
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

#[test]
fn the_indexed_job_shards_the_load() {
    let job: Value = serde_yaml::from_str(MANIFEST).expect("the manifest is YAML");
    assert_eq!(job["kind"], "Job");
    assert_eq!(get(&job, &["spec", "completionMode"]), "Indexed");
    let completions = get(&job, &["spec", "completions"]).as_u64().expect("completions");
    assert_eq!(get(&job, &["spec", "parallelism"]).as_u64(), Some(completions), "parallelism = completions");
    let container = &get(&job, &["spec", "template", "spec", "containers"])[0];
    let env = container["env"].as_sequence().expect("env");
    let var = |name: &str| env.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no env {name}"));
    assert_eq!(var("SHARDS")["value"].as_str(), Some(completions.to_string().as_str()), "SHARDS = completions");
    assert_eq!(var("START_AT")["value"], "${START_AT}", "one start time, filled in for all pods");
    assert_eq!(
        get(var("JOB_COMPLETION_INDEX"), &["valueFrom", "fieldRef", "fieldPath"]),
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    let script = container["args"][0].as_str().expect("the shell command");
    for needle in ["--shard \"$JOB_COMPLETION_INDEX/$SHARDS\"", "--start-at \"$START_AT\"", "--hlog -"] {
        assert!(script.contains(needle), "no {needle} in {script}");
    }
    // The command as pod 2 runs it, through c10k load's own argument parser.
    let line = script
        .replace("$TARGET", var("TARGET")["value"].as_str().expect("TARGET"))
        .replace("$JOB_COMPLETION_INDEX", "2")
        .replace("$SHARDS", &completions.to_string())
        .replace("$START_AT", "1800000000000")
        .replace('"', "");
    let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with("2>")).collect();
    assert_eq!(&words[..3], &["exec", "c10k", "load"]);
    let cli = Cli::try_parse_from(&words[2..]).unwrap_or_else(|e| panic!("{e}"));
    let shard = cli.load.shard.expect("--shard");
    assert_eq!((shard.index, u64::from(shard.count)), (2, completions));
    assert_eq!(cli.load.start_at, Some(1_800_000_000_000));
}

#[test]
fn the_ssh_recipe_is_valid_bash() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/ssh/run-shards.sh");
    let out = std::process::Command::new("bash").args(["-n", script]).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
