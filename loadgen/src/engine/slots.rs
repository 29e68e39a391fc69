//! A thread's connection table: its slots ([`Conn`]), the queue of slots
//! waiting to connect, the connect window (`--connect-window`, shared out
//! per thread) and ramp (`--connect-rate`), and the counts of slots open,
//! established once, and still with work to do. No sockets here: the back
//! end ([`super::Io`]) owns them, indexed by the same slot numbers.

use std::collections::VecDeque;

use crate::conn::{Conn, State};

/// What the connect queue offers next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Connect this slot now (it has been counted as started).
    Connect(usize),
    /// A slot left the queue with nothing to do: ask again.
    Skip,
    /// Nothing now: the queue is empty, the window full, or the ramp ahead.
    Wait,
}

/// A slot just established: first time, or a reconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Established for the first time after `connect_ns`; `all`: it was the
    /// thread's last slot to be.
    First { connect_ns: u64, all: bool },
    /// Established again `reconnect_ns` after its previous socket closed.
    Again { reconnect_ns: u64 },
}

/// See the module documentation.
#[derive(Debug)]
pub struct Slots {
    pub conns: Vec<Conn>,
    /// Slots waiting to connect, in order.
    queue: VecDeque<u32>,
    /// Connects in progress, and how many may be.
    connecting: u32,
    cap: u32,
    /// Initial connects started, and their rate for this thread (per ns).
    initial_started: u64,
    rate_per_ns: Option<f64>,
    /// Slots with an established socket.
    pub open: u64,
    /// Slots established at least once.
    pub established: u64,
    /// Slots with work left (budget or requests in flight).
    pub busy: u64,
}

impl Slots {
    /// All of `conns` queued to connect, at most `cap` at once, the first
    /// connects of each at `rate_per_ns` (none: as fast as the window allows).
    pub fn new(conns: Vec<Conn>, cap: u32, rate_per_ns: Option<f64>) -> Self {
        let busy = conns.iter().filter(|c| !c.finished).count() as u64;
        Slots {
            queue: (0..conns.len() as u32).collect(),
            conns,
            connecting: 0,
            cap: cap.max(1),
            initial_started: 0,
            rate_per_ns,
            open: 0,
            established: 0,
            busy,
        }
    }

    /// Could a connect start now, ramp aside?
    pub fn can_connect(&self) -> bool {
        self.connecting < self.cap && !self.queue.is_empty()
    }

    /// When the ramp allows the next initial connect (connects start at
    /// `epoch`), if one is waiting for it.
    pub fn next_initial_connect(&self, epoch: u64) -> Option<u64> {
        let rate = self.rate_per_ns?;
        let &first = self.queue.front()?;
        if self.conns[first as usize].established_once || self.connecting >= self.cap {
            return None;
        }
        Some(epoch + (self.initial_started as f64 / rate) as u64)
    }

    /// Take the next slot to connect at `now`, if the window and the ramp allow;
    /// the connect counts as started (see [`Slots::connect_started`]).
    pub fn offer(&mut self, now: u64, epoch: u64) -> Offer {
        if self.connecting >= self.cap {
            return Offer::Wait;
        }
        let Some(&i) = self.queue.front() else { return Offer::Wait };
        let i = i as usize;
        if !self.conns[i].established_once {
            if let Some(at) = self.next_initial_connect(epoch) {
                if at > now {
                    return Offer::Wait;
                }
            }
            self.initial_started += 1;
        }
        self.queue.pop_front();
        if self.conns[i].is_done() && self.conns[i].established_once {
            return Offer::Skip;
        }
        self.connect_started(i, now);
        Offer::Connect(i)
    }

    /// Slot `i` calls connect at `now`.
    pub fn connect_started(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        c.state = State::Connecting;
        c.phase_at_ns = now;
        c.connecting = true;
        self.connecting += 1;
    }

    /// Slot `i` is no longer connecting (established, failed or closed).
    pub fn connect_done(&mut self, i: usize) {
        if std::mem::take(&mut self.conns[i].connecting) {
            self.connecting -= 1;
        }
    }

    /// Slot `i` established its socket at `now`.
    pub fn opened(&mut self, i: usize, now: u64) -> Opened {
        let slots = self.conns.len() as u64;
        let c = &mut self.conns[i];
        c.state = State::Open;
        self.open += 1;
        let opened = if c.established_once {
            Opened::Again { reconnect_ns: now - c.closed_at_ns }
        } else {
            c.established_once = true;
            self.established += 1;
            Opened::First { connect_ns: now - c.phase_at_ns, all: self.established == slots }
        };
        c.phase_at_ns = now;
        // Free from now on: time spent connecting is not the client's dispatch lag.
        c.free_since_ns = now;
        c.on_socket = c.pending.len() as u64;
        self.connect_done(i);
        opened
    }

    /// Slot `i`'s socket closed at `now` (whatever its state).
    pub fn closed(&mut self, i: usize, now: u64) {
        self.connect_done(i);
        let c = &mut self.conns[i];
        if c.state == State::Open {
            self.open -= 1;
        }
        c.state = State::Idle;
        c.rx.reset();
        c.closed_at_ns = now;
        c.on_socket = 0;
        c.close_after = false;
        c.sending = false;
    }

    /// Queue slot `i` to connect again.
    pub fn requeue(&mut self, i: usize) {
        self.queue.push_back(i as u32);
    }

    /// Count slot `i` out of the busy ones once its budget is spent and
    /// nothing is in flight; true when it is (or was already) finished.
    pub fn mark_if_done(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        if !c.finished && c.is_done() {
            c.finished = true;
            self.busy -= 1;
        }
        c.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Pending, Rx};
    use proto::Proto;

    fn slots(n: u64, budget: u64, cap: u32, rate_per_ns: Option<f64>) -> Slots {
        let conns = (0..n).map(|g| Conn::new(g, Rx::new(Proto::Http, false), 1, budget, (0, 0))).collect();
        Slots::new(conns, cap, rate_per_ns)
    }

    fn offers(s: &mut Slots, now: u64) -> Vec<Offer> {
        std::iter::from_fn(|| Some(s.offer(now, 0)).filter(|o| *o != Offer::Wait)).collect()
    }

    #[test]
    fn the_window_caps_connects_in_progress() {
        let mut s = slots(5, 10, 2, None);
        assert_eq!(offers(&mut s, 0), vec![Offer::Connect(0), Offer::Connect(1)]);
        assert!(!s.can_connect());
        s.connect_done(0);
        s.connect_done(0); // counted once
        assert_eq!(offers(&mut s, 0), vec![Offer::Connect(2)]);
        assert_eq!(s.opened(1, 7), Opened::First { connect_ns: 7, all: false });
        assert_eq!(offers(&mut s, 7), vec![Offer::Connect(3)]);
    }

    #[test]
    fn the_ramp_paces_first_connects_only() {
        // One connect per 10 ns from epoch 0.
        let mut s = slots(3, 10, 10, Some(0.1));
        assert_eq!(offers(&mut s, 0), vec![Offer::Connect(0)]);
        assert_eq!(s.next_initial_connect(0), Some(10));
        assert_eq!(offers(&mut s, 9), vec![]);
        assert_eq!(offers(&mut s, 25), vec![Offer::Connect(1), Offer::Connect(2)]);
        // A reconnect is not held back by the ramp.
        assert_eq!(s.opened(0, 30), Opened::First { connect_ns: 30, all: false });
        s.closed(0, 40);
        s.requeue(0);
        assert_eq!(s.next_initial_connect(0), None);
        assert_eq!(offers(&mut s, 41), vec![Offer::Connect(0)]);
        assert_eq!(s.opened(0, 45), Opened::Again { reconnect_ns: 5 });
    }

    #[test]
    fn open_and_busy_counts_follow_the_slots() {
        let mut s = slots(2, 1, 4, None);
        assert_eq!(s.busy, 2);
        offers(&mut s, 0);
        s.opened(0, 1);
        assert_eq!(s.opened(1, 2), Opened::First { connect_ns: 2, all: true });
        assert_eq!((s.open, s.established), (2, 2));
        s.conns[0].pending.push_back(Pending { scheduled_ns: 3, sent_ns: 3, measured: true });
        s.conns[0].budget = 0;
        assert!(!s.mark_if_done(0), "a request is still in flight");
        s.conns[0].pending.clear();
        assert!(s.mark_if_done(0) && s.mark_if_done(0));
        assert_eq!(s.busy, 1, "counted out once");
        s.closed(0, 5);
        s.closed(0, 6);
        assert_eq!((s.open, s.conns[0].state), (1, State::Idle));
        // A finished slot that was established leaves the queue without connecting.
        s.requeue(0);
        assert_eq!(offers(&mut s, 7), vec![Offer::Skip]);
    }
}
