//! Opus through libopus (the `opus` crate, bundled libopus built with cmake).
//!
//! Bond always encodes 20 ms mono frames. It decodes packets of 20 ms, or of
//! 40 to 120 ms (a peer's `ptime`): those are decoded whole and handed out 20 ms
//! at a time ([`OpusDecoder::decode_rest`]). Shorter packets (2.5, 5 or 10 ms)
//! are joined into one 20 ms packet first ([`join_packets`]). Packet loss is
//! concealed by decoding with no packet (libopus PLC), or with the next
//! packet's in-band FEC when it has arrived.

use crate::{AudioFrame, CodecError, SampleRate};

/// Largest Opus packet Bond produces (RFC 6716 allows 1275 bytes per frame).
pub const MAX_OPUS_PACKET: usize = 1275;
/// The longest packet RFC 6716 allows, in 20 ms frames (120 ms).
pub const MAX_PACKET_FRAMES: usize = 6;

/// How many 20 ms frames an Opus packet holds (from its TOC byte and frame
/// count); `None` for a malformed packet or one that is not whole 20 ms frames
/// (2.5, 5 or 10 ms frames adding up to less than 20 ms, say).
pub fn packet_frames(packet: &[u8]) -> Option<usize> {
    let samples = packet_samples(packet)?;
    (samples % 960 == 0 && samples / 960 <= MAX_PACKET_FRAMES).then_some(samples / 960)
}

/// How long an Opus packet is, in 48 kHz samples (its RTP timestamp units);
/// `None` for a malformed or empty one.
pub fn packet_samples(packet: &[u8]) -> Option<usize> {
    opus::packet::get_nb_samples(packet, 48_000).ok().filter(|&samples| samples > 0)
}

/// Whether an Opus packet of one 10 or 20 ms frame with a SILK layer carries
/// in-band FEC for the frame before it: the LBRR flag that follows the VAD
/// flag in the frame's first bits (RFC 6716 4.2.3-4.2.4), where libopus's
/// `opus_packet_has_lbrr` reads it. False for any other packet.
pub fn carries_fec(packet: &[u8]) -> bool {
    let [toc, first, ..] = packet else { return false };
    let config = toc >> 3;
    let one_short_frame = toc & 0x03 == 0 && (config < 12 && config % 4 < 2 || (12..16).contains(&config));
    one_short_frame && (first >> 6) & 1 == 1
}

/// Whether a packet is shorter than 20 ms and a whole number of them make 20 ms
/// (2.5, 5 or 10 ms; [`join_packets`] makes one 20 ms packet of them).
pub fn is_short_packet(samples: usize) -> bool {
    samples < 960 && 960 % samples == 0
}

/// The frames of a packet of short frames (2.5, 5 or 10 ms) that do not add
/// up to whole 20 ms frames (30 ms of 10 ms frames, say), each as a packet of
/// its own (through libopus's repacketizer), and each frame's length in
/// samples; `None` for any other packet.
pub fn split_short_frames(packet: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let samples = packet_samples(packet)?;
    let frames = opus::packet::get_nb_frames(packet).ok()?;
    let each = samples / frames.max(1);
    if frames < 2 || samples % 960 == 0 || !is_short_packet(each) {
        return None;
    }
    let mut splitter = opus::Repacketizer::new().ok()?;
    let mut state = splitter.begin();
    state.cat(packet).ok()?;
    let mut parts = Vec::with_capacity(frames);
    for frame in 0..frames {
        let mut part = vec![0u8; packet.len() + 2];
        let len = state.out_range(frame, frame + 1, &mut part).ok()?;
        part.truncate(len);
        parts.push(part);
    }
    Some((parts, each))
}

/// Consecutive Opus packets joined into one (RFC 6716 3.2 framing, through
/// libopus's repacketizer): the frames of all of them, in order. `None` when
/// they cannot be: different modes or bandwidths, or over 120 ms together.
pub fn join_packets(packets: &[&[u8]]) -> Option<Vec<u8>> {
    let mut joiner = opus::Repacketizer::new().ok()?;
    let mut out = vec![0u8; packets.iter().map(|p| p.len()).sum::<usize>() + 2 * packets.len() + 3];
    let n = joiner.combine(packets, &mut out).ok()?;
    out.truncate(n);
    Some(out)
}

/// How the encoder is set up; every field maps to one libopus CTL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpusConfig {
    pub rate: SampleRate,
    /// Target bitrate in bits per second.
    pub bitrate: i32,
    /// 0 (cheapest) to 10 (best).
    pub complexity: i32,
    /// In-band forward error correction (LBRR), used when `expected_loss_percent > 0`.
    pub inband_fec: bool,
    pub expected_loss_percent: i32,
    /// Discontinuous transmission: near-empty packets during silence.
    pub dtx: bool,
    /// Constant bitrate instead of variable.
    pub cbr: bool,
    /// The widest band coded, whatever the audio holds (a peer's
    /// `maxplaybackrate`, [`OpusPeer`](crate::opus_peer::OpusPeer)).
    pub max_band: SampleRate,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            rate: SampleRate::Hz48000,
            bitrate: 32_000,
            complexity: 5,
            inband_fec: true,
            expected_loss_percent: 5,
            dtx: false,
            cbr: false,
            max_band: SampleRate::Hz48000,
        }
    }
}

/// A peak no louder than this (about -60 dBFS) is taken for silence.
const INAUDIBLE_PEAK: u16 = 32;

/// Opus encoder for 20 ms mono frames.
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusConfig,
    /// The highest rate whose band the encoder codes (its own rate unless limited).
    band: SampleRate,
    /// Whether anything louder than silence has been coded yet.
    coded_sound: bool,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").field("config", &self.config).finish()
    }
}

impl OpusEncoder {
    pub fn new(config: OpusConfig) -> Result<Self, CodecError> {
        Ok(Self { inner: Self::libopus(&config)?, config, band: config.widest_band(), coded_sound: false })
    }

    fn libopus(config: &OpusConfig) -> Result<opus::Encoder, CodecError> {
        let mut inner = opus::Encoder::new(config.rate.hz(), opus::Channels::Mono, opus::Application::Voip)
            .map_err(opus_error)?;
        inner.set_bitrate(opus::Bitrate::Bits(config.bitrate)).map_err(opus_error)?;
        inner.set_complexity(config.complexity).map_err(opus_error)?;
        inner.set_inband_fec(config.inband_fec).map_err(opus_error)?;
        inner.set_packet_loss_perc(config.expected_loss_percent).map_err(opus_error)?;
        inner.set_dtx(config.dtx).map_err(opus_error)?;
        inner.set_vbr(!config.cbr).map_err(opus_error)?;
        if config.widest_band() != config.rate {
            inner.set_max_bandwidth(bandwidth(config.widest_band())).map_err(opus_error)?;
        }
        Ok(inner)
    }

    /// Code no more of the spectrum than audio at `rate` holds: a G.711 call
    /// resampled to 48 kHz has nothing above 4 kHz, and narrowband SILK costs
    /// about 40 % less than full-band coding. At the encoder's own rate, or
    /// above, the whole band. A running encoder moves one band per 5.12 s, so
    /// one that has coded nothing but silence (a leg bridged as it answers)
    /// starts again, narrow from its next packet: there is nothing to cut.
    pub fn limit_band(&mut self, rate: SampleRate) -> Result<(), CodecError> {
        let rate = rate.min(self.config.widest_band());
        if rate == self.band {
            return Ok(());
        }
        if rate.hz() < self.band.hz() && !self.coded_sound {
            self.inner = Self::libopus(&self.config)?;
        }
        self.inner.set_max_bandwidth(bandwidth(rate)).map_err(opus_error)?;
        self.band = rate;
        Ok(())
    }

    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// Encode one frame at the configured rate; returns the packet length.
    pub fn encode(&mut self, frame: &AudioFrame, out: &mut [u8]) -> Result<usize, CodecError> {
        if frame.rate() != self.config.rate {
            return Err(CodecError::RateMismatch { expected: self.config.rate.hz(), got: frame.rate().hz() });
        }
        self.encode_pcm(frame.samples(), out)
    }

    /// Encode samples at the configured rate as one frame of their length
    /// (2.5, 5, 10, 20, 40 or 60 ms); returns the packet length.
    pub fn encode_pcm(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        self.coded_sound = self.coded_sound || pcm.iter().any(|s| s.unsigned_abs() > INAUDIBLE_PEAK);
        self.inner.encode(pcm, out).map_err(opus_error)
    }
}

/// Opus decoder producing 20 ms mono frames at a chosen rate.
pub struct OpusDecoder {
    inner: opus::Decoder,
    rate: SampleRate,
    /// A packet longer than 20 ms, decoded whole; `rest_at` is where its next frame starts.
    long: Vec<i16>,
    rest_at: usize,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder").field("rate", &self.rate).finish()
    }
}

impl OpusDecoder {
    pub fn new(rate: SampleRate) -> Result<Self, CodecError> {
        let inner = opus::Decoder::new(rate.hz(), opus::Channels::Mono).map_err(opus_error)?;
        Ok(Self { inner, rate, long: Vec::new(), rest_at: 0 })
    }

    pub fn rate(&self) -> SampleRate {
        self.rate
    }

    /// Decode a packet into `out` (whose rate is set to the decoder's): a 20 ms
    /// packet whole, a longer one's first 20 ms, the rest kept for [`Self::decode_rest`].
    pub fn decode(&mut self, packet: &[u8], out: &mut AudioFrame) -> Result<(), CodecError> {
        self.drop_rest();
        match packet_frames(packet) {
            Some(frames) if frames > 1 => {
                let frame = self.rate.frame_samples();
                self.long.resize(frames * frame, 0);
                let expected = self.long.len();
                let failed = match self.inner.decode(packet, &mut self.long, false) {
                    Ok(written) if written == expected => None,
                    Ok(written) => Some(CodecError::FrameLength { expected, got: written }),
                    Err(e) => Some(opus_error(e)),
                };
                if let Some(error) = failed {
                    self.drop_rest();
                    return Err(error);
                }
                self.rest_at = 0;
                self.decode_rest(out)
            }
            _ => self.decode_inner(packet, false, out),
        }
    }

    /// Frames of the last packet still to come from [`Self::decode_rest`].
    pub fn rest_frames(&self) -> usize {
        (self.long.len() - self.rest_at) / self.rate.frame_samples()
    }

    /// The next 20 ms of the last packet decoded, if it was longer than 20 ms.
    pub fn decode_rest(&mut self, out: &mut AudioFrame) -> Result<(), CodecError> {
        let frame = self.rate.frame_samples();
        let Some(samples) = self.long.get(self.rest_at..self.rest_at + frame) else {
            return Err(CodecError::Malformed("no decoded Opus audio left for this frame"));
        };
        out.set_rate(self.rate);
        out.samples_mut().copy_from_slice(samples);
        self.rest_at += frame;
        Ok(())
    }

    /// Conceal one lost 20 ms frame with libopus PLC.
    pub fn conceal(&mut self, out: &mut AudioFrame) -> Result<(), CodecError> {
        self.drop_rest();
        self.decode_inner(&[], false, out)
    }

    /// Recover a lost frame from the in-band FEC carried by the packet that followed it.
    pub fn recover_from_next(&mut self, next_packet: &[u8], out: &mut AudioFrame) -> Result<(), CodecError> {
        self.drop_rest();
        self.decode_inner(next_packet, true, out)
    }

    fn drop_rest(&mut self) {
        self.long.clear();
        self.rest_at = 0;
    }

    fn decode_inner(&mut self, packet: &[u8], fec: bool, out: &mut AudioFrame) -> Result<(), CodecError> {
        out.set_rate(self.rate);
        let expected = self.rate.frame_samples();
        let written = self.inner.decode(packet, out.samples_mut(), fec).map_err(opus_error)?;
        if written != expected {
            return Err(CodecError::FrameLength { expected, got: written });
        }
        Ok(())
    }
}

impl OpusConfig {
    /// The widest band the encoder codes: its rate's, or `max_band` when narrower.
    fn widest_band(&self) -> SampleRate {
        self.max_band.min(self.rate)
    }
}

/// The Opus band that holds what audio sampled at `rate` can.
fn bandwidth(rate: SampleRate) -> opus::Bandwidth {
    match rate {
        SampleRate::Hz8000 => opus::Bandwidth::Narrowband,
        SampleRate::Hz16000 => opus::Bandwidth::Wideband,
        SampleRate::Hz24000 => opus::Bandwidth::Superwideband,
        SampleRate::Hz48000 => opus::Bandwidth::Fullband,
    }
}

fn opus_error(e: opus::Error) -> CodecError {
    CodecError::Opus(e.description().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_signals::{best_lag, sinad_db, sine};

    fn round_trip(rate: SampleRate, config: OpusConfig) -> (Vec<i16>, Vec<i16>) {
        let input = sine(1000.0, rate.hz(), rate.hz() as usize * 2, 10_000.0);
        let mut enc = OpusEncoder::new(OpusConfig { rate, ..config }).unwrap();
        let mut dec = OpusDecoder::new(rate).unwrap();
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let mut out = AudioFrame::silent(rate, 0);
        let mut output = Vec::new();
        for chunk in input.chunks(rate.frame_samples()) {
            let frame = AudioFrame::from_samples(rate, 0, chunk).unwrap();
            let n = enc.encode(&frame, &mut packet).unwrap();
            dec.decode(&packet[..n], &mut out).unwrap();
            output.extend_from_slice(out.samples());
        }
        (input, output)
    }

    #[test]
    fn round_trip_keeps_a_1khz_tone_above_20db_snr_at_8_16_and_48_khz() {
        for rate in [SampleRate::Hz8000, SampleRate::Hz16000, SampleRate::Hz48000] {
            let (input, output) = round_trip(rate, OpusConfig::default());
            // Opus delays by a fraction of a sample at 8 and 16 kHz, so the tone is
            // compared by SINAD (tone against everything else), after 100 ms of settling.
            let skip = rate.frame_samples() * 5;
            let snr = sinad_db(&output[skip..], 1000.0, rate.hz());
            assert!(snr >= 20.0, "{rate:?}: SINAD {snr:.1} dB");
            let lag = best_lag(&input, &output, rate.frame_samples());
            assert!(lag > 0, "Opus adds look-ahead delay");
        }
    }

    #[test]
    fn concealment_and_fec_produce_a_full_frame() {
        let rate = SampleRate::Hz48000;
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(rate).unwrap();
        let input = sine(440.0, 48_000, 960 * 3, 8000.0);
        let mut packets = Vec::new();
        for chunk in input.chunks(960) {
            let mut p = [0u8; MAX_OPUS_PACKET];
            let n = enc.encode(&AudioFrame::from_samples(rate, 0, chunk).unwrap(), &mut p).unwrap();
            packets.push(p[..n].to_vec());
        }
        let mut out = AudioFrame::silent(rate, 0);
        dec.decode(&packets[0], &mut out).unwrap();
        dec.conceal(&mut out).unwrap();
        assert!(out.level_dbfs() > -40.0, "PLC should continue the tone");
        dec.recover_from_next(&packets[2], &mut out).unwrap();
        assert_eq!(out.samples().len(), 960);
    }

    /// `ms` of a 600 Hz tone per packet, encoded by libopus itself at that frame size.
    fn long_packets(ms: usize, count: usize) -> Vec<Vec<u8>> {
        let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        let tone = sine(600.0, 48_000, 48 * ms * count, 8000.0);
        let mut out = [0u8; 4000];
        let mut encode = |chunk: &[i16]| {
            let n = enc.encode(chunk, &mut out).unwrap();
            out[..n].to_vec()
        };
        tone.chunks(48 * ms).map(&mut encode).collect()
    }

    #[test]
    fn packets_of_40_and_60_ms_are_decoded_whole_and_handed_out_20_ms_at_a_time() {
        for ms in [40, 60] {
            let packets = long_packets(ms, 10);
            assert_eq!(packet_frames(&packets[0]), Some(ms / 20));
            let mut dec = OpusDecoder::new(SampleRate::Hz16000).unwrap();
            let mut out = AudioFrame::silent(SampleRate::Hz16000, 0);
            let mut heard = Vec::new();
            for packet in &packets {
                dec.decode(packet, &mut out).unwrap();
                heard.extend_from_slice(out.samples());
                while dec.rest_frames() > 0 {
                    dec.decode_rest(&mut out).unwrap();
                    heard.extend_from_slice(out.samples());
                }
                assert!(dec.decode_rest(&mut out).is_err(), "nothing past the packet's end");
            }
            assert_eq!(heard.len(), 16 * ms * 10);
            let snr = sinad_db(&heard[1600..], 600.0, 16_000);
            assert!(snr >= 20.0, "{ms} ms: SINAD {snr:.1} dB");
        }
    }

    #[test]
    fn a_loss_after_a_long_packet_conceals_and_drops_what_was_left_of_it() {
        let packets = long_packets(60, 2);
        let mut dec = OpusDecoder::new(SampleRate::Hz48000).unwrap();
        let mut out = AudioFrame::silent(SampleRate::Hz48000, 0);
        dec.decode(&packets[0], &mut out).unwrap();
        assert_eq!(dec.rest_frames(), 2);
        dec.conceal(&mut out).unwrap();
        assert_eq!((dec.rest_frames(), out.samples().len()), (0, 960));
    }

    #[test]
    fn two_10_ms_packets_joined_decode_as_one_20_ms_frame_of_the_same_tone() {
        let packets = long_packets(10, 20);
        assert!(is_short_packet(packet_samples(&packets[0]).unwrap()));
        let mut dec = OpusDecoder::new(SampleRate::Hz48000).unwrap();
        let mut out = AudioFrame::silent(SampleRate::Hz48000, 0);
        let mut heard = Vec::new();
        for pair in packets.chunks(2) {
            let joined = join_packets(&[&pair[0], &pair[1]]).unwrap();
            assert_eq!(packet_frames(&joined), Some(1));
            dec.decode(&joined, &mut out).unwrap();
            heard.extend_from_slice(out.samples());
        }
        assert_eq!(heard.len(), 10 * 960);
        let snr = sinad_db(&heard[960 * 3..], 600.0, 48_000);
        assert!(snr >= 20.0, "SINAD {snr:.1} dB");
    }

    #[test]
    fn thirty_ms_of_10_ms_frames_split_back_into_its_frames_and_nothing_else_does() {
        let packets = long_packets(10, 3);
        let thirty = join_packets(&[&packets[0], &packets[1], &packets[2]]).unwrap();
        assert_eq!(packet_samples(&thirty), Some(1440));
        let (parts, each) = split_short_frames(&thirty).unwrap();
        assert_eq!((parts, each), (packets.clone(), 480));
        let forty = join_packets(&[&packets[0], &packets[1], &packets[2], &packets[0]]).unwrap();
        assert_eq!(split_short_frames(&forty), None, "whole 20 ms frames decode as they are");
        assert_eq!(split_short_frames(&packets[0]), None, "one frame");
        assert_eq!(split_short_frames(&long_packets(60, 1)[0]), None);
    }

    #[test]
    fn packets_that_cannot_be_joined_are_refused() {
        let short = long_packets(10, 1);
        let long = long_packets(60, 2);
        assert_eq!(join_packets(&[&long[0], &long[1], &short[0]]), None, "over 120 ms");
        assert_eq!(join_packets(&[&short[0], &[0x03, 0x00]]), None, "a malformed one");
    }

    #[test]
    fn packet_frames_counts_only_whole_20_ms_frames() {
        assert_eq!(packet_frames(&long_packets(20, 1)[0]), Some(1));
        assert_eq!(packet_frames(&long_packets(10, 1)[0]), None);
        assert_eq!(packet_frames(&[]), None);
        assert_eq!(packet_frames(&[0x03, 0x00]), None, "code 3 with no frames");
    }

    #[test]
    fn fec_is_read_only_from_one_short_frame_with_a_silk_layer() {
        // Config 1: SILK narrowband 20 ms; 15: hybrid full band 20 ms; the LBRR flag set.
        assert!(carries_fec(&[1 << 3, 0x40]) && carries_fec(&[15 << 3, 0x40]));
        assert!(!carries_fec(&[1 << 3, 0x80]), "the VAD flag alone");
        // CELT only (config 31), SILK 40 ms (config 2), two frames (code 1), too short.
        for packet in [&[31 << 3, 0x40][..], &[2 << 3, 0x40], &[(1 << 3) | 1, 0x40], &[1 << 3]] {
            assert!(!carries_fec(packet), "{packet:?}");
        }
    }

    #[test]
    fn the_linked_libopus_is_1_5() {
        // codecs/libopus swaps libopus 1.3.1 for 1.5; losing the patch would go unnoticed otherwise.
        let version = opus::version();
        assert!(version.starts_with("libopus 1.5"), "linked {version}");
    }

    #[test]
    fn garbage_packet_is_an_error_not_a_panic() {
        let mut dec = OpusDecoder::new(SampleRate::Hz48000).unwrap();
        let mut out = AudioFrame::silent(SampleRate::Hz48000, 0);
        // TOC byte claiming code 3 with a frame count of zero is invalid.
        assert!(dec.decode(&[0x03, 0x00], &mut out).is_err());
    }

    #[test]
    fn encoder_rejects_frames_at_another_rate() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        let mut p = [0u8; MAX_OPUS_PACKET];
        let frame = AudioFrame::silent(SampleRate::Hz8000, 0);
        assert!(matches!(enc.encode(&frame, &mut p), Err(CodecError::RateMismatch { .. })));
    }

    #[test]
    fn a_band_limited_to_8_khz_audio_is_coded_narrowband_and_widens_again() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        let mut tone = crate::signals::Oscillator::new(1000.0, 48_000, 8000.0);
        let mut frame = AudioFrame::silent(SampleRate::Hz48000, 0);
        let mut p = [0u8; MAX_OPUS_PACKET];
        let mut band_after = |enc: &mut OpusEncoder, frames: usize| {
            let mut band = None;
            for _ in 0..frames {
                tone.fill(frame.samples_mut());
                let n = enc.encode(&frame, &mut p).unwrap();
                band = opus::packet::get_bandwidth(&p[..n]).ok();
            }
            band
        };
        assert_eq!(band_after(&mut enc, 25), Some(opus::Bandwidth::Fullband));
        enc.limit_band(SampleRate::Hz8000).unwrap();
        // Out of full band at once; then SILK fades down one band per 5.12 s
        // (TRANSITION_TIME_MS): wide, medium, narrow.
        assert_eq!(band_after(&mut enc, 25), Some(opus::Bandwidth::Wideband));
        assert_eq!(band_after(&mut enc, 520), Some(opus::Bandwidth::Narrowband));
        enc.limit_band(SampleRate::Hz16000).unwrap();
        assert_eq!(band_after(&mut enc, 520), Some(opus::Bandwidth::Wideband));
        enc.limit_band(SampleRate::Hz48000).unwrap();
        assert_eq!(band_after(&mut enc, 25), Some(opus::Bandwidth::Fullband));
    }

    #[test]
    fn an_encoder_that_coded_only_silence_narrows_at_once() {
        let mut enc = OpusEncoder::new(OpusConfig::default()).unwrap();
        let mut p = [0u8; MAX_OPUS_PACKET];
        let mut frame = AudioFrame::silent(SampleRate::Hz48000, 0);
        // Half a second of near-silence (a peak of -61 dBFS), as a leg sends before its bridge.
        frame.samples_mut().iter_mut().step_by(7).for_each(|s| *s = 29);
        for _ in 0..25 {
            enc.encode(&frame, &mut p).unwrap();
        }
        enc.limit_band(SampleRate::Hz8000).unwrap();
        let mut tone = crate::signals::Oscillator::new(1000.0, 48_000, 8000.0);
        let mut decoder = OpusDecoder::new(SampleRate::Hz48000).unwrap();
        let mut heard = AudioFrame::silent(SampleRate::Hz48000, 0);
        let mut got = Vec::new();
        for _ in 0..5 {
            tone.fill(frame.samples_mut());
            let n = enc.encode(&frame, &mut p).unwrap();
            assert_eq!(opus::packet::get_bandwidth(&p[..n]).ok(), Some(opus::Bandwidth::Narrowband));
            decoder.decode(&p[..n], &mut heard).unwrap();
            got.extend_from_slice(heard.samples());
        }
        // Clean from the second packet on, past the codec's delay: no block lost to the new start.
        for block in got[960..].chunks(480) {
            let sinad = crate::signals::sinad_db(block, 1000.0, 48_000);
            assert!(sinad > 25.0, "a 10 ms block at {sinad:.1} dB");
        }
    }

    #[test]
    fn dtx_makes_silence_cheap() {
        let config = OpusConfig { dtx: true, ..OpusConfig::default() };
        let mut enc = OpusEncoder::new(config).unwrap();
        let mut p = [0u8; MAX_OPUS_PACKET];
        let silence = AudioFrame::silent(SampleRate::Hz48000, 0);
        let sizes: Vec<usize> = (0..50).map(|_| enc.encode(&silence, &mut p).unwrap()).collect();
        assert!(sizes[40..].iter().all(|&n| n <= 3), "{sizes:?}");
    }
}
