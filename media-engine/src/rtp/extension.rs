//! The RTP header extension block (RFC 3550 5.3.1) and its RFC 8285 elements,
//! checked before the `rtp` crate parses the header: that crate (0.14) trusts
//! each element's length and panics when one runs past the datagram, so an
//! element that does not fit its block is refused here. Bond reads no
//! extension's contents; it only needs the header to be well formed.

use super::RtpError;

const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Two-byte elements: 0x100 in the top 12 bits, "appbits" in the low 4.
const TWO_BYTE_PROFILE: u16 = 0x1000;
/// A one-byte element with this id ends the block (RFC 8285 4.2).
const ONE_BYTE_STOP_ID: u8 = 15;

/// Check that the extension block of `datagram` (version 2, at least 12 bytes),
/// if it has one, fits the datagram and that its elements fit the block.
pub(super) fn check(datagram: &[u8]) -> Result<(), RtpError> {
    if datagram[0] & 0x10 == 0 {
        return Ok(());
    }
    let csrc_count = usize::from(datagram[0] & 0x0F);
    let start = 12 + 4 * csrc_count;
    let Some(head) = datagram.get(start..start + 4) else {
        return Err(RtpError::BadExtension("extension header past the end of the packet"));
    };
    let profile = u16::from_be_bytes([head[0], head[1]]);
    let words = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let Some(block) = datagram.get(start + 4..start + 4 + 4 * words) else {
        return Err(RtpError::BadExtension("extension block past the end of the packet"));
    };
    if profile == ONE_BYTE_PROFILE {
        one_byte_elements(block)
    } else if profile & 0xFFF0 == TWO_BYTE_PROFILE {
        two_byte_elements(block)
    } else {
        Ok(())
    }
}

fn one_byte_elements(block: &[u8]) -> Result<(), RtpError> {
    let mut at = 0;
    while let Some(&b) = block.get(at) {
        at += 1;
        if b == 0 {
            continue; // padding
        }
        if b >> 4 == ONE_BYTE_STOP_ID {
            return Ok(());
        }
        at += usize::from(b & 0x0F) + 1;
        if at > block.len() {
            return Err(RtpError::BadExtension("one-byte extension element runs past its block"));
        }
    }
    Ok(())
}

fn two_byte_elements(block: &[u8]) -> Result<(), RtpError> {
    let mut at = 0;
    while let Some(&id) = block.get(at) {
        at += 1;
        if id == 0 {
            continue; // padding
        }
        let Some(&len) = block.get(at) else {
            return Err(RtpError::BadExtension("two-byte extension element without its length"));
        };
        at += 1 + usize::from(len);
        if at > block.len() {
            return Err(RtpError::BadExtension("two-byte extension element runs past its block"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(profile: u16, block: &[u8], payload: &[u8]) -> Vec<u8> {
        assert_eq!(block.len() % 4, 0);
        let mut p = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&profile.to_be_bytes());
        p.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
        p.extend_from_slice(block);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn well_formed_blocks_pass() {
        // audio level (id 1, 1 byte), padding, then a 2-byte element.
        assert_eq!(check(&packet(0xBEDE, &[0x10, 0x80, 0x21, 0, 0, 0, 0, 0], &[1])), Ok(()));
        assert_eq!(check(&packet(0x1000, &[3, 2, 9, 9], &[])), Ok(()));
        // An RFC 3550 extension of another profile is opaque.
        assert_eq!(check(&packet(0xABCD, &[0xFF; 8], &[])), Ok(()));
        // Id 15 stops parsing: what follows is not read.
        assert_eq!(check(&packet(0xBEDE, &[0xF0, 0xFF, 0, 0], &[])), Ok(()));
    }

    #[test]
    fn an_element_longer_than_its_block_is_refused() {
        // The fuzzer's find: id 7 claims 15 bytes in a 4-byte block.
        assert!(check(&packet(0xBEDE, &[0x7E, 1, 0, 0], &[0; 9])).is_err());
        assert!(check(&packet(0x1000, &[0, 0, 0, 5], &[0; 9])).is_err(), "length byte missing");
        assert!(check(&packet(0x1000, &[5, 9, 0, 0], &[0; 9])).is_err());
    }

    #[test]
    fn a_block_longer_than_the_packet_is_refused() {
        let mut p = packet(0xBEDE, &[0x10, 1, 0, 0], &[]);
        p[15] = 2; // two words claimed, one present
        assert!(check(&p).is_err());
        assert!(check(&p[..14]).is_err());
    }
}
