//! ICE-TCP on the WebRTC port: a TCP listener on the port's address for
//! browsers whose firewall lets no UDP through (RFC 6544; Bond's candidates are
//! passive, the browser connects). Each connection's packets (RFC 4571 frames,
//! `webrtc/reach.rs`) go to the driver of the leg they are for exactly as the
//! UDP port's datagrams do, and what a leg sends to a TCP peer goes back down
//! that peer's connection, through a bounded queue its writer task drains.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::webrtc_socket::Reader;
use crate::webrtc::reach::{frame, Deframer};
use crate::webrtc::Transport;

/// Connections held at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 1024;
/// Connections one address may hold (as many as SIP-TCP allows): a browser
/// needs one per call, and one host cannot take all the room.
const MAX_PER_ADDRESS: usize = 32;
/// A connection that brings nothing for this long is closed (ICE consent
/// checks come every few seconds on a live one).
const IDLE: Duration = Duration::from_secs(30);
/// Packets waiting for one connection's socket (a second of a call's media).
const WRITE_QUEUE: usize = 128;
const READ_BUFFER: usize = 16 * 1024;
/// How long a failed `accept` waits before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connected browsers' writers, by their address.
#[derive(Debug, Default)]
pub(super) struct TcpPeers {
    writers: Mutex<HashMap<SocketAddr, mpsc::Sender<Bytes>>>,
}

impl TcpPeers {
    /// Frame `packet` and queue it on `to`'s connection; `false` when `to`
    /// has none. ICE pairs Bond's passive candidates with the browser's
    /// active ones (port 9) and checks them too, but a passive side cannot
    /// dial out: those checks have nowhere to go and are not losses.
    pub fn send(&self, to: SocketAddr, packet: &[u8]) -> io::Result<bool> {
        let framed = frame(packet).ok_or(io::ErrorKind::InvalidInput)?;
        let Some(writer) = self.lock().get(&to).cloned() else { return Ok(false) };
        writer.try_send(framed).map_err(|_| io::Error::from(io::ErrorKind::WouldBlock))?;
        Ok(true)
    }

    /// Room for a connection from `peer`: the queue its writer drains, or
    /// `None` when `peer`'s address holds its share of connections already.
    fn admit(&self, peer: SocketAddr) -> Option<mpsc::Receiver<Bytes>> {
        let mut writers = self.lock();
        if writers.keys().filter(|held| held.ip() == peer.ip()).count() >= MAX_PER_ADDRESS {
            return None;
        }
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        writers.insert(peer, tx);
        Some(rx)
    }

    fn left(&self, peer: SocketAddr) {
        self.lock().remove(&peer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Bytes>>> {
        // The map holds no invariant a panicking holder could break half-way.
        self.writers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Accept browsers on `listener` until the task is aborted.
pub(super) fn spawn(listener: TcpListener, reader: Reader, peers: Arc<TcpPeers>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let room = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = room.clone().acquire_owned().await else { return };
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, say: wait instead of spinning on the error.
                    tracing::warn!(error = %e, "WebRTC TCP accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Some(queue) = peers.admit(peer) else {
                tracing::debug!(%peer, "WebRTC TCP connection refused: its address holds its share");
                continue;
            };
            let (reader, peers) = (reader.clone(), peers.clone());
            tokio::spawn(async move {
                connection(stream, peer, queue, &reader).await;
                peers.left(peer);
                drop(permit);
            });
        }
    })
}

/// One browser's connection: its packets in, until it closes or idles; what
/// comes down `queue` out.
async fn connection(stream: TcpStream, peer: SocketAddr, mut queue: mpsc::Receiver<Bytes>, reader: &Reader) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(framed) = queue.recv().await {
            if write.write_all(&framed).await.is_err() {
                return;
            }
        }
    });
    let mut deframer = Deframer::default();
    let mut buffer = vec![0; READ_BUFFER];
    'read: loop {
        let n = match tokio::time::timeout(IDLE, read.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        deframer.push(&buffer[..n]);
        while let Some(packet) = deframer.next_packet() {
            if !reader.dispatch(Transport::Tcp, peer, local, packet) {
                break 'read;
            }
        }
    }
    writer.abort();
    tracing::debug!(%peer, "WebRTC TCP connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    #[test]
    fn one_address_holds_at_most_its_share_of_connections() {
        let peers = TcpPeers::default();
        let held: Vec<_> =
            (0..MAX_PER_ADDRESS as u16).map(|i| peers.admit(at("10.0.0.1", 1000 + i))).collect();
        assert!(held.iter().all(Option::is_some));
        assert!(peers.admit(at("10.0.0.1", 5000)).is_none(), "its share is taken");
        assert!(peers.admit(at("10.0.0.2", 5000)).is_some(), "another address is not held back");
        peers.left(at("10.0.0.1", 1000));
        assert!(peers.admit(at("10.0.0.1", 5000)).is_some(), "room again once one left");
    }

    #[test]
    fn a_packet_for_a_peer_without_a_connection_has_nowhere_to_go() {
        let peers = TcpPeers::default();
        assert!(!peers.send(at("10.0.0.1", 9), b"check").unwrap());
        let mut queue = peers.admit(at("10.0.0.1", 50000)).unwrap();
        assert!(peers.send(at("10.0.0.1", 50000), b"check").unwrap());
        assert_eq!(&queue.try_recv().unwrap()[..], &[0, 5, b'c', b'h', b'e', b'c', b'k']);
    }
}
