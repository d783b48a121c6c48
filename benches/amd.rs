//! Cost of answering-machine detection per 20 ms frame and call: the tone
//! tracker, the DTMF guard, speech activity and the decision, fed a greeting
//! (noise at speech level, a pause, then a beep) from answer to beep. Criterion
//! reports frames per second; the cost of one frame is its inverse.
//!
//! `_words` runs as the API's defaults do, keeping the greeting's audio and
//! handing it out at its pause for a recognizer.
//!
//! Run: `cargo bench -p bond-benches --bench amd`

use std::hint::black_box;

use bond_codecs::level::{rms_for_dbm0, sine_amplitude_for_dbm0};
use bond_codecs::signals::{sine, white_noise};
use bond_codecs::{AudioFrame, SampleRate};
use bond_media_engine::amd::{AmdConfig, AmdDetector, GreetingWatch};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn frames(rate: SampleRate) -> Vec<AudioFrame> {
    let hz = rate.hz() as usize;
    let mut samples = white_noise(1, hz * 3, rms_for_dbm0(-20.0));
    samples.extend(vec![0; hz / 2]);
    samples.extend(sine(1_000.0, rate.hz(), hz / 2, sine_amplitude_for_dbm0(-15.0)));
    samples
        .chunks_exact(rate.frame_samples())
        .map(|c| AudioFrame::from_samples(rate, 0, c).expect("a frame"))
        .collect()
}

fn detector_per_frame(c: &mut Criterion) {
    for rate in [SampleRate::Hz8000, SampleRate::Hz48000] {
        let input = frames(rate);
        let mut group = c.benchmark_group("amd");
        group.throughput(Throughput::Elements(input.len() as u64));
        for (words, suffix) in [(None, ""), (Some("en"), "_words")] {
            let config = AmdConfig {
                watch: GreetingWatch::EndOrBeep,
                total_analysis_time_millis: u32::MAX,
                greeting_duration_millis: u32::MAX,
                maximum_number_of_words: u32::MAX,
                maximum_word_length_millis: u32::MAX,
                initial_silence_millis: u32::MAX,
                words_language: words,
                ..AmdConfig::default()
            };
            group.bench_function(format!("detector_greeting_{}k{suffix}", rate.hz() / 1000), |b| {
                b.iter(|| {
                    let mut detector = AmdDetector::new(config, rate.hz());
                    for frame in &input {
                        detector.push(black_box(frame), None);
                        while detector.poll_event().is_some() {}
                        black_box(detector.poll_words_wanted());
                    }
                    detector
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, detector_per_frame);
criterion_main!(benches);
