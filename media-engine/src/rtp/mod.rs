//! RTP (RFC 3550): packet view, packetizer, playout buffer, receive statistics and RTCP reports.

mod extension;
mod packet;
mod packetizer;
mod playout;
mod quality;
pub mod reframe;
pub mod rtcp;
mod sequence;
pub mod srtp;
mod stats;

pub use packet::{plain_packet, write_packet, RtpPacket, MAX_RTP_PACKET, PLAIN_HEADER};
pub use packetizer::Packetizer;
pub use playout::{Inserted, Playout, PlayoutBuffer};
pub use sequence::SequenceExtender;
pub use stats::{ReceiveStats, RtpStats};

/// Why an RTP packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    #[error("RTP packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("malformed RTP header: {0}")]
    Header(String),
    #[error("malformed RTP header extension: {0}")]
    BadExtension(&'static str),
    #[error("RTP padding of {padding} bytes exceeds the {available}-byte payload")]
    BadPadding { padding: usize, available: usize },
    #[error("RTP payload of {0} bytes does not fit the buffer")]
    TooLarge(usize),
    #[error("malformed RTCP: {0}")]
    Rtcp(String),
}
