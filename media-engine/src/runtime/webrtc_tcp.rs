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
            let (reader, peers) = (reader.clone(), peers.clone());
            tokio::spawn(async move {
                connection(stream, peer, &reader, &peers).await;
                drop(permit);
            });
        }
    })
}

/// One browser's connection: its packets in, until it closes or idles.
async fn connection(stream: TcpStream, peer: SocketAddr, reader: &Reader, peers: &TcpPeers) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    peers.lock().insert(peer, tx);
    let writer = tokio::spawn(async move {
        while let Some(framed) = rx.recv().await {
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
    peers.lock().remove(&peer);
    writer.abort();
    tracing::debug!(%peer, "WebRTC TCP connection closed");
}
