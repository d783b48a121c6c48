//! Arrival times taken by the kernel (SO_TIMESTAMPNS), so that a load
//! generator sharing the machine with Bond measures Bond's delay and not its own
//! wake-ups: for datagrams ([`recv_stamped`]) and for a TCP stream
//! ([`StampedTcp`], the time of the latest segment each read took).

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Ask the kernel to stamp what arrives on `socket`.
pub fn enable<S: AsFd>(socket: &S) -> io::Result<()> {
    nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::ReceiveTimestampns, &true)
        .map_err(io::Error::from)
}

/// Read what is waiting on `socket` without blocking, and the kernel's time of
/// its arrival (ns since the Unix epoch; for TCP, of the latest segment read).
pub fn recv_stamped<S: AsRawFd>(socket: &S, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};
    let mut space = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg =
        recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_DONTWAIT)
            .map_err(io::Error::from)?;
    let stamp = msg.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
        ControlMessageOwned::ScmTimestampns(t) => {
            Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        }
        _ => None,
    });
    Ok((msg.bytes, stamp))
}

/// Microseconds since `origin` on the wall clock the kernel stamps with.
pub fn wall_us(origin: SystemTime) -> u64 {
    #[allow(clippy::disallowed_methods)] // the generator measures Bond from outside
    let now = SystemTime::now();
    now.duration_since(origin).map_or(0, |d| d.as_micros() as u64)
}

/// A TCP stream whose reads note the kernel's arrival time of what they took
/// in [`StampedTcp::arrived`] (shared, so a reader half can see it).
#[derive(Debug)]
pub struct StampedTcp {
    stream: TcpStream,
    arrived: Arc<AtomicU64>,
}

impl StampedTcp {
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        enable(&stream)?;
        Ok(Self { stream, arrived: Arc::new(AtomicU64::new(0)) })
    }

    /// The arrival time (ns since the Unix epoch) of the latest read's data.
    pub fn arrived(&self) -> Arc<AtomicU64> {
        self.arrived.clone()
    }
}

impl AsyncRead for StampedTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            let room = buf.initialize_unfilled();
            match this.stream.try_io(Interest::READABLE, || recv_stamped(&this.stream, room)) {
                Ok((n, stamp)) => {
                    if let Some(ns) = stamp {
                        this.arrived.store(ns, Ordering::Relaxed);
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_read_notes_when_the_kernel_took_in_its_data() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let mut stamped = StampedTcp::new(listener.accept().await.unwrap().0).unwrap();
        let arrived = stamped.arrived();
        let mut buf = [0u8; 16];
        // The kernel turns stamping on a moment after the first socket asks for it
        // (a deferred switch): wait for a stamped read before the one measured.
        for _ in 0..400 {
            client.write_all(b"probe").await.unwrap();
            assert_eq!(stamped.read(&mut buf).await.unwrap(), 5);
            if arrived.load(Ordering::Relaxed) != 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_ne!(arrived.load(Ordering::Relaxed), 0, "the kernel stamps nothing");
        let origin = SystemTime::UNIX_EPOCH;
        let before_us = wall_us(origin);
        client.write_all(b"frame").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let n = stamped.read(&mut buf).await.unwrap();
        let read_us = wall_us(origin);
        assert_eq!(&buf[..n], b"frame");
        let arrived_us = arrived.load(Ordering::Relaxed) / 1000;
        // Stamped when it arrived, after it was sent and at least the 50 ms slept before it was read.
        assert!(
            before_us <= arrived_us && arrived_us + 50_000 <= read_us,
            "{before_us} {arrived_us} {read_us}"
        );
        stamped.write_all(b"back").await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"back");
    }
}
