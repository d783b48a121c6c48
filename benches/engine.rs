//! Cost of the media core per RTP packet: one echo leg receiving a packet and
//! running its 20 ms tick (jitter buffer, decode, DTMF tap, encode, packetize),
//! and a PCMU bridge of two SIP legs with and without passthrough (a packet into
//! one leg, time moving on, what the other sends drained). Conferences: N PCMU
//! legs mixed by one conference, against the same legs bridged in pairs on the
//! decoding path, each leg fed a packet every 20 ms: the difference is the mixer's.
//!
//! Run: `cargo bench -p bond-benches --bench engine`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bond_codecs::{g711, Codec};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::sim::epoch;
use bond_media_engine::{Engine, LegId, PartyRole};
use criterion::{criterion_group, criterion_main, Criterion};

fn echo_leg_packet(c: &mut Criterion) {
    for (name, dtmf) in
        [("engine/pcmu_echo_leg_packet_in_tick_out", true), ("engine/pcmu_echo_leg_no_dtmf_tap", false)]
    {
        let start = epoch();
        let mut engine = Engine::new(1);
        let mut config = engine.leg_config(Codec::Pcmu);
        config.media_timeout = None;
        config.detect_inband_dtmf = dtmf;
        let leg = engine.add_leg(start, config, MediaSource::Echo).expect("leg");
        packets_in_ticks_out(c, name, engine, leg, start);
    }
}

fn bridged_packet(c: &mut Criterion) {
    for (name, passthrough) in
        [("engine/pcmu_bridge_passthrough_packet", true), ("engine/pcmu_bridge_decoded_packet", false)]
    {
        let start = epoch();
        let mut engine = Engine::new(2);
        let legs: Vec<_> = (0..2)
            .map(|_| {
                let mut config = engine.leg_config(Codec::Pcmu);
                config.media_timeout = None;
                config.send_events = true;
                config.passthrough = passthrough;
                engine.add_leg(start, config, MediaSource::Silence).expect("leg")
            })
            .collect();
        engine.bridge(legs[0], legs[1]).expect("bridge");
        assert_eq!(engine.is_passthrough(legs[0]), passthrough);
        packets_in_ticks_out(c, name, engine, legs[0], start);
    }
}

/// A 1 kHz PCMU packet into `leg`, 20 ms of time, every output drained.
fn packets_in_ticks_out(c: &mut Criterion, name: &str, mut engine: Engine, leg: LegId, start: Instant) {
    let mut packetizer = Packetizer::new(Ssrc(1), 0, 0);
    let payload = pcmu_tone();
    let mut packet = [0u8; 200];
    let mut now = start;
    c.bench_function(name, |b| {
        b.iter(|| {
            let n = packetizer
                .write(PayloadType::new(0).expect("PT 0"), &payload, 160, &mut packet)
                .expect("fits");
            engine.handle_receive(now, leg, black_box(&packet[..n])).expect("valid RTP");
            now += Duration::from_millis(20);
            engine.handle_timeout(now);
            while let Some(out) = engine.poll_output() {
                black_box(out);
            }
        })
    });
}

/// N PCMU legs, each fed a 1 kHz packet, then 20 ms of time with every output
/// drained: in one conference, or bridged in pairs (decoded, as the
/// conference's legs must be). Criterion reports the time per 20 ms for all N.
fn conference_tick(c: &mut Criterion) {
    for parties in [10, 100] {
        for conference in [true, false] {
            let start = epoch();
            let mut engine = Engine::new(3);
            let legs: Vec<LegId> = (0..parties)
                .map(|_| {
                    let mut config = engine.leg_config(Codec::Pcmu);
                    config.media_timeout = None;
                    config.passthrough = false;
                    engine.add_leg(start, config, MediaSource::Silence).expect("leg")
                })
                .collect();
            if conference {
                let id = engine.create_conference(start);
                for &leg in &legs {
                    engine.join_conference(id, leg, PartyRole::Speaker).expect("join");
                }
            } else {
                for pair in legs.chunks(2) {
                    engine.bridge(pair[0], pair[1]).expect("bridge");
                }
            }
            let name = match conference {
                true => format!("engine/pcmu_conference_{parties}_parties_20ms"),
                false => format!("engine/pcmu_decoded_bridges_{parties}_legs_20ms"),
            };
            all_legs_for_20ms(c, &name, engine, &legs, start);
        }
    }
}

fn all_legs_for_20ms(c: &mut Criterion, name: &str, mut engine: Engine, legs: &[LegId], start: Instant) {
    let mut packetizers: Vec<Packetizer> =
        (0..legs.len()).map(|i| Packetizer::new(Ssrc(i as u32), 0, 0)).collect();
    let payload = pcmu_tone();
    let mut packet = [0u8; 200];
    let mut now = start;
    c.bench_function(name, |b| {
        b.iter(|| {
            for (leg, packetizer) in legs.iter().zip(&mut packetizers) {
                let n = packetizer
                    .write(PayloadType::new(0).expect("PT 0"), &payload, 160, &mut packet)
                    .expect("fits");
                engine.handle_receive(now, *leg, black_box(&packet[..n])).expect("valid RTP");
            }
            now += Duration::from_millis(20);
            engine.handle_timeout(now);
            while let Some(out) = engine.poll_output() {
                black_box(out);
            }
        })
    });
}

/// 20 ms of 1 kHz as PCMU.
fn pcmu_tone() -> [u8; 160] {
    let mut payload = [0u8; 160];
    g711::ulaw_encode_slice(&bond_codecs::signals::sine(1000.0, 8000, 160, 8000.0), &mut payload);
    payload
}

criterion_group!(benches, echo_leg_packet, bridged_packet, conference_tick);
criterion_main!(benches);
