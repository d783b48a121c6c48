//! Single-tone detector: a steady tone at one frequency for a minimum time
//! (fax CNG at 1100 Hz, CED at 2100 Hz, test tones).

use std::collections::VecDeque;

use crate::dtmf::{block_energy, Goertzel};

/// What the detector reports; positions count samples since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneEvent {
    Started { at_sample: u64 },
    Ended { at_sample: u64, duration_samples: u64 },
}

/// Detects a tone at `hz` that holds at least `min_share` of the signal energy
/// for `min_duration_ms`, in 10 ms blocks.
#[derive(Debug)]
pub struct ToneDetector {
    bin: Goertzel,
    block: Vec<f32>,
    block_len: usize,
    min_blocks: u32,
    min_share: f32,
    min_energy: f32,
    run: u32,
    active_since: Option<u64>,
    samples_seen: u64,
    events: VecDeque<ToneEvent>,
}

impl ToneDetector {
    pub fn new(hz: f64, rate: u32, min_duration_ms: u32) -> Self {
        let block_len = rate as usize / 100;
        let min_rms = crate::level::rms_for_dbm0(-40.0) / 32768.0;
        Self {
            bin: Goertzel::new(hz, rate),
            block: Vec::with_capacity(block_len),
            block_len,
            min_blocks: (min_duration_ms / 10).max(1),
            min_share: 0.8,
            min_energy: (min_rms * min_rms * block_len as f64) as f32,
            run: 0,
            active_since: None,
            samples_seen: 0,
            events: VecDeque::with_capacity(2),
        }
    }

    pub fn is_active(&self) -> bool {
        self.active_since.is_some()
    }

    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            self.block.push(f32::from(s) / 32768.0);
            if self.block.len() < self.block_len {
                continue;
            }
            let energy = self.bin.energy(&self.block);
            let present = energy >= self.min_energy && energy >= self.min_share * block_energy(&self.block);
            self.samples_seen += self.block_len as u64;
            self.block.clear();
            self.track(present);
        }
    }

    pub fn poll_event(&mut self) -> Option<ToneEvent> {
        self.events.pop_front()
    }

    fn track(&mut self, present: bool) {
        if present {
            self.run += 1;
            if self.active_since.is_none() && self.run >= self.min_blocks {
                let start = self.samples_seen - u64::from(self.run) * self.block_len as u64;
                self.active_since = Some(start);
                self.events.push_back(ToneEvent::Started { at_sample: start });
            }
            return;
        }
        self.run = 0;
        if let Some(start) = self.active_since.take() {
            let end = self.samples_seen - self.block_len as u64;
            self.events.push_back(ToneEvent::Ended { at_sample: end, duration_samples: end - start });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::{mix_into, sine, white_noise};

    fn events_for(signal: &[i16], hz: f64, min_ms: u32) -> Vec<ToneEvent> {
        let mut det = ToneDetector::new(hz, 8000, min_ms);
        let mut events = Vec::new();
        for chunk in signal.chunks(160) {
            det.push(chunk);
            while let Some(e) = det.poll_event() {
                events.push(e);
            }
        }
        events
    }

    #[test]
    fn finds_a_fax_cng_burst_with_its_length() {
        let mut signal = vec![0i16; 4000];
        signal.extend(sine(1100.0, 8000, 4000, 6000.0)); // 0.5 s on
        signal.extend(vec![0i16; 4000]);
        mix_into(&mut signal, &white_noise(4, 12_000, 30.0));
        let events = events_for(&signal, 1100.0, 200);
        assert_eq!(events.len(), 2, "{events:?}");
        let ToneEvent::Ended { duration_samples, .. } = events[1] else { panic!() };
        assert!((duration_samples as i64 - 4000).abs() <= 160, "{duration_samples}");
    }

    #[test]
    fn ignores_other_frequencies_and_short_blips() {
        assert!(events_for(&sine(1300.0, 8000, 8000, 6000.0), 1100.0, 200).is_empty());
        let mut blip = sine(1100.0, 8000, 800, 6000.0); // 100 ms
        blip.extend(vec![0i16; 1600]);
        assert!(events_for(&blip, 1100.0, 200).is_empty());
    }

    #[test]
    fn ignores_noise() {
        assert!(events_for(&white_noise(9, 80_000, 3000.0), 1100.0, 100).is_empty());
    }
}
