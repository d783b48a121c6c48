//! L16: 16-bit linear PCM. RTP (RFC 3551) sends it big-endian; some stream
//! protocols send little-endian, so both byte orders are here.

use crate::CodecError;

/// Byte order of L16 on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// Network byte order, RFC 3551's L16.
    #[default]
    BigEndian,
    LittleEndian,
}

/// Write `pcm` into `out` (twice as long) in `order`.
pub fn encode(pcm: &[i16], order: ByteOrder, out: &mut [u8]) -> Result<usize, CodecError> {
    let needed = pcm.len() * 2;
    if out.len() < needed {
        return Err(CodecError::OutputTooSmall { needed, got: out.len() });
    }
    for (chunk, &s) in out.chunks_exact_mut(2).zip(pcm) {
        chunk.copy_from_slice(&match order {
            ByteOrder::BigEndian => s.to_be_bytes(),
            ByteOrder::LittleEndian => s.to_le_bytes(),
        });
    }
    Ok(needed)
}

/// Read `bytes` (an even number) into `out` in `order`; returns the samples written.
pub fn decode(bytes: &[u8], order: ByteOrder, out: &mut [i16]) -> Result<usize, CodecError> {
    if bytes.len() % 2 != 0 {
        return Err(CodecError::Malformed("L16 payload has an odd number of bytes"));
    }
    let samples = bytes.len() / 2;
    if out.len() < samples {
        return Err(CodecError::OutputTooSmall { needed: samples, got: out.len() });
    }
    for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let pair = [chunk[0], chunk[1]];
        *o = match order {
            ByteOrder::BigEndian => i16::from_be_bytes(pair),
            ByteOrder::LittleEndian => i16::from_le_bytes(pair),
        };
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_puts_high_byte_first() {
        let mut out = [0u8; 4];
        encode(&[0x1234, -2], ByteOrder::BigEndian, &mut out).unwrap();
        assert_eq!(out, [0x12, 0x34, 0xFF, 0xFE]);
    }

    #[test]
    fn both_orders_round_trip() {
        let pcm = [0i16, 1, -1, i16::MAX, i16::MIN, 12345];
        for order in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
            let mut bytes = [0u8; 12];
            let mut back = [0i16; 6];
            encode(&pcm, order, &mut bytes).unwrap();
            assert_eq!(decode(&bytes, order, &mut back).unwrap(), 6);
            assert_eq!(back, pcm);
        }
    }

    #[test]
    fn odd_length_is_rejected() {
        let mut out = [0i16; 4];
        assert!(decode(&[1, 2, 3], ByteOrder::BigEndian, &mut out).is_err());
    }
}
