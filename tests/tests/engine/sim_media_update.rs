//! A re-INVITE's outcome applied to a live leg, in simulated time.

use std::time::Duration;

use bond_codecs::opus_codec::carries_fec;
use bond_codecs::opus_peer::OpusPeer;
use bond_codecs::signals::sinad_db;
use bond_codecs::{Codec, SampleRate};
use bond_media_engine::leg::{MediaSource, RtpMedia};
use bond_media_engine::sim::{LinkProfile, SimNetwork};
use bond_media_engine::{EngineEvent, LegId};

fn media(codec: Codec, send: bool, expect_media: bool) -> RtpMedia {
    RtpMedia { send, expect_media, ..RtpMedia::new(codec) }
}

fn tone_and_echo(net: &mut SimNetwork) -> (LegId, LegId) {
    let now = net.now();
    let mut tone_cfg = net.engine.leg_config(Codec::Pcmu);
    tone_cfg.emit_heard = true;
    let tone = net.engine.add_leg(now, tone_cfg, MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }).unwrap();
    let mut echo_cfg = net.engine.leg_config(Codec::Pcmu);
    echo_cfg.media_timeout = Some(Duration::from_secs(2));
    let echo = net.engine.add_leg(now, echo_cfg, MediaSource::Echo).unwrap();
    net.connect(tone, echo, LinkProfile::clean(), LinkProfile::clean());
    (tone, echo)
}

#[test]
fn a_held_peer_gets_no_rtp_and_no_media_timeout_ends_the_leg() {
    let mut net = SimNetwork::new(3);
    let (tone, echo) = tone_and_echo(&mut net);
    net.run_for(Duration::from_secs(1));
    let now = net.now();
    // Both sides go inactive: nothing is sent, silence is expected.
    net.engine.set_rtp_media(now, tone, media(Codec::Pcmu, false, false)).unwrap();
    net.engine.set_rtp_media(now, echo, media(Codec::Pcmu, false, false)).unwrap();
    let sent = net.engine.stats(tone).unwrap().packets_sent;
    net.run_for(Duration::from_secs(10));
    assert_eq!(net.engine.stats(tone).unwrap().packets_sent, sent, "nothing sent while inactive");
    assert!(net.engine.stats(echo).is_some(), "the 2 s media timeout did not fire while held");
    let ended: Vec<_> =
        net.events().iter().filter(|(_, e)| matches!(e, EngineEvent::LegEnded { .. })).collect();
    assert!(ended.is_empty(), "{ended:?}");
}

#[test]
fn a_same_rate_codec_change_keeps_the_audio_flowing() {
    let mut net = SimNetwork::new(4);
    let (tone, echo) = tone_and_echo(&mut net);
    net.run_for(Duration::from_secs(1));
    let now = net.now();
    for leg in [tone, echo] {
        net.engine.set_rtp_media(now, leg, media(Codec::Pcma, true, true)).unwrap();
    }
    net.run_for(Duration::from_secs(3));
    let heard = net.heard_samples(tone);
    let after = &heard[heard.len() - 8000..];
    let sinad = sinad_db(after, 1000.0, 8000);
    assert!(sinad > 20.0, "SINAD after the switch to PCMA: {sinad:.1} dB");
}

#[test]
fn a_leg_whose_offer_was_answered_at_another_rate_switches_to_it() {
    // Bond offered PCMU first; the callee answered G.722 before anything used the leg.
    let mut net = SimNetwork::new(6);
    let now = net.now();
    let mut phone_cfg = net.engine.leg_config(Codec::G722);
    phone_cfg.emit_heard = true;
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Tone { hz: 1000.0, dbm0: -10.0 }).unwrap();
    let bond_cfg = net.engine.leg_config(Codec::Pcmu);
    let bond = net.engine.add_leg(now, bond_cfg, MediaSource::Silence).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    net.engine.set_rtp_media(now, bond, media(Codec::G722, true, true)).unwrap();
    assert_eq!(net.engine.rate(bond), Some(SampleRate::Hz16000));
    let echo = net.engine.add_local_leg(now, SampleRate::Hz16000, MediaSource::Echo);
    net.engine.bridge(bond, echo).unwrap();
    net.run_for(Duration::from_secs(3));
    let heard = net.heard_samples(phone);
    let sinad = sinad_db(&heard[heard.len() - 16_000..], 1000.0, 16_000);
    assert!(sinad > 20.0, "the phone hears its tone back through G.722: SINAD {sinad:.1} dB");
}

#[test]
fn a_codec_change_that_would_change_the_rate_of_a_leg_in_use_is_refused() {
    let mut net = SimNetwork::new(5);
    let (tone, _) = tone_and_echo(&mut net);
    let now = net.now();
    assert!(net.engine.set_rtp_media(now, tone, media(Codec::G722, true, true)).is_err());
}

/// The bands of the Opus packets `leg` sends over the next second, and how
/// many carry in-band FEC.
fn next_second_of_opus(net: &mut SimNetwork, leg: LegId) -> (Vec<opus::Bandwidth>, usize) {
    let mut bands = Vec::new();
    let mut with_fec = 0;
    for _ in 0..50 {
        net.run_for(Duration::from_millis(20));
        let payload = &net.last_rtp(leg).expect("bond sends")[12..];
        let band = opus::packet::get_bandwidth(payload).expect("an Opus packet");
        if !bands.contains(&band) {
            bands.push(band);
        }
        with_fec += usize::from(carries_fec(payload));
    }
    (bands, with_fec)
}

/// A 1 kHz tone at 48 kHz that comes and goes as syllables do (240 ms on,
/// 60 off): SILK's voice activity detector soon takes a steady tone for
/// background, and sends no FEC for it.
fn syllables() -> MediaSource {
    let samples: Vec<i16> =
        (0..14_400)
            .map(|i| {
                if i < 11_520 {
                    (8000.0 * (i as f64 * std::f64::consts::TAU / 48.0).sin()) as i16
                } else {
                    0
                }
            })
            .collect();
    MediaSource::Play { samples: samples.into(), rate: SampleRate::Hz48000, repeat: true }
}

#[test]
fn an_opus_peer_is_coded_for_as_its_fmtp_asks_and_again_when_a_reinvite_changes_it() {
    let mut net = SimNetwork::new(7);
    let now = net.now();
    let phone_cfg = net.engine.leg_config(Codec::Opus);
    let phone = net.engine.add_leg(now, phone_cfg, MediaSource::Silence).unwrap();
    let bond_cfg = net.engine.leg_config(Codec::Opus);
    let bond = net.engine.add_leg(now, bond_cfg, syllables()).unwrap();
    net.connect(phone, bond, LinkProfile::clean(), LinkProfile::clean());
    let fmtp =
        |params| RtpMedia { opus_peer: Some(OpusPeer::from_fmtp(params)), ..RtpMedia::new(Codec::Opus) };
    // A wideband phone that takes FEC: wideband from the first packet, FEC in most.
    net.engine.set_rtp_media(now, bond, fmtp("maxplaybackrate=16000;useinbandfec=1")).unwrap();
    let (bands, with_fec) = next_second_of_opus(&mut net, bond);
    assert!(bands == [opus::Bandwidth::Wideband] && with_fec > 30, "{bands:?}, {with_fec} with FEC");
    // Re-offered without useinbandfec: RFC 7587 takes that for 0, so no FEC.
    let now = net.now();
    net.engine.set_rtp_media(now, bond, fmtp("maxplaybackrate=16000")).unwrap();
    let (bands, with_fec) = next_second_of_opus(&mut net, bond);
    assert!(bands == [opus::Bandwidth::Wideband] && with_fec == 0, "{bands:?}, {with_fec} with FEC");
    // Re-offered with no limit: full band from the first packet.
    let now = net.now();
    net.engine.set_rtp_media(now, bond, fmtp("")).unwrap();
    let (bands, _) = next_second_of_opus(&mut net, bond);
    assert_eq!(bands, [opus::Bandwidth::Fullband]);
}
