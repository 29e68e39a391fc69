//! `c10k load`: the run of one command line, by kind (a fixed count, a ramp, a
//! chat room, a `--procs` child), and its outputs (summary, `--json`, `--hlog`,
//! `--hgrm`, exit status). The arguments and their checks are [`crate::cli`].

use std::path::Path;
use std::process::ExitCode;

use proto::Proto;

use crate::cli::{config_from_args, Conns, LoadArgs};
use crate::config::Config;
use crate::error::LoadError;
use crate::run::{run_config, Outcome};
use crate::threads::install_stop_handler;

/// Run `c10k load`.
pub fn run(args: LoadArgs) -> Result<ExitCode, LoadError> {
    if args.internal_child {
        return crate::procs::child_main();
    }
    if args.proto == Proto::Chat {
        return crate::chat::run(&args);
    }
    if let Conns::Ramp { .. } = args.conns {
        install_stop_handler();
        return crate::ramp::run(&args);
    }
    let config = config_from_args(&args)?;
    install_stop_handler();
    let outcome = run_config(&config, !args.quiet)?;
    write_outputs(&args, &config, &outcome)?;
    let report = &outcome.report;
    if !report.passed {
        let first = report.errors.details.first();
        eprintln!(
            "c10k load: error rate {:.4}% exceeds --max-error-rate {}{}",
            report.errors.rate * 100.0,
            config.settings.max_error_rate,
            first
                .map(|d| format!(": {} ({} of {} connections)", d.message, d.conns, config.settings.conns))
                .unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, text: &str) -> Result<(), LoadError> {
    std::fs::write(path, text).map_err(|source| LoadError::Output { path: path.to_path_buf(), source })
}

fn write_outputs(args: &LoadArgs, config: &Config, outcome: &Outcome) -> Result<(), LoadError> {
    let report = &outcome.report;
    let stdout = Some(Path::new("-"));
    let json_to_stdout = args.json.as_deref() == stdout || args.hlog.as_deref() == stdout;
    if let Some(path) = &args.hlog {
        let mut text = Vec::new();
        crate::hlog::write(&mut text, config, &report.env, &outcome.recorder, &outcome.times)?;
        if args.hlog.as_deref() == stdout {
            to_stream(&mut std::io::stdout(), &String::from_utf8_lossy(&text));
        } else {
            std::fs::write(path, &text).map_err(|source| LoadError::Output { path: path.clone(), source })?;
        }
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(report)? + "\n";
        if args.json.as_deref() == stdout {
            to_stream(&mut std::io::stdout(), &text);
        } else {
            write_file(path, &text)?;
        }
    }
    if let Some(path) = &args.hgrm {
        write_file(path, &crate::hgrm::percentile_distribution(&outcome.recorder.corrected))?;
        if report.open_loop.is_some() {
            let text = crate::hgrm::percentile_distribution(&outcome.recorder.uncorrected);
            write_file(&crate::hgrm::uncorrected_path(path), &text)?;
        }
    }
    if !args.quiet {
        let text = crate::summary::render(report);
        if json_to_stdout {
            to_stream(&mut std::io::stderr(), &text);
        } else {
            to_stream(&mut std::io::stdout(), &text);
        }
    }
    Ok(())
}

/// Write to stdout or stderr; a reader that went away (`| head`) is not an error.
fn to_stream(stream: &mut impl std::io::Write, text: &str) {
    let _ = stream.write_all(text.as_bytes()).and_then(|()| stream.flush());
}
