//! What a thread records: the [`Recorder`] (histograms, counters, errors,
//! timeline) and the running totals the loop itself needs, and the one place
//! where an answer becomes figures: [`Tally::answers`] frames what a
//! connection read and accounts every answer it completes.

use crate::conn::{AnswerEvent, Conn, Flow, HeadCache};
use crate::engine::window::Window;
use crate::intervals::Phase;
use crate::recorder::{ErrorKind, Recorder};

/// See the module documentation.
#[derive(Debug)]
pub struct Tally {
    pub rec: Recorder,
    /// Answers and errors over the whole run, for the progress line.
    pub answers: u64,
    pub errors: u64,
    /// Measured requests sent and neither answered nor failed yet.
    pub measured_in_flight: u64,
    /// The last HTTP head framed by any of the thread's connections.
    heads: HeadCache,
}

/// What one call of [`Tally::answers`] completed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    /// Answers completed (measured or not).
    pub answers: u64,
    /// Of the measured ones, how many had a status of 400 or more, and the last such status.
    pub bad_status: u64,
    pub last_bad_status: u16,
}

impl Tally {
    pub fn new(rec: Recorder) -> Self {
        Tally { rec, answers: 0, errors: 0, measured_in_flight: 0, heads: HeadCache::default() }
    }

    /// Frame `data` just read on `c` (`None`: the server closed, which ends an
    /// answer delimited by the close) against `request` (the bytes echo answers
    /// must equal), and account every answer it completes at `now`. The framing
    /// error of a bad answer comes with what was completed before it.
    pub fn answers(
        &mut self,
        c: &mut Conn,
        window: &Window,
        request: &[u8],
        data: Option<&[u8]>,
        now: u64,
    ) -> (Answered, Result<(), String>) {
        let second = window.second(now);
        let rec = &mut self.rec;
        let mut done = Answered::default();
        let mut measured_done = 0u64;
        // Requests not yet written whose bytes the kernel has in part: the one
        // a short write left half written, or all of them while a send is in
        // flight. A server may answer those already (an echo streams back
        // what it has read of a long message).
        let (pending, unsent) = (&mut c.pending, c.unsent as usize);
        let begun = if c.sending { unsent } else { usize::from(c.written > 0) };
        let mut close_after = false;
        let mut on_event = |event: AnswerEvent| -> Result<Flow, String> {
            if pending.len() + begun <= unsent {
                return Err("an answer arrived with no request outstanding".into());
            }
            let (status, close) = match event {
                AnswerEvent::FirstByte => {
                    if let Some(p) = pending.front().filter(|p| p.measured) {
                        rec.record(Phase::FirstByte, now, now - p.sent_ns);
                    }
                    return Ok(Flow::Continue);
                }
                AnswerEvent::Done { status, close } => (status, close),
            };
            let Some(p) = pending.pop_front() else { unreachable!("checked non-empty above") };
            done.answers += 1;
            if p.measured {
                measured_done += 1;
                let corrected = now - p.scheduled_ns;
                rec.record(Phase::Corrected, now, corrected);
                rec.record(Phase::Uncorrected, now, now - p.sent_ns);
                rec.counts.status_classes[usize::from(status / 100).min(6)] += 1;
                if status >= 400 {
                    done.bad_status += 1;
                    done.last_bad_status = status;
                }
                if let Some(s) = second {
                    rec.second(s).latency.saturating_record(corrected);
                }
            }
            if let Some(s) = second {
                rec.second(s).answers += 1;
            }
            if close {
                close_after = true;
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        };
        let result = match data {
            Some(bytes) => c.rx.feed(bytes, request, &mut self.heads, &mut on_event),
            None => c.rx.end_of_input().map_or(Ok(Flow::Continue), &mut on_event).map(|_| ()),
        };
        c.close_after |= close_after;
        let answered = done.answers;
        c.answered += answered;
        if second.is_some() && answered > 0 {
            c.longest_gap = c.longest_gap.max(now - c.last_answer_at_ns.max(window.start_ns));
            c.last_answer_at_ns = now;
            c.window_answers += answered;
        }
        if answered > 0 {
            c.answered_since_failure = true;
            if c.pending.is_empty() {
                c.free_since_ns = now;
            }
        }
        self.answers += answered;
        self.measured_in_flight -= measured_done;
        self.rec.counts.requests += measured_done;
        if measured_done > 0 {
            self.rec.counts.last_answer_ns = now;
        }
        if second.is_some() {
            self.rec.counts.answers_in_window += answered;
        }
        (done, result)
    }

    /// Count `n` errors of `kind` on `c` at `now`; `message` is asked for only
    /// the first time the kind is seen.
    pub fn error(
        &mut self,
        c: &mut Conn,
        window: &Window,
        kind: ErrorKind,
        n: u64,
        now: u64,
        message: impl FnOnce() -> String,
    ) {
        let bit = 1u16 << (kind as u16);
        let new_conn = c.error_kinds & bit == 0;
        c.error_kinds |= bit;
        self.rec.error(kind, n, new_conn, message);
        self.errors += n;
        if let Some(s) = window.second(now) {
            self.rec.second(s).errors += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SEC;
    use crate::conn::{Pending, Rx};
    use proto::Proto;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";

    /// A window open from 1 s for 10 s, and an open HTTP connection with
    /// requests scheduled at `scheduled` (measured when inside the window), all sent at `sent`.
    fn setup(scheduled: &[u64], sent: u64) -> (Tally, Window, Conn) {
        let mut window = Window::new(0, SEC);
        window.open(0, 0, SEC, Some(10 * SEC));
        let mut tally = Tally::new(Recorder::new());
        let mut c = Conn::new(0, Rx::new(Proto::Http, false), 8, u64::MAX, (0, 0));
        for &at in scheduled {
            let measured = window.contains(at);
            c.pending.push_back(Pending { scheduled_ns: at, sent_ns: sent, measured });
            tally.measured_in_flight += u64::from(measured);
        }
        (tally, window, c)
    }

    #[test]
    fn measured_answers_are_recorded_corrected_and_not() {
        let (mut tally, window, mut c) = setup(&[SEC / 2, 2 * SEC, 2 * SEC + 10], 2 * SEC + 100);
        let now = 2 * SEC + 1_100;
        let (done, result) = tally.answers(&mut c, &window, b"", Some(&OK.repeat(3)), now);
        result.unwrap();
        assert_eq!(done, Answered { answers: 3, bad_status: 0, last_bad_status: 0 });
        let rec = &tally.rec;
        assert_eq!((rec.counts.requests, rec.counts.answers_in_window, tally.measured_in_flight), (2, 3, 0));
        assert_eq!(rec.corrected.len(), 2, "the warmup's request is in no histogram");
        assert_eq!(rec.corrected.max(), rec.corrected.highest_equivalent(1_100));
        assert_eq!(rec.uncorrected.max(), rec.uncorrected.highest_equivalent(1_000));
        assert_eq!(rec.first_byte.len(), 2);
        assert_eq!(rec.seconds[1].answers, 3);
        assert_eq!((c.answered, c.window_answers, c.last_answer_at_ns, c.free_since_ns), (3, 3, now, now));
        assert_eq!(c.longest_gap, now - SEC, "from the window's start");
    }

    #[test]
    fn statuses_split_answers_into_classes_and_bad_ones() {
        let (mut tally, window, mut c) = setup(&[2 * SEC, 2 * SEC], 2 * SEC);
        let answers = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\nHTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n";
        let (done, result) = tally.answers(&mut c, &window, b"", Some(answers), 2 * SEC + 5);
        result.unwrap();
        assert_eq!((done.bad_status, done.last_bad_status), (1, 503));
        assert_eq!(tally.rec.counts.status_classes[5], 1);
        assert_eq!(tally.rec.counts.status_classes[3], 1);
        tally.error(&mut c, &window, ErrorKind::BadStatus, 1, 2 * SEC + 5, || "503".into());
        tally.error(&mut c, &window, ErrorKind::BadStatus, 2, 2 * SEC + 6, || unreachable!("asked once"));
        let t = tally.rec.error_tally(ErrorKind::BadStatus);
        assert_eq!((t.count, t.conns, tally.errors, tally.rec.seconds[1].errors), (3, 1, 3, 3));
    }

    #[test]
    fn a_request_being_written_may_be_answered_already() {
        // An echo of 6 bytes, 4 written: the server echoes them at once.
        let mut window = Window::new(0, SEC);
        window.open(0, 0, 0, Some(10 * SEC));
        let mut tally = Tally::new(Recorder::new());
        let mut c = Conn::new(0, Rx::new(Proto::Echo, false), 1, u64::MAX, (0, 0));
        c.pending.push_back(Pending { scheduled_ns: 1, sent_ns: 1, measured: true });
        (c.unsent, c.written) = (1, 4);
        tally.measured_in_flight = 1;
        let (done, result) = tally.answers(&mut c, &window, b"abcdef", Some(b"abcd"), 2);
        assert_eq!((done.answers, result), (0, Ok(())));
        // Nothing written of it yet: no answer can be its.
        c.written = 0;
        let (_, result) = tally.answers(&mut c, &window, b"abcdef", Some(b"ef"), 3);
        assert!(result.unwrap_err().contains("no request outstanding"));
        // All of it in a send in flight (io_uring): its echo may come before the send's completion.
        let mut c = Conn::new(0, Rx::new(Proto::Echo, false), 1, u64::MAX, (0, 0));
        c.pending.push_back(Pending { scheduled_ns: 1, sent_ns: 1, measured: true });
        (c.unsent, c.sending) = (1, true);
        let (done, result) = tally.answers(&mut c, &window, b"abcdef", Some(b"abcdef"), 4);
        assert_eq!((done.answers, result), (1, Ok(())));
    }

    #[test]
    fn an_answer_with_no_request_or_a_close_stops_the_framing() {
        let (mut tally, window, mut c) = setup(&[2 * SEC], 2 * SEC);
        let (done, result) = tally.answers(&mut c, &window, b"", Some(&OK.repeat(2)), 2 * SEC + 1);
        assert_eq!(done.answers, 1, "the first counts");
        assert!(result.unwrap_err().contains("no request outstanding"));
        let (mut tally, window, mut c) = setup(&[2 * SEC, 2 * SEC], 2 * SEC);
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let (done, result) = tally.answers(&mut c, &window, b"", Some(&[&close[..], OK].concat()), 2 * SEC + 1);
        result.unwrap();
        assert_eq!((done.answers, c.close_after, c.pending.len()), (1, true, 1), "the rest is sent again");
        // An answer delimited by the close completes at the end of input.
        let (mut tally, window, mut c) = setup(&[2 * SEC], 2 * SEC);
        tally.answers(&mut c, &window, b"", Some(b"HTTP/1.0 200 OK\r\n\r\nbody"), 2 * SEC + 1).1.unwrap();
        let (done, result) = tally.answers(&mut c, &window, b"", None, 2 * SEC + 2);
        result.unwrap();
        assert_eq!((done.answers, c.close_after), (1, true));
    }
}
