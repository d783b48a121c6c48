//! A leg's receive path: a datagram checked (payload type, size), a
//! telephone-event taken apart, and the audio put in the playout buffer, cut
//! into 20 ms frames first when the peer's packets are of another length
//! (`rtp/reframe.rs`; Opus packets of 40-120 ms take their first frame's place
//! whole, those of 2.5-10 ms are joined into 20 ms ones). The leg's tick plays
//! it out (`mod.rs`).

use std::time::Instant;

use bond_codecs::opus_codec;
use bond_codecs::Codec;

use super::Leg;
use crate::ids::Ssrc;
use crate::rtp::reframe::{self, Reframer};
use crate::rtp::{RtpError, RtpPacket};
use crate::EngineError;

/// The longest G.711/G.722 packet taken from a peer (150 ms; `rtp/reframe.rs` cuts it up).
const MAX_REFRAMED: usize = 1200;

/// Whether a codec's packets of any length can be cut into 20 ms frames.
fn reframes(codec: Codec) -> bool {
    matches!(codec, Codec::Pcmu | Codec::Pcma | Codec::G722)
}

impl Leg {
    /// A received datagram. Bad packets are counted and refused, never a panic.
    pub fn handle_rtp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), EngineError> {
        let (packet, is_event) = self.accept(now, datagram)?;
        let header = &packet.header;
        let media: &[u8] = if is_event {
            self.handle_telephone_event(header.timestamp, packet.payload);
            &[] // the event's slot in the sequence plays as silence
        } else {
            packet.payload
        };
        let ssrc = Ssrc(header.ssrc);
        self.remote_ssrc = Some(header.ssrc);
        let opus = self.config.codec == Codec::Opus;
        let opus_samples = if opus && !is_event { opus_codec::packet_samples(media) } else { None };
        let short = opus_samples.filter(|&samples| opus_codec::is_short_packet(samples));
        if self.reframer.is_none() && !is_event {
            if reframes(self.config.codec) && media.len() != reframe::FRAME {
                self.reframer = Some(Box::default());
            } else if short.is_some() || opus_samples.is_some_and(|samples| samples > 960) {
                self.reframer = Some(Box::new((Reframer::opus(), Default::default())));
            }
        }
        if let Some((reframer, sequence)) = self.reframer.as_deref_mut() {
            let ext_seq = sequence.extend(header.ssrc, header.sequence_number);
            // A telephone-event carries no audio to cut (its frames are concealed).
            let frames = match is_event {
                true => Vec::new(),
                false if opus => match short {
                    Some(samples) => {
                        reframer.push_short_packet(header.ssrc, header.timestamp, media, samples as u32)
                    }
                    None => match opus_codec::split_short_frames(media) {
                        // Short frames that are not whole 20 ms (30 ms of 10 ms frames):
                        // each is gathered as a short packet of its own.
                        Some((parts, each)) => {
                            let mut frames = Vec::new();
                            for (k, part) in parts.iter().enumerate() {
                                let timestamp = header.timestamp.wrapping_add((k * each) as u32);
                                frames.extend(reframer.push_short_packet(
                                    header.ssrc,
                                    timestamp,
                                    part,
                                    each as u32,
                                ));
                            }
                            frames
                        }
                        // Any other packet that is not whole 20 ms frames takes one place, and is concealed.
                        None => reframer.push_packet(
                            header.ssrc,
                            header.timestamp,
                            media,
                            opus_codec::packet_frames(media).unwrap_or(1),
                        ),
                    },
                },
                false => reframer.push(header.ssrc, header.timestamp, media),
            };
            for frame in frames {
                if let crate::rtp::Inserted::Late =
                    self.playout.insert(now, ssrc, frame.seq, frame.timestamp, &frame.payload)
                {
                    self.late += 1;
                }
            }
            let arrival = self.rtp_clock(now);
            self.receive.record(ext_seq, header.timestamp, arrival, packet.payload.len());
            return Ok(());
        }
        match self.playout.insert(now, ssrc, header.sequence_number, header.timestamp, media) {
            crate::rtp::Inserted::Stored { ext_seq } => {
                let arrival = self.rtp_clock(now);
                self.receive.record(ext_seq, header.timestamp, arrival, packet.payload.len());
            }
            crate::rtp::Inserted::Late => self.late += 1,
        }
        Ok(())
    }

    /// Parse and check a datagram (its payload type, its size); true for a telephone-event.
    pub(super) fn accept<'d>(
        &mut self,
        now: Instant,
        datagram: &'d [u8],
    ) -> Result<(RtpPacket<'d>, bool), EngineError> {
        self.last_now = now;
        if self.is_ended() {
            return Err(EngineError::LegEnded(self.id));
        }
        let packet = match RtpPacket::parse(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.malformed += 1;
                return Err(e.into());
            }
        };
        let header = &packet.header;
        let is_event = self.config.telephone_event_pt.is_some_and(|pt| pt.get() == header.payload_type);
        if !is_event && header.payload_type != self.config.payload_type.get() {
            self.malformed += 1;
            return Err(RtpError::Header(format!("unexpected payload type {}", header.payload_type)).into());
        }
        let max =
            if reframes(self.config.codec) { MAX_REFRAMED } else { self.config.codec.max_payload_len() };
        if packet.payload.len() > max {
            self.malformed += 1;
            return Err(RtpError::TooLarge(packet.payload.len()).into());
        }
        self.last_media = now;
        Ok((packet, is_event))
    }
}
