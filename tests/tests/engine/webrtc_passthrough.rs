//! WebRTC legs passing packets through in simulated time: a PCMU browser (a
//! str0m peer) bridged to a SIP leg, or to an echo, without decoding; digits
//! crossing such a bridge. See `webrtc_engine.rs` for the rest.

use crate::webrtc_sim::*;

/// Bytes that G.711 decoding and encoding again would not give back (0x7f and
/// 0xff both decode to 0, which encodes as 0xff): only a packet passed through
/// arrives with them.
fn marked_payload(n: u8) -> Vec<u8> {
    (0..160u8).map(|i| if i % 2 == 0 { 0x7f } else { n.wrapping_add(i) }).collect()
}

/// A PCMU browser (passthrough allowed) bridged to a SIP-style PCMU leg
/// (RFC 4733, passthrough allowed), a second in: the call, the SIP leg, and
/// that leg's telephone-event payload type.
fn pcmu_browser_bridged_to_sip() -> (Call, LegId, u8) {
    let mut call = Call::with(None, Codec::Pcmu, true);
    let mut config = call.engine.leg_config(Codec::Pcmu);
    config.send_events = true;
    config.passthrough = true;
    let events_pt = config.telephone_event_pt.unwrap().get();
    let sip = call.engine.add_leg(call.now, config, MediaSource::Silence).unwrap();
    call.engine.bridge(call.leg, sip).unwrap();
    call.run_for(Duration::from_secs(1));
    (call, sip, events_pt)
}

#[test]
fn a_pcmu_browser_bridged_to_a_pcmu_sip_leg_passes_packets_through_both_ways_unchanged() {
    let (mut call, sip, _) = pcmu_browser_bridged_to_sip();
    assert!(call.browser.connected, "ICE + DTLS never completed");
    assert!(call.engine.is_passthrough(call.leg) && call.engine.is_passthrough(sip));

    // The SIP peer's packets leave for the browser the moment they arrive
    // (no tick runs here), and reach it as they were.
    call.browser.payloads.clear();
    let mut buf = Vec::new();
    for n in 0..50u8 {
        let packet = plain_packet(
            &mut buf,
            false,
            0,
            1000 + u16::from(n),
            160 * u32::from(n),
            0xbeef,
            &marked_payload(n),
        );
        let before = call.to_browser;
        call.engine.handle_receive(call.now, sip, packet).unwrap();
        call.exchange();
        assert_eq!(call.to_browser, before + 1, "packet {n} sent on at once");
    }
    call.run_for(Duration::from_millis(200));
    let expected: Vec<_> = (0..50).map(marked_payload).collect();
    assert!(call.browser.payloads.windows(50).any(|w| w == expected), "the packets arrived as sent");

    // The browser's reach the SIP peer the same way, on its own payload type.
    call.transmitted.clear();
    for n in 0..50u8 {
        call.browser.send(call.now, marked_payload(n), None);
        call.exchange();
        let sent: Vec<_> = call.transmitted.iter().filter(|(leg, _)| *leg == sip).collect();
        let packet = RtpPacket::parse(&sent.last().expect("a packet out of the SIP leg").1).unwrap();
        assert_eq!(packet.header.payload_type, 0);
        assert_eq!(packet.payload, marked_payload(n), "packet {n}");
    }
    assert_eq!(call.engine.stats(call.leg).unwrap().packets_malformed, 0);
    // Counted for `/metrics`: these 100, and the browser's silence beside them.
    assert!(call.engine.take_passed_through() >= 100);
}

#[test]
fn a_browser_digit_crosses_a_passthrough_bridge_as_a_telephone_event() {
    let (mut call, sip, events_pt) = pcmu_browser_bridged_to_sip();
    assert!(call.engine.is_passthrough(call.leg));
    call.transmitted.clear();
    let seven = TelephoneEvent { event: 7, end: true, volume: 10, duration: Duration::from_millis(100) };
    call.browser.send(call.now, marked_payload(0), Some(seven));
    call.run_for(Duration::from_millis(200));
    let digits: Vec<_> = call
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::DtmfReceived { leg, digit, .. } if *leg == call.leg => Some(digit.as_char()),
            _ => None,
        })
        .collect();
    assert_eq!(digits, ['7']);
    let event = call.transmitted.iter().find_map(|(leg, data)| {
        let packet = RtpPacket::parse(data).unwrap();
        (*leg == sip && packet.header.payload_type == events_pt).then(|| packet.payload.to_vec())
    });
    assert_eq!(event.expect("a telephone-event out of the SIP leg")[0], 7);
    // Still passing through: the digit went across as its own packets.
    assert!(call.engine.is_passthrough(call.leg));
}

#[test]
fn a_browser_bridged_to_an_echo_with_passthrough_gets_its_own_packets_back() {
    let mut call = Call::with(Some(440.0), Codec::Opus, true);
    let echo = call.engine.add_local_leg(call.now, SampleRate::Hz48000, MediaSource::Echo);
    call.engine.bridge(call.leg, echo).unwrap();
    call.run_for(Duration::from_secs(1));
    assert!(call.engine.is_passthrough(call.leg));
    // Opus packets no encoder would make: reflected, they come back as they are.
    call.browser.voice = None;
    call.browser.payloads.clear();
    let sent: Vec<Vec<u8>> = (0..20u8).map(|n| vec![0x78, n, 0x55, 0xaa, n]).collect();
    for packet in &sent {
        call.browser.send(call.now, packet.clone(), None);
        call.exchange();
    }
    call.browser.voice = Some(Oscillator::new(440.0, 48_000, 8000.0));
    call.run_for(Duration::from_secs(2));
    assert!(call.browser.payloads.windows(sent.len()).any(|w| w == sent), "the packets came back as sent");
    let heard = &call.browser.heard;
    let share = tone_share(&heard[heard.len() / 2..], 440.0, 48_000);
    assert!(share > 0.8, "440 Hz share {share:.2}");
}

#[test]
fn a_sip_digit_towards_a_passthrough_browser_is_played_to_it_in_band_then_passthrough_resumes() {
    let (mut call, sip, events_pt) = pcmu_browser_bridged_to_sip();
    assert!(call.engine.is_passthrough(call.leg));
    call.browser.heard.clear();

    // Digit 3 as RFC 4733: 160 ms of updates, then the end three times.
    let mut buf = Vec::new();
    for n in 0..11u16 {
        let end = n >= 8;
        let duration = 160 * (n.min(8) + 1);
        let payload = [3, if end { 0x80 | 10 } else { 10 }, (duration >> 8) as u8, duration as u8];
        let packet = plain_packet(&mut buf, n == 0, events_pt, 2000 + n, 48_000, 0xbeef, &payload);
        call.engine.handle_receive(call.now, sip, packet).unwrap();
        call.run_for(Duration::from_millis(20));
    }
    call.run_for(Duration::from_millis(500));
    let mut detector = bond_codecs::dtmf::DtmfDetector::new(8000);
    detector.push(&call.browser.heard);
    let mut digits = Vec::new();
    while let Some(event) = detector.poll_event() {
        if let bond_codecs::dtmf::DtmfEvent::Started { digit, .. } = event {
            digits.push(digit.as_char());
        }
    }
    assert_eq!(digits, ['3'], "the browser hears the digit in its audio");
    assert!(call.engine.is_passthrough(call.leg), "passing through again once it has sounded");
}

#[test]
fn the_configured_codec_order_picks_the_browsers_codec_and_leads_the_answer() {
    let now = bond_media_engine::sim::epoch();
    for (codecs, chosen, first_pt) in [
        (vec![Codec::Pcmu, Codec::Opus], Codec::Pcmu, "0"),
        (vec![Codec::Opus, Codec::Pcmu], Codec::Opus, "111"),
    ] {
        let mut engine = Engine::new(4);
        engine.set_webrtc_options(WebRtcOptions { codecs, passthrough: true });
        // A browser offering Opus first, then PCMU, as Chromium does.
        let mut rtc =
            Rtc::builder().clear_codecs().enable_opus(true, false).enable_pcmu(true, false).build(now);
        rtc.add_local_candidate(Candidate::host(addr(BROWSER), "udp").unwrap());
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, _) = change.apply().unwrap();
        let (_, answer) =
            engine.add_webrtc_leg(now, &offer.to_sdp_string(), &at_bond(), credentials(5)).unwrap();
        assert_eq!(answer.codec, chosen);
        let m_line = answer.sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
        assert_eq!(m_line.split(' ').nth(3), Some(first_pt), "{m_line}");
    }
}
