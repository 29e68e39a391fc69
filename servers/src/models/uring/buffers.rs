//! The thread's provided-buffer pool: shared with the load generator's
//! io_uring engine, so it lives in `uring-kit` (see `uring_kit::buffers`).
//! The model uses the server's pool, `Pool::SERVER` (`Buffers::new`).

pub use uring_kit::buffers::{Buffers, GROUP};
