//! The echo session under libFuzzer, through `driver::fuzz_one` (shared with
//! `proto/tests/properties.rs`, which runs it on stable in `make test`): the
//! first byte picks the read/write/pool schedule and whether the peer closes,
//! the rest is the stream; inline, deferred and eager runs must stay within
//! the session's bounds and write the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::Proto;

#[allow(dead_code)]
#[path = "../../proto/tests/driver/mod.rs"]
mod driver;

fuzz_target!(|data: &[u8]| driver::fuzz_one(Proto::Echo, data));
