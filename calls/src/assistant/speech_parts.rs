//! A sentence's speech brought to the call's rate part by part, as a
//! streaming voice hands it over: one filter runs across the parts, so where
//! they join is as smooth as the middle of a part. Whole 20 ms frames go
//! through; what is left of a part waits for the next, and the last is padded.

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, CodecError, SampleRate};

pub(super) struct Resampling {
    /// `None`: the voice speaks at the call's rate already.
    filter: Option<FrameResampler>,
    from: SampleRate,
    /// Samples short of a whole frame, kept for the next part.
    carry: Vec<i16>,
    /// Output samples still to drop: the filter's delay.
    skip: usize,
    /// Samples taken in, and given out (through the filter).
    taken: usize,
    given: usize,
    out: AudioFrame,
}

impl Resampling {
    pub fn new(from: SampleRate, to: SampleRate) -> Result<Self, CodecError> {
        let filter =
            (from != to).then(|| FrameResampler::new(from, to, ResamplerProfile::HighQuality)).transpose()?;
        let skip = filter.as_ref().map_or(0, FrameResampler::delay_samples);
        Ok(Self { filter, from, carry: Vec::new(), skip, taken: 0, given: 0, out: AudioFrame::silent(to, 0) })
    }

    /// A part of the speech, at the voice's rate: what of it can be played.
    pub fn push(&mut self, part: &[i16]) -> Result<Vec<i16>, CodecError> {
        self.taken += part.len();
        if self.filter.is_none() {
            return Ok(part.to_vec());
        }
        self.carry.extend_from_slice(part);
        let frame = self.from.frame_samples();
        let whole = self.carry.len() / frame * frame;
        let input: Vec<i16> = self.carry.drain(..whole).collect();
        self.run(&input)
    }

    /// The speech is over: the rest, the filter emptied, the length exact.
    pub fn finish(&mut self) -> Result<Vec<i16>, CodecError> {
        let Some(filter) = &self.filter else { return Ok(Vec::new()) };
        let (from, to) = (self.from.hz() as usize, filter.to_rate().hz() as usize);
        let wanted = self.taken * to / from;
        let frame = self.from.frame_samples();
        // The last samples, then silence enough to push the filter's delay out.
        let mut input = std::mem::take(&mut self.carry);
        let flush = filter.delay_samples() * from / to + frame;
        input.resize((input.len() + flush).div_ceil(frame) * frame, 0);
        let given = self.given;
        let mut out = self.run(&input)?;
        out.truncate(wanted.saturating_sub(given));
        self.given = given + out.len();
        Ok(out)
    }

    fn run(&mut self, input: &[i16]) -> Result<Vec<i16>, CodecError> {
        let Some(filter) = &mut self.filter else { return Ok(input.to_vec()) };
        let mut out =
            Vec::with_capacity(input.len() * filter.to_rate().hz() as usize / self.from.hz() as usize);
        let mut frame = AudioFrame::silent(self.from, 0);
        for chunk in input.chunks_exact(self.from.frame_samples()) {
            frame.samples_mut().copy_from_slice(chunk);
            filter.process(&frame, &mut self.out)?;
            let produced = self.out.samples();
            let skipped = self.skip.min(produced.len());
            self.skip -= skipped;
            out.extend_from_slice(&produced[skipped..]);
        }
        self.given += out.len();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_codecs::resample::resample_clip;
    use bond_codecs::signals::{sine, snr_db_aligned};

    #[test]
    fn speech_resampled_in_uneven_parts_matches_the_whole_resampled_at_once() {
        let speech = sine(440.0, 16_000, 16_000 + 123, 8_000.0);
        let mut parts = Resampling::new(SampleRate::Hz16000, SampleRate::Hz8000).unwrap();
        let mut out = Vec::new();
        for part in speech.chunks(1_001) {
            out.extend(parts.push(part).unwrap());
        }
        out.extend(parts.finish().unwrap());
        let whole = resample_clip(&speech, 16_000, SampleRate::Hz8000).unwrap();
        assert_eq!(out.len(), whole.len(), "the length scaled exactly");
        let snr = snr_db_aligned(&whole[100..7_900], &out[100..7_900], 0);
        assert!(snr > 30.0, "snr {snr:.1} dB: the same tone, aligned, no seams");
    }

    #[test]
    fn speech_at_the_calls_rate_passes_through_as_it_comes() {
        let mut parts = Resampling::new(SampleRate::Hz16000, SampleRate::Hz16000).unwrap();
        assert_eq!(parts.push(&[1, 2, 3]).unwrap(), [1, 2, 3]);
        assert_eq!(parts.finish().unwrap(), Vec::<i16>::new());
    }
}
