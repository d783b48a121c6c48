//! Cost of one carrier media-stream frame: parsing a Telnyx `media` frame (JSON
//! and base64) and decoding its PCMU payload; and the way back, encoding 20 ms
//! to PCMU and wrapping it as a `media` frame; and a `media` frame of a stream
//! Bond sends out (`streaming_start`).
//!
//! Run: `cargo bench -p bond-benches --bench streams`

use std::hint::black_box;

use base64::Engine as _;
use bond_codecs::{g711, signals};
use bond_streams::frames::{self, Carrier, Inbound};
use criterion::{criterion_group, criterion_main, Criterion};

fn media_frames(c: &mut Criterion) {
    let pcm = signals::sine(1_000.0, 8_000, 160, 8_000.0);
    let mut payload = [0u8; 160];
    g711::ulaw_encode_slice(&pcm, &mut payload);
    let frame = format!(
        r#"{{"event":"media","sequence_number":"4","media":{{"track":"inbound","chunk":"2","timestamp":"5","payload":"{}"}},"stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC"}}"#,
        base64::engine::general_purpose::STANDARD.encode(payload)
    );
    let mut decoded = [0i16; 160];
    c.bench_function("streams/telnyx_media_in_parse_base64_pcmu_decode", |b| {
        b.iter(|| {
            if let Ok(Inbound::Media { payload, .. }) = frames::parse(black_box(&frame)) {
                g711::ulaw_decode_slice(&payload, &mut decoded);
            }
            decoded[0]
        })
    });
    let mut out = [0u8; 160];
    let writer = frames::MediaWriter::new(Carrier::Telnyx, "32DE0DEA");
    c.bench_function("streams/telnyx_media_out_pcmu_encode_base64_json", |b| {
        b.iter(|| {
            g711::ulaw_encode_slice(black_box(&pcm), &mut out);
            writer.frame(&out)
        })
    });
    let outbound = frames::OutboundMediaWriter::new("32DE0DEA-53CB-4B21-89A4-9E1819C043BC");
    c.bench_function("streams/streaming_start_media_out_pcmu_encode_base64_json", |b| {
        b.iter(|| {
            g711::ulaw_encode_slice(black_box(&pcm), &mut out);
            outbound.frame(1234, "inbound", 617, 12_340, &out)
        })
    });
}

criterion_group!(benches, media_frames);
criterion_main!(benches);
