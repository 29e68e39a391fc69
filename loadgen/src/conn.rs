//! One connection slot: the requests it has in flight, and the framing of the
//! answers it reads. No I/O here: the engine's back end owns the socket and
//! moves the bytes, [`crate::engine`] decides what happens next.
//!
//! A *slot* is one of the `--conns` connections; its socket may be closed and
//! reopened many times (`--reqs-per-conn`, server closes, failures), its
//! counters span the whole run.

use std::collections::VecDeque;

use proto::client::{frame_http_head, BodyLen, ChunkedBody, HeadFrame};
use proto::Proto;

/// The first retry after a failure, and the longest (it doubles in between).
const MIN_RETRY: u64 = 10 * crate::clock::MS;
const MAX_RETRY: u64 = crate::clock::SEC;

/// Where a slot is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No socket; waiting in the connect queue.
    Idle,
    /// No socket; waiting for its retry timer after a failure.
    Backoff,
    /// Non-blocking connect issued, waiting for WRITABLE.
    Connecting,
    /// Established.
    Open,
}

/// A request issued on the connection and not yet answered.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    /// When the schedule wanted it sent (closed loop: when it was sent).
    pub scheduled_ns: u64,
    /// When it was handed to the socket.
    pub sent_ns: u64,
    /// Scheduled inside the measured window.
    pub measured: bool,
}

/// What the answer handler tells the framer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop framing: the connection is closing.
    Stop,
}

/// What the framer saw, in order, for the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerEvent {
    /// The first byte of the next answer arrived (an interim 1xx head counts:
    /// it is the server's first byte for that request).
    FirstByte,
    /// The answer is complete: its status (echo: 0) and whether the server
    /// closes the connection after it.
    Done { status: u16, close: bool },
}

/// The body of the HTTP answer being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    /// Between answers, or in a head.
    None,
    /// This many bytes still to skip.
    Length(usize),
    Chunked(ChunkedBody),
    /// Until the server closes the connection.
    UntilClose,
}

/// The last HTTP head a thread framed, and its frame. A server answers a
/// load's requests with the same head over and over (nginx's changes only in
/// its `Date`, once a second), and comparing the bytes with the last head costs
/// less than parsing them again: a head equal byte for byte frames the same
/// (framing depends on nothing else), so the cached frame is used. One per
/// thread, shared by its connections; it misses about once a second.
#[derive(Debug, Default)]
pub struct HeadCache {
    /// The head's bytes, up to and including its blank line; empty: none yet.
    bytes: Vec<u8>,
    /// Its frame (always `Complete`) and whether the request was `HEAD`.
    frame: Option<(HeadFrame, bool)>,
}

impl HeadCache {
    /// The frame of the head at the front of `input`, from the cache when it
    /// is the cached head, else parsed (and kept, when complete).
    pub fn frame(&mut self, input: &[u8], head_request: bool) -> Result<HeadFrame, String> {
        if let Some((frame, head)) = self.frame {
            if head == head_request && input.starts_with(&self.bytes) {
                return Ok(frame);
            }
        }
        let frame = frame_http_head(input, head_request).map_err(|e| e.to_string())?;
        if let HeadFrame::Complete { head_len, .. } = frame {
            self.bytes.clear();
            self.bytes.extend_from_slice(&input[..head_len]);
            self.frame = Some((frame, head_request));
        }
        Ok(frame)
    }
}

/// Incremental answer framing (sans-IO).
#[derive(Debug)]
pub struct Rx {
    proto: Proto,
    /// The requests are `HEAD`: answers have no body.
    head_request: bool,
    /// Echo: bytes of the current answer matched so far.
    echo_progress: usize,
    /// HTTP: the body being skipped, and its answer's head.
    body: Body,
    status: u16,
    close: bool,
    /// The current answer's first byte was seen (its `FirstByte` was sent).
    started: bool,
    /// HTTP: a partial head carried over from the previous read.
    carry: Vec<u8>,
}

impl Rx {
    pub fn new(proto: Proto, head_request: bool) -> Self {
        Rx {
            proto,
            head_request,
            echo_progress: 0,
            body: Body::None,
            status: 0,
            close: false,
            started: false,
            carry: Vec::new(),
        }
    }

    /// Forget a partial answer (the socket was closed).
    pub fn reset(&mut self) {
        self.echo_progress = 0;
        self.body = Body::None;
        self.started = false;
        self.carry.clear();
    }

    /// True while part of an answer has been read.
    pub fn mid_answer(&self) -> bool {
        self.started || self.echo_progress > 0 || self.body != Body::None || !self.carry.is_empty()
    }

    /// The server closed the connection: an answer whose body runs until the
    /// close is complete now. Returns its `Done` event, if there was one.
    pub fn end_of_input(&mut self) -> Option<AnswerEvent> {
        if self.body != Body::UntilClose {
            return None;
        }
        self.body = Body::None;
        self.started = false;
        Some(AnswerEvent::Done { status: self.status, close: true })
    }

    /// Frame `data`, calling `on_event` for every first byte and every complete
    /// answer. `echo` is the message every echo answer must equal byte for byte;
    /// `heads` the thread's last HTTP head. An error describes a bad answer.
    pub fn feed(
        &mut self,
        data: &[u8],
        echo: &[u8],
        heads: &mut HeadCache,
        on_event: &mut impl FnMut(AnswerEvent) -> Result<Flow, String>,
    ) -> Result<(), String> {
        match self.proto {
            Proto::Echo => self.feed_echo(data, echo, on_event),
            // `--proto chat` runs in `crate::chat`, never through this engine.
            Proto::Chat => Err("chat is not a request-answer protocol".into()),
            Proto::Http if self.carry.is_empty() => {
                let used = self.frame_http(data, heads, on_event)?;
                if let Some(rest) = used.and_then(|u| data.get(u..)).filter(|r| !r.is_empty()) {
                    self.carry.extend_from_slice(rest);
                }
                Ok(())
            }
            Proto::Http => {
                let mut carry = std::mem::take(&mut self.carry);
                carry.extend_from_slice(data);
                let used = self.frame_http(&carry, heads, on_event);
                match used {
                    Ok(Some(used)) => {
                        carry.drain(..used);
                        self.carry = carry;
                    }
                    _ => self.carry = carry,
                }
                used.map(|_| ())
            }
        }
    }

    fn feed_echo(
        &mut self,
        data: &[u8],
        echo: &[u8],
        on_event: &mut impl FnMut(AnswerEvent) -> Result<Flow, String>,
    ) -> Result<(), String> {
        let mut pos = 0;
        while pos < data.len() {
            if !self.started {
                self.started = true;
                on_event(AnswerEvent::FirstByte)?;
            }
            let n = (echo.len() - self.echo_progress).min(data.len() - pos);
            let want = &echo[self.echo_progress..self.echo_progress + n];
            if data[pos..pos + n] != *want {
                let at = data[pos..pos + n].iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(format!("echo answer differs from the request at byte {}", self.echo_progress + at));
            }
            pos += n;
            self.echo_progress += n;
            if self.echo_progress == echo.len() {
                self.echo_progress = 0;
                self.started = false;
                if on_event(AnswerEvent::Done { status: 0, close: false })? == Flow::Stop {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Frame HTTP answers at the front of `data`; returns the bytes consumed
    /// (a partial head is left for the carry), or `None` when the handler said
    /// stop (the rest is to be dropped).
    fn frame_http(
        &mut self,
        data: &[u8],
        heads: &mut HeadCache,
        on_event: &mut impl FnMut(AnswerEvent) -> Result<Flow, String>,
    ) -> Result<Option<usize>, String> {
        let mut pos = 0;
        loop {
            let complete = match &mut self.body {
                Body::None => false,
                Body::UntilClose => return Ok(Some(data.len())),
                Body::Length(left) => {
                    let n = (*left).min(data.len() - pos);
                    pos += n;
                    *left -= n;
                    *left == 0
                }
                Body::Chunked(chunks) => {
                    let (used, done) = chunks.skip(&data[pos..]).map_err(|e| e.to_string())?;
                    pos += used;
                    done
                }
            };
            if complete {
                self.body = Body::None;
                self.started = false;
                if on_event(AnswerEvent::Done { status: self.status, close: self.close })? == Flow::Stop {
                    return Ok(None);
                }
            } else if self.body != Body::None {
                return Ok(Some(pos));
            }
            if pos == data.len() {
                return Ok(Some(pos));
            }
            if !self.started {
                self.started = true;
                on_event(AnswerEvent::FirstByte)?;
            }
            match heads.frame(&data[pos..], self.head_request)? {
                HeadFrame::Partial => return Ok(Some(pos)),
                HeadFrame::Complete { status: 101, .. } => {
                    return Err("101 Switching Protocols: the server left HTTP/1.1".into())
                }
                // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                HeadFrame::Complete { head_len, status: 100..=199, .. } => pos += head_len,
                HeadFrame::Complete { head_len, body, status, close } => {
                    pos += head_len;
                    self.status = status;
                    self.close = close;
                    self.body = match body {
                        BodyLen::Length(n) => Body::Length(n),
                        BodyLen::Chunked => Body::Chunked(ChunkedBody::default()),
                        BodyLen::UntilClose => Body::UntilClose,
                    };
                    if self.body == Body::Length(0) {
                        // No body: complete at once (the loop's top says so).
                        continue;
                    }
                }
            }
        }
    }
}

/// One connection slot. See the module documentation.
#[derive(Debug)]
pub struct Conn {
    /// Global index over all processes (for the schedule, budget, source address).
    pub global: u64,
    pub state: State,
    /// Issued requests, oldest first; the last `unsent` are not fully written.
    pub pending: VecDeque<Pending>,
    pub unsent: u32,
    /// Bytes already written of the first unsent request.
    pub written: usize,
    /// A send is in flight (completion back ends): no other until it completes.
    pub sending: bool,
    pub rx: Rx,
    /// Requests issued on the current socket.
    pub on_socket: u64,
    /// Answers over the whole run (warmup included): zero at the end = starved.
    pub answered: u64,
    /// Answers in the measured window, and when the last one came (0: none yet).
    pub window_answers: u64,
    pub last_answer_at_ns: u64,
    /// Longest gap between answers in the window so far, ns (see [`crate::fairness`]).
    pub longest_gap: u64,
    /// Measured requests this slot may still issue.
    pub budget: u64,
    /// Next due time of the open-loop schedule.
    pub due_ns: u64,
    /// State of the slot's Poisson generator (unused with uniform arrivals).
    pub rng: u64,
    /// Connecting: when connect was called. Open and unconfirmed: when established.
    pub phase_at_ns: u64,
    /// When the previous socket was closed (start of a reconnect).
    pub closed_at_ns: u64,
    /// Became free (nothing pending) at this time: for the dispatch lag.
    pub free_since_ns: u64,
    pub established_once: bool,
    /// Counted in the engine's connects in progress.
    pub connecting: bool,
    /// Not yet through the plan's gate (never established nor failed to connect).
    pub gated: bool,
    /// The server said `Connection: close`: reconnect once the answer is in.
    pub close_after: bool,
    /// Answered since the last failure (resets the backoff).
    pub answered_since_failure: bool,
    pub retry_delay_ns: u64,
    /// Budget spent and nothing in flight: counted out of the thread's busy slots.
    pub finished: bool,
    /// Error kinds this slot has seen (bit per kind), to count slots per kind.
    pub error_kinds: u16,
    /// One of `--silent-conns`: one request, then silence (see [`crate::silent`]).
    pub silent: bool,
    /// When the last request was issued (0: none yet).
    pub last_request_at_ns: u64,
}

impl Conn {
    pub fn new(global: u64, rx: Rx, pipeline: u32, budget: u64, (due, rng): (u64, u64)) -> Self {
        Conn {
            global,
            state: State::Idle,
            pending: VecDeque::with_capacity(pipeline as usize),
            unsent: 0,
            written: 0,
            sending: false,
            rx,
            on_socket: 0,
            answered: 0,
            window_answers: 0,
            last_answer_at_ns: 0,
            longest_gap: 0,
            budget,
            due_ns: due,
            rng,
            phase_at_ns: 0,
            closed_at_ns: 0,
            free_since_ns: 0,
            established_once: false,
            connecting: false,
            gated: true,
            close_after: false,
            answered_since_failure: false,
            retry_delay_ns: 0,
            finished: budget == 0,
            error_kinds: 0,
            silent: false,
            last_request_at_ns: 0,
        }
    }

    /// Nothing left to do: budget spent and nothing in flight.
    pub fn is_done(&self) -> bool {
        self.budget == 0 && self.pending.is_empty()
    }

    /// Measured requests in flight.
    pub fn measured_pending(&self) -> u64 {
        self.pending.iter().filter(|p| p.measured).count() as u64
    }

    /// The slot failed: how long to wait before reconnecting. At once after a
    /// socket that was answered, else 10 ms doubling to 1 s while it keeps failing.
    pub fn next_retry_delay(&mut self) -> u64 {
        self.retry_delay_ns =
            if self.answered_since_failure { 0 } else { (self.retry_delay_ns * 2).clamp(MIN_RETRY, MAX_RETRY) };
        self.answered_since_failure = false;
        self.retry_delay_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of feeding `chunks` one after the other: `F` for a first byte,
    /// the status for a complete answer (negative when it closes).
    fn events(rx: &mut Rx, chunks: &[&[u8]], echo: &[u8]) -> Result<Vec<i32>, String> {
        let mut got = Vec::new();
        let mut heads = HeadCache::default();
        for chunk in chunks {
            rx.feed(chunk, echo, &mut heads, &mut |e| {
                got.push(match e {
                    AnswerEvent::FirstByte => 0,
                    AnswerEvent::Done { status, close } => {
                        if close {
                            -i32::from(status)
                        } else {
                            i32::from(status)
                        }
                    }
                });
                Ok(Flow::Continue)
            })?;
        }
        Ok(got)
    }

    fn http() -> Rx {
        Rx::new(Proto::Http, false)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

    #[test]
    fn http_answers_split_anywhere() {
        let mut stream = OK.to_vec();
        stream.extend_from_slice(CONTINUE);
        stream.extend_from_slice(CHUNKED);
        stream.extend_from_slice(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
        stream.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        for cut in 0..stream.len() {
            let mut rx = http();
            let got = events(&mut rx, &[&stream[..cut], &stream[cut..]], b"").unwrap();
            assert_eq!(got, vec![0, 200, 0, 200, 0, 503, 0, -404], "cut {cut}");
            assert!(!rx.mid_answer());
        }
    }

    #[test]
    fn head_answers_have_no_body_and_until_close_ends_at_eof() {
        let mut rx = Rx::new(Proto::Http, true);
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(events(&mut rx, &[head, head], b"").unwrap(), vec![0, 200, 0, 200]);
        let mut rx = http();
        assert_eq!(events(&mut rx, &[b"HTTP/1.0 200 OK\r\n\r\nsome", b" body"], b"").unwrap(), vec![0]);
        assert!(rx.mid_answer());
        assert_eq!(rx.end_of_input(), Some(AnswerEvent::Done { status: 200, close: true }));
        assert!(!rx.mid_answer() && rx.end_of_input().is_none());
    }

    #[test]
    fn http_garbage_is_an_error() {
        assert!(events(&mut http(), &[b"garbage\r\n\r\n"], b"").is_err());
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(events(&mut http(), &[bad_chunk], b"").unwrap_err().contains("chunked"));
        assert!(events(&mut http(), &[b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], b"").is_err());
    }

    #[test]
    fn stop_drops_the_rest() {
        let mut rx = http();
        let stream = OK.repeat(2);
        let mut n = 0;
        rx.feed(&stream, b"", &mut HeadCache::default(), &mut |e| {
            n += u32::from(e != AnswerEvent::FirstByte);
            Ok(Flow::Stop)
        })
        .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_cached_head_frames_as_parsing_it_would() {
        let mut heads = HeadCache::default();
        let mut frames = |input: &[u8], head: bool| heads.frame(input, head);
        let parsed = frames(OK, false).unwrap();
        assert_eq!(parsed, frame_http_head(OK, false).unwrap());
        assert_eq!(frames(&OK.repeat(2), false).unwrap(), parsed, "the head at the front, whatever follows");
        // Not the cached head: parsed afresh (and cached in its place).
        let other = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(frames(other, false).unwrap(), frame_http_head(other, false).unwrap());
        assert_eq!(frames(&OK[..20], false).unwrap(), HeadFrame::Partial, "a prefix is partial");
        assert_eq!(frames(OK, true).unwrap(), frame_http_head(OK, true).unwrap(), "HEAD frames otherwise");
        assert!(frames(b"garbage\r\n\r\n", false).is_err());
        // Cached and fresh framing give the same events, split anywhere.
        let stream = [OK, CONTINUE, CHUNKED, OK].concat();
        for cut in 0..stream.len() {
            let got = events(&mut http(), &[&stream[..cut], &stream[cut..]], b"").unwrap();
            assert_eq!(got, vec![0, 200, 0, 200, 0, 200], "cut {cut}");
        }
    }

    #[test]
    fn retries_back_off_until_an_answer() {
        let mut c = Conn::new(0, http(), 1, 1, (0, 0));
        let delays: Vec<u64> = (0..9).map(|_| c.next_retry_delay() / 1_000_000).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        c.answered_since_failure = true;
        assert_eq!((c.next_retry_delay(), c.next_retry_delay()), (0, MIN_RETRY));
    }

    #[test]
    fn echo_is_checked_byte_for_byte() {
        let msg = b"abcdef";
        let mut rx = Rx::new(Proto::Echo, false);
        let got = events(&mut rx, &[b"abcdefab", b"cdefabc"], msg).unwrap();
        assert_eq!(got, vec![0, 0, 0, 0, 0]);
        assert!(rx.mid_answer());
        let err = events(&mut rx, &[b"dXf"], msg).unwrap_err();
        assert!(err.contains("byte 4"), "{err}");
    }
}
