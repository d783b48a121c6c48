//! An RTP echo leg on a real UDP port: send it PCMU (payload type 0, 20 ms
//! packets) from any RTP tool and it sends the audio back to where it came from.
//!
//! Run: `cargo run -p bond-examples --example udp_echo` then point RTP at the printed
//! address, e.g. `sipp`'s RTP echo or `gst-launch-1.0 ... ! udpsink port=<port>`.
//! Stops after 60 s without media, or on Ctrl-C.

#![allow(clippy::print_stdout)] // an example reports on stdout

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::leg::{MediaSource, RtpMedia};
use bond_media_engine::runtime::{self, LegSpec, PortRange, RuntimeConfig};
use bond_media_engine::EngineEvent;

#[tokio::main]
async fn main() {
    let config = RuntimeConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtp_ports: PortRange::new(20_000, 20_100).expect("valid range"),
        seed: 7,
        webrtc: None,
        opus: Default::default(),
        shards: 0,
        passthrough: true,
        rtcp: true,
        driver_threads: true,
        strict_source: true,
        kernel_relay: false,
    };
    let (engine, _task) = runtime::spawn(config);
    let mut events = engine.subscribe();
    let spec = LegSpec {
        media: RtpMedia::new(Codec::Pcmu),
        source: MediaSource::Echo,
        remote: None,
        media_timeout: Some(Duration::from_secs(60)),
    };
    let leg = engine.create_leg(spec).await.expect("an echo leg");
    println!("echo leg {} listening on {} (PCMU, PT 0)", leg.id, leg.local_addr);
    tokio::select! {
        event = events.recv() => {
            if let Ok(EngineEvent::LegEnded { cause, stats, .. }) = event {
                println!("ended: {} after {} packets in, {} out", cause.as_str(), stats.packets_received, stats.packets_sent);
            }
        }
        _ = tokio::signal::ctrl_c() => {
            let _ = engine.shutdown().await;
        }
    }
}
