//! Passthrough directions handed to the kernel (`engine/offload.rs`), in the
//! I/O-free engine: the offer after the first forwarded packet carries the
//! rewrite the sending leg took; what the kernel reports forwarded counts on
//! both legs, so the media timeout waits and the sending leg's own packets
//! follow the kernel's when the bridge stops passing through; anything that
//! needs the packets ends the offer.

use std::sync::Arc;
use std::time::Duration;

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{Clip, RecordTap};
use bond_media_engine::sim::epoch;
use bond_media_engine::{
    DtmfPassing, Engine, EngineEvent, EngineOutput, HangupCause, LegId, Offload, Relayed,
};

use super::sim_passthrough::{bridged, echoed, Peer};

const MS20: Duration = Duration::from_millis(20);

/// Drain the engine: what `leg` transmitted (seq, timestamp, ssrc), the offers and ends.
#[derive(Debug, Default)]
struct Drained {
    sent: Vec<(u16, u32, u32)>,
    offered: Vec<Offload>,
    ended: Vec<LegId>,
    timed_out: Vec<LegId>,
}

fn drain(engine: &mut Engine, leg: LegId) -> Drained {
    let mut out = Drained::default();
    while let Some(output) = engine.poll_output() {
        match output {
            EngineOutput::Transmit { leg: l, data } if l == leg => {
                let p = bond_media_engine::rtp::RtpPacket::parse(&data).unwrap();
                out.sent.push((p.header.sequence_number, p.header.timestamp, p.header.ssrc));
            }
            EngineOutput::Offload(offload) => out.offered.push(offload),
            EngineOutput::OffloadEnded { from } => out.ended.push(from),
            EngineOutput::Event(EngineEvent::LegEnded { leg, cause: HangupCause::MediaTimeout, .. }) => {
                out.timed_out.push(leg)
            }
            _ => {}
        }
    }
    out
}

/// A bridge of two PCMU legs with offloading on, and `a`'s first packet passed to `b`.
fn offered() -> (Engine, LegId, LegId, Offload, (u16, u32, u32)) {
    let mut engine = Engine::new(3);
    engine.set_offloading(true);
    let (a, b) = bridged(&mut engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    drain(&mut engine, b);
    engine.handle_receive(epoch(), a, &Peer::new().packet(0)).unwrap();
    let out = drain(&mut engine, b);
    assert_eq!(out.sent.len(), 1, "the first packet crosses in userspace");
    assert_eq!(out.offered.len(), 1, "and the direction is offered: {out:?}");
    (engine, a, b, out.offered[0], out.sent[0])
}

/// The offer for `Peer`'s PCMU stream (from 500 / 90,000, SSRC 0xCAFE) whose
/// first packet `to` sent stamped (seq, timestamp, ssrc).
fn rewrite(from: LegId, to: LegId, (seq, ts, ssrc): (u16, u32, u32)) -> Offload {
    Offload {
        from,
        to,
        in_pt: 0,
        out_pt: 0,
        in_ssrc: 0xCAFE,
        out_ssrc: ssrc,
        seq_offset: seq.wrapping_sub(500),
        ts_offset: ts.wrapping_sub(90_000),
        clock_rate: 8000,
    }
}

#[test]
fn a_direction_is_offered_after_its_first_packet_with_the_rewrite_the_sending_leg_took() {
    let (mut engine, a, b, offload, (seq, ts, ssrc)) = offered();
    assert_eq!(offload, rewrite(a, b, (seq, ts, ssrc)));
    // The next packet (one the kernel missed, say) is rewritten the same way: no new offer.
    let mut peer = Peer::new();
    peer.packet(0);
    engine.handle_receive(epoch() + MS20, a, &peer.packet(1)).unwrap();
    let out = drain(&mut engine, b);
    assert_eq!(out.sent, vec![(seq.wrapping_add(1), ts.wrapping_add(160), ssrc)]);
    assert!(out.offered.is_empty() && out.ended.is_empty(), "{out:?}");
}

#[test]
fn without_offloading_nothing_is_offered() {
    let mut engine = Engine::new(3);
    let (a, b) = bridged(&mut engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    engine.handle_receive(epoch(), a, &Peer::new().packet(0)).unwrap();
    let out = drain(&mut engine, b);
    assert_eq!(out.sent.len(), 1);
    assert!(out.offered.is_empty(), "{out:?}");
}

#[test]
fn what_the_kernel_forwarded_counts_on_both_legs_and_the_stream_goes_on_after_it() {
    let (mut engine, a, b, offload, (seq, ts, ssrc)) = offered();
    // The kernel forwarded 99 more packets; the newest it wrote is the 100th.
    let last = (seq.wrapping_add(99), ts.wrapping_add(99 * 160));
    // It saw the stream's jitter at 40 clock units (5 ms at 8 kHz), scaled by 16.
    let relayed = Relayed { packets: 99, bytes: 99 * 160, last_sent: Some(last), jitter_q4: Some(40 * 16) };
    engine.handle_offloaded(epoch() + MS20 * 99, &offload, relayed);
    assert_eq!(engine.stats(a).unwrap().packets_received, 100);
    assert_eq!(engine.stats(a).unwrap().jitter_ms, 5.0, "the kernel's jitter is the leg's");
    assert_eq!(engine.stats(a).unwrap().packets_lost, 0, "the newest sequence number came with them");
    assert_eq!(engine.stats(b).unwrap().packets_sent, 100);

    // A clip for b takes the bridge off passthrough: the route is ended, and
    // b's own packets follow on from the kernel's newest.
    let beep: Vec<i16> = bond_codecs::signals::sine(440.0, 8000, 1600, 8000.0);
    let clip =
        Clip { id: 1, rate: SampleRate::Hz8000, samples: Arc::from(beep), plays: Some(1), duck: false };
    engine.play(b, clip, false).unwrap();
    let out = drain(&mut engine, b);
    assert_eq!(out.ended, vec![a], "the direction into b ends: {out:?}");
    let at = epoch() + MS20 * 100;
    engine.handle_timeout(at);
    let out = drain(&mut engine, b);
    let &(next_seq, next_ts, next_ssrc) = out.sent.first().expect("b ticks again");
    assert_eq!(next_ssrc, ssrc);
    assert_eq!(next_seq, last.0.wrapping_add(1), "no sequence number is used twice");
    assert!(next_ts.wrapping_sub(last.1) as i32 >= 160, "time goes forward");
}

#[test]
fn a_peer_the_kernel_forwards_for_does_not_time_out_and_one_that_stops_does() {
    let mut engine = Engine::new(4);
    engine.set_offloading(true);
    let (a, b) = bridged(&mut engine, Codec::Pcmu, Codec::Pcmu, DtmfPassing::Both);
    engine.handle_receive(epoch(), a, &Peer::new().packet(0)).unwrap();
    engine.handle_receive(epoch(), b, &Peer::new().packet(0)).unwrap();
    let offloads = drain(&mut engine, b).offered;
    assert_eq!(offloads.len(), 2, "both directions: {offloads:?}");
    // Reports every second for 40 s, past the 30 s media timeout; then a's stop.
    for second in 1..=40u32 {
        let at = epoch() + Duration::from_secs(second.into());
        for offload in &offloads {
            if offload.from == b || second <= 10 {
                let relayed = Relayed { packets: 50, bytes: 50 * 160, ..Relayed::default() };
                engine.handle_offloaded(at, offload, relayed);
            }
        }
        while engine.poll_timeout().is_some_and(|due| due <= at) {
            engine.handle_timeout(at);
        }
        let timed_out = drain(&mut engine, b).timed_out;
        match second {
            ..40 => assert!(timed_out.is_empty(), "media flows at {second} s"),
            _ => assert_eq!(timed_out, vec![a], "30 s after a's last report"),
        }
    }
}

#[test]
fn a_recording_that_takes_packets_ends_the_offer_though_the_bridge_still_passes_through() {
    let (mut engine, a, b, _, _) = offered();
    engine.set_recording(b, RecordTap::FramesOrPackets).unwrap();
    assert!(engine.is_passthrough(a) && engine.is_passthrough(b));
    let out = drain(&mut engine, b);
    assert_eq!(out.ended, vec![a], "the recording needs the packets: {out:?}");
    engine.set_recording(b, RecordTap::Off).unwrap();
    engine
        .handle_receive(epoch() + MS20, a, &{
            let mut peer = Peer::new();
            peer.packet(0);
            peer.packet(1)
        })
        .unwrap();
    assert_eq!(drain(&mut engine, b).offered.len(), 1, "offered again once it stopped");
}

#[test]
fn a_leg_bridged_with_a_reflecting_echo_offers_its_own_direction_back_to_its_peer() {
    let mut engine = Engine::new(5);
    engine.set_offloading(true);
    let (leg, echo) = echoed(&mut engine, true);
    drain(&mut engine, leg);
    engine.handle_receive(epoch(), leg, &Peer::new().packet(0)).unwrap();
    let out = drain(&mut engine, leg);
    assert_eq!(out.sent.len(), 1, "reflected in userspace first");
    assert_eq!(out.offered, vec![rewrite(leg, leg, out.sent[0])]);
    // The echo records: it needs the audio, so the leg decodes and the route goes.
    engine.set_recording(echo, RecordTap::Frames).unwrap();
    assert_eq!(drain(&mut engine, leg).ended, vec![leg]);
}
