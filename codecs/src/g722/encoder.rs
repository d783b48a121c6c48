use super::band::{saturate, Band, IHN, IHP, ILN, ILP, Q6, QM2, QM4};
use super::{qmf_push, qmf_sums};
use crate::CodecError;

/// G.722 64 kbit/s encoder: 16 kHz PCM in, one byte per two samples out.
#[derive(Debug, Clone)]
pub struct G722Encoder {
    qmf: [i32; 24],
    low: Band,
    high: Band,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl G722Encoder {
    pub fn new() -> Self {
        Self { qmf: [0; 24], low: Band::low(), high: Band::high() }
    }

    /// Encode an even number of 16 kHz samples; returns the bytes written (`pcm.len() / 2`).
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if pcm.len() % 2 != 0 {
            return Err(CodecError::Malformed("G.722 encodes sample pairs"));
        }
        let needed = pcm.len() / 2;
        if out.len() < needed {
            return Err(CodecError::OutputTooSmall { needed, got: out.len() });
        }
        for (pair, byte) in pcm.chunks_exact(2).zip(out.iter_mut()) {
            *byte = self.encode_pair(i32::from(pair[0]), i32::from(pair[1]));
        }
        Ok(needed)
    }

    fn encode_pair(&mut self, first: i32, second: i32) -> u8 {
        // Transmit QMF: split into low and high band at 8 kHz.
        qmf_push(&mut self.qmf, first, second);
        let (even, odd) = qmf_sums(&self.qmf);
        let xlow = (even + odd) >> 14;
        let xhigh = (even - odd) >> 14;

        let ilow = self.encode_low(xlow);
        let ihigh = self.encode_high(xhigh);
        ((ihigh << 6) | ilow) as u8
    }

    fn encode_low(&mut self, xlow: i32) -> i32 {
        // 1L SUBTRA, QUANTL
        let el = saturate(xlow - self.low.s);
        let wd = if el >= 0 { el } else { -(el + 1) };
        let mut i = 1;
        while i < 30 && wd >= (Q6[i] * self.low.det) >> 12 {
            i += 1;
        }
        let ilow = if el < 0 { ILN[i] } else { ILP[i] };

        // 2L INVQAL, 3L, 4L
        let ril = ilow >> 2;
        let dlow = (self.low.det * QM4[ril as usize]) >> 15;
        self.low.adapt_low_scale(ril);
        self.low.update(dlow);
        ilow
    }

    fn encode_high(&mut self, xhigh: i32) -> i32 {
        // 1H SUBTRA, QUANTH
        let eh = saturate(xhigh - self.high.s);
        let wd = if eh >= 0 { eh } else { -(eh + 1) };
        let mih = if wd >= (564 * self.high.det) >> 12 { 2 } else { 1 };
        let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };

        // 2H INVQAH, 3H, 4H
        let dhigh = (self.high.det * QM2[ihigh as usize]) >> 15;
        self.high.adapt_high_scale(ihigh);
        self.high.update(dhigh);
        ihigh
    }
}
