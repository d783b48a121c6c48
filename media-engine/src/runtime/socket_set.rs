//! The RTP and RTCP sockets a driver reads itself, without a task per socket.
//!
//! Each socket has a waker of its own, made once. tokio's reactor wakes it when
//! the socket becomes readable; the waker puts the socket's place on the set's
//! ready list and wakes the driver. The driver takes the list
//! ([`SocketSet::take_ready`]) and reads each socket on it until it would
//! block ([`SocketSet::recv`]), which hands its waker back to the reactor.
//! A datagram so goes from the kernel to the engine on the driver's own task:
//! no reader task to schedule, no channel, no copy into a queue.
//!
//! A place is reused once its leg ends, so a wake-up meant for the old socket
//! can land on the new one: reading it then finds nothing and only registers
//! the waker again, which the new socket needs anyway.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::ids::LegId;

/// Where woken sockets wait for the driver.
#[derive(Debug, Default)]
struct Ready {
    places: Mutex<Vec<usize>>,
    driver: Notify,
}

impl Ready {
    fn push(&self, place: usize) {
        // A list of numbers: nothing a panicking holder could leave half-done.
        self.places.lock().unwrap_or_else(PoisonError::into_inner).push(place);
        self.driver.notify_one();
    }
}

/// One socket's waker: queues its place.
struct PlaceWaker {
    place: usize,
    ready: Arc<Ready>,
}

impl Wake for PlaceWaker {
    fn wake(self: Arc<Self>) {
        self.ready.push(self.place);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.place);
    }
}

struct Entry {
    socket: Arc<UdpSocket>,
    leg: LegId,
    waker: Waker,
}

/// A driver's RTP sockets, by place.
#[derive(Default)]
pub(super) struct SocketSet {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    ready: Arc<Ready>,
    /// Places taken from the ready list, still to be read.
    taken: Vec<usize>,
}

impl SocketSet {
    /// Read `socket` for `leg` from now on; its place in the set.
    pub fn insert(&mut self, socket: Arc<UdpSocket>, leg: LegId) -> usize {
        let place = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            self.entries.len() - 1
        });
        let waker = Waker::from(Arc::new(PlaceWaker { place, ready: self.ready.clone() }));
        self.entries[place] = Some(Entry { socket, leg, waker });
        // Read once straight away: that is what registers its waker.
        self.ready.push(place);
        place
    }

    /// Stop reading the socket at `place`.
    pub fn remove(&mut self, place: usize) {
        if self.entries.get_mut(place).and_then(Option::take).is_some() {
            self.free.push(place);
        }
    }

    /// Wait until some socket is on the ready list.
    pub async fn readable(&self) {
        loop {
            if !self.ready.places.lock().unwrap_or_else(PoisonError::into_inner).is_empty() {
                return;
            }
            self.ready.driver.notified().await;
        }
    }

    /// Take the ready list: the places to [`recv`](Self::recv) from, in turn.
    pub fn take_ready(&mut self) -> Vec<usize> {
        let mut places = std::mem::take(&mut self.taken);
        std::mem::swap(&mut places, &mut self.ready.places.lock().unwrap_or_else(PoisonError::into_inner));
        places
    }

    /// Give back the list [`take_ready`](Self::take_ready) returned, emptied, to be reused.
    pub fn give_back(&mut self, mut places: Vec<usize>) {
        places.clear();
        self.taken = places;
    }

    /// The next datagram waiting on the socket at `place`, with its leg and
    /// sender; `None` once it has nothing more (its waker is then registered
    /// again), or if the place is empty. Errors on one datagram (an ICMP port
    /// unreachable, say) are skipped.
    ///
    /// Reading does not count against tokio's cooperative budget (only the
    /// readiness check at the end does, once per socket), so a driver reads a
    /// whole batch of sockets in one go.
    pub fn recv(&self, place: usize, buf: &mut [u8]) -> Option<(LegId, SocketAddr, usize)> {
        let entry = self.entries.get(place)?.as_ref()?;
        loop {
            match entry.socket.try_recv_from(buf) {
                Ok((len, from)) => return Some((entry.leg, from, len)),
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => continue,
                Err(_) => {}
            }
            // Nothing left: hand the reactor the socket's waker. Readable again
            // already (a datagram came in meanwhile): read on.
            let mut cx = Context::from_waker(&entry.waker);
            match entry.socket.poll_recv_ready(&mut cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) | Poll::Pending => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bound() -> Arc<UdpSocket> {
        Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap())
    }

    /// Everything waiting, by leg, after the set says something is ready.
    async fn read_all(set: &mut SocketSet) -> Vec<(LegId, Vec<u8>)> {
        tokio::time::timeout(std::time::Duration::from_secs(5), set.readable()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        let ready = set.take_ready();
        for &place in &ready {
            while let Some((leg, _, n)) = set.recv(place, &mut buf) {
                got.push((leg, buf[..n].to_vec()));
            }
        }
        set.give_back(ready);
        got
    }

    #[tokio::test]
    async fn datagrams_on_any_socket_wake_the_set_and_are_read_with_their_leg() {
        let mut set = SocketSet::default();
        let (a, b) = (bound().await, bound().await);
        set.insert(a.clone(), LegId(1));
        set.insert(b.clone(), LegId(2));
        // The first round registers the wakers: nothing has arrived yet.
        assert!(read_all(&mut set).await.is_empty());

        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(b"to b", b.local_addr().unwrap()).await.unwrap();
        let mut got = Vec::new();
        while got.is_empty() {
            got = read_all(&mut set).await;
        }
        assert_eq!(got, vec![(LegId(2), b"to b".to_vec())]);

        peer.send_to(b"a1", a.local_addr().unwrap()).await.unwrap();
        peer.send_to(b"a2", a.local_addr().unwrap()).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            got.extend(read_all(&mut set).await);
        }
        assert_eq!(got, vec![(LegId(1), b"a1".to_vec()), (LegId(1), b"a2".to_vec())]);
    }

    #[tokio::test]
    async fn a_removed_socket_is_not_read_and_its_place_serves_the_next() {
        let mut set = SocketSet::default();
        let old = bound().await;
        let place = set.insert(old.clone(), LegId(1));
        set.remove(place);
        let new = bound().await;
        assert_eq!(set.insert(new.clone(), LegId(2)), place);
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(b"old", old.local_addr().unwrap()).await.unwrap();
        peer.send_to(b"new", new.local_addr().unwrap()).await.unwrap();
        let mut got = Vec::new();
        while got.is_empty() {
            got = read_all(&mut set).await;
        }
        assert_eq!(got, vec![(LegId(2), b"new".to_vec())]);
    }
}
