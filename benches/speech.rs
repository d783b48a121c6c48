//! Bond's own per-call cost of listening to speech, outside the engines: the
//! segmenter on each 20 ms frame of one track (talk and pauses), and resampling
//! a finished 3 s utterance from 8 kHz to the recognizers' 16 kHz. Criterion
//! reports frames (or utterances) per second; one's cost is the inverse.
//!
//! Run: `cargo bench -p bond-benches --bench speech`

use std::hint::black_box;

use bond_codecs::level::rms_for_dbm0;
use bond_codecs::resample::resample_clip;
use bond_codecs::signals::syllables;
use bond_codecs::SampleRate;
use bond_speech::segmenter::Segmenter;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn speech_per_frame(c: &mut Criterion) {
    // 3 s of talk, 1 s pause, repeated: utterances start and end as in a call.
    let mut samples = Vec::new();
    for seed in 0..5 {
        samples.extend(syllables(seed, 8_000, 24_000, rms_for_dbm0(-18.0) * 1.6));
        samples.extend(vec![0i16; 8_000]);
    }
    let frames: Vec<&[i16]> = samples.chunks_exact(160).collect();
    let mut group = c.benchmark_group("speech");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("segmenter, 8 kHz frames (talk and pauses)", |b| {
        b.iter(|| {
            let mut segmenter = Segmenter::default();
            for frame in &frames {
                black_box(segmenter.push(black_box(frame)));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    let utterance = &samples[..24_000];
    group.bench_function("3 s utterance 8 kHz -> 16 kHz", |b| {
        b.iter(|| black_box(resample_clip(black_box(utterance), 8_000, SampleRate::Hz16000)))
    });
    group.finish();
}

criterion_group!(benches, speech_per_frame);
criterion_main!(benches);
