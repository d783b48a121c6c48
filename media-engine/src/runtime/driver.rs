//! The drivers: one per shard, each with its engine, its legs' sockets, and
//! the loop in the module docs.

mod bind;
mod offload;
mod packets;
mod taps;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::driver_thread::{on_own_thread, own_runtime};
use super::fork::{self, ForkSink};
use super::handle::{
    Command, EngineHandle, LegInfo, LegSpec, RuntimeError, RuntimeMetrics, ShardHandle, StreamInput,
    StreamLeg,
};
use super::kernel_relay::KernelRelay;
use super::leg_socket::{LegSocket, RtcpSocket, SocketSrtp};
use super::ports::PortAllocator;
use super::record_writer::Writers;
use super::recorder::{self, RecordInput, RecordSink};
use super::socket_set::SocketSet;
use super::webrtc_routes::WebRtcRoutes;
use super::webrtc_socket::WebRtcSocket;
use super::{now, shard_of, unix_time, RuntimeConfig};
use crate::engine::{Engine, EngineOutput, Relay, StreamOutput};
use crate::event::{EngineEvent, HangupCause};
use crate::ids::LegId;
use crate::leg::{RecordTap, RtcpSetup};
use crate::rtp::MAX_RTP_PACKET;
use crate::webrtc::{Transport, WebRtcOptions, DEFAULT_CODECS};
use bind::{bind_rtp_port, rtcp_socket};

const COMMAND_QUEUE: usize = 256;
const DATAGRAM_QUEUE: usize = 4096;
const EVENT_QUEUE: usize = 1024;
const STREAM_INPUT_QUEUE: usize = 8192;
/// Frames, packets, digits and unbridges from other shards' engines: about
/// 160 ms of 1,000 bridges passing through across shards (each packet a relay),
/// so a driver held up for longer than a tick does not lose packets.
const RELAY_QUEUE: usize = 16_384;
/// What a stream leg may have waiting for its socket (1.28 s of audio).
const STREAM_OUTPUT_QUEUE: usize = 64;

/// A datagram for a driver: the leg it is for, the transport it came over
/// (TCP only on the WebRTC port), where it came from, the local address it
/// arrived at when known (the WebRTC port's), and its bytes.
pub(super) type Datagram = (LegId, Transport, SocketAddr, Option<SocketAddr>, Bytes);

/// Datagrams from the shared WebRTC port travel the datagram channel under this
/// id; the engine never gives a leg id 0.
pub(super) const WEBRTC_PORT: LegId = LegId(0);

/// What every shard's driver shares.
struct Shared {
    config: RuntimeConfig,
    ports: Mutex<PortAllocator>,
    webrtc: Option<WebRtcSocket>,
    webrtc_routes: Arc<WebRtcRoutes>,
    /// Each shard's relay queue, by shard index.
    relays: Vec<mpsc::Sender<Relay>>,
    events: broadcast::Sender<EngineEvent>,
    metrics: Arc<RuntimeMetrics>,
    /// The recordings' writer threads (one per shard), shared by every shard.
    writers: Writers,
    /// The in-kernel relay, when asked for and loaded (`driver/offload.rs`).
    kernel_relay: Option<Mutex<KernelRelay>>,
}

impl Shared {
    fn ports(&self) -> std::sync::MutexGuard<'_, PortAllocator> {
        // The allocator holds no invariant a panicking holder could break half-way.
        self.ports.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Driver {
    shared: Arc<Shared>,
    engine: Engine,
    sockets: FxHashMap<LegId, LegSocket>,
    /// The legs' RTP and RTCP sockets, read by the driver itself.
    rtp_sockets: SocketSet,
    /// What a datagram from `rtp_sockets` is read into.
    rtp_buf: Vec<u8>,
    recordings: FxHashMap<LegId, RecordSink>,
    /// Each leg's forks, by the consumer's name (one fork per name).
    forks: FxHashMap<LegId, Vec<(&'static str, ForkSink)>>,
    streams: FxHashMap<LegId, mpsc::Sender<StreamOutput>>,
    /// Holds the shard's datagram queue open (the WebRTC port, when there is
    /// one, feeds it; without one nothing does).
    _datagrams: mpsc::Sender<Datagram>,
    /// Legs this shard's engine holds, for placing new ones.
    legs: Arc<AtomicU64>,
    /// Passthrough directions offered to the kernel, by receiving leg.
    offloads: FxHashMap<LegId, offload::Wanted>,
}

/// The receiving ends of one shard's queues.
struct Inputs {
    commands: mpsc::Receiver<Command>,
    datagrams: mpsc::Receiver<Datagram>,
    streams: mpsc::Receiver<(LegId, StreamInput)>,
    relays: mpsc::Receiver<Relay>,
}

pub(super) fn spawn(config: RuntimeConfig) -> (EngineHandle, JoinHandle<()>) {
    let count = config.shard_count();
    let (events, _) = broadcast::channel(EVENT_QUEUE);
    let metrics = Arc::new(RuntimeMetrics::default());
    let webrtc_routes = Arc::new(WebRtcRoutes::default());
    let mut handles = Vec::with_capacity(count);
    let mut inputs = Vec::with_capacity(count);
    let mut datagram_queues = Vec::with_capacity(count);
    let mut relays = Vec::with_capacity(count);
    let mut runtimes = Vec::with_capacity(count);
    for index in 0..count {
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (datagrams, datagrams_rx) = mpsc::channel(DATAGRAM_QUEUE);
        let (streams, streams_rx) = mpsc::channel(STREAM_INPUT_QUEUE);
        let (relay, relays_rx) = mpsc::channel(RELAY_QUEUE);
        let runtime = config.driver_threads.then(|| own_runtime(index)).flatten();
        let beside = runtime.as_ref().map(|r| r.handle().clone());
        runtimes.push(runtime);
        handles.push(ShardHandle { commands, streams, legs: Arc::default(), runtime: beside });
        inputs.push(Inputs {
            commands: commands_rx,
            datagrams: datagrams_rx,
            streams: streams_rx,
            relays: relays_rx,
        });
        datagram_queues.push(datagrams);
        relays.push(relay);
    }
    let webrtc = config.webrtc.as_ref().and_then(|port| {
        match WebRtcSocket::open(port, &datagram_queues, &webrtc_routes, &metrics) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::error!(error = %e, "the WebRTC port cannot be used; WebRTC legs are refused");
                None
            }
        }
    });
    let seeds = super::shard_seeds(config.seed);
    let kernel_relay = config.kernel_relay.then(KernelRelay::for_runtime).flatten().map(Mutex::new);
    let shared = Arc::new(Shared {
        ports: Mutex::new(PortAllocator::new(config.rtp_ports)),
        config,
        webrtc,
        webrtc_routes,
        relays,
        events: events.clone(),
        metrics: metrics.clone(),
        writers: Writers::new(count),
        kernel_relay,
    });
    let tasks: Vec<JoinHandle<()>> = inputs
        .into_iter()
        .zip(datagram_queues)
        .zip(runtimes)
        .zip(seeds)
        .enumerate()
        .map(|(index, (((inputs, datagrams_tx), runtime), seed))| {
            // Shard k numbers its legs k+1, k+1+n, ...: a leg id names its shard.
            let mut engine = Engine::with_leg_ids(seed, index as u64 + 1, count as u64);
            engine.set_opus_config(shared.config.opus);
            engine.set_offloading(shared.kernel_relay.is_some());
            engine.set_webrtc_options(WebRtcOptions {
                codecs: shared.config.webrtc.as_ref().map_or(DEFAULT_CODECS.to_vec(), |p| p.codecs.clone()),
                passthrough: shared.config.passthrough,
            });
            let driver = Driver {
                shared: shared.clone(),
                engine,
                sockets: FxHashMap::default(),
                rtp_sockets: SocketSet::default(),
                rtp_buf: vec![0; MAX_RTP_PACKET],
                recordings: FxHashMap::default(),
                forks: FxHashMap::default(),
                streams: FxHashMap::default(),
                _datagrams: datagrams_tx,
                legs: handles[index].legs.clone(),
                offloads: FxHashMap::default(),
            };
            match runtime {
                Some(runtime) => on_own_thread(index, runtime, driver.run(inputs)),
                None => tokio::spawn(driver.run(inputs)),
            }
        })
        .collect();
    let task = tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
    });
    (EngineHandle::new(handles, events, metrics), task)
}

impl Driver {
    async fn run(mut self, mut inputs: Inputs) {
        let mut offload_reports = tokio::time::interval(offload::OFFLOAD_REPORTS);
        offload_reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = self.engine.poll_timeout();
            let deadline = due.map(tokio::time::Instant::from_std);
            tokio::select! {
                command = inputs.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.engine.hangup_all(HangupCause::Shutdown);
                        self.flush();
                        // Recordings still running are finished before the runtime goes.
                        let finishing: Vec<_> = self.recordings.drain().map(|(_, sink)| sink.stop().1).collect();
                        for finished in finishing {
                            let _ = finished.await;
                        }
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.handle_command(command).await,
                    None => return,
                },
                () = self.rtp_sockets.readable() => self.read_rtp_sockets(),
                Some((leg, transport, from, to, data)) = inputs.datagrams.recv() => {
                    self.receive(leg, transport, from, to, &data);
                    // Take whatever else is already queued before sending anything.
                    while let Ok((leg, transport, from, to, data)) = inputs.datagrams.try_recv() {
                        self.receive(leg, transport, from, to, &data);
                    }
                }
                Some((leg, input)) = inputs.streams.recv() => {
                    self.stream_input(leg, input);
                    while let Ok((leg, input)) = inputs.streams.try_recv() {
                        self.stream_input(leg, input);
                    }
                }
                Some(relay) = inputs.relays.recv() => {
                    self.relay(relay);
                    while let Ok(relay) = inputs.relays.try_recv() {
                        self.relay(relay);
                    }
                }
                _ = offload_reports.tick(), if !self.offloads.is_empty() => self.report_offloads(),
                () = sleep_until(deadline) => {}
            }
            // Timers run whichever branch woke the loop: a busy socket must not hold ticks back.
            let now = now();
            self.flush();
            if let Some(due) = due.filter(|&due| due <= now) {
                self.shared.metrics.timer_ran_late(now - due);
                // Each leg's frame goes out before the next leg's codec work.
                while self.engine.handle_next_timeout(now) {
                    self.flush();
                }
            }
        }
    }

    async fn handle_command(&mut self, command: Command) {
        match command {
            Command::CreateLeg { spec, reply } => {
                let _ = reply.send(self.create_leg(spec).await);
            }
            Command::CreateLocalLeg { rate, source, amd, reply } => {
                let id = self.engine.add_local_leg(now(), rate, source);
                if let Some(config) = amd {
                    // Before its first tick: the detector hears the leg from its answer.
                    let _ = self.engine.start_amd(id, config);
                }
                self.leg_opened();
                let _ = reply.send(id);
            }
            Command::Hangup { leg, reply } => {
                let _ =
                    reply.send(self.engine.hangup(leg, HangupCause::NormalClearing).map_err(engine_error));
            }
            Command::Bridge { a, b, dtmf, reply } => {
                let _ = reply.send(self.engine.bridge_with(a, b, dtmf).map_err(engine_error));
            }
            Command::BridgeRemote { leg, peer, peer_rate, carry_dtmf, reply } => {
                let result = self.engine.bridge_remote(leg, peer, peer_rate, carry_dtmf);
                let _ = reply.send(result.map_err(engine_error));
            }
            Command::Unbridge { leg, reply } => {
                let _ = reply.send(self.engine.unbridge(leg).map_err(engine_error));
            }
            Command::Conference(command) => command.run(&mut self.engine, now()),
            Command::Supervise { supervisor, call, role, reply } => {
                let _ = reply.send(self.engine.supervise(supervisor, call, role).map_err(engine_error));
            }
            Command::SendDtmf { leg, digits, timing, reply } => {
                let _ = reply.send(self.engine.send_dtmf(leg, &digits, timing).map_err(engine_error));
            }
            Command::StartRecording { leg, spec, reply } => self.start_recording(leg, spec, reply),
            Command::PauseRecording { leg, paused, reply } => {
                let _ = reply.send(self.pause_recording(leg, paused));
            }
            Command::StopRecording { leg, reply } => {
                let _ = reply.send(self.stop_recording(leg));
            }
            Command::StartFork { leg, name, reply } => {
                let _ = reply.send(self.start_fork(leg, name));
            }
            Command::StopFork { leg, name, reply } => {
                let _ = reply.send(self.stop_fork(leg, name));
            }
            Command::SetMute { leg, inbound, outbound, reply } => {
                let now = self.engine.controls(leg);
                let result = self.engine.set_mute(
                    leg,
                    inbound.unwrap_or(now.mute_inbound),
                    outbound.unwrap_or(now.mute_outbound),
                );
                let _ = reply.send(result.map_err(engine_error));
            }
            Command::Play { leg, clip, overlay, reply } => {
                let _ = reply.send(self.engine.play(leg, clip, overlay).map_err(engine_error));
            }
            Command::StopPlayback { leg, overlay, all, reply } => {
                let _ = reply.send(self.engine.stop_playback(leg, overlay, all).map_err(engine_error));
            }
            Command::Hold { leg, source, reply } => {
                let result = match source {
                    Some(source) => self.engine.hold(leg, &source),
                    None => self.engine.unhold(leg),
                };
                let _ = reply.send(result.map_err(engine_error));
            }
            Command::UpdateRtp { leg, media, remote, reply } => {
                let result = self.engine.set_rtp_media(now(), leg, media).map_err(engine_error);
                if let (Ok(()), Some(socket)) = (&result, self.sockets.get_mut(&leg)) {
                    socket.rtcp_mux = media.rtcp_mux;
                    socket.set_srtp(leg, media.srtp);
                    if let Some(remote) = remote.filter(|&r| socket.remote != Some(r)) {
                        socket.remote = Some(remote);
                        socket.latched = false;
                        if let Some(rtcp) = &mut socket.rtcp {
                            rtcp.remote = None;
                        }
                    }
                }
                self.reroute_offloads(leg);
                let _ = reply.send(result);
            }
            Command::CreateWebRtcLeg { offer, credentials, reply } => {
                let result = match &self.shared.webrtc {
                    Some(port) => self
                        .engine
                        .add_webrtc_leg(now(), &offer, &port.candidates(), credentials)
                        .map_err(engine_error),
                    None => Err(RuntimeError::NoWebRtc),
                };
                if let Ok((id, answer)) = &result {
                    self.shared.webrtc_routes.add_leg(&answer.ufrag, *id);
                    self.leg_opened();
                }
                let _ = reply.send(result);
            }
            Command::AddIceCandidate { leg, candidate, reply } => {
                let _ =
                    reply.send(self.engine.add_ice_candidate(now(), leg, &candidate).map_err(engine_error));
            }
            Command::CreateStreamLeg { codec, reply } => {
                let result =
                    self.engine.add_stream_leg(now(), codec, self.shared.config.passthrough).map(|id| {
                        let (tx, output) = mpsc::channel(STREAM_OUTPUT_QUEUE);
                        self.streams.insert(id, tx);
                        self.leg_opened();
                        StreamLeg { id, output }
                    });
                let _ = reply.send(result.map_err(engine_error));
            }
            Command::StartAmd { leg, config, reply } => {
                let _ = reply.send(self.engine.start_amd(leg, config).map_err(engine_error));
            }
            Command::StopAmd { leg, reply } => {
                let _ = reply.send(self.engine.stop_amd(leg));
            }
            Command::AmdHeardWords { leg, text, reply } => {
                let _ = reply.send(self.engine.amd_heard_words(leg, &text));
            }
            Command::LegRate { leg, reply } => {
                let _ = reply.send(self.engine.rate(leg));
            }
            Command::FitRate { leg, rate, reply } => {
                let _ = reply.send(self.engine.fit_opus_rate(leg, rate).map_err(engine_error));
            }
            Command::LegCodec { leg, reply } => {
                let _ = reply.send(self.engine.rtp_codec(leg));
            }
            Command::Stats { leg, reply } => {
                let _ = reply.send(self.engine.stats(leg));
            }
            Command::Shutdown { .. } => unreachable!("handled in the loop"),
        }
    }

    async fn create_leg(&mut self, spec: LegSpec) -> Result<LegInfo, RuntimeError> {
        let (port, socket) = bind_rtp_port(self.shared.clone()).await?;
        let local_addr = socket.local_addr().map_err(|e| RuntimeError::Socket(e.to_string()))?;
        let mut config = self.engine.leg_config(spec.media.codec);
        let rtcp =
            if self.shared.config.rtcp { rtcp_socket(self.shared.config.bind_ip, port).await } else { None };
        if rtcp.is_some() {
            // Wall-clock time for the reports' NTP timestamps: the engine never reads it.
            config.rtcp =
                Some(RtcpSetup { cname: format!("bond@{local_addr}"), unix_time_at_start: unix_time() });
        }
        config.media_timeout = spec.media_timeout;
        config.payload_type = spec.media.payload_type;
        config.telephone_event_pt = spec.media.telephone_event_pt;
        // A plain RTP leg is a SIP leg: digits go as RFC 4733 events when negotiated.
        config.send_events = true;
        config.passthrough = self.shared.config.passthrough;
        let id = match self.engine.add_leg(now(), config, spec.source) {
            Ok(id) => id,
            Err(e) => {
                self.ports().release(port);
                return Err(RuntimeError::Engine(e.to_string()));
            }
        };
        let rtcp = rtcp.map(|socket| {
            let place = self.rtp_sockets.insert(socket.clone(), id);
            RtcpSocket { socket, remote: None, place }
        });
        // Same codec as the config: this only sets the direction, and cannot fail.
        let _ = self.engine.set_rtp_media(now(), id, spec.media);
        let place = self.rtp_sockets.insert(socket.clone(), id);
        let rtcp_mux = spec.media.rtcp_mux;
        let mut leg_socket = LegSocket {
            socket,
            port,
            remote: spec.remote,
            latched: false,
            place,
            rtcp,
            rtcp_mux,
            srtp: SocketSrtp::Off,
        };
        leg_socket.set_srtp(id, spec.media.srtp);
        self.sockets.insert(id, leg_socket);
        self.leg_opened();
        tracing::debug!(%id, %local_addr, "leg created");
        Ok(LegInfo { id, local_addr })
    }

    fn stream_input(&mut self, leg: LegId, input: StreamInput) {
        let result = match input {
            StreamInput::Media { chunk, payload } => {
                self.engine.handle_stream_media(now(), leg, chunk, &payload)
            }
            StreamInput::Mark(name) => self.engine.handle_stream_mark(leg, name),
            StreamInput::Clear => self.engine.handle_stream_clear(leg),
            StreamInput::Dtmf(digit) => self.engine.handle_signalled_dtmf(leg, digit),
        };
        if let Err(e) = result {
            RuntimeMetrics::add(&self.shared.metrics.packets_rejected, 1);
            tracing::trace!(%leg, error = %e, "stream input refused");
        }
    }

    /// What another shard's engine relayed. Refused relays belong to a bridge that
    /// came apart while they were in flight: nothing to count.
    fn relay(&mut self, relay: Relay) {
        let to = relay.to();
        if let Err(e) = self.engine.handle_relay(now(), relay) {
            tracing::trace!(%to, error = %e, "relay refused");
        }
    }

    fn flush(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            let metrics = &self.shared.metrics;
            match output {
                EngineOutput::Transmit { leg, data } => self.transmit(leg, &data),
                EngineOutput::TransmitRtcp { leg, data } => self.transmit_rtcp(leg, &data),
                EngineOutput::Datagram { transport, from, to, data, .. } => {
                    let Some(port) = &self.shared.webrtc else { continue };
                    match port.send(transport, from, to, &data) {
                        Ok(true) => RuntimeMetrics::add(&metrics.packets_sent, 1),
                        Ok(false) => {} // a check to a browser's active TCP candidate: nowhere to go
                        Err(_) => RuntimeMetrics::add(&metrics.packets_dropped, 1),
                    }
                }
                EngineOutput::Offload(offload) => self.offload(offload),
                EngineOutput::OffloadEnded { from } => self.offload_ended(from),
                EngineOutput::Relay(relay) => {
                    let shard = shard_of(relay.to(), self.shared.relays.len());
                    if self.shared.relays[shard].try_send(relay).is_err() {
                        RuntimeMetrics::add(&metrics.relays_dropped, 1);
                    }
                }
                EngineOutput::Heard { .. } => {}
                EngineOutput::Stream { leg, output } => {
                    // A socket too slow to take it drops a frame; one already closed needs none.
                    let full = self.streams.get(&leg).map(|tx| tx.try_send(output));
                    if let Some(Err(mpsc::error::TrySendError::Full(_))) = full {
                        RuntimeMetrics::add(&metrics.stream_frames_dropped, 1);
                    }
                }
                EngineOutput::Recorded { leg, at, inbound, outbound } => {
                    for (_, fork) in self.forks.get(&leg).map(Vec::as_slice).unwrap_or_default() {
                        if !fork.offer(&inbound, &outbound) {
                            RuntimeMetrics::add(&metrics.fork_frames_dropped, 1);
                        }
                    }
                    self.record(leg, RecordInput::Frames { at, inbound, outbound });
                }
                EngineOutput::RecordedPackets { leg, batch } => self.record(leg, RecordInput::Packets(batch)),
                EngineOutput::Event(event) => {
                    if let EngineEvent::LegEnded { leg, .. } = &event {
                        self.close(*leg);
                    }
                    // No subscriber is not an error.
                    let _ = self.shared.events.send(event);
                }
            }
        }
        let passed = self.engine.take_passed_through();
        if passed > 0 {
            RuntimeMetrics::add(&self.shared.metrics.packets_passed_through, passed);
        }
        let dropped = self.engine.take_frames_dropped();
        if dropped > 0 {
            RuntimeMetrics::add(&self.shared.metrics.bridge_frames_dropped, dropped);
        }
    }

    fn leg_opened(&self) {
        self.shared.metrics.leg_opened();
        self.legs.fetch_add(1, Ordering::Relaxed);
    }

    fn close(&mut self, leg: LegId) {
        self.drop_offloads(leg);
        // Dropping the senders tells the stream's socket task and a fork's consumer the leg is over.
        self.streams.remove(&leg);
        self.forks.remove(&leg);
        if let Some(socket) = self.sockets.remove(&leg) {
            self.rtp_sockets.remove(socket.place);
            if let Some(rtcp) = socket.rtcp {
                self.rtp_sockets.remove(rtcp.place);
            }
            self.ports().release(socket.port);
        }
        if self.shared.webrtc.is_some() {
            self.shared.webrtc_routes.remove_leg(leg);
        }
        self.shared.metrics.legs_active.fetch_sub(1, Ordering::Relaxed);
        self.legs.fetch_sub(1, Ordering::Relaxed);
    }

    fn ports(&self) -> std::sync::MutexGuard<'_, PortAllocator> {
        self.shared.ports()
    }
}

fn engine_error(e: crate::EngineError) -> RuntimeError {
    match e {
        crate::EngineError::ClipRate { rate, .. } => RuntimeError::ClipRate(rate),
        e => RuntimeError::Engine(e.to_string()),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
