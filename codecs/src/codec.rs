//! One interface over every codec: which codec (`Codec`), and an encoder and
//! decoder for 20 ms frames that never allocate after construction.

use crate::g722::{G722Decoder, G722Encoder};
use crate::l16::ByteOrder;
use crate::opus_codec::{OpusConfig, OpusDecoder, OpusEncoder};
use crate::{g711, l16, AudioFrame, CodecError, SampleRate};

/// A codec and its fixed parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    Opus,
    L16 { rate: SampleRate, order: ByteOrder },
}

impl Codec {
    /// Rate of the PCM the codec carries.
    pub fn sample_rate(self) -> SampleRate {
        match self {
            Self::Pcmu | Self::Pcma => SampleRate::Hz8000,
            Self::G722 => SampleRate::Hz16000,
            Self::Opus => SampleRate::Hz48000,
            Self::L16 { rate, .. } => rate,
        }
    }

    /// The rate this codec's audio is coded at when `wanted` is asked for: Opus
    /// codes at any of Bond's rates (libopus resamples inside, for less than a
    /// resampler outside costs), the others only at their own.
    pub fn pcm_rate(self, wanted: SampleRate) -> SampleRate {
        match self {
            Self::Opus => wanted,
            other => other.sample_rate(),
        }
    }

    /// RTP timestamp clock (RFC 3551: G.722 keeps 8000 for historical reasons; Opus is 48000).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Self::G722 => 8000,
            other => other.sample_rate().hz(),
        }
    }

    /// The codec an SDP encoding name names, in any case: PCMU, PCMA, G722 or
    /// opus (L16 needs its rate and byte order besides).
    pub fn from_encoding_name(name: &str) -> Option<Self> {
        [Self::Pcmu, Self::Pcma, Self::G722, Self::Opus]
            .into_iter()
            .find(|codec| codec.encoding_name().eq_ignore_ascii_case(name))
    }

    /// SDP encoding name.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
            Self::G722 => "G722",
            Self::Opus => "opus",
            Self::L16 { .. } => "L16",
        }
    }

    /// Static RTP payload type, where RFC 3551 assigns one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Self::Pcmu => Some(0),
            Self::Pcma => Some(8),
            Self::G722 => Some(9),
            Self::L16 { rate: SampleRate::Hz48000, .. } | Self::Opus | Self::L16 { .. } => None,
        }
    }

    /// Largest payload one 20 ms frame can encode to.
    pub fn max_payload_len(self) -> usize {
        match self {
            Self::Pcmu | Self::Pcma => 160,
            Self::G722 => 160,
            Self::Opus => crate::opus_codec::MAX_OPUS_PACKET,
            Self::L16 { rate, .. } => rate.frame_samples() * 2,
        }
    }

    pub fn encoder(self) -> Result<AudioEncoder, CodecError> {
        self.encoder_with(OpusConfig::default())
    }

    /// An encoder; `opus` configures Opus (its rate included, see
    /// [`Self::pcm_rate`]) and is ignored by the other codecs.
    pub fn encoder_with(self, opus: OpusConfig) -> Result<AudioEncoder, CodecError> {
        let rate = self.pcm_rate(opus.rate);
        let inner = match self {
            Self::Pcmu => EncoderInner::Pcmu,
            Self::Pcma => EncoderInner::Pcma,
            Self::G722 => EncoderInner::G722(Box::default()),
            Self::Opus => EncoderInner::Opus(Box::new(OpusEncoder::new(OpusConfig { rate, ..opus })?)),
            Self::L16 { order, .. } => EncoderInner::L16(order),
        };
        Ok(AudioEncoder { codec: self, rate, inner })
    }

    /// A decoder giving frames at the codec's own rate.
    pub fn decoder(self) -> Result<AudioDecoder, CodecError> {
        self.decoder_at(self.sample_rate())
    }

    /// A decoder giving frames at `rate` where the codec can ([`Self::pcm_rate`]).
    pub fn decoder_at(self, rate: SampleRate) -> Result<AudioDecoder, CodecError> {
        let rate = self.pcm_rate(rate);
        let inner = match self {
            Self::Pcmu => DecoderInner::Pcmu,
            Self::Pcma => DecoderInner::Pcma,
            Self::G722 => DecoderInner::G722(Box::default()),
            Self::Opus => DecoderInner::Opus(Box::new(OpusDecoder::new(rate)?)),
            Self::L16 { order, .. } => DecoderInner::L16(order),
        };
        Ok(AudioDecoder { codec: self, rate, inner, last: None, losses_in_row: 0 })
    }
}

#[derive(Debug)]
enum EncoderInner {
    Pcmu,
    Pcma,
    G722(Box<G722Encoder>),
    Opus(Box<OpusEncoder>),
    L16(ByteOrder),
}

/// Encodes 20 ms frames at its rate into payloads.
#[derive(Debug)]
pub struct AudioEncoder {
    codec: Codec,
    /// The rate of the frames it takes.
    rate: SampleRate,
    inner: EncoderInner,
}

impl AudioEncoder {
    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn rate(&self) -> SampleRate {
        self.rate
    }

    /// The audio to encode comes from a source at `rate` (a bridged peer): a
    /// codec that can (Opus) codes no more of the spectrum than that holds.
    pub fn limit_band(&mut self, rate: SampleRate) -> Result<(), CodecError> {
        match &mut self.inner {
            EncoderInner::Opus(enc) => enc.limit_band(rate),
            _ => Ok(()),
        }
    }

    /// Encode `frame` (at the encoder's rate) into `out`; returns the payload length.
    pub fn encode(&mut self, frame: &AudioFrame, out: &mut [u8]) -> Result<usize, CodecError> {
        self.encode_part(frame, 0, 1, out)
    }

    /// Encode part `part` of `frame` cut into `parts` equal parts (Opus at 10 ms:
    /// two of a 20 ms frame, one after the other); returns the payload length.
    pub fn encode_part(
        &mut self,
        frame: &AudioFrame,
        part: usize,
        parts: usize,
        out: &mut [u8],
    ) -> Result<usize, CodecError> {
        let rate = self.rate;
        if frame.rate() != rate {
            return Err(CodecError::RateMismatch { expected: rate.hz(), got: frame.rate().hz() });
        }
        let samples = frame.samples();
        let len = samples.len() / parts.max(1);
        let pcm = samples
            .get(part * len..(part + 1) * len)
            .ok_or(CodecError::FrameLength { expected: len * parts, got: samples.len() })?;
        let needed = self.codec.max_payload_len().min(pcm.len());
        match &mut self.inner {
            EncoderInner::Pcmu | EncoderInner::Pcma if out.len() < needed => {
                Err(CodecError::OutputTooSmall { needed, got: out.len() })
            }
            EncoderInner::Pcmu => {
                g711::ulaw_encode_slice(pcm, out);
                Ok(pcm.len())
            }
            EncoderInner::Pcma => {
                g711::alaw_encode_slice(pcm, out);
                Ok(pcm.len())
            }
            EncoderInner::G722(enc) => enc.encode(pcm, out),
            EncoderInner::Opus(enc) => enc.encode_pcm(pcm, out),
            EncoderInner::L16(order) => l16::encode(pcm, *order, out),
        }
    }
}

#[derive(Debug)]
enum DecoderInner {
    Pcmu,
    Pcma,
    G722(Box<G722Decoder>),
    Opus(Box<OpusDecoder>),
    L16(ByteOrder),
}

/// Decodes payloads into 20 ms frames, and conceals lost ones.
#[derive(Debug)]
pub struct AudioDecoder {
    codec: Codec,
    /// The rate of the frames it gives.
    rate: SampleRate,
    inner: DecoderInner,
    /// Last good frame, for waveform-repeat concealment of the non-Opus codecs
    /// (none before the first, or once forgotten: silence then; Opus conceals
    /// from its own state and keeps none). Always at the decoder's rate.
    last: Option<AudioFrame>,
    losses_in_row: u32,
}

impl AudioDecoder {
    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn rate(&self) -> SampleRate {
        self.rate
    }

    /// Decode one 20 ms payload into `out`, which takes the decoder's rate.
    pub fn decode(&mut self, payload: &[u8], out: &mut AudioFrame) -> Result<(), CodecError> {
        let rate = self.rate;
        out.set_rate(rate);
        let expected = rate.frame_samples();
        let written = match &mut self.inner {
            DecoderInner::Pcmu | DecoderInner::Pcma if payload.len() != expected => {
                return Err(CodecError::FrameLength { expected, got: payload.len() });
            }
            DecoderInner::Pcmu => {
                g711::ulaw_decode_slice(payload, out.samples_mut());
                expected
            }
            DecoderInner::Pcma => {
                g711::alaw_decode_slice(payload, out.samples_mut());
                expected
            }
            DecoderInner::G722(_) if payload.len() * 2 != expected => {
                return Err(CodecError::FrameLength { expected, got: payload.len() * 2 });
            }
            DecoderInner::G722(dec) => dec.decode(payload, out.samples_mut())?,
            DecoderInner::L16(_) if payload.len() != expected * 2 => {
                return Err(CodecError::FrameLength { expected, got: payload.len() / 2 });
            }
            DecoderInner::L16(order) => l16::decode(payload, *order, out.samples_mut())?,
            DecoderInner::Opus(dec) => {
                dec.decode(payload, out)?;
                expected
            }
        };
        debug_assert_eq!(written, expected);
        self.remember(out);
        Ok(())
    }

    /// Frames of the last payload still to come from [`Self::decode_rest`] (an
    /// Opus packet longer than 20 ms; none for the other codecs).
    pub fn rest_frames(&self) -> usize {
        match &self.inner {
            DecoderInner::Opus(dec) => dec.rest_frames(),
            _ => 0,
        }
    }

    /// The next 20 ms of the last payload decoded, when it held more than 20 ms.
    pub fn decode_rest(&mut self, out: &mut AudioFrame) -> Result<(), CodecError> {
        let DecoderInner::Opus(dec) = &mut self.inner else {
            return Err(CodecError::Malformed("only Opus payloads hold more than one frame"));
        };
        dec.decode_rest(out)?;
        self.remember(out);
        Ok(())
    }

    fn remember(&mut self, out: &AudioFrame) {
        self.losses_in_row = 0;
        if matches!(self.inner, DecoderInner::Opus(_)) {
            return;
        }
        match &mut self.last {
            Some(last) => last.clone_from(out),
            None => self.last = Some(out.clone()),
        }
    }

    /// Forget the last frame (and its room): the next loss before a new
    /// frame conceals with silence. For a stream that stops being decoded.
    pub fn forget_last(&mut self) {
        self.last = None;
        self.losses_in_row = 0;
    }

    /// Fill `out` for a frame that never arrived: Opus PLC, or for the other
    /// codecs the last frame repeated at half the level per loss, silent after four.
    pub fn conceal(&mut self, out: &mut AudioFrame) -> Result<(), CodecError> {
        self.losses_in_row += 1;
        if let DecoderInner::Opus(dec) = &mut self.inner {
            return dec.conceal(out);
        }
        match &self.last {
            Some(last) => out.clone_from(last),
            None => out.reset(self.rate, 0),
        }
        let shift = self.losses_in_row.min(15);
        for s in out.samples_mut() {
            *s = if self.losses_in_row > 4 { 0 } else { *s >> shift };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::sine;

    #[test]
    fn a_20_ms_frame_encodes_as_two_10_ms_parts() {
        let tone = sine(440.0, 48_000, 960, 8000.0);
        let frame = AudioFrame::from_samples(SampleRate::Hz48000, 0, &tone).unwrap();
        let mut opus = Codec::Opus.encoder().unwrap();
        let mut out = [0u8; 1275];
        for part in 0..2 {
            let len = opus.encode_part(&frame, part, 2, &mut out).unwrap();
            assert_eq!(crate::opus_codec::packet_samples(&out[..len]), Some(480), "part {part}");
        }
        let mut pcmu = Codec::Pcmu.encoder().unwrap();
        let frame = AudioFrame::from_samples(SampleRate::Hz8000, 0, &tone[..160]).unwrap();
        assert_eq!(pcmu.encode_part(&frame, 1, 2, &mut out).unwrap(), 80);
        assert!(pcmu.encode_part(&frame, 2, 2, &mut out).is_err(), "no third half");
    }

    #[test]
    fn encoding_names_name_their_codec_in_any_case() {
        for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
            assert_eq!(Codec::from_encoding_name(codec.encoding_name()), Some(codec));
        }
        assert_eq!(Codec::from_encoding_name("OPUS"), Some(Codec::Opus));
        assert_eq!(Codec::from_encoding_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_encoding_name("L16"), None);
        assert_eq!(Codec::from_encoding_name("G729"), None);
    }

    const ALL: [Codec; 6] = [
        Codec::Pcmu,
        Codec::Pcma,
        Codec::G722,
        Codec::Opus,
        Codec::L16 { rate: SampleRate::Hz16000, order: ByteOrder::BigEndian },
        Codec::L16 { rate: SampleRate::Hz8000, order: ByteOrder::LittleEndian },
    ];

    #[test]
    fn every_codec_round_trips_a_frame_at_its_rate() {
        for codec in ALL {
            let rate = codec.sample_rate();
            let mut enc = codec.encoder().unwrap();
            let mut dec = codec.decoder().unwrap();
            let pcm = sine(700.0, rate.hz(), rate.frame_samples(), 8000.0);
            let frame = AudioFrame::from_samples(rate, 0, &pcm).unwrap();
            let mut payload = vec![0u8; codec.max_payload_len()];
            let mut out = AudioFrame::silent(SampleRate::Hz8000, 0);
            let n = enc.encode(&frame, &mut payload).unwrap();
            dec.decode(&payload[..n], &mut out).unwrap();
            assert_eq!(out.rate(), rate, "{codec:?}");
        }
    }

    #[test]
    fn wrong_payload_length_is_an_error() {
        let mut out = AudioFrame::silent(SampleRate::Hz8000, 0);
        assert!(Codec::Pcmu.decoder().unwrap().decode(&[0; 80], &mut out).is_err());
        assert!(Codec::G722.decoder().unwrap().decode(&[0; 80], &mut out).is_err());
        let l16 = Codec::L16 { rate: SampleRate::Hz8000, order: ByteOrder::BigEndian };
        assert!(l16.decoder().unwrap().decode(&[0; 161], &mut out).is_err());
    }

    #[test]
    fn concealment_fades_to_silence() {
        let mut dec = Codec::Pcmu.decoder().unwrap();
        let mut out = AudioFrame::silent(SampleRate::Hz8000, 0);
        dec.decode(&[0x80; 160], &mut out).unwrap();
        let mut levels = Vec::new();
        for _ in 0..6 {
            dec.conceal(&mut out).unwrap();
            levels.push(out.samples()[0]);
        }
        assert!(levels.windows(2).all(|w| w[1] <= w[0]), "{levels:?}");
        assert_eq!(*levels.last().unwrap(), 0);
    }

    #[test]
    fn rtp_clock_rates_follow_rfc_3551() {
        assert_eq!(Codec::G722.rtp_clock_rate(), 8000);
        assert_eq!(Codec::G722.sample_rate(), SampleRate::Hz16000);
        assert_eq!(Codec::Opus.rtp_clock_rate(), 48000);
        assert_eq!(Codec::Pcma.static_payload_type(), Some(8));
    }

    #[test]
    fn opus_codes_at_the_rate_asked_for_and_the_other_codecs_at_their_own() {
        let at_8k = OpusConfig { rate: SampleRate::Hz8000, ..OpusConfig::default() };
        let mut enc = Codec::Opus.encoder_with(at_8k).unwrap();
        let mut dec = Codec::Opus.decoder_at(SampleRate::Hz8000).unwrap();
        assert_eq!((enc.rate(), dec.rate()), (SampleRate::Hz8000, SampleRate::Hz8000));
        let tone = sine(1000.0, 8000, 8000, 8000.0);
        let mut packet = [0u8; crate::opus_codec::MAX_OPUS_PACKET];
        let mut out = AudioFrame::silent(SampleRate::Hz8000, 0);
        let mut heard = Vec::new();
        for chunk in tone.chunks(160) {
            let n = enc
                .encode(&AudioFrame::from_samples(SampleRate::Hz8000, 0, chunk).unwrap(), &mut packet)
                .unwrap();
            // The RTP clock stays 48 kHz: a 20 ms packet is 960 units.
            assert_eq!(crate::opus_codec::packet_samples(&packet[..n]), Some(960));
            dec.decode(&packet[..n], &mut out).unwrap();
            heard.extend_from_slice(out.samples());
        }
        let sinad = crate::test_signals::sinad_db(&heard[800..], 1000.0, 8000);
        assert!(sinad >= 20.0, "SINAD {sinad:.1} dB");
        let wide = AudioFrame::silent(SampleRate::Hz48000, 0);
        assert!(matches!(enc.encode(&wide, &mut packet), Err(CodecError::RateMismatch { .. })));
        assert_eq!(Codec::Pcmu.encoder_with(at_8k).unwrap().rate(), SampleRate::Hz8000);
        assert_eq!(Codec::G722.decoder_at(SampleRate::Hz8000).unwrap().rate(), SampleRate::Hz16000);
    }
}
