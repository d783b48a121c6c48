//! Audio the control plane hands the engine to play: WAV files and speech,
//! decoded (and for clips resampled to a leg's rate) here, off the media path.

pub mod espeak;
pub mod wav;
