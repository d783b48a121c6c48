//! The RTP port range: even ports handed out to legs, returned when they end.

use std::collections::BTreeSet;

/// An inclusive range of UDP ports for RTP; RTP takes the even ones (RFC 3550 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start <= end && start > 0).then_some(Self { start, end })
    }

    /// Even ports in the range.
    pub fn capacity(&self) -> usize {
        let first = self.start + self.start % 2;
        if first > self.end {
            return 0;
        }
        usize::from((self.end - first) / 2) + 1
    }
}

/// Hands out even ports round-robin, skipping those in use.
#[derive(Debug)]
pub(crate) struct PortAllocator {
    range: PortRange,
    in_use: BTreeSet<u16>,
    next: u16,
}

impl PortAllocator {
    pub fn new(range: PortRange) -> Self {
        let first = range.start + range.start % 2;
        Self { range, in_use: BTreeSet::new(), next: first }
    }

    /// The next free even port, or `None` when the range is full.
    pub fn allocate(&mut self) -> Option<u16> {
        let capacity = self.range.capacity();
        for _ in 0..capacity {
            let port = self.next;
            self.advance();
            if self.in_use.insert(port) {
                return Some(port);
            }
        }
        None
    }

    pub fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }

    fn advance(&mut self) {
        let first = self.range.start + self.range.start % 2;
        self.next = match self.next.checked_add(2) {
            Some(p) if p <= self.range.end => p,
            _ => first,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_even_ports_and_reuses_released_ones() {
        let mut a = PortAllocator::new(PortRange::new(10001, 10006).unwrap());
        assert_eq!(PortRange::new(10001, 10006).unwrap().capacity(), 3);
        assert_eq!(a.allocate(), Some(10002));
        assert_eq!(a.allocate(), Some(10004));
        assert_eq!(a.allocate(), Some(10006));
        assert_eq!(a.allocate(), None);
        a.release(10004);
        assert_eq!(a.allocate(), Some(10004));
    }

    #[test]
    fn invalid_ranges_are_refused() {
        assert!(PortRange::new(2000, 1000).is_none());
        assert!(PortRange::new(0, 10).is_none());
        assert_eq!(PortRange::new(7, 7).unwrap().capacity(), 0);
    }
}
