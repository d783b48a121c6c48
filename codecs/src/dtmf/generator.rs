//! DTMF tone generator.

use super::{DtmfDigit, COL_HZ, ROW_HZ};
use crate::level::sine_amplitude_for_dbm0;
use crate::signals::Oscillator;

/// Generates one digit's dual tone for a set duration, then silence.
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    low: Oscillator,
    high: Oscillator,
    remaining: usize,
}

impl DtmfGenerator {
    /// `level_dbm0` is the level of each of the two tones.
    pub fn new(digit: DtmfDigit, rate: u32, level_dbm0: f64, duration_ms: u32) -> Self {
        Self::with_twist(digit, rate, level_dbm0, level_dbm0, duration_ms, 0.0)
    }

    /// Full control: levels of each group and a relative frequency offset (for Q.24 tests).
    pub fn with_twist(
        digit: DtmfDigit,
        rate: u32,
        low_dbm0: f64,
        high_dbm0: f64,
        duration_ms: u32,
        frequency_offset: f64,
    ) -> Self {
        let (r, c) = digit.row_col();
        let f = 1.0 + frequency_offset;
        Self {
            low: Oscillator::new(ROW_HZ[r] * f, rate, sine_amplitude_for_dbm0(low_dbm0)),
            high: Oscillator::new(COL_HZ[c] * f, rate, sine_amplitude_for_dbm0(high_dbm0)),
            remaining: (rate as usize * duration_ms as usize) / 1000,
        }
    }

    /// Fill `out` with tone while the digit lasts, silence after. Returns false once finished.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        for s in out.iter_mut() {
            if self.remaining == 0 {
                *s = 0;
                continue;
            }
            self.remaining -= 1;
            *s = self.low.next_sample().saturating_add(self.high.next_sample());
        }
        self.remaining > 0
    }

    pub fn is_finished(&self) -> bool {
        self.remaining == 0
    }
}
