//! Why a load run could not be carried out (as opposed to errors *measured* in a
//! run, which are counted in the report: see [`crate::recorder::ErrorKind`]).

use std::path::PathBuf;

/// A run that could not start or could not write its output.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid arguments: {0}")]
    Invalid(String),
    #[error("cannot resolve {addr}: {source}")]
    Resolve { addr: String, source: std::io::Error },
    #[error("{addr} resolves to no address")]
    NoAddress { addr: String },
    #[error(
        "{conns} connections need about {needed} file descriptors but this process may open {limit} \
         (RLIMIT_NOFILE hard limit); use --procs {procs} to spread them over {procs} processes"
    )]
    TooManyConns { conns: u64, needed: u64, limit: u64, procs: u64 },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("cannot write {path}: {source}", path = path.display())]
    Output { path: PathBuf, source: std::io::Error },
    #[error("load generator process {index}: {message}")]
    Child { index: u32, message: String },
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bad histogram: {0}")]
    Histogram(String),
    #[error("--engine uring cannot run here: {0}; --engine mio can")]
    NoUring(String),
}

impl LoadError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        LoadError::Io { what: what.into(), source }
    }
}
