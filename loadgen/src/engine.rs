//! One event-loop thread: a mio `Poll` owning its share of the connections.
//!
//! The loop is the same for closed and open loop; the [`Schedule`] says when a
//! connection may send. Per iteration: fire due timers (open-loop sends,
//! retries), start connects the window allows, housekeeping (timeouts, the
//! timeline, progress), then wait in epoll. Timers are a binary heap driven by
//! one `timerfd` (nanosecond deadlines, unlike epoll's milliseconds). In open loop
//! the timer fires `--spin` (100 us by default) before the deadline and the thread
//! spins the rest, so a send is late by microseconds, not by a CPU wake-up; with
//! `--spin busy` it never sleeps. Spinning with nothing to do is counted apart, so
//! that the client's utilisation stays the share of its time it spent working.
//!
//! No allocation per request: the request bytes (repeated `pipeline` times) are
//! shared by the thread's connections, answers are read into one 16 KiB buffer,
//! and only a partial HTTP head is carried over per connection.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::clock::{now_ns, MS, SEC};
use crate::config::Share;
use crate::conn::{Conn, State};
use crate::env::ThreadCpu;
use crate::error::LoadError;
pub use crate::plan::{Live, Plan};
use crate::recorder::{ErrorKind, Recorder};
use crate::schedule::Next;

/// The timerfd's token; connections use their index.
const TIMER: Token = Token(usize::MAX);
/// Connects started per loop iteration, so that completions are seen (and
/// timed) promptly while thousands are being opened.
const CONNECT_BATCH: usize = 64;
/// Housekeeping period bounds: timeouts are checked every `timeout / 20`
/// within these (a sweep visits every connection, so not too often).
const MIN_SWEEP: u64 = 10 * MS;
const MAX_SWEEP: u64 = 100 * MS;
/// While waiting for the gate, look at it this often.
const GATE_POLL: u64 = 5 * MS;
/// Set this thread's timer slack to the minimum (1 ns) so that its sleeps end
/// when asked, not up to 50 us later (the default slack).
fn min_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer argument and only changes the
    // calling thread's timer slack; no memory is passed to the kernel.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    // Failing leaves the default 50 us slack, which the spin covers; nothing to report.
    let _ = rc;
}

/// One thread's loop. See the module documentation.
pub struct Engine<'p> {
    pub(crate) plan: &'p Plan,
    pub(crate) poll: Poll,
    pub(crate) timerfd: TimerFd,
    pub(crate) armed_ns: u64,
    /// How long before a deadline the thread stops sleeping: `--spin` in open loop
    /// (`u64::MAX` for busy), else 0.
    pub(crate) spin_ns: u64,
    /// CPU spent spinning with nothing to do, in all and when the window opened.
    pub(crate) idle_spin_ns: u64,
    pub(crate) idle_spin_at_start_ns: u64,
    /// Steal on the process's CPUs when the window opened.
    pub(crate) steal_at_start_ns: u64,
    pub(crate) conns: Vec<Conn>,
    pub(crate) timers: BinaryHeap<Reverse<(u64, u32)>>,
    /// Slots waiting to connect, in order.
    pub(crate) queue: VecDeque<u32>,
    pub(crate) buf: Box<[u8]>,
    pub(crate) rec: Recorder,
    /// Connects in progress, and how many may be.
    pub(crate) connecting: u32,
    pub(crate) connect_cap: u32,
    /// The load has started (the gate opened).
    pub(crate) loaded: bool,
    /// Initial connects started, and their rate for this thread (per ns).
    pub(crate) initial_started: u64,
    pub(crate) connect_rate: Option<f64>,
    pub(crate) open: u64,
    pub(crate) established: u64,
    pub(crate) measured_in_flight: u64,
    /// Slots with work left.
    pub(crate) busy: u64,
    pub(crate) answers_total: u64,
    pub(crate) errors_total: u64,
    /// The measured window: from the gate opening plus warmup, for the
    /// duration (or until a stop). `u64::MAX` until the gate opens.
    pub(crate) window_start_ns: u64,
    pub(crate) window_end_ns: u64,
    /// Stopped (SIGINT) before the load started.
    pub(crate) stopped: bool,
    pub(crate) next_sweep_ns: u64,
    pub(crate) sweep_every_ns: u64,
    /// Last answer, or the start of the load: a `--requests` run with no
    /// answer for `timeout + connect_timeout` gives up.
    pub(crate) last_progress_ns: u64,
    pub(crate) next_second_ns: u64,
    pub(crate) cpu_start: Option<(u64, ThreadCpu)>,
    pub(crate) cpu_end: Option<(u64, ThreadCpu)>,
}

impl<'p> Engine<'p> {
    pub fn new(plan: &'p Plan, share: Share) -> Result<Self, LoadError> {
        let poll = Poll::new().map_err(|e| LoadError::io("epoll_create", e))?;
        let timerfd = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)
            .map_err(|e| LoadError::io("timerfd_create", e.into()))?;
        poll.registry()
            .register(&mut SourceFd(&timerfd.as_fd().as_raw_fd()), TIMER, Interest::READABLE)
            .map_err(|e| LoadError::io("register timerfd", e))?;
        let c = &plan.config;
        let conns: Vec<Conn> = (share.first..share.first + share.count)
            .map(|g| {
                let rx = crate::conn::Rx::new(c.settings.proto, c.head_request());
                Conn::new(g, rx, c.settings.pipeline, c.request_budget(g), c.first_due(&plan.schedule, plan.epoch, g))
            })
            .collect();
        let busy = conns.iter().filter(|c| !c.finished).count() as u64;
        let mut rec = Recorder::new();
        rec.counts.slots = share.count;
        if c.intervals {
            rec.intervals = Some(crate::intervals::Intervals::new(plan.interval_base_ns()));
        }
        rec.counts.threads = 1;
        // The window is per process, the connect rate over all processes.
        let of_process = share.count as f64 / plan.slots.max(1) as f64;
        let connect_cap = ((f64::from(c.connect_window) * of_process).ceil() as u32).max(1);
        let per_thread = share.count as f64 / c.slots() as f64;
        let spin_ns = if plan.schedule.is_open() { plan.config.spin.ns() } else { 0 };
        Ok(Engine {
            plan,
            poll,
            timerfd,
            armed_ns: 0,
            spin_ns,
            idle_spin_ns: 0,
            idle_spin_at_start_ns: 0,
            steal_at_start_ns: 0,
            queue: (0..conns.len() as u32).collect(),
            conns,
            timers: BinaryHeap::new(),
            buf: vec![0u8; proto::READ_BUF_SIZE].into_boxed_slice(),
            rec,
            connecting: 0,
            connect_cap,
            loaded: false,
            initial_started: 0,
            connect_rate: c.settings.connect_rate.map(|r| r * per_thread / SEC as f64),
            open: 0,
            established: 0,
            measured_in_flight: 0,
            busy,
            answers_total: 0,
            errors_total: 0,
            window_start_ns: u64::MAX,
            window_end_ns: u64::MAX,
            stopped: false,
            next_sweep_ns: plan.epoch,
            sweep_every_ns: (crate::clock::ns(c.settings.timeout) / 20).clamp(MIN_SWEEP, MAX_SWEEP),
            last_progress_ns: plan.epoch,
            next_second_ns: u64::MAX,
            cpu_start: None,
            cpu_end: None,
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
        let mut events = Events::with_capacity(1024);
        loop {
            let now = now_ns();
            self.housekeeping(now, live);
            if !self.loaded {
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
            let timeout = if spinning {
                Some(Duration::ZERO)
            } else {
                self.arm(deadline - self.spin_ns)?;
                None
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LoadError::io("epoll_wait", e)),
            }
            // An empty turn ahead of the deadline did nothing but wait.
            if spinning && deadline > now && events.is_empty() {
                self.idle_spin_ns += now_ns().saturating_sub(now);
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    self.armed_ns = 0;
                    continue;
                }
                self.on_event(event.token().0, event, now_ns());
            }
        }
        let now = now_ns();
        self.end_window(now);
        Ok(self.finish(now, live))
    }

    fn finished(&self, now: u64) -> bool {
        let drained = now >= self.window_end_ns && self.measured_in_flight == 0;
        let c = &self.plan.config;
        let timeout = crate::clock::ns(c.settings.timeout);
        let timed_out = now >= self.window_end_ns.saturating_add(timeout + 2 * self.sweep_every_ns);
        let stalled = self.window_end_ns == u64::MAX
            && self.loaded
            && now.saturating_sub(self.last_progress_ns) > timeout + crate::clock::ns(c.settings.connect_timeout);
        self.stopped || self.busy == 0 || drained || timed_out || stalled
    }

    fn next_deadline(&self, now: u64) -> u64 {
        let mut at = self.next_sweep_ns.min(self.next_second_ns);
        if !self.loaded {
            at = at.min(now + GATE_POLL).min(self.plan.load_at.unwrap_or(u64::MAX));
        }
        if let Some(Reverse((t, _))) = self.timers.peek() {
            at = at.min(*t);
        }
        if self.cpu_start.is_none() {
            at = at.min(self.window_start_ns);
        }
        if self.cpu_end.is_none() {
            at = at.min(self.window_end_ns);
        }
        if self.connecting < self.connect_cap && !self.queue.is_empty() {
            // More to connect: now, or when the ramp allows the next one.
            at = at.min(self.next_initial_connect().unwrap_or(now).max(now));
        }
        at
    }

    /// When the connect rate allows the next initial connect, if one is waiting for it.
    fn next_initial_connect(&self) -> Option<u64> {
        let rate = self.connect_rate?;
        let &first = self.queue.front()?;
        if self.conns[first as usize].established_once || self.connecting >= self.connect_cap {
            return None;
        }
        Some(self.plan.epoch + (self.initial_started as f64 / rate) as u64)
    }

    fn arm(&mut self, deadline: u64) -> Result<(), LoadError> {
        if self.armed_ns == deadline {
            return Ok(());
        }
        let spec = TimeSpec::from(Duration::from_nanos(deadline));
        self.timerfd
            .set(Expiration::OneShot(spec), TimerSetTimeFlags::TFD_TIMER_ABSTIME)
            .map_err(|e| LoadError::io("timerfd_settime", e.into()))?;
        self.armed_ns = deadline;
        Ok(())
    }

    /// Arm slot `i`'s timer at `at` (one timer per slot; the earliest wins).
    pub(crate) fn set_timer(&mut self, i: usize, at: u64) {
        let c = &mut self.conns[i];
        if c.timer_at_ns != 0 && c.timer_at_ns <= at {
            return;
        }
        c.timer_at_ns = at;
        self.timers.push(Reverse((at, i as u32)));
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let i = i as usize;
            if self.conns[i].timer_at_ns != at {
                continue; // superseded by an earlier timer
            }
            self.conns[i].timer_at_ns = 0;
            match self.conns[i].state {
                State::Backoff => {
                    self.conns[i].state = State::Idle;
                    self.queue.push_back(i as u32);
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
        self.loaded = true;
        self.last_progress_ns = now;
        self.window_start_ns = released + self.plan.warmup_ns;
        self.rec.counts.window_start_ns = Some(self.window_start_ns);
        self.window_end_ns = self.plan.duration_ns.map_or(u64::MAX, |d| self.window_start_ns + d);
        self.next_second_ns = self.window_start_ns + SEC;
        // Open loop: the schedule starts with the load.
        let shift = released.saturating_sub(self.plan.epoch);
        for i in 0..self.conns.len() {
            self.conns[i].due_ns += shift;
            if self.conns[i].state == State::Open {
                self.pump(i, now);
            }
        }
    }

    fn start_connects(&mut self, now: u64) {
        for _ in 0..CONNECT_BATCH {
            if self.connecting >= self.connect_cap {
                break;
            }
            let Some(&i) = self.queue.front() else { break };
            let i = i as usize;
            if !self.conns[i].established_once {
                if let Some(at) = self.next_initial_connect() {
                    if at > now {
                        break;
                    }
                }
                self.initial_started += 1;
            }
            self.queue.pop_front();
            if self.conns[i].is_done() && self.conns[i].established_once {
                continue;
            }
            self.connect(i, now);
        }
    }

    /// Timeouts, connect-window grace, the timeline, the window's edges.
    fn housekeeping(&mut self, now: u64, live: &Live) {
        if self.plan.stop.load(Ordering::Relaxed) && now < self.window_end_ns {
            if self.loaded {
                self.window_end_ns = now.max(self.window_start_ns);
            } else {
                self.stopped = true;
            }
        }
        if self.cpu_start.is_none() && now >= self.window_start_ns {
            self.cpu_start = Some((now, ThreadCpu::now()));
            self.idle_spin_at_start_ns = self.idle_spin_ns;
            self.steal_at_start_ns = crate::env::steal_ns();
        }
        while self.next_second_ns <= now && self.next_second_ns <= self.window_end_ns {
            let s = ((self.next_second_ns - self.window_start_ns) / SEC - 1) as usize;
            self.rec.second(s).open_conns = self.open;
            self.next_second_ns += SEC;
        }
        if self.cpu_end.is_none() && now >= self.window_end_ns {
            self.end_window(now);
        }
        if now >= self.next_sweep_ns {
            self.sweep(now);
            live.answers.store(self.answers_total, Ordering::Relaxed);
            live.errors.store(self.errors_total, Ordering::Relaxed);
            live.open.store(self.open, Ordering::Relaxed);
            self.next_sweep_ns = now + self.sweep_every_ns;
        }
    }

    fn end_window(&mut self, now: u64) {
        if self.cpu_end.is_some() {
            return;
        }
        self.cpu_end = Some((now, ThreadCpu::now()));
        self.rec.counts.idle_spin_ns = self.idle_spin_ns - self.idle_spin_at_start_ns;
        if self.cpu_start.is_some() {
            self.rec.counts.steal_ns = crate::env::steal_ns().saturating_sub(self.steal_at_start_ns);
        }
        self.rec.counts.open_at_end = self.open;
        // A partial last second still gets its open-connection count.
        let end = now.min(self.window_end_ns);
        if end > self.window_start_ns && (end - self.window_start_ns) % SEC != 0 {
            let s = ((end - self.window_start_ns) / SEC) as usize;
            self.rec.second(s).open_conns = self.open;
        }
        self.window_end_ns = self.window_end_ns.min(now.max(self.window_start_ns));
    }

    fn sweep(&mut self, now: u64) {
        let timeout = crate::clock::ns(self.plan.config.settings.timeout);
        let connect_timeout = crate::clock::ns(self.plan.config.settings.connect_timeout);
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            match c.state {
                State::Connecting if now - c.phase_at_ns >= connect_timeout => {
                    let msg = format!(
                        "connect to {}: no answer within {}",
                        self.plan.config.settings.addr,
                        humantime::format_duration(self.plan.config.settings.connect_timeout)
                    );
                    self.fail(i, ErrorKind::ConnectTimeout, msg, now);
                }
                State::Open => {
                    if let Some(p) = c.pending.front() {
                        if now.saturating_sub(p.sent_ns) >= timeout {
                            let msg = format!(
                                "request to {} unanswered after {}",
                                self.plan.config.settings.addr,
                                humantime::format_duration(self.plan.config.settings.timeout)
                            );
                            self.fail(i, ErrorKind::Timeout, msg, now);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Slot `i` is no longer connecting (established, failed or closed).
    pub(crate) fn connect_done(&mut self, i: usize) {
        if self.conns[i].connecting {
            self.conns[i].connecting = false;
            self.connecting -= 1;
        }
    }

    /// True when `now` is inside the measured window.
    #[inline]
    pub(crate) fn in_window(&self, now: u64) -> bool {
        now >= self.window_start_ns && now < self.window_end_ns
    }

    /// Issue every request the schedule allows on slot `i`, then write them.
    pub(crate) fn pump(&mut self, i: usize, now: u64) {
        let pipeline = self.plan.config.settings.pipeline as usize;
        let per_socket = self.plan.config.settings.reqs_per_conn.unwrap_or(u64::MAX);
        let (window_start, window_end) = (self.window_start_ns, self.window_end_ns);
        let c = &mut self.conns[i];
        if c.state != State::Open || c.close_after || !self.loaded {
            return;
        }
        let mut issued = false;
        while c.pending.len() < pipeline && c.on_socket < per_socket && c.budget > 0 && now < window_end {
            let was_free = c.pending.is_empty();
            let scheduled = match self.plan.schedule.next(&mut c.due_ns, &mut c.rng, now) {
                Next::Send { scheduled } => scheduled,
                Next::At(at) => {
                    if c.timer_at_ns == 0 || c.timer_at_ns > at {
                        c.timer_at_ns = at;
                        self.timers.push(Reverse((at, i as u32)));
                    }
                    break;
                }
            };
            if scheduled >= window_end {
                break;
            }
            let measured = scheduled >= window_start;
            if measured {
                c.budget -= 1;
                self.measured_in_flight += 1;
                self.rec.counts.sent += 1;
                if self.plan.schedule.is_open() {
                    let lag = now - scheduled;
                    self.rec.schedule_lag.saturating_record(lag);
                    if was_free && c.free_since_ns <= scheduled {
                        self.rec.dispatch_lag.saturating_record(lag);
                    }
                }
            }
            c.pending.push_back(crate::conn::Pending { scheduled_ns: scheduled, sent_ns: now, measured });
            c.unsent += 1;
            c.on_socket += 1;
            issued = true;
        }
        if issued {
            self.flush(i, now);
        }
    }
}
