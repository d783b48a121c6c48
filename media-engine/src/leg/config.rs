//! How a leg is set up ([`LegConfig`]) and what offer/answer settled for an
//! RTP leg ([`RtpMedia`]), with their defaults.

use std::time::Duration;

use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::opus_peer::OpusPeer;
use bond_codecs::signals::SplitMix64;
use bond_codecs::Codec;

use crate::ids::{PayloadType, Ssrc};
use crate::rtp::srtp::Srtp;

/// How a leg is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct LegConfig {
    pub codec: Codec,
    pub payload_type: PayloadType,
    /// Payload type of RFC 4733 telephone-events, when negotiated.
    pub telephone_event_pt: Option<PayloadType>,
    /// Send digits as telephone-events when a payload type is negotiated (SIP
    /// legs); otherwise, and by default, they are played in-band.
    pub send_events: bool,
    pub ssrc: Ssrc,
    pub initial_seq: u16,
    pub initial_timestamp: u32,
    /// Initial buffering before playout.
    pub playout_delay: Duration,
    /// End the leg when no RTP arrives for this long; `None` for legs with no peer.
    pub media_timeout: Option<Duration>,
    pub opus: OpusConfig,
    pub detect_inband_dtmf: bool,
    /// Output every decoded frame as [`LegOutput::Heard`](super::LegOutput::Heard) (for bridges, recorders, tests).
    pub emit_heard: bool,
    /// Bridged with a leg of the same codec, packets may pass through undecoded
    /// (see `passthrough.rs`); needs RFC 4733 on the leg.
    pub passthrough: bool,
    /// Send and read RTCP reports (SIP legs; WebRTC legs have str0m's).
    pub rtcp: Option<RtcpSetup>,
}

/// What a leg needs for RTCP: its CNAME and the wall-clock time (since the Unix
/// epoch) of the `now` it is created at, for the NTP timestamps of its reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpSetup {
    pub cname: String,
    pub unix_time_at_start: Duration,
}

/// What offer/answer settled for an RTP leg: applied at creation or mid-call
/// (a re-INVITE: hold, resume, a codec at the same rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMedia {
    pub codec: Codec,
    pub payload_type: PayloadType,
    pub telephone_event_pt: Option<PayloadType>,
    /// Send RTP to the peer (false while the peer holds or is inactive).
    pub send: bool,
    /// The peer sends RTP, so silence means trouble (the media timeout runs).
    pub expect_media: bool,
    /// RTCP goes to the peer's RTP address from the RTP port (RFC 5761), not
    /// from the port above it. The runtime reads this; the engine tells RTCP
    /// from RTP by packet type whichever port it came in on.
    pub rtcp_mux: bool,
    /// How long each audio packet sent is, in ms (the peer's `a=ptime`): 10,
    /// 20, 30, 40 or 60 (`packing.rs`).
    pub packet_ms: u32,
    /// SRTP (SDES): the runtime protects what the leg sends and checks what
    /// it receives at the socket, so the engine, passthrough included, only
    /// ever sees plain RTP.
    pub srtp: Srtp,
    /// What the peer asked of the Opus it receives (RFC 7587 `a=fmtp`); Bond
    /// codes for it ([`OpusConfig::for_peer`]). `None`: Bond's own settings.
    pub opus_peer: Option<OpusPeer>,
}

impl RtpMedia {
    /// `codec` on its static payload type (111 for Opus), telephone-events on 101,
    /// media both ways.
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            payload_type: default_payload_type(codec),
            telephone_event_pt: PayloadType::new(101),
            send: true,
            expect_media: true,
            rtcp_mux: false,
            packet_ms: 20,
            srtp: Srtp::Off,
            opus_peer: None,
        }
    }
}

fn default_payload_type(codec: Codec) -> PayloadType {
    PayloadType::new(codec.static_payload_type().unwrap_or(111)).expect("static types and 111 are below 128")
}

impl LegConfig {
    /// Defaults for `codec`, with SSRC, sequence and timestamp drawn from `seed`.
    pub fn new(codec: Codec, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        Self {
            codec,
            payload_type: default_payload_type(codec),
            telephone_event_pt: PayloadType::new(101),
            send_events: false,
            ssrc: Ssrc(rng.next_u64() as u32),
            initial_seq: rng.next_u64() as u16,
            initial_timestamp: rng.next_u64() as u32,
            playout_delay: Duration::from_millis(40),
            media_timeout: Some(Duration::from_secs(30)),
            opus: OpusConfig::default(),
            detect_inband_dtmf: true,
            emit_heard: false,
            passthrough: false,
            rtcp: None,
        }
    }
}
