//! Two legs in one engine, in simulated time, over seeded lossy links.

use std::time::Duration;

use bond_codecs::dtmf::{DtmfDigit, DtmfGenerator, TelephoneEvent};
use bond_codecs::signals::sinad_db;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::Packetizer;
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{DtmfSource, EngineEvent, HangupCause};
use bond_tests::{tone_and_echo, tone_share};

#[test]
fn a_tone_comes_back_from_an_echo_leg_over_a_clean_link() {
    for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
        let mut net = SimNetwork::new(1);
        let (tone, _) = tone_and_echo(&mut net, codec, LinkProfile::clean(), LinkProfile::clean());
        net.run_for(Duration::from_secs(10));
        let rate = codec.sample_rate();
        let heard = net.heard_samples(tone);
        // Skip the first half second: playout delay, round trip, codec warm-up.
        let steady = &heard[rate.frame_samples() * 25..];
        let sinad = sinad_db(steady, 1000.0, rate.hz());
        assert!(sinad > 20.0, "{codec:?}: SINAD {sinad:.1} dB");
    }
}

#[test]
fn three_minutes_of_two_way_audio_are_all_accounted_for() {
    let mut net = SimNetwork::new(2);
    let (tone, echo) = tone_and_echo(&mut net, Codec::Pcmu, LinkProfile::clean(), LinkProfile::clean());
    net.run_for(Duration::from_secs(180));
    let echo_stats = net.engine.stats(echo).unwrap();
    let tone_stats = net.engine.stats(tone).unwrap();
    // One packet per 20 ms each way: ticks at 0, 20 ms, ..., 180 s. The last one is
    // still on the 1 ms link when the run stops.
    assert_eq!(tone_stats.packets_sent, 9001);
    assert_eq!(echo_stats.packets_received, 9000);
    assert_eq!(echo_stats.packets_lost, 0);
    assert_eq!(tone_stats.frames_concealed, 0);
    assert_eq!(net.elapsed(), Duration::from_secs(180));
}

#[test]
fn seeded_loss_and_jitter_are_concealed_counted_and_repeatable() {
    let run = || {
        let mut net = SimNetwork::new(3);
        let lossy = LinkProfile::lossy(20, 30, 0.05, 77);
        let (tone, echo) = tone_and_echo(&mut net, Codec::Pcmu, lossy, LinkProfile::lossy(20, 30, 0.05, 78));
        net.run_for(Duration::from_secs(120));
        (net.engine.stats(tone).unwrap(), net.engine.stats(echo).unwrap(), net.heard_samples(tone))
    };
    let (tone_stats, echo_stats, heard) = run();
    let loss = echo_stats.packets_lost as f64 / echo_stats.packets_received as f64;
    assert!((0.03..0.07).contains(&loss), "echo leg saw {loss:.3} loss");
    assert!(echo_stats.jitter_ms > 2.0, "jitter {}", echo_stats.jitter_ms);
    assert!(tone_stats.frames_concealed > 0);
    // Concealment keeps the returning audio a 1 kHz tone most of the time.
    let good_frames =
        heard.chunks(160).skip(50).filter(|frame| tone_share(frame, 1000.0, 8000) > 0.5).count();
    let frames = heard.len() / 160 - 50;
    assert!(good_frames as f64 / frames as f64 > 0.85, "{good_frames}/{frames} frames carry the tone");
    // Same seeds, same run.
    let (again_tone, again_echo, again_heard) = run();
    assert_eq!(again_tone, tone_stats);
    assert_eq!(again_echo, echo_stats);
    assert_eq!(again_heard, heard);
}

#[test]
fn a_leg_with_no_media_ends_with_a_media_timeout() {
    let mut net = SimNetwork::new(4);
    let now = net.now();
    let mut cfg = net.engine.leg_config(Codec::Pcmu);
    cfg.media_timeout = Some(Duration::from_secs(2));
    let leg = net.engine.add_leg(now, cfg, MediaSource::Silence).unwrap();
    net.run_for(Duration::from_secs(5));
    let [(at, EngineEvent::LegEnded { leg: ended, cause, .. })] = net.events() else {
        panic!("{:?}", net.events())
    };
    assert_eq!(*ended, leg);
    assert_eq!(*cause, HangupCause::MediaTimeout);
    assert_eq!(*at, Duration::from_secs(2));
    assert_eq!(net.engine.leg_count(), 0);
}

#[test]
fn inband_dtmf_is_detected_on_the_receiving_leg() {
    let mut net = SimNetwork::new(5);
    let now = net.now();
    let sender_cfg = net.engine.leg_config(Codec::Pcmu);
    let sender = net.engine.add_leg(now, sender_cfg, MediaSource::External).unwrap();
    let receiver_cfg = net.engine.leg_config(Codec::Pcmu);
    let receiver = net.engine.add_leg(now, receiver_cfg, MediaSource::Silence).unwrap();
    net.connect(sender, receiver, LinkProfile::clean(), LinkProfile::clean());
    let mut digits = "42#".chars().map(|c| DtmfDigit::from_char(c).unwrap());
    let mut generator: Option<DtmfGenerator> = None;
    let mut gap: u32 = 0;
    for _ in 0..100 {
        let mut frame = AudioFrame::silent(SampleRate::Hz8000, 0);
        if generator.as_ref().is_none_or(DtmfGenerator::is_finished) && gap == 0 {
            generator = digits.next().map(|d| DtmfGenerator::new(d, 8000, -15.0, 100));
            gap = 8;
        }
        if let Some(g) = &mut generator {
            if !g.fill(frame.samples_mut()) {
                gap = gap.saturating_sub(1);
            }
        }
        net.engine.push_frame(sender, &frame).unwrap();
        net.run_for(Duration::from_millis(20));
    }
    let got = net.inband_digits(receiver);
    assert_eq!(got, "42#");
}

#[test]
fn frames_pushed_faster_than_a_leg_plays_them_drop_the_oldest_and_are_counted() {
    let mut net = SimNetwork::new(7);
    let now = net.now();
    let cfg = net.engine.leg_config(Codec::Pcmu);
    let leg = net.engine.add_leg(now, cfg, MediaSource::External).unwrap();
    let frame = AudioFrame::silent(SampleRate::Hz8000, 0);
    // The leg holds five frames; eight pushed between two ticks drop three.
    for _ in 0..8 {
        assert!(net.engine.push_frame(leg, &frame).unwrap());
    }
    assert_eq!(net.engine.take_frames_dropped(), 3);
    assert_eq!(net.engine.take_frames_dropped(), 0, "counted once");
    // Once the leg has played what it held, one a tick drops none.
    net.run_for(Duration::from_millis(100));
    for _ in 0..20 {
        net.engine.push_frame(leg, &frame).unwrap();
        net.run_for(Duration::from_millis(20));
    }
    assert_eq!(net.engine.take_frames_dropped(), 0);
    let cfg = net.engine.leg_config(Codec::Pcmu);
    let silent = net.engine.add_leg(now, cfg, MediaSource::Silence).unwrap();
    assert!(!net.engine.push_frame(silent, &frame).unwrap(), "a leg playing silence takes no frames");
}

#[test]
fn rfc4733_events_are_reported_once_per_digit() {
    let mut net = SimNetwork::new(6);
    let now = net.now();
    let cfg = net.engine.leg_config(Codec::Pcmu);
    let te_pt = cfg.telephone_event_pt.unwrap();
    let leg = net.engine.add_leg(now, cfg, MediaSource::Silence).unwrap();
    let mut buf = [0u8; 64];
    for (i, c) in "9*".chars().enumerate() {
        let digit = DtmfDigit::from_char(c).unwrap();
        // Three packets of one event share a timestamp (duration 0 keeps it still).
        let mut p = Packetizer::new(bond_media_engine::ids::Ssrc(9), 100 + i as u16 * 10, i as u32 * 8000);
        for end in [false, false, true] {
            let payload = TelephoneEvent { digit, end, volume: 10, duration: 400 }.encode();
            let n = p.write(te_pt, &payload, 0, &mut buf).unwrap();
            net.engine.handle_receive(net.now(), leg, &buf[..n]).unwrap();
        }
        net.run_for(Duration::from_millis(100));
    }
    let got: Vec<(char, DtmfSource)> = net
        .events()
        .iter()
        .filter_map(|(_, e)| match e {
            EngineEvent::DtmfReceived { digit, source, .. } => Some((digit.as_char(), *source)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![('9', DtmfSource::Rfc4733), ('*', DtmfSource::Rfc4733)]);
}

#[test]
fn malformed_datagrams_are_refused_and_counted_without_harm() {
    let mut net = SimNetwork::new(7);
    let (tone, echo) = tone_and_echo(&mut net, Codec::Pcmu, LinkProfile::clean(), LinkProfile::clean());
    net.run_for(Duration::from_secs(1));
    let garbage: [&[u8]; 5] =
        [&[], &[0x80], &[0x40; 40], &[0x8F; 20], &[0x80, 0x63, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9]];
    for g in garbage {
        assert!(net.engine.handle_receive(net.now(), echo, g).is_err());
    }
    net.run_for(Duration::from_secs(1));
    let stats = net.engine.stats(echo).unwrap();
    assert_eq!(stats.packets_malformed, 5);
    assert_eq!(stats.packets_lost, 0);
    assert!(net.engine.stats(tone).unwrap().packets_received > 90);
}
