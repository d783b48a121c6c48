//! Ringback tones: what a caller hears while the party it waits for rings.
//! One per country Telnyx's `ringtone` names, each as its national tone plan
//! gives it (frequencies and cadence as collected in the supplement to ITU-T
//! E.180, "Various tones used in national networks"). A tone's one full
//! cadence is rendered once per sample rate and shared: a call playing it in a
//! loop holds a reference, not a copy.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::sync::{Arc, Mutex, OnceLock};

use crate::level::sine_amplitude_for_dbm0;
use crate::SampleRate;

/// The level of each frequency of a ringback tone (ANSI T1.401's -19 dBm0
/// per frequency for North American audible ringing; the quieter end of what
/// E.180 allows elsewhere).
pub const DBM0_PER_FREQUENCY: f64 = -19.0;

/// How much a modulated tone's envelope swings (0.9: from 5 % to 100 %).
const MODULATION_DEPTH: f64 = 0.9;

/// Each burst rises and falls over this long, so it starts and stops without a click.
const EDGE_MS: u32 = 4;

/// What sounds during a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sound {
    One(f64),
    /// Two frequencies together (440 + 480 Hz in North America).
    Two(f64, f64),
    /// A carrier whose level swings at a low rate (India's 400 Hz at 25 Hz).
    Modulated {
        carrier: f64,
        by: f64,
    },
}

/// One country's ringback: a sound, and its cadence as (on, off) pairs in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ringtone {
    pub name: &'static str,
    pub sound: Sound,
    pub cadence: &'static [(u32, u32)],
}

const ONE_FOUR: &[(u32, u32)] = &[(1_000, 4_000)];
const DOUBLE: &[(u32, u32)] = &[(400, 200), (400, 2_000)];

const fn tone(name: &'static str, sound: Sound, cadence: &'static [(u32, u32)]) -> Ringtone {
    Ringtone { name, sound, cadence }
}

/// Telnyx's `ringtone` values, in its order.
pub const RINGTONES: &[Ringtone] = &[
    tone("at", Sound::One(420.0), &[(1_000, 5_000)]),
    tone("au", Sound::Two(413.0, 438.0), DOUBLE),
    tone("be", Sound::One(425.0), &[(1_000, 3_000)]),
    tone("bg", Sound::One(425.0), ONE_FOUR),
    tone("br", Sound::One(425.0), ONE_FOUR),
    tone("ch", Sound::One(425.0), ONE_FOUR),
    tone("cl", Sound::One(400.0), &[(1_000, 3_000)]),
    tone("cn", Sound::One(450.0), ONE_FOUR),
    tone("cz", Sound::One(425.0), ONE_FOUR),
    tone("de", Sound::One(425.0), ONE_FOUR),
    tone("dk", Sound::One(425.0), ONE_FOUR),
    tone("ee", Sound::One(425.0), ONE_FOUR),
    tone("es", Sound::One(425.0), &[(1_500, 3_000)]),
    tone("fi", Sound::One(425.0), ONE_FOUR),
    tone("fr", Sound::One(440.0), &[(1_500, 3_500)]),
    tone("gr", Sound::One(425.0), ONE_FOUR),
    tone("hu", Sound::One(425.0), &[(1_250, 3_750)]),
    tone("il", Sound::One(414.0), &[(1_000, 3_000)]),
    tone("in", Sound::Modulated { carrier: 400.0, by: 25.0 }, DOUBLE),
    tone("it", Sound::One(425.0), ONE_FOUR),
    tone("jp", Sound::Modulated { carrier: 400.0, by: 16.0 }, &[(1_000, 2_000)]),
    tone("lt", Sound::One(425.0), ONE_FOUR),
    tone("mx", Sound::One(425.0), ONE_FOUR),
    tone("my", Sound::One(425.0), DOUBLE),
    tone("nl", Sound::One(425.0), ONE_FOUR),
    tone("no", Sound::One(425.0), ONE_FOUR),
    tone("nz", Sound::Two(400.0, 450.0), DOUBLE),
    tone("ph", Sound::Two(425.0, 480.0), ONE_FOUR),
    tone("pl", Sound::One(425.0), ONE_FOUR),
    tone("pt", Sound::One(425.0), &[(1_000, 5_000)]),
    tone("ru", Sound::One(425.0), &[(800, 3_200)]),
    tone("se", Sound::One(425.0), &[(1_000, 5_000)]),
    tone("sg", Sound::Modulated { carrier: 425.0, by: 24.0 }, DOUBLE),
    tone("th", Sound::One(420.0), &[(1_000, 5_000)]),
    tone("tw", Sound::Two(440.0, 480.0), &[(1_000, 2_000)]),
    tone("uk", Sound::Two(400.0, 450.0), DOUBLE),
    tone("us", Sound::Two(440.0, 480.0), &[(2_000, 4_000)]),
    tone("us-old", Sound::Modulated { carrier: 420.0, by: 40.0 }, &[(2_000, 4_000)]),
    tone("ve", Sound::One(425.0), ONE_FOUR),
    tone("za", Sound::Modulated { carrier: 400.0, by: 33.0 }, DOUBLE),
];

/// Each ringtone's one cadence, by name and rate.
type Rendered = HashMap<(&'static str, SampleRate), Arc<[i16]>>;

/// The ringtone Telnyx plays when none is named.
pub const DEFAULT: &str = "us";

impl Ringtone {
    /// The ringtone called `name` (Telnyx's country code, lower case).
    pub fn named(name: &str) -> Option<&'static Ringtone> {
        RINGTONES.iter().find(|r| r.name == name)
    }

    /// One cadence in ms, bursts and pauses.
    pub fn period_ms(&self) -> u32 {
        self.cadence.iter().map(|(on, off)| on + off).sum()
    }

    /// One full cadence at `rate`, to be played over and over; rendered once
    /// per ringtone and rate, then shared.
    pub fn samples(&'static self, rate: SampleRate) -> Arc<[i16]> {
        static RENDERED: OnceLock<Mutex<Rendered>> = OnceLock::new();
        let rendered = RENDERED.get_or_init(Default::default);
        let mut rendered = rendered.lock().unwrap_or_else(|p| p.into_inner());
        rendered.entry((self.name, rate)).or_insert_with(|| self.render(rate.hz()).into()).clone()
    }

    fn render(&self, rate: u32) -> Vec<i16> {
        let amplitude = sine_amplitude_for_dbm0(DBM0_PER_FREQUENCY);
        let samples_in = |ms: u32| (u64::from(ms) * u64::from(rate) / 1_000) as usize;
        let edge = samples_in(EDGE_MS);
        let mut out = Vec::with_capacity(samples_in(self.period_ms()));
        for &(on, off) in self.cadence {
            let len = samples_in(on);
            for n in 0..len {
                let t = n as f64 / f64::from(rate);
                // A raised-cosine rise and fall at the burst's two ends.
                let from_edge = n.min(len - 1 - n);
                let ramp = if from_edge < edge {
                    0.5 - 0.5 * (PI * from_edge as f64 / edge as f64).cos()
                } else {
                    1.0
                };
                let v = amplitude * ramp * self.sound.at(t);
                out.push(v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16);
            }
            out.resize(out.len() + samples_in(off), 0);
        }
        out
    }
}

impl Sound {
    /// The sound at `t` seconds into a burst, each frequency at peak 1.
    fn at(self, t: f64) -> f64 {
        let sine = |hz: f64| (2.0 * PI * hz * t).sin();
        match self {
            Sound::One(hz) => sine(hz),
            Sound::Two(a, b) => sine(a) + sine(b),
            Sound::Modulated { carrier, by } => {
                sine(carrier) * (1.0 + MODULATION_DEPTH * sine(by)) / (1.0 + MODULATION_DEPTH)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{block_energy, Goertzel};
    use crate::level::rms_dbm0;

    /// The share of a block's energy at `hz`.
    fn share(block: &[i16], hz: f64, rate: u32) -> f32 {
        let block: Vec<f32> = block.iter().map(|&s| f32::from(s) / 32768.0).collect();
        Goertzel::new(hz, rate).energy(&block) / block_energy(&block)
    }

    #[test]
    fn every_telnyx_ringtone_is_known_and_us_is_the_default() {
        assert_eq!(RINGTONES.len(), 40);
        assert!(Ringtone::named(DEFAULT).is_some());
        assert!(Ringtone::named("xx").is_none());
        for r in RINGTONES {
            assert!(r.period_ms() >= 3_000 && r.period_ms() <= 6_000, "{}", r.name);
        }
    }

    #[test]
    fn the_us_ringback_is_440_and_480_hz_for_two_seconds_in_six() {
        let rate = SampleRate::Hz8000;
        let samples = Ringtone::named("us").unwrap().samples(rate);
        assert_eq!(samples.len(), 6 * 8_000);
        let burst = &samples[800..15_200];
        let both = share(burst, 440.0, 8_000) + share(burst, 480.0, 8_000);
        assert!(both > 0.9, "440 + 480 Hz hold {both} of the burst");
        // Each frequency at -19 dBm0: the pair at about -16.
        assert!((rms_dbm0(burst) - (DBM0_PER_FREQUENCY + 3.0)).abs() < 0.5, "{}", rms_dbm0(burst));
        assert!(samples[16_000..].iter().all(|&s| s == 0), "silent from 2 s to 6 s");
    }

    #[test]
    fn the_uk_ringback_rings_twice_per_cadence() {
        let samples = Ringtone::named("uk").unwrap().samples(SampleRate::Hz16000);
        let ms = |ms: usize| ms * 16;
        assert_eq!(samples.len(), ms(3_000));
        for burst in [&samples[ms(20)..ms(380)], &samples[ms(620)..ms(980)]] {
            let both = share(burst, 400.0, 16_000) + share(burst, 450.0, 16_000);
            assert!(both > 0.9, "400 + 450 Hz hold {both}");
        }
        assert!(samples[ms(400)..ms(600)].iter().all(|&s| s == 0));
        assert!(samples[ms(1_000)..].iter().all(|&s| s == 0));
    }

    #[test]
    fn a_modulated_ringback_keeps_its_energy_at_the_carrier() {
        let samples = Ringtone::named("in").unwrap().samples(SampleRate::Hz8000);
        let burst = &samples[80..3_120];
        assert!(share(burst, 400.0, 8_000) > 0.6, "{}", share(burst, 400.0, 8_000));
    }

    #[test]
    fn a_burst_starts_and_ends_without_a_click() {
        let samples = Ringtone::named("fr").unwrap().samples(SampleRate::Hz48000);
        let end = 1_500 * 48;
        assert!(samples[0].abs() < 50 && samples[end - 1].abs() < 50);
        let step = samples[..end].windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max();
        assert!(step.unwrap() < 600, "largest step {step:?}");
    }

    #[test]
    fn a_ringtone_is_rendered_once_per_rate_and_shared() {
        let us = Ringtone::named("us").unwrap();
        assert!(Arc::ptr_eq(&us.samples(SampleRate::Hz8000), &us.samples(SampleRate::Hz8000)));
        assert_eq!(us.samples(SampleRate::Hz48000).len(), 6 * 48_000);
    }
}
