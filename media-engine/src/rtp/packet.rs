//! A borrowed view of one RTP packet, and writing one into a buffer.
//! Header parsing and writing use the webrtc-rs `rtp` crate.

use rtp::header::Header;
use webrtc_util::marshal::{Marshal, MarshalSize, Unmarshal};

use super::RtpError;

/// Largest RTP packet Bond sends or accepts (fits an Ethernet MTU).
pub const MAX_RTP_PACKET: usize = 1500;

/// Length of Bond's own minimal RTP header (no CSRCs, no extension).
pub const PLAIN_HEADER: usize = 12;

/// `buf` becomes a minimal RTP packet (version 2, no padding, CSRCs or extension):
/// what Bond hands its own legs when packets arrive in another shape (stream
/// chunks, str0m's parsed packets).
pub fn plain_packet<'b>(
    buf: &'b mut Vec<u8>,
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(&[0x80, (u8::from(marker) << 7) | (payload_type & 0x7f)]);
    buf.extend_from_slice(&sequence.to_be_bytes());
    buf.extend_from_slice(&timestamp.to_be_bytes());
    buf.extend_from_slice(&ssrc.to_be_bytes());
    buf.extend_from_slice(payload);
    buf
}

/// A parsed RTP packet borrowing its payload from the datagram.
#[derive(Debug, Clone)]
pub struct RtpPacket<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parse a datagram; never panics, whatever the bytes.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        if datagram.len() < 12 {
            return Err(RtpError::TooShort(datagram.len()));
        }
        let version = datagram[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        super::extension::check(datagram)?;
        let mut reader = datagram;
        let header = Header::unmarshal(&mut reader).map_err(|e| RtpError::Header(e.to_string()))?;
        let mut payload = reader;
        if header.padding {
            let padding = usize::from(*payload.last().unwrap_or(&0));
            if padding == 0 || padding > payload.len() {
                return Err(RtpError::BadPadding { padding, available: payload.len() });
            }
            payload = &payload[..payload.len() - padding];
        }
        Ok(Self { header, payload })
    }
}

/// Write a header (no CSRCs or extensions are expected in Bond's own packets) and
/// `payload` into `out`; returns the packet length.
pub fn write_packet(header: &Header, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
    let header_len = header.marshal_size();
    let total = header_len + payload.len();
    if total > out.len() {
        return Err(RtpError::TooLarge(total));
    }
    header.marshal_to(&mut out[..header_len]).map_err(|e| RtpError::Header(e.to_string()))?;
    out[header_len..total].copy_from_slice(payload);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            version: 2,
            marker: true,
            payload_type: 0,
            sequence_number: 65535,
            timestamp: 0xDEADBEEF,
            ssrc: 0x1234_5678,
            ..Header::default()
        }
    }

    #[test]
    fn written_packet_parses_back() {
        let mut buf = [0u8; 200];
        let n = write_packet(&header(), &[1, 2, 3], &mut buf).unwrap();
        assert_eq!(n, 15);
        assert_eq!(&buf[..2], &[0x80, 0x80]);
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.header.sequence_number, 65535);
        assert_eq!(p.header.timestamp, 0xDEADBEEF);
        assert!(p.header.marker);
        assert_eq!(p.payload, &[1, 2, 3]);
    }

    #[test]
    fn padding_is_removed_and_bad_padding_refused() {
        let mut buf = [0u8; 64];
        let n = write_packet(&Header { padding: true, ..header() }, &[9, 9, 0, 0, 3], &mut buf).unwrap();
        assert_eq!(RtpPacket::parse(&buf[..n]).unwrap().payload, &[9, 9]);
        let n = write_packet(&Header { padding: true, ..header() }, &[9, 200], &mut buf).unwrap();
        assert!(matches!(RtpPacket::parse(&buf[..n]), Err(RtpError::BadPadding { .. })));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(matches!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::TooShort(5))));
        assert!(matches!(RtpPacket::parse(&[0x40; 20]), Err(RtpError::BadVersion(1))));
        // CSRC count of 15 with no room for them.
        let mut short_csrc = [0u8; 16];
        short_csrc[0] = 0x8F;
        assert!(RtpPacket::parse(&short_csrc).is_err());
        // Extension bit with a truncated extension header.
        let mut ext = [0u8; 14];
        ext[0] = 0x90;
        assert!(RtpPacket::parse(&ext).is_err());
        // Found by fuzz/rtp_packet: a one-byte extension element longer than its block
        // made the `rtp` crate panic.
        let overlong: [u8; 26] =
            [0x90, 0, 8, 3, 0, 0, 1, 0, 1, 0, 0, 42, 0xBE, 0xDE, 0, 1, 0x7E, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(RtpPacket::parse(&overlong), Err(RtpError::BadExtension(_))));
        for len in 0..64 {
            for seed in 0..64u8 {
                let bytes: Vec<u8> = (0..len).map(|i| seed.wrapping_mul(31).wrapping_add(i as u8)).collect();
                let _ = RtpPacket::parse(&bytes);
            }
        }
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut buf = [0u8; 20];
        assert!(matches!(write_packet(&header(), &[0; 10], &mut buf), Err(RtpError::TooLarge(22))));
    }
}
