//! Helpers shared by Bond's integration tests.

use bond_codecs::dtmf::Goertzel;

/// Share of the energy of `samples` that sits at `hz` (0..=1): near 1 for a clean tone.
pub fn tone_share(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let block: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let total = bond_codecs::dtmf::block_energy(&block);
    if total == 0.0 {
        return 0.0;
    }
    f64::from(Goertzel::new(hz, rate).energy(&block) / total)
}

pub mod amd;
pub mod bond_process;
pub mod load;
pub mod rtpengine;
pub mod sip_lite;
pub mod translated_calls;
