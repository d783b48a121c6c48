//! Cost of the media core per RTP packet: one echo leg receiving a packet and
//! running its 20 ms tick (jitter buffer, decode, DTMF tap, encode, packetize),
//! and a PCMU bridge of two SIP legs with and without passthrough (a packet into
//! one leg, time moving on, what the other sends drained).
//!
//! Run: `cargo bench -p bond-benches --bench engine`

use std::hint::black_box;
use std::time::{Duration, Instant};

use bond_codecs::{g711, Codec};
use bond_media_engine::ids::{PayloadType, Ssrc};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::sim::epoch;
use bond_media_engine::{Engine, LegId};
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
    let mut payload = [0u8; 160];
    g711::ulaw_encode_slice(&bond_codecs::signals::sine(1000.0, 8000, 160, 8000.0), &mut payload);
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

criterion_group!(benches, echo_leg_packet, bridged_packet);
criterion_main!(benches);
