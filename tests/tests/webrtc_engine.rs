//! WebRTC legs in simulated time: a str0m peer playing the browser (offering
//! Opus, or PCMU, and telephone-events, in str0m's frame mode) talks to the
//! engine's WebRTC leg over an in-memory network. ICE, DTLS-SRTP and RTCP all
//! run for real; only the wire and the clock are simulated.
//!
//! The real-browser tests are tests/interop/test_webrtc_*.py (Chromium, aiortc).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::signals::Oscillator;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::{plain_packet, RtpPacket};
use bond_media_engine::webrtc::{HostCandidates, IceCreds, Transport, WebRtcOptions, CONNECT_TIMEOUT};
use bond_media_engine::{DtmfSource, Engine, EngineError, EngineEvent, EngineOutput, HangupCause, LegId};
use bond_tests::tone_share;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// This file's browser talks to Bond over UDP.
const UDP: Transport = Transport::Udp;

/// Bond announcing its one address, over UDP.
fn at_bond() -> HostCandidates {
    HostCandidates::udp(vec![addr(BOND)])
}

const BOND: &str = "10.0.0.1:40000";
const BROWSER: &str = "10.0.0.2:50000";
/// Bond's public address when it sits behind 1:1 NAT at [`BOND`].
const PUBLIC: &str = "203.0.113.9:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn credentials(n: u32) -> IceCreds {
    IceCreds { ufrag: format!("bond{n:04}"), pass: format!("{n:024}") }
}

/// The browser's side: a str0m peer that offers `codec` (Opus or PCMU), sends
/// a tone and decodes what it hears.
struct Browser {
    rtc: Rtc,
    mid: Mid,
    codec: Codec,
    /// str0m's name for the codec, and its RTP clock.
    format: (RtcCodec, Frequency),
    connected: bool,
    deadline: Instant,
    heard: Vec<i16>,
    /// The payload of every frame received, as it came.
    payloads: Vec<Vec<u8>>,
    decoder: bond_codecs::AudioDecoder,
    encoder: bond_codecs::AudioEncoder,
    voice: Option<Oscillator>,
    /// RTP time of the next frame sent.
    sent: u64,
    events: Vec<Event>,
}

impl Browser {
    fn offer(now: Instant, voice_hz: Option<f64>) -> (Self, String, SdpPendingOffer) {
        Self::offer_codec(now, voice_hz, Codec::Opus)
    }

    fn offer_codec(now: Instant, voice_hz: Option<f64>, codec: Codec) -> (Self, String, SdpPendingOffer) {
        let builder = Rtc::builder().clear_codecs();
        let (mut builder, events_pt, format) = match codec {
            Codec::Opus => {
                (builder.enable_opus(true, false), 110, (RtcCodec::Opus, Frequency::FORTY_EIGHT_KHZ))
            }
            Codec::Pcmu => (builder.enable_pcmu(true, false), 101, (RtcCodec::PCMU, Frequency::EIGHT_KHZ)),
            other => panic!("the browser offers Opus or PCMU, not {other:?}"),
        };
        builder.codec_config().add_config(
            events_pt.into(),
            None,
            RtcCodec::Tele,
            format.1,
            None,
            FormatParams::parse_line("0-16"),
        );
        let mut rtc = builder.build(now);
        rtc.add_local_candidate(Candidate::host(addr(BROWSER), "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let rate = codec.sample_rate().hz();
        let browser = Self {
            rtc,
            mid,
            codec,
            format,
            connected: false,
            deadline: now,
            heard: Vec::new(),
            payloads: Vec::new(),
            decoder: codec.decoder().unwrap(),
            encoder: codec.encoder_with(OpusConfig::default()).unwrap(),
            voice: voice_hz.map(|hz| Oscillator::new(hz, rate, 8000.0)),
            sent: 0,
            events: Vec::new(),
        };
        (browser, offer.to_sdp_string(), pending)
    }

    /// Drain to a timeout; returns the datagrams for Bond.
    fn drain(&mut self) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(at) => {
                    self.deadline = at;
                    return out;
                }
                Output::Transmit(t) => out.push((t.source, t.destination, t.contents.to_vec())),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(data)) => {
                    let mut frame = AudioFrame::silent(self.codec.sample_rate(), 0);
                    self.decoder.decode(&data.data, &mut frame).unwrap();
                    self.heard.extend_from_slice(frame.samples());
                    self.payloads.push(data.data.to_vec());
                }
                Output::Event(other) => self.events.push(other),
            }
        }
    }

    /// 20 ms of the browser's voice (silence when it has none).
    fn speak(&mut self, now: Instant, event: Option<TelephoneEvent>) {
        let mut frame = AudioFrame::silent(self.codec.sample_rate(), self.sent);
        if let Some(voice) = &mut self.voice {
            voice.fill(frame.samples_mut());
        }
        let mut payload = vec![0; 1500];
        let len = self.encoder.encode(&frame, &mut payload).unwrap();
        payload.truncate(len);
        self.send(now, payload, event);
    }

    /// A 20 ms frame of `payload`, as it is.
    fn send(&mut self, now: Instant, payload: Vec<u8>, event: Option<TelephoneEvent>) {
        let (codec, clock) = self.format;
        let time = MediaTime::new(self.sent, clock);
        self.sent += u64::from(self.codec.rtp_clock_rate() / 50);
        let mut writer = self.rtc.writer(self.mid).unwrap();
        let pt = writer.payload_params().find(|p| p.spec().codec == codec).unwrap().pt();
        if let Some(event) = event {
            writer = writer.telephone_event(event);
        }
        writer.write(pt, now, time, payload).unwrap();
        // str0m's pacer lets it out when its time next runs.
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
    }
}

/// The engine and the browser, and the simulated clock between them.
struct Call {
    engine: Engine,
    browser: Browser,
    leg: LegId,
    now: Instant,
    next_voice: Instant,
    events: Vec<EngineEvent>,
    /// What the engine sent out of its other (plain RTP) legs.
    transmitted: Vec<(LegId, Vec<u8>)>,
    /// Datagrams the engine sent the browser.
    to_browser: usize,
    /// Deliver nothing either way (a browser that vanished).
    cut: bool,
    /// Where the browser sends (what Bond announced), and where its datagrams
    /// arrive at Bond: the same, or the public and private sides of a 1:1 NAT.
    reached_at: SocketAddr,
    arrives_at: SocketAddr,
    /// Each datagram Bond sent, the local address it asked to send from.
    sent_from: Vec<Option<std::net::IpAddr>>,
}

impl Call {
    fn new(voice_hz: Option<f64>) -> Self {
        Self::with(voice_hz, Codec::Opus, false)
    }

    /// A browser offering `codec`, its leg allowed to pass through or not.
    fn with(voice_hz: Option<f64>, codec: Codec, passthrough: bool) -> Self {
        Self::reaching(voice_hz, codec, passthrough, &[addr(BOND)], addr(BOND))
    }

    /// Bond announcing `announced` (the browser sends to the first), its
    /// datagrams arriving at `arrives_at`.
    fn reaching(
        voice_hz: Option<f64>,
        codec: Codec,
        passthrough: bool,
        announced: &[SocketAddr],
        arrives_at: SocketAddr,
    ) -> Self {
        let now = bond_media_engine::sim::epoch();
        let mut engine = Engine::new(3);
        engine.set_webrtc_options(WebRtcOptions { passthrough, ..WebRtcOptions::default() });
        let (mut browser, offer, pending) = Browser::offer_codec(now, voice_hz, codec);
        let (leg, answer) = engine
            .add_webrtc_leg(now, &offer, &HostCandidates::udp(announced.to_vec()), credentials(1))
            .unwrap();
        assert_eq!(answer.codec, codec);
        browser
            .rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap())
            .unwrap();
        let (events, transmitted) = (Vec::new(), Vec::new());
        Self {
            engine,
            browser,
            leg,
            now,
            next_voice: now,
            events,
            transmitted,
            to_browser: 0,
            cut: false,
            reached_at: announced[0],
            arrives_at,
            sent_from: Vec::new(),
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.exchange();
            let mut next = self.browser.deadline.min(self.next_voice).min(end);
            if let Some(at) = self.engine.poll_timeout() {
                next = next.min(at);
            }
            self.now = next.max(self.now);
            self.engine.handle_timeout(self.now);
            self.browser.rtc.handle_input(Input::Timeout(self.now)).unwrap();
            if self.now >= self.next_voice {
                if self.browser.connected {
                    self.browser.speak(self.now, None);
                }
                self.next_voice += Duration::from_millis(20);
            }
        }
        self.exchange();
    }

    /// Move datagrams both ways until neither side has anything to say.
    fn exchange(&mut self) {
        loop {
            let to_bond = self.browser.drain();
            let mut to_browser = Vec::new();
            while let Some(output) = self.engine.poll_output() {
                match output {
                    EngineOutput::Datagram { from, to, data, .. } => {
                        self.sent_from.push(from);
                        to_browser.push((to, data));
                    }
                    EngineOutput::Event(e) => self.events.push(e),
                    EngineOutput::Transmit { leg, data } => self.transmitted.push((leg, data.to_vec())),
                    _ => {}
                }
            }
            if self.cut || (to_bond.is_empty() && to_browser.is_empty()) {
                return;
            }
            for (source, destination, data) in to_bond {
                // The browser only ever sends where Bond told it to.
                if destination != self.reached_at {
                    continue;
                }
                let _ = self.engine.handle_webrtc_datagram(self.now, UDP, source, self.arrives_at, &data);
            }
            self.to_browser += to_browser.len();
            for (to, data) in to_browser {
                assert_eq!(to, addr(BROWSER));
                // Back through the NAT, if any: from where the browser sent.
                let receive = Receive::new(Protocol::Udp, self.reached_at, to, &data).unwrap();
                self.browser.rtc.handle_input(Input::Receive(self.now, receive)).unwrap();
            }
        }
    }

    fn ended(&self) -> Option<HangupCause> {
        self.events.iter().find_map(|e| match e {
            EngineEvent::LegEnded { leg, cause, .. } if *leg == self.leg => Some(*cause),
            _ => None,
        })
    }
}

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
