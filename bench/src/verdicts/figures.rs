//! The documents' own figures that the checks compare with (what is claimed),
//! beside [`super::thresholds`] (how far a measurement may be from it).

/// C2: (16 + 87 + 20) KB per connection.
pub const C2_PER_CONN_BYTES: f64 = (16.0 + 87.0 + 20.0) * 1024.0;
/// C1: the smallest per-thread stack the documents name, bytes.
pub const C1_STACK_MIN_BYTES: f64 = 1024.0 * 1024.0;
/// T4: select's descriptor cap.
pub const FD_SETSIZE: u64 = 1024;
/// C7: the documents' times, seconds.
pub const C7_SINGLE_S: f64 = 3.0;
pub const C7_POOL_S: f64 = 1.0;
