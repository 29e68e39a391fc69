//! One connection slot: its socket, the requests it has in flight, and the
//! framing of the answers it reads. No I/O here; [`crate::engine`] moves the
//! bytes and decides what happens next.
//!
//! A *slot* is one of the `--conns` connections; its socket may be closed and
//! reopened many times (`--reqs-per-conn`, server closes, failures), its
//! counters span the whole run.

use std::collections::VecDeque;

use mio::net::TcpStream;
use proto::client::{frame_http_head, HeadFrame};
use proto::Proto;

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
    pub scheduled: u64,
    /// When it was handed to the socket.
    pub sent: u64,
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

/// Incremental answer framing.
#[derive(Debug)]
pub struct Rx {
    proto: Proto,
    /// Echo: bytes of the current answer matched so far. HTTP: body bytes
    /// still to skip of the answer whose head was framed.
    progress: usize,
    /// HTTP: a head was framed and its body is being skipped.
    in_body: bool,
    status: u16,
    close: bool,
    /// HTTP: a partial head carried over from the previous read.
    carry: Vec<u8>,
}

impl Rx {
    pub fn new(proto: Proto) -> Self {
        Rx { proto, progress: 0, in_body: false, status: 0, close: false, carry: Vec::new() }
    }

    /// Forget a partial answer (the socket was closed).
    pub fn reset(&mut self) {
        self.progress = 0;
        self.in_body = false;
        self.carry.clear();
    }

    /// True while part of an answer has been read.
    pub fn mid_answer(&self) -> bool {
        self.progress > 0 || self.in_body || !self.carry.is_empty()
    }

    /// Frame `data`, calling `on_answer(status, close)` for every complete
    /// answer (echo: status 0). `echo` is the message every echo answer must
    /// equal byte for byte. An error describes a bad answer.
    pub fn feed(
        &mut self,
        data: &[u8],
        echo: &[u8],
        on_answer: &mut impl FnMut(u16, bool) -> Result<Flow, String>,
    ) -> Result<(), String> {
        match self.proto {
            Proto::Echo => self.feed_echo(data, echo, on_answer),
            // `--proto chat` runs in `crate::chat`, never through this engine.
            Proto::Chat => Err("chat is not a request-answer protocol".into()),
            Proto::Http if self.carry.is_empty() => {
                let used = self.frame_http(data, on_answer)?;
                if let Some(rest) = used.and_then(|u| data.get(u..)).filter(|r| !r.is_empty()) {
                    self.carry.extend_from_slice(rest);
                }
                Ok(())
            }
            Proto::Http => {
                let mut carry = std::mem::take(&mut self.carry);
                carry.extend_from_slice(data);
                let used = self.frame_http(&carry, on_answer);
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
        on_answer: &mut impl FnMut(u16, bool) -> Result<Flow, String>,
    ) -> Result<(), String> {
        let mut pos = 0;
        while pos < data.len() {
            let n = (echo.len() - self.progress).min(data.len() - pos);
            let want = &echo[self.progress..self.progress + n];
            if data[pos..pos + n] != *want {
                let at = data[pos..pos + n].iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                return Err(format!("echo answer differs from the request at byte {}", self.progress + at));
            }
            pos += n;
            self.progress += n;
            if self.progress == echo.len() {
                self.progress = 0;
                if on_answer(0, false)? == Flow::Stop {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Frame HTTP answers at the front of `data`; returns the bytes consumed,
    /// or `None` when the handler said stop (the rest is to be dropped).
    fn frame_http(
        &mut self,
        data: &[u8],
        on_answer: &mut impl FnMut(u16, bool) -> Result<Flow, String>,
    ) -> Result<Option<usize>, String> {
        let mut pos = 0;
        loop {
            if self.in_body {
                let n = self.progress.min(data.len() - pos);
                pos += n;
                self.progress -= n;
                if self.progress > 0 {
                    return Ok(Some(pos));
                }
                self.in_body = false;
                if on_answer(self.status, self.close)? == Flow::Stop {
                    return Ok(None);
                }
            }
            if pos == data.len() {
                return Ok(Some(pos));
            }
            match frame_http_head(&data[pos..], false).map_err(|e| e.to_string())? {
                HeadFrame::Partial => return Ok(Some(pos)),
                HeadFrame::Complete { head_len, body_len, status, close } => {
                    pos += head_len;
                    self.in_body = true;
                    self.progress = body_len;
                    self.status = status;
                    self.close = close;
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
    pub stream: Option<TcpStream>,
    /// Issued requests, oldest first; the last `unsent` are not fully written.
    pub pending: VecDeque<Pending>,
    pub unsent: u32,
    /// Bytes already written of the first unsent request.
    pub written: usize,
    pub rx: Rx,
    /// Requests issued on the current socket.
    pub on_socket: u64,
    /// Answers over the whole run (warmup included): zero at the end = starved.
    pub answered: u64,
    /// Answers in the measured window, and when the last one came (0: none yet).
    pub window_answers: u64,
    pub last_answer_at: u64,
    /// Longest gap between answers in the window so far, ns (see [`crate::fairness`]).
    pub longest_gap: u64,
    /// Measured requests this slot may still issue.
    pub budget: u64,
    /// Next due time of the open-loop schedule.
    pub due: u64,
    /// State of the slot's Poisson generator (unused with uniform arrivals).
    pub rng: u64,
    /// Deadline of this slot's armed timer, 0 if none.
    pub timer_at: u64,
    /// Connecting: when connect was called. Open and unconfirmed: when established.
    pub phase_at: u64,
    /// When the previous socket was closed (start of a reconnect).
    pub closed_at: u64,
    /// Became free (nothing pending) at this time: for the dispatch lag.
    pub free_since: u64,
    pub established_once: bool,
    /// Counted in the engine's connects in progress.
    pub connecting: bool,
    /// Not yet through the plan's gate (never established nor failed to connect).
    pub gated: bool,
    /// The server said `Connection: close`: reconnect once the answer is in.
    pub close_after: bool,
    /// Answered since the last failure (resets the backoff).
    pub answered_since_failure: bool,
    pub retry_delay: u64,
    /// Budget spent and nothing in flight: counted out of the thread's busy slots.
    pub finished: bool,
    /// Error kinds this slot has seen (bit per kind), to count slots per kind.
    pub error_kinds: u16,
}

impl Conn {
    pub fn new(global: u64, proto: Proto, pipeline: u32, budget: u64, (due, rng): (u64, u64)) -> Self {
        Conn {
            global,
            state: State::Idle,
            stream: None,
            pending: VecDeque::with_capacity(pipeline as usize),
            unsent: 0,
            written: 0,
            rx: Rx::new(proto),
            on_socket: 0,
            answered: 0,
            window_answers: 0,
            last_answer_at: 0,
            longest_gap: 0,
            budget,
            due,
            rng,
            timer_at: 0,
            phase_at: 0,
            closed_at: 0,
            free_since: 0,
            established_once: false,
            connecting: false,
            gated: true,
            close_after: false,
            answered_since_failure: false,
            retry_delay: 0,
            finished: budget == 0,
            error_kinds: 0,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(rx: &mut Rx, chunks: &[&[u8]], echo: &[u8]) -> Result<Vec<(u16, bool)>, String> {
        let mut got = Vec::new();
        for chunk in chunks {
            rx.feed(chunk, echo, &mut |s, c| {
                got.push((s, c));
                Ok(Flow::Continue)
            })?;
        }
        Ok(got)
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn http_answers_split_anywhere() {
        let mut stream = OK.repeat(3);
        stream.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        for cut in 0..stream.len() {
            let mut rx = Rx::new(Proto::Http);
            let got = collect(&mut rx, &[&stream[..cut], &stream[cut..]], b"").unwrap();
            assert_eq!(got, vec![(200, false), (200, false), (200, false), (404, true)], "cut {cut}");
            assert!(!rx.mid_answer());
        }
    }

    #[test]
    fn http_garbage_is_an_error() {
        let mut rx = Rx::new(Proto::Http);
        assert!(collect(&mut rx, &[b"garbage\r\n\r\n"], b"").is_err());
    }

    #[test]
    fn stop_drops_the_rest() {
        let mut rx = Rx::new(Proto::Http);
        let stream = OK.repeat(2);
        let mut n = 0;
        rx.feed(&stream, b"", &mut |_, _| {
            n += 1;
            Ok(Flow::Stop)
        })
        .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn echo_is_checked_byte_for_byte() {
        let msg = b"abcdef";
        let mut rx = Rx::new(Proto::Echo);
        let got = collect(&mut rx, &[b"abcdefab", b"cdefabc"], msg).unwrap();
        assert_eq!(got.len(), 2);
        assert!(rx.mid_answer());
        let err = collect(&mut rx, &[b"dXf"], msg).unwrap_err();
        assert!(err.contains("byte 4"), "{err}");
    }
}
