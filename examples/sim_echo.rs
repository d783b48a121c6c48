//! A minute of two-way audio between a tone leg and an echo leg over a lossy,
//! jittery simulated network, in well under a second of wall time.
//!
//! Run: `cargo run --release -p bond-examples --example sim_echo -- [loss%] [jitter_ms] [codec]`
//! (defaults: 3 % loss, 30 ms jitter, pcmu; codecs: pcmu, pcma, g722, opus)

#![allow(clippy::print_stdout)] // an example reports on stdout

use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::leg::MediaSource;
use bond_media_engine::sim::{LinkProfile, SimNetwork};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loss: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(3.0) / 100.0;
    let jitter: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let codec = match args.get(2).map(String::as_str) {
        Some("pcma") => Codec::Pcma,
        Some("g722") => Codec::G722,
        Some("opus") => Codec::Opus,
        _ => Codec::Pcmu,
    };

    let mut net = SimNetwork::new(42);
    let now = net.now();
    let tone_config = net.engine.leg_config(codec);
    let echo_config = net.engine.leg_config(codec);
    let tone = net
        .engine
        .add_leg(now, tone_config, MediaSource::Tone { hz: 1000.0, dbm0: -10.0 })
        .expect("tone leg");
    let echo = net.engine.add_leg(now, echo_config, MediaSource::Echo).expect("echo leg");
    net.connect(tone, echo, LinkProfile::lossy(20, jitter, loss, 1), LinkProfile::lossy(20, jitter, loss, 2));

    #[allow(clippy::disallowed_methods)] // an example measuring its own wall time
    let started = std::time::Instant::now();
    net.run_for(Duration::from_secs(60));
    let wall = started.elapsed();

    for (name, leg) in [("tone", tone), ("echo", echo)] {
        let s = net.engine.stats(leg).expect("leg is live");
        println!(
            "{name:>4}: sent {:>5}  received {:>5}  lost {:>4}  late {:>3}  concealed {:>4}  jitter {:>5.1} ms",
            s.packets_sent, s.packets_received, s.packets_lost, s.packets_late, s.frames_concealed, s.jitter_ms
        );
    }
    println!("60 s of {codec:?} audio both ways in {wall:.2?} of wall time");
}
