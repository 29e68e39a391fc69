//! M11, multi-reactor + worker pool (004 §5.10): the multi-reactor (M9) whose
//! sub-reactors, instead of answering requests themselves, hand each
//! connection's framed requests to one pool of `--workers` threads shared by
//! all sub-reactors, and write the answers the pool posts back.
//!
//! I/O is spread over `--threads` loops and slow handlers (`--cpu-us`,
//! `--block-us`) occupy pool threads instead of stalling a loop: the most
//! flexible of the designs, and the one with the most hand-offs per request
//! (acceptor -> sub-reactor once per connection; sub-reactor -> pool -> sub-reactor
//! for every batch of requests).
//!
//! `--pool crossbeam|rayon` picks the pool as for M8 ([`crate::work_pool`]).
//!
//! Chat (`--proto chat`): the sub-reactors frame members' lines and hand their
//! commands to the pool, which serves them against the one `Mutex<Room>` and
//! posts the lines to the sub-reactors' inboxes, waking each with its `Waker`
//! ([`crate::chat::hub`], [`crate::chat::pool`]).

use crate::{Ctx, ServeError};

pub fn run(ctx: &Ctx) -> Result<(), ServeError> {
    super::multi_reactor::serve(ctx, Some(ctx.config.workers))
}
