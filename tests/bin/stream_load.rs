//! `stream-load PAIRS SECONDS [--bond PATH]`: load a real Bond with bridged
//! Telnyx media-stream pairs and measure what comes out.
//!
//! Starts `bond serve` (`--bond`, else `bond` next to this program), opens
//! 2 x PAIRS Telnyx streams (PCMU) over WebSocket, bridges them in pairs through
//! the API, and sends 20 ms `media` frames on every socket for SECONDS, paced on
//! a 20 ms grid, each socket at its own place in the 20 ms (as independent calls
//! are; until 2026-11-24 all sockets sent at once). Each payload carries its socket and frame number in its first
//! bytes (a PCMU-to-PCMU bridge returns mu-law codes unchanged), so the far side
//! can tell which frame arrived and how late. Reports frames lost, latency
//! percentiles (from the send on one socket to the kernel's arrival time of
//! the segment that completed the frame on the other, SO_TIMESTAMPNS, so the
//! generator's own wake-ups are not counted, as in `bridge-load`; until
//! 2026-11-24 evening the time the generator read it); a bridge that
//! decodes, `BOND_RTP_PASSTHROUGH=false`, adds its 60 ms playout buffer and up
//! to 20 ms of tick alignment, a passthrough bridge neither), Bond's CPU and
//! memory from /proc, and the generator's own CPU. The frames over 5 ms are
//! counted by 100 ms window of their send time, with the three worst windows,
//! so a few stalls can be told from a tail spread over the run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bond_streams::READ_BUFFER;
use bond_tests::bond_process::BondProcess;
use bond_tests::load::{self, percentile, proc_usage, LateWindows, LoadArgs, Sleeper};
use bond_tests::stamped::{wall_us, StampedTcp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "load-stream-token";
/// Digits of a frame id in a payload: base 126, so no byte is 0x7F or 0xFF
/// (the two mu-law codes for zero, which do not survive a round trip).
const ID_DIGITS: usize = 5;

fn encode_id(id: u64, payload: &mut [u8]) {
    let mut v = id;
    for b in payload.iter_mut().take(ID_DIGITS) {
        *b = (v % 126) as u8;
        v /= 126;
    }
}

fn decode_id(payload: &[u8]) -> Option<u64> {
    let digits = payload.get(..ID_DIGITS)?;
    if digits.iter().any(|&b| b >= 126) {
        return None;
    }
    Some(digits.iter().rev().fold(0u64, |acc, &b| acc * 126 + u64::from(b)))
}

const FRAME: Duration = Duration::from_millis(20);
/// From the measurement's origin to the first frame: every socket's tasks are
/// spawned by then, so no socket starts late (until 2026-11-24 night it was 20 ms, and
/// the first 100 ms of a 500-pair run held a thousand or more late frames).
const LEAD: Duration = Duration::from_millis(200);
/// A frame later than this counts against its 100 ms window (issue 5's p99 target).
const LATE_US: u64 = 5_000;

/// A Telnyx `media` frame as the reference shows it, written without a JSON
/// tree: the generator's cost per frame is the machine's, not Bond's.
fn media_frame(seq: u64, payload: &[u8]) -> String {
    let payload = BASE64.encode(payload);
    format!(
        r#"{{"event":"media","sequence_number":"{seq}","media":{{"track":"inbound","chunk":"{seq}","timestamp":"{}","payload":"{payload}"}}}}"#,
        seq * 20
    )
}

/// The base64 payload of a `media` frame from Bond, found without parsing the
/// whole frame (a payload holds no quote).
fn media_payload(frame: &str) -> Option<&str> {
    if !frame.contains(r#""event":"media""#) {
        return None;
    }
    let (_, rest) = frame.split_once(r#""payload":""#)?;
    rest.split_once('"').map(|(payload, _)| payload)
}

struct Results {
    latencies_us: Vec<u64>,
    late: LateWindows,
    /// To when the generator read the frame (its own wake-up included).
    read_latencies_us: Vec<u64>,
    received: u64,
    /// Frames timed by the kernel's arrival stamp (the others by the generator's clock).
    stamped: u64,
    /// Frame numbers (from the peer) that never arrived.
    missing: Vec<u64>,
}

async fn run(pairs: usize, seconds: u64, bond_bin: PathBuf) -> Result<String, String> {
    let bond = BondProcess::start(&bond_bin, |_| Ok(())).await?;
    let connection = bond.connection(json!({ "media_streams": { "telnyx_stream_token": TOKEN } })).await?;
    let sockets = 2 * pairs;
    let url = format!("ws://127.0.0.1:{}/media/telnyx/{connection}", bond.port);
    let mut streams = Vec::with_capacity(sockets);
    let mut arrivals = Vec::with_capacity(sockets);
    for i in 0..sockets {
        let mut request = url.as_str().into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert("x-telnyx-streaming-auth-token", TOKEN.parse().map_err(|_| "header")?);
        // Small reads, as Bond's own stream sockets do (tungstenite zeroes its read room each read).
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let tcp =
            TcpStream::connect(("127.0.0.1", bond.port)).await.map_err(|e| format!("socket {i}: {e}"))?;
        // A real-time sender: no Nagle delay on the generator's side to count as Bond's.
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let tcp = StampedTcp::new(tcp).map_err(|e| e.to_string())?;
        arrivals.push(tcp.arrived());
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
            .await
            .map_err(|e| format!("socket {i}: {e}"))?;
        let start = json!({ "event": "start", "sequence_number": "1", "stream_id": format!("load-{i}"),
            "start": { "call_control_id": format!("v2:load-{i}"), "from": format!("+1312555{i:04}"), "to": "+13125550100",
                "media_format": { "encoding": "PCMU", "sample_rate": 8000, "channels": 1 } } });
        ws.send(Message::text(json!({ "event": "connected", "version": "1.0.0" }).to_string()))
            .await
            .map_err(|e| e.to_string())?;
        ws.send(Message::text(start.to_string())).await.map_err(|e| e.to_string())?;
        streams.push(ws);
    }
    // Each stream's call, from its call.initiated webhook.
    let mut calls = vec![String::new(); sockets];
    for _ in 0..600 {
        for (_, payload) in bond.inbox.all().iter().filter(|(t, _)| t == "call.initiated") {
            let carrier = payload["carrier_call_control_id"].as_str().unwrap_or_default();
            if let Some(i) = carrier.strip_prefix("v2:load-").and_then(|n| n.parse::<usize>().ok()) {
                if i < sockets {
                    calls[i] = payload["call_control_id"].as_str().unwrap_or_default().to_owned();
                }
            }
        }
        if calls.iter().all(|c| !c.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if calls.iter().any(String::is_empty) {
        return Err("not every stream became a call".into());
    }
    for p in 0..pairs {
        let body = json!({ "call_control_id_to_bridge_with": calls[2 * p + 1] });
        let answer: Value = bond.post(&format!("/v2/calls/{}/actions/bridge", calls[2 * p]), body).await?;
        if answer.get("errors").is_some() {
            return Err(format!("bridge failed: {answer}"));
        }
    }

    let frames = seconds * 50;
    #[allow(clippy::disallowed_methods)] // a load generator's own clock
    let (origin, wall) = (Instant::now(), SystemTime::now());
    let wall_ns = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let sent_at: Arc<Vec<Vec<AtomicU64>>> =
        Arc::new((0..sockets).map(|_| (0..=frames).map(|_| AtomicU64::new(0)).collect()).collect());
    let start = tokio::time::Instant::from_std(origin) + LEAD;
    let lead_us = LEAD.as_micros() as u64;
    let (cpu_before, _) = proc_usage(bond.pid());
    let (own_cpu_before, _) = proc_usage(std::process::id());
    let sleeper = Sleeper::start();
    let mut tasks = Vec::new();
    for (i, (ws, arrived)) in streams.into_iter().zip(arrivals).enumerate() {
        let (mut sink, mut stream) = ws.split();
        let peer = i ^ 1;
        let sent_at = sent_at.clone();
        let sender = tokio::spawn({
            let sent_at = sent_at.clone();
            async move {
                // Independent calls are not in step: socket i sends at its own place in the 20 ms.
                let phase = FRAME * i as u32 / sockets as u32;
                let mut tick = tokio::time::interval_at(start + phase, FRAME);
                let mut payload = [0x55u8; 160];
                for seq in 1..=frames {
                    tick.tick().await;
                    encode_id(i as u64 * 1_000_000 + seq, &mut payload);
                    let frame = media_frame(seq, &payload);
                    sent_at[i][seq as usize].store(wall_us(wall), Ordering::Relaxed);
                    if sink.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
                sink
            }
        });
        let receiver = tokio::spawn(async move {
            let mut results = Results {
                latencies_us: Vec::with_capacity(frames as usize),
                late: LateWindows::new(LATE_US),
                read_latencies_us: Vec::with_capacity(frames as usize),
                received: 0,
                stamped: 0,
                missing: Vec::new(),
            };
            let mut seen = vec![false; frames as usize + 1];
            let until = Duration::from_secs(seconds) + Duration::from_millis(500);
            let _ = tokio::time::timeout(until, async {
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    let Some(b64) = media_payload(&text) else { continue };
                    let Ok(payload) = BASE64.decode(b64) else { continue };
                    let Some(id) = decode_id(&payload) else { continue };
                    let (from, seq) = ((id / 1_000_000) as usize, id % 1_000_000);
                    if from != peer || seq > frames {
                        continue;
                    }
                    let sent = sent_at[from][seq as usize].load(Ordering::Relaxed);
                    // When the kernel took in the segment that completed the frame.
                    let stamp = arrived.load(Ordering::Relaxed);
                    let read = wall_us(wall);
                    let at = if stamp > wall_ns {
                        results.stamped += 1;
                        (stamp - wall_ns) / 1000
                    } else {
                        read
                    };
                    results.read_latencies_us.push(read.saturating_sub(sent));
                    seen[seq as usize] = true;
                    results.received += 1;
                    let latency = at.saturating_sub(sent);
                    results.latencies_us.push(latency);
                    results.late.add(sent.saturating_sub(lead_us), latency);
                }
            })
            .await;
            results.missing = (1..=frames).filter(|&seq| !seen[seq as usize]).collect();
            results
        });
        tasks.push((sender, receiver));
    }
    let (mut latencies, mut read_latencies) = (Vec::new(), Vec::new());
    let (mut received, mut stamped) = (0, 0);
    let mut sinks = Vec::new();
    let mut missing = Vec::new();
    let mut late = LateWindows::new(LATE_US);
    for (i, (sender, receiver)) in tasks.into_iter().enumerate() {
        let results = receiver.await.map_err(|e| e.to_string())?;
        received += results.received;
        stamped += results.stamped;
        missing.extend(results.missing.iter().map(|seq| format!("{}:{seq}", i ^ 1)));
        late.merge(&results.late);
        latencies.extend(results.latencies_us);
        read_latencies.extend(results.read_latencies_us);
        sinks.push(sender.await.map_err(|e| e.to_string())?);
    }
    let (cpu_after, rss_kib) = proc_usage(bond.pid());
    let (own_cpu_after, _) = proc_usage(std::process::id());
    let overslept = sleeper.stop();
    drop(sinks);
    latencies.sort_unstable();
    read_latencies.sort_unstable();
    let sent = frames * sockets as u64;
    let metrics = bond.metrics().await?;
    let counter = |name: &str| {
        let line = metrics.lines().find(|l| l.starts_with(name));
        line.and_then(|l| l.split_whitespace().last()).unwrap_or("?").to_owned()
    };
    let (dropped, relays_dropped) =
        (counter("bond_stream_frames_dropped"), counter("bond_engine_relays_dropped"));
    let cpu_share = (cpu_after - cpu_before) as f64 / 100.0 / seconds as f64;
    let own_cpu_share = (own_cpu_after - own_cpu_before) as f64 / 100.0 / seconds as f64;
    Ok(format!(
        "pairs={pairs} sockets={sockets} seconds={seconds}\n\
         frames sent={sent} received with their id={received} lost={}{}\n\
         latency send->arrival ms: p50={:.1} p99={:.1} max={:.1} (kernel arrival times for {stamped}); to the generator's read: p50={:.1} p99={:.1}\n\
         frames {late}\n\
         bond cpu={:.1}% of one core ({:.3}% per pair) rss={} MiB ({:.0} KiB per pair) stream_frames_dropped={dropped} relays_dropped={relays_dropped}\n\
         generator cpu={:.1}% of one core\n\
         {overslept}",
        sent.saturating_sub(received),
        if missing.is_empty() { String::new() } else { format!(" (socket:frame {})", missing.join(" ")) },
        percentile(&latencies, 50.0) as f64 / 1000.0,
        percentile(&latencies, 99.0) as f64 / 1000.0,
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        percentile(&read_latencies, 50.0) as f64 / 1000.0,
        percentile(&read_latencies, 99.0) as f64 / 1000.0,
        cpu_share * 100.0,
        cpu_share * 100.0 / pairs as f64,
        rss_kib / 1024,
        rss_kib as f64 / pairs as f64,
        own_cpu_share * 100.0,
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = LoadArgs::from_env();
    let result = run(args.number(0, 50) as usize, args.number(1, 10), args.bond_bin()).await;
    load::finish("stream-load", result)
}
