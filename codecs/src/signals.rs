//! Test and measurement signals: tones, seeded noise and SNR. Used by Bond's
//! own tests, benches and the built-in `loop:tone` leg.

use std::f64::consts::PI;

/// `len` samples of a sine of `hz` at `rate` with peak `amplitude`.
pub fn sine(hz: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
    let mut osc = Oscillator::new(hz, rate, amplitude);
    (0..len).map(|_| osc.next_sample()).collect()
}

/// A phase-continuous sine generator.
#[derive(Debug, Clone)]
pub struct Oscillator {
    phase: f64,
    step: f64,
    amplitude: f64,
}

impl Oscillator {
    pub fn new(hz: f64, rate: u32, amplitude: f64) -> Self {
        Self { phase: 0.0, step: 2.0 * PI * hz / f64::from(rate), amplitude }
    }

    pub fn next_sample(&mut self) -> i16 {
        let v = self.amplitude * self.phase.sin();
        self.phase += self.step;
        if self.phase >= 2.0 * PI {
            self.phase -= 2.0 * PI;
        }
        // Round half away from zero; `as` saturates to the i16 range.
        (v + 0.5f64.copysign(v)) as i16
    }

    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = self.next_sample();
        }
    }
}

/// A small seeded PRNG (SplitMix64) so noise is the same on every run.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn next_gaussian(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// `len` samples of white Gaussian noise with RMS `rms`.
pub fn white_noise(seed: u64, len: usize, rms: f64) -> Vec<i16> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| (rms * rng.next_gaussian()).round().clamp(-32768.0, 32767.0) as i16).collect()
}

/// Speech-like test audio: white noise with RMS `rms` shaped into syllables, four
/// a second (its level swings by 9 dB, as speech does, while a hiss would not).
pub fn syllables(seed: u64, rate: u32, len: usize, rms: f64) -> Vec<i16> {
    white_noise(seed, len, rms)
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let t = i as f64 / f64::from(rate);
            (f64::from(s) * (0.35 + 0.65 * (PI * 4.0 * t).sin().abs())) as i16
        })
        .collect()
}

/// Add `b` to `a` sample by sample, saturating.
pub fn mix_into(a: &mut [i16], b: &[i16]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = x.saturating_add(y);
    }
}

/// SNR in dB of `output` against `reference`, at the lag in `0..=max_lag` that
/// fits best (codecs and resamplers delay the signal).
pub fn snr_db_aligned(reference: &[i16], output: &[i16], max_lag: usize) -> f64 {
    (0..=max_lag)
        .filter(|&lag| lag < output.len())
        .map(|lag| {
            let n = reference.len().min(output.len() - lag);
            let mut signal = 0.0;
            let mut noise = 0.0;
            for i in 0..n {
                let r = f64::from(reference[i]);
                let e = f64::from(output[i + lag]) - r;
                signal += r * r;
                noise += e * e;
            }
            10.0 * (signal / noise.max(1e-9)).log10()
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

/// SINAD in dB: the power of the best-fitting sine at `hz` against the power of
/// everything else (noise and distortion). Independent of delay and phase.
pub fn sinad_db(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let w = 2.0 * PI * hz / f64::from(rate);
    let (mut ss, mut sc, mut cc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, &x) in samples.iter().enumerate() {
        let (s, c) = (w * n as f64).sin_cos();
        let x = f64::from(x);
        ss += s * s;
        sc += s * c;
        cc += c * c;
        xs += x * s;
        xc += x * c;
    }
    // Least squares for x ~ a sin + b cos.
    let det = ss * cc - sc * sc;
    let a = (xs * cc - xc * sc) / det;
    let b = (xc * ss - xs * sc) / det;
    let (mut tone, mut rest) = (0.0, 0.0);
    for (n, &x) in samples.iter().enumerate() {
        let (s, c) = (w * n as f64).sin_cos();
        let fit = a * s + b * c;
        tone += fit * fit;
        rest += (f64::from(x) - fit).powi(2);
    }
    10.0 * (tone / rest.max(1e-9)).log10()
}

/// The lag in `0..=max_lag` at which `output` best matches `reference` (cross-correlation peak).
pub fn best_lag(reference: &[i16], output: &[i16], max_lag: usize) -> usize {
    (0..=max_lag)
        .filter(|&lag| lag < output.len())
        .map(|lag| {
            let n = reference.len().min(output.len() - lag);
            let c: f64 = (0..n).map(|i| f64::from(reference[i]) * f64::from(output[i + lag])).sum();
            (lag, c)
        })
        .fold((0, f64::NEG_INFINITY), |best, x| if x.1 > best.1 { x } else { best })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_signals_have_huge_snr_and_zero_lag() {
        let s = sine(1000.0, 8000, 800, 10_000.0);
        assert!(snr_db_aligned(&s, &s, 10) > 90.0);
        assert_eq!(best_lag(&s, &s, 3), 0);
    }

    #[test]
    fn delayed_signal_is_found_at_its_lag() {
        let s = white_noise(7, 800, 3000.0);
        let mut delayed = vec![0i16; 13];
        delayed.extend_from_slice(&s);
        assert_eq!(best_lag(&s, &delayed, 40), 13);
        assert!(snr_db_aligned(&s, &delayed, 40) > 90.0);
    }

    #[test]
    fn sinad_separates_a_tone_from_added_noise() {
        let mut s = sine(1000.0, 8000, 8000, 10_000.0);
        assert!(sinad_db(&s, 1000.0, 8000) > 60.0);
        mix_into(&mut s, &white_noise(5, 8000, 707.0)); // tone RMS 7071: 20 dB above the noise
        let sinad = sinad_db(&s, 1000.0, 8000);
        assert!((sinad - 20.0).abs() < 0.5, "{sinad}");
    }

    #[test]
    fn noise_is_seeded() {
        assert_eq!(white_noise(1, 16, 100.0), white_noise(1, 16, 100.0));
        assert_ne!(white_noise(1, 16, 100.0), white_noise(2, 16, 100.0));
    }
}
