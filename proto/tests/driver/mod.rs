//! A model server driver for [`Session`], shared by the property tests
//! (`proto/tests/properties.rs`) and the cargo-fuzz targets (`fuzz/`).
//!
//! It does what every server model does (write what is pending, read only
//! while the session wants it, hand batches to a pool and give the answers
//! back), with the read sizes, write sizes and pool latency taken from a
//! [`Schedule`], and after every call into the session it checks the bounds
//! of [`Limits`]. Every loop is bounded: a session that stops making progress
//! is reported as a stall, one that needs more than [`MAX_STEPS`] steps as a
//! hang.

use proto::batch::Batch;
use proto::chat::{self, Command};
use proto::http::{self, Reply, Request};
use proto::{Proto, Session, Work, MAX_BODY, MAX_HEAD, OUTPUT_HIGH_WATER, READ_BUF_SIZE};

/// Driver steps before a run is declared hung.
pub const MAX_STEPS: usize = 2_000_000;

/// The longest answer a single HTTP request can get, computed from
/// [`http::answer`] over every reply and flag.
pub fn max_http_answer() -> usize {
    let mut longest = 0;
    for reply in Reply::HTTP {
        for bits in 0..8u8 {
            let request = Request { reply, head: bits & 1 != 0, keep_alive: bits & 2 != 0, http10: bits & 4 != 0 };
            let mut out = Vec::new();
            http::answer(&request, b"", &mut out);
            longest = longest.max(out.len());
        }
    }
    longest
}

/// The bounds a session keeps for a driver that reads at most
/// [`READ_BUF_SIZE`] bytes per call and only while the session
/// [`wants_read`](Session::wants_read). Every field is an exclusive maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// [`Session::buffered_input`] at any time.
    pub input: usize,
    /// [`Session::buffered_input`] whenever the session wants to read: at most
    /// one partial request is held then.
    pub input_while_reading: usize,
    /// `pending_output().len()` at any time.
    pub output: usize,
}

impl Limits {
    pub fn for_session(proto: Proto, deferred: bool) -> Limits {
        // A partial HTTP request is at most a head of MAX_HEAD bytes, or a
        // complete head (<= MAX_HEAD) and less than MAX_BODY bytes of body.
        let partial = MAX_HEAD + MAX_BODY;
        match (proto, deferred) {
            // Chat (never deferred): a partial line while reading; the rest of
            // a read besides, when framing paused at MAX_PENDING_COMMANDS; the
            // outbox up to its bound, plus the line that found it under the
            // bound (a room line or an error line, under two MAX_LINE).
            (Proto::Chat, _) => Limits {
                input: chat::MAX_LINE + READ_BUF_SIZE + 1,
                input_while_reading: chat::MAX_LINE + 1,
                output: chat::OUTBOX_BOUND + 2 * chat::MAX_LINE,
            },
            // Echo frames every byte it is given at once: nothing is held, and
            // one read's bytes at most go out on top of an output under the mark.
            (Proto::Echo, false) => {
                Limits { input: 1, input_while_reading: 1, output: OUTPUT_HIGH_WATER + READ_BUF_SIZE }
            }
            // Answers are added while below the high-water mark: one more
            // answer at most.
            (Proto::Http, false) => Limits {
                input: partial + READ_BUF_SIZE,
                input_while_reading: partial,
                output: OUTPUT_HIGH_WATER + max_http_answer(),
            },
            // Deferred: a request is framed only while the output plus what
            // the pending batch will answer (echo bytes, or the longest HTTP
            // answer per request, as `Batch` counts it) is under the mark, so
            // one batch's answers stay under OUTPUT_HIGH_WATER + one read; the
            // output can receive the answers of the batch out and of the next
            // one on top of an output just under the mark.
            (_, true) => Limits {
                input: if proto == Proto::Echo { 1 } else { partial + READ_BUF_SIZE },
                input_while_reading: if proto == Proto::Echo { 1 } else { partial },
                output: OUTPUT_HIGH_WATER + 2 * (OUTPUT_HIGH_WATER + READ_BUF_SIZE),
            },
        }
    }
}

/// Read sizes, write sizes and pool delays, each used in turn (cycled).
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Bytes offered per read call; clamped to `1..=READ_BUF_SIZE`.
    pub reads: Vec<usize>,
    /// Bytes the peer accepts per write call; 0 is a write that would block
    /// (if every entry is 0, each write takes one byte instead).
    pub writes: Vec<usize>,
    /// Driver steps a batch stays with the pool before its answers return.
    pub delays: Vec<u8>,
}

impl Schedule {
    /// Full reads, unlimited writes, an instant pool: the reference run.
    pub fn eager() -> Schedule {
        Schedule { reads: vec![READ_BUF_SIZE], writes: vec![usize::MAX], delays: vec![0] }
    }

    /// A schedule derived from fuzzer bytes: each byte gives a read size, a
    /// write size and a delay, from one byte up to a full buffer.
    pub fn from_seed(seed: &[u8]) -> Schedule {
        if seed.is_empty() {
            return Schedule::eager();
        }
        let size = |b: u8| -> usize {
            // Low 4 bits: a power of two up to 32 KiB; high bits: an offset.
            (1usize << (b & 0x0f)) + usize::from(b >> 4)
        };
        Schedule {
            reads: seed.iter().map(|&b| size(b)).collect(),
            writes: seed.iter().map(|&b| if b % 5 == 0 { 0 } else { size(b.rotate_left(3)) }).collect(),
            delays: seed.iter().map(|&b| b >> 5).collect(),
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every byte the session wrote, in order.
    pub output: Vec<u8>,
    pub answered: u64,
    pub errors: u64,
    /// The session said it is done (the connection would be closed).
    pub done: bool,
    /// Bytes of the stream the session was given before it stopped reading.
    pub fed: usize,
    /// Chat: the member was dropped as slow (its outbox passed the bound).
    pub slow: bool,
}

fn check(s: &Session, limits: &Limits, what: &str) {
    let input = s.buffered_input();
    let output = s.pending_output().len();
    assert!(input < limits.input, "after {what}: holds {input} input bytes, limit {}", limits.input);
    assert!(output < limits.output, "after {what}: holds {output} output bytes, limit {}", limits.output);
    if s.wants_read() {
        assert!(
            input < limits.input_while_reading,
            "after {what}: wants to read while holding {input} input bytes, limit {}",
            limits.input_while_reading
        );
    }
}

/// Drive a fresh session over `stream` with `schedule`, checking the bounds
/// after every call. With `close`, the peer closes (FIN) once the stream is
/// sent; the session must then finish. Panics on a broken bound, a stall or
/// a hang.
pub fn run(proto: Proto, deferred: bool, stream: &[u8], schedule: &Schedule, close: bool) -> Outcome {
    let work = Work::default();
    let limits = Limits::for_session(proto, deferred);
    let mut s = if deferred { Session::deferred(proto, work) } else { Session::new(proto, work) };
    let (mut reads, mut writes, mut delays) =
        (schedule.reads.iter().cycle(), schedule.writes.iter().cycle(), schedule.delays.iter().cycle());
    let never_writes = schedule.writes.iter().all(|&n| n == 0);
    let mut output = Vec::new();
    let mut fed = 0;
    let mut closed = false;
    let mut out: Option<(Batch, u8)> = None;
    for _ in 0..MAX_STEPS {
        let mut progress = false;
        // The pool: answers come back after the batch's delay. Like the
        // reactor, the driver then writes and reads, and hands out the next
        // batch last: with a delay of 1 or more the next steps write and read
        // while that batch is out.
        match out.take() {
            Some((batch, 0)) => {
                s.finish_batch(batch.answer(&work));
                check(&s, &limits, "finish_batch");
                progress = true;
            }
            Some((batch, delay)) => {
                out = Some((batch, delay - 1));
                progress = true;
            }
            None => {}
        }
        let pending = s.pending_output();
        if !pending.is_empty() {
            // A write of 0: the peer's window is full (EWOULDBLOCK), so the
            // driver goes on to read without calling consume_output.
            let n = if never_writes { 1 } else { *writes.next().unwrap_or(&usize::MAX) };
            let n = pending.len().min(n);
            if n > 0 {
                output.extend_from_slice(&pending[..n]);
                s.consume_output(n);
                check(&s, &limits, "consume_output");
            }
            progress = true;
        }
        if s.is_done() {
            assert!(out.is_none(), "done with a batch still out");
            return Outcome { output, answered: s.answered(), errors: s.errors(), done: true, fed, slow: s.is_slow() };
        }
        if s.wants_read() {
            if fed < stream.len() {
                let n = (*reads.next().unwrap_or(&READ_BUF_SIZE)).clamp(1, READ_BUF_SIZE).min(stream.len() - fed);
                s.receive(&stream[fed..fed + n]);
                fed += n;
                check(&s, &limits, "receive");
                progress = true;
            } else if close && !closed {
                s.peer_closed();
                closed = true;
                check(&s, &limits, "peer_closed");
                progress = true;
            }
        }
        if proto == Proto::Chat {
            // The room: every command answered at once with a line of its own
            // (the command as JSON), `quit` with `bye` and a close.
            let commands = s.take_commands();
            if !commands.is_empty() {
                check(&s, &limits, "take_commands");
                for command in commands {
                    match command {
                        Command::Invalid { message } => {
                            s.deliver(&chat::line::error(&message));
                        }
                        Command::LineTooLong => {
                            s.deliver(&chat::line::line_too_long());
                            s.close();
                        }
                        Command::Quit => {
                            s.deliver(&chat::line::bye());
                            s.close();
                        }
                        command => {
                            let mut line = serde_json::to_vec(&command).expect("a command serializes");
                            line.push(b'\n');
                            s.deliver(&line);
                        }
                    }
                    check(&s, &limits, "deliver");
                }
                s.commands_done();
                progress = true;
            }
        }
        if deferred && out.is_none() {
            if let Some(batch) = s.take_batch() {
                check(&s, &limits, "take_batch");
                out = Some((batch, *delays.next().unwrap_or(&0)));
                progress = true;
            }
        }
        if !progress {
            // Nothing to write, no batch out, nothing read: the session waits
            // for input. Fine while the peer may still send; a stall if the
            // peer has closed (it must finish) or the session will not read
            // although input is waiting.
            assert!(!closed, "stalled after the peer closed (wants_read {})", s.wants_read());
            assert!(fed == stream.len(), "stalled with {} stream bytes unsent", stream.len() - fed);
            assert!(!close, "stalled without closing");
            return Outcome { output, answered: s.answered(), errors: s.errors(), done: false, fed, slow: s.is_slow() };
        }
    }
    panic!("no end after {MAX_STEPS} steps");
}

/// `output` with every `Date` header value replaced by a fixed one, so that
/// answers made in different seconds compare equal.
pub fn normalize_dates(output: &[u8]) -> Vec<u8> {
    const KEY: &[u8] = b"\r\nDate: ";
    let len = proto::date::DATE_LEN;
    let mut out = output.to_vec();
    let mut at = 0;
    while at + KEY.len() + len <= out.len() {
        if &out[at..at + KEY.len()] == KEY {
            out[at + KEY.len()..at + KEY.len() + len].fill(b'D');
            at += KEY.len() + len;
        } else {
            at += 1;
        }
    }
    out
}

/// Run `stream` under `schedule` inline and deferred, and eagerly (one full
/// read at a time, unlimited writes) inline, and check that all three wrote
/// the same bytes and counted the same requests: how the bytes are split, how
/// fast the peer reads and whether answers are computed elsewhere change
/// nothing on the wire. Returns the inline run under `schedule`.
pub fn run_all(proto: Proto, stream: &[u8], schedule: &Schedule, close: bool) -> Outcome {
    let eager = run(proto, false, stream, &Schedule::eager(), close);
    let inline = run(proto, false, stream, schedule, close);
    let deferred = run(proto, true, stream, schedule, close);
    for (name, other) in [("inline", &inline), ("deferred", &deferred)] {
        assert!(
            normalize_dates(&other.output) == normalize_dates(&eager.output),
            "{name} run under the schedule wrote other bytes than the eager run ({} vs {} bytes)",
            other.output.len(),
            eager.output.len()
        );
        assert_eq!(other.done, eager.done, "{name}: done");
        assert_eq!(other.errors, eager.errors, "{name}: errors");
        if proto == Proto::Http {
            // Echo counts reads, not requests.
            assert_eq!(other.answered, eager.answered, "{name}: answered");
        }
    }
    if proto == Proto::Echo {
        assert_eq!(inline.output, stream, "echo writes back every byte in order");
        assert_eq!(inline.errors, 0);
    }
    inline
}

/// One fuzzer input, as the cargo-fuzz targets take it: the first byte's low
/// three bits say how many of the next bytes make the [`Schedule`]
/// ([`Schedule::from_seed`]), its bit 3 whether the peer closes at the end;
/// the rest is the stream, given to [`run_all`].
pub fn fuzz_one(proto: Proto, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let (seed, stream) = rest.split_at(usize::from(flags & 0x07).min(rest.len()));
    run_all(proto, stream, &Schedule::from_seed(seed), flags & 0x08 != 0);
}
