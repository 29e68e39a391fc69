//! Probes: experiments that are not cells, because no server model can isolate
//! what their claim is about.
//!
//! - [`sendfile`]: C13, sendfile against read + write (no model serves files).
//! - [`pollers`]: T4 and C12, the cost of one readiness wait against the number of
//!   idle descriptors watched, on the reactor's own back ends, without the rest of
//!   a server around it.

pub mod pollers;
pub mod sendfile;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::results::{read_json, write_json};
use crate::Result;

/// `probes/NAME.json` of a results folder.
pub fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join("probes").join(format!("{name}.json"))
}

/// Read a probe's file from a results folder, if the run made one.
pub fn load_file<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>> {
    let p = file(dir, name);
    if p.exists() {
        read_json(&p).map(Some)
    } else {
        Ok(None)
    }
}

/// Write a probe's file into a results folder.
pub fn save_file<T: Serialize>(dir: &Path, name: &str, probe: &T) -> Result<()> {
    write_json(&file(dir, name), probe, "probe file")
}

pub use sendfile::{
    load, path, run, save, MethodSummary, ProbeConfig, ProbeRun, SendfileProbe, METHODS, PROBE_SCHEMA, RUNS,
};
