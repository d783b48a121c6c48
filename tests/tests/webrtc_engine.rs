//! WebRTC legs in simulated time: a str0m peer playing the browser (offering
//! Opus and telephone-events, in str0m's frame mode) talks to the engine's
//! WebRTC leg over an in-memory network. ICE, DTLS-SRTP and RTCP all run for
//! real; only the wire and the clock are simulated.
//!
//! The real-browser tests are tests/interop/test_webrtc_*.py (Chromium, aiortc).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::signals::Oscillator;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::webrtc::{IceCreds, CONNECT_TIMEOUT};
use bond_media_engine::{DtmfSource, Engine, EngineError, EngineEvent, EngineOutput, HangupCause, LegId};
use bond_tests::tone_share;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const BOND: &str = "10.0.0.1:40000";
const BROWSER: &str = "10.0.0.2:50000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn credentials(n: u32) -> IceCreds {
    IceCreds { ufrag: format!("bond{n:04}"), pass: format!("{n:024}") }
}

/// The browser's side: a str0m peer that offers, sends a tone and decodes what it hears.
struct Browser {
    rtc: Rtc,
    mid: Mid,
    connected: bool,
    deadline: Instant,
    heard: Vec<i16>,
    decoder: bond_codecs::AudioDecoder,
    encoder: bond_codecs::AudioEncoder,
    voice: Option<Oscillator>,
    sent_samples: u64,
    events: Vec<Event>,
}

impl Browser {
    fn offer(now: Instant, voice_hz: Option<f64>) -> (Self, String, SdpPendingOffer) {
        let mut builder = Rtc::builder().clear_codecs().enable_opus(true, false);
        builder.codec_config().add_config(
            110.into(),
            None,
            RtcCodec::Tele,
            Frequency::FORTY_EIGHT_KHZ,
            None,
            FormatParams::parse_line("0-16"),
        );
        let mut rtc = builder.build(now);
        rtc.add_local_candidate(Candidate::host(addr(BROWSER), "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let browser = Self {
            rtc,
            mid,
            connected: false,
            deadline: now,
            heard: Vec::new(),
            decoder: Codec::Opus.decoder().unwrap(),
            encoder: Codec::Opus.encoder_with(OpusConfig::default()).unwrap(),
            voice: voice_hz.map(|hz| Oscillator::new(hz, 48_000, 8000.0)),
            sent_samples: 0,
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
                    let mut frame = AudioFrame::silent(SampleRate::Hz48000, 0);
                    self.decoder.decode(&data.data, &mut frame).unwrap();
                    self.heard.extend_from_slice(frame.samples());
                }
                Output::Event(other) => self.events.push(other),
            }
        }
    }

    /// 20 ms of the browser's voice (silence when it has none).
    fn speak(&mut self, now: Instant, event: Option<TelephoneEvent>) {
        let mut frame = AudioFrame::silent(SampleRate::Hz48000, self.sent_samples);
        if let Some(voice) = &mut self.voice {
            voice.fill(frame.samples_mut());
        }
        let mut payload = vec![0; 1500];
        let len = self.encoder.encode(&frame, &mut payload).unwrap();
        payload.truncate(len);
        let time = MediaTime::new(self.sent_samples, Frequency::FORTY_EIGHT_KHZ);
        self.sent_samples += 960;
        let mut writer = self.rtc.writer(self.mid).unwrap();
        let pt = writer.payload_params().find(|p| p.spec().codec == RtcCodec::Opus).unwrap().pt();
        if let Some(event) = event {
            writer = writer.telephone_event(event);
        }
        writer.write(pt, now, time, payload).unwrap();
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
    /// Deliver nothing either way (a browser that vanished).
    cut: bool,
}

impl Call {
    fn new(voice_hz: Option<f64>) -> Self {
        let now = bond_media_engine::sim::epoch();
        let mut engine = Engine::new(3);
        let (mut browser, offer, pending) = Browser::offer(now, voice_hz);
        let (leg, answer) = engine.add_webrtc_leg(now, &offer, addr(BOND), credentials(1)).unwrap();
        assert_eq!(answer.codec, Codec::Opus);
        browser
            .rtc
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer.sdp).unwrap())
            .unwrap();
        Self { engine, browser, leg, now, next_voice: now, events: Vec::new(), cut: false }
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
                    EngineOutput::Datagram { to, data, .. } => to_browser.push((to, data)),
                    EngineOutput::Event(e) => self.events.push(e),
                    _ => {}
                }
            }
            if self.cut || (to_bond.is_empty() && to_browser.is_empty()) {
                return;
            }
            for (source, destination, data) in to_bond {
                let _ = self.engine.handle_webrtc_datagram(self.now, source, destination, &data);
            }
            for (to, data) in to_browser {
                assert_eq!(to, addr(BROWSER));
                let receive = Receive::new(Protocol::Udp, addr(BOND), to, &data).unwrap();
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
    assert!(call.engine.add_webrtc_leg(call.now, &offer, addr(BOND), credentials(1)).is_ok());
}

#[test]
fn bad_offers_are_refused_with_an_error() {
    let now = bond_media_engine::sim::epoch();
    let mut engine = Engine::new(1);
    for offer in ["", "v=0\r\n", "not sdp at all", &"a".repeat(100_000)] {
        let err = engine.add_webrtc_leg(now, offer, addr(BOND), credentials(2)).unwrap_err();
        assert!(matches!(err, EngineError::WebRtc(_)), "{err}");
    }
    // An offer with video only has no audio for Bond.
    let mut rtc = Rtc::builder().clear_codecs().enable_vp8(true).build(now);
    rtc.add_local_candidate(Candidate::host(addr(BROWSER), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, _) = change.apply().unwrap();
    let err = engine.add_webrtc_leg(now, &offer.to_sdp_string(), addr(BOND), credentials(3)).unwrap_err();
    assert!(err.to_string().contains("audio") || err.to_string().contains("codec"), "{err}");
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
        let _ = call.engine.handle_webrtc_datagram(call.now, addr(BROWSER), addr(BOND), &data);
        let stranger = addr("10.9.9.9:1234");
        assert!(call.engine.handle_webrtc_datagram(call.now, stranger, addr(BOND), &data).is_err());
    }
    // The call goes on.
    call.run_for(Duration::from_secs(1));
    assert_eq!(call.ended(), None);
}
