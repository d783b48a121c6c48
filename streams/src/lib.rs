//! Media streams over WebSocket. Carriers' streams in (Telnyx Media Streaming
//! and Twilio Media Streams, [`session`]): Bond is the WebSocket server and
//! each stream becomes a call's leg, reported to call control through
//! [`StreamControl`]. A call's audio out (`streaming_start`, [`fork`] and
//! [`back`]): Bond is the client and speaks Telnyx's side of the protocol.
//!
//! It owns the frames of both protocols ([`frames`]), the carriers'
//! credentials ([`auth`]) and the sockets. It must never import the call
//! service, HTTP routing or the webhook outbox: the HTTP skin upgrades a
//! socket and hands it to [`session::serve`].

pub mod auth;
pub mod back;
mod control;
pub mod fork;
pub mod frames;
pub mod mp3;
pub mod session;

pub use control::{StreamCall, StreamControl};

/// What each of Bond's WebSockets (media streams, stream forks, agent
/// signalling, supervisors) reads at a time. A stream frame is a few
/// hundred bytes; tungstenite zeroes the room it reads into on every read, and
/// its default (128 KiB) made that zeroing a quarter of Bond's CPU with 500
/// streams. Larger frames (audio an application sends back) still arrive whole,
/// over several reads.
pub const READ_BUFFER: usize = 4096;

/// An upgraded connection's socket.
#[derive(Debug)]
pub enum UpgradedSocket {
    /// The TCP socket of a connection the HTTP listener accepted, out of its runtime's
    /// reactor (register it again with `tokio::net::TcpStream::from_std`), and
    /// what hyper had read past the request.
    Tcp { socket: std::net::TcpStream, read: bytes::Bytes },
    /// A connection of another kind (another server's), as it is.
    Other(hyper::upgrade::Upgraded),
}
