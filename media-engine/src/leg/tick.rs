//! A leg's 20 ms tick: play out a frame of what it received, send a frame of
//! what it says, and hand both to a recording. Ticks run late are caught up.

use std::time::{Duration, Instant};

use bond_codecs::dtmf::{DtmfDetector, DtmfEvent};
use bond_codecs::Codec;

use crate::event::{DtmfSource, EngineEvent};

use super::{
    packet_room, samples_8k, transmit_written, Leg, LegOutput, LegTimer, Playout, RecordTap, SourceState,
    PTIME,
};

/// How far behind a leg's ticks may run and still be caught up one by one: a
/// burst of at most three extra frames, and a driver that cannot keep up sheds
/// ticks rather than running ever later.
const MAX_CATCH_UP: Duration = Duration::from_millis(60);

impl Leg {
    /// The tick that was due at `due`, run at `now`. Ticks run late (a busy
    /// driver) each still run, one after the other, so the frames sent keep
    /// their timestamps' time and the playout buffer its depth; past
    /// [`MAX_CATCH_UP`] the leg jumps to the current tick and the time between
    /// passes unsent (a gap in the timestamps rather than a burst of frames).
    pub(super) fn tick(&mut self, now: Instant, due: Instant) {
        let restart = std::mem::take(&mut self.tick_restarts);
        let mut scheduled = self.tick_base(if restart { now } else { due });
        if now.saturating_duration_since(scheduled) > MAX_CATCH_UP {
            let current = self.tick_base(now);
            let skipped = ((current - scheduled).as_nanos() / PTIME.as_nanos()) as u32;
            let sent = self.frames.sent_mut();
            sent.timestamp += u64::from(skipped) * sent.rate().frame_samples() as u64;
            self.pass_unsent(skipped);
            scheduled = current;
        }
        self.timers.set(LegTimer::Tick, scheduled + PTIME);
        let heard_something = self.receive_tick(now);
        self.send_tick();
        if self.recording != RecordTap::Off {
            let at = samples_8k(scheduled - self.epoch);
            let mut inbound = self.frames.heard().clone();
            if !heard_something {
                inbound.fill_silence();
            }
            self.outputs.push_back(LegOutput::Recorded { at, inbound, outbound: self.frames.sent().clone() });
        }
    }

    /// The last instant on the leg's 20 ms grid at or before `at`.
    fn tick_base(&self, at: Instant) -> Instant {
        let elapsed = at.saturating_duration_since(self.epoch);
        let ticks = elapsed.as_nanos() / PTIME.as_nanos();
        self.epoch + PTIME * ticks as u32
    }

    /// Play out this tick's frame; false while the playout buffer is still waiting.
    fn receive_tick(&mut self, now: Instant) -> bool {
        let step = self.config.codec.rtp_clock_rate() / 50;
        let decoded = match self.playout.pop(now) {
            Playout::Waiting => return false,
            // The next 20 ms of an Opus packet longer than that.
            Playout::Frame { payload: [], timestamp }
                if self.decoder.rest_frames() > 0 && timestamp == self.rest_timestamp =>
            {
                self.rest_timestamp = timestamp.wrapping_add(step);
                self.decoder.decode_rest(self.frames.heard_mut())
            }
            // The place of a telephone-event; for long Opus packets, one whose start was not played.
            Playout::Frame { payload: [], .. }
                if self.config.codec != Codec::Opus || self.reframer.is_none() =>
            {
                self.frames.heard_mut().fill_silence();
                Ok(())
            }
            Playout::Frame { payload, timestamp } if !payload.is_empty() => {
                self.rest_timestamp = timestamp.wrapping_add(step);
                self.decoder.decode(payload, self.frames.heard_mut())
            }
            Playout::Frame { .. } | Playout::Missing => {
                self.concealed += 1;
                self.decoder.conceal(self.frames.heard_mut())
            }
        };
        if decoded.is_err() {
            // A payload the codec refuses plays as concealment.
            self.concealed += 1;
            if self.decoder.conceal(self.frames.heard_mut()).is_err() {
                self.frames.heard_mut().fill_silence();
            }
        }
        self.played += 1;
        let heard = self.frames.heard_mut();
        heard.timestamp += heard.rate().frame_samples() as u64;
        self.source.heard(self.frames.heard());
        if self.config.detect_inband_dtmf {
            let rate = self.rate().hz();
            let detector = self.dtmf.get_or_insert_with(|| Box::new(DtmfDetector::new(rate)));
            detector.push(self.frames.heard().samples());
            while let Some(event) = detector.poll_event() {
                if let DtmfEvent::Started { digit, .. } = event {
                    self.outputs.push_back(LegOutput::Event(EngineEvent::DtmfReceived {
                        leg: self.id,
                        digit,
                        source: DtmfSource::InBand,
                    }));
                }
            }
        }
        if self.config.emit_heard {
            self.outputs.push_back(LegOutput::Heard);
        }
        true
    }

    fn send_tick(&mut self) {
        // Only the bridged peer's audio this tick (no clip, overlay or whisper over
        // it): nothing above the peer's band to code. A failed CTL leaves the band wide.
        let band = match (&self.source, self.player_is_idle()) {
            (SourceState::External(_), true) => self.peer_band.unwrap_or(self.rate()),
            _ => self.rate(),
        };
        let _ = self.encoder.limit_band(band);
        self.source.fill(self.frames.sent_mut());
        if let Some(player) = self.player.as_mut().filter(|p| !p.is_idle()) {
            player.fill(self.frames.sent_mut());
            player.drain_events(self.id, &mut self.outputs);
        }
        self.dtmf_out.fill(self.frames.sent_mut());
        let sent = self.frames.sent_mut();
        sent.timestamp += sent.rate().frame_samples() as u64;
        let clock = self.config.codec.rtp_clock_rate();
        let duration = clock / 50;
        if !self.sending {
            self.pass_unsent(1);
            return;
        }
        if !self.events_out.is_idle() {
            self.send_packed_rest();
        }
        let now = self.packetizer.next_timestamp();
        let event = self.events_pt().and_then(|pt| Some((pt, self.events_out.next(now, duration, clock)?)));
        if let Some((pt, event)) = event {
            let tx = packet_room(&mut self.tx, event.payload.len());
            let written = self.packetizer.write_at(pt, &event.payload, event.timestamp, event.marker, tx);
            transmit_written(&mut self.tx, &mut self.outputs, written);
            self.packetizer.skip(duration);
        } else {
            self.encode_and_send(duration);
        }
    }

    /// `ticks` of the leg's time pass unsent; audio packed but not sent yet is
    /// dropped with them.
    fn pass_unsent(&mut self, ticks: u32) {
        let waiting = self.packing.as_mut().map_or(0, |p| p.discard());
        self.packetizer.skip(self.config.codec.rtp_clock_rate() / 50 * ticks + waiting);
    }
}
