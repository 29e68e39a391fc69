//! One thread of a chat run: a mio loop (epoll, edge-triggered) over its
//! share of the members, which connects them, joins them, sends the messages
//! of its senders on their schedule, and reads every line the room sends them.
//!
//! A send is due at a nanosecond instant; epoll's timeout has millisecond
//! steps, so the loop sleeps until about 2 ms before the next send and polls
//! without blocking from there (the lateness that remains is reported as the
//! dispatch lag). Lines are classified by their first bytes (the server writes
//! `{"type":"...",` first) and only broadcasts of this run are parsed further.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::{Shared, Totals};
use crate::clock::{now_ns, MS};
use crate::config::Share;
use crate::env::ThreadCpu;
use crate::error::LoadError;

/// Read buffer of a thread.
const READ_BUF: usize = 64 * 1024;
/// A member holds at most this much of a partial line (the server's lines are
/// far shorter): more is a bad answer.
const MAX_CARRY: usize = 1 << 20;
/// Below this before a send, poll without blocking.
const SPIN_NS: u64 = 2 * MS;
/// The set-up failure of a thread that stopped because another one failed.
pub const OTHER_THREAD_FAILED: &str = "another thread's set-up failed";
/// How often an idle loop looks at the shared counters.
const TICK: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Joining,
    Joined,
    Dead,
}

struct Member {
    global: u64,
    stream: Option<TcpStream>,
    state: State,
    /// Bytes not yet written (a join or a message).
    out: Vec<u8>,
    /// A partial line.
    carry: Vec<u8>,
    connect_ns: u64,
    /// Deliveries of the window's messages.
    delivered: u64,
}

/// Run every thread of the chat run; their figures merged.
pub fn run_threads(shared: &Shared) -> Result<Totals, LoadError> {
    let threads = shared.config.threads;
    let shares = Share { first: 0, count: shared.config.members }.split(threads);
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (t, share) in shares.into_iter().enumerate() {
            let handle = std::thread::Builder::new()
                .name(format!("chat-load-{t}"))
                .spawn_scoped(scope, move || Thread::new(shared, share)?.run())
                .map_err(|e| LoadError::io("spawn thread", e))?;
            handles.push(handle);
        }
        let mut total = Totals::default();
        for handle in handles {
            let part = handle.join().map_err(|_| LoadError::io("chat thread", io::Error::other("panicked")))??;
            total.merge(&part)?;
        }
        if total.member_min == u64::MAX {
            total.member_min = 0;
        }
        Ok(total)
    })
}

struct Thread<'s> {
    shared: &'s Shared,
    poll: Poll,
    members: Vec<Member>,
    /// Senders' next sends: (due ns, member index, message number).
    due: BinaryHeap<Reverse<(u64, usize, u64)>>,
    buf: Box<[u8]>,
    totals: Totals,
    next_connect: usize,
    connecting: u32,
    /// Counted locally, published to the shared counters once per turn.
    joined: u64,
    notices: u64,
    delivered: u64,
}

impl<'s> Thread<'s> {
    fn new(shared: &'s Shared, share: Share) -> Result<Self, LoadError> {
        let poll = Poll::new().map_err(|e| LoadError::io("create epoll", e))?;
        let members = (share.first..share.first + share.count)
            .map(|global| Member {
                global,
                stream: None,
                state: State::Idle,
                out: Vec::new(),
                carry: Vec::new(),
                connect_ns: 0,
                delivered: 0,
            })
            .collect();
        Ok(Thread {
            shared,
            poll,
            members,
            due: BinaryHeap::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            totals: Totals { threads: 1, ..Totals::default() },
            next_connect: 0,
            connecting: 0,
            joined: 0,
            notices: 0,
            delivered: 0,
        })
    }

    fn fail(&mut self, why: String) -> Result<Totals, LoadError> {
        self.shared.failed.store(true, Ordering::Release);
        self.totals.setup_failure = Some(why);
        Ok(std::mem::take(&mut self.totals))
    }

    fn run(mut self) -> Result<Totals, LoadError> {
        let config = self.shared.config.clone();
        let mut events = Events::with_capacity(1024);
        let setup_started = now_ns();
        // Set-up: connect and join everyone, wait for the notices to settle.
        let mut last_progress = (now_ns(), 0u64, 0u64);
        let start = loop {
            if crate::threads::STOP.load(Ordering::Relaxed) {
                return self.fail("stopped by a signal during set-up".into());
            }
            if self.shared.failed.load(Ordering::Acquire) {
                return self.fail(OTHER_THREAD_FAILED.into());
            }
            self.start_connects();
            self.poll.poll(&mut events, Some(TICK)).map_err(|e| LoadError::io("epoll", e))?;
            for event in events.iter() {
                self.ready(event.token().0, now_ns());
            }
            self.publish();
            if let Some(start) = self.shared.started() {
                break start;
            }
            let (joined, notices) =
                (self.shared.joined.load(Ordering::Acquire), self.shared.notices.load(Ordering::Acquire));
            let now = now_ns();
            if joined == config.members && notices >= self.shared.notices_expected() {
                // The first thread to see it sets the start for all.
                let start = now + 20 * MS;
                let _ = self.shared.start_ns.compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire);
                continue;
            }
            if let Some(why) = self.dead_during_setup() {
                return self.fail(why);
            }
            if (joined, notices) != (last_progress.1, last_progress.2) {
                last_progress = (now, joined, notices);
            } else if now - last_progress.0 > crate::clock::ns(config.timeout.max(config.connect_timeout)) {
                return self.fail(format!(
                    "no progress for {:?}: {joined} of {} members joined, {notices} of {} join notices received",
                    config.timeout.max(config.connect_timeout),
                    config.members,
                    self.shared.notices_expected()
                ));
            }
        };
        self.totals.setup_ns = start.saturating_sub(setup_started);
        // Load: the senders' schedules, the window, then the drain.
        let window_start = start + crate::clock::ns(config.warmup);
        let window_end = window_start + crate::clock::ns(config.duration);
        let period = config.sender_period_ns();
        for (i, m) in self.members.iter().enumerate() {
            if let Some(rank) = config.sender_rank(m.global) {
                let first = start + (rank as f64 * 1e9 / config.rate) as u64;
                self.due.push(Reverse((first, i, 0)));
            }
        }
        let mut cpu_start = None;
        let mut cpu_end = None;
        let mut done_sending = false;
        let drain_deadline = window_end + crate::clock::ns(config.timeout);
        loop {
            let now = now_ns();
            if cpu_start.is_none() && now >= window_start {
                cpu_start = Some(ThreadCpu::now());
            }
            if cpu_end.is_none() && now >= window_end {
                cpu_end = Some(ThreadCpu::now());
            }
            self.send_due(now, window_start, window_end, start, period);
            if !done_sending && (now >= window_end || crate::threads::STOP.load(Ordering::Relaxed)) {
                done_sending = true;
                self.due.clear();
                self.shared.done_sending.fetch_add(1, Ordering::AcqRel);
            }
            self.publish();
            if done_sending {
                let all_done = self.shared.done_sending.load(Ordering::Acquire) == u64::from(config.threads);
                let expected = self.shared.sent.load(Ordering::Acquire) * config.members;
                if (all_done && self.shared.delivered.load(Ordering::Acquire) >= expected) || now >= drain_deadline {
                    self.totals.drain_ns = now.saturating_sub(window_end);
                    break;
                }
            }
            let timeout = match self.due.peek() {
                Some(Reverse((due, ..))) if *due > now + SPIN_NS => Duration::from_nanos(due - now - SPIN_NS).min(TICK),
                Some(_) => Duration::ZERO,
                None => TICK,
            };
            self.poll.poll(&mut events, Some(timeout)).map_err(|e| LoadError::io("epoll", e))?;
            let now = now_ns();
            for event in events.iter() {
                self.ready(event.token().0, now);
            }
        }
        let cpu_end = cpu_end.unwrap_or_else(ThreadCpu::now);
        let used = cpu_end.since(cpu_start.unwrap_or(cpu_end));
        self.totals.cpu_user_ns = used.user_ns;
        self.totals.cpu_sys_ns = used.sys_ns;
        self.totals.cpu_wait_ns = used.wait_ns;
        self.totals.window_ns = crate::clock::ns(config.duration);
        let sent = self.shared.sent.load(Ordering::Acquire);
        for m in &self.members {
            self.totals.member_min = self.totals.member_min.min(m.delivered);
            self.totals.member_max = self.totals.member_max.max(m.delivered);
            self.totals.members_short += u64::from(m.delivered < sent);
        }
        // Leave without a FIN first: the server sees each member go as a reset.
        for m in &mut self.members {
            if let Some(stream) = m.stream.take() {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
        }
        Ok(std::mem::take(&mut self.totals))
    }

    /// A member of ours that died before the load could start.
    fn dead_during_setup(&self) -> Option<String> {
        self.members.iter().any(|m| m.state == State::Dead).then(|| {
            self.totals.first_error.clone().unwrap_or_else(|| "a member's connection ended during set-up".into())
        })
    }

    fn publish(&mut self) {
        let shared = self.shared;
        shared.joined.fetch_add(std::mem::take(&mut self.joined), Ordering::AcqRel);
        let notices = std::mem::take(&mut self.notices);
        self.totals.notices += notices;
        shared.notices.fetch_add(notices, Ordering::AcqRel);
        shared.delivered.fetch_add(std::mem::take(&mut self.delivered), Ordering::AcqRel);
    }

    fn start_connects(&mut self) {
        let config = &self.shared.config;
        while self.connecting < config.connect_window && self.next_connect < self.members.len() {
            let i = self.next_connect;
            self.next_connect += 1;
            let now = now_ns();
            match TcpStream::connect(config.addr) {
                Ok(mut stream) => {
                    let token = Token(i);
                    if let Err(e) =
                        self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    {
                        self.error(i, format!("register: {e}"), true);
                        continue;
                    }
                    let m = &mut self.members[i];
                    m.stream = Some(stream);
                    m.state = State::Connecting;
                    m.connect_ns = now;
                    self.connecting += 1;
                }
                Err(e) => {
                    self.totals.connect_errors += 1;
                    self.error(i, format!("connect to {}: {e}", config.addr), true);
                }
            }
        }
        let limit = crate::clock::ns(config.connect_timeout);
        let now = now_ns();
        for i in 0..self.next_connect {
            if self.members[i].state == State::Connecting && now - self.members[i].connect_ns > limit {
                self.totals.connect_errors += 1;
                self.connecting -= 1;
                self.error(i, format!("connect to {}: timed out", config.addr), true);
            }
        }
    }

    fn error(&mut self, i: usize, message: String, dead: bool) {
        if self.totals.first_error.is_none() {
            self.totals.first_error = Some(message);
        }
        if dead {
            let m = &mut self.members[i];
            m.state = State::Dead;
            if let Some(mut stream) = m.stream.take() {
                let _ = self.poll.registry().deregister(&mut stream);
            }
        }
    }

    /// Readiness of member `i`.
    fn ready(&mut self, i: usize, now: u64) {
        if i >= self.members.len() {
            return;
        }
        if self.members[i].state == State::Connecting {
            let Some(stream) = &self.members[i].stream else { return };
            match stream.take_error() {
                Ok(None) if stream.peer_addr().is_ok() => {}
                Ok(None) => return, // not yet
                Ok(Some(e)) | Err(e) => {
                    self.connecting -= 1;
                    self.totals.connect_errors += 1;
                    return self.error(i, format!("connect to {}: {e}", self.shared.config.addr), true);
                }
            }
            self.connecting -= 1;
            let _ = stream.set_nodelay(true);
            let m = &mut self.members[i];
            m.state = State::Joining;
            let join = format!("{{\"type\":\"join\",\"nickname\":\"{}{}\"}}\n", self.shared.prefix, m.global);
            m.out.extend_from_slice(join.as_bytes());
        }
        self.flush(i);
        self.read(i, now);
    }

    fn flush(&mut self, i: usize) {
        let m = &mut self.members[i];
        let Some(stream) = &mut m.stream else { return };
        while !m.out.is_empty() {
            match stream.write(&m.out) {
                Ok(0) => break,
                Ok(n) => {
                    m.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.error(i, format!("write: {e}"), true),
            }
        }
    }

    fn read(&mut self, i: usize, now: u64) {
        // Taken out of `self` while lines are handled, so that they can be
        // handled in place (no copy per line).
        let mut buf = std::mem::take(&mut self.buf);
        let mut carry = std::mem::take(&mut self.members[i].carry);
        while let Some(stream) = &mut self.members[i].stream {
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.totals.closed_early += 1;
                    let global = self.members[i].global;
                    self.error(i, format!("member {global} was closed by the server"), true);
                    break;
                }
                Ok(n) => {
                    let mut data = &buf[..n];
                    if !carry.is_empty() {
                        // Complete the partial line first.
                        let Some(end) = data.iter().position(|&b| b == b'\n') else {
                            carry.extend_from_slice(data);
                            if carry.len() > MAX_CARRY {
                                self.totals.bad_lines += 1;
                                self.error(i, "a line of over 1 MiB".into(), true);
                                break;
                            }
                            continue;
                        };
                        carry.extend_from_slice(&data[..end]);
                        self.line(i, &carry, now);
                        carry.clear();
                        data = &data[end + 1..];
                    }
                    while let Some(end) = data.iter().position(|&b| b == b'\n') {
                        self.line(i, &data[..end], now);
                        data = &data[end + 1..];
                    }
                    carry.extend_from_slice(data);
                    if n < buf.len() {
                        break; // drained; the next bytes raise a new edge
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.totals.closed_early += 1;
                    self.error(i, format!("read: {e}"), true);
                    break;
                }
            }
        }
        if carry.capacity() > READ_BUF {
            carry.shrink_to(READ_BUF);
        }
        self.members[i].carry = carry;
        self.buf = buf;
    }

    /// One line the server sent member `i`.
    fn line(&mut self, i: usize, line: &[u8], now: u64) {
        const BROADCAST: &[u8] = b"{\"type\":\"broadcast\",";
        const NOTICE: &[u8] = b"{\"type\":\"user_joined\",\"nickname\":\"";
        const JOINED: &[u8] = b"{\"type\":\"joined\",";
        const LEFT: &[u8] = b"{\"type\":\"user_left\",\"nickname\":\"";
        const ERROR: &[u8] = b"{\"type\":\"error\",";
        let ours = |rest: &[u8]| rest.starts_with(self.shared.prefix.as_bytes());
        if line.starts_with(BROADCAST) {
            self.broadcast(i, line, now);
        } else if let Some(rest) = line.strip_prefix(NOTICE) {
            self.notices += u64::from(ours(rest));
        } else if line.starts_with(JOINED) {
            let m = &mut self.members[i];
            if m.state == State::Joining {
                m.state = State::Joined;
                self.joined += 1;
                let _ = self.totals.join.record(now.saturating_sub(m.connect_ns).max(1));
            }
        } else if let Some(rest) = line.strip_prefix(LEFT) {
            if ours(rest) && self.shared.started().is_some() {
                self.totals.members_lost += 1;
                let text = String::from_utf8_lossy(line).into_owned();
                self.error(i, format!("a member left the room: {text}"), false);
            }
        } else if line.starts_with(ERROR) {
            self.totals.error_lines += 1;
            let text = String::from_utf8_lossy(line).into_owned();
            self.error(i, format!("the server answered {text}"), false);
        } else if !line.starts_with(b"{\"type\":\"") {
            self.totals.bad_lines += 1;
            let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
            self.error(i, format!("not a chat line: {text}"), false);
        }
    }

    /// A broadcast: ours if its content is `c10k <rank> <seq> <scheduled> <sent> ...`.
    fn broadcast(&mut self, i: usize, line: &[u8], now: u64) {
        const CONTENT: &[u8] = b"\"content\":\"c10k ";
        let Some(at) = line.windows(CONTENT.len()).position(|w| w == CONTENT) else { return };
        let mut fields = line[at + CONTENT.len()..]
            .split(|&b| b == b' ')
            .map(|f| std::str::from_utf8(f).ok().and_then(|s| s.parse::<u64>().ok()));
        let (Some(Some(_rank)), Some(Some(_seq)), Some(Some(scheduled)), Some(Some(sent))) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            self.totals.bad_lines += 1;
            return;
        };
        let Some(start) = self.shared.started() else { return };
        let config = &self.shared.config;
        let window_start = start + crate::clock::ns(config.warmup);
        let window_end = window_start + crate::clock::ns(config.duration);
        if scheduled < window_start || scheduled >= window_end {
            return;
        }
        let _ = self.totals.corrected.record(now.saturating_sub(scheduled).max(1));
        let _ = self.totals.uncorrected.record(now.saturating_sub(sent).max(1));
        self.totals.delivered += 1;
        self.delivered += 1;
        self.members[i].delivered += 1;
    }

    /// Send every message that is due.
    fn send_due(&mut self, now: u64, window_start: u64, window_end: u64, start: u64, period: f64) {
        let config = &self.shared.config;
        while let Some(&Reverse((due, i, k))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            if due >= window_end {
                continue;
            }
            let rank = config.sender_rank(self.members[i].global).unwrap_or(0);
            let next = start + ((rank as f64 * 1e9 / config.rate) + (k + 1) as f64 * period) as u64;
            if self.members[i].state != State::Joined {
                continue; // it died: its messages are not sent (and not expected)
            }
            let sent = now_ns();
            let head = format!("c10k {rank} {k} {due} {sent} ");
            let pad = config.msg_size.saturating_sub(head.len());
            let m = &mut self.members[i];
            m.out.extend_from_slice(b"{\"type\":\"message\",\"content\":\"");
            m.out.extend_from_slice(head.as_bytes());
            m.out.resize(m.out.len() + pad, b'x');
            m.out.extend_from_slice(b"\"}\n");
            let _ = self.totals.dispatch_lag.record(sent.saturating_sub(due).max(1));
            if due >= window_start {
                self.totals.sent += 1;
                self.shared.sent.fetch_add(1, Ordering::AcqRel);
            }
            self.flush(i);
            self.due.push(Reverse((next, i, k + 1)));
        }
    }
}
