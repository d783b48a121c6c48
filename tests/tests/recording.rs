//! Recording taps: each direction of a leg's audio, paused and resumed in
//! simulated time; and real WAV files from the runtime's writer task.

use std::time::Duration;

use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::runtime::{self, PortRange, RecordChannels, RecordingSpec, RuntimeConfig};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_tests::tone_share;

#[test]
fn a_recorded_leg_gives_what_its_party_said_and_what_it_heard() {
    let mut net = SimNetwork::new(20);
    let now = net.now();
    let phone_cfg = net.engine.leg_config(Codec::Pcmu);
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }).unwrap();
    let bond_cfg = net.engine.leg_config(Codec::Pcmu);
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    let agent =
        net.engine.add_local_leg(now, SampleRate::Hz8000, MediaSource::Tone { hz: 500.0, dbm0: -10.0 });
    net.engine.bridge(bond, agent).unwrap();
    net.engine.set_recording(bond, true).unwrap();
    net.run_for(Duration::from_secs(2));
    net.engine.set_recording(bond, false).unwrap();
    net.run_for(Duration::from_secs(1));
    net.engine.set_recording(bond, true).unwrap();
    net.run_for(Duration::from_secs(1));

    let frames = net.recorded(bond);
    assert_eq!(frames.len(), 100 + 1 + 50, "one pair per tick while recording, none while paused");
    let inbound: Vec<i16> = frames[10..].iter().flat_map(|(i, _)| i.samples().to_vec()).collect();
    let outbound: Vec<i16> = frames[10..].iter().flat_map(|(_, o)| o.samples().to_vec()).collect();
    assert!(tone_share(&inbound, 1000.0, 8000) > 0.9, "inbound is the caller");
    assert!(tone_share(&outbound, 500.0, 8000) > 0.9, "outbound is what the bridge sent the caller");
}

#[tokio::test]
async fn the_runtime_writes_dual_channel_wav_at_the_asked_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _task) = runtime::spawn(RuntimeConfig {
        bind_ip: "127.0.0.1".parse().unwrap(),
        rtp_ports: PortRange::new(41300, 41310).unwrap(),
        seed: 5,
        webrtc: None,
        opus: Default::default(),
        shards: 0,
    });
    let customer = engine
        .create_local_leg(SampleRate::Hz8000, MediaSource::Tone { hz: 700.0, dbm0: -10.0 })
        .await
        .unwrap();
    let agent = engine
        .create_local_leg(SampleRate::Hz16000, MediaSource::Tone { hz: 1100.0, dbm0: -10.0 })
        .await
        .unwrap();
    engine.bridge(customer, agent, bond_media_engine::DtmfPassing::Both).await.unwrap();
    let path = dir.path().join("rec/call.wav");
    let spec =
        RecordingSpec { path: path.clone(), channels: RecordChannels::Dual, rate: SampleRate::Hz16000 };
    engine.start_recording(customer, spec.clone()).await.unwrap();
    assert!(engine.start_recording(customer, spec).await.is_err(), "one recording per leg");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let summary = engine.stop_recording(customer).await.unwrap().unwrap();
    assert_eq!(summary.path, path);
    assert_eq!(summary.frames_dropped, 0);

    let mut reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (2, 16000, 16));
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let seconds = left.len() as f64 / 16000.0;
    // About the second it ran (a loaded machine can make the engine skip ticks, never add them).
    assert!((0.5..1.1).contains(&seconds), "{seconds} s");
    assert!((seconds * 1000.0 - summary.duration_ms as f64).abs() < 1.0);
    assert!(tone_share(&left[1600..], 700.0, 16000) > 0.9, "left: the customer");
    assert!(tone_share(&right[1600..], 1100.0, 16000) > 0.9, "right: the agent");
    assert!(engine.stop_recording(customer).await.unwrap().is_none());
    assert!(!dir.path().join("rec/call.wav.partial").exists());
}
