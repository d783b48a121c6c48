//! Bond's codecs and DSP. Pure computation: no I/O, no clock, no async.
//!
//! Everything works on [`AudioFrame`]s of 20 ms mono i16 PCM, which carry their
//! sample rate and media timestamp. Encoders and decoders allocate when they are
//! built and never per frame.
//!
//! - [`g711`]: mu-law and A-law, bit-exact with ITU-T G.191.
//! - [`l16`]: 16-bit linear, both byte orders.
//! - [`g722`]: G.722 at 64 kbit/s.
//! - [`opus_codec`]: Opus via libopus, with FEC, DTX and PLC.
//! - [`codec`]: one encoder/decoder interface over all of them.
//! - [`resample`]: 8/16/24/48 kHz conversion (polyphase FIR), 20 ms in, 20 ms out; clips at any rate (rubato).
//! - [`dtmf`]: Q.24 detector, generator, RFC 4733 payloads.
//! - [`tone`]: single-frequency tone detector.
//! - [`level`], [`signals`]: levels in dBFS/dBm0, test tones, seeded noise, SNR.

pub mod codec;
pub mod dtmf;
mod error;
pub mod frame;
pub mod g711;
pub mod g722;
pub mod l16;
pub mod level;
pub mod opus_codec;
pub mod opus_peer;
pub mod resample;
pub mod ringtone;
pub mod signals;
pub mod tone;

pub use codec::{AudioDecoder, AudioEncoder, Codec};
pub use error::CodecError;
pub use frame::{AudioFrame, SampleRate, FRAME_MS};
#[cfg(test)]
pub(crate) use signals as test_signals;
