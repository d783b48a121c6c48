//! Simulated time and network for deterministic tests.
//!
//! [`SimNetwork`] carries datagrams between the legs of one [`Engine`] with a
//! seeded base delay, jitter and loss, and [`SimNetwork::run_for`] jumps time
//! straight to the next deadline (a leg tick or a packet arrival). Minutes of
//! two-way audio run in milliseconds and every run with the same seed is the same.

mod link;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bond_codecs::AudioFrame;
use bytes::Bytes;

use link::Link;
pub use link::LinkProfile;

use crate::engine::{Engine, EngineOutput, Offload, Relay, StreamOutput};
use crate::event::{DtmfSource, EngineEvent};
use crate::ids::LegId;
use crate::leg::PacketBatch;

/// The one instant simulations start from. Read once; simulated time only moves by adding to it.
pub fn epoch() -> Instant {
    #[allow(clippy::disallowed_methods)] // the simulation's epoch, not a clock read in the core
    let now = Instant::now();
    now
}

/// One engine, legs wired in pairs through simulated links, and everything they output.
#[derive(Debug)]
pub struct SimNetwork {
    pub engine: Engine,
    now: Instant,
    start: Instant,
    routes: HashMap<LegId, (LegId, Link)>,
    in_flight: BinaryHeap<Reverse<(Instant, u64, LegId)>>,
    packets: HashMap<u64, Bytes>,
    next_packet: u64,
    heard: HashMap<LegId, Vec<AudioFrame>>,
    recorded: HashMap<LegId, Vec<(AudioFrame, AudioFrame)>>,
    recorded_packets: HashMap<LegId, Vec<PacketBatch>>,
    events: Vec<(Duration, EngineEvent)>,
    streamed: Vec<(Duration, LegId, StreamOutput)>,
    relays: Vec<Relay>,
    /// Directions offered to the kernel (`Some`) and ended (`None`), by receiving leg.
    offloads: Vec<(LegId, Option<Offload>)>,
    /// The latest RTP datagram each leg transmitted.
    last_rtp: HashMap<LegId, Bytes>,
    /// When each leg sent each RTP packet, with the packet's timestamp.
    sent_timestamps: HashMap<LegId, Vec<(Duration, u32)>>,
}

impl SimNetwork {
    pub fn new(seed: u64) -> Self {
        Self::with_engine(Engine::new(seed))
    }

    /// A simulation around `engine` (one of two that bridge across engines:
    /// give them disjoint leg ids with [`Engine::with_leg_ids`]).
    pub fn with_engine(engine: Engine) -> Self {
        let start = epoch();
        Self {
            engine,
            now: start,
            start,
            routes: HashMap::new(),
            in_flight: BinaryHeap::new(),
            packets: HashMap::new(),
            next_packet: 0,
            heard: HashMap::new(),
            recorded: HashMap::new(),
            recorded_packets: HashMap::new(),
            events: Vec::new(),
            streamed: Vec::new(),
            relays: Vec::new(),
            offloads: Vec::new(),
            last_rtp: HashMap::new(),
            sent_timestamps: HashMap::new(),
        }
    }

    /// What the engine relayed to other engines since the last call.
    /// The directions offered to the kernel (`Some`) and ended (`None`) since last taken.
    pub fn take_offloads(&mut self) -> Vec<(LegId, Option<Offload>)> {
        std::mem::take(&mut self.offloads)
    }

    pub fn take_relays(&mut self) -> Vec<Relay> {
        std::mem::take(&mut self.relays)
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Send what `a` transmits to `b` through `a_to_b`, and the reverse through `b_to_a`.
    pub fn connect(&mut self, a: LegId, b: LegId, a_to_b: LinkProfile, b_to_a: LinkProfile) {
        self.routes.insert(a, (b, Link::new(a_to_b)));
        self.routes.insert(b, (a, Link::new(b_to_a)));
    }

    /// Advance simulated time by `duration`, delivering packets and running timers.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        loop {
            self.drain_outputs();
            let next_packet = self.in_flight.peek().map(|Reverse((at, _, _))| *at);
            let next_timer = self.engine.poll_timeout();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            self.deliver_due();
            self.engine.handle_timeout(self.now);
        }
        self.now = until;
        self.drain_outputs();
    }

    /// The driver stalls for `duration`: nothing is delivered and no timer
    /// runs until it ends, when what came meanwhile is delivered and the
    /// timers run late.
    pub fn stall(&mut self, duration: Duration) {
        self.now += duration;
        self.deliver_due();
        self.engine.handle_timeout(self.now);
        self.drain_outputs();
    }

    /// When `leg` sent each RTP packet (time since the start), with its timestamp.
    pub fn sent_timestamps(&self, leg: LegId) -> &[(Duration, u32)] {
        self.sent_timestamps.get(&leg).map_or(&[], Vec::as_slice)
    }

    /// The latest RTP packet `leg` sent.
    pub fn last_rtp(&self, leg: LegId) -> Option<&[u8]> {
        self.last_rtp.get(&leg).map(|b| &b[..])
    }

    /// Frames a leg heard (legs created with `emit_heard`).
    pub fn heard(&self, leg: LegId) -> &[AudioFrame] {
        self.heard.get(&leg).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Heard audio of a leg as one sample vector.
    pub fn heard_samples(&self, leg: LegId) -> Vec<i16> {
        self.heard(leg).iter().flat_map(|f| f.samples().iter().copied()).collect()
    }

    /// (inbound, outbound) frames of a recorded leg, one pair per tick.
    pub fn recorded(&self, leg: LegId) -> &[(AudioFrame, AudioFrame)] {
        self.recorded.get(&leg).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The packet batches a recorded leg handed over while passing through.
    pub fn recorded_packets(&self, leg: LegId) -> &[PacketBatch] {
        self.recorded_packets.get(&leg).map(Vec::as_slice).unwrap_or(&[])
    }

    /// What stream legs sent their carriers, with the simulated time.
    pub fn streamed(&self) -> &[(Duration, LegId, StreamOutput)] {
        &self.streamed
    }

    /// The payloads stream leg `leg` sent its carrier, in order.
    pub fn stream_media(&self, leg: LegId) -> Vec<Vec<u8>> {
        self.stream_media_at(leg).into_iter().map(|(_, payload)| payload).collect()
    }

    /// The same, each with the simulated time it was output at.
    pub fn stream_media_at(&self, leg: LegId) -> Vec<(Duration, Vec<u8>)> {
        self.streamed
            .iter()
            .filter_map(|(at, l, out)| match out {
                StreamOutput::Media(p) if *l == leg => Some((*at, p.to_vec())),
                _ => None,
            })
            .collect()
    }

    /// Events with the simulated time they were output at.
    pub fn events(&self) -> &[(Duration, EngineEvent)] {
        &self.events
    }

    /// The digits `leg` detected in the audio it heard, in order.
    pub fn inband_digits(&self, leg: LegId) -> String {
        self.digits(leg, DtmfSource::InBand)
    }

    /// The digits `leg` received from `source`, in order.
    pub fn digits(&self, leg: LegId, source: DtmfSource) -> String {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                EngineEvent::DtmfReceived { leg: l, digit, source: s } if *l == leg && *s == source => {
                    Some(digit.as_char())
                }
                _ => None,
            })
            .collect()
    }

    fn deliver_due(&mut self) {
        while let Some(&Reverse((at, id, to))) = self.in_flight.peek() {
            if at > self.now {
                break;
            }
            self.in_flight.pop();
            if let Some(data) = self.packets.remove(&id) {
                // Errors are counted by the leg; a simulation delivers whatever the link carried.
                let _ = self.engine.handle_receive(self.now, to, &data);
            }
        }
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                EngineOutput::Transmit { leg, data } => {
                    if let Some(ts) = data.get(4..8) {
                        let ts = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]]);
                        let at = self.elapsed();
                        self.sent_timestamps.entry(leg).or_default().push((at, ts));
                    }
                    self.last_rtp.insert(leg, data.clone());
                    self.send(leg, data)
                }
                // RTCP travels the same link (the engine tells it from RTP).
                EngineOutput::TransmitRtcp { leg, data } => self.send(leg, data),
                EngineOutput::Heard { leg, frame } => self.heard.entry(leg).or_default().push(frame),
                EngineOutput::Recorded { leg, inbound, outbound, .. } => {
                    self.recorded.entry(leg).or_default().push((inbound, outbound));
                }
                EngineOutput::RecordedPackets { leg, batch } => {
                    self.recorded_packets.entry(leg).or_default().push(*batch);
                }
                EngineOutput::Event(event) => self.events.push((self.elapsed(), event)),
                EngineOutput::Stream { leg, output } => self.streamed.push((self.elapsed(), leg, output)),
                // The simulated network links RTP legs; WebRTC tests drive a peer themselves.
                EngineOutput::Datagram { .. } => {}
                EngineOutput::Relay(relay) => self.relays.push(relay),
                EngineOutput::Offload(offload) => self.offloads.push((offload.from, Some(offload))),
                EngineOutput::OffloadEnded { from } => self.offloads.push((from, None)),
            }
        }
    }

    fn send(&mut self, from: LegId, data: Bytes) {
        let Some((to, link)) = self.routes.get_mut(&from) else { return };
        let to = *to;
        let Some(delay) = link.transit() else { return };
        let id = self.next_packet;
        self.next_packet += 1;
        self.packets.insert(id, data);
        self.in_flight.push(Reverse((self.now + delay, id, to)));
    }
}
