//! One event-loop thread: its share of the connections, over an I/O back end
//! ([`Io`]).
//!
//! The loop is the same for closed and open loop; the [`Schedule`] says when a
//! connection may send. Per iteration: fire due timers (open-loop sends,
//! retries), start connects the window allows, housekeeping (timeouts, the
//! timeline, progress), then wait for I/O. Timers have nanosecond deadlines
//! (epoll's own timeout has millisecond steps). In open loop the thread stops
//! sleeping `--spin` (100 us by default) before the deadline and spins the rest,
//! so a send is late by microseconds, not by a CPU wake-up; with `--spin busy`
//! it never sleeps. Spinning with nothing to do is counted apart, so that the
//! client's utilisation stays the share of its time it spent working.
//!
//! No allocation per request: the request bytes (repeated `pipeline` times) are
//! shared by the thread's connections, answers are framed where the back end
//! read them, and only a partial HTTP head is carried over per connection.
//!
//! # Layout
//!
//! - this file: the loop, and what happens to a connection (connect, send,
//!   answers, failures, reconnects), written once for every back end.
//! - [`slots`]: the connection table, the connect queue, window and ramp.
//! - [`timers`]: one deadline per slot (open-loop sends, retries).
//! - [`window`]: the measured window, the timeline's seconds, sweeps, the end of the run.
//! - [`tally`]: the recorder, and the accounting of answers and errors.
//! - [`usage`]: the thread's own CPU over the window (the self-check).
//! - [`mio`]: the epoll back end; [`uring`]: the io_uring back end;
//!   [`socket`]: the client socket both open.

mod mio;
mod slots;
mod socket;
mod tally;
mod timers;
mod uring;
mod usage;
mod window;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clock::{now_ns, MS, SEC};
use crate::config::Share;
use crate::conn::{Conn, Pending, State};
use crate::error::LoadError;
use crate::intervals::Phase;
pub use crate::plan::{Live, Plan};
use crate::recorder::{ErrorKind, Recorder};
use crate::schedule::Next;
use crate::settings::IoEngine;
use slots::{Offer, Opened, Slots};
use tally::Tally;
use timers::Timers;
use usage::Usage;
use window::Window;

/// Connects started per loop iteration, so that completions are seen (and
/// timed) promptly while thousands are being opened.
const CONNECT_BATCH: usize = 64;
/// While waiting for the gate, look at it this often.
const GATE_POLL: u64 = 5 * MS;

/// What [`Io::send`] did with the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// This many were written now (0: the socket is full; the back end says
    /// when it is writable again through [`Engine::writable`]).
    Now(usize),
    /// Handed to the kernel whole; [`Engine::send_completed`] says how it went.
    Queued,
}

/// What the loop needs of its I/O: a socket per connection slot, and a way to
/// wait for what happens to them. [`Io::turn`] hands every event to the engine
/// ([`Engine::connected`], [`Engine::received`], [`Engine::peer_closed`], ...).
pub trait Io: Sized {
    /// The back end of one thread of `plan`, for `slots` connection slots.
    fn new(plan: &Plan, slots: usize) -> Result<Self, LoadError>;
    /// Open a socket for slot `i` and start connecting it to `addr` (from `source`).
    fn connect(&mut self, i: usize, addr: SocketAddr, source: Option<IpAddr>) -> io::Result<()>;
    /// Write `bytes` of the plan's request batch ([`Plan::batch`]) on slot `i`.
    fn send(&mut self, i: usize, bytes: Range<usize>) -> io::Result<Sent>;
    /// Close slot `i`'s socket, if it has one.
    fn close(&mut self, i: usize);
    /// Wait for I/O until `wake_at` (monotonic ns; `None`: do not block), and
    /// hand every event to `engine`. False when nothing happened.
    fn turn(engine: &mut Engine<'_, Self>, wake_at: Option<u64>) -> Result<bool, LoadError>;
    /// The run is over: reset the sockets still open rather than close them
    /// (a client that closes first keeps each port in TIME_WAIT for a minute,
    /// and the next run's connects crawl through a nearly exhausted port range).
    fn finish(&mut self);
}

/// Set this thread's timer slack to the minimum (1 ns) so that its sleeps end
/// when asked, not up to 50 us later (the default slack).
fn min_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and only changes the
    // calling thread's timer slack; no memory is passed to the kernel.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    // Failing leaves the default 50 us slack, which the spin covers; nothing to report.
    let _ = rc;
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

/// Drive `share` of the plan's connections on the calling thread, over the
/// configured back end, until the window has ended and its requests are
/// answered (or timed out).
pub fn run_thread(plan: &Plan, share: Share, live: &Live) -> Result<Recorder, LoadError> {
    match plan.config.settings.engine {
        IoEngine::Mio => Engine::<mio::Mio>::new(plan, share)?.run(live),
        IoEngine::Uring => Engine::<uring::Uring>::new(plan, share)?.run(live),
    }
}

/// Can the configured back end run here? Asked once before anything connects.
pub fn check(engine: IoEngine) -> Result<(), LoadError> {
    match engine {
        IoEngine::Mio => Ok(()),
        IoEngine::Uring => uring::available(),
    }
}

/// One thread's loop. See the module documentation.
pub struct Engine<'p, B> {
    plan: &'p Plan,
    io: B,
    slots: Slots,
    timers: Timers,
    window: Window,
    usage: Usage,
    tally: Tally,
    /// How long before a deadline the thread stops sleeping: `--spin` in open loop
    /// (`u64::MAX` for busy), else 0.
    spin_ns: u64,
}

impl<'p, B: Io> Engine<'p, B> {
    pub fn new(plan: &'p Plan, share: Share) -> Result<Self, LoadError> {
        let c = &plan.config;
        let conns: Vec<Conn> = (share.first..share.first + share.count)
            .map(|g| {
                let rx = crate::conn::Rx::new(c.settings.proto, c.head_request());
                let due = c.first_due(&plan.schedule, plan.epoch, g);
                let mut conn = Conn::new(g, rx, c.settings.pipeline, c.request_budget(g), due);
                conn.silent = crate::silent::is_silent(c, g);
                conn
            })
            .collect();
        let mut rec = Recorder::new();
        rec.counts.slots = share.count;
        rec.counts.threads = 1;
        if c.intervals {
            rec.intervals = Some(crate::intervals::Intervals::new(plan.interval_base_ns()));
        }
        // The window is per process, the connect rate over all processes.
        let of_process = share.count as f64 / plan.slots.max(1) as f64;
        let connect_cap = ((f64::from(c.connect_window) * of_process).ceil() as u32).max(1);
        let per_thread = share.count as f64 / c.slots() as f64;
        let rate_per_ns = c.settings.connect_rate.map(|r| r * per_thread / SEC as f64);
        Ok(Engine {
            plan,
            io: B::new(plan, conns.len())?,
            timers: Timers::new(conns.len()),
            slots: Slots::new(conns, connect_cap, rate_per_ns),
            window: Window::new(plan.epoch, crate::clock::ns(c.settings.timeout)),
            usage: Usage::default(),
            tally: Tally::new(rec),
            spin_ns: if plan.schedule.is_open() { c.spin.ns() } else { 0 },
        })
    }

    /// Drive the connections until the window has ended and its requests are
    /// answered (or timed out); return what was measured.
    pub fn run(mut self, live: &Live) -> Result<Recorder, LoadError> {
        let wait = self.plan.epoch.saturating_sub(now_ns());
        if wait > 0 {
            std::thread::sleep(Duration::from_nanos(wait));
        }
        if self.spin_ns > 0 {
            min_timer_slack();
        }
        loop {
            let now = now_ns();
            self.housekeeping(now, live);
            if !self.window.loaded {
                self.open_gate(now);
            }
            self.fire_timers(now);
            self.start_connects(now);
            if self.finished(now) {
                break;
            }
            let deadline = self.next_deadline(now);
            // Within `spin_ns` of the deadline: poll without blocking (spin).
            let spinning = deadline <= now.saturating_add(self.spin_ns);
            let wake_at = (!spinning).then(|| deadline - self.spin_ns);
            let any = B::turn(&mut self, wake_at)?;
            // An empty turn ahead of the deadline did nothing but wait.
            if spinning && deadline > now && !any {
                self.usage.spun_idle(now_ns().saturating_sub(now));
            }
        }
        let now = now_ns();
        self.end_window(now);
        Ok(self.finish(now, live))
    }

    fn finished(&self, now: u64) -> bool {
        let settings = &self.plan.config.settings;
        let timeout = crate::clock::ns(settings.timeout);
        let stall = timeout + crate::clock::ns(settings.connect_timeout);
        self.slots.busy == 0 || self.window.finished(now, self.tally.measured_in_flight, timeout, stall)
    }

    fn next_deadline(&self, now: u64) -> u64 {
        let mut at = self.window.next_tick();
        if !self.window.loaded {
            at = at.min(now + GATE_POLL).min(self.plan.load_at.unwrap_or(u64::MAX));
        }
        if let Some(t) = self.timers.next() {
            at = at.min(t);
        }
        at = at.min(self.usage.next_edge(self.window.start_ns, self.window.end_ns));
        if self.slots.can_connect() {
            // More to connect: now, or when the ramp allows the next one.
            at = at.min(self.slots.next_initial_connect(self.plan.epoch).unwrap_or(now).max(now));
        }
        at
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(i) = self.timers.pop_due(now) {
            match self.slots.conns[i].state {
                State::Backoff => {
                    self.slots.conns[i].state = State::Idle;
                    self.slots.requeue(i);
                }
                State::Open => self.pump(i, now),
                State::Idle | State::Connecting => {}
            }
        }
    }

    /// Start the load once every connection of the process was tried.
    fn open_gate(&mut self, now: u64) {
        let mut released = self.plan.released_at.load(Ordering::Acquire);
        if released == 0 {
            match self.plan.release_on_time(now) {
                Some(at) => released = at,
                None => return,
            }
        }
        self.window.open(released, now, self.plan.warmup_ns, self.plan.duration_ns);
        self.tally.rec.counts.window_start_ns = Some(self.window.start_ns);
        // Open loop: the schedule starts with the load.
        let shift = released.saturating_sub(self.plan.epoch);
        for i in 0..self.slots.conns.len() {
            self.slots.conns[i].due_ns += shift;
            if self.slots.conns[i].state == State::Open {
                self.pump(i, now);
            }
        }
    }

    fn start_connects(&mut self, now: u64) {
        for _ in 0..CONNECT_BATCH {
            match self.slots.offer(now, self.plan.epoch) {
                Offer::Connect(i) => self.connect(i, now),
                Offer::Skip => {}
                Offer::Wait => break,
            }
        }
    }

    /// Timeouts, the stop, the timeline, the window's edges, progress.
    fn housekeeping(&mut self, now: u64, live: &Live) {
        if self.plan.stop.load(Ordering::Relaxed) {
            self.window.stop(now);
        }
        self.usage.begin_if_due(now, self.window.start_ns);
        while let Some(s) = self.window.second_passed(now) {
            self.tally.rec.second(s).open_conns = self.slots.open;
        }
        if !self.usage.ended() && now >= self.window.end_ns {
            self.end_window(now);
        }
        if self.window.sweep_due(now) {
            self.sweep(now);
            live.answers.store(self.tally.answers, Ordering::Relaxed);
            live.errors.store(self.tally.errors, Ordering::Relaxed);
            live.open.store(self.slots.open, Ordering::Relaxed);
        }
    }

    fn end_window(&mut self, now: u64) {
        if self.usage.ended() {
            return;
        }
        let counts = &mut self.tally.rec.counts;
        self.usage.end(now, counts);
        counts.open_at_end = self.slots.open;
        // A partial last second still gets its open-connection count.
        if let Some(s) = self.window.close(now) {
            self.tally.rec.second(s).open_conns = self.slots.open;
        }
    }

    /// Fail the connects and requests that have waited too long.
    fn sweep(&mut self, now: u64) {
        let settings = &self.plan.config.settings;
        let timeout = crate::clock::ns(settings.timeout);
        let connect_timeout = crate::clock::ns(settings.connect_timeout);
        let (addr, format) = (settings.addr, humantime::format_duration);
        for i in 0..self.slots.conns.len() {
            let c = &self.slots.conns[i];
            let (kind, msg) = match c.state {
                State::Connecting if now - c.phase_at_ns >= connect_timeout => {
                    let msg = format!("connect to {addr}: no answer within {}", format(settings.connect_timeout));
                    (ErrorKind::ConnectTimeout, msg)
                }
                State::Open if c.pending.front().is_some_and(|p| now.saturating_sub(p.sent_ns) >= timeout) => {
                    (ErrorKind::Timeout, format!("request to {addr} unanswered after {}", format(settings.timeout)))
                }
                _ => continue,
            };
            self.fail(i, kind, msg, now);
        }
    }

    /// Slot `i` was offered a connect: open its socket.
    fn connect(&mut self, i: usize, now: u64) {
        self.tally.rec.counts.first_connect_ns.get_or_insert(now);
        let settings = &self.plan.config.settings;
        let source = self.plan.config.source_for(self.slots.conns[i].global);
        if let Err(e) = self.io.connect(i, settings.addr, source) {
            let from = source.map(|s| format!(" from {s}")).unwrap_or_default();
            let msg = format!("connect to {}{from}: {e}", settings.addr);
            self.fail(i, connect_kind(&e), msg, now);
        }
    }

    /// Slot `i`'s connect failed with `e` (counted as `kind`).
    fn connect_failed(&mut self, i: usize, kind: ErrorKind, e: &io::Error, now: u64) {
        let msg = format!("connect to {}: {e}", self.plan.config.settings.addr);
        self.fail(i, kind, msg, now);
    }

    /// Slot `i`'s connect completed: send what waits, then what the schedule allows.
    fn connected(&mut self, i: usize, now: u64) {
        let in_window = self.window.contains(now);
        let opened = self.slots.opened(i, now);
        let rec = &mut self.tally.rec;
        rec.counts.peak_open = rec.counts.peak_open.max(self.slots.open);
        match opened {
            Opened::First { connect_ns, all } => {
                rec.record(Phase::Connect, now, connect_ns);
                rec.counts.established += 1;
                if all {
                    rec.counts.all_established_ns = Some(now);
                }
            }
            Opened::Again { reconnect_ns } if in_window => {
                rec.reconnect.saturating_record(reconnect_ns);
                rec.counts.reconnects += 1;
            }
            Opened::Again { .. } => {}
        }
        if std::mem::take(&mut self.slots.conns[i].gated) {
            self.plan.pass_gate(now);
        }
        if self.slots.conns[i].unsent > 0 {
            self.flush(i, now);
        }
        self.pump(i, now);
    }

    /// `data` was read on slot `i`. False when the slot is no longer open, so
    /// that the back end stops reading from it.
    fn received(&mut self, i: usize, data: &[u8], now: u64) -> bool {
        if self.window.contains(now) {
            self.tally.rec.counts.bytes_received += data.len() as u64;
        }
        if let Err(msg) = self.answers(i, Some(data), now) {
            let msg = format!("bad answer from {}: {msg}", self.plan.config.settings.addr);
            self.fail(i, ErrorKind::BadAnswer, msg, now);
            return false;
        }
        self.after_answers(i, now);
        self.slots.conns[i].state == State::Open
    }

    /// Slot `i`'s socket failed while reading or writing (`op`: `read from`, `write to`).
    fn io_failed(&mut self, i: usize, op: &str, e: &io::Error, now: u64) {
        let msg = format!("{op} {}: {e}", self.plan.config.settings.addr);
        self.fail(i, io_kind(e), msg, now);
    }

    /// Frame what slot `i` read (`None`: the server closed) and account every answer.
    fn answers(&mut self, i: usize, data: Option<&[u8]>, now: u64) -> Result<(), String> {
        let c = &mut self.slots.conns[i];
        let (done, result) = self.tally.answers(c, &self.window, &self.plan.request, data, now);
        if done.answers > 0 {
            self.window.last_progress_ns = now;
        }
        if done.bad_status > 0 {
            let (addr, status) = (self.plan.config.settings.addr, done.last_bad_status);
            self.tally.error(c, &self.window, ErrorKind::BadStatus, done.bad_status, now, || {
                format!("{addr} answered status {status}")
            });
        }
        result
    }

    /// Reconnect, finish or send more after answers were taken.
    fn after_answers(&mut self, i: usize, now: u64) {
        let c = &mut self.slots.conns[i];
        if c.close_after {
            // The server closes after this answer: send what it did not answer
            // again on a new connection.
            for p in c.pending.iter_mut() {
                p.sent_ns = now;
            }
            c.unsent = c.pending.len() as u32;
            c.written = 0;
            if self.window.contains(now) {
                self.tally.rec.counts.server_closes += 1;
            }
            return self.reconnect(i, now);
        }
        if self.slots.mark_if_done(i) {
            return;
        }
        let c = &self.slots.conns[i];
        let per_socket = self.plan.config.settings.reqs_per_conn.unwrap_or(u64::MAX);
        if c.on_socket >= per_socket && c.pending.is_empty() {
            return self.reconnect(i, now);
        }
        self.pump(i, now);
    }

    /// Issue every request the schedule allows on slot `i`, then write them.
    fn pump(&mut self, i: usize, now: u64) {
        let settings = &self.plan.config.settings;
        let pipeline = settings.pipeline as usize;
        let per_socket = settings.reqs_per_conn.unwrap_or(u64::MAX);
        let (window_start, window_end) = (self.window.start_ns, self.window.end_ns);
        let c = &mut self.slots.conns[i];
        if c.state != State::Open || c.close_after || !self.window.loaded {
            return;
        }
        if c.silent && (c.answered > 0 || !c.pending.is_empty()) {
            return; // one request, then silence
        }
        let mut issued = false;
        while c.pending.len() < pipeline && c.on_socket < per_socket && c.budget > 0 && now < window_end {
            let was_free = c.pending.is_empty();
            let scheduled = match self.plan.schedule.next(&mut c.due_ns, &mut c.rng, now) {
                Next::Send { scheduled } => scheduled,
                Next::At(at) => {
                    self.timers.set(i, at);
                    break;
                }
            };
            if scheduled >= window_end {
                break;
            }
            let measured = scheduled >= window_start;
            if measured {
                c.budget -= 1;
                self.tally.measured_in_flight += 1;
                let rec = &mut self.tally.rec;
                rec.counts.sent += 1;
                if self.plan.schedule.is_open() {
                    let lag = now - scheduled;
                    rec.schedule_lag.saturating_record(lag);
                    if was_free && c.free_since_ns <= scheduled {
                        rec.dispatch_lag.saturating_record(lag);
                    }
                }
            }
            c.pending.push_back(Pending { scheduled_ns: scheduled, sent_ns: now, measured });
            c.unsent += 1;
            c.on_socket += 1;
            c.last_request_at_ns = now;
            issued = true;
            if c.silent {
                break;
            }
        }
        if issued {
            self.flush(i, now);
        }
    }

    /// Write the slot's unsent requests (unless a send is in flight: its
    /// completion writes the rest).
    fn flush(&mut self, i: usize, now: u64) {
        let c = &self.slots.conns[i];
        if c.unsent == 0 || c.sending {
            return;
        }
        let bytes = c.written..c.unsent as usize * self.plan.request.len();
        match self.io.send(i, bytes) {
            Ok(Sent::Now(n)) => self.sent(i, n, now),
            Ok(Sent::Queued) => self.slots.conns[i].sending = true,
            Err(e) => self.io_failed(i, "write to", &e, now),
        }
    }

    /// `n` bytes of slot `i`'s unsent requests were written.
    fn sent(&mut self, i: usize, n: usize, now: u64) {
        let len = self.plan.request.len();
        let c = &mut self.slots.conns[i];
        let total = c.written + n;
        c.unsent -= (total / len) as u32;
        c.written = total % len;
        if self.window.contains(now) {
            self.tally.rec.counts.bytes_sent += n as u64;
        }
    }

    /// Slot `i`'s socket is writable again after a short write.
    fn writable(&mut self, i: usize, now: u64) {
        if self.slots.conns[i].state == State::Open && self.slots.conns[i].unsent > 0 {
            self.flush(i, now);
        }
    }

    /// A queued send of slot `i` completed with `result`: account it, and send
    /// what is left or was issued meanwhile.
    fn send_completed(&mut self, i: usize, result: io::Result<usize>, now: u64) {
        self.slots.conns[i].sending = false;
        match result {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "wrote nothing");
                self.io_failed(i, "write to", &e, now);
            }
            Ok(n) => {
                self.sent(i, n, now);
                self.flush(i, now);
            }
            Err(e) => self.io_failed(i, "write to", &e, now),
        }
    }

    /// The server closed slot `i`'s connection.
    fn peer_closed(&mut self, i: usize, now: u64) {
        // An answer whose body ran until the close is complete now.
        if let Err(msg) = self.answers(i, None, now) {
            let msg = format!("bad answer from {}: {msg}", self.plan.config.settings.addr);
            return self.fail(i, ErrorKind::BadAnswer, msg, now);
        }
        if self.slots.conns[i].close_after {
            return self.after_answers(i, now);
        }
        let c = &self.slots.conns[i];
        if !c.pending.is_empty() || c.rx.mid_answer() {
            let msg = format!(
                "{} closed the connection with {} request(s) unanswered",
                self.plan.config.settings.addr,
                c.pending.len().max(1)
            );
            return self.fail(i, ErrorKind::ClosedEarly, msg, now);
        }
        if self.window.contains(now) {
            self.tally.rec.counts.server_closes += 1;
        }
        // Closed on the server's own initiative (a timeout): not an error.
        let c = &mut self.slots.conns[i];
        let never_sends = c.silent || c.budget == 0;
        let since = now.saturating_sub(c.last_request_at_ns.max(c.phase_at_ns));
        self.tally.rec.server_closed.record(never_sends, since);
        if c.silent {
            c.budget = 0; // closed once, not reopened
        }
        self.reconnect(i, now);
    }

    /// Slot `i` failed: count the requests it loses, close it, retry with backoff.
    fn fail(&mut self, i: usize, kind: ErrorKind, msg: String, now: u64) {
        // Connect failures while the connections are first opened count too.
        let in_window = self.window.contains(now) || (kind.is_connect() && !self.window.loaded);
        let c = &mut self.slots.conns[i];
        let measured = c.measured_pending();
        let n = if c.pending.is_empty() {
            u64::from(in_window)
        } else {
            measured.max(u64::from(kind.is_connect() && in_window))
        };
        self.tally.measured_in_flight -= measured;
        c.pending.clear();
        c.unsent = 0;
        c.written = 0;
        if n > 0 {
            self.tally.error(c, &self.window, kind, n, now, || msg);
        }
        if kind.is_connect() && std::mem::take(&mut self.slots.conns[i].gated) {
            self.plan.pass_gate(now);
        }
        self.close(i, now);
        let delay = self.slots.conns[i].next_retry_delay();
        if self.slots.mark_if_done(i) || now >= self.window.end_ns {
            return;
        }
        if delay == 0 {
            self.slots.requeue(i);
        } else {
            self.slots.conns[i].state = State::Backoff;
            self.timers.set(i, now + delay);
        }
    }

    /// Close slot `i`'s socket and queue it to connect again.
    fn reconnect(&mut self, i: usize, now: u64) {
        self.close(i, now);
        if !self.slots.mark_if_done(i) && now < self.window.end_ns {
            self.slots.requeue(i);
        }
    }

    fn close(&mut self, i: usize, now: u64) {
        self.io.close(i);
        self.slots.closed(i, now);
        self.timers.clear(i);
    }

    /// The thread's recorder, with its CPU use and end-of-run counts.
    fn finish(mut self, now: u64, live: &Live) -> Recorder {
        if let Some(iv) = &mut self.tally.rec.intervals {
            iv.flush();
        }
        let counts = &mut self.tally.rec.counts;
        counts.ended_ns = now;
        self.usage.report(now, counts);
        counts.window_ns = self.window.length(now);
        let (schedule, start, end) = (self.plan.schedule, self.window.start_ns, self.window.end_ns);
        let conns = &self.slots.conns;
        counts.unsent = conns
            .iter()
            .filter(|c| !c.silent)
            .map(|c| schedule.remaining(c.due_ns, c.rng, start, end).min(c.budget))
            .sum();
        let config = &self.plan.config;
        counts.starved = conns.iter().filter(|c| c.answered == 0 && config.request_budget(c.global) > 0).count() as u64;
        // Fairness over the connections that carried load. The gap from the last answer
        // to the window's end counts, unless the connection had spent its budget.
        let end = end.min(now);
        if self.window.loaded && end > start {
            let rec = &mut self.tally.rec;
            for c in conns.iter().filter(|c| config.request_budget(c.global) > 0 && !c.silent) {
                let trailing = if c.budget == 0 { 0 } else { end.saturating_sub(c.last_answer_at_ns.max(start)) };
                rec.answers_per_conn.saturating_record(c.window_answers);
                rec.longest_gap.saturating_record(c.longest_gap.max(trailing));
                rec.counts.fair_sum += c.window_answers;
                rec.counts.fair_sum_sq += (c.window_answers as f64) * (c.window_answers as f64);
            }
        }
        self.io.finish();
        live.answers.store(self.tally.answers, Ordering::Relaxed);
        live.done.store(true, Ordering::Release);
        self.tally.rec
    }
}
