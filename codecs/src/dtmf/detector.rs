//! DTMF detector within ITU-T Q.24 limits.
//!
//! Audio is cut into blocks of 12.75 ms (102 samples at 8 kHz). In each block a
//! Goertzel filter measures the eight DTMF frequencies. A block holds a digit when:
//! - the strongest row and column are each above `min_level_dbm0`;
//! - they carry at least `min_energy_share` of the block's energy (talk-off and noise guard);
//! - the next strongest row / column is `min_relative_peak_db` weaker;
//! - the twist between the groups is within `max_normal_twist_db` (high group louder) and
//!   `max_reverse_twist_db` (low group louder);
//! - the frequency is within tolerance: Goertzel bins 5% either side of each tone must
//!   be weaker than the tone's own bin, which puts the accept/reject edge at 2.5%
//!   (Q.24: accept 1.5%, reject 3.5%).
//!
//! A digit starts after two consecutive blocks agree (tones of 40 ms and more are always
//! found; tones under 25.5 ms never are) and ends after two blocks without it.

use std::collections::VecDeque;

use super::goertzel::{block_energy, energies, Goertzel};
use super::{DtmfDigit, COL_HZ, ROW_HZ};
use crate::level::rms_for_dbm0;

/// Detector thresholds; the defaults follow Q.24 for most administrations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DtmfDetectorConfig {
    pub min_level_dbm0: f64,
    pub max_normal_twist_db: f64,
    pub max_reverse_twist_db: f64,
    pub min_relative_peak_db: f64,
    pub min_energy_share: f64,
}

impl Default for DtmfDetectorConfig {
    fn default() -> Self {
        Self {
            min_level_dbm0: -30.0,
            max_normal_twist_db: 8.0,
            max_reverse_twist_db: 4.0,
            min_relative_peak_db: 8.0,
            min_energy_share: 0.6,
        }
    }
}

/// What the detector reports. Positions count samples since the detector was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    Started { digit: DtmfDigit, at_sample: u64 },
    Ended { digit: DtmfDigit, at_sample: u64, duration_samples: u64 },
}

const BLOCKS_TO_START: u8 = 2;
const BLOCKS_TO_END: u8 = 2;
const SIDE_BIN_OFFSET: f64 = 0.05;

#[derive(Debug, Clone, Copy)]
struct ToneBins {
    center: Goertzel,
    below: Goertzel,
    above: Goertzel,
}

impl ToneBins {
    fn new(hz: f64, rate: u32) -> Self {
        Self {
            center: Goertzel::new(hz, rate),
            below: Goertzel::new(hz * (1.0 - SIDE_BIN_OFFSET), rate),
            above: Goertzel::new(hz * (1.0 + SIDE_BIN_OFFSET), rate),
        }
    }

    fn is_centred(&self, block: &[f32], center_energy: f32) -> bool {
        center_energy >= self.below.energy(block) && center_energy >= self.above.energy(block)
    }
}

/// Streaming DTMF detector; feed samples with [`push`](Self::push), read events with
/// [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct DtmfDetector {
    config: DtmfDetectorConfig,
    rows: [ToneBins; 4],
    cols: [ToneBins; 4],
    /// The eight centre filters (rows then columns), run together.
    centres: [Goertzel; 8],
    block: Vec<f32>,
    block_len: usize,
    /// Minimum Goertzel energy of one tone over a block, from `min_level_dbm0`.
    min_tone_energy: f32,
    samples_seen: u64,
    candidate: Option<DtmfDigit>,
    candidate_blocks: u8,
    current: Option<(DtmfDigit, u64)>,
    misses: u8,
    events: VecDeque<DtmfEvent>,
}

impl DtmfDetector {
    pub fn new(rate: u32) -> Self {
        Self::with_config(rate, DtmfDetectorConfig::default())
    }

    pub fn with_config(rate: u32, config: DtmfDetectorConfig) -> Self {
        let block_len = (rate as usize * 102).div_ceil(8000);
        let rms = rms_for_dbm0(config.min_level_dbm0) / 32768.0;
        let rows = ROW_HZ.map(|hz| ToneBins::new(hz, rate));
        let cols = COL_HZ.map(|hz| ToneBins::new(hz, rate));
        let centres = std::array::from_fn(|i| if i < 4 { rows[i].center } else { cols[i - 4].center });
        Self {
            config,
            rows,
            cols,
            centres,
            block: Vec::with_capacity(block_len),
            block_len,
            min_tone_energy: (rms * rms * block_len as f64) as f32,
            samples_seen: 0,
            candidate: None,
            candidate_blocks: 0,
            current: None,
            misses: 0,
            events: VecDeque::with_capacity(4),
        }
    }

    /// Feed PCM at the detector's rate. Does not allocate.
    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            self.block.push(f32::from(s) / 32768.0);
            if self.block.len() == self.block_len {
                let digit = self.classify_block();
                self.samples_seen += self.block_len as u64;
                self.block.clear();
                self.track(digit);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    /// A digit has started and not yet ended.
    pub fn is_active(&self) -> bool {
        self.current.is_some()
    }

    /// The digit in the current block, if it passes every Q.24 check.
    fn classify_block(&self) -> Option<DtmfDigit> {
        let block = &self.block[..];
        let all = energies(&self.centres, block);
        let row_energy = [all[0], all[1], all[2], all[3]];
        let col_energy = [all[4], all[5], all[6], all[7]];
        let (best_row, row) = strongest(&row_energy);
        let (best_col, col) = strongest(&col_energy);
        let cfg = &self.config;

        if row < self.min_tone_energy || col < self.min_tone_energy {
            return None;
        }
        if f64::from(row + col) < cfg.min_energy_share * f64::from(block_energy(block)) {
            return None;
        }
        let twist_db = 10.0 * f64::from(col / row).log10();
        if twist_db > cfg.max_normal_twist_db || -twist_db > cfg.max_reverse_twist_db {
            return None;
        }
        let peak_ratio = 10f64.powf(cfg.min_relative_peak_db / 10.0) as f32;
        let others_quiet = |energies: &[f32; 4], best: usize, e: f32| {
            energies.iter().enumerate().all(|(i, &x)| i == best || x * peak_ratio <= e)
        };
        if !others_quiet(&row_energy, best_row, row) || !others_quiet(&col_energy, best_col, col) {
            return None;
        }
        if !self.rows[best_row].is_centred(block, row) || !self.cols[best_col].is_centred(block, col) {
            return None;
        }
        Some(DtmfDigit::from_row_col(best_row, best_col))
    }

    fn track(&mut self, digit: Option<DtmfDigit>) {
        let block_start = self.samples_seen - self.block_len as u64;
        if let Some((current, started)) = self.current {
            if digit == Some(current) {
                self.misses = 0;
                return;
            }
            self.misses += 1;
            if self.misses < BLOCKS_TO_END {
                return;
            }
            let ended_at = block_start - (u64::from(BLOCKS_TO_END) - 1) * self.block_len as u64;
            self.events.push_back(DtmfEvent::Ended {
                digit: current,
                at_sample: ended_at,
                duration_samples: ended_at - started,
            });
            self.current = None;
            self.misses = 0;
            self.candidate = None;
            self.candidate_blocks = 0;
        }
        match digit {
            Some(d) if self.candidate == Some(d) => self.candidate_blocks += 1,
            Some(d) => {
                self.candidate = Some(d);
                self.candidate_blocks = 1;
            }
            None => {
                self.candidate = None;
                self.candidate_blocks = 0;
            }
        }
        if let Some(d) = self.candidate.filter(|_| self.candidate_blocks >= BLOCKS_TO_START) {
            let started = block_start - (u64::from(BLOCKS_TO_START) - 1) * self.block_len as u64;
            self.current = Some((d, started));
            self.events.push_back(DtmfEvent::Started { digit: d, at_sample: started });
        }
    }
}

fn strongest(energies: &[f32; 4]) -> (usize, f32) {
    energies
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::MIN), |best, (i, e)| if e > best.1 { (i, e) } else { best })
}

#[cfg(test)]
mod tests {
    use super::super::DtmfGenerator;
    use super::*;
    use crate::level::rms_for_dbm0;
    use crate::signals::{mix_into, white_noise, SplitMix64};

    const RATE: u32 = 8000;

    /// Silence, then the generator's digit, then silence; returns the started digits.
    fn detect(mut generator: DtmfGenerator, noise_dbm0: Option<f64>, rate: u32) -> Vec<DtmfEvent> {
        let mut det = DtmfDetector::new(rate);
        let frame = rate as usize / 50;
        let mut noise_seed = 1;
        let mut events = Vec::new();
        for n in 0..40 {
            let mut buf = vec![0i16; frame];
            if n >= 5 {
                generator.fill(&mut buf);
            }
            if let Some(level) = noise_dbm0 {
                noise_seed += 1;
                mix_into(&mut buf, &white_noise(noise_seed, frame, rms_for_dbm0(level)));
            }
            det.push(&buf);
            while let Some(e) = det.poll_event() {
                events.push(e);
            }
        }
        events
    }

    fn started(events: &[DtmfEvent]) -> Vec<char> {
        events
            .iter()
            .filter_map(|e| match e {
                DtmfEvent::Started { digit, .. } => Some(digit.as_char()),
                DtmfEvent::Ended { .. } => None,
            })
            .collect()
    }

    #[test]
    fn finds_every_digit_at_minus_20_dbm0_in_white_noise_at_minus_40_dbm0() {
        for rate in [8000, 16000, 48000] {
            for digit in DtmfDigit::ALL {
                let events = detect(DtmfGenerator::new(digit, rate, -20.0, 100), Some(-40.0), rate);
                assert_eq!(started(&events), vec![digit.as_char()], "{digit} at {rate} Hz: {events:?}");
                assert!(matches!(events.last(), Some(DtmfEvent::Ended { .. })), "{events:?}");
            }
        }
    }

    #[test]
    fn reports_duration_close_to_the_tone_length() {
        let d = DtmfDigit::from_char('5').unwrap();
        let events = detect(DtmfGenerator::new(d, RATE, -10.0, 200), None, RATE);
        let Some(DtmfEvent::Ended { duration_samples, .. }) = events.last() else { panic!("{events:?}") };
        let ms = *duration_samples as f64 / 8.0;
        assert!((ms - 200.0).abs() <= 26.0, "{ms} ms");
    }

    #[test]
    fn accepts_40ms_tones_and_rejects_20ms_tones() {
        for digit in DtmfDigit::ALL {
            let long = detect(DtmfGenerator::new(digit, RATE, -20.0, 40), None, RATE);
            assert_eq!(started(&long), vec![digit.as_char()], "40 ms {digit}");
            let short = detect(DtmfGenerator::new(digit, RATE, -20.0, 20), None, RATE);
            assert!(started(&short).is_empty(), "20 ms {digit}: {short:?}");
        }
    }

    #[test]
    fn frequency_deviation_accept_1_5_percent_reject_3_5_percent() {
        for digit in DtmfDigit::ALL {
            for offset in [-0.015, 0.015] {
                let g = DtmfGenerator::with_twist(digit, RATE, -20.0, -20.0, 100, offset);
                assert_eq!(started(&detect(g, None, RATE)), vec![digit.as_char()], "{digit} {offset}");
            }
            for offset in [-0.035, 0.035] {
                let g = DtmfGenerator::with_twist(digit, RATE, -20.0, -20.0, 100, offset);
                assert!(started(&detect(g, None, RATE)).is_empty(), "{digit} {offset}");
            }
        }
    }

    #[test]
    fn twist_within_limits_is_accepted_and_beyond_is_rejected() {
        let d = DtmfDigit::from_char('8').unwrap();
        let ok_normal = DtmfGenerator::with_twist(d, RATE, -24.0, -17.0, 100, 0.0);
        assert_eq!(started(&detect(ok_normal, None, RATE)), vec!['8']);
        let ok_reverse = DtmfGenerator::with_twist(d, RATE, -17.0, -20.5, 100, 0.0);
        assert_eq!(started(&detect(ok_reverse, None, RATE)), vec!['8']);
        let bad_normal = DtmfGenerator::with_twist(d, RATE, -28.0, -18.0, 100, 0.0);
        assert!(started(&detect(bad_normal, None, RATE)).is_empty());
        let bad_reverse = DtmfGenerator::with_twist(d, RATE, -15.0, -21.0, 100, 0.0);
        assert!(started(&detect(bad_reverse, None, RATE)).is_empty());
    }

    #[test]
    fn too_quiet_digits_are_ignored() {
        let d = DtmfDigit::from_char('1').unwrap();
        assert!(started(&detect(DtmfGenerator::new(d, RATE, -36.0, 100), None, RATE)).is_empty());
    }

    #[test]
    fn reports_no_digit_on_mixed_multitone_noise() {
        // Four to eight distinct equal tones at random frequencies in the voice band, changing
        // every 40-60 ms, for ten minutes: a DTMF pair among them is not a digit.
        let mut rng = SplitMix64::new(99);
        let mut det = DtmfDetector::new(RATE);
        let mut buf = [0i16; 160];
        let mut tones: Vec<(f64, f64, f64)> = Vec::new();
        let mut until_change = 0;
        let mut t = 0u64;
        for _ in 0..(10 * 60 * 50) {
            if until_change == 0 {
                let count = 4 + (rng.next_u64() % 5) as usize;
                tones.clear();
                while tones.len() < count {
                    let hz = 300.0 + rng.next_f64() * 3000.0;
                    // Distinct tones: no two share a Goertzel bin (78 Hz wide).
                    if tones.iter().all(|(other, _, _)| (hz - other).abs() > 100.0) {
                        tones.push((hz, 2500.0, rng.next_f64() * std::f64::consts::TAU));
                    }
                }
                until_change = 2 + rng.next_u64() % 2;
            }
            until_change -= 1;
            for s in buf.iter_mut() {
                let x: f64 = tones
                    .iter()
                    .map(|(hz, amp, ph)| {
                        amp * (2.0 * std::f64::consts::PI * hz * t as f64 / 8000.0 + ph).sin()
                    })
                    .sum();
                *s = x.clamp(-32768.0, 32767.0) as i16;
                t += 1;
            }
            det.push(&buf);
            assert_eq!(det.poll_event(), None);
        }
    }

    #[test]
    fn a_sequence_of_digits_with_short_gaps_is_read_in_order() {
        let mut det = DtmfDetector::new(RATE);
        let digits = "159#0*D";
        for c in digits.chars() {
            let mut g = DtmfGenerator::new(DtmfDigit::from_char(c).unwrap(), RATE, -15.0, 50);
            let mut buf = [0i16; 400]; // 50 ms tone
            g.fill(&mut buf);
            det.push(&buf);
            det.push(&[0; 400]); // 50 ms pause
        }
        let mut got = String::new();
        while let Some(e) = det.poll_event() {
            if let DtmfEvent::Started { digit, .. } = e {
                got.push(digit.as_char());
            }
        }
        assert_eq!(got, digits);
    }
}
