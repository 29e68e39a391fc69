//! Idle and header timeouts: the application-level liveness check of
//! document 001 (应用层探活). TCP's own keep-alive probes start only after two
//! hours of silence (then 9 probes 75 s apart), so a server that wants to drop
//! dead or silent peers sooner must time them out itself:
//!
//! - `--idle-timeout D`: close a connection on which nothing moved for D (no
//!   byte read from the client, none written to it). A client that sends a
//!   ping now and then is never closed; one that went away without a FIN (a
//!   pulled cable, a crashed host) or stopped talking is.
//! - `--header-timeout D`: close a connection whose request head is not
//!   complete D after its first byte ([`proto::Session::head_started`]):
//!   slowloris, which keeps a connection open by sending a header byte every
//!   few seconds, each byte resetting any idle timer.
//!
//! How a model keeps these clocks is part of the model:
//!
//! - reactors keep one [`Wheel`] per event loop, a hashed timing wheel as
//!   muduo's idle-connection example does, not a timer per connection: a
//!   request only stamps its connection's [`Watch`] (a store, O(1)); each
//!   connection has at most one live entry in the wheel, re-checked lazily
//!   when its slot comes due and moved forward then if the connection was
//!   active meanwhile. The loop wakes once per tick while the wheel holds
//!   entries, so 10,000 live connections cost one wake-up per tick and one
//!   O(1) re-check per connection per timeout period;
//! - blocking models (one thread per connection) use socket timeouts
//!   (`SO_RCVTIMEO`, `SO_SNDTIMEO`), see [`crate::blocking`];
//! - tokio uses its own timer (one `Sleep` per connection, reset lazily);
//! - io_uring drives the same [`Wheel`] from a timeout request per tick.
//!
//! Without either flag none of this exists: no wheel, no clock read, no
//! system call and no allocation per request.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::Stats;

/// The configured timeouts; `None` is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub idle: Option<Duration>,
    pub header: Option<Duration>,
}

/// Shortest and longest tick of a [`Wheel`].
const MIN_TICK: Duration = Duration::from_millis(10);
const MAX_TICK: Duration = Duration::from_secs(1);
/// Ticks per shortest timeout: a connection is closed at most one tick late,
/// so a tenth of the timeout.
const TICKS_PER_TIMEOUT: u32 = 10;
/// Slots of a wheel: enough for the longest timeout, within these bounds (a
/// deadline further away goes round the wheel, re-checked once a lap).
const MIN_SLOTS: u64 = 16;
const MAX_SLOTS: u64 = 4096;

impl Timeouts {
    /// Is any timeout set?
    pub fn any(&self) -> bool {
        self.idle.is_some() || self.header.is_some()
    }

    /// The tick of a timing wheel: a tenth of the shorter timeout, between
    /// 10 ms and 1 s. A timed-out connection is closed within the timeout
    /// plus one tick.
    pub fn tick(&self) -> Duration {
        let shortest = [self.idle, self.header].into_iter().flatten().min().unwrap_or(MAX_TICK);
        (shortest / TICKS_PER_TIMEOUT).clamp(MIN_TICK, MAX_TICK)
    }
}

/// Which timeout closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing moved for the idle timeout.
    Idle,
    /// A request head stayed incomplete for the header timeout.
    Header,
}

impl Expiry {
    /// Count the close in the stats line (`idle_timeouts`, `header_timeouts`).
    pub fn count(self, stats: &Stats) {
        match self {
            Expiry::Idle => Stats::add(&stats.idle_timeouts, 1),
            Expiry::Header => Stats::add(&stats.header_timeouts, 1),
        }
    }
}

/// "No time": no head started, no entry queued.
const NEVER: u64 = u64::MAX;

/// One connection's timer state, kept in the connection: 24 bytes, no
/// allocation, updated with plain stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    /// When something last moved, in ns since the wheel's origin.
    last_active: u64,
    /// When the current incomplete head began (ns), or [`NEVER`].
    head_since: u64,
    /// The tick of this connection's live entry in the wheel, or [`NEVER`].
    /// Entries for other ticks are stale and skipped.
    queued: u64,
}

impl Default for Watch {
    fn default() -> Self {
        Watch { last_active: 0, head_since: NEVER, queued: NEVER }
    }
}

/// An entry of the wheel: connection `key` (unique `id`) is due at tick `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub key: usize,
    pub id: u64,
    pub at: u64,
}

/// A hashed timing wheel: `slots[t % n]` holds the entries due at tick `t`
/// (or at `t` plus whole laps). See the module documentation.
#[derive(Debug)]
pub struct Wheel {
    idle_ns: Option<u64>,
    header_ns: Option<u64>,
    tick_ns: u64,
    origin: Instant,
    /// The time (ns since `origin`) as of the last [`Wheel::set_now`].
    now_ns: u64,
    /// The last tick whose slot was handed out by [`Wheel::expired`].
    processed: u64,
    slots: Box<[Vec<Due>]>,
    /// Entries in all slots, stale ones included.
    entries: usize,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Wheel {
    /// A wheel for `timeouts`, or `None` when no timeout is set.
    pub fn new(timeouts: Timeouts) -> Option<Wheel> {
        if !timeouts.any() {
            return None;
        }
        let tick_ns = ns(timeouts.tick()).max(1);
        let longest = [timeouts.idle, timeouts.header].into_iter().flatten().map(ns).max().unwrap_or(0);
        let slots = (longest / tick_ns + 2).clamp(MIN_SLOTS, MAX_SLOTS).next_power_of_two();
        Some(Wheel {
            idle_ns: timeouts.idle.map(ns),
            header_ns: timeouts.header.map(ns),
            tick_ns,
            origin: Instant::now(),
            now_ns: 0,
            processed: 0,
            slots: (0..slots).map(|_| Vec::new()).collect(),
            entries: 0,
        })
    }

    /// Read the clock: activity noted from now on is stamped with this time.
    /// Called once per loop iteration, not per request.
    pub fn set_now(&mut self, now: Instant) {
        self.now_ns = ns(now.saturating_duration_since(self.origin));
    }

    fn now_tick(&self) -> u64 {
        self.now_ns / self.tick_ns
    }

    /// How long the loop may sleep before the next tick is due; `None` when
    /// the wheel is empty (nothing to time out, no wake-up needed).
    pub fn timeout(&self) -> Option<Duration> {
        if self.entries == 0 {
            return None;
        }
        let next = (self.processed + 1).saturating_mul(self.tick_ns);
        Some(Duration::from_nanos(next.saturating_sub(self.now_ns)))
    }

    /// A connection joined the loop: start its clocks.
    pub fn watch(&mut self, watch: &mut Watch, key: usize, id: u64) {
        *watch = Watch { last_active: self.now_ns, ..Watch::default() };
        if let Some(deadline) = self.deadline(watch, false) {
            self.queue(watch, key, id, deadline);
        }
    }

    /// The connection moved (a read, a write, an answer back): stamp it, and
    /// start or stop the header clock. O(1): the live entry is moved only if
    /// the deadline came closer (a head began), otherwise it is re-checked
    /// lazily when its slot comes due.
    pub fn touch(&mut self, watch: &mut Watch, key: usize, id: u64, head_started: bool) {
        watch.last_active = self.now_ns;
        let Some(header) = self.header_ns else { return };
        if !head_started {
            watch.head_since = NEVER;
        } else if watch.head_since == NEVER {
            watch.head_since = self.now_ns;
            let due = self.tick_of(self.now_ns.saturating_add(header));
            if due < watch.queued {
                self.queue(watch, key, id, due);
            }
        }
    }

    /// The tick at which a deadline at `at_ns` has passed for sure.
    fn tick_of(&self, at_ns: u64) -> u64 {
        (at_ns / self.tick_ns).saturating_add(1)
    }

    /// The tick at which the connection times out, if it ever does. While
    /// `busy` (its requests are out on other threads) it is not idle.
    fn deadline(&self, watch: &Watch, busy: bool) -> Option<u64> {
        let active = if busy { self.now_ns } else { watch.last_active };
        let idle = self.idle_ns.map(|d| self.tick_of(active.saturating_add(d)));
        let header = match (self.header_ns, watch.head_since) {
            (Some(d), since) if since != NEVER => Some(self.tick_of(since.saturating_add(d))),
            _ => None,
        };
        idle.into_iter().chain(header).min()
    }

    fn queue(&mut self, watch: &mut Watch, key: usize, id: u64, at: u64) {
        // A tick already processed would never come round again.
        let at = at.max(self.processed + 1);
        let mask = self.slots.len() as u64 - 1;
        self.slots[(at & mask) as usize].push(Due { key, id, at });
        self.entries += 1;
        watch.queued = at;
    }

    /// Hand out the entries of every tick that has passed since the last
    /// call, each to be passed to [`Wheel::check`] with its connection (or
    /// dropped if the connection is gone).
    pub fn expired(&mut self, out: &mut Vec<Due>) {
        let now = self.now_tick();
        if self.entries == 0 {
            self.processed = self.processed.max(now);
            return;
        }
        let mask = self.slots.len() as u64 - 1;
        while self.processed < now {
            self.processed += 1;
            let tick = self.processed;
            let before = out.len();
            self.slots[(tick & mask) as usize].retain(|due| {
                let passed = due.at <= tick;
                if passed {
                    out.push(*due);
                }
                !passed
            });
            self.entries -= out.len() - before;
        }
    }

    /// An entry came due: `Some` if the connection has timed out (close it and
    /// count it), otherwise its next deadline is queued (or none is needed).
    /// Stale entries (the connection was queued again since) change nothing.
    pub fn check(&mut self, watch: &mut Watch, due: Due, busy: bool) -> Option<Expiry> {
        if watch.queued != due.at {
            return None;
        }
        watch.queued = NEVER;
        let deadline = self.deadline(watch, busy)?;
        if deadline > self.processed {
            self.queue(watch, due.key, due.id, deadline);
            return None;
        }
        let head_expired = self.header_ns.is_some_and(|d| {
            watch.head_since != NEVER && self.tick_of(watch.head_since.saturating_add(d)) <= self.processed
        });
        Some(if head_expired { Expiry::Header } else { Expiry::Idle })
    }

    /// The connection turned out not to be idle after all (input was waiting
    /// that the loop had not read yet, see [`input_waiting`]): stamp it as
    /// active now and queue its next deadline.
    pub fn postpone(&mut self, watch: &mut Watch, key: usize, id: u64) {
        watch.last_active = self.now_ns;
        if let Some(deadline) = self.deadline(watch, false) {
            self.queue(watch, key, id, deadline);
        }
    }

    /// Entries held (stale ones included), for tests and accounting.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

/// Bytes (or an end of stream) wait unread on socket `fd`. A loop checks this
/// before closing a connection as idle, if its session wants input: when the
/// loop is overloaded, readiness it has not collected yet (a full batch of
/// events, a backlog of completions) must not make a live connection look
/// silent (measured: `reactor-conn-thread` at 10,000 connections pinging once
/// a second on one core closed 7,183 live ones before this check). One `recv(MSG_PEEK)` per
/// connection about to time out, never per request.
pub fn input_waiting(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `recv` writes at most one byte into `byte`, a live local; with
    // MSG_PEEK | MSG_DONTWAIT it neither consumes input nor blocks, and on a
    // descriptor that is not a socket it only fails.
    let n = unsafe { libc::recv(fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    n >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn wheel(idle: Option<u64>, header: Option<u64>) -> (Wheel, Instant) {
        let t = Timeouts { idle: idle.map(Duration::from_millis), header: header.map(Duration::from_millis) };
        let w = Wheel::new(t).expect("a timeout is set");
        let origin = w.origin;
        (w, origin)
    }

    /// Advance to `at_ms` and return what timed out, checking every due entry.
    fn run_to(w: &mut Wheel, origin: Instant, at_ms: u64, conns: &mut [Watch], busy: bool) -> Vec<(usize, Expiry)> {
        w.set_now(origin + at_ms as u32 * MS);
        let mut due = Vec::new();
        w.expired(&mut due);
        due.into_iter().filter_map(|d| w.check(&mut conns[d.key], d, busy).map(|e| (d.key, e))).collect()
    }

    #[test]
    fn tick_is_a_tenth_of_the_shorter_timeout_within_bounds() {
        let t = |idle, header| Timeouts { idle, header }.tick();
        assert_eq!(t(Some(Duration::from_secs(5)), None), Duration::from_millis(500));
        assert_eq!(t(Some(Duration::from_secs(60)), Some(Duration::from_secs(2))), Duration::from_millis(200));
        assert_eq!(t(Some(Duration::from_secs(3600)), None), MAX_TICK);
        assert_eq!(t(None, Some(Duration::from_millis(20))), MIN_TICK);
        assert!(Wheel::new(Timeouts::default()).is_none(), "no flag, no wheel");
    }

    #[test]
    fn idle_connection_closes_within_timeout_plus_one_tick() {
        let (mut w, origin) = wheel(Some(1000), None); // tick 100 ms
        let mut conns = [Watch::default(); 2];
        w.watch(&mut conns[0], 0, 1);
        w.set_now(origin + 450 * MS);
        w.watch(&mut conns[1], 1, 2);
        assert!(run_to(&mut w, origin, 999, &mut conns, false).is_empty(), "not before the timeout");
        assert_eq!(run_to(&mut w, origin, 1100, &mut conns, false), vec![(0, Expiry::Idle)]);
        assert!(run_to(&mut w, origin, 1449, &mut conns, false).is_empty());
        assert_eq!(run_to(&mut w, origin, 1550, &mut conns, false), vec![(1, Expiry::Idle)]);
        assert!(w.is_empty());
        assert_eq!(w.timeout(), None, "an empty wheel needs no wake-up");
    }

    #[test]
    fn activity_postpones_lazily_and_pings_keep_a_connection_forever() {
        let (mut w, origin) = wheel(Some(1000), None);
        let mut conns = [Watch::default()];
        w.watch(&mut conns[0], 0, 7);
        for second in 0..30u64 {
            // A ping every 900 ms: a store, no wheel operation.
            w.set_now(origin + (second * 900 + 10) as u32 * MS);
            w.touch(&mut conns[0], 0, 7, false);
            assert!(run_to(&mut w, origin, second * 900 + 890, &mut conns, false).is_empty(), "closed at {second}");
            assert!(w.len() <= 1, "one live entry per connection, {} held", w.len());
        }
        let last = 29 * 900 + 10;
        assert_eq!(run_to(&mut w, origin, last + 1100, &mut conns, false), vec![(0, Expiry::Idle)]);
    }

    #[test]
    fn header_clock_starts_with_the_head_and_stops_when_it_completes() {
        let (mut w, origin) = wheel(Some(10_000), Some(500)); // tick 50 ms
        let mut conns = [Watch::default(); 2];
        w.watch(&mut conns[0], 0, 1);
        w.watch(&mut conns[1], 1, 2);
        // Both begin a head at 100 ms and trickle a byte every 100 ms; the
        // second completes it at 300 ms.
        for at in [100u64, 200, 300, 400] {
            w.set_now(origin + at as u32 * MS);
            w.touch(&mut conns[0], 0, 1, true);
            w.touch(&mut conns[1], 1, 2, at < 300);
            assert!(run_to(&mut w, origin, at + 50, &mut conns, false).is_empty());
        }
        assert_eq!(run_to(&mut w, origin, 660, &mut conns, false), vec![(0, Expiry::Header)]);
        assert!(run_to(&mut w, origin, 5_000, &mut conns, false).is_empty(), "the completed head keeps it open");
        assert_eq!(run_to(&mut w, origin, 10_500, &mut conns, false), vec![(1, Expiry::Idle)]);
    }

    #[test]
    fn header_only_queues_nothing_until_a_head_begins() {
        let (mut w, origin) = wheel(None, Some(200));
        let mut conns = [Watch::default()];
        w.watch(&mut conns[0], 0, 1);
        assert!(w.is_empty(), "no idle timeout: nothing to time");
        w.set_now(origin + 1000 * MS);
        w.touch(&mut conns[0], 0, 1, true);
        assert_eq!(w.len(), 1);
        assert_eq!(run_to(&mut w, origin, 1230, &mut conns, false), vec![(0, Expiry::Header)]);
    }

    #[test]
    fn busy_connections_are_not_idle_and_long_timeouts_go_round_the_wheel() {
        let (mut w, origin) = wheel(Some(100), Some(1_000_000)); // 4096 slots of 10 ms: 41 s a lap
        let mut conns = [Watch::default()];
        w.watch(&mut conns[0], 0, 1);
        assert!(run_to(&mut w, origin, 500, &mut conns, true).is_empty(), "its requests are out");
        assert_eq!(run_to(&mut w, origin, 620, &mut conns, false), vec![(0, Expiry::Idle)]);

        // An hour of idle timeout at a 100 ms tick (for the 1 s header
        // timeout): 36,000 ticks on 4,096 slots, so the entry comes round
        // eight times before it is due, and stays put each time.
        let (mut w, origin) = wheel(Some(3_600_000), Some(1000));
        assert_eq!(w.slots.len() as u64, MAX_SLOTS);
        let mut conns = [Watch::default()];
        w.watch(&mut conns[0], 0, 1);
        assert!(run_to(&mut w, origin, 3_599_900, &mut conns, false).is_empty());
        assert_eq!(w.len(), 1);
        assert_eq!(run_to(&mut w, origin, 3_600_100, &mut conns, false), vec![(0, Expiry::Idle)]);
    }

    #[test]
    fn postponed_connections_are_queued_again() {
        let (mut w, origin) = wheel(Some(1000), None);
        let mut conns = [Watch::default()];
        w.watch(&mut conns[0], 0, 1);
        assert_eq!(run_to(&mut w, origin, 1100, &mut conns, false), vec![(0, Expiry::Idle)]);
        w.postpone(&mut conns[0], 0, 1);
        assert!(run_to(&mut w, origin, 2050, &mut conns, false).is_empty());
        assert_eq!(run_to(&mut w, origin, 2200, &mut conns, false), vec![(0, Expiry::Idle)]);
    }

    #[test]
    fn input_waiting_peeks_without_consuming() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert!(!input_waiting(server.as_raw_fd()), "nothing sent yet");
        client.write_all(b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !input_waiting(server.as_raw_fd()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(input_waiting(server.as_raw_fd()));
        let mut buf = [0u8; 1];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"x", "the peeked byte is still there");
        assert!(!input_waiting(server.as_raw_fd()));
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !input_waiting(server.as_raw_fd()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(input_waiting(server.as_raw_fd()), "an end of stream waits too");
    }

    #[test]
    fn stale_entries_are_skipped() {
        let (mut w, origin) = wheel(Some(1000), Some(200));
        let mut conns = [Watch::default()];
        w.watch(&mut conns[0], 0, 1); // entry at the idle deadline
        w.touch(&mut conns[0], 0, 1, true); // an earlier one for the head
        assert_eq!(w.len(), 2);
        w.touch(&mut conns[0], 0, 1, false); // the head completed in time
        assert!(run_to(&mut w, origin, 300, &mut conns, false).is_empty());
        assert_eq!(run_to(&mut w, origin, 1200, &mut conns, false), vec![(0, Expiry::Idle)]);
        assert!(w.is_empty());
    }
}
