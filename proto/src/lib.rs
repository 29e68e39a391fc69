//! The wire, shared by every server model and by the load generator.
//!
//! A model differs from another only in how it schedules connections, never in
//! parsing, buffer sizes or answers. Everything that touches bytes lives here,
//! written sans-IO so that a blocking thread, a reactor, a tokio task and an
//! io_uring loop all drive the very same code.
//!
//! # Layout
//!
//! - [`session`]: one connection's protocol state: bytes in, answers out, when
//!   to stop reading and when to close. Every server model drives a [`Session`].
//! - [`http`]: server-side HTTP/1.1 framing (httparse) and the canned answers.
//! - [`batch`]: requests framed on one thread and answered on another (M8, M11).
//! - [`chat`]: the chat room's JSON lines (document 002 §5), parsed and written.
//! - [`work`]: the simulated per-request work (`--cpu-us`, `--block-us`).
//! - [`client`]: the load generator's side: requests to send, answers to check.
//! - [`date`]: the `Date` header, cached per thread and refreshed each second.

pub mod batch;
pub mod chat;
pub mod client;
pub mod date;
pub mod http;
pub mod session;
pub mod work;

pub use http::{Reply, Request};
pub use session::Session;
pub use work::Work;

/// Bytes asked of the kernel per read call, in every model (and the load generator).
pub const READ_BUF_SIZE: usize = 16 * 1024;

/// A connection stops reading while this many answer bytes wait to be written:
/// a client that sends but never reads cannot make a server buffer without limit.
pub const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// The most memory a client that sends without ever reading may add to a
/// server, beyond what an idle connection of the model costs (a thread, a
/// process): 160 KiB. `tests/hostile.rs` holds every model to it, measured as
/// the growth of the server's anonymous memory, with 25% margin:
///
/// - the output bound, [`OUTPUT_HIGH_WATER`], and the answer that crossed it
///   (the reactor + pool models count each framed request's answer against it
///   before it is computed);
/// - input held back meanwhile, up to three reads ([`READ_BUF_SIZE`] each): the
///   rest of the read that crossed the mark, and what io_uring's capped
///   multishot receive may still deliver after it (up to two reads);
/// - a blocking model's read buffer on its thread's stack (one read);
/// - 32 KiB of bookkeeping: allocator slack, the slab entry, stack pages.
///
/// A `fork` child pays more for the same buffers (its allocations copy the
/// parent's heap pages they land on, and what it frees serves no other
/// connection); the test allows it 64 KiB more.
pub const CONN_MEMORY_BOUND: usize = OUTPUT_HIGH_WATER + 4 * READ_BUF_SIZE + 32 * 1024;

/// Largest HTTP request head (request line and headers) a server accepts; a longer
/// one is answered `431` and the connection closed.
pub const MAX_HEAD: usize = 8 * 1024;

/// Largest request body a server accepts (`413` beyond).
pub const MAX_BODY: usize = 64 * 1024;

/// The application protocol spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// Every byte read is written back, in order.
    Echo,
    /// HTTP/1.1 with keep-alive and pipelining; `GET /` answers `Hello, World!`.
    Http,
    /// A chat room of JSON lines (document 002 §5): join, message, private,
    /// list_users, quit; only on models that can share a room between connections.
    Chat,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Echo => "echo",
            Proto::Http => "http",
            Proto::Chat => "chat",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
