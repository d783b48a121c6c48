//! G.711 mu-law and A-law (ITU-T G.711, bit-exact with the G.191 reference).
//!
//! Negative samples are folded with ones' complement (`!x`), as G.191 does, so
//! `-1` encodes like `0` with the sign bit clear. Both directions are table
//! lookups; the tables are built at compile time (encoding finds each segment
//! with `leading_zeros`) and checked against G.191 for every input.

/// mu-law code of one 16-bit linear sample.
#[inline]
pub fn ulaw_encode(x: i16) -> u8 {
    // The code depends only on `x >> 2` (G.191 folds negatives with `!x`, and `!x >> 2 == !(x >> 2)`).
    ULAW_ENCODE[((x >> 2) as u16 & 0x3FFF) as usize]
}

/// Linear sample of one mu-law code.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// A-law code of one 16-bit linear sample.
#[inline]
pub fn alaw_encode(x: i16) -> u8 {
    // The code depends only on `x >> 4`, as above.
    ALAW_ENCODE[((x >> 4) as u16 & 0x0FFF) as usize]
}

/// Linear sample of one A-law code.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Encode `pcm` into `out` (same length) as mu-law.
pub fn ulaw_encode_slice(pcm: &[i16], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = ulaw_encode(s);
    }
}

/// Decode mu-law `codes` into `out` (same length).
pub fn ulaw_decode_slice(codes: &[u8], out: &mut [i16]) {
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ulaw_decode(c);
    }
}

/// Encode `pcm` into `out` (same length) as A-law.
pub fn alaw_encode_slice(pcm: &[i16], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = alaw_encode(s);
    }
}

/// Decode A-law `codes` into `out` (same length).
pub fn alaw_decode_slice(codes: &[u8], out: &mut [i16]) {
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = alaw_decode(c);
    }
}

static ULAW_DECODE: [i16; 256] = build_ulaw_decode();
static ALAW_DECODE: [i16; 256] = build_alaw_decode();
/// mu-law code for each value of `x >> 2` (14 bits, two's complement).
static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();
/// A-law code for each value of `x >> 4` (12 bits, two's complement).
static ALAW_ENCODE: [u8; 4096] = build_alaw_encode();

/// mu-law segment and mantissa of a 13-bit magnitude: the segment is found
/// with `leading_zeros` rather than G.191's loop.
const fn ulaw_magnitude_code(magnitude: i32) -> u8 {
    let biased = if magnitude + 33 > 0x1FFF { 0x1FFF } else { magnitude + 33 };
    // Segment 1..=8: one more than the bit length of `biased >> 6`.
    let segment = 33 - ((biased >> 6) as u32).leading_zeros();
    let high = 8 - segment as i32;
    let low = 0x0F - ((biased >> segment) & 0x0F);
    ((high << 4) | low) as u8
}

/// A-law exponent and mantissa of an 11-bit magnitude, before the even-bit inversion.
const fn alaw_magnitude_code(magnitude: i32) -> u8 {
    if magnitude < 16 {
        return magnitude as u8;
    }
    // Exponent 1..=7: the bit length of `magnitude` less four.
    let exponent = 28 - (magnitude as u32).leading_zeros() as i32;
    ((exponent << 4) | ((magnitude >> (exponent - 1)) & 0x0F)) as u8
}

const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Sign-extend the 14-bit index back to `x >> 2`.
        let shifted = ((i as i32) << 18) >> 18;
        let magnitude = if shifted < 0 { !shifted } else { shifted };
        let sign = if shifted < 0 { 0 } else { 0x80 };
        table[i] = ulaw_magnitude_code(magnitude) | sign;
        i += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 4096] {
    let mut table = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        let shifted = ((i as i32) << 20) >> 20;
        let magnitude = if shifted < 0 { !shifted } else { shifted };
        let sign = if shifted < 0 { 0 } else { 0x80 };
        table[i] = (alaw_magnitude_code(magnitude) | sign) ^ 0x55;
        i += 1;
    }
    table
}

const fn build_ulaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let inverted = !(code as u8) as i32;
        let exponent = (inverted >> 4) & 0x07;
        let mantissa = inverted & 0x0F;
        let step = 4 << (exponent + 1);
        let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
        table[code] = if code < 0x80 { -magnitude } else { magnitude } as i16;
        code += 1;
    }
    table
}

const fn build_alaw_decode() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let folded = (code as i32 ^ 0x55) & 0x7F;
        let exponent = folded >> 4;
        let mut mantissa = folded & 0x0F;
        if exponent > 0 {
            mantissa += 16;
        }
        mantissa = (mantissa << 4) + 0x08;
        if exponent > 1 {
            mantissa <<= exponent - 1;
        }
        table[code] = if code > 127 { mantissa } else { -mantissa } as i16;
        code += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    //! The reference below is a line-by-line transcription of ITU-T G.191 `g711.c`
    //! (`ulaw_compress`, `alaw_compress`, `ulaw_expand`, `alaw_expand`), kept
    //! deliberately naive so the fast code above is checked against it.
    use super::*;

    fn g191_ulaw_compress(x: i16) -> u8 {
        let x = i32::from(x);
        let mut absno = if x < 0 { (!x) >> 2 } else { x >> 2 };
        absno += 33;
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x0008 - segno;
        let mut low_nibble = (absno >> segno) & 0x000F;
        low_nibble = 0x000F - low_nibble;
        let mut out = (high_nibble << 4) | low_nibble;
        if x >= 0 {
            out |= 0x0080;
        }
        out as u8
    }

    fn g191_alaw_compress(x: i16) -> u8 {
        let x = i32::from(x);
        let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if x >= 0 {
            ix |= 0x0080;
        }
        (ix ^ 0x0055) as u8
    }

    fn g191_ulaw_expand(code: u8) -> i16 {
        let sign = if code < 0x80 { -1 } else { 1 };
        let mantissa = !i32::from(code) & 0xFF;
        let exponent = (mantissa >> 4) & 0x07;
        let segment = exponent + 1;
        let mantissa = mantissa & 0x0F;
        let step = 4 << segment;
        (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
    }

    fn g191_alaw_expand(code: u8) -> i16 {
        let mut ix = i32::from(code) ^ 0x0055;
        ix &= 0x007F;
        let iexp = ix >> 4;
        let mut mant = ix & 0x000F;
        if iexp > 0 {
            mant += 16;
        }
        mant = (mant << 4) + 0x0008;
        if iexp > 1 {
            mant <<= iexp - 1;
        }
        (if code > 127 { mant } else { -mant }) as i16
    }

    #[test]
    fn ulaw_encode_matches_g191_for_all_65536_inputs() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), g191_ulaw_compress(x), "x = {x}");
        }
    }

    #[test]
    fn alaw_encode_matches_g191_for_all_65536_inputs() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(x), g191_alaw_compress(x), "x = {x}");
        }
    }

    #[test]
    fn decoders_match_g191_for_all_256_codes() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_decode(code), g191_ulaw_expand(code), "mu-law {code:#04x}");
            assert_eq!(alaw_decode(code), g191_alaw_expand(code), "A-law {code:#04x}");
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            // 0x7F is mu-law "negative zero": it decodes to 0, which encodes as 0xFF.
            let expected_ulaw = if code == 0x7F { 0xFF } else { code };
            assert_eq!(ulaw_encode(ulaw_decode(code)), expected_ulaw, "mu-law {code:#04x}");
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn published_code_points() {
        // G.711 Tables 1 and 2: silence, the smallest steps and the extremes.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
    }

    #[test]
    fn slice_helpers_round_trip_within_quantisation_error() {
        let pcm: Vec<i16> = (0..160).map(|n| (n * 200 - 16000) as i16).collect();
        let mut codes = [0u8; 160];
        let mut back = [0i16; 160];
        ulaw_encode_slice(&pcm, &mut codes);
        ulaw_decode_slice(&codes, &mut back);
        for (a, b) in pcm.iter().zip(back) {
            assert!((i32::from(*a) - i32::from(b)).abs() <= 1024);
        }
        alaw_encode_slice(&pcm, &mut codes);
        alaw_decode_slice(&codes, &mut back);
        for (a, b) in pcm.iter().zip(back) {
            assert!((i32::from(*a) - i32::from(b)).abs() <= 1024);
        }
    }
}
