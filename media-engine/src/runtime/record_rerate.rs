//! A recording at another rate than its leg's. The timeline lays the call out
//! at the leg's rate, where ticks and passthrough packets alike have their
//! places, and writes out an unbroken run of (inbound, outbound) sample pairs;
//! this brings that run to the file's rate 20 ms at a time, each channel
//! through its own low-delay resampler. The resamplers' delay is taken off the
//! front and their tail fed out at the end, so the file keeps the timeline's
//! places and its length.

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};

#[derive(Debug)]
pub(super) struct Rerate {
    from: SampleRate,
    to: SampleRate,
    /// Inbound, outbound.
    resamplers: [FrameResampler; 2],
    input: [AudioFrame; 2],
    output: [AudioFrame; 2],
    /// Samples in `input`, each channel.
    held: usize,
    /// The output frames as pairs, for `out`.
    pairs: Vec<[i16; 2]>,
    /// Output samples still to drop: the resamplers' delay.
    skip: usize,
    /// Sample pairs taken, at `from`.
    taken: u64,
    /// Sample pairs given out, at `to`.
    given: u64,
}

impl Rerate {
    pub fn new(from: SampleRate, to: SampleRate) -> Result<Self, String> {
        let resampler =
            || FrameResampler::new(from, to, ResamplerProfile::LowDelay).map_err(|e| e.to_string());
        let resamplers = [resampler()?, resampler()?];
        let skip = resamplers[0].delay_samples();
        let frame = |rate| [AudioFrame::silent(rate, 0), AudioFrame::silent(rate, 0)];
        Ok(Self {
            from,
            to,
            resamplers,
            input: frame(from),
            output: frame(to),
            pairs: Vec::new(),
            held: 0,
            skip,
            taken: 0,
            given: 0,
        })
    }

    /// Take a run of sample pairs at the leg's rate; give out what each whole frame makes.
    pub fn push(&mut self, mut pairs: &[[i16; 2]], out: &mut impl FnMut(&[[i16; 2]])) {
        let frame = self.from.frame_samples();
        while !pairs.is_empty() {
            let n = (frame - self.held).min(pairs.len());
            let held = self.held..self.held + n;
            for (channel, input) in self.input.iter_mut().enumerate() {
                for (sample, pair) in input.samples_mut()[held.clone()].iter_mut().zip(pairs) {
                    *sample = pair[channel];
                }
            }
            pairs = &pairs[n..];
            self.held = held.end;
            self.taken += n as u64;
            if self.held == frame {
                self.convert(u64::MAX, out);
            }
        }
    }

    /// Give out the rest: as many pairs as what was taken makes at the file's rate.
    pub fn finish(&mut self, out: &mut impl FnMut(&[[i16; 2]])) {
        let wanted = self.taken * u64::from(self.to.hz()) / u64::from(self.from.hz());
        while self.given < wanted {
            for input in &mut self.input {
                input.samples_mut()[self.held..].fill(0);
            }
            self.convert(wanted, out);
        }
    }

    /// Resample the frame held (padded when finishing), giving out at most `limit` pairs in all.
    fn convert(&mut self, limit: u64, out: &mut impl FnMut(&[[i16; 2]])) {
        self.held = 0;
        for ((resampler, input), output) in self.resamplers.iter_mut().zip(&self.input).zip(&mut self.output)
        {
            // Cannot fail: the frames are of the rates the resampler was made for.
            if resampler.process(input, output).is_err() {
                output.fill_silence();
            }
        }
        let [inbound, outbound] = &self.output;
        let len = inbound.samples().len().min(outbound.samples().len());
        let from = self.skip.min(len);
        self.skip -= from;
        let until = from + usize::try_from(limit - self.given).unwrap_or(usize::MAX).min(len - from);
        let run = inbound.samples()[from..until].iter().zip(&outbound.samples()[from..until]);
        self.pairs.clear();
        self.pairs.extend(run.map(|(&i, &o)| [i, o]));
        out(&self.pairs);
        self.given += self.pairs.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bond_codecs::signals::sine;

    fn rerate(from: SampleRate, to: SampleRate, pairs: &[(i16, i16)]) -> Vec<(i16, i16)> {
        let mut rerate = Rerate::new(from, to).unwrap();
        let mut file = Vec::new();
        let mut out = |run: &[[i16; 2]]| file.extend(run.iter().map(|&[i, o]| (i, o)));
        // Runs of uneven lengths, as the timeline gives them.
        let pairs: Vec<[i16; 2]> = pairs.iter().map(|&(i, o)| [i, o]).collect();
        for run in pairs.chunks(97) {
            rerate.push(run, &mut out);
        }
        rerate.finish(&mut out);
        file
    }

    #[test]
    fn the_length_scales_exactly_whatever_the_frames() {
        for (from, to, taken, given) in [
            (SampleRate::Hz8000, SampleRate::Hz16000, 1000, 2000),
            (SampleRate::Hz48000, SampleRate::Hz16000, 4803, 1601),
            (SampleRate::Hz16000, SampleRate::Hz8000, 7, 3),
            (SampleRate::Hz8000, SampleRate::Hz48000, 0, 0),
        ] {
            assert_eq!(rerate(from, to, &vec![(0, 0); taken]).len(), given, "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn each_channel_keeps_its_tone_and_its_place() {
        // 200 ms of silence, then 300 ms of 1 kHz inbound and 400 Hz outbound, at 8 kHz.
        let mut pairs = vec![(0, 0); 1600];
        pairs.extend(sine(1000.0, 8000, 2400, 8000.0).into_iter().zip(sine(400.0, 8000, 2400, 8000.0)));
        let file = rerate(SampleRate::Hz8000, SampleRate::Hz16000, &pairs);
        assert_eq!(file.len(), 8000);
        let start = file.iter().position(|&(i, _)| i.unsigned_abs() > 1000).unwrap();
        assert!((3180..=3220).contains(&start), "the tone starts at 200 ms, not at {start}");
        let (left, right): (Vec<i16>, Vec<i16>) = file[3400..7800].iter().copied().unzip();
        assert!((548..=552).contains(&crossings(&left)), "1 kHz for 275 ms");
        assert!((218..=222).contains(&crossings(&right)), "400 Hz for 275 ms");
    }

    /// Sign changes in `samples`.
    fn crossings(samples: &[i16]) -> usize {
        samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }
}
