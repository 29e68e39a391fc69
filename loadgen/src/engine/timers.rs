//! A thread's timers: at most one deadline per connection slot (its next
//! open-loop send, or its retry after a failure), kept on a binary heap.
//!
//! Setting a slot's timer earlier than the one it has pushes a new entry and
//! leaves the old one in the heap, to be skipped when it comes up (a lazy
//! delete: no search); setting it later than the one it has does nothing, since
//! the earlier one fires first and its handler sets the next.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// See the module documentation. Times are monotonic nanoseconds.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// Each slot's deadline, 0 for none.
    at_ns: Vec<u64>,
}

impl Timers {
    /// Timers for `slots` slots, none set.
    pub fn new(slots: usize) -> Self {
        Timers { heap: BinaryHeap::new(), at_ns: vec![0; slots] }
    }

    /// Slot `i` wants to be woken at `at` (the earliest of its requests wins).
    #[inline]
    pub fn set(&mut self, i: usize, at: u64) {
        let mine = &mut self.at_ns[i];
        if *mine != 0 && *mine <= at {
            return;
        }
        *mine = at;
        self.heap.push(Reverse((at, i as u32)));
    }

    /// Forget slot `i`'s timer (its socket closed).
    pub fn clear(&mut self, i: usize) {
        self.at_ns[i] = 0;
    }

    /// The earliest deadline on the heap. It may belong to a timer since
    /// replaced or cleared: the caller then wakes up early for nothing.
    pub fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next slot whose timer is due at `now`, taken off the heap.
    pub fn pop_due(&mut self, now: u64) -> Option<usize> {
        while let Some(&Reverse((at, i))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            let i = i as usize;
            if self.at_ns[i] == at {
                self.at_ns[i] = 0;
                return Some(i);
            }
            // Replaced by an earlier timer, or cleared: skip.
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(t: &mut Timers, now: u64) -> Vec<usize> {
        std::iter::from_fn(|| t.pop_due(now)).collect()
    }

    #[test]
    fn earliest_wins_and_each_fires_once() {
        let mut t = Timers::new(3);
        t.set(0, 30);
        t.set(0, 50); // later: ignored
        t.set(1, 20);
        t.set(1, 10); // earlier: replaces
        t.set(2, 40);
        assert_eq!(t.next(), Some(10));
        assert_eq!(due(&mut t, 9), Vec::<usize>::new());
        assert_eq!(due(&mut t, 15), vec![1]);
        assert_eq!(t.next(), Some(20), "the replaced entry is still on the heap");
        assert_eq!(due(&mut t, 30), vec![0], "and is skipped");
        assert_eq!(due(&mut t, 45), vec![2]);
        assert_eq!((t.next(), due(&mut t, u64::MAX)), (None, vec![]));
    }

    #[test]
    fn a_cleared_timer_does_not_fire_and_can_be_set_again() {
        let mut t = Timers::new(2);
        t.set(0, 10);
        t.set(1, 15);
        t.clear(0);
        assert_eq!(due(&mut t, 20), vec![1]);
        t.set(0, 25);
        t.set(0, 30);
        assert_eq!(due(&mut t, 30), vec![0]);
        // Fired: a later time may be set now.
        t.set(0, 40);
        assert_eq!(due(&mut t, 40), vec![0]);
    }
}
