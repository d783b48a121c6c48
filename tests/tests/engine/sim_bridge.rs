//! Bridges in simulated time: RTP legs joined to built-in local legs, across
//! sample rates, with DTMF sent to a party and bridges taken apart.

use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::signals::sinad_db;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{DtmfTiming, MediaSource, RecordTap};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{DtmfSource, EngineError, EngineEvent, HangupCause, LegId};
use bond_tests::tone_share;

/// A "phone" (RTP leg that records what it hears and plays `phone_source`)
/// talking over a lossless link to Bond's RTP leg `bond`.
fn phone_and_bond(net: &mut SimNetwork, codec: Codec, phone_source: MediaSource) -> (LegId, LegId) {
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(codec);
    phone_cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, phone_cfg, phone_source).unwrap();
    let bond_cfg = net.engine.leg_config(codec);
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    (phone, bond)
}

fn tone() -> MediaSource {
    MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }
}

#[test]
fn a_caller_bridged_to_a_local_echo_hears_itself() {
    let mut net = SimNetwork::new(10);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Pcmu, tone());
    let echo = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Echo);
    net.engine.bridge(bond, echo).unwrap();
    net.run_for(Duration::from_secs(5));
    let heard = net.heard_samples(phone);
    let sinad = sinad_db(&heard[8000..], 1000.0, 8000);
    assert!(sinad > 20.0, "SINAD {sinad:.1} dB");
}

#[test]
fn a_bridge_between_rates_resamples_both_ways() {
    for (codec, local_rate) in [
        (Codec::Pcmu, SampleRate::Hz16000),
        (Codec::Opus, SampleRate::Hz8000),
        (Codec::G722, SampleRate::Hz48000),
    ] {
        let mut net = SimNetwork::new(11);
        let (phone, bond) = phone_and_bond(&mut net, codec, tone());
        let echo = net.engine.add_local_leg(net.now(), local_rate, MediaSource::Echo);
        net.engine.bridge(bond, echo).unwrap();
        net.run_for(Duration::from_secs(5));
        let rate = codec.sample_rate();
        let heard = net.heard_samples(phone);
        let sinad = sinad_db(&heard[rate.hz() as usize..], 1000.0, rate.hz());
        assert!(sinad > 20.0, "{codec:?} with a {local_rate:?} echo: SINAD {sinad:.1} dB");
    }
}

/// The band of the last Opus packet `leg` sent.
fn band(net: &SimNetwork, leg: LegId) -> opus::Bandwidth {
    let packet = net.last_rtp(leg).expect("bond sends");
    opus::packet::get_bandwidth(&packet[12..]).expect("an Opus packet")
}

/// Bridge `leg` to a local tone at `rate`, and run for `secs`.
fn bridge_to_tone(net: &mut SimNetwork, leg: LegId, rate: SampleRate, secs: u64) {
    let local = net.engine.add_local_leg(net.now(), rate, tone());
    net.engine.bridge(leg, local).unwrap();
    net.run_for(Duration::from_secs(secs));
}

/// The tone in the last second `phone` heard at 48 kHz.
fn last_second_sinad(net: &SimNetwork, phone: LegId) -> f64 {
    let heard = net.heard_samples(phone);
    sinad_db(&heard[heard.len() - 48_000..], 1000.0, 48_000)
}

/// An Opus leg bridged to G.711 codes at 8 kHz: no resampler between the two
/// legs, and libopus codes narrowband from the first packet. Out of the
/// bridge it codes at 48 kHz again, full band at once.
#[test]
fn an_opus_leg_bridged_to_8_khz_audio_codes_at_8_khz_and_at_48_khz_again_after() {
    let mut net = SimNetwork::new(19);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Opus, MediaSource::Silence);
    bridge_to_tone(&mut net, bond, SampleRate::Hz48000, 2);
    assert_eq!(
        (net.engine.rate(bond), band(&net, bond)),
        (Some(SampleRate::Hz48000), opus::Bandwidth::Fullband)
    );
    net.engine.unbridge(bond).unwrap();
    bridge_to_tone(&mut net, bond, SampleRate::Hz8000, 2);
    assert_eq!(
        (net.engine.rate(bond), band(&net, bond)),
        (Some(SampleRate::Hz8000), opus::Bandwidth::Narrowband)
    );
    let sinad = last_second_sinad(&net, phone);
    assert!(sinad > 20.0, "the tone heard: SINAD {sinad:.1} dB");
    net.engine.unbridge(bond).unwrap();
    assert_eq!(net.engine.rate(bond), Some(SampleRate::Hz48000));
    bridge_to_tone(&mut net, bond, SampleRate::Hz48000, 2);
    assert_eq!(band(&net, bond), opus::Bandwidth::Fullband);
    let sinad = last_second_sinad(&net, phone);
    assert!(sinad > 20.0, "the tone heard: SINAD {sinad:.1} dB");
}

/// A leg whose audio is recorded keeps its rate through a bridge, so its
/// encoder narrows its band instead: libopus moves one band per 5.12 s, so
/// it reaches narrowband SILK (about 40 % cheaper than full band) after ~10 s.
#[test]
fn a_recorded_opus_leg_bridged_to_8_khz_audio_keeps_48_khz_and_narrows_its_band_over_seconds() {
    let mut net = SimNetwork::new(19);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Opus, MediaSource::Silence);
    net.engine.set_recording(bond, RecordTap::Frames).unwrap();
    bridge_to_tone(&mut net, bond, SampleRate::Hz48000, 2);
    assert_eq!(band(&net, bond), opus::Bandwidth::Fullband);
    net.engine.unbridge(bond).unwrap();
    bridge_to_tone(&mut net, bond, SampleRate::Hz8000, 1);
    assert_eq!(net.engine.rate(bond), Some(SampleRate::Hz48000));
    assert_eq!(band(&net, bond), opus::Bandwidth::Wideband, "out of full band at once");
    // libopus then fades down a band per 5.12 s: medium, then narrow.
    net.run_for(Duration::from_secs(11));
    assert_eq!(band(&net, bond), opus::Bandwidth::Narrowband);
    let sinad = last_second_sinad(&net, phone);
    assert!(sinad > 20.0, "the tone still heard: SINAD {sinad:.1} dB");
    net.engine.unbridge(bond).unwrap();
    bridge_to_tone(&mut net, bond, SampleRate::Hz48000, 1);
    assert_eq!(band(&net, bond), opus::Bandwidth::Mediumband, "wider at once");
    // And up a band per 5.12 s too: audio wider than the old peer's is cut for a few seconds.
    net.run_for(Duration::from_secs(10));
    assert_eq!(band(&net, bond), opus::Bandwidth::Fullband);
}

/// A leg bridged as it answers has coded only silence: a recorded one, which
/// keeps its rate, starts its encoder again narrow at once rather than fading
/// down over ~10 s.
#[test]
fn a_recorded_opus_leg_that_sent_only_silence_codes_narrowband_from_its_bridge_on() {
    let mut net = SimNetwork::new(23);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Opus, MediaSource::Silence);
    net.engine.set_recording(bond, RecordTap::Frames).unwrap();
    net.run_for(Duration::from_millis(500));
    let local = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, tone());
    net.engine.bridge(bond, local).unwrap();
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.engine.rate(bond), Some(SampleRate::Hz48000));
    assert_eq!(band(&net, bond), opus::Bandwidth::Narrowband);
    net.run_for(Duration::from_secs(1));
    let sinad = last_second_sinad(&net, phone);
    assert!(sinad > 20.0, "the tone heard: SINAD {sinad:.1} dB");
}

#[test]
fn a_local_tone_bridged_to_a_caller_is_heard_at_its_frequency() {
    let mut net = SimNetwork::new(12);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Pcma, MediaSource::Silence);
    let tone = net.engine.add_local_leg(
        net.now(),
        SampleRate::Hz16000,
        MediaSource::Tone { hz: 700.0, dbm0: -12.0 },
    );
    net.engine.bridge(tone, bond).unwrap();
    net.run_for(Duration::from_secs(2));
    let heard = net.heard_samples(phone);
    assert!(tone_share(&heard[4000..], 700.0, 8000) > 0.9);
}

#[test]
fn dtmf_sent_to_a_party_is_detected_at_the_far_end() {
    let mut net = SimNetwork::new(13);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Pcmu, MediaSource::Silence);
    let digits: Vec<DtmfDigit> = "123#".chars().map(|c| DtmfDigit::from_char(c).unwrap()).collect();
    net.engine.send_dtmf(bond, &digits, DtmfTiming::default()).unwrap();
    net.run_for(Duration::from_secs(3));
    let got = net.inband_digits(phone);
    assert_eq!(got, "123#");
}

#[test]
fn digits_to_a_sip_leg_go_as_rfc4733_events_and_its_audio_resumes_after() {
    let mut net = SimNetwork::new(19);
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(Codec::G722);
    phone_cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Silence).unwrap();
    let mut bond_cfg = net.engine.leg_config(Codec::G722);
    bond_cfg.send_events = true;
    let bond = net.engine.add_leg(now, bond_cfg, tone()).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    net.run_for(Duration::from_millis(500));
    let digits: Vec<DtmfDigit> = "123#".chars().map(|c| DtmfDigit::from_char(c).unwrap()).collect();
    net.engine.send_dtmf(bond, &digits, DtmfTiming::default()).unwrap();
    net.run_for(Duration::from_secs(3));

    let events = net.digits(phone, DtmfSource::Rfc4733);
    assert_eq!(events, "123#", "each digit once, as a telephone-event");
    assert_eq!(net.inband_digits(phone), "", "no tones in the audio");
    assert_eq!(net.engine.stats(phone).unwrap().packets_lost, 0, "one sequence for events and audio");
    let heard = net.heard_samples(phone);
    assert!(tone_share(&heard[heard.len() - 16_000..], 1000.0, 16_000) > 0.9, "the audio resumes");
}

#[test]
fn unbridging_stops_the_audio_and_hangup_takes_a_leg_out_of_its_bridge() {
    let mut net = SimNetwork::new(14);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Pcmu, MediaSource::Silence);
    let tone =
        net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Tone { hz: 500.0, dbm0: -10.0 });
    net.engine.bridge(bond, tone).unwrap();
    assert_eq!(net.engine.bridged_with(bond), Some(tone));
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.engine.unbridge(tone).unwrap(), bond);
    net.run_for(Duration::from_secs(1));
    let heard = net.heard_samples(phone);
    let last_half_second = &heard[heard.len() - 4000..];
    assert!(last_half_second.iter().all(|&s| s.abs() < 64), "silence after unbridge");

    net.engine.bridge(bond, tone).unwrap();
    net.engine.hangup(tone, HangupCause::NormalClearing).unwrap();
    assert_eq!(net.engine.bridged_with(bond), None);
    assert!(net.engine.bridge(bond, bond).is_err());
}

#[test]
fn bridging_refuses_unknown_and_already_bridged_legs() {
    let mut net = SimNetwork::new(15);
    let a = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Silence);
    let b = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Silence);
    let c = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Silence);
    assert!(matches!(net.engine.bridge(a, LegId(999)), Err(EngineError::UnknownLeg(_))));
    net.engine.bridge(a, b).unwrap();
    assert!(matches!(net.engine.bridge(c, b), Err(EngineError::AlreadyBridged(_))));
    assert!(matches!(net.engine.unbridge(c), Err(EngineError::NotBridged(_))));
}

/// Two phones, each on its own Bond leg, the Bond legs bridged with `dtmf`.
fn two_phones(net: &mut SimNetwork, dtmf: bond_media_engine::DtmfPassing) -> (LegId, LegId, LegId, LegId) {
    let (phone_a, bond_a) = phone_and_bond(net, Codec::Pcmu, MediaSource::Silence);
    let (phone_b, bond_b) = phone_and_bond(net, Codec::Pcmu, MediaSource::Silence);
    net.engine.bridge_with(bond_a, bond_b, dtmf).unwrap();
    (phone_a, bond_a, phone_b, bond_b)
}

/// Telephone-event packets for `digits`, as a phone would send them, into `leg`.
fn send_rfc4733(net: &mut SimNetwork, leg: LegId, digits: &str) {
    use bond_codecs::dtmf::TelephoneEvent;
    use bond_media_engine::ids::{PayloadType, Ssrc};
    use bond_media_engine::rtp::Packetizer;
    let pt = PayloadType::new(101).unwrap();
    let mut buf = [0u8; 64];
    for (i, c) in digits.chars().enumerate() {
        let digit = DtmfDigit::from_char(c).unwrap();
        let mut p = Packetizer::new(Ssrc(77), 1000 + i as u16 * 10, 80_000 + i as u32 * 8000);
        for end in [false, false, true] {
            let n = p
                .write(pt, &TelephoneEvent { digit, end, volume: 10, duration: 800 }.encode(), 0, &mut buf)
                .unwrap();
            net.engine.handle_receive(net.now(), leg, &buf[..n]).unwrap();
        }
        net.run_for(Duration::from_millis(400));
    }
}

#[test]
fn rfc4733_digits_cross_a_bridge_as_tones_unless_muted() {
    let mut net = SimNetwork::new(16);
    let (_, bond_a, phone_b, _) = two_phones(&mut net, bond_media_engine::DtmfPassing::Both);
    net.run_for(Duration::from_millis(500));
    send_rfc4733(&mut net, bond_a, "58*");
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.inband_digits(phone_b), "58*");

    let mut muted = SimNetwork::new(16);
    let (_, bond_a, phone_b, _) = two_phones(&mut muted, bond_media_engine::DtmfPassing::FromSecond);
    muted.run_for(Duration::from_millis(500));
    send_rfc4733(&mut muted, bond_a, "58*");
    muted.run_for(Duration::from_secs(1));
    assert_eq!(muted.inband_digits(phone_b), "", "mute_dtmf keeps them from the other side");
    // The digits were still received (and reported) on the leg they arrived on.
    assert!(muted.events().iter().any(|(_, e)| matches!(e, EngineEvent::DtmfReceived { leg, source: DtmfSource::Rfc4733, .. } if *leg == bond_a)));
}

#[test]
fn inband_digits_pass_a_bridge_in_the_audio_unless_muted() {
    for (dtmf, expected) in
        [(bond_media_engine::DtmfPassing::Both, "3#"), (bond_media_engine::DtmfPassing::None, "")]
    {
        let mut net = SimNetwork::new(17);
        let (phone_a, bond_a, phone_b, _) = two_phones(&mut net, dtmf);
        net.run_for(Duration::from_millis(500));
        // Phone A's party presses keys: tones in its outgoing audio.
        let digits: Vec<DtmfDigit> = "3#".chars().map(|c| DtmfDigit::from_char(c).unwrap()).collect();
        net.engine.send_dtmf(phone_a, &digits, DtmfTiming { tone_ms: 120, gap_ms: 120 }).unwrap();
        net.run_for(Duration::from_secs(2));
        assert_eq!(net.inband_digits(bond_a), "3#", "Bond always hears them");
        assert_eq!(net.inband_digits(phone_b), expected, "{dtmf:?}");
    }
}

/// The phone's heard audio between `from` and `to` seconds of the run.
fn heard_between(net: &SimNetwork, phone: LegId, from: f64, to: f64) -> Vec<i16> {
    let heard = net.heard_samples(phone);
    heard[(from * 8000.0) as usize..((to * 8000.0) as usize).min(heard.len())].to_vec()
}

#[test]
fn mute_each_direction_and_hold_with_music() {
    let mut net = SimNetwork::new(18);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Pcmu, tone());
    let echo = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Echo);
    net.engine.bridge(bond, echo).unwrap();
    net.run_for(Duration::from_secs(1)); // 0-1 s: the caller hears its echo
    net.engine.set_mute(bond, true, false).unwrap();
    net.run_for(Duration::from_secs(1)); // 1-2 s: its voice does not reach the bridge
    net.engine.set_mute(bond, false, true).unwrap();
    net.run_for(Duration::from_secs(1)); // 2-3 s: it hears nothing from the bridge
    net.engine.set_mute(bond, false, false).unwrap();
    let music: std::sync::Arc<[i16]> = bond_codecs::signals::sine(300.0, 8000, 8000, 8000.0).into();
    net.engine
        .hold(bond, &MediaSource::Play { samples: music, rate: SampleRate::Hz8000, repeat: true })
        .unwrap();
    assert!(net.engine.controls(bond).held);
    net.run_for(Duration::from_secs(1)); // 3-4 s: hold music
    net.engine.unhold(bond).unwrap();
    net.run_for(Duration::from_secs(1)); // 4-5 s: back to the echo

    let silent = |s: &[i16]| s.iter().all(|&x| x.abs() < 64);
    assert!(tone_share(&heard_between(&net, phone, 0.5, 1.0), 1000.0, 8000) > 0.9);
    assert!(silent(&heard_between(&net, phone, 1.2, 2.0)), "muted inbound: no echo to hear");
    assert!(silent(&heard_between(&net, phone, 2.2, 3.0)), "muted outbound");
    assert!(tone_share(&heard_between(&net, phone, 3.2, 4.0), 300.0, 8000) > 0.9, "hold music");
    assert!(tone_share(&heard_between(&net, phone, 4.3, 5.0), 1000.0, 8000) > 0.9, "unheld");
}

#[test]
fn a_held_party_keeps_its_music_when_its_bridge_comes_apart_or_a_new_one_forms() {
    // A warm transfer: the caller on hold while the agent's bridge moves elsewhere.
    let mut net = SimNetwork::new(19);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Pcmu, tone());
    let agent = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Echo);
    let third = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Echo);
    net.engine.bridge(bond, agent).unwrap();
    let music: std::sync::Arc<[i16]> = bond_codecs::signals::sine(300.0, 8000, 8000, 8000.0).into();
    net.engine
        .hold(bond, &MediaSource::Play { samples: music, rate: SampleRate::Hz8000, repeat: true })
        .unwrap();
    net.run_for(Duration::from_secs(1)); // 0-1 s: held while bridged
    net.engine.unbridge(agent).unwrap();
    net.run_for(Duration::from_secs(1)); // 1-2 s: held, its bridge gone
    net.engine.bridge(bond, third).unwrap();
    net.run_for(Duration::from_secs(1)); // 2-3 s: held, bridged anew
    net.engine.unhold(bond).unwrap();
    net.run_for(Duration::from_secs(1)); // 3-4 s: the new party (an echo of the caller)

    for (from, to) in [(0.2, 1.0), (1.2, 2.0), (2.2, 3.0)] {
        let share = tone_share(&heard_between(&net, phone, from, to), 300.0, 8000);
        assert!(share > 0.9, "hold music {from}-{to} s: {share:.2}");
    }
    assert!(tone_share(&heard_between(&net, phone, 3.3, 4.0), 1000.0, 8000) > 0.9, "unheld");
}

/// An Opus leg on hold keeps its rate through a bridge with a G.711 party: its
/// music was made for the rate it had, and keeps its pitch.
#[test]
fn a_held_opus_leg_keeps_its_rate_and_its_musics_pitch_through_a_bridge_to_g711() {
    let mut net = SimNetwork::new(29);
    let (phone, bond) = phone_and_bond(&mut net, Codec::Opus, MediaSource::Silence);
    let music: std::sync::Arc<[i16]> = bond_codecs::signals::sine(300.0, 48_000, 48_000, 8000.0).into();
    // Music made for another rate than the leg's is refused: it would play at the wrong pitch.
    let made_for_8k = MediaSource::Play { samples: music.clone(), rate: SampleRate::Hz8000, repeat: true };
    let refused = net.engine.hold(bond, &made_for_8k);
    assert!(matches!(refused, Err(EngineError::ClipRate { rate: SampleRate::Hz48000, .. })), "{refused:?}");
    net.engine
        .hold(bond, &MediaSource::Play { samples: music, rate: SampleRate::Hz48000, repeat: true })
        .unwrap();
    let echo = net.engine.add_local_leg(net.now(), SampleRate::Hz8000, MediaSource::Echo);
    net.engine.bridge(bond, echo).unwrap();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.engine.rate(bond), Some(SampleRate::Hz48000));
    net.engine.unbridge(bond).unwrap();
    net.run_for(Duration::from_secs(1));
    let heard = net.heard_samples(phone);
    for (from, to) in [(0.3, 0.9), (1.2, 1.9)] {
        let part = &heard[(from * 48_000.0) as usize..(to * 48_000.0) as usize];
        let share = tone_share(part, 300.0, 48_000);
        assert!(share > 0.9, "hold music {from}-{to} s: {share:.2}");
    }
}
