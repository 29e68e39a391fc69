//! Property tests of the sans-IO sessions (issue 14, item 3: fuzzed parsing).
//!
//! Every case drives sessions through `driver::run`, which checks after each
//! call into a session that it holds no more than its bounds (see
//! `driver::Limits`):
//!
//! - inline echo: no input held, output under `OUTPUT_HIGH_WATER + READ_BUF_SIZE`;
//! - inline HTTP: input under `MAX_HEAD + MAX_BODY` whenever the session wants
//!   to read (one partial request) and under that plus `READ_BUF_SIZE` at any
//!   time, output under `OUTPUT_HIGH_WATER` + the longest single answer;
//! - deferred (reactor + pool) sessions: the same input bounds, output under
//!   `3 * OUTPUT_HIGH_WATER + 2 * READ_BUF_SIZE` (an output just under the
//!   mark, plus the answers of the batch out and of the next one).
//!
//! and `driver::run_all` checks that the bytes written do not depend on how the
//! input is split, how fast the peer reads, or whether answers are computed on
//! another thread (inline, deferred and an eager reference run agree).
//!
//! Case counts are set explicitly per test (not from `PROPTEST_CASES`) so that
//! the whole file takes well under 20 s in a debug build on two cores.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod driver;

use driver::{normalize_dates, run_all, Schedule};
use proptest::collection::vec;
use proptest::prelude::*;
use proto::http::{self, Reply, Request};
use proto::{Proto, Session, Work, MAX_BODY, MAX_HEAD, READ_BUF_SIZE};

// ---- schedules -------------------------------------------------------------

/// Read sizes, write sizes (0: the peer is not reading) and pool delays, from
/// one byte to unlimited.
fn schedule() -> impl Strategy<Value = Schedule> {
    let read = prop_oneof![1usize..16, 16usize..1024, 1024usize..=READ_BUF_SIZE, Just(READ_BUF_SIZE)];
    let write = prop_oneof![Just(0), 1usize..64, 64usize..4096, 4096usize..100_000, Just(usize::MAX)];
    (vec(read, 1..6), vec(write, 1..6), vec(0u8..4, 1..4)).prop_map(|(reads, writes, delays)| Schedule {
        reads,
        writes,
        delays,
    })
}

/// The same without the tiny sizes, for streams and outputs of hundreds of KiB
/// (a one-byte writer would need a step per byte).
fn bulk_schedule() -> impl Strategy<Value = Schedule> {
    let read = prop_oneof![256usize..4096, 4096usize..=READ_BUF_SIZE, Just(READ_BUF_SIZE)];
    let write = prop_oneof![Just(0), 32usize..512, 512usize..8192, 8192usize..100_000, Just(usize::MAX)];
    (vec(read, 1..6), vec(write, 1..6), vec(0u8..6, 1..4)).prop_map(|(reads, writes, delays)| Schedule {
        reads,
        writes,
        delays,
    })
}

// ---- well-formed requests --------------------------------------------------

/// A request the server answers without closing (unless `close`).
#[derive(Clone, Debug)]
struct Good {
    method: &'static str,
    path: &'static str,
    http10: bool,
    host: Option<&'static str>,
    /// Say `Connection: keep-alive` on HTTP/1.1 too (it changes nothing).
    say_keep_alive: bool,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send `Content-Length` twice (with the same value: allowed).
    repeat_length: bool,
    close: bool,
}

impl Good {
    fn encode(&self, out: &mut Vec<u8>) {
        let version = if self.http10 { "1.0" } else { "1.1" };
        out.extend_from_slice(format!("{} {} HTTP/{version}\r\n", self.method, self.path).as_bytes());
        if let Some(host) = self.host {
            out.extend_from_slice(format!("{host}: example\r\n").as_bytes());
        }
        for (name, value) in &self.extra {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.http10 || self.say_keep_alive {
            out.extend_from_slice(b"Connection: Keep-Alive\r\n");
        }
        if !self.body.is_empty() || self.repeat_length {
            let copies = if self.repeat_length { 2 } else { 1 };
            for _ in 0..copies {
                out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// What the server must frame this request as.
    fn expected(&self) -> Request {
        let path = self.path.split_once('?').map_or(self.path, |(p, _)| p);
        let reply = match (self.method, path) {
            ("GET" | "HEAD", "/") => Reply::Hello,
            (_, "/") => Reply::MethodNotAllowed,
            _ => Reply::NotFound,
        };
        Request { reply, head: self.method == "HEAD", keep_alive: !self.close, http10: self.http10 }
    }
}

fn good(body_len: std::ops::Range<usize>) -> impl Strategy<Value = Good> {
    let method = prop::sample::select(vec!["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get"]);
    let path = prop::sample::select(vec!["/", "/", "/?q=1", "/?", "/index.html", "/a/b?c=d", "//", "*"]);
    let host = prop::sample::select(vec!["Host", "host", "HOST"]);
    let extra = vec(("X-[A-Za-z0-9-]{1,8}", "[!-~][ -~]{0,15}[!-~]"), 0..4);
    (method, path, any::<bool>(), host, any::<bool>(), any::<bool>(), extra, vec(any::<u8>(), body_len), any::<bool>())
        .prop_map(|(method, path, http10, host, host_on_10, say_keep_alive, extra, body, repeat_length)| Good {
            method,
            path,
            http10,
            // HTTP/1.1 must name a Host; HTTP/1.0 may.
            host: (!http10 || host_on_10).then_some(host),
            say_keep_alive,
            extra,
            body,
            repeat_length,
            close: false,
        })
}

// ---- garbage ---------------------------------------------------------------

/// Malformed input, and the answer it must get (always followed by a close).
#[derive(Clone, Debug)]
enum Garbage {
    /// A first byte that can start no request (not a token character, not an
    /// empty line), then anything.
    BadStart(u8, Vec<u8>),
    /// HTTP/1.1 without `Host`.
    NoHost,
    /// `Content-Length` that is not a decimal of at most 18 digits.
    BadLength(String),
    /// Two different `Content-Length`s.
    ConflictingLengths(usize, usize),
    /// A header line without a colon.
    BadHeaderLine,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    BadVersion(u8),
    /// `Transfer-Encoding` (chunked bodies are not supported).
    TransferEncoding,
    /// A body over `MAX_BODY`.
    BodyTooLarge(u64),
    /// A head over `MAX_HEAD` (never terminated: the answer cannot wait for it).
    HeadTooLarge(usize),
    /// More than 32 headers.
    TooManyHeaders(usize),
}

impl Garbage {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = b"GET / HTTP/1.1\r\nHost: x\r\n";
        match self {
            Garbage::BadStart(first, rest) => {
                out.push(*first);
                out.extend_from_slice(rest);
            }
            Garbage::NoHost => out.extend_from_slice(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
            Garbage::BadLength(value) => {
                out.extend_from_slice(start);
                out.extend_from_slice(format!("Content-Length: {value}\r\n\r\n").as_bytes());
            }
            Garbage::ConflictingLengths(a, b) => {
                out.extend_from_slice(start);
                out.extend_from_slice(format!("Content-Length: {a}\r\nContent-Length: {b}\r\n\r\n").as_bytes());
            }
            Garbage::BadHeaderLine => {
                out.extend_from_slice(start);
                out.extend_from_slice(b"Bad Header: y\r\n\r\n");
            }
            Garbage::BadVersion(minor) => {
                out.extend_from_slice(format!("GET / HTTP/{minor}.1\r\nHost: x\r\n\r\n").as_bytes());
            }
            Garbage::TransferEncoding => {
                out.extend_from_slice(start);
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
            }
            Garbage::BodyTooLarge(len) => {
                out.extend_from_slice(b"POST /upload HTTP/1.1\r\nHost: x\r\n");
                out.extend_from_slice(format!("Content-Length: {len}\r\n\r\n").as_bytes());
            }
            Garbage::HeadTooLarge(extra) => {
                out.extend_from_slice(start);
                out.extend_from_slice(b"X-Big: ");
                out.resize(out.len() + MAX_HEAD + extra, b'a');
            }
            Garbage::TooManyHeaders(n) => {
                out.extend_from_slice(start);
                for i in 0..*n {
                    out.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn reply(&self) -> Reply {
        match self {
            Garbage::BadStart(..)
            | Garbage::NoHost
            | Garbage::BadLength(_)
            | Garbage::ConflictingLengths(..)
            | Garbage::BadHeaderLine
            | Garbage::BadVersion(_) => Reply::BadRequest,
            Garbage::TransferEncoding => Reply::NotImplemented,
            Garbage::BodyTooLarge(_) => Reply::PayloadTooLarge,
            Garbage::HeadTooLarge(_) | Garbage::TooManyHeaders(_) => Reply::HeadersTooLarge,
        }
    }
}

/// A byte httparse rejects at the start of a request: not a token character
/// (RFC 9110 `tchar`), and not CR or LF (leading empty lines are skipped).
fn bad_first_byte() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("must not start a method or an empty line", |&b| {
        !(b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~\r\n".contains(&b))
    })
}

fn garbage() -> impl Strategy<Value = Garbage> {
    let bad_length = prop_oneof![
        "[0-9]{0,3}[a-zA-Z+.,-][0-9a-z]{0,3}",
        "[0-9]{1,3} [0-9]{1,3}",
        "[1-9][0-9]{18,22}",
        Just(String::new()),
    ];
    let too_large = prop_oneof![Just(MAX_BODY as u64 + 1), (MAX_BODY as u64 + 1)..1_000_000_000_000_000_000u64];
    prop_oneof![
        (bad_first_byte(), vec(any::<u8>(), 0..32)).prop_map(|(b, rest)| Garbage::BadStart(b, rest)),
        Just(Garbage::NoHost),
        bad_length.prop_map(Garbage::BadLength),
        (0..=MAX_BODY, 0..=MAX_BODY)
            .prop_filter("different", |(a, b)| a != b)
            .prop_map(|(a, b)| Garbage::ConflictingLengths(a, b)),
        Just(Garbage::BadHeaderLine),
        prop::sample::select(vec![0u8, 2, 3, 9]).prop_map(Garbage::BadVersion),
        Just(Garbage::TransferEncoding),
        too_large.prop_map(Garbage::BodyTooLarge),
        (1usize..2048).prop_map(Garbage::HeadTooLarge),
        (32usize..48).prop_map(Garbage::TooManyHeaders),
    ]
}

/// How a stream of well-formed requests ends.
#[derive(Clone, Debug)]
enum End {
    /// Malformed input: its error answer, then a close.
    Garbage(Garbage),
    /// A well-formed request with `Connection: close`: its answer, then a close.
    Close(Good),
    /// A proper prefix (possibly empty) of one more request: never answered.
    Cut(Good, usize),
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        3 => garbage().prop_map(End::Garbage),
        1 => good(0..16).prop_map(|g| End::Close(Good { close: true, ..g })),
        1 => (good(0..16), any::<prop::sample::Index>()).prop_map(|(g, at)| {
            let mut bytes = Vec::new();
            g.encode(&mut bytes);
            let cut = at.index(bytes.len());
            End::Cut(g, cut)
        }),
    ]
}

/// Anything: after a close, none of it may be answered.
fn trailer() -> impl Strategy<Value = Vec<u8>> {
    (vec(good(0..8), 0..3), vec(any::<u8>(), 0..16)).prop_map(|(goods, junk)| {
        let mut out = Vec::new();
        for g in goods {
            g.encode(&mut out);
        }
        out.extend_from_slice(&junk);
        out
    })
}

fn answer(request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    http::answer(request, b"", &mut out);
    out
}

// ---- HTTP token soup -------------------------------------------------------

/// Fragments of requests, so that random streams reach deep into the parser
/// instead of failing at the first byte.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    let fragments: Vec<&'static str> = vec![
        "GET ",
        "HEAD ",
        "POST ",
        "/",
        "/x?y",
        " HTTP/1.1\r\n",
        " HTTP/1.0\r\n",
        "HTTP/1.",
        "Host: x\r\n",
        "Connection: close\r\n",
        "Connection: keep-alive\r\n",
        "Content-Length: 0\r\n",
        "Content-Length: 5\r\n",
        "Content-Length: 65537\r\n",
        "Transfer-Encoding: chunked\r\n",
        "\r\n",
        "\r\n\r\n",
        "\n",
        "\r",
        ": ",
        " ",
        "hello",
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let fragment =
        prop_oneof![prop::sample::select(fragments).prop_map(|f| f.as_bytes().to_vec()), vec(any::<u8>(), 1..4),];
    vec(fragment, 0..80).prop_map(|fragments| fragments.concat())
}

/// A stream of `len` pseudo-random bytes (cheaper than a proptest `vec` of
/// hundreds of KiB, and just as good for echo).
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Cases per test, set here rather than taken from `PROPTEST_CASES`: small
/// streams (up to a few KiB) at arbitrary split and write sizes.
const SMALL_CASES: u32 = 1024;
/// Streams and outputs of hundreds of KiB through three sessions each.
const BULK_CASES: u32 = 64;
/// Megabytes of answers written back in small pieces: the slowest test.
const SLOW_READER_CASES: u32 = 32;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(SMALL_CASES))]

    /// (a) Arbitrary bytes, split anywhere, never panic the HTTP session, stay
    /// within the bounds, and get the same answers however they are split.
    #[test]
    fn http_arbitrary_bytes(stream in vec(any::<u8>(), 0..4096), schedule in schedule(), close in any::<bool>()) {
        run_all(Proto::Http, &stream, &schedule, close);
    }

    /// (a) The same with request fragments, which get past the first byte.
    #[test]
    fn http_request_soup(stream in soup(), schedule in schedule(), close in any::<bool>()) {
        let outcome = run_all(Proto::Http, &stream, &schedule, close);
        prop_assert!(outcome.errors <= 1, "one protocol error closes the connection");
    }

    /// (a) The cargo-fuzz targets' own entry point (`fuzz/fuzz_targets/*.rs`
    /// call exactly this), so that they are exercised on stable too.
    #[test]
    fn fuzz_targets_on_random_inputs(data in vec(any::<u8>(), 0..4096), soup in soup()) {
        driver::fuzz_one(Proto::Http, &data);
        driver::fuzz_one(Proto::Echo, &data);
        let mut framed = vec![0x0f, 0x11, 0x03, 0xf0, 0x27, 0x80, 0x09, 0x45];
        framed.extend_from_slice(&soup);
        driver::fuzz_one(Proto::Http, &framed);
    }

    /// (a) Echo writes back every byte, in order, whatever the split.
    #[test]
    fn echo_arbitrary_bytes(stream in vec(any::<u8>(), 0..8192), schedule in schedule(), close in any::<bool>()) {
        let outcome = run_all(Proto::Echo, &stream, &schedule, close);
        prop_assert_eq!(outcome.done, close);
    }

    /// (c) Well-formed requests, then garbage, a closing request or a cut:
    /// every well-formed request before the end gets exactly its answer, in
    /// order; garbage gets exactly its error answer (400, 413, 431 or 501, with
    /// `Connection: close`) and the connection closes; nothing after garbage or
    /// a closing request is answered.
    #[test]
    fn http_requests_then_garbage(
        goods in vec(good(0..32), 0..24),
        ending in end(),
        trailer in trailer(),
        schedule in schedule(),
        close in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for g in &goods {
            g.encode(&mut stream);
            expected.extend_from_slice(&answer(&g.expected()));
        }
        let (done, answered, errors) = match &ending {
            End::Garbage(garbage) => {
                garbage.encode(&mut stream);
                stream.extend_from_slice(&trailer);
                let reply = garbage.reply();
                let closing = Request { reply, head: false, keep_alive: false, http10: false };
                expected.extend_from_slice(&answer(&closing));
                (true, goods.len() as u64 + 1, 1)
            }
            End::Close(g) => {
                g.encode(&mut stream);
                stream.extend_from_slice(&trailer);
                expected.extend_from_slice(&answer(&g.expected()));
                (true, goods.len() as u64 + 1, 0)
            }
            End::Cut(g, cut) => {
                let mut bytes = Vec::new();
                g.encode(&mut bytes);
                stream.extend_from_slice(&bytes[..*cut]);
                (close, goods.len() as u64, 0)
            }
        };
        let outcome = run_all(Proto::Http, &stream, &schedule, close);
        prop_assert!(normalize_dates(&outcome.output) == normalize_dates(&expected),
            "wrote {:?}\nexpected {:?}",
            String::from_utf8_lossy(&outcome.output), String::from_utf8_lossy(&expected));
        prop_assert_eq!(outcome.done, done);
        prop_assert_eq!(outcome.answered, answered);
        prop_assert_eq!(outcome.errors, errors);
        if let End::Cut(..) = &ending {
            prop_assert_eq!(outcome.fed, stream.len(), "a cut stream is read to its end");
        }
        if let End::Garbage(garbage) = &ending {
            // Spelled out: the last answer is the error's status line (a 4xx,
            // or 501 for Transfer-Encoding) and it announces the close.
            let status = match garbage {
                Garbage::TransferEncoding => 501,
                Garbage::BodyTooLarge(_) => 413,
                Garbage::HeadTooLarge(_) | Garbage::TooManyHeaders(_) => 431,
                _ => 400,
            };
            let text = String::from_utf8_lossy(&outcome.output);
            let last = text.rfind("HTTP/1.1 ").unwrap_or(0);
            prop_assert!(text[last..].starts_with(&format!("HTTP/1.1 {status} ")), "{}", &text[last..]);
            prop_assert!(text[last..].contains("\r\nConnection: close\r\n"));
        }
    }
}

/// Where a stream of well-formed requests has a request head begun and not
/// complete after its first `fed` bytes: what `Session::head_started` must say.
fn head_open_at(spans: &[(usize, usize, usize)], fed: usize) -> bool {
    spans.iter().any(|&(start, head, _)| start < fed && fed < start + head)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(SMALL_CASES))]

    /// (d) The header timeout's clock: after every read, `head_started` is true
    /// exactly when the bytes so far end inside a request head (past its first
    /// byte, before its blank line), never inside a body or between requests,
    /// however the stream is split, for inline and deferred sessions; echo never
    /// has a head. (The reader drains every answer, so nothing is held back.)
    #[test]
    fn head_started_is_true_exactly_inside_a_head(
        goods in vec(good(0..32), 0..12),
        cut in any::<prop::sample::Index>(),
        reads in vec(1usize..64, 1..8),
        deferred in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        let mut spans = Vec::new();
        for g in &goods {
            let start = stream.len();
            g.encode(&mut stream);
            spans.push((start, stream.len() - start - g.body.len(), g.body.len()));
        }
        let stream = &stream[..cut.index(stream.len() + 1)];
        let mut http = if deferred {
            Session::deferred(Proto::Http, Work::default())
        } else {
            Session::new(Proto::Http, Work::default())
        };
        let mut echo = Session::new(Proto::Echo, Work::default());
        prop_assert!(!http.head_started());
        let (mut fed, mut step) = (0, 0);
        while fed < stream.len() {
            let n = reads[step % reads.len()].min(stream.len() - fed);
            step += 1;
            http.receive(&stream[fed..fed + n]);
            echo.receive(&stream[fed..fed + n]);
            fed += n;
            if let Some(batch) = http.take_batch() {
                http.finish_batch(batch.answer(&Work::default()));
            }
            let out = http.pending_output().len();
            http.consume_output(out);
            let out = echo.pending_output().len();
            echo.consume_output(out);
            prop_assert_eq!(http.head_started(), head_open_at(&spans, fed), "after {} of {} bytes", fed, stream.len());
            prop_assert!(!echo.head_started());
        }
        http.peer_closed();
        prop_assert!(!http.head_started(), "a closed peer sends no more head");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(BULK_CASES))]

    /// (b) Pipelined requests far over the output high-water mark, written
    /// back slowly: every bound holds, inline and deferred, and every request
    /// is answered in order.
    #[test]
    fn http_pipelined_flood(
        goods in vec(good(0..16), 1..4),
        copies in 200usize..1500,
        schedule in bulk_schedule(),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for g in &goods {
            g.encode(&mut stream);
            expected.extend_from_slice(&answer(&g.expected()));
        }
        let (stream, expected) = (stream.repeat(copies), expected.repeat(copies));
        let outcome = run_all(Proto::Http, &stream, &schedule, true);
        prop_assert!(normalize_dates(&outcome.output) == normalize_dates(&expected));
        prop_assert_eq!(outcome.answered, (goods.len() * copies) as u64);
        prop_assert!(outcome.done);
    }

    /// (b) Bodies up to `MAX_BODY`, arriving in pieces: the session holds at
    /// most one partial request (under `MAX_HEAD + MAX_BODY`) while reading.
    #[test]
    fn http_large_bodies(
        lens in vec((MAX_BODY - 2048)..=MAX_BODY, 1..4),
        seed in any::<u64>(),
        end in garbage(),
        schedule in bulk_schedule(),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let g = Good {
                method: "POST", path: "/upload", http10: false, host: Some("Host"), say_keep_alive: false,
                extra: Vec::new(), body: pseudo_random(seed.wrapping_add(i as u64), *len), repeat_length: false, close: false,
            };
            g.encode(&mut stream);
            expected.extend_from_slice(&answer(&g.expected()));
        }
        end.encode(&mut stream);
        expected.extend_from_slice(&answer(&Request { reply: end.reply(), head: false, keep_alive: false, http10: false }));
        let outcome = run_all(Proto::Http, &stream, &schedule, false);
        prop_assert!(normalize_dates(&outcome.output) == normalize_dates(&expected));
        prop_assert!(outcome.done);
    }

    /// (b) Echo far over the output high-water mark, written back slowly.
    #[test]
    fn echo_flood(seed in any::<u64>(), len in 64_000usize..300_000, schedule in bulk_schedule()) {
        let stream = pseudo_random(seed, len);
        let outcome = run_all(Proto::Echo, &stream, &schedule, true);
        prop_assert!(outcome.done);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(SLOW_READER_CASES))]

    /// (b) A client that pipelines hard and reads slowly (most writes would
    /// block): the deferred session must stop reading rather than hold more
    /// than one partial request while it wants input.
    #[test]
    fn http_pipelined_slow_reader(
        goods in vec(good(0..4), 1..3),
        copies in 3000usize..6000,
        writes in vec(prop_oneof![2 => Just(0usize), 1 => 64usize..1024], 2..8),
        delays in vec(0u8..4, 1..4),
    ) {
        let mut stream = Vec::new();
        for g in &goods {
            g.encode(&mut stream);
        }
        let stream = stream.repeat(copies);
        // All zeros would make the driver's peer read one byte a step: about
        // 1.6 MB of answers then take more than driver::MAX_STEPS (a case
        // proptest found: copies = 5525, writes = [0, 0]).
        let mut writes = writes;
        if writes.iter().all(|&w| w == 0) {
            writes.push(64);
        }
        let schedule = Schedule { reads: vec![READ_BUF_SIZE], writes, delays };
        let outcome = run_all(Proto::Http, &stream, &schedule, true);
        prop_assert_eq!(outcome.answered, (goods.len() * copies) as u64);
    }
}

/// The limits the driver asserts are the ones the session documents.
#[test]
fn limits_are_the_documented_ones() {
    use driver::Limits;
    use proto::OUTPUT_HIGH_WATER;
    let http = Limits::for_session(Proto::Http, false);
    assert_eq!(http.input_while_reading, 8 * 1024 + 64 * 1024);
    assert_eq!(http.input, 8 * 1024 + 64 * 1024 + 16 * 1024);
    let longest = driver::max_http_answer();
    assert!((150..300).contains(&longest), "longest answer {longest}");
    assert_eq!(http.output, OUTPUT_HIGH_WATER + longest);
    let echo = Limits::for_session(Proto::Echo, false);
    assert_eq!((echo.input, echo.output), (1, 64 * 1024 + 16 * 1024));
    for proto in [Proto::Http, Proto::Echo] {
        assert_eq!(Limits::for_session(proto, true).output, 3 * 64 * 1024 + 2 * 16 * 1024);
    }
}

// ---- chat (document 002 §5) ------------------------------------------------

/// Chat lines: the document's commands, bad JSON, unknown types, blank lines,
/// CRLF endings, and now and then a line over the bound.
fn chat_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        "[a-zA-Z]{1,12}".prop_map(|n| format!("{{\"type\":\"join\",\"nickname\":\"{n}\"}}\n").into_bytes()),
        ".{0,40}".prop_map(|c| serde_json::to_vec(&serde_json::json!({"type":"message","content":c})).unwrap()),
        Just(b"\n".to_vec()),
        Just(b"{\"type\":\"private\",\"to\":\"Bob\",\"content\":\"hi\"}\r\n".to_vec()),
        Just(b"{\"type\":\"list_users\"}\n".to_vec()),
        Just(b"{\"type\":\"quit\"}\n".to_vec()),
        Just(b"{\"type\":\"dance\"}\n".to_vec()),
        Just(b"{not json\n".to_vec()),
        Just(b"   \r\n".to_vec()),
        vec(any::<u8>(), 0..64),
        (4000usize..6000).prop_map(|n| vec![b'x'; n]),
    ];
    vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Chat at the same rate as the small HTTP cases.
const CHAT_CASES: u32 = 512;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CHAT_CASES))]

    /// Arbitrary bytes split arbitrarily never panic the chat session and keep
    /// it within its bounds (checked by the driver after every call).
    #[test]
    fn chat_arbitrary_bytes(stream in vec(any::<u8>(), 0..8192), schedule in schedule(), close in any::<bool>()) {
        let outcome = driver::run(Proto::Chat, false, &stream, &schedule, close);
        prop_assert!(!close || outcome.done, "the peer closed: the session must end");
    }

    /// Lines, good and bad, split anywhere and read at any speed: the same
    /// bytes are written as in one eager run, unless the member was dropped as
    /// slow; every line is answered once (one error line per bad line); a line
    /// over the bound ends the connection.
    #[test]
    fn chat_lines_split_anywhere(stream in chat_soup(), schedule in schedule(), close in any::<bool>()) {
        let eager = driver::run(Proto::Chat, false, &stream, &Schedule::eager(), close);
        let outcome = driver::run(Proto::Chat, false, &stream, &schedule, close);
        if !outcome.slow && !eager.slow {
            prop_assert!(outcome.output == eager.output, "output depends on the split");
            prop_assert_eq!((outcome.answered, outcome.errors, outcome.done), (eager.answered, eager.errors, eager.done));
        }
        let text = String::from_utf8_lossy(&eager.output);
        prop_assert_eq!(text.matches("{\"type\":\"error\"").count() as u64, eager.errors);
        prop_assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "every line written is JSON");
    }

    /// A member that never reads, sending commands without end: dropped as
    /// slow once its outbox passes the bound, within the bound meanwhile.
    #[test]
    fn chat_member_that_never_reads(copies in 4000usize..8000, reads in vec(64usize..=READ_BUF_SIZE, 1..4)) {
        let stream = b"{\"type\":\"list_users\"}\n".repeat(copies);
        let schedule = Schedule { reads, writes: vec![0], delays: vec![0] };
        let outcome = driver::run(Proto::Chat, false, &stream, &schedule, true);
        prop_assert!(outcome.slow && outcome.done, "never dropped: {} of {} bytes fed", outcome.fed, stream.len());
    }
}
