//! A recording writer's decoders for the packets of a passthrough bridge
//! (`leg/packet_record.rs`): G.711 needs none (its codes are decoded as they
//! are placed, see [`Samples`]), G.722 and Opus keep state from packet to
//! packet, so each direction of a recording has its own.

use bond_codecs::g722::G722Decoder;
use bond_codecs::{AudioDecoder, AudioFrame, Codec, SampleRate};

/// 8 kHz samples in 20 ms: how far each further frame of a long Opus packet is placed.
const FRAME_8K: u64 = 160;

/// A packet's audio at its codec's rate: linear samples, or G.711 codes,
/// decoded one by one where they are placed rather than into a buffer first.
#[derive(Debug, Clone, Copy)]
pub(super) enum Samples<'a> {
    Linear(&'a [i16]),
    Ulaw(&'a [u8]),
    Alaw(&'a [u8]),
}

#[derive(Debug, Default)]
pub(super) struct PacketDecoders {
    /// Inbound, outbound.
    g722: [G722Decoder; 2],
    /// Made with the first Opus packet each way (an Opus decoder is some 20 KiB).
    opus: [Option<AudioDecoder>; 2],
    samples: Vec<i16>,
    frame: Option<AudioFrame>,
}

impl PacketDecoders {
    /// Decode one packet of `codec` that crossed the leg (`outbound` or in) and
    /// hand `place` its audio, each piece with its offset in 8 kHz samples
    /// from where the packet goes. A payload that does not decode is left out.
    pub fn decode(
        &mut self,
        codec: Codec,
        outbound: bool,
        payload: &[u8],
        mut place: impl FnMut(u64, Samples<'_>),
    ) {
        let way = usize::from(outbound);
        let samples = &mut self.samples;
        match codec {
            Codec::Pcmu => place(0, Samples::Ulaw(payload)),
            Codec::Pcma => place(0, Samples::Alaw(payload)),
            Codec::G722 => {
                samples.resize(payload.len() * 2, 0);
                // Cannot fail: `samples` holds two a byte.
                let _ = self.g722[way].decode(payload, samples);
                place(0, Samples::Linear(samples));
            }
            Codec::Opus => {
                let decoder = match &mut self.opus[way] {
                    Some(decoder) => decoder,
                    slot => match Codec::Opus.decoder() {
                        Ok(decoder) => slot.insert(decoder),
                        Err(_) => return,
                    },
                };
                let frame = self.frame.get_or_insert_with(|| AudioFrame::silent(SampleRate::Hz48000, 0));
                if decoder.decode(payload, frame).is_err() {
                    return;
                }
                place(0, Samples::Linear(frame.samples()));
                let mut offset = 0;
                while decoder.rest_frames() > 0 && decoder.decode_rest(frame).is_ok() {
                    offset += FRAME_8K;
                    place(offset, Samples::Linear(frame.samples()));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::MAX_RTP_PACKET;

    fn placed(decoders: &mut PacketDecoders, codec: Codec, payload: &[u8]) -> Vec<(u64, usize)> {
        let mut out = Vec::new();
        decoders.decode(codec, false, payload, |offset, samples| {
            let len = match samples {
                Samples::Linear(samples) => samples.len(),
                Samples::Ulaw(codes) | Samples::Alaw(codes) => codes.len(),
            };
            out.push((offset, len));
        });
        out
    }

    #[test]
    fn each_codec_gives_its_packet_time_at_its_own_rate() {
        let mut decoders = PacketDecoders::default();
        assert_eq!(placed(&mut decoders, Codec::Pcmu, &[0xff; 160]), [(0, 160)]);
        assert_eq!(placed(&mut decoders, Codec::Pcma, &[0xd5; 80]), [(0, 80)]);
        assert_eq!(placed(&mut decoders, Codec::G722, &[0; 160]), [(0, 320)]);

        let mut encoder = Codec::Opus.encoder().unwrap();
        let mut payload = vec![0; MAX_RTP_PACKET];
        let len = encoder.encode(&AudioFrame::silent(SampleRate::Hz48000, 0), &mut payload).unwrap();
        assert_eq!(placed(&mut decoders, Codec::Opus, &payload[..len]), [(0, 960)]);
        // Two 20 ms frames in one packet (RFC 6716 code 1: the TOC's low bits 01, one frame's bytes twice).
        let mut double = vec![payload[0] | 0x01];
        double.extend_from_slice(&payload[1..len]);
        double.extend_from_slice(&payload[1..len]);
        assert_eq!(placed(&mut decoders, Codec::Opus, &double), [(0, 960), (160, 960)]);
        // Not Opus at all: nothing.
        assert_eq!(placed(&mut decoders, Codec::Opus, &[0xff; 3]), []);
    }
}
