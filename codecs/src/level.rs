//! Signal levels: dBFS and dBm0 (ITU-T G.711: a full-scale mu-law sine is +3.17 dBm0).

/// Level of a full-scale sine in dBm0 (G.711: a full-scale mu-law sine is +3.17 dBm0).
const DBM0_FULL_SCALE_OFFSET_DB: f64 = 3.17;

/// RMS of `samples` in dB relative to full scale (`i16::MAX`); silence gives -inf.
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let power: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len() as f64;
    10.0 * (power / (f64::from(i16::MAX) * f64::from(i16::MAX))).log10()
}

/// Peak amplitude of a sine whose level is `dbm0`.
pub fn sine_amplitude_for_dbm0(dbm0: f64) -> f64 {
    // A full-scale sine is +3.17 dBm0.
    f64::from(i16::MAX) * 10f64.powf((dbm0 - DBM0_FULL_SCALE_OFFSET_DB) / 20.0)
}

/// RMS amplitude of a signal whose level is `dbm0` (noise, for instance).
pub fn rms_for_dbm0(dbm0: f64) -> f64 {
    sine_amplitude_for_dbm0(dbm0) / std::f64::consts::SQRT_2
}

/// Level of a frame of samples in dBm0.
pub fn rms_dbm0(samples: &[i16]) -> f64 {
    // A full-scale sine has RMS -3.01 dBFS and is +3.17 dBm0.
    rms_dbfs(samples) + 3.0103 + DBM0_FULL_SCALE_OFFSET_DB
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_at_given_dbm0_measures_that_level() {
        let amp = sine_amplitude_for_dbm0(-20.0);
        let s: Vec<i16> = (0..8000)
            .map(|n| (amp * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i16)
            .collect();
        assert!((rms_dbm0(&s) + 20.0).abs() < 0.1, "{}", rms_dbm0(&s));
    }

    #[test]
    fn silence_is_minus_infinity() {
        assert_eq!(rms_dbfs(&[0; 10]), f64::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[]), f64::NEG_INFINITY);
    }
}
