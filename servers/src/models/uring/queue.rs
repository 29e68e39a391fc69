//! The ring and its submissions: shared with the load generator's io_uring
//! engine, so it lives in `uring-kit` (see `uring_kit::queue`).

pub use uring_kit::queue::{transient, Queue};
