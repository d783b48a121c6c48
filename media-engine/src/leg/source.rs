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

/// Runtime state of a [`MediaSource`].
#[derive(Debug)]
pub(crate) enum SourceState {
    Silence,
    Tone(Oscillator),
    Echo(Option<Box<AudioFrame>>),
    External { queue: VecDeque<AudioFrame>, dropped: u64 },
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
            // Room is made as frames come: a passthrough bridge never queues
            // one, a decoded bridge rarely more than two.
            MediaSource::External => Self::External { queue: VecDeque::new(), dropped: 0 },
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
                Some(existing) => existing.as_mut().clone_from(frame),
                None => *slot = Some(Box::new(frame.clone())),
            }
        }
    }

    /// Queue a frame for an external source; returns false if it was not one.
    pub fn push(&mut self, frame: &AudioFrame) -> bool {
        let Self::External { queue, dropped } = self else { return false };
        if queue.len() == EXTERNAL_QUEUE {
            queue.pop_front();
            *dropped += 1;
        } else if queue.len() == queue.capacity() {
            queue.reserve_exact(1);
        }
        queue.push_back(frame.clone());
        true
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
            Self::External { queue, .. } => match queue.pop_front() {
                Some(frame) if frame.rate() == out.rate() => {
                    out.samples_mut().copy_from_slice(frame.samples())
                }
                _ => out.fill_silence(),
            },
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
