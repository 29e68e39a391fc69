//! Probes: experiments that are not cells, because no server model can isolate
//! what their claim is about.
//!
//! - [`sendfile`]: C13, sendfile against read + write (no model serves files).
//! - [`pollers`]: T4 and C12, the cost of one readiness wait against the number of
//!   idle descriptors watched, on the reactor's own back ends, without the rest of
//!   a server around it.

pub mod pollers;
pub mod sendfile;

pub use sendfile::{
    load, path, run, save, MethodSummary, ProbeConfig, ProbeRun, SendfileProbe, METHODS, PROBE_SCHEMA, RUNS,
};
