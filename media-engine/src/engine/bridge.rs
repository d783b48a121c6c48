//! Where each bridged leg's audio goes: the peer, and a resampler when the rates differ.

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};

use crate::ids::LegId;
use crate::EngineError;

/// One direction of a bridge: audio heard on a leg goes to `peer`.
#[derive(Debug)]
pub(super) struct Route {
    pub peer: LegId,
    resampler: Option<FrameResampler>,
    scratch: AudioFrame,
}

impl Route {
    pub fn new(peer: LegId, from: SampleRate, to: SampleRate) -> Result<Self, EngineError> {
        let resampler =
            (from != to).then(|| FrameResampler::new(from, to, ResamplerProfile::LowDelay)).transpose()?;
        Ok(Self { peer, resampler, scratch: AudioFrame::silent(to, 0) })
    }

    /// The frame in the peer's rate (resampled into scratch space, no allocation).
    pub fn convert<'a>(&'a mut self, frame: &'a AudioFrame) -> &'a AudioFrame {
        match &mut self.resampler {
            None => frame,
            Some(r) => match r.process(frame, &mut self.scratch) {
                Ok(()) => &self.scratch,
                Err(_) => {
                    self.scratch.fill_silence();
                    &self.scratch
                }
            },
        }
    }
}
