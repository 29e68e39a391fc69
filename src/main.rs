//! `c10k`: one CLI over the server models, the load generator and the bench runner.
//!
//! Thin on purpose: each subcommand's arguments and behaviour live in its crate
//! (`servers`, `loadgen`, `bench`); this file only dispatches and turns errors
//! into a message and an exit status.

use std::process::ExitCode;

use clap::Parser;

// Parsed once per process: the size of the largest variant (load's arguments) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Parser)]
#[command(name = "c10k", version, about = "Server concurrency models at ten thousand connections, measured")]
enum Command {
    /// Run one server model until SIGINT/SIGTERM.
    Serve(servers::cli::ServeArgs),
    /// List the server models, their ids in the documents, and their trade-offs.
    Models,
    /// Drive a server with many connections and record latency.
    Load(loadgen::cli::LoadArgs),
    /// Merge the --hlog interval logs of several load runs (shards) exactly.
    Merge(loadgen::merge::MergeArgs),
    /// Run the benchmark matrix and write results and REPORT.md.
    Bench(bench::cli::BenchArgs),
    /// Regenerate plots and REPORT.md from a results folder, without re-running.
    Report(bench::cli::ReportArgs),
    /// Differences between two results folders, cell by cell and verdict by verdict.
    Compare(bench::cli::CompareArgs),
    /// Store a results folder's cell files gzip-compressed (what `bench` writes now).
    Compress(bench::cli::CompressArgs),
    /// Probes that are not cells: sendfile (claim C13), pollers (T4, C12).
    Probe(bench::cli::ProbeArgs),
    /// C1M: up to 1,000,000 connections with memory per connection (both halves), and T5 in network namespaces.
    C1m(bench::c1m_run::C1mArgs),
}

fn main() -> ExitCode {
    let outcome = match Command::parse() {
        Command::Serve(args) => servers::cli::run(args).map_err(anyhow::Error::from),
        Command::Models => {
            servers::cli::print_models();
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => loadgen::command::run(args).map_err(anyhow::Error::from),
        Command::Merge(args) => loadgen::merge::run(args).map_err(anyhow::Error::from),
        Command::Bench(args) => bench::cli::run_bench(args).map_err(anyhow::Error::from),
        Command::Report(args) => bench::cli::run_report(args).map_err(anyhow::Error::from),
        Command::Compare(args) => bench::cli::run_compare(args).map_err(anyhow::Error::from),
        Command::Compress(args) => bench::cli::run_compress(args).map_err(anyhow::Error::from),
        Command::Probe(args) => bench::cli::run_probe(args).map_err(anyhow::Error::from),
        Command::C1m(args) => bench::c1m_run::run_c1m(args).map_err(anyhow::Error::from),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("c10k: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
