//! Recording taps: each direction of a leg's audio, paused and resumed in
//! simulated time; real WAV files from the runtime's writer task; and forks,
//! the same tap handed to a consumer (a stream out) beside a recording.

use std::time::Duration;

use bond_codecs::signals::Oscillator;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::ids::Ssrc;
use bond_media_engine::leg::{MediaSource, RecordTap, RtpMedia};
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::runtime::{
    self, LegSpec, PortRange, RecordChannels, RecordingSpec, RuntimeConfig, RuntimeMetrics,
};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::DtmfPassing;
use bond_tests::{blocks_without_tone, tone_share};

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
    net.engine.set_recording(bond, RecordTap::Frames).unwrap();
    net.run_for(Duration::from_secs(2));
    net.engine.set_recording(bond, RecordTap::Off).unwrap();
    net.run_for(Duration::from_secs(1));
    net.engine.set_recording(bond, RecordTap::Frames).unwrap();
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
    let (engine, _task) = runtime::spawn(config(41300));
    let customer = bridged_tones(&engine).await;
    let path = dir.path().join("rec/call.wav");
    let spec =
        RecordingSpec { path: path.clone(), channels: RecordChannels::Dual, rate: SampleRate::Hz16000 };
    engine.start_recording(customer, spec.clone()).await.unwrap();
    assert!(engine.start_recording(customer, spec).await.is_err(), "one recording per leg");
    tokio::time::sleep(Duration::from_millis(2000)).await;
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
    // About the two seconds it ran (a loaded machine can make the engine skip ticks, never add them).
    assert!((1.0..2.1).contains(&seconds), "{seconds} s");
    assert!((seconds * 1000.0 - summary.duration_ms as f64).abs() < 1.0);
    // A loaded machine may skip a few ticks; each breaks at most one block of the 38.
    let (missing, blocks) = blocks_without_tone(&left[1600..], 700.0, 16000);
    assert!(missing * 10 <= blocks, "left: the customer is missing from {missing} of {blocks} blocks");
    let (missing, blocks) = blocks_without_tone(&right[1600..], 1100.0, 16000);
    assert!(missing * 10 <= blocks, "right: the agent is missing from {missing} of {blocks} blocks");
    assert!(engine.stop_recording(customer).await.unwrap().is_none());
    assert!(!dir.path().join("rec/call.wav.partial").exists());
}

#[tokio::test]
async fn a_recording_whose_file_cannot_be_created_fails_and_the_leg_can_be_recorded_again() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _task) = runtime::spawn(config(41360));
    let customer = bridged_tones(&engine).await;
    // Its directory cannot be made: a file stands where it would go.
    std::fs::write(dir.path().join("taken"), b"x").unwrap();
    let path = dir.path().join("taken/call.wav");
    let spec = RecordingSpec { path, channels: RecordChannels::Dual, rate: SampleRate::Hz8000 };
    let error = engine.start_recording(customer, spec).await.unwrap_err();
    assert!(error.to_string().contains("taken"), "{error}");

    let path = dir.path().join("call.wav");
    let spec = RecordingSpec { path: path.clone(), channels: RecordChannels::Dual, rate: SampleRate::Hz8000 };
    engine.start_recording(customer, spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let summary = engine.stop_recording(customer).await.unwrap().unwrap();
    assert_eq!(summary.path, path);
    assert!(hound::WavReader::open(&path).unwrap().duration() > 0);
}

#[tokio::test]
async fn a_passthrough_bridge_is_recorded_from_its_packets_both_ways_and_a_pause_is_left_out() {
    record_passthrough_bridge(Codec::Pcmu, SampleRate::Hz8000, 41340).await;
}

#[tokio::test]
async fn a_g722_passthrough_bridge_is_recorded_from_its_packets_at_16_khz() {
    record_passthrough_bridge(Codec::G722, SampleRate::Hz16000, 41360).await;
}

#[tokio::test]
async fn an_opus_passthrough_bridge_is_recorded_from_its_packets_at_48_khz() {
    record_passthrough_bridge(Codec::Opus, SampleRate::Hz48000, 41380).await;
}

#[tokio::test]
async fn a_pcmu_passthrough_bridge_recorded_at_16_khz_stays_on_passthrough() {
    record_passthrough_bridge(Codec::Pcmu, SampleRate::Hz16000, 41400).await;
}

#[tokio::test]
async fn an_opus_passthrough_bridge_recorded_at_16_khz_stays_on_passthrough() {
    record_passthrough_bridge(Codec::Opus, SampleRate::Hz16000, 41420).await;
}

/// Two SIP legs of `codec` bridged and passing through, the customer's leg
/// recorded at `file_rate` for 1.3 s with a 0.3 s pause in it: the file holds
/// each side's tone in its channel, and the bridge never left passthrough.
async fn record_passthrough_bridge(codec: Codec, file_rate: SampleRate, port: u16) {
    let dir = tempfile::tempdir().unwrap();
    // One shard: the bridge is local to one engine, so it passes through.
    let (engine, _task) = runtime::spawn(RuntimeConfig { shards: 1, ..config(port) });
    let rate = codec.sample_rate();
    let mut phones = Vec::new();
    for (n, hz) in [(0u32, 1000.0), (1, 500.0)] {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let spec = LegSpec {
            media: RtpMedia::new(codec),
            source: MediaSource::Silence,
            remote: Some(socket.local_addr().unwrap()),
            media_timeout: Some(Duration::from_secs(5)),
        };
        let leg = engine.create_leg(spec).await.unwrap();
        let stream = (Packetizer::new(Ssrc(n + 7), 100, n * 4000), Oscillator::new(hz, rate.hz(), 8000.0));
        phones.push((socket, leg, stream, codec.encoder().unwrap()));
    }
    let (customer, agent) = (phones[0].1.id, phones[1].1.id);
    engine.bridge(customer, agent, DtmfPassing::Both).await.unwrap();
    let spec =
        RecordingSpec { path: dir.path().join("call.wav"), channels: RecordChannels::Dual, rate: file_rate };
    let mut pacing = tokio::time::interval(Duration::from_millis(20));
    let (mut frame, mut payload, mut packet) = (AudioFrame::silent(rate, 0), [0u8; 1500], [0u8; 1600]);
    let pt = RtpMedia::new(codec).payload_type;
    let step = codec.rtp_clock_rate() / 50;
    let decoded_ticks = engine.metrics().timer_lateness.iter().map(RuntimeMetrics::get).sum::<u64>();
    for tick in 0..75 {
        match tick {
            10 => engine.start_recording(customer, spec.clone()).await.unwrap(),
            30 => engine.pause_recording(customer, true).await.unwrap(),
            45 => engine.pause_recording(customer, false).await.unwrap(),
            _ => {}
        }
        pacing.tick().await;
        for (socket, leg, (packetizer, tone), encoder) in &mut phones {
            tone.fill(frame.samples_mut());
            let len = encoder.encode(&frame, &mut payload).unwrap();
            let n = packetizer.write(pt, &payload[..len], step, &mut packet).unwrap();
            socket.send_to(&packet[..n], leg.local_addr).await.unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let summary = engine.stop_recording(customer).await.unwrap().unwrap();
    assert_eq!(summary.frames_dropped, 0);
    // Passing through, the legs never ticked: the engine's timers ran for RTCP alone.
    let metrics = engine.metrics();
    let ticks = metrics.timer_lateness.iter().map(RuntimeMetrics::get).sum::<u64>() - decoded_ticks;
    assert!(ticks < 20, "{ticks} timer runs: the bridge decoded");
    assert!(RuntimeMetrics::get(&metrics.packets_passed_through) >= 140, "both ways, undecoded");

    let mut reader = hound::WavReader::open(&summary.path).unwrap();
    let rate = file_rate;
    assert_eq!((reader.spec().channels, reader.spec().sample_rate), (2, rate.hz()));
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let seconds = left.len() as f64 / f64::from(rate.hz());
    assert!((0.85..=1.15).contains(&seconds), "{seconds} s: the 1.3 s recorded less the 0.3 s pause");
    // Where the pause was cut out the tone's phase jumps: two blocks may break,
    // three where the decoder carries state (G.722, Opus) across the cut.
    let allowed = if matches!(codec, Codec::Pcmu | Codec::Pcma) { 2 } else { 3 };
    let (missing, _) = blocks_without_tone(&left, 1000.0, rate.hz());
    assert!(missing <= allowed, "left: the customer is missing from {missing} blocks");
    let (missing, _) = blocks_without_tone(&right, 500.0, rate.hz());
    assert!(
        missing <= allowed,
        "right: the agent, as sent to the customer, is missing from {missing} blocks"
    );
}

#[tokio::test]
async fn a_fork_gets_both_directions_while_the_recording_beside_it_is_paused_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _task) = runtime::spawn(config(41320));
    let customer = bridged_tones(&engine).await;
    let spec = RecordingSpec {
        path: dir.path().join("call.wav"),
        channels: RecordChannels::Single,
        rate: SampleRate::Hz8000,
    };
    engine.start_recording(customer, spec).await.unwrap();
    engine.pause_recording(customer, true).await.unwrap();
    let mut fork = engine.start_fork(customer, "stream").await.unwrap();
    assert!(engine.start_fork(customer, "stream").await.is_err(), "one fork per leg and name");
    let mut other = engine.start_fork(customer, "transcription").await.unwrap();

    let mut inbound = Vec::new();
    let mut outbound = Vec::new();
    for _ in 0..25 {
        let tick = next_tick(&mut fork).await.expect("a tick every 20 ms");
        assert_eq!((tick.inbound.rate(), tick.outbound.rate()), (SampleRate::Hz8000, SampleRate::Hz8000));
        inbound.extend_from_slice(tick.inbound.samples());
        outbound.extend_from_slice(tick.outbound.samples());
    }
    assert!(tone_share(&inbound[800..], 700.0, 8000) > 0.9, "inbound: what the customer said");
    assert!(tone_share(&outbound[800..], 1100.0, 8000) > 0.9, "outbound: the agent, at the customer's rate");

    let recorded = engine.stop_recording(customer).await.unwrap().unwrap();
    assert!(recorded.duration_ms <= 200, "paused before the fork's 500 ms: {} ms", recorded.duration_ms);
    assert!(next_tick(&mut fork).await.is_some(), "stopping the recording leaves the fork running");
    assert_eq!(fork.dropped(), 0);

    assert!(engine.stop_fork(customer, "stream").await.unwrap());
    while next_tick(&mut fork).await.is_some() {}
    assert!(!engine.stop_fork(customer, "stream").await.unwrap());
    let tick = next_tick(&mut other).await.expect("the other fork goes on");
    assert!(tone_share(tick.inbound.samples(), 700.0, 8000) > 0.9);

    let mut fork = engine.start_fork(customer, "stream").await.unwrap();
    engine.hangup(customer).await.unwrap();
    while next_tick(&mut fork).await.is_some() {}
    while next_tick(&mut other).await.is_some() {}
}

/// An 8 kHz customer saying 700 Hz bridged with a 16 kHz agent saying 1100 Hz; the customer's leg.
async fn bridged_tones(engine: &runtime::EngineHandle) -> bond_media_engine::LegId {
    let tone = |hz| MediaSource::Tone { hz, dbm0: -10.0 };
    let customer = engine.create_local_leg(SampleRate::Hz8000, tone(700.0)).await.unwrap();
    let agent = engine.create_local_leg(SampleRate::Hz16000, tone(1100.0)).await.unwrap();
    engine.bridge(customer, agent, DtmfPassing::Both).await.unwrap();
    customer
}

/// The fork's next tick; `None` once its stream has ended.
async fn next_tick(fork: &mut runtime::Fork) -> Option<runtime::ForkTick> {
    tokio::time::timeout(Duration::from_secs(5), fork.ticks.recv()).await.expect("the fork stalled")
}

fn config(port: u16) -> RuntimeConfig {
    RuntimeConfig {
        bind_ip: "127.0.0.1".parse().unwrap(),
        rtp_ports: PortRange::new(port, port + 10).unwrap(),
        seed: 5,
        webrtc: None,
        opus: Default::default(),
        shards: 0,
        passthrough: true,
        rtcp: true,
        driver_threads: true,
        strict_source: true,
        kernel_relay: false,
    }
}
