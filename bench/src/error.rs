//! The errors of the bench crate: one enum, each variant with the context a
//! person needs to act on it (which file, which step).

use std::path::PathBuf;

/// Anything that stops `c10k bench` or `c10k report` as a whole. A cell that
/// fails is *not* an error: it is recorded in its cell file and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Reading or writing a file of the results folder.
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    /// A results file that does not parse (or has another schema version).
    #[error("cannot read {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// Serialising a results record.
    #[error("cannot serialise {what}: {source}")]
    Serialise { what: &'static str, source: serde_json::Error },
    /// Command-line values that do not make sense together.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// A system call of the runner itself (signals, affinity).
    #[error("{what}: {source}")]
    Sys { what: &'static str, source: nix::Error },
    /// Drawing a plot.
    #[error("plot {plot}: {reason}")]
    Plot { plot: String, reason: String },
    /// A results folder whose run did not finish: comparing it would read missing cells as changes.
    #[error("{0} is a partial results folder: {1}")]
    Partial(PathBuf, String),
    /// The results folder holds no cell at all.
    #[error("no cell results in {0}")]
    Empty(PathBuf),
}

impl BenchError {
    /// `map_err` helper for I/O on `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BenchError {
        let path = path.into();
        move |source| BenchError::Io { what, path, source }
    }
}

/// The crate's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
