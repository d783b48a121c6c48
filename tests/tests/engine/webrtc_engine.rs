//! WebRTC legs in simulated time: a str0m peer playing the browser (offering
//! Opus, or PCMU, and telephone-events, in str0m's frame mode) talks to the
//! engine's WebRTC leg over an in-memory network. ICE, DTLS-SRTP and RTCP all
//! run for real; only the wire and the clock are simulated.
//!
//! The real-browser tests are tests/interop/test_webrtc_*.py (Chromium, aiortc).

use crate::webrtc_sim::*;

#[test]
fn a_browser_bridged_to_a_local_tone_hears_it_over_dtls_srtp() {
    let mut call = Call::new(None);
    let tone = call.engine.add_local_leg(
        call.now,
        SampleRate::Hz16000,
        MediaSource::Tone { hz: 700.0, dbm0: -12.0 },
    );
    call.engine.bridge(call.leg, tone).unwrap();
    call.run_for(Duration::from_secs(3));
    assert!(call.browser.connected, "ICE + DTLS never completed");
    let heard = &call.browser.heard;
    assert!(heard.len() > 48_000 * 2, "heard only {} samples", heard.len());
    let share = tone_share(&heard[48_000..], 700.0, 48_000);
    assert!(share > 0.8, "700 Hz share {share:.2}");
    assert_eq!(call.ended(), None);
}

#[test]
fn a_browser_bridged_to_an_echo_hears_its_own_voice() {
    let mut call = Call::new(Some(440.0));
    let echo = call.engine.add_local_leg(call.now, SampleRate::Hz48000, MediaSource::Echo);
    call.engine.bridge(call.leg, echo).unwrap();
    call.run_for(Duration::from_secs(3));
    let heard = &call.browser.heard;
    let share = tone_share(&heard[heard.len() / 2..], 440.0, 48_000);
    assert!(share > 0.8, "440 Hz share {share:.2}");
    let stats = call.engine.stats(call.leg).unwrap();
    assert!(stats.packets_received > 100, "{stats:?}");
    assert_eq!(stats.packets_malformed, 0, "{stats:?}");
}

/// An agent's browser bridged to a G.711 caller: its leg codes Opus at 8 kHz
/// (no resampler between the two), and at 48 kHz again out of the bridge.
#[test]
fn a_browser_bridged_to_an_8_khz_party_is_coded_at_8_khz_and_hears_its_own_voice() {
    let mut call = Call::new(Some(440.0));
    let echo = call.engine.add_local_leg(call.now, SampleRate::Hz8000, MediaSource::Echo);
    call.engine.bridge(call.leg, echo).unwrap();
    assert_eq!(call.engine.rate(call.leg), Some(SampleRate::Hz8000));
    call.run_for(Duration::from_secs(3));
    let heard = &call.browser.heard;
    let share = tone_share(&heard[heard.len() / 2..], 440.0, 48_000);
    assert!(share > 0.8, "440 Hz share {share:.2}");
    call.engine.unbridge(call.leg).unwrap();
    assert_eq!(call.engine.rate(call.leg), Some(SampleRate::Hz48000));
}

#[test]
fn a_digit_the_browser_sends_as_a_telephone_event_is_reported() {
    let mut call = Call::new(None);
    call.run_for(Duration::from_secs(1));
    assert!(call.browser.connected);
    let five = TelephoneEvent { event: 5, end: true, volume: 10, duration: Duration::from_millis(100) };
    call.browser.speak(call.now, Some(five));
    call.run_for(Duration::from_secs(1));
    let digits: Vec<_> = call
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::DtmfReceived { digit, source, .. } => Some((digit.as_char(), *source)),
            _ => None,
        })
        .collect();
    assert_eq!(digits, [('5', DtmfSource::Rfc4733)]);
}

#[test]
fn a_browser_that_never_connects_ends_the_leg_with_connection_failed() {
    let mut call = Call::new(None);
    call.cut = true;
    call.run_for(CONNECT_TIMEOUT + Duration::from_secs(1));
    assert_eq!(call.ended(), Some(HangupCause::ConnectionFailed));
    assert_eq!(call.engine.leg_count(), 0);
}

#[test]
fn a_browser_that_vanishes_mid_call_ends_the_leg_with_connection_lost() {
    let mut call = Call::new(Some(440.0));
    call.run_for(Duration::from_secs(2));
    assert!(call.browser.connected);
    call.cut = true;
    call.run_for(Duration::from_secs(60));
    // ICE consent lapses well before the 30 s media timeout would.
    assert_eq!(call.ended(), Some(HangupCause::ConnectionLost));
}

#[test]
fn a_hangup_ends_the_leg_and_frees_its_ice_credentials() {
    let mut call = Call::new(None);
    call.run_for(Duration::from_secs(1));
    call.engine.hangup(call.leg, HangupCause::NormalClearing).unwrap();
    call.exchange();
    assert_eq!(call.ended(), Some(HangupCause::NormalClearing));
    // The same ufrag may be used again once its leg is gone.
    let (_, offer, _) = Browser::offer(call.now, None);
    assert!(call.engine.add_webrtc_leg(call.now, &offer, &at_bond(), credentials(1)).is_ok());
}

#[test]
fn a_browser_reaching_bond_through_1_to_1_nat_connects_and_is_answered_from_the_private_address() {
    let mut call = Call::reaching(Some(440.0), Codec::Opus, false, &[addr(PUBLIC)], addr(BOND));
    let echo = call.engine.add_local_leg(call.now, SampleRate::Hz48000, MediaSource::Echo);
    call.engine.bridge(call.leg, echo).unwrap();
    call.run_for(Duration::from_secs(3));
    assert!(call.browser.connected, "ICE + DTLS never completed through the NAT");
    let heard = &call.browser.heard;
    assert!(tone_share(&heard[heard.len() / 2..], 440.0, 48_000) > 0.8);
    let private = Some(addr(BOND).ip());
    let last = call.sent_from.len() - 10;
    assert!(call.sent_from[last..].iter().all(|from| *from == private), "{:?}", &call.sent_from[last..]);
}

#[test]
fn with_several_addresses_announced_a_browser_is_answered_from_the_one_it_reached() {
    let other: SocketAddr = "192.0.2.5:40000".parse().unwrap();
    let mut call = Call::reaching(None, Codec::Opus, false, &[other, addr(BOND)], other);
    call.run_for(Duration::from_secs(2));
    assert!(call.browser.connected);
    assert!(call.sent_from.iter().rev().take(10).all(|from| *from == Some(other.ip())));
    assert_eq!(call.ended(), None);
}

#[test]
fn a_check_to_an_address_bond_did_not_announce_is_not_answered() {
    let other: SocketAddr = "192.0.2.5:40000".parse().unwrap();
    let unknown: SocketAddr = "198.51.100.1:40000".parse().unwrap();
    let mut call = Call::reaching(None, Codec::Opus, false, &[other, addr(BOND)], unknown);
    call.run_for(Duration::from_secs(2));
    assert!(!call.browser.connected, "str0m answered a check for an address it does not have");
}

#[test]
fn bad_offers_are_refused_with_an_error() {
    let now = bond_media_engine::sim::epoch();
    let mut engine = Engine::new(1);
    for offer in ["", "v=0\r\n", "not sdp at all", &"a".repeat(100_000)] {
        let err = engine.add_webrtc_leg(now, offer, &at_bond(), credentials(2)).unwrap_err();
        assert!(matches!(err, EngineError::WebRtc(_)), "{err}");
    }
    // An offer with video only has no audio for Bond.
    let mut rtc = Rtc::builder().clear_codecs().enable_vp8(true).build(now);
    rtc.add_local_candidate(Candidate::host(addr(BROWSER), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, _) = change.apply().unwrap();
    let err = engine.add_webrtc_leg(now, &offer.to_sdp_string(), &at_bond(), credentials(3)).unwrap_err();
    assert!(err.to_string().contains("audio") || err.to_string().contains("codec"), "{err}");
    let (_, offer, _) = Browser::offer(now, None);
    let err =
        engine.add_webrtc_leg(now, &offer, &HostCandidates::udp(Vec::new()), credentials(4)).unwrap_err();
    assert!(err.to_string().contains("no address"), "{err}");
    assert_eq!(engine.leg_count(), 0);
}

#[test]
fn datagrams_for_no_leg_and_garbage_are_refused_without_panicking() {
    let mut call = Call::new(None);
    call.run_for(Duration::from_secs(1));
    let mut rng = bond_codecs::signals::SplitMix64::new(9);
    for _ in 0..5_000 {
        let len = (rng.next_u64() % 300) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = call.engine.handle_webrtc_datagram(call.now, UDP, addr(BROWSER), addr(BOND), &data);
        let stranger = addr("10.9.9.9:1234");
        assert!(call.engine.handle_webrtc_datagram(call.now, UDP, stranger, addr(BOND), &data).is_err());
    }
    // The call goes on.
    call.run_for(Duration::from_secs(1));
    assert_eq!(call.ended(), None);
}
