//! Media streams over WebSocket. Carriers' streams in (Telnyx Media Streaming
//! and Twilio Media Streams): Bond is the WebSocket server and each stream
//! becomes a call. A call's audio out (`streaming_start`, `fork.rs`): Bond is
//! the client and speaks Telnyx's side of the protocol.

pub mod auth;
pub mod back;
pub mod fork;
pub mod frames;
pub mod mp3;
pub mod session;
