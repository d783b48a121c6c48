//! Queued DTMF digits played in-band into the audio a leg sends to its party.

use std::collections::VecDeque;

use bond_codecs::dtmf::{DtmfDigit, DtmfGenerator};
use bond_codecs::AudioFrame;

/// Tone and gap lengths for sent digits (Telnyx `duration_millis` defaults to 250).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfTiming {
    pub tone_ms: u32,
    pub gap_ms: u32,
}

impl Default for DtmfTiming {
    fn default() -> Self {
        Self { tone_ms: 250, gap_ms: 100 }
    }
}

const LEVEL_DBM0: f64 = -10.0;

#[derive(Debug, Default)]
pub(crate) struct DtmfSender {
    queue: VecDeque<(DtmfDigit, DtmfTiming)>,
    current: Option<DtmfGenerator>,
    gap_after_current: usize,
    gap_left: usize,
}

impl DtmfSender {
    pub fn queue(&mut self, digits: &[DtmfDigit], timing: DtmfTiming) {
        self.queue.extend(digits.iter().map(|&d| (d, timing)));
    }

    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty() && self.gap_left == 0
    }

    /// Overwrite `frame` with the digits being sent and the gaps between them;
    /// leaves it alone when there is nothing to send.
    pub fn fill(&mut self, frame: &mut AudioFrame) {
        if self.is_idle() {
            return;
        }
        let rate = frame.rate().hz();
        for sample in frame.samples_mut() {
            *sample = self.next_sample(rate);
        }
    }

    fn next_sample(&mut self, rate: u32) -> i16 {
        loop {
            if let Some(generator) = &mut self.current {
                if !generator.is_finished() {
                    let mut one = [0i16];
                    generator.fill(&mut one);
                    return one[0];
                }
                self.current = None;
                self.gap_left = self.gap_after_current;
            }
            if self.gap_left > 0 {
                self.gap_left -= 1;
                return 0;
            }
            let Some((digit, timing)) = self.queue.pop_front() else { return 0 };
            self.current = Some(DtmfGenerator::new(digit, rate, LEVEL_DBM0, timing.tone_ms));
            self.gap_after_current = rate as usize * timing.gap_ms as usize / 1000;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_codecs::dtmf::{DtmfDetector, DtmfEvent};
    use bond_codecs::SampleRate;

    #[test]
    fn queued_digits_are_played_in_order_and_then_it_goes_idle() {
        let mut sender = DtmfSender::default();
        let digits: Vec<DtmfDigit> = "1#9".chars().map(|c| DtmfDigit::from_char(c).unwrap()).collect();
        sender.queue(&digits, DtmfTiming { tone_ms: 100, gap_ms: 60 });
        let mut detector = DtmfDetector::new(8000);
        let mut frame = AudioFrame::silent(SampleRate::Hz8000, 0);
        for _ in 0..40 {
            frame.fill_silence();
            sender.fill(&mut frame);
            detector.push(frame.samples());
        }
        let mut heard = String::new();
        while let Some(event) = detector.poll_event() {
            if let DtmfEvent::Started { digit, .. } = event {
                heard.push(digit.as_char());
            }
        }
        assert_eq!(heard, "1#9");
        assert!(sender.is_idle());
    }
}
