//! What a leg sends when nothing else feeds it: the behaviour of the built-in legs.

use std::collections::VecDeque;
use std::sync::Arc;

use bond_codecs::level::sine_amplitude_for_dbm0;
use bond_codecs::signals::Oscillator;
use bond_codecs::{AudioFrame, SampleRate};

/// Chooses the audio a leg transmits each 20 ms.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaSource {
    Silence,
    /// A steady tone at `hz` and `dbm0`.
    Tone {
        hz: f64,
        dbm0: f64,
    },
    /// Sends back what it hears, with no added delay beyond one tick.
    Echo,
    /// Frames pushed in by the driver (a bridge, a player); silence when none is queued.
    External,
    /// Plays `samples` (at `rate`, which must be the leg's) once, then
    /// silence; or over and over with `repeat`.
    Play {
        samples: Arc<[i16]>,
        rate: SampleRate,
        repeat: bool,
    },
}

/// Frames queued for an external source: a few ticks, then the oldest is dropped.
const EXTERNAL_QUEUE: usize = 5;

/// What became of a frame handed to a leg for its party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameTaken {
    Yes,
    /// Queued, and the oldest queued frame dropped to make room: the leg's
    /// peer runs ahead of its own clock.
    DroppingOldest,
    /// Not taken: the leg plays something else, or the frame is at another rate.
    No,
}

impl FrameTaken {
    /// How many queued frames were dropped to take this one (0 or 1).
    pub fn dropped(self) -> u64 {
        u64::from(self == Self::DroppingOldest)
    }
}

/// The frames queued for an external source, kept as their samples in one
/// ring (an 8 kHz frame takes 320 bytes here, and no allocation of its own).
/// Room is made as frames come, one frame's worth at a time: a
/// passthrough bridge never queues one, a decoded bridge rarely more than two.
#[derive(Debug, Default)]
pub(crate) struct FrameQueue {
    samples: VecDeque<i16>,
    /// Each queued frame's rate, oldest first.
    rates: VecDeque<SampleRate>,
}

impl FrameQueue {
    fn push(&mut self, frame: &AudioFrame) -> FrameTaken {
        let taken = if self.rates.len() == EXTERNAL_QUEUE {
            self.pop_into(None);
            FrameTaken::DroppingOldest
        } else {
            FrameTaken::Yes
        };
        // Grown by one frame only when full: room for the most ever queued, no more.
        let samples = frame.samples();
        self.samples.reserve_exact(samples.len());
        self.rates.reserve_exact(1);
        self.samples.extend(samples);
        self.rates.push_back(frame.rate());
        taken
    }

    /// Take the oldest frame, into `out` if it is at `out`'s rate (silence if
    /// not, or if none is queued).
    fn pop_into(&mut self, out: Option<&mut AudioFrame>) {
        let Some(rate) = self.rates.pop_front() else {
            if let Some(out) = out {
                out.fill_silence();
            }
            return;
        };
        let n = rate.frame_samples();
        match out {
            Some(out) if out.rate() == rate => {
                let (front, back) = self.samples.as_slices();
                let head = front.len().min(n);
                let samples = out.samples_mut();
                samples[..head].copy_from_slice(&front[..head]);
                samples[head..].copy_from_slice(&back[..n - head]);
            }
            Some(out) => out.fill_silence(),
            None => {}
        }
        self.samples.drain(..n);
    }
}

/// Runtime state of a [`MediaSource`].
#[derive(Debug)]
pub(crate) enum SourceState {
    Silence,
    Tone(Oscillator),
    Echo(Option<AudioFrame>),
    External(FrameQueue),
    Play { samples: Arc<[i16]>, position: usize, repeat: bool },
}

impl SourceState {
    /// An echo: what the party hears comes back as what it says.
    pub fn is_echo(&self) -> bool {
        matches!(self, Self::Echo(_))
    }

    /// Forget what an echo was about to say back.
    pub fn clear_echo(&mut self) {
        if let Self::Echo(slot) = self {
            *slot = None;
        }
    }

    pub fn new(source: &MediaSource, rate: u32) -> Self {
        match source {
            MediaSource::Silence => Self::Silence,
            MediaSource::Tone { hz, dbm0 } => {
                Self::Tone(Oscillator::new(*hz, rate, sine_amplitude_for_dbm0(*dbm0)))
            }
            MediaSource::Echo => Self::Echo(None),
            MediaSource::External => Self::External(FrameQueue::default()),
            // Audio made for another rate would play at the wrong pitch: the
            // engine refuses it (`Engine::hold`), and here it stays silent.
            MediaSource::Play { rate: made_for, .. } if made_for.hz() != rate => Self::Silence,
            MediaSource::Play { samples, repeat, .. } => {
                Self::Play { samples: samples.clone(), position: 0, repeat: *repeat }
            }
        }
    }

    /// What the leg heard this tick, for the echo.
    pub fn heard(&mut self, frame: &AudioFrame) {
        if let Self::Echo(slot) = self {
            match slot {
                Some(existing) => existing.clone_from(frame),
                None => *slot = Some(frame.clone()),
            }
        }
    }

    /// Queue a frame for an external source (refused by any other).
    pub fn push(&mut self, frame: &AudioFrame) -> FrameTaken {
        let Self::External(queue) = self else { return FrameTaken::No };
        queue.push(frame)
    }

    /// Fill `out` (already at the leg's rate) with this tick's audio.
    pub fn fill(&mut self, out: &mut AudioFrame) {
        match self {
            Self::Silence => out.fill_silence(),
            Self::Tone(osc) => osc.fill(out.samples_mut()),
            Self::Echo(Some(frame)) if frame.rate() == out.rate() => {
                out.samples_mut().copy_from_slice(frame.samples());
            }
            Self::Echo(_) => out.fill_silence(),
            Self::External(queue) => queue.pop_into(Some(out)),
            Self::Play { samples, position, repeat } => {
                for s in out.samples_mut() {
                    if *position >= samples.len() && *repeat && !samples.is_empty() {
                        *position = 0;
                    }
                    *s = samples.get(*position).copied().unwrap_or(0);
                    *position += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rate: SampleRate, value: i16) -> AudioFrame {
        let mut frame = AudioFrame::silent(rate, 0);
        frame.samples_mut().fill(value);
        frame
    }

    fn next(source: &mut SourceState, rate: SampleRate) -> Vec<i16> {
        let mut out = frame(rate, -1);
        source.fill(&mut out);
        out.samples().to_vec()
    }

    #[test]
    fn an_external_source_plays_its_frames_in_order_then_silence() {
        let mut source = SourceState::new(&MediaSource::External, 8000);
        let rate = SampleRate::Hz8000;
        // Pushed and taken out of step, so the queue's samples wrap around.
        for round in 0..4i16 {
            assert_eq!(source.push(&frame(rate, 3 * round)), FrameTaken::Yes);
            assert_eq!(source.push(&frame(rate, 3 * round + 1)), FrameTaken::Yes);
            assert_eq!(next(&mut source, rate), vec![3 * round; 160]);
            assert_eq!(source.push(&frame(rate, 3 * round + 2)), FrameTaken::Yes);
            assert_eq!(next(&mut source, rate), vec![3 * round + 1; 160]);
            assert_eq!(next(&mut source, rate), vec![3 * round + 2; 160]);
        }
        assert_eq!(next(&mut source, rate), vec![0; 160]);
    }

    #[test]
    fn a_full_external_queue_drops_its_oldest_frame() {
        let mut source = SourceState::new(&MediaSource::External, 16000);
        let rate = SampleRate::Hz16000;
        let taken: Vec<_> =
            (0..EXTERNAL_QUEUE as i16 + 2).map(|value| source.push(&frame(rate, value))).collect();
        assert_eq!(taken[..EXTERNAL_QUEUE], [FrameTaken::Yes; EXTERNAL_QUEUE]);
        assert_eq!(taken[EXTERNAL_QUEUE..], [FrameTaken::DroppingOldest; 2]);
        for value in 2..EXTERNAL_QUEUE as i16 + 2 {
            assert_eq!(next(&mut source, rate), vec![value; 320]);
        }
        let SourceState::External(queue) = &source else { panic!("an external source") };
        assert!(queue.samples.is_empty());
    }

    #[test]
    fn a_frame_at_another_rate_plays_as_silence_and_the_next_one_is_heard() {
        let mut source = SourceState::new(&MediaSource::External, 8000);
        source.push(&frame(SampleRate::Hz48000, 9));
        source.push(&frame(SampleRate::Hz8000, 4));
        assert_eq!(next(&mut source, SampleRate::Hz8000), vec![0; 160]);
        assert_eq!(next(&mut source, SampleRate::Hz8000), vec![4; 160]);
    }

    #[test]
    fn a_source_that_is_not_external_takes_no_frames() {
        let mut source = SourceState::new(&MediaSource::Silence, 8000);
        assert_eq!(source.push(&frame(SampleRate::Hz8000, 1)), FrameTaken::No);
    }
}
