//! A polyphase FIR filter for one rational rate change (up by `L`, down by `M`):
//! a Kaiser-windowed sinc designed at the common rate `L x from`, linear phase,
//! reaching a set number of samples of the lower rate either side of its centre
//! (so its delay, and its transition band as a share of the band, scale with the
//! lower rate). The taps depend only on the rate pair and the
//! delay, so every resampler of a pair shares one table; a resampler itself holds
//! only its input history (a few hundred samples).

use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

/// Stop-band attenuation the window is designed for, in dB.
const ATTENUATION_DB: f64 = 60.0;
/// Taps per phase are padded to a multiple of this, for an 8-wide dot product.
const LANES: usize = 8;

/// The shared taps of one rate pair at one delay.
#[derive(Debug)]
pub(super) struct Filter {
    up: usize,
    down: usize,
    /// Taps per phase (a multiple of `LANES`).
    taps: usize,
    /// Phase after phase, each phase's taps in input order (oldest sample first).
    coeffs: Vec<f32>,
}

type Key = (u32, u32, u32);

/// Every filter designed so far, keyed by (from Hz, to Hz, half length).
static FILTERS: Mutex<Vec<(Key, Arc<Filter>)>> = Mutex::new(Vec::new());

impl Filter {
    /// The filter from `from_hz` to `to_hz` reaching `half` samples of the lower rate
    /// either side of its centre (its delay), designed once per process.
    pub(super) fn shared(from_hz: u32, to_hz: u32, half: u32) -> Arc<Filter> {
        let key = (from_hz, to_hz, half);
        let mut filters = FILTERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, filter)) = filters.iter().find(|(k, _)| *k == key) {
            return filter.clone();
        }
        let filter = Arc::new(Filter::design(from_hz, to_hz, half));
        filters.push((key, filter.clone()));
        filter
    }

    fn design(from_hz: u32, to_hz: u32, half: u32) -> Filter {
        let g = gcd(from_hz, to_hz);
        let (up, down) = ((to_hz / g) as usize, (from_hz / g) as usize);
        let common_hz = f64::from(from_hz) * up as f64;
        // Half the prototype's length at the common rate: its delay.
        let half = half as usize * (from_hz * up as u32 / from_hz.min(to_hz)) as usize;
        let len = 2 * half + 1;
        // Kaiser's estimate of the transition band that length buys; it ends at
        // the lower rate's Nyquist frequency, so nothing aliases into the band.
        let transition_hz = (ATTENUATION_DB - 7.95) * common_hz / (2.285 * 2.0 * PI * (len - 1) as f64);
        let cutoff = (f64::from(from_hz.min(to_hz)) / 2.0 - transition_hz / 2.0) / common_hz;
        let beta = 0.1102 * (ATTENUATION_DB - 8.7);
        let prototype: Vec<f64> = (0..len)
            .map(|k| {
                let t = k as f64 - half as f64;
                let sinc = if t == 0.0 { 2.0 * cutoff } else { (2.0 * PI * cutoff * t).sin() / (PI * t) };
                let r = t / half as f64;
                up as f64 * sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(beta)
            })
            .collect();
        let taps = len.div_ceil(up).next_multiple_of(LANES);
        let mut coeffs = vec![0.0f32; up * taps];
        for phase in 0..up {
            for t in 0..taps {
                // Tap t of a phase meets input sample (newest - (taps - 1 - t)).
                let k = phase + (taps - 1 - t) * up;
                coeffs[phase * taps + t] = prototype.get(k).map_or(0.0, |&h| h as f32);
            }
        }
        Filter { up, down, taps, coeffs }
    }

    pub(super) fn taps(&self) -> usize {
        self.taps
    }

    /// Filter `input` (the history then the new samples, `taps - 1 + n` long) into `out`.
    /// `out.len() * down` must equal `n * up`.
    pub(super) fn run(&self, input: &[f32], out: &mut [i16]) {
        for (n, dst) in out.iter_mut().enumerate() {
            // Output n sits at n * down on the common rate.
            let (newest, phase) = (n * self.down / self.up, n * self.down % self.up);
            let coeffs = &self.coeffs[phase * self.taps..][..self.taps];
            let y = dot(coeffs, &input[newest..newest + self.taps]);
            *dst = super::round_to_i16(y);
        }
    }
}

/// An 8-lane dot product the compiler vectorizes (`a.len()` a multiple of `LANES`).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for (a, b) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for ((sum, x), y) in acc.iter_mut().zip(a).zip(b) {
            *sum += x * y;
        }
    }
    acc.iter().sum()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The modified Bessel function of the first kind, order 0 (its power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-12 {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_passes_dc_at_unit_gain_and_pairs_share_one_table() {
        for (from, to) in [(8000, 48_000), (48_000, 8000), (16_000, 24_000), (8000, 16_000)] {
            let filter = Filter::design(from, to, 20);
            for phase in filter.coeffs.chunks(filter.taps) {
                let gain: f32 = phase.iter().sum();
                assert!((gain - 1.0).abs() < 0.01, "{from}->{to}: phase gain {gain}");
            }
        }
        assert!(Arc::ptr_eq(&Filter::shared(8000, 48_000, 20), &Filter::shared(8000, 48_000, 20)));
        assert!(!Arc::ptr_eq(&Filter::shared(8000, 48_000, 20), &Filter::shared(8000, 48_000, 80)));
    }

    #[test]
    fn bessel_i0_matches_known_values() {
        assert!((bessel_i0(0.0) - 1.0).abs() < 1e-12);
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008).abs() < 1e-9);
        assert!((bessel_i0(5.0) - 27.239_871_823_604_44).abs() < 1e-7);
    }
}
