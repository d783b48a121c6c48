//! How long the embedded recognizer takes per utterance, outside Bond's call
//! path: each file is transcribed `ROUNDS` times, one at a time, on `THREADS`
//! cores, after one run that loads the model; prints what each file was heard
//! as (to stderr) and the run times' mean, p50 and p90.
//!
//! ```sh
//! sox clip.wav -r 16000 -c 1 -b 16 -e signed -t raw clip.raw   # 16 kHz, 16-bit, mono
//! cargo run --release -p bond-speech --example whisper_time -- \
//!     target/models/ggml-tiny.en-q8_0.bin 1 2 clip.raw ...
//! ```
// A measuring tool: it prints its result and reads the clock, as the runtime does.
#![allow(clippy::print_stdout, clippy::disallowed_methods)]

use std::path::Path;
use std::time::Instant;

use bond_speech::whisper::Whisper;
use bond_speech::SpeechToText;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, threads, rounds, files @ ..] = args.as_slice() else {
        return Err("usage: whisper_time MODEL THREADS ROUNDS FILE.raw...".into());
    };
    let threads: usize = threads.parse().map_err(|_| "THREADS is a number")?;
    let rounds: usize = rounds.parse().ok().filter(|&r| r > 0).ok_or("ROUNDS is a number over 0")?;
    let clips = files
        .iter()
        .map(|file| {
            let bytes = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            Ok(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
        })
        .collect::<Result<Vec<Vec<i16>>, String>>()?;
    let first = clips.first().ok_or("no files")?;
    let whisper = Whisper::new(Path::new(model), None, threads, 1)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| e.to_string())?;
    let heard = |clip: &Vec<i16>| runtime.block_on(whisper.transcribe(clip.clone(), "en"));
    heard(first).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for round in 0..rounds {
        for (file, clip) in files.iter().zip(&clips) {
            let started = Instant::now();
            let transcript = heard(clip).map_err(|e| format!("{file}: {e}"))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if round == 0 {
                eprintln!("{file}: {}", transcript.text);
            }
        }
    }
    whisper.stop();
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    let at = |share: usize| times[(times.len() * share / 10).min(times.len() - 1)];
    println!("runs={} mean={mean:.1} p50={:.1} p90={:.1} ms", times.len(), at(5), at(9));
    Ok(())
}
