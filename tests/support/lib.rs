//! Helpers shared by Bond's integration tests.

use bond_codecs::dtmf::{DtmfDetector, DtmfEvent, Goertzel};
use bond_codecs::Codec;
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::LegId;

/// A 1 kHz tone leg (hearing what comes back) wired to an echo leg, both on
/// `codec`, over the links `there` and `back`.
pub fn tone_and_echo(
    net: &mut SimNetwork,
    codec: Codec,
    there: LinkProfile,
    back: LinkProfile,
) -> (LegId, LegId) {
    let now = net.now();
    let mut tone_cfg = net.engine.leg_config(codec);
    tone_cfg.emit_heard = true;
    let tone = net.engine.add_leg(now, tone_cfg, MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }).unwrap();
    let echo_cfg = net.engine.leg_config(codec);
    let echo = net.engine.add_leg(now, echo_cfg, MediaSource::Echo).unwrap();
    net.connect(tone, echo, there, back);
    (tone, echo)
}

/// Share of the energy of `samples` that sits at `hz` (0..=1): near 1 for a clean tone.
pub fn tone_share(samples: &[i16], hz: f64, rate: u32) -> f64 {
    let block: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let total = bond_codecs::dtmf::block_energy(&block);
    if total == 0.0 {
        return 0.0;
    }
    f64::from(Goertzel::new(hz, rate).energy(&block) / total)
}

/// How many 50 ms blocks of `samples` do not carry a clean tone at `hz`, and
/// how many blocks there are. Measured per block because a phase jump (a pause
/// cut out, a tick a loaded machine skipped) makes the two sides of it cancel
/// in a measure over the whole signal.
pub fn blocks_without_tone(samples: &[i16], hz: f64, rate: u32) -> (usize, usize) {
    let blocks = samples.chunks_exact(rate as usize / 20);
    let total = blocks.len();
    (blocks.filter(|b| tone_share(b, hz, rate) <= 0.9).count(), total)
}

/// A simulated stream leg's G.711 payloads as PCM (`decode`: the mu-law or A-law slice decoder).
pub fn stream_pcm(net: &SimNetwork, leg: LegId, decode: fn(&[u8], &mut [i16])) -> Vec<i16> {
    net.stream_media(leg)
        .iter()
        .flat_map(|p| {
            let mut out = vec![0; p.len()];
            decode(p, &mut out);
            out
        })
        .collect()
}

/// The DTMF digits heard in `pcm` (8 kHz), in order.
pub fn heard_digits(pcm: &[i16]) -> String {
    let mut detector = DtmfDetector::new(8_000);
    detector.push(pcm);
    std::iter::from_fn(|| detector.poll_event())
        .filter_map(|e| match e {
            DtmfEvent::Started { digit, .. } => Some(digit.as_char()),
            _ => None,
        })
        .collect()
}

pub mod amd;
pub mod bond_process;
pub mod kernel_relay;
pub mod load;
pub mod pcmu_feed;
pub mod rtpengine;
pub mod sip_lite;
pub mod stamped;
pub mod translated_calls;
