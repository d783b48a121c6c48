//! `bridge-load PAIRS SECONDS [--bond PATH] [--b-codec pcmu|opus [--b-fmtp PARAMS]] [--record [--record-rate 16000]] [--unlinked]
//! [--no-passthrough] [--no-rtcp] [--kernel-relay] [--complexity N] [--relay bond|rtpengine|kernel|none] [--translate N [--translate-from en|es]] [--check] [--srtp]`:
//! bridged SIP calls through a real Bond (or another relay, `relays.rs`), measured from outside.
//! `bridge-load CALLS SECONDS --echo [--rate R]`: SIP calls into `loop:echo` instead.
//! `bridge-load CALLS SECONDS --conference`: SIP calls all in one conference (`one_leg.rs`).
//!
//! With Bond (the default), for each pair it sends Bond an INVITE (PCMU with
//! telephone-event) as the customer, answers it through the API, and dials the
//! agent side as a `sip:` URI back to itself with `link_to` and
//! `bridge_on_answer`, answering Bond's INVITE with PCMU (or Opus with
//! `--b-codec opus`; its answer says `a=fmtp` PARAMS with `--b-fmtp`). With `--unlinked` the agent side is dialed without
//! `link_to` (so Bond places it by load, and a pair may span two engine
//! shards) and bridged with the bridge action once answered. `--record` adds `record: record-from-answer` to each dial
//! (with `--record-rate 16000`, each agent call is recorded with `record_start` at
//! 16 kHz once every pair is bridged, so the writers resample);
//! `--no-passthrough` starts Bond with `BOND_RTP_PASSTHROUGH=false` (`--no-rtcp`:
//! `BOND_RTP_RTCP=false`; `--kernel-relay`: `BOND_RTP_KERNEL_RELAY=true`, and
//! `--check` then also wants packets relayed in the kernel), `--complexity`
//! with that `BOND_OPUS_COMPLEXITY`. `--translate N` adds N live-translated
//! calls beside the pairs (`support/translated_calls.rs`, the embedded engines,
//! the model from `BOND_WHISPER_MODEL` or target/models; `--translate-from es`:
//! the customers speak Spanish, heard by `BOND_WHISPER_MULTILINGUAL_MODEL` or
//! target/models/ggml-base-q8_0.bin, and are translated into English) and reports each hop's
//! latency. `--srtp` makes both legs of each pair SRTP (`srtp.rs`). With
//! `--relay rtpengine` the same pairs are set up in a userspace rtpengine
//! (`--table=-1`) over its ng protocol, and the same media flows through it;
//! `--relay kernel` routes them through an in-kernel relay (a tc program on
//! `lo`, root only) and `--relay none` sends each side straight to the other
//! (`relays.rs`). Every run also reports the whole machine's CPU, since a
//! kernel relay's work is done in the senders' system calls.
//!
//! With `--echo` each call is one SIP leg: an INVITE into Bond, sent at `R` a
//! second (default 200), answered through the API the moment its
//! `call.initiated` webhook arrives and bridged with a `loop:echo` dialed with
//! `link_to` and `bridge_on_answer`. The set-up time is INVITE to 200 OK (the
//! application's round trip included); the latency is the echo's round trip.
//!
//! Every side then sends a 20 ms packet each 20 ms, built in a loop from
//! pre-set payloads (no codec work in the generator). A PCMU payload carries its
//! sender and send time in its first bytes (mu-law codes below 126 survive a
//! decode and re-encode, and passthrough does not touch them), so the far side
//! knows how long each packet took through the relay: the added latency, which
//! also holds the generator's own scheduling on the same two cores. Opus
//! packets carry no mark, so with `--b-codec opus` each frame Bond makes is
//! timed against its own RTP timestamp instead (`pacing.rs`), beside Bond's
//! timer lateness. A thread sleeping 1 ms at a time beside the load reports
//! how the machine itself stalls. The relay's CPU and memory come from /proc.
//! Arrival times are the kernel's (SO_TIMESTAMPNS), and each tick's packets are
//! spread over its 20 ms, in 1 ms slices, as a population of calls would send
//! them. The generator's sockets are plain ones drained every millisecond (a
//! late read does not change a kernel stamp), so the generator is not woken for
//! each of 100,000 packets a second: it takes about a quarter less CPU. `--check`
//! fails the run unless every packet crossed and no call ended early (the test
//! suite's smoke run).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bond_tests::bond_process::BondProcess;
use bond_tests::kernel_relay::KernelRelay;
use bond_tests::load::{
    self, clock, machine_busy, metric_value, percentile, proc_anon, proc_usage, timer_lateness_percentile,
    LoadArgs, Sleeper,
};
use bond_tests::rtpengine::RtpEngine;
use bond_tests::stamped::wall_us;
use bond_tests::translated_calls::{self, Spoken};
use serde_json::json;
use tokio::net::UdpSocket;

mod media;
mod one_leg;
mod pacing;
mod relays;
mod sip;
mod srtp;
use media::{bind_media, opus_packet, receive, send_media, Received, Side, Window, SOCKETS};
use relays::Relay;
use sip::{sip_peer, Trunk};

/// Pairs set up at once.
const SETUP_BATCH: usize = 50;
const PCMU: &[(u8, &str)] = &[(0, "PCMU/8000"), (101, "telephone-event/8000")];

#[derive(Debug, Clone)]
struct Options {
    pairs: usize,
    seconds: u64,
    opus_b: bool,
    /// The agent side's Opus `a=fmtp` parameters, if any.
    opus_fmtp: Option<String>,
    record: bool,
    /// Record at this rate (`record_start`'s `sample_rate`) rather than the leg's.
    record_rate: Option<u32>,
    relay: Relay,
    /// Live-translated calls beside the pairs.
    translate: usize,
    /// The language their customers speak.
    translate_from: Spoken,
    /// Fail unless every packet crossed and no call ended early.
    check: bool,
    /// Dial the agent side without `link_to` and bridge it with the bridge action.
    unlinked: bool,
    /// Calls into `loop:echo` (side A only), INVITEs at `rate` a second.
    echo: bool,
    rate: f64,
    /// Both legs SRTP (SDES).
    srtp: bool,
    /// Calls (side A only) in one conference.
    conference: bool,
}

/// Where each side of each pair sends: the relay's address for it.
#[derive(Debug, Default)]
struct Targets {
    a: Vec<Option<SocketAddr>>,
    b: Vec<Option<SocketAddr>>,
    /// The Opus payload type Bond offered the B side.
    opus_pt: Option<u8>,
    /// When each A side's INVITE was sent and its 200 OK came back.
    invited: Vec<Option<std::time::Instant>>,
    answered: Vec<Option<std::time::Instant>>,
}

/// Whether every side of every pair has its relay address (side A alone for echo calls).
fn all_known(targets: &Mutex<Targets>, echo: bool) -> bool {
    let t = targets.lock().expect("lock");
    t.a.iter().chain(if echo { &[][..] } else { &t.b[..] }).all(Option::is_some)
}

/// What setting the calls up in Bond takes.
struct Setup<'a> {
    bond: &'a BondProcess,
    options: &'a Options,
    a_media: &'a [SocketAddr],
    targets: &'a Arc<Mutex<Targets>>,
    trunk: Trunk,
}

/// Set up every pair through Bond's SIP and API.
async fn setup_bond(setup: &Setup<'_>) -> Result<(), String> {
    let Setup { bond, options, a_media, targets, trunk } = setup;
    let (connection, local) = (&trunk.connection, trunk.sip.local_addr().map_err(|e| e.to_string())?);
    let pairs: Vec<usize> = (0..options.pairs).collect();
    let mut agents = Vec::with_capacity(options.pairs);
    for batch in pairs.chunks(SETUP_BATCH) {
        for &i in batch {
            trunk.invite(i, a_media[i]).await?;
        }
        let calls = initiated_calls(bond, batch).await?;
        let actions = calls.iter().map(|(i, call)| {
            let mut dial = json!({ "connection_id": connection, "to": format!("sip:b{i}@{local}"),
                "from": "+15550000000" });
            if !options.unlinked {
                dial["link_to"] = json!(call);
                dial["bridge_on_answer"] = json!(true);
            }
            if options.record && options.record_rate.is_none() {
                dial["record"] = json!("record-from-answer");
            }
            if options.srtp {
                dial["media_encryption"] = json!("SRTP");
            }
            async move {
                bond.post(&format!("/v2/calls/{call}/actions/answer"), json!({})).await?;
                let placed = bond.post("/v2/calls", dial).await?;
                if let Some(e) = placed.get("errors") {
                    return Err(format!("dial: {e}"));
                }
                Ok((call.clone(), placed["data"]["call_control_id"].as_str().unwrap_or_default().to_owned()))
            }
        });
        let dialed =
            futures_util::future::join_all(actions).await.into_iter().collect::<Result<Vec<_>, _>>()?;
        if options.unlinked {
            bridge_when_answered(bond, &dialed).await?;
        }
        agents.extend(dialed.into_iter().map(|(_, agent)| agent));
    }
    for _ in 0..1200 {
        let bridged = bond.inbox.all().iter().filter(|(t, _)| t == "call.bridged").count();
        if bridged >= 2 * options.pairs && all_known(targets, false) {
            return match options.record_rate {
                Some(rate) => record_at(bond, &agents, rate).await,
                None => Ok(()),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("not every pair was bridged; events: {:?}", event_counts(bond)))
}

/// The calls Bond made of the INVITEs of `batch` (by index), once each has its `call.initiated`.
async fn initiated_calls(bond: &BondProcess, batch: &[usize]) -> Result<HashMap<usize, String>, String> {
    let mut calls: HashMap<usize, String> = HashMap::new();
    for _ in 0..400 {
        for (kind, payload) in bond.inbox.all() {
            let pair = payload["to"].as_str().and_then(|to| to.strip_prefix("+1555")?.parse::<usize>().ok());
            if let (true, Some(i)) = (kind == "call.initiated", pair.filter(|i| batch.contains(i))) {
                calls.insert(i, payload["call_control_id"].as_str().unwrap_or_default().to_owned());
            }
        }
        if calls.len() == batch.len() {
            return Ok(calls);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("only {} of {} INVITEs became calls", calls.len(), batch.len()))
}

/// Start a dual-channel recording of each call at `rate`.
async fn record_at(bond: &BondProcess, calls: &[String], rate: u32) -> Result<(), String> {
    for batch in calls.chunks(SETUP_BATCH) {
        let starts = batch.iter().map(|call| async move {
            let body = json!({ "format": "wav", "channels": "dual", "sample_rate": rate });
            bond.post(&format!("/v2/calls/{call}/actions/record_start"), body).await
        });
        for started in futures_util::future::join_all(starts).await {
            if let Some(e) = started?.get("errors") {
                return Err(format!("record_start: {e}"));
            }
        }
    }
    Ok(())
}

/// Bridge each (customer, agent) pair with the bridge action once the agent's call is answered.
async fn bridge_when_answered(bond: &BondProcess, pairs: &[(String, String)]) -> Result<(), String> {
    for _ in 0..400 {
        let answered: std::collections::HashSet<String> = bond
            .inbox
            .all()
            .iter()
            .filter(|(kind, _)| kind == "call.answered")
            .filter_map(|(_, payload)| payload["call_control_id"].as_str().map(str::to_owned))
            .collect();
        if pairs.iter().all(|(_, agent)| answered.contains(agent)) {
            let bridges = pairs.iter().map(|(customer, agent)| async move {
                let path = format!("/v2/calls/{customer}/actions/bridge");
                bond.post(&path, json!({ "call_control_id": agent })).await
            });
            for placed in futures_util::future::join_all(bridges).await {
                if let Some(e) = placed?.get("errors") {
                    return Err(format!("bridge: {e}"));
                }
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("not every agent call was answered".into())
}

/// How many of each event (hang-ups by cause) Bond has sent.
fn event_counts(bond: &BondProcess) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (kind, payload) in bond.inbox.all() {
        let cause = payload["hangup_cause"].as_str().map(|c| format!(" {c}")).unwrap_or_default();
        *seen.entry(format!("{kind}{cause}")).or_default() += 1;
    }
    seen
}

async fn run(options: Options, bond_bin: std::path::PathBuf) -> Result<String, String> {
    let sockets: Vec<Vec<Arc<std::net::UdpSocket>>> = {
        let mut sides = Vec::new();
        for _ in 0..2 {
            let mut side = Vec::new();
            for _ in 0..SOCKETS {
                side.push(bind_media()?);
            }
            sides.push(side);
        }
        sides
    };
    let addr = |side: usize, i: usize| sockets[side][i % SOCKETS].local_addr().expect("bound");
    let a_media: Vec<SocketAddr> = (0..options.pairs).map(|i| addr(0, i)).collect();
    let b_media: Vec<SocketAddr> = (0..options.pairs).map(|i| addr(1, i)).collect();
    let targets = Arc::new(Mutex::new(Targets {
        a: vec![None; options.pairs],
        b: vec![None; options.pairs],
        opus_pt: None,
        invited: vec![None; options.pairs],
        answered: vec![None; options.pairs],
    }));

    #[allow(clippy::disallowed_methods)] // the generator's wall-clock origin (kernel stamps are on it)
    let origin = SystemTime::now();
    let window = Arc::new(Window { start_us: AtomicU64::new(u64::MAX), stop: AtomicBool::new(false) });
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let receivers: Vec<_> = sockets
        .iter()
        .enumerate()
        .flat_map(|(side, list)| list.iter().map(move |s| (side as u64, s.clone())))
        .map(|(index, socket)| {
            let clock_hz = if index == 1 && options.opus_b { 48_000 } else { 8_000 };
            // Opus is transcoded, SRTP encrypted and a conference mixed: none carries the marks readably.
            let marks = !options.opus_b && !options.srtp && !options.conference;
            let side = Side { index, clock_hz, echo: options.echo, marks };
            tokio::spawn(receive(socket, side, origin, window.clone(), stop.clone()))
        })
        .collect();
    let sender = tokio::spawn(send_media(
        sockets.clone(),
        targets.clone(),
        options.srtp.then(|| [srtp::sender(0), srtp::sender(1)]),
        options.opus_b,
        opus_packet()?,
        origin,
        window.clone(),
    ));
    let (mut bond, mut rtpengine, mut kernel) = (None, None, None);
    let (pid, (rss_idle, anon_idle)) = match options.relay {
        Relay::RtpEngine => {
            let mut engine = RtpEngine::start(load::free_udp_port()?, (40_000, 49_999)).await?;
            let idle = (proc_usage(engine.pid()).1, proc_anon(engine.pid()));
            relays::setup_rtpengine(&mut engine, &a_media, &b_media, &targets).await?;
            let pid = engine.pid();
            rtpengine = Some(engine);
            (Some(pid), idle)
        }
        Relay::Kernel => {
            let mut relay = KernelRelay::start("lo")?;
            let ports = relays::setup_kernel(&mut relay, &a_media, &b_media, &targets)?;
            kernel = Some((relay, ports));
            (None, (0, 0))
        }
        Relay::None => {
            relays::setup_direct(&a_media, &b_media, &targets);
            (None, (0, 0))
        }
        Relay::Bond => {
            let seconds = options.seconds;
            let process = BondProcess::start(&bond_bin, |dir| match options.translate {
                0 => Ok(()),
                _ => translated_calls::write_customer(dir, seconds, options.translate_from),
            })
            .await?;
            let idle = (proc_usage(process.pid()).1, proc_anon(process.pid()));
            let sip = Arc::new(UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?);
            tokio::spawn(sip_peer(
                sip.clone(),
                b_media.clone(),
                (options.opus_b, options.srtp, options.opus_fmtp.clone()),
                targets.clone(),
            ));
            let trunk = Trunk::new(&process, sip, options.srtp).await?;
            let setup =
                Setup { bond: &process, options: &options, a_media: &a_media, targets: &targets, trunk };
            if options.echo {
                one_leg::setup_echo(&setup).await?;
            } else if options.conference {
                one_leg::setup_conference(&setup).await?;
            } else {
                setup_bond(&setup).await?;
            }
            translated_calls::start(&process, options.translate, options.translate_from).await?;
            let pid = process.pid();
            bond = Some(process);
            (Some(pid), idle)
        }
    };
    if !all_known(&targets, options.echo || options.conference) {
        return Err("a side has no address".into());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    window.start_us.store(wall_us(origin), Ordering::Relaxed);
    let usage = |pid: Option<u32>| pid.map_or((0, 0), proc_usage);
    let (cpu_before, _) = usage(pid);
    let (machine_before, generator_before) = (machine_busy(), proc_usage(std::process::id()).0);
    let metrics_before = match &bond {
        Some(b) => b.metrics().await?,
        None => String::new(),
    };
    let measured_from = clock();
    let sleeper = Sleeper::start();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    window.stop.store(true, Ordering::Relaxed);
    let overslept = sleeper.stop();
    let elapsed = measured_from.elapsed();
    let (cpu_after, rss_after) = usage(pid);
    let anon_after = pid.map_or(0, proc_anon);
    let (machine_after, generator_after) = (machine_busy(), proc_usage(std::process::id()).0);
    let (sent, ticks) = sender.await.map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(500)).await; // the last packets cross
    let _ = stop_tx.send(true);
    let metrics_after = match &bond {
        Some(b) => b.metrics().await?,
        None => String::new(),
    };
    let mut got = Received::default();
    for r in receivers {
        let r = r.await.map_err(|e| e.to_string())?;
        got.marked += r.marked;
        got.unmarked += r.unmarked;
        got.latencies_us.extend(r.latencies_us);
        got.late.merge(&r.late);
        got.pacing.merge(r.pacing);
    }
    got.latencies_us.sort_unstable();
    let translated = match (&bond, options.translate) {
        (Some(b), 1..) => format!("\n{}", translated_calls::report(b)),
        _ => String::new(),
    };
    let mut ended: HashMap<String, usize> = HashMap::new();
    for (kind, payload) in bond.as_ref().map(|b| b.inbox.all()).unwrap_or_default() {
        if kind == "call.hangup" {
            *ended.entry(payload["hangup_cause"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        }
    }
    let forwarded = match &mut kernel {
        Some((relay, _)) => format!("\nforwarded in the kernel={}", relays::forwarded(relay, &targets)?),
        None => String::new(),
    };
    drop((bond, rtpengine, kernel));

    // Per cent of one core, from clock ticks (1/100 s) over the window.
    let percent = |ticks: u64| ticks as f64 / elapsed.as_secs_f64();
    let relay_cpu = percent(cpu_after - cpu_before);
    let relay = options.relay.name();
    let mode: String = match std::env::var("BOND_RTP_PASSTHROUGH").as_deref() {
        _ if options.relay != Relay::Bond => "relay".into(),
        Ok("false") => "decode and re-encode (passthrough off)".into(),
        _ if options.opus_b => match std::env::var("BOND_OPUS_COMPLEXITY") {
            Ok(c) => format!("PCMU <-> Opus (opus_complexity {c})"),
            Err(_) => "PCMU <-> Opus (opus_complexity 5, the default)".into(),
        },
        _ if options.echo => "calls into loop:echo, passthrough allowed".into(),
        _ if options.conference => "one conference of every call".into(),
        _ => "passthrough allowed".into(),
    };
    let setup = if options.echo { format!("\n{}", one_leg::setup_report(&targets)) } else { String::new() };
    let latency =
        if options.echo { "echo round trip (send -> back)" } else { "added latency (send -> far side)" };
    let timers = if metrics_after.is_empty() {
        String::new()
    } else {
        let (p50, runs) = timer_lateness_percentile(&metrics_before, &metrics_after, 50.0);
        let (p99, _) = timer_lateness_percentile(&metrics_before, &metrics_after, 99.0);
        let relays_dropped = metric_value(&metrics_after, "bond_engine_relays_dropped_total");
        let refused = metric_value(&metrics_after, "bond_srtp_packets_rejected_total");
        let offloaded = metric_value(&metrics_after, "bond_rtp_packets_offloaded_total");
        format!(
            "\nbond's timer lateness ({runs} runs) ms: p50 <= {} p99 <= {}; relays dropped between shards (since start)={relays_dropped}; SRTP packets refused={refused}; packets relayed in the kernel (since start)={offloaded}",
            p50 * 1000.0,
            p99 * 1000.0
        )
    };
    let recorded = if options.record {
        let dropped = metric_value(&metrics_after, "bond_recording_frames_dropped_total");
        format!("\nrecording frames the writers could not take (since start)={dropped}")
    } else {
        String::new()
    };
    let missing = sent.saturating_sub(got.marked + got.unmarked);
    let (late_us, streams, late_windows) = got.pacing.lateness_us(window.start_us.load(Ordering::Relaxed));
    // Only a transcoding bridge's frames, and a conference's, are all Bond's own (a
    // passthrough leg's first few, decoded, share a stream with the passed-through ones).
    let paced = if late_us.is_empty() || !(options.opus_b || options.conference) {
        String::new()
    } else {
        format!(
            "\nframes Bond made ({} of {streams} streams), lateness against each stream's best, ms: \
             p50={:.2} p99={:.2} max={:.2}; {late_windows}",
            late_us.len(),
            percentile(&late_us, 50.0) as f64 / 1000.0,
            percentile(&late_us, 99.0) as f64 / 1000.0,
            late_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        )
    };
    let report = format!(
        "relay={relay} pairs={} seconds={} mode={mode} record={}{}\n\
         generator ticks in the window={ticks} of {} (fewer: the generator fell behind)\n\
         calls that ended during the run: {ended:?}\n\
         packets sent={sent} received marked={} unmarked={} missing={}{setup}\n\
         {latency}, marked packets, ms: p50={:.2} p99={:.2} max={:.2}\n\
         marked packets {}{paced}{timers}{recorded}{translated}\n\
         {overslept}\n\
         {relay} cpu={:.1}% of one core ({:.3}% per call) rss={} MiB ({} MiB idle, {:.0} KiB per call; anonymous {:.0} KiB per call){forwarded}\n\
         machine cpu (every process, the kernel's work in any context)={:.1}% of one core; generator cpu={:.1}%",
        options.pairs,
        options.seconds,
        options.record,
        options.record_rate.map(|r| format!(" at {r} Hz")).unwrap_or_default(),
        options.seconds * 50,
        got.marked,
        got.unmarked,
        missing,
        percentile(&got.latencies_us, 50.0) as f64 / 1000.0,
        percentile(&got.latencies_us, 99.0) as f64 / 1000.0,
        got.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        got.late,
        relay_cpu,
        relay_cpu / options.pairs as f64,
        rss_after / 1024,
        rss_idle / 1024,
        rss_after.saturating_sub(rss_idle) as f64 / options.pairs as f64,
        anon_after.saturating_sub(anon_idle) as f64 / options.pairs as f64,
        percent(machine_after - machine_before),
        percent(generator_after - generator_before),
    );
    let kernel_idle = std::env::var("BOND_RTP_KERNEL_RELAY").is_ok_and(|v| v == "true")
        && metric_value(&metrics_after, "bond_rtp_packets_offloaded_total").parse::<u64>().unwrap_or(0) == 0;
    if options.check && kernel_idle {
        return Err(format!("{report}\n--check: --kernel-relay relayed nothing in the kernel"));
    }
    if options.check && (!ended.is_empty() || missing > 0 || got.marked + got.unmarked == 0) {
        return Err(format!("{report}\n--check: every packet must cross and every call last the run"));
    }
    Ok(report)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = LoadArgs::from_env();
    if let Some(complexity) = args.flag("--complexity") {
        std::env::set_var("BOND_OPUS_COMPLEXITY", complexity); // read by the Bond this starts
    }
    if args.has("--no-passthrough") {
        std::env::set_var("BOND_RTP_PASSTHROUGH", "false"); // read by the Bond this starts
    }
    if args.has("--no-rtcp") {
        std::env::set_var("BOND_RTP_RTCP", "false");
    }
    if args.has("--kernel-relay") {
        std::env::set_var("BOND_RTP_KERNEL_RELAY", "true"); // Bond's own in-kernel relay (root)
    }
    let options = Options {
        pairs: args.number(0, 100) as usize,
        seconds: args.number(1, 20),
        opus_b: args.flag("--b-codec").is_some_and(|c| c == "opus"),
        opus_fmtp: args.flag("--b-fmtp"),
        record: args.has("--record") || args.has("--record-rate"),
        record_rate: args.flag("--record-rate").and_then(|r| r.parse().ok()),
        relay: match Relay::parse(args.flag("--relay").as_deref()) {
            Ok(relay) => relay,
            Err(e) => return load::finish("bridge-load", Err(e)),
        },
        translate: args.flag("--translate").and_then(|n| n.parse().ok()).unwrap_or(0),
        translate_from: match args.flag("--translate-from").as_deref().map(Spoken::parse) {
            None => Spoken::English,
            Some(Ok(spoken)) => spoken,
            Some(Err(e)) => return load::finish("bridge-load", Err(e)),
        },
        check: args.has("--check"),
        unlinked: args.has("--unlinked"),
        echo: args.has("--echo"),
        rate: args.flag("--rate").and_then(|r| r.parse().ok()).filter(|r: &f64| *r > 0.0).unwrap_or(200.0),
        srtp: args.has("--srtp"),
        conference: args.has("--conference"),
    };
    // The models scripts/test makes, unless named; read by the Bond this starts.
    let models = [
        ("BOND_WHISPER_MODEL", "ggml-tiny.en-q8_0.bin"),
        ("BOND_WHISPER_MULTILINGUAL_MODEL", "ggml-base-q8_0.bin"),
    ];
    for (var, file) in models {
        if options.translate > 0 && std::env::var_os(var).is_none() {
            let model = std::path::absolute(std::path::Path::new("target/models").join(file));
            std::env::set_var(var, model.unwrap_or_default());
        }
    }
    if args.has("--record-rate") && options.record_rate.is_none() {
        return load::finish("bridge-load", Err("--record-rate takes a rate in Hz (16000)".into()));
    }
    if (options.echo || options.conference)
        && (options.relay != Relay::Bond || options.opus_b || options.record)
    {
        return load::finish(
            "bridge-load",
            Err("--echo and --conference run plain PCMU calls into Bond".into()),
        );
    }
    if options.srtp && (options.relay != Relay::Bond || options.echo || options.opus_b) {
        return load::finish("bridge-load", Err("--srtp runs PCMU pairs through Bond".into()));
    }
    if options.relay != Relay::Bond && (options.opus_b || options.record || options.translate > 0) {
        return load::finish("bridge-load", Err("other relays run the plain PCMU relay only".into()));
    }
    let result = run(options, args.bond_bin()).await;
    load::finish("bridge-load", result)
}
