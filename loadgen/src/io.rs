//! The I/O half of [`Engine`]: connecting, reading and framing answers,
//! writing requests, and what happens when a connection fails or closes.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Token};
use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
use socket2::{Domain, Protocol, Socket, Type};

use crate::clock::SEC;
use crate::conn::{AnswerEvent, Flow, State};
use crate::engine::{Engine, Live};
use crate::env::ThreadCpu;
use crate::intervals::Phase;
use crate::recorder::{ErrorKind, Recorder};

const MIN_RETRY: u64 = 10 * crate::clock::MS;
const MAX_RETRY: u64 = SEC;

/// A non-blocking socket with its connect issued (`EINPROGRESS`).
fn open_socket(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        if ip.is_ipv4() {
            // Share source ports between sockets as long as the 4-tuple differs.
            setsockopt(&sock, IpBindAddressNoPort, &true)?;
        }
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}

fn connect_kind(e: &io::Error) -> ErrorKind {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => ErrorKind::ConnectRefused,
        Some(libc::ETIMEDOUT) => ErrorKind::ConnectTimeout,
        _ => ErrorKind::ConnectOther,
    }
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
            ErrorKind::Reset
        }
        _ => ErrorKind::Other,
    }
}

impl Engine<'_> {
    /// Start a non-blocking connect on slot `i`.
    pub(crate) fn connect(&mut self, i: usize, now: u64) {
        let cfg = &self.plan.config;
        let c = &mut self.conns[i];
        c.state = State::Connecting;
        c.phase_at_ns = now;
        c.connecting = true;
        self.connecting += 1;
        self.rec.counts.first_connect_ns.get_or_insert(now);
        let registered = open_socket(cfg.settings.addr, cfg.source_for(c.global)).and_then(|mut stream| {
            self.poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE)?;
            Ok(stream)
        });
        match registered {
            Ok(stream) => self.conns[i].stream = Some(stream),
            Err(e) => {
                let source = cfg.source_for(self.conns[i].global).map(|s| format!(" from {s}")).unwrap_or_default();
                self.fail(i, connect_kind(&e), format!("connect to {}{source}: {e}", cfg.settings.addr), now);
            }
        }
    }

    pub(crate) fn on_event(&mut self, i: usize, event: &Event, now: u64) {
        if self.conns[i].state == State::Connecting {
            let Some(stream) = self.conns[i].stream.as_ref() else { return };
            let addr = self.plan.config.settings.addr;
            match stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.fail(i, connect_kind(&e), format!("connect to {addr}: {e}"), now),
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => self.established(i, now),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(i, ErrorKind::ConnectOther, format!("connect to {addr}: {e}"), now),
            }
        }
        if self.conns[i].state != State::Open {
            return;
        }
        let closed = event.is_read_closed() || event.is_error();
        if event.is_readable() || closed {
            self.read(i, closed, now);
        }
        if self.conns[i].state == State::Open && event.is_writable() && self.conns[i].unsent > 0 {
            self.flush(i, now);
        }
    }

    fn established(&mut self, i: usize, now: u64) {
        let in_window = self.in_window(now);
        let slots = self.conns.len() as u64;
        let c = &mut self.conns[i];
        c.state = State::Open;
        self.open += 1;
        self.rec.counts.peak_open = self.rec.counts.peak_open.max(self.open);
        if !c.established_once {
            c.established_once = true;
            self.rec.record(Phase::Connect, now, now - c.phase_at_ns);
            self.established += 1;
            self.rec.counts.established += 1;
            if self.established == slots {
                self.rec.counts.all_established_ns = Some(now);
            }
        } else if in_window {
            self.rec.reconnect.saturating_record(now - c.closed_at_ns);
            self.rec.counts.reconnects += 1;
        }
        c.phase_at_ns = now;
        // Free from now on: time spent connecting is not the client's dispatch lag.
        c.free_since_ns = now;
        c.on_socket = c.pending.len() as u64;
        if std::mem::take(&mut c.gated) {
            self.plan.pass_gate(now);
        }
        self.connect_done(i);
        if self.conns[i].unsent > 0 {
            self.flush(i, now);
        }
        self.pump(i, now);
    }

    /// Read and frame what slot `i` has; `closed`: the event said the peer
    /// closed (or failed), so read on to the end of file.
    fn read(&mut self, i: usize, closed: bool, now: u64) {
        loop {
            let Some(stream) = self.conns[i].stream.as_mut() else { return };
            match stream.read(&mut self.buf) {
                Ok(0) => return self.peer_closed(i, now),
                Ok(n) => {
                    if self.in_window(now) {
                        self.rec.counts.bytes_received += n as u64;
                    }
                    if let Err(msg) = self.answers(i, Some(n), now) {
                        let msg = format!("bad answer from {}: {msg}", self.plan.config.settings.addr);
                        return self.fail(i, ErrorKind::BadAnswer, msg, now);
                    }
                    self.after_answers(i, now);
                    // A short read drained the socket: edge-triggered epoll will
                    // report the next bytes, no need for a read that says EAGAIN
                    // (unless the peer's FIN is already in, which raises no new edge).
                    if self.conns[i].state != State::Open || (n < self.buf.len() && !closed) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let msg = format!("read from {}: {e}", self.plan.config.settings.addr);
                    return self.fail(i, io_kind(&e), msg, now);
                }
            }
        }
    }

    /// Frame the `data` bytes just read into the buffer (`None`: the server
    /// closed, which ends an answer delimited by the close) and account every answer.
    fn answers(&mut self, i: usize, data: Option<usize>, now: u64) -> Result<(), String> {
        let (window_start, window_end) = (self.window_start_ns, self.window_end_ns);
        let in_window = now >= window_start && now < window_end;
        let second = (in_window).then(|| ((now - window_start) / SEC) as usize);
        let c = &mut self.conns[i];
        let rec = &mut self.rec;
        let (mut answered, mut measured_done, mut bad_status) = (0u64, 0u64, 0u64);
        let mut first_bad = 0u16;
        let mut on_event = |event: AnswerEvent| -> Result<Flow, String> {
            if c.pending.len() <= c.unsent as usize {
                return Err("an answer arrived with no request outstanding".into());
            }
            let (status, close) = match event {
                AnswerEvent::FirstByte => {
                    if let Some(p) = c.pending.front().filter(|p| p.measured) {
                        rec.record(Phase::FirstByte, now, now - p.sent_ns);
                    }
                    return Ok(Flow::Continue);
                }
                AnswerEvent::Done { status, close } => (status, close),
            };
            let Some(p) = c.pending.pop_front() else { unreachable!("checked non-empty above") };
            answered += 1;
            if p.measured {
                measured_done += 1;
                let corrected = now - p.scheduled_ns;
                rec.record(Phase::Corrected, now, corrected);
                rec.record(Phase::Uncorrected, now, now - p.sent_ns);
                rec.counts.status_classes[usize::from(status / 100).min(6)] += 1;
                if status >= 400 {
                    bad_status += 1;
                    first_bad = status;
                }
                if let Some(s) = second {
                    rec.second(s).latency.saturating_record(corrected);
                }
            }
            if let Some(s) = second {
                rec.second(s).answers += 1;
            }
            if close {
                c.close_after = true;
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        };
        let result = match data {
            Some(n) => c.rx.feed(&self.buf[..n], &self.plan.request, &mut on_event),
            None => c.rx.end_of_input().map_or(Ok(Flow::Continue), &mut on_event).map(|_| ()),
        };
        c.answered += answered;
        if in_window && answered > 0 {
            c.longest_gap = c.longest_gap.max(now - c.last_answer_at_ns.max(window_start));
            c.last_answer_at_ns = now;
            c.window_answers += answered;
        }
        if answered > 0 {
            self.last_progress_ns = now;
            c.answered_since_failure = true;
            if c.pending.is_empty() {
                c.free_since_ns = now;
            }
        }
        self.answers_total += answered;
        self.measured_in_flight -= measured_done;
        rec.counts.requests += measured_done;
        if measured_done > 0 {
            rec.counts.last_answer_ns = now;
        }
        if in_window {
            rec.counts.answers_in_window += answered;
        }
        if bad_status > 0 {
            let addr = self.plan.config.settings.addr;
            self.count_error(i, ErrorKind::BadStatus, bad_status, now, || {
                format!("{addr} answered status {first_bad}")
            });
        }
        result
    }

    /// Reconnect, finish or send more after answers were taken.
    fn after_answers(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        if c.close_after {
            // The server closes after this answer: send what it did not answer
            // again on a new connection.
            for p in c.pending.iter_mut() {
                p.sent_ns = now;
            }
            c.unsent = c.pending.len() as u32;
            c.written = 0;
            if self.in_window(now) {
                self.rec.counts.server_closes += 1;
            }
            return self.reconnect(i, now);
        }
        if self.mark_if_done(i) {
            return;
        }
        let c = &self.conns[i];
        let per_socket = self.plan.config.settings.reqs_per_conn.unwrap_or(u64::MAX);
        if c.on_socket >= per_socket && c.pending.is_empty() {
            return self.reconnect(i, now);
        }
        self.pump(i, now);
    }

    /// Count slot `i` out of the busy ones once its budget is spent and nothing is in flight.
    fn mark_if_done(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        if !c.finished && c.is_done() {
            c.finished = true;
            self.busy -= 1;
        }
        c.finished
    }

    /// Write the slot's unsent requests; stops at `WouldBlock` (WRITABLE resumes).
    pub(crate) fn flush(&mut self, i: usize, now: u64) {
        let len = self.plan.request.len();
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = c.stream.as_mut() else { return };
            if c.unsent == 0 {
                return;
            }
            let end = c.unsent as usize * len;
            match stream.write(&self.plan.batch[c.written..end]) {
                Ok(0) => {
                    let msg = format!("write to {}: wrote nothing", self.plan.config.settings.addr);
                    return self.fail(i, ErrorKind::Other, msg, now);
                }
                Ok(n) => {
                    let total = c.written + n;
                    c.unsent -= (total / len) as u32;
                    c.written = total % len;
                    if now >= self.window_start_ns && now < self.window_end_ns {
                        self.rec.counts.bytes_sent += n as u64;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let msg = format!("write to {}: {e}", self.plan.config.settings.addr);
                    return self.fail(i, io_kind(&e), msg, now);
                }
            }
        }
    }

    fn peer_closed(&mut self, i: usize, now: u64) {
        // An answer whose body ran until the close is complete now.
        if let Err(msg) = self.answers(i, None, now) {
            let msg = format!("bad answer from {}: {msg}", self.plan.config.settings.addr);
            return self.fail(i, ErrorKind::BadAnswer, msg, now);
        }
        if self.conns[i].close_after {
            return self.after_answers(i, now);
        }
        let c = &self.conns[i];
        if !c.pending.is_empty() || c.rx.mid_answer() {
            let msg = format!(
                "{} closed the connection with {} request(s) unanswered",
                self.plan.config.settings.addr,
                c.pending.len().max(1)
            );
            return self.fail(i, ErrorKind::ClosedEarly, msg, now);
        }
        if self.in_window(now) {
            self.rec.counts.server_closes += 1;
        }
        self.reconnect(i, now);
    }

    /// Count `n` errors of `kind` on slot `i`.
    fn count_error(&mut self, i: usize, kind: ErrorKind, n: u64, now: u64, msg: impl FnOnce() -> String) {
        let bit = 1u16 << (kind as u16);
        let c = &mut self.conns[i];
        let new_conn = c.error_kinds & bit == 0;
        c.error_kinds |= bit;
        self.rec.error(kind, n, new_conn, msg);
        self.errors_total += n;
        if self.in_window(now) {
            let s = ((now - self.window_start_ns) / SEC) as usize;
            self.rec.second(s).errors += n;
        }
    }

    /// Slot `i` failed: count the requests it loses, close it, retry with backoff.
    pub(crate) fn fail(&mut self, i: usize, kind: ErrorKind, msg: String, now: u64) {
        // Connect failures while the connections are first opened count too.
        let in_window = self.in_window(now) || (kind.is_connect() && !self.loaded);
        let c = &mut self.conns[i];
        let measured = c.measured_pending();
        let n = if c.pending.is_empty() {
            u64::from(in_window)
        } else {
            measured.max(u64::from(kind.is_connect() && in_window))
        };
        self.measured_in_flight -= measured;
        c.pending.clear();
        c.unsent = 0;
        c.written = 0;
        if n > 0 {
            self.count_error(i, kind, n, now, || msg);
        }
        if kind.is_connect() && std::mem::take(&mut self.conns[i].gated) {
            self.plan.pass_gate(now);
        }
        self.close(i, now);
        let c = &mut self.conns[i];
        c.retry_delay_ns =
            if c.answered_since_failure { 0 } else { (c.retry_delay_ns * 2).clamp(MIN_RETRY, MAX_RETRY) };
        c.answered_since_failure = false;
        if self.mark_if_done(i) || now >= self.window_end_ns {
            return;
        }
        let delay = self.conns[i].retry_delay_ns;
        if delay == 0 {
            self.queue.push_back(i as u32);
        } else {
            self.conns[i].state = State::Backoff;
            self.set_timer(i, now + delay);
        }
    }

    /// Close slot `i`'s socket and queue it to connect again.
    fn reconnect(&mut self, i: usize, now: u64) {
        self.close(i, now);
        if !self.mark_if_done(i) && now < self.window_end_ns {
            self.queue.push_back(i as u32);
        }
    }

    fn close(&mut self, i: usize, now: u64) {
        self.connect_done(i);
        let c = &mut self.conns[i];
        if c.stream.take().is_some() && c.state == State::Open {
            self.open -= 1;
        }
        c.state = State::Idle;
        c.rx.reset();
        c.closed_at_ns = now;
        c.on_socket = 0;
        c.close_after = false;
        c.timer_at_ns = 0;
    }

    /// The thread's recorder, with its CPU use and end-of-run counts.
    pub(crate) fn finish(mut self, now: u64, live: &Live) -> Recorder {
        let (t0, cpu0) = self.cpu_start.unwrap_or((now, ThreadCpu::now()));
        let (t1, cpu1) = self.cpu_end.unwrap_or((now, ThreadCpu::now()));
        let used = cpu1.since(cpu0);
        if let Some(iv) = &mut self.rec.intervals {
            iv.flush();
        }
        let counts = &mut self.rec.counts;
        counts.ended_ns = now;
        counts.cpu_user_ns = used.user_ns;
        counts.cpu_sys_ns = used.sys_ns;
        counts.cpu_wait_ns = used.wait_ns;
        if self.cpu_end.is_none() {
            counts.idle_spin_ns = self.idle_spin_ns - self.idle_spin_at_start_ns;
        }
        let working = (used.user_ns + used.sys_ns).saturating_sub(counts.idle_spin_ns);
        counts.max_thread_util = if t1 > t0 { working as f64 / (t1 - t0) as f64 } else { 0.0 };
        counts.window_ns =
            if self.loaded { self.window_end_ns.min(now).saturating_sub(self.window_start_ns) } else { 0 };
        let (schedule, start, end) = (self.plan.schedule, self.window_start_ns, self.window_end_ns);
        counts.unsent = self.conns.iter().map(|c| schedule.remaining(c.due_ns, c.rng, start, end).min(c.budget)).sum();
        let config = &self.plan.config;
        counts.starved =
            self.conns.iter().filter(|c| c.answered == 0 && config.request_budget(c.global) > 0).count() as u64;
        // Fairness over the connections that carried load. The gap from the last answer
        // to the window's end counts, unless the connection had spent its budget.
        let end = self.window_end_ns.min(now);
        if self.loaded && end > start {
            for c in self.conns.iter().filter(|c| config.request_budget(c.global) > 0) {
                let trailing = if c.budget == 0 { 0 } else { end.saturating_sub(c.last_answer_at_ns.max(start)) };
                self.rec.answers_per_conn.saturating_record(c.window_answers);
                self.rec.longest_gap.saturating_record(c.longest_gap.max(trailing));
                self.rec.counts.fair_sum += c.window_answers;
                self.rec.counts.fair_sum_sq += (c.window_answers as f64) * (c.window_answers as f64);
            }
        }
        // Reset rather than close what is still open: a client that closes
        // first keeps each port in TIME_WAIT for a minute, and the next run's
        // connects then crawl through a nearly exhausted port range.
        for c in &self.conns {
            if let Some(stream) = &c.stream {
                let _ = socket2::SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO));
            }
        }
        live.answers.store(self.answers_total, std::sync::atomic::Ordering::Relaxed);
        live.done.store(true, std::sync::atomic::Ordering::Release);
        self.rec
    }
}
