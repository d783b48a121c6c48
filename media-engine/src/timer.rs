//! A small table of deadlines indexed by an enum (after quinn's `TimerTable`).
//! State machines arm and disarm timers here and report the earliest one from
//! `poll_timeout`; nothing in the core sleeps or reads the clock.

use std::marker::PhantomData;
use std::time::Instant;

/// An enum whose variants name a state machine's timers.
pub trait TimerKind: Copy + 'static {
    const ALL: &'static [Self];
    fn index(self) -> usize;
}

/// Deadlines for the timers of one state machine.
#[derive(Debug, Clone)]
pub struct TimerTable<K, const N: usize> {
    deadlines: [Option<Instant>; N],
    kind: PhantomData<K>,
}

impl<K: TimerKind, const N: usize> Default for TimerTable<K, N> {
    fn default() -> Self {
        Self { deadlines: [None; N], kind: PhantomData }
    }
}

impl<K: TimerKind, const N: usize> TimerTable<K, N> {
    pub fn set(&mut self, timer: K, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub fn stop(&mut self, timer: K) {
        self.deadlines[timer.index()] = None;
    }

    pub fn get(&self, timer: K) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    pub fn stop_all(&mut self) {
        self.deadlines = [None; N];
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarm and return the first timer due at `now`, if any, with when it was due.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(K, Instant)> {
        let (timer, due) =
            K::ALL.iter().find_map(|&t| self.get(t).filter(|&at| at <= now).map(|at| (t, at)))?;
        self.stop(timer);
        Some((timer, due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum T {
        A,
        B,
    }

    impl TimerKind for T {
        const ALL: &'static [Self] = &[T::A, T::B];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn reports_earliest_and_pops_only_expired() {
        let t0 = crate::sim::epoch();
        let mut table: TimerTable<T, 2> = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(T::B, t0 + Duration::from_millis(5));
        table.set(T::A, t0 + Duration::from_millis(10));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_millis(5)));
        assert_eq!(table.pop_expired(t0), None);
        assert_eq!(
            table.pop_expired(t0 + Duration::from_millis(7)),
            Some((T::B, t0 + Duration::from_millis(5)))
        );
        assert_eq!(table.pop_expired(t0 + Duration::from_millis(7)), None);
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_millis(10)));
    }
}
