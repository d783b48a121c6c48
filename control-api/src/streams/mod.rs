//! Carrier media streams over WebSocket: Telnyx Media Streaming and Twilio
//! Media Streams. Bond is the WebSocket server; each stream becomes a call.

pub mod auth;
pub mod frames;
pub mod session;
