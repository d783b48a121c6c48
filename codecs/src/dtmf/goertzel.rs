//! The Goertzel algorithm: the power of one frequency over a block of samples.

/// Goertzel filter for one frequency at one sample rate.
#[derive(Debug, Clone, Copy)]
pub struct Goertzel {
    coeff: f32,
}

impl Goertzel {
    pub fn new(hz: f64, rate: u32) -> Self {
        let omega = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
        Self { coeff: (2.0 * omega.cos()) as f32 }
    }

    /// Energy of the frequency in `block`, scaled to be comparable with the
    /// block's total energy (`sum x²`): a pure on-bin sine gives about its own energy.
    pub fn energy(&self, block: &[f32]) -> f32 {
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &x in block {
            let s0 = x + self.coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - self.coeff * s1 * s2;
        2.0 * power / block.len().max(1) as f32
    }
}

/// Energies of several frequencies over one block in a single pass: the filters
/// run side by side, so the loop has independent work to overlap (and vectorise)
/// instead of one long dependency chain per frequency.
pub fn energies<const N: usize>(filters: &[Goertzel; N], block: &[f32]) -> [f32; N] {
    let coeffs = filters.map(|g| g.coeff);
    let mut s1 = [0.0f32; N];
    let mut s2 = [0.0f32; N];
    for &x in block {
        for k in 0..N {
            let s0 = x + coeffs[k] * s1[k] - s2[k];
            s2[k] = s1[k];
            s1[k] = s0;
        }
    }
    let scale = 2.0 / block.len().max(1) as f32;
    let mut out = [0.0f32; N];
    for k in 0..N {
        out[k] = (s1[k] * s1[k] + s2[k] * s2[k] - coeffs[k] * s1[k] * s2[k]) * scale;
    }
    out
}

/// Total energy (`sum x²`) of a block.
pub fn block_energy(block: &[f32]) -> f32 {
    block.iter().map(|x| x * x).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin() as f32).collect()
    }

    #[test]
    fn on_bin_tone_carries_its_whole_energy() {
        let block = tone(1000.0, 8000, 200);
        let ratio = Goertzel::new(1000.0, 8000).energy(&block) / block_energy(&block);
        assert!((ratio - 1.0).abs() < 0.05, "{ratio}");
    }

    #[test]
    fn the_bank_matches_one_filter_at_a_time() {
        let block = tone(941.0, 8000, 102);
        let filters = [697.0, 770.0, 852.0, 941.0].map(|hz| Goertzel::new(hz, 8000));
        let together = energies(&filters, &block);
        for (g, e) in filters.iter().zip(together) {
            assert!((g.energy(&block) - e).abs() <= 1e-4 * e.abs().max(1.0));
        }
    }

    #[test]
    fn distant_tone_carries_almost_nothing() {
        let block = tone(1500.0, 8000, 200);
        let ratio = Goertzel::new(1000.0, 8000).energy(&block) / block_energy(&block);
        assert!(ratio < 0.01, "{ratio}");
    }
}
