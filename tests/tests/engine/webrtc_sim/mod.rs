//! The simulated browser and call the WebRTC engine tests share: a str0m
//! peer playing the browser, the engine, and the in-memory wire and clock
//! between them.
#![allow(dead_code, unused_imports)] // each test binary uses part of this

pub use std::net::SocketAddr;
pub use std::time::{Duration, Instant};

pub use bond_codecs::opus_codec::OpusConfig;
pub use bond_codecs::signals::Oscillator;
pub use bond_codecs::{AudioFrame, Codec, SampleRate};
pub use bond_media_engine::leg::MediaSource;
pub use bond_media_engine::rtp::{plain_packet, RtpPacket};
pub use bond_media_engine::webrtc::{HostCandidates, IceCreds, Transport, WebRtcOptions, CONNECT_TIMEOUT};
pub use bond_media_engine::{DtmfSource, Engine, EngineError, EngineEvent, EngineOutput, HangupCause, LegId};
pub use bond_tests::tone_share;
pub use str0m::change::{SdpAnswer, SdpPendingOffer};
pub use str0m::format::{Codec as RtcCodec, FormatParams};
pub use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, TelephoneEvent};
pub use str0m::net::{Protocol, Receive};
pub use str0m::{Candidate, Event, Input, Output, Rtc};

/// This file's browser talks to Bond over UDP.
pub const UDP: Transport = Transport::Udp;

/// Bond announcing its one address, over UDP.
pub fn at_bond() -> HostCandidates {
    HostCandidates::udp(vec![addr(BOND)])
}

pub const BOND: &str = "10.0.0.1:40000";
pub const BROWSER: &str = "10.0.0.2:50000";
/// Bond's public address when it sits behind 1:1 NAT at [`BOND`].
pub const PUBLIC: &str = "203.0.113.9:40000";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn credentials(n: u32) -> IceCreds {
    IceCreds { ufrag: format!("bond{n:04}"), pass: format!("{n:024}") }
}

/// The browser's side: a str0m peer that offers `codec` (Opus or PCMU), sends
/// a tone and decodes what it hears.
pub struct Browser {
    pub rtc: Rtc,
    pub mid: Mid,
    pub codec: Codec,
    /// str0m's name for the codec, and its RTP clock.
    pub format: (RtcCodec, Frequency),
    pub connected: bool,
    pub deadline: Instant,
    pub heard: Vec<i16>,
    /// The payload of every frame received, as it came.
    pub payloads: Vec<Vec<u8>>,
    pub decoder: bond_codecs::AudioDecoder,
    pub encoder: bond_codecs::AudioEncoder,
    pub voice: Option<Oscillator>,
    /// RTP time of the next frame sent.
    pub sent: u64,
    pub events: Vec<Event>,
}

impl Browser {
    pub fn offer(now: Instant, voice_hz: Option<f64>) -> (Self, String, SdpPendingOffer) {
        Self::offer_codec(now, voice_hz, Codec::Opus)
    }

    pub fn offer_codec(now: Instant, voice_hz: Option<f64>, codec: Codec) -> (Self, String, SdpPendingOffer) {
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
    pub fn drain(&mut self) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
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
    pub fn speak(&mut self, now: Instant, event: Option<TelephoneEvent>) {
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
    pub fn send(&mut self, now: Instant, payload: Vec<u8>, event: Option<TelephoneEvent>) {
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
pub struct Call {
    pub engine: Engine,
    pub browser: Browser,
    pub leg: LegId,
    pub now: Instant,
    pub next_voice: Instant,
    pub events: Vec<EngineEvent>,
    /// What the engine sent out of its other (plain RTP) legs.
    pub transmitted: Vec<(LegId, Vec<u8>)>,
    /// Datagrams the engine sent the browser.
    pub to_browser: usize,
    /// Deliver nothing either way (a browser that vanished).
    pub cut: bool,
    /// Where the browser sends (what Bond announced), and where its datagrams
    /// arrive at Bond: the same, or the public and private sides of a 1:1 NAT.
    pub reached_at: SocketAddr,
    pub arrives_at: SocketAddr,
    /// Each datagram Bond sent, the local address it asked to send from.
    pub sent_from: Vec<Option<std::net::IpAddr>>,
}

impl Call {
    pub fn new(voice_hz: Option<f64>) -> Self {
        Self::with(voice_hz, Codec::Opus, false)
    }

    /// A browser offering `codec`, its leg allowed to pass through or not.
    pub fn with(voice_hz: Option<f64>, codec: Codec, passthrough: bool) -> Self {
        Self::reaching(voice_hz, codec, passthrough, &[addr(BOND)], addr(BOND))
    }

    /// Bond announcing `announced` (the browser sends to the first), its
    /// datagrams arriving at `arrives_at`.
    pub fn reaching(
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

    pub fn run_for(&mut self, duration: Duration) {
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
    pub fn exchange(&mut self) {
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

    pub fn ended(&self) -> Option<HangupCause> {
        self.events.iter().find_map(|e| match e {
            EngineEvent::LegEnded { leg, cause, .. } if *leg == self.leg => Some(*cause),
            _ => None,
        })
    }
}
