//! Seeded random bytes thrown at everything that parses network input: the RTP
//! parser, telephone-event payloads, every codec's decoder and a live leg. Each
//! must answer with an error or a frame, never a panic.

use std::time::Duration;

use bond_codecs::dtmf::TelephoneEvent;
use bond_codecs::signals::SplitMix64;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use bond_media_engine::leg::MediaSource;
use bond_media_engine::rtp::RtpPacket;
use bond_media_engine::sim::SimNetwork;

fn random_bytes(rng: &mut SplitMix64, max_len: usize) -> Vec<u8> {
    let len = (rng.next_u64() % (max_len as u64 + 1)) as usize;
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn random_datagrams_into_the_rtp_parser() {
    let mut rng = SplitMix64::new(1);
    for _ in 0..200_000 {
        let mut bytes = random_bytes(&mut rng, 64);
        if let Some(first) = bytes.first_mut() {
            *first = (*first & 0x3F) | 0x80; // mostly version 2, to get past the first check
        }
        let _ = RtpPacket::parse(&bytes);
        let _ = TelephoneEvent::decode(&bytes);
    }
}

#[test]
fn random_payloads_into_every_decoder() {
    let mut rng = SplitMix64::new(2);
    let codecs = [
        Codec::Pcmu,
        Codec::Pcma,
        Codec::G722,
        Codec::Opus,
        Codec::L16 { rate: SampleRate::Hz16000, order: bond_codecs::l16::ByteOrder::BigEndian },
    ];
    for codec in codecs {
        let mut decoder = codec.decoder().unwrap();
        let mut out = AudioFrame::silent(codec.sample_rate(), 0);
        for i in 0..20_000 {
            // Sometimes the right length, so the decoder itself sees garbage.
            let payload = if i % 2 == 0 {
                let n = codec.max_payload_len().min(640);
                (0..n).map(|_| rng.next_u64() as u8).collect()
            } else {
                random_bytes(&mut rng, 400)
            };
            if decoder.decode(&payload, &mut out).is_err() {
                decoder.conceal(&mut out).unwrap();
            }
            assert_eq!(out.samples().len(), codec.sample_rate().frame_samples());
        }
    }
}

#[test]
fn random_datagrams_into_a_live_leg_leave_it_running() {
    let mut rng = SplitMix64::new(3);
    let mut net = SimNetwork::new(3);
    let now = net.now();
    let config = net.engine.leg_config(Codec::Opus);
    let leg = net.engine.add_leg(now, config, MediaSource::Echo).unwrap();
    for _ in 0..50 {
        for _ in 0..200 {
            let mut bytes = random_bytes(&mut rng, 300);
            if bytes.len() >= 2 {
                bytes[0] = 0x80;
                bytes[1] = 111; // the leg's Opus payload type: garbage reaches the decoder
            }
            let _ = net.engine.handle_receive(net.now(), leg, &bytes);
        }
        net.run_for(Duration::from_millis(100));
    }
    let stats = net.engine.stats(leg).expect("the leg is still alive");
    assert!(stats.packets_sent >= 250);
}
