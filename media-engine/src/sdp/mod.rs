//! SDP (RFC 8866) for audio offer/answer (RFC 3264): just what a SIP trunk needs.
//!
//! [`SessionDescription::parse`] reads an offer or answer into typed fields and
//! refuses what it cannot use with an [`SdpError`] (never a panic: this text comes
//! from the network). [`negotiate`] picks the codec and telephone-event payload type
//! Bond and the peer share (and the SDES key, RFC 4568, when the audio is SRTP),
//! and [`write`] renders Bond's own offer or answer.

mod negotiate;
mod parse;
mod write;

use std::net::IpAddr;

pub use crate::rtp::srtp::Crypto;
pub use negotiate::{accept_answer, answer, MediaPlan, NegotiationError};
pub use write::{write, LocalMedia};

/// Longest SDP body Bond reads.
pub const MAX_SDP_LEN: usize = 16 * 1024;

/// Which way media flows, from the describing party's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn attribute(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction that answers this one (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }

    /// The describing party sends media.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// The describing party receives media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub protocol: String,
    /// Payload types in the order of preference the `m=` line gives.
    pub formats: Vec<u8>,
    pub rtpmaps: Vec<RtpMap>,
    pub fmtps: Vec<(u8, String)>,
    pub ptime: Option<u32>,
    /// `a=maxptime`: the longest packet the peer takes, in ms.
    pub maxptime: Option<u32>,
    pub direction: Option<Direction>,
    /// A media-level `c=` address, overriding the session's.
    pub connection: Option<IpAddr>,
    pub rtcp_mux: bool,
    /// SDES keys (`a=crypto`, RFC 4568) in suites Bond speaks, in the order given.
    pub crypto: Vec<Crypto>,
}

impl MediaDescription {
    /// Whether the `m=` line asks for SRTP (`RTP/SAVP`, `RTP/SAVPF`).
    pub fn secure(&self) -> bool {
        self.protocol.to_ascii_uppercase().starts_with("RTP/SAVP")
    }

    /// The rtpmap of `pt`, or the static RFC 3551 assignment for 0, 8 and 9.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap> {
        if let Some(map) = self.rtpmaps.iter().find(|m| m.payload_type == pt) {
            return Some(map.clone());
        }
        let (encoding, clock_rate) = match pt {
            0 => ("PCMU", 8000),
            8 => ("PCMA", 8000),
            9 => ("G722", 8000),
            _ => return None,
        };
        Some(RtpMap { payload_type: pt, encoding: encoding.to_owned(), clock_rate, channels: None })
    }

    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps.iter().find(|(p, _)| *p == pt).map(|(_, f)| f.as_str())
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin_session_id: u64,
    pub origin_version: u64,
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute (a media-level one wins).
    pub direction: Option<Direction>,
    pub media: Vec<MediaDescription>,
}

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    #[error("SDP body is longer than {MAX_SDP_LEN} bytes")]
    TooLong,
    #[error("SDP is not UTF-8 text")]
    NotText,
    #[error("SDP line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("SDP has no {0} line")]
    Missing(&'static str),
}
