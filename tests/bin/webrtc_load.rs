//! `webrtc-load LEGS SECONDS [--bond PATH] [--complexity N] [--shards N] [--bridge link|action] [--codec opus|pcmu]`:
//! load a real Bond with agent WebRTC legs bridged to `loop:echo` and measure
//! what comes back.
//!
//! Starts `bond serve` (`--bond`, else `bond` next to this program; Opus
//! complexity and engine shards through `BOND_OPUS_COMPLEXITY` and
//! `BOND_ENGINE_SHARDS`, default Bond's own). For each leg it registers an agent
//! on the signaling socket, dials `agent:load-N`, accepts with a str0m peer's
//! offer (ICE, DTLS-SRTP for real) and dials `loop:echo` with `link_to` the
//! agent's call and `bridge_on_answer` (Bond places the echo on the agent leg's
//! shard, at its rate); with `--bridge action` it dials the echo unlinked and
//! bridges the two with the bridge action (placed by load: the pair may sit on
//! two shards, and the echo runs at 8 kHz). Every peer offers `--codec` (Opus
//! by default) and telephone-events, as Chromium does, then sends a 20 ms packet each
//! 20 ms, replaying 50 packets encoded once at start, so the generator does no
//! codec work; Bond decodes each packet, passes the audio through the echo and
//! encodes it again for the peer (`BOND_RTP_PASSTHROUGH` is set to false unless
//! given: an idle echo would otherwise reflect the packets undecoded).
//!
//! After every leg is up, it measures for SECONDS: frames received against the
//! 50 per second expected, and the lateness of each arrival against the stream's
//! own 20 ms RTP clock (arrival time minus RTP time, less the smallest such
//! offset of that stream), which is how late Bond's ticks ran plus the
//! generator's own scheduling on the same two cores. Bond's CPU and memory come
//! from /proc.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bond_codecs::opus_codec::OpusConfig;
use bond_codecs::signals::Oscillator;
use bond_codecs::{AudioFrame, Codec};
use bond_tests::bond_process::BondProcess;
use bond_tests::load::{
    self, above_best, clock, metric_value, percentile, proc_usage, timer_lateness_percentile, LoadArgs,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use str0m::change::SdpAnswer;
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Legs being set up at once.
const SETUP_AT_ONCE: usize = 8;
const FRAME: Duration = Duration::from_millis(20);

/// The generator's clock (a load tool measures real time).
/// What the peers offer and send: Bond's codec, str0m's name for it, its RTP clock.
#[derive(Clone, Copy)]
struct PeerCodec {
    codec: Codec,
    format: RtcCodec,
    clock: Frequency,
}

impl PeerCodec {
    fn named(name: &str) -> Result<Self, String> {
        match name {
            "opus" => {
                Ok(Self { codec: Codec::Opus, format: RtcCodec::Opus, clock: Frequency::FORTY_EIGHT_KHZ })
            }
            "pcmu" => Ok(Self { codec: Codec::Pcmu, format: RtcCodec::PCMU, clock: Frequency::EIGHT_KHZ }),
            other => Err(format!("--codec {other}: opus or pcmu")),
        }
    }
}

/// 50 packets of a 440 Hz tone, encoded once.
fn packets(codec: Codec) -> Vec<Vec<u8>> {
    let mut encoder = codec.encoder_with(OpusConfig::default()).expect("encoder");
    let rate = codec.sample_rate();
    let mut voice = Oscillator::new(440.0, rate.hz(), 8000.0);
    (0..50u64)
        .map(|n| {
            let mut frame = AudioFrame::silent(rate, n * rate.frame_samples() as u64);
            voice.fill(frame.samples_mut());
            let mut packet = vec![0; 1500];
            let len = encoder.encode(&frame, &mut packet).expect("encodes");
            packet.truncate(len);
            packet
        })
        .collect()
}

/// One arrival: when, and the RTP time it carries (µs).
type Arrival = (Instant, u64);

/// One agent: signaling, its call bridged to an echo, and a str0m peer.
async fn leg(
    bond: Arc<BondProcess>,
    connection: String,
    n: usize,
    (codec, packets): (PeerCodec, Arc<Vec<Vec<u8>>>),
    setup: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    linked: bool,
) -> Result<Vec<Arrival>, String> {
    let permit = setup.acquire().await.map_err(|e| e.to_string())?;
    let agent = format!("load-{n}");
    let token = bond.post("/v2/agent_tokens", json!({ "agent": agent })).await?;
    let token = token["data"]["token"].as_str().ok_or(format!("no token: {token}"))?.to_owned();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/v2/agent/ws", bond.port))
        .await
        .map_err(|e| format!("signaling: {e}"))?;
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "type": "register", "token": token }))).await.map_err(|e| e.to_string())?;
    next_of(&mut ws, "registered").await?;
    let dial = json!({ "connection_id": connection, "to": format!("agent:{agent}"), "from": "+15550001111" });
    let dialed = bond.post("/v2/calls", dial).await?;
    let call = dialed["data"]["call_control_id"].as_str().ok_or(format!("dial: {dialed}"))?.to_owned();
    next_of(&mut ws, "incoming_call").await?;

    let socket = UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let mut builder = Rtc::builder().clear_codecs();
    builder = match codec.codec {
        Codec::Opus => builder.enable_opus(true, false),
        _ => builder.enable_pcmu(true, false),
    };
    let events = FormatParams::parse_line("0-16");
    builder.codec_config().add_config(101.into(), None, RtcCodec::Tele, codec.clock, None, events);
    let mut rtc = builder.build(clock());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| e.to_string())?);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().ok_or("no offer")?;
    let accept = json!({ "type": "accept", "call_control_id": call, "sdp": offer.to_sdp_string() });
    ws.send(send(accept)).await.map_err(|e| e.to_string())?;
    let answer = next_of(&mut ws, "answer").await?;
    let answer =
        SdpAnswer::from_sdp_string(answer["sdp"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
    rtc.sdp_api().accept_answer(pending, answer).map_err(|e| e.to_string())?;

    let mut echo = json!({ "connection_id": connection, "to": "loop:echo", "from": "+15550000000" });
    if linked {
        echo["link_to"] = json!(call);
        echo["bridge_on_answer"] = json!(true);
    }
    let echo = bond.post("/v2/calls", echo).await?;
    let echo = echo["data"]["call_control_id"].as_str().ok_or(format!("echo: {echo}"))?.to_owned();
    if !linked {
        let path = format!("/v2/calls/{call}/actions/bridge");
        let bridged = bond.post(&path, json!({ "call_control_id_to_bridge_with": echo })).await?;
        if bridged.get("errors").is_some() {
            return Err(format!("bridge: {bridged}"));
        }
    }
    drop(permit);
    // The socket stays open (closing it would end the agent's call); Bond's frames are read and dropped.
    let (_sink, mut frames) = ws.split();
    tokio::spawn(async move { while frames.next().await.is_some() {} });
    media(rtc, (mid, codec), socket, local, &packets, stop).await
}

/// A metric's value in Prometheus text, as written ("?" when absent).
async fn next_of<S>(ws: &mut S, kind: &str) -> Result<Value, String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
        let frame = frame.map_err(|_| format!("no {kind} within 20 s"))?;
        let Some(Ok(Message::Text(text))) = frame else {
            return Err(format!("signaling closed before {kind}"));
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if v["type"] == kind {
            return Ok(v);
        }
        if v["type"] == "error" {
            return Err(format!("waiting for {kind}: {v}"));
        }
    }
}

/// Drive the peer until `stop`: send a frame every 20 ms once connected, note every arrival.
async fn media(
    mut rtc: Rtc,
    (mid, codec): (Mid, PeerCodec),
    socket: UdpSocket,
    local: SocketAddr,
    packets: &[Vec<u8>],
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<Arrival>, String> {
    let mut arrivals = Vec::with_capacity(50 * 120);
    let mut buf = vec![0u8; 2000];
    let mut connected = false;
    let mut sent: u64 = 0;
    let mut next_send = clock();
    loop {
        let timeout = loop {
            match rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(at) => break at,
                Output::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => {
                    connected = true;
                    next_send = clock();
                }
                Output::Event(Event::MediaData(data)) => {
                    arrivals.push((data.network_time, data.time.as_micros()))
                }
                Output::Event(_) => {}
            }
        };
        let wake = if connected { timeout.min(next_send) } else { timeout };
        tokio::select! {
            _ = stop.changed() => return Ok(arrivals),
            received = socket.recv_from(&mut buf) => {
                let (n, source) = received.map_err(|e| e.to_string())?;
                if let Ok(receive) = Receive::new(Protocol::Udp, source, local, &buf[..n]) {
                    rtc.handle_input(Input::Receive(clock(), receive)).map_err(|e| e.to_string())?;
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {
                let now = clock();
                if connected && now >= next_send {
                    let writer = rtc.writer(mid).ok_or("no writer")?;
                    let pt = writer
                        .payload_params()
                        .find(|p| p.spec().codec == codec.format)
                        .ok_or("codec not negotiated")?
                        .pt();
                    let time = MediaTime::new(sent * u64::from(codec.clock.get() / 50), codec.clock);
                    let packet = packets[(sent % packets.len() as u64) as usize].clone();
                    writer.write(pt, now, time, packet).map_err(|e| e.to_string())?;
                    sent += 1;
                    next_send += FRAME;
                }
                rtc.handle_input(Input::Timeout(now)).map_err(|e| e.to_string())?;
            }
        }
    }
}

/// Lateness (µs) of a stream's arrivals inside the window, against its own RTP clock.
fn lateness(arrivals: &[Arrival], from: Instant, until: Instant) -> Vec<u64> {
    let offsets: Vec<i64> = arrivals
        .iter()
        .filter(|(at, _)| *at >= from && *at < until)
        .map(|(at, rtp_us)| at.duration_since(from).as_micros() as i64 - *rtp_us as i64)
        .collect();
    above_best(&offsets).collect()
}

async fn run(
    legs: usize,
    seconds: u64,
    bond_bin: PathBuf,
    linked: bool,
    codec: PeerCodec,
) -> Result<String, String> {
    let bond = Arc::new(BondProcess::start(&bond_bin, |_| Ok(())).await?);
    let connection = bond.connection(json!({})).await?;
    let (_, rss_idle) = proc_usage(bond.pid());
    let packets = Arc::new(packets(codec.codec));
    let setup = Arc::new(Semaphore::new(SETUP_AT_ONCE));
    let (stop_tx, stop) = watch::channel(false);
    let tasks: Vec<_> = (0..legs)
        .map(|n| {
            let task = leg(
                bond.clone(),
                connection.clone(),
                n,
                (codec, packets.clone()),
                setup.clone(),
                stop.clone(),
                linked,
            );
            tokio::spawn(task)
        })
        .collect();
    // Every leg is up when the setup permits are all back and every call is bridged.
    for _ in 0..1200 {
        let bridged = bond.inbox.all().iter().filter(|(t, _)| t == "call.bridged").count();
        if bridged >= 2 * legs || tasks.iter().any(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // DTLS and the first frames settle
    let (cpu_before, rss_loaded) = proc_usage(bond.pid());
    let (own_before, _) = proc_usage(std::process::id());
    let metrics_before = bond.metrics().await?;
    let from = clock();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let until = clock();
    let (cpu_after, _) = proc_usage(bond.pid());
    let (own_after, _) = proc_usage(std::process::id());
    let metrics_after = bond.metrics().await?;
    let (timer_p50, timer_runs) = timer_lateness_percentile(&metrics_before, &metrics_after, 50.0);
    let (timer_p99, _) = timer_lateness_percentile(&metrics_before, &metrics_after, 99.0);
    let _ = stop_tx.send(true);
    let mut late = Vec::new();
    let (mut received, mut failed) = (0u64, Vec::new());
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.map_err(|e| e.to_string())? {
            Ok(arrivals) => {
                let stream = lateness(&arrivals, from, until);
                received += stream.len() as u64;
                late.extend(stream);
            }
            Err(e) => failed.push(format!("leg {n}: {e}")),
        }
    }
    if !failed.is_empty() {
        return Err(format!("{} of {legs} legs failed: {}", failed.len(), failed.join("; ")));
    }
    late.sort_unstable();
    let expected = legs as u64 * seconds * 50;
    let share = |ticks: u64| ticks as f64 / 100.0 / until.duration_since(from).as_secs_f64();
    let cpu_share = share(cpu_after - cpu_before);
    let complexity = std::env::var("BOND_OPUS_COMPLEXITY").unwrap_or_else(|_| "5 (default)".into());
    let shards = metric_value(&metrics_after, "bond_engine_shards");
    let relays_dropped = metric_value(&metrics_after, "bond_engine_relays_dropped_total");
    let passed =
        |m: &str| metric_value(m, "bond_rtp_packets_passed_through_total").parse::<u64>().unwrap_or(0);
    let passed_through = passed(&metrics_after).saturating_sub(passed(&metrics_before));
    let codec_name = codec.codec.encoding_name();
    let passthrough = std::env::var("BOND_RTP_PASSTHROUGH").unwrap_or_default();
    let bridge = if linked { "link_to" } else { "bridge action" };
    Ok(format!(
        "legs={legs} seconds={seconds} codec={codec_name} opus_complexity={complexity} engine_shards={shards} bridge={bridge} passthrough={passthrough}\n\
         frames expected={expected} received={received} missing={}\n\
         lateness against each stream's RTP clock ms: p50={:.1} p99={:.1} max={:.1}\n\
         bond's timer lateness (bond_engine_timer_lateness_seconds, {timer_runs} runs) ms: p50 <= {} p99 <= {}\n\
         bond cpu={:.1}% of one core ({:.2}% per leg) rss idle={} MiB loaded={} MiB ({:.0} KiB per leg)\n\
         generator cpu={:.1}% of one core, relays dropped={relays_dropped}, packets passed through={passed_through}",
        expected.saturating_sub(received),
        percentile(&late, 50.0) as f64 / 1000.0,
        percentile(&late, 99.0) as f64 / 1000.0,
        late.last().copied().unwrap_or(0) as f64 / 1000.0,
        timer_p50 * 1000.0,
        timer_p99 * 1000.0,
        cpu_share * 100.0,
        cpu_share * 100.0 / legs as f64,
        rss_idle / 1024,
        rss_loaded / 1024,
        rss_loaded.saturating_sub(rss_idle) as f64 / legs as f64,
        share(own_after - own_before) * 100.0,
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = LoadArgs::from_env();
    // Read by the Bond this starts. What is measured is Opus decoded and encoded
    // again: with passthrough an idle echo reflects the packets undecoded.
    if std::env::var_os("BOND_RTP_PASSTHROUGH").is_none() {
        std::env::set_var("BOND_RTP_PASSTHROUGH", "false");
    }
    for (flag, variable) in [("--complexity", "BOND_OPUS_COMPLEXITY"), ("--shards", "BOND_ENGINE_SHARDS")] {
        if let Some(value) = args.flag(flag) {
            std::env::set_var(variable, value);
        }
    }
    let linked = args.flag("--bridge").is_none_or(|mode| mode != "action");
    let codec = match PeerCodec::named(args.flag("--codec").as_deref().unwrap_or("opus")) {
        Ok(codec) => codec,
        Err(e) => return load::finish("webrtc-load", Err(e)),
    };
    let result = run(args.number(0, 20) as usize, args.number(1, 10), args.bond_bin(), linked, codec).await;
    load::finish("webrtc-load", result)
}
