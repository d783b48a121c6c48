//! Cost of every codec and resampler path per 20 ms frame.
//!
//! Run: `cargo bench -p bond-benches --bench codecs`

use std::hint::black_box;

use bond_codecs::dtmf::DtmfDetector;
use bond_codecs::g722::{G722Decoder, G722Encoder};
use bond_codecs::opus_codec::{self, OpusConfig, OpusDecoder, OpusEncoder, MAX_OPUS_PACKET};
use bond_codecs::opus_peer::OpusPeer;
use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::signals::{sine, white_noise};
use bond_codecs::{g711, l16, AudioFrame, SampleRate};
use criterion::{criterion_group, criterion_main, Criterion};

fn frame(rate: SampleRate) -> AudioFrame {
    let mut pcm = sine(1000.0, rate.hz(), rate.frame_samples(), 8000.0);
    for (s, n) in pcm.iter_mut().zip(white_noise(1, rate.frame_samples(), 500.0)) {
        *s = s.saturating_add(n);
    }
    AudioFrame::from_samples(rate, 0, &pcm).expect("one frame")
}

fn g711_paths(c: &mut Criterion) {
    let pcm = frame(SampleRate::Hz8000);
    let mut codes = [0u8; 160];
    let mut out = [0i16; 160];
    c.bench_function("g711/ulaw_encode_20ms", |b| {
        b.iter(|| g711::ulaw_encode_slice(black_box(pcm.samples()), &mut codes))
    });
    c.bench_function("g711/ulaw_decode_20ms", |b| {
        b.iter(|| g711::ulaw_decode_slice(black_box(&codes), &mut out))
    });
    c.bench_function("g711/alaw_encode_20ms", |b| {
        b.iter(|| g711::alaw_encode_slice(black_box(pcm.samples()), &mut codes))
    });
    c.bench_function("g711/alaw_decode_20ms", |b| {
        b.iter(|| g711::alaw_decode_slice(black_box(&codes), &mut out))
    });
}

fn l16_paths(c: &mut Criterion) {
    let pcm = frame(SampleRate::Hz16000);
    let mut bytes = [0u8; 640];
    let mut out = [0i16; 320];
    let order = l16::ByteOrder::BigEndian;
    c.bench_function("l16/encode_16k_20ms", |b| {
        b.iter(|| l16::encode(black_box(pcm.samples()), order, &mut bytes).expect("fits"))
    });
    c.bench_function("l16/decode_16k_20ms", |b| {
        b.iter(|| l16::decode(black_box(&bytes), order, &mut out).expect("even"))
    });
}

fn g722_paths(c: &mut Criterion) {
    let pcm = frame(SampleRate::Hz16000);
    let mut enc = G722Encoder::new();
    let mut dec = G722Decoder::new();
    let mut bytes = [0u8; 160];
    let mut out = [0i16; 320];
    c.bench_function("g722/encode_20ms", |b| {
        b.iter(|| enc.encode(black_box(pcm.samples()), &mut bytes).expect("fits"))
    });
    c.bench_function("g722/decode_20ms", |b| {
        b.iter(|| dec.decode(black_box(&bytes), &mut out).expect("fits"))
    });
}

fn opus_paths(c: &mut Criterion) {
    for rate in [SampleRate::Hz48000, SampleRate::Hz16000] {
        let pcm = frame(rate);
        let config = OpusConfig { rate, complexity: 5, ..OpusConfig::default() };
        let mut enc = OpusEncoder::new(config).expect("opus encoder");
        let mut dec = OpusDecoder::new(rate).expect("opus decoder");
        let mut packet = [0u8; MAX_OPUS_PACKET];
        let mut out = AudioFrame::silent(rate, 0);
        let khz = rate.hz() / 1000;
        c.bench_function(&format!("opus/encode_{khz}k_c5_20ms"), |b| {
            b.iter(|| enc.encode(black_box(&pcm), &mut packet).expect("encodes"))
        });
        let n = enc.encode(&pcm, &mut packet).expect("encodes");
        c.bench_function(&format!("opus/decode_{khz}k_20ms"), |b| {
            b.iter(|| dec.decode(black_box(&packet[..n]), &mut out).expect("decodes"))
        });
        c.bench_function(&format!("opus/conceal_{khz}k_20ms"), |b| {
            b.iter(|| dec.conceal(&mut out).expect("plc"))
        });
    }
    // What `media.opus_complexity` buys: encode cost at 48 kHz by complexity.
    let pcm = frame(SampleRate::Hz48000);
    let mut packet = [0u8; MAX_OPUS_PACKET];
    opus_short_packets(c, &pcm);
    for complexity in [0, 1, 2, 3, 8, 10] {
        let config = OpusConfig { complexity, ..OpusConfig::default() };
        let mut enc = OpusEncoder::new(config).expect("opus encoder");
        c.bench_function(&format!("opus/encode_48k_c{complexity}_20ms"), |b| {
            b.iter(|| enc.encode(black_box(&pcm), &mut packet).expect("encodes"))
        });
    }
    // What a SIP peer's `maxplaybackrate` saves: no band wider than it is coded.
    for khz in [16, 8] {
        let peer = OpusPeer::from_fmtp(&format!("maxplaybackrate={khz}000;useinbandfec=1"));
        let mut enc = OpusEncoder::new(OpusConfig::default().for_peer(&peer)).expect("opus encoder");
        c.bench_function(&format!("opus/encode_48k_c5_peer_plays_{khz}k_20ms"), |b| {
            b.iter(|| enc.encode(black_box(&pcm), &mut packet).expect("encodes"))
        });
    }
}

/// A peer asking for 10 or 30 ms Opus: each 20 ms tick is encoded as two 10
/// ms frames (at 30 ms, three are joined into one packet), and its 30 ms
/// packets are split into their 10 ms frames before they are gathered.
fn opus_short_packets(c: &mut Criterion, pcm: &AudioFrame) {
    let mut enc =
        OpusEncoder::new(OpusConfig { complexity: 5, ..OpusConfig::default() }).expect("opus encoder");
    let mut packet = [0u8; MAX_OPUS_PACKET];
    let (first, second) = pcm.samples().split_at(pcm.samples().len() / 2);
    c.bench_function("opus/encode_48k_c5_2x10ms", |b| {
        b.iter(|| {
            enc.encode_pcm(black_box(first), &mut packet).expect("encodes");
            enc.encode_pcm(black_box(second), &mut packet).expect("encodes")
        })
    });
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            let n = enc.encode_pcm(first, &mut packet).expect("encodes");
            packet[..n].to_vec()
        })
        .collect();
    let parts: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let joined = opus_codec::join_packets(&parts).expect("joins");
    c.bench_function("opus/split_30ms_into_10ms", |b| {
        b.iter(|| opus_codec::split_short_frames(black_box(&joined)).expect("splits"))
    });
    c.bench_function("opus/join_3x10ms", |b| {
        b.iter(|| opus_codec::join_packets(black_box(&parts)).expect("joins"))
    });
}

/// An Opus leg bridged to G.711, per 20 ms each way: coding at 48 kHz with
/// the route's resampler (the band limited to narrowband) against coding at
/// 8 kHz, the rate the peer's audio has.
fn opus_bridged_to_g711(c: &mut Criterion) {
    use SampleRate::{Hz48000, Hz8000};
    let narrow = frame(Hz8000);
    let mut packet = [0u8; MAX_OPUS_PACKET];
    let mut wide = AudioFrame::silent(Hz48000, 0);
    let mut up = FrameResampler::new(Hz8000, Hz48000, ResamplerProfile::LowDelay).expect("resampler");
    let mut enc48 = OpusEncoder::new(OpusConfig::default()).expect("opus encoder");
    enc48.limit_band(Hz8000).expect("narrows");
    c.bench_function("opus_g711/to_opus_via_48k", |b| {
        b.iter(|| {
            up.process(black_box(&narrow), &mut wide).expect("resamples");
            enc48.encode(&wide, &mut packet).expect("encodes")
        })
    });
    let mut enc8 =
        OpusEncoder::new(OpusConfig { rate: Hz8000, ..OpusConfig::default() }).expect("opus encoder");
    c.bench_function("opus_g711/to_opus_at_8k", |b| {
        b.iter(|| enc8.encode(black_box(&narrow), &mut packet).expect("encodes"))
    });
    // What a browser sends: full-band packets.
    let mut browser = OpusEncoder::new(OpusConfig::default()).expect("opus encoder");
    let n = browser.encode(&frame(Hz48000), &mut packet).expect("encodes");
    let browser_packet = packet[..n].to_vec();
    let mut dec48 = OpusDecoder::new(Hz48000).expect("opus decoder");
    let mut down = FrameResampler::new(Hz48000, Hz8000, ResamplerProfile::LowDelay).expect("resampler");
    let mut out = AudioFrame::silent(Hz8000, 0);
    c.bench_function("opus_g711/from_opus_via_48k", |b| {
        b.iter(|| {
            dec48.decode(black_box(&browser_packet), &mut wide).expect("decodes");
            down.process(&wide, &mut out).expect("resamples")
        })
    });
    let mut dec8 = OpusDecoder::new(Hz8000).expect("opus decoder");
    c.bench_function("opus_g711/from_opus_at_8k", |b| {
        b.iter(|| dec8.decode(black_box(&browser_packet), &mut out).expect("decodes"))
    });
}

fn resampler_paths(c: &mut Criterion) {
    use SampleRate::*;
    let pairs = [
        (Hz8000, Hz16000),
        (Hz8000, Hz48000),
        (Hz16000, Hz48000),
        (Hz24000, Hz48000),
        (Hz16000, Hz8000),
        (Hz48000, Hz8000),
        (Hz48000, Hz16000),
    ];
    for profile in [ResamplerProfile::LowDelay, ResamplerProfile::HighQuality] {
        for (from, to) in pairs {
            let input = frame(from);
            let mut r = FrameResampler::new(from, to, profile).expect("resampler");
            let mut out = AudioFrame::silent(to, 0);
            let name = format!("resample/{profile:?}/{}k_to_{}k_20ms", from.hz() / 1000, to.hz() / 1000);
            c.bench_function(&name, |b| {
                b.iter(|| r.process(black_box(&input), &mut out).expect("resamples"))
            });
        }
    }
}

fn dtmf_path(c: &mut Criterion) {
    for rate in [SampleRate::Hz8000, SampleRate::Hz48000] {
        let pcm = frame(rate);
        let mut det = DtmfDetector::new(rate.hz());
        let name = format!("dtmf/detect_{}k_20ms", rate.hz() / 1000);
        c.bench_function(&name, |b| b.iter(|| det.push(black_box(pcm.samples()))));
    }
}

criterion_group!(
    benches,
    g711_paths,
    l16_paths,
    g722_paths,
    opus_paths,
    opus_bridged_to_g711,
    resampler_paths,
    dtmf_path
);
criterion_main!(benches);
