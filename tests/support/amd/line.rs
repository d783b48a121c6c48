//! The line a clip is heard over: background sound where the callee is (a
//! television, other people, the street), line noise and mains hum, the codec
//! (G.711 mu-law or A-law, Opus) and lost packets.

use std::f64::consts::TAU;

use bond_codecs::g711;
use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::SplitMix64;

use super::corpus::{uniform, RATE};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Codec {
    Linear,
    Mu,
    A,
    /// Opus at 8 kHz, at this bitrate.
    Opus(i32),
}

/// Line conditions applied to a finished clip.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    pub noise_dbm0: Option<f64>,
    pub hum_dbm0: Option<f64>,
    pub mains_hz: f64,
    /// Traffic-like rumble, louder and slowly changing.
    pub street_dbm0: Option<f64>,
    pub codec: Codec,
    /// Share of 20 ms packets lost (0.0-1.0); G.711 loses them to silence, Opus conceals them.
    pub loss: f64,
}

impl Line {
    /// A short description for `labels.csv`, e.g. `opus16k+noise+loss2%`.
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.codec {
            Codec::Linear => "linear".to_owned(),
            Codec::Mu => "pcmu".to_owned(),
            Codec::A => "pcma".to_owned(),
            Codec::Opus(bps) => format!("opus{}k", bps / 1000),
        }];
        if self.noise_dbm0.is_some() {
            parts.push("noise".to_owned());
        }
        if self.hum_dbm0.is_some() {
            parts.push("hum".to_owned());
        }
        if self.street_dbm0.is_some() {
            parts.push("street".to_owned());
        }
        if self.loss > 0.0 {
            parts.push(format!("loss{:.0}%", self.loss * 100.0));
        }
        parts.join("+")
    }
}

/// A line drawn at random; `noisy` forces line noise.
pub fn random_line(rng: &mut SplitMix64, noisy: bool) -> Line {
    let noise = if noisy || rng.next_f64() < 0.5 { Some(uniform(rng, -62.0, -42.0)) } else { None };
    Line {
        noise_dbm0: noise,
        hum_dbm0: (rng.next_f64() < 0.15).then(|| uniform(rng, -55.0, -40.0)),
        mains_hz: if rng.next_f64() < 0.5 { 50.0 } else { 60.0 },
        street_dbm0: (rng.next_f64() < 0.1).then(|| uniform(rng, -50.0, -38.0)),
        codec: match rng.next_u64() % 10 {
            0 => Codec::Linear,
            1..=3 => Codec::A,
            4..=7 => Codec::Mu,
            _ => Codec::Opus(if rng.next_f64() < 0.5 { 12_000 } else { 20_000 }),
        },
        loss: if rng.next_f64() < 0.25 { uniform(rng, 0.005, 0.05) } else { 0.0 },
    }
}

/// Mix `background` into `out`, looped from a random point.
pub fn mix_background(out: &mut [f64], background: &[f64], rng: &mut SplitMix64) {
    if background.is_empty() {
        return;
    }
    let offset = (rng.next_u64() % background.len() as u64) as usize;
    for (i, o) in out.iter_mut().enumerate() {
        *o += background[(offset + i) % background.len()];
    }
}

/// The clip `samples` as heard over `line`.
pub fn over_line(mut out: Vec<f64>, line: Line, seed: u64) -> Result<Vec<i16>, String> {
    let mut rng = SplitMix64::new(seed);
    if let Some(dbm0) = line.noise_dbm0 {
        // Pink-ish noise: white noise through a one-pole low-pass.
        add_noise(&mut out, &mut rng, dbm0, 0.7, None);
    }
    if let Some(dbm0) = line.street_dbm0 {
        // Rumble: heavily low-passed noise whose level swells over seconds.
        add_noise(&mut out, &mut rng, dbm0, 0.97, Some(0.3));
    }
    if let Some(dbm0) = line.hum_dbm0 {
        // Mains hum with its odd harmonics; the telephone band passes the higher ones.
        let amp = sine_amplitude_for_dbm0(dbm0);
        for (i, o) in out.iter_mut().enumerate() {
            let t = i as f64 / f64::from(RATE);
            *o += [1.0, 3.0, 5.0, 7.0]
                .iter()
                .map(|&k| amp / k * (TAU * line.mains_hz * k * t).sin())
                .sum::<f64>();
        }
    }
    let pcm: Vec<i16> = out.iter().map(|&v| v.round().clamp(-32768.0, 32767.0) as i16).collect();
    let lost = |rng: &mut SplitMix64| line.loss > 0.0 && rng.next_f64() < line.loss;
    match line.codec {
        Codec::Opus(bitrate) => opus_line(&pcm, bitrate, lost, &mut rng),
        codec => Ok(pcm
            .chunks(160)
            .flat_map(|frame| {
                let gone = lost(&mut rng);
                frame.iter().map(move |&s| match (gone, codec) {
                    (true, _) => 0,
                    (false, Codec::Mu) => g711::ulaw_decode(g711::ulaw_encode(s)),
                    (false, Codec::A) => g711::alaw_decode(g711::alaw_encode(s)),
                    (false, _) => s,
                })
            })
            .collect()),
    }
}

/// Noise at `dbm0`: white noise through a one-pole low-pass (`pole`), its level
/// swinging by `swell` (a share) over a few seconds when asked.
fn add_noise(out: &mut [f64], rng: &mut SplitMix64, dbm0: f64, pole: f64, swell: Option<f64>) {
    let mut state = 0.0;
    let raw: Vec<f64> = (0..out.len())
        .map(|_| {
            state = pole * state + rng.next_gaussian();
            state
        })
        .collect();
    let power = raw.iter().map(|v| v * v).sum::<f64>() / raw.len().max(1) as f64;
    let gain = rms_for_dbm0(dbm0) / power.sqrt().max(1e-9);
    let phase = rng.next_f64() * TAU;
    for (i, (o, r)) in out.iter_mut().zip(&raw).enumerate() {
        let t = i as f64 / f64::from(RATE);
        let envelope = swell.map_or(1.0, |s| 1.0 + s * (TAU * 0.25 * t + phase).sin());
        *o += r * gain * envelope;
    }
}

/// Code and decode 20 ms frames with Opus; lost packets are concealed by the decoder.
fn opus_line(
    pcm: &[i16],
    bitrate: i32,
    mut lost: impl FnMut(&mut SplitMix64) -> bool,
    rng: &mut SplitMix64,
) -> Result<Vec<i16>, String> {
    let err = |e: opus::Error| format!("opus: {e}");
    let mut encoder = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip).map_err(err)?;
    encoder.set_bitrate(opus::Bitrate::Bits(bitrate)).map_err(err)?;
    let mut decoder = opus::Decoder::new(RATE, opus::Channels::Mono).map_err(err)?;
    let mut out = Vec::with_capacity(pcm.len());
    let mut packet = [0u8; 400];
    let mut frame = [0i16; 160];
    for chunk in pcm.chunks(160) {
        let mut input = [0i16; 160];
        input[..chunk.len()].copy_from_slice(chunk);
        let len = encoder.encode(&input, &mut packet).map_err(err)?;
        let data: &[u8] = if lost(rng) { &[] } else { &packet[..len] };
        let n = decoder.decode(data, &mut frame, false).map_err(err)?;
        out.extend_from_slice(&frame[..n.min(chunk.len())]);
    }
    Ok(out)
}
