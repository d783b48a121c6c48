use super::band::{saturate, Band, QM2, QM4, QM6};
use super::{qmf_push, qmf_sums};
use crate::CodecError;

/// G.722 64 kbit/s decoder: one byte in, two 16 kHz samples out.
#[derive(Debug, Clone)]
pub struct G722Decoder {
    qmf: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Decoder {
    pub fn new() -> Self {
        Self { qmf: [0; 24], low: Band::low(), high: Band::high() }
    }

    /// Decode `bytes`; writes `2 * bytes.len()` samples to `out` and returns that count.
    pub fn decode(&mut self, bytes: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let needed = bytes.len() * 2;
        if out.len() < needed {
            return Err(CodecError::OutputTooSmall { needed, got: out.len() });
        }
        for (&code, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
            let (a, b) = self.decode_byte(i32::from(code));
            pair[0] = a;
            pair[1] = b;
        }
        Ok(needed)
    }

    fn decode_byte(&mut self, code: i32) -> (i16, i16) {
        let ilow = code & 0x3F;
        let ihigh = (code >> 6) & 0x03;

        // 5L INVQBL, RECONS, 6L LIMIT: the 6-bit reconstruction that is heard.
        let rlow = (self.low.s + ((self.low.det * QM6[ilow as usize]) >> 15)).clamp(-16384, 16383);

        // 2L INVQAL, 3L, 4L: the predictor adapts on the 4-bit code, as the encoder did.
        let ril = ilow >> 2;
        let dlow = (self.low.det * QM4[ril as usize]) >> 15;
        self.low.adapt_low_scale(ril);
        self.low.update(dlow);

        // 2H INVQAH, 5H RECONS, 6H LIMIT, 3H, 4H
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        let rhigh = (dhigh + self.high.s).clamp(-16384, 16383);
        self.high.adapt_high_scale(ihigh);
        self.high.update(dhigh);

        // Receive QMF: back to 16 kHz.
        qmf_push(&mut self.qmf, rlow + rhigh, rlow - rhigh);
        let (even, odd) = qmf_sums(&self.qmf);
        // `even` sums the odd-indexed taps, which produce the first output sample.
        (saturate(even >> 11) as i16, saturate(odd >> 11) as i16)
    }
}
