//! Passthrough: while two bridged legs share a codec and nothing needs their
//! audio (no recording, detector, playback, mute, hold or digits to play), a
//! packet one leg receives leaves the other as it arrives, payload unchanged:
//! no playout buffer, no decoding or encoding, and neither leg ticks.
//!
//! The receiving leg still checks the packet, counts it and reports RFC 4733
//! digits. The sending leg writes it onto its own stream: its SSRC, with the
//! sequence number and timestamp moved by a fixed offset taken at the first
//! packet (and again when the incoming SSRC changes), so loss, reordering and
//! timing reach the far peer as they came; events go on its own telephone-event
//! payload type. The engine decides when a bridge passes through; a leg leaving
//! it ticks again from where its stream stood, its playout buffer starting afresh.
//!
//! A G.711, G.722 or Opus bridge being recorded may still pass through (`packet_record.rs`):
//! the leg then also copies each audio packet, in and out, for the recording.

use std::time::Instant;

use bond_codecs::Codec;

use super::packet_record::PacketRecord;
use super::{packet_room, samples_8k, transmit_written, Leg, LegOutput, LegTimer, RecordTap};
use crate::EngineError;

/// A received packet on its way to the bridge peer.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    /// An RFC 4733 telephone-event, not audio.
    pub event: bool,
    pub marker: bool,
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload: &'a [u8],
}

impl Forwarded<'_> {
    fn with_payload<'p>(&self, payload: &'p [u8]) -> Forwarded<'p> {
        let Self { event, marker, ssrc, seq, timestamp, .. } = *self;
        Forwarded { event, marker, ssrc, seq, timestamp, payload }
    }
}

/// Received packets kept until the engine forwards them, when they arrive
/// inside a call that cannot forward them itself (a WebRTC leg's packets come
/// out of str0m). Its buffers are reused: nothing is allocated per packet once
/// they have grown.
#[derive(Debug, Default)]
pub struct ForwardQueue {
    /// Each packet, its payload as a length in `payloads`.
    packets: Vec<Forwarded<'static>>,
    lengths: Vec<usize>,
    payloads: Vec<u8>,
}

impl ForwardQueue {
    pub fn push(&mut self, packet: &Forwarded<'_>) {
        self.packets.push(packet.with_payload(&[]));
        self.lengths.push(packet.payload.len());
        self.payloads.extend_from_slice(packet.payload);
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// The packets in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = Forwarded<'_>> {
        let mut start = 0;
        self.packets.iter().zip(&self.lengths).map(move |(packet, &len)| {
            let payload = &self.payloads[start..start + len];
            start += len;
            packet.with_payload(payload)
        })
    }

    pub fn clear(&mut self) {
        self.packets.clear();
        self.lengths.clear();
        self.payloads.clear();
    }
}

/// How an incoming stream's numbering maps onto the sending leg's stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rebase {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

impl Leg {
    /// Whether this leg allows passthrough right now: configured for it, its
    /// digits arriving as RFC 4733 events or, with `digits_signalled`, beside the
    /// audio (a carrier stream's `dtmf` frames), so no in-band detection is needed;
    /// nothing of its own to play, and no recording that needs decoded frames.
    pub fn can_pass_through(&self, digits_signalled: bool) -> bool {
        let recording_allows = match self.recording {
            RecordTap::Off => true,
            RecordTap::Frames => false,
            // The writer decodes every codec but L16 (a stream's raw audio).
            RecordTap::FramesOrPackets => !matches!(self.config.codec, Codec::L16 { .. }),
        };
        self.config.passthrough
            && (digits_signalled || self.events_pt().is_some())
            && recording_allows
            && self.player_is_idle()
            && self.dtmf_out.is_idle()
            && self.events_out.is_idle()
    }

    pub fn is_passthrough(&self) -> bool {
        self.passthrough
    }

    /// Start or stop passing packets through (the engine does this for both legs of a bridge).
    pub fn set_passthrough(&mut self, on: bool) {
        if on == self.passthrough {
            return;
        }
        self.passthrough = on;
        self.playout.reset();
        if !on {
            self.hand_over_packet_record();
        }
        if on {
            self.send_packed_rest();
            // Nothing is decoded while packets pass: the frame kept for
            // concealment, the in-band DTMF detector and the tick's frames
            // give their room back, as the playout buffer did.
            self.decoder.forget_last();
            self.dtmf = None;
            self.frames.park();
            self.timers.stop(LegTimer::Tick);
            self.rebase = None;
        } else {
            // Due at once: the tick realigns itself to the leg's 20 ms grid.
            self.timers.set(LegTimer::Tick, self.last_now);
            self.tick_restarts = true;
        }
    }

    /// A received datagram, checked and counted, for the peer to [`forward`](Self::forward).
    pub fn relay_rtp<'d>(&mut self, now: Instant, datagram: &'d [u8]) -> Result<Forwarded<'d>, EngineError> {
        let (packet, event) = self.accept(now, datagram)?;
        let header = &packet.header;
        if event {
            self.handle_telephone_event(header.timestamp, packet.payload);
        } else {
            // Passed on is played, as far as a carrier stream's marks go.
            self.played += 1;
            self.record_packet(false, now, header.ssrc, header.timestamp, packet.payload);
        }
        let ext_seq = self.sequence.extend(header.ssrc, header.sequence_number);
        let arrival = self.rtp_clock(now);
        self.receive.record(ext_seq, header.timestamp, arrival, packet.payload.len());
        Ok(Forwarded {
            event,
            marker: header.marker,
            ssrc: header.ssrc,
            seq: header.sequence_number,
            timestamp: header.timestamp,
            payload: packet.payload,
        })
    }

    /// Send the bridge peer's packet to this leg's peer, on this leg's stream.
    pub fn forward(&mut self, now: Instant, packet: &Forwarded<'_>) {
        self.last_now = now;
        if self.is_ended() || !self.sending {
            return;
        }
        let payload_type = if packet.event {
            match self.events_pt() {
                Some(pt) => pt,
                None => return,
            }
        } else {
            self.config.payload_type
        };
        let mut marker = packet.marker;
        let rebase = match self.rebase {
            Some(r) if r.ssrc == packet.ssrc => r,
            _ => {
                marker = true;
                let r = Rebase {
                    ssrc: packet.ssrc,
                    seq: self.packetizer.next_seq().wrapping_sub(packet.seq),
                    timestamp: self.packetizer.next_timestamp().wrapping_sub(packet.timestamp),
                };
                self.rebase = Some(r);
                r
            }
        };
        let duration = if packet.event { 0 } else { self.config.codec.rtp_clock_rate() / 50 };
        let timestamp = packet.timestamp.wrapping_add(rebase.timestamp);
        let written = self.packetizer.write_relayed(
            payload_type,
            packet.payload,
            packet.seq.wrapping_add(rebase.seq),
            timestamp,
            duration,
            marker,
            packet_room(&mut self.tx, packet.payload.len()),
        );
        if transmit_written(&mut self.tx, &mut self.outputs, written) && !packet.event {
            self.record_packet(true, now, self.config.ssrc.0, timestamp, packet.payload);
        }
    }

    /// How this leg writes the incoming stream it forwards onto its own:
    /// that stream's SSRC and the sequence number and timestamp offsets.
    pub fn rebase(&self) -> Option<(u32, u16, u32)> {
        self.rebase.map(|r| (r.ssrc, r.seq, r.timestamp))
    }

    /// Whether the leg hands the packets it passes on to a recording.
    pub fn records_packets(&self) -> bool {
        self.recording != RecordTap::Off
    }

    /// Packets of the peer's stream `ssrc` the kernel passed on for this leg
    /// (see `engine/offload.rs`): counted as received, the newest `highest`,
    /// and the media timeout put off.
    pub fn credit_received(
        &mut self,
        now: Instant,
        packets: u64,
        bytes: u64,
        highest: Option<(u32, u16)>,
        jitter_q4: Option<u32>,
    ) {
        self.last_now = now;
        if packets == 0 {
            return;
        }
        self.last_media = now;
        self.played += packets;
        let highest = highest.map(|(ssrc, seq)| self.sequence.extend(ssrc, seq));
        self.receive.credit(packets, bytes, highest, jitter_q4);
    }

    /// Packets the kernel sent on this leg's stream, the newest stamped `last`:
    /// counted as sent, and what the leg writes next follows on from them.
    pub fn credit_sent(&mut self, packets: u64, bytes: u64, last: Option<(u16, u32)>) {
        let duration = self.config.codec.rtp_clock_rate() / 50;
        self.packetizer.credit(packets, bytes, last, duration);
    }

    /// Copy a packet that crossed the leg for its recording, while one wants packets.
    fn record_packet(&mut self, outbound: bool, now: Instant, ssrc: u32, timestamp: u32, payload: &[u8]) {
        if !self.passthrough || self.recording != RecordTap::FramesOrPackets {
            return;
        }
        let arrival = samples_8k(now.saturating_duration_since(self.epoch));
        let record = self.packet_record.get_or_insert_with(|| Box::new(PacketRecord::new(self.config.codec)));
        if let Some(batch) = record.add(outbound, arrival, ssrc, timestamp, payload) {
            self.outputs.push_back(LegOutput::RecordedPackets(Box::new(batch)));
        }
    }

    /// Hand the recording what packets it has not had yet (leaving passthrough, stopping, ending).
    pub(super) fn hand_over_packet_record(&mut self) {
        if let Some(batch) = self.packet_record.take().and_then(|mut record| record.take()) {
            self.outputs.push_back(LegOutput::RecordedPackets(Box::new(batch)));
        }
    }
}
