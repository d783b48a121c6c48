//! Greetings' words for the evaluation: transcribed by the embedded
//! whisper.cpp models Bond ships (`ggml-tiny.en-q8_0.bin` for English,
//! `ggml-base-q8_0.bin` for the other languages), one at a time, with how long
//! each took. Transcripts are kept in `words-cache.tsv` beside the corpus, by
//! clip and greeting length, so a second run over the same corpus asks only for
//! greetings it has not heard (and reuses the first run's times).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use bond_speech::whisper::Whisper;
use bond_speech::SpeechToText;

/// The corpus's sample rate.
const RATE_HZ: u32 = 8_000;
const CACHE: &str = "words-cache.tsv";

#[allow(missing_debug_implementations)]
pub struct Words {
    whisper: Whisper,
    /// (clip file, greeting samples) -> (ms it took, text)
    cache: HashMap<(String, usize), (u32, String)>,
    /// Where this run's transcripts are added, as they come.
    cache_file: std::fs::File,
    /// How long each transcription took (ms), by language (a cached one: when it was made).
    pub times: HashMap<&'static str, Vec<u32>>,
}

impl Words {
    pub fn open(corpus_dir: &Path, models_dir: &Path, threads: usize) -> Result<Self, String> {
        let whisper = Whisper::new(
            &models_dir.join("ggml-tiny.en-q8_0.bin"),
            Some(&models_dir.join("ggml-base-q8_0.bin")),
            threads,
            1,
        )?;
        let path = corpus_dir.join(CACHE);
        let mut cache = HashMap::new();
        for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
            let mut fields = line.splitn(4, '\t');
            let (Some(file), Some(len), Some(ms), Some(text)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if let (Ok(len), Ok(ms)) = (len.parse(), ms.parse()) {
                cache.insert((file.to_owned(), len), (ms, text.to_owned()));
            }
        }
        let cache_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self { whisper, cache, cache_file, times: HashMap::new() })
    }

    /// What `greeting` (8 kHz, from clip `file`) says in `language`, and how
    /// long the recognizer took (ms).
    pub fn transcribe(
        &mut self,
        file: &str,
        greeting: &[i16],
        language: &'static str,
    ) -> Result<(String, u32), String> {
        let key = (file.to_owned(), greeting.len());
        if let Some((ms, text)) = self.cache.get(&key) {
            self.times.entry(language).or_default().push(*ms);
            return Ok((text.clone(), *ms));
        }
        let audio = resample_clip(greeting, RATE_HZ, SampleRate::Hz16000).map_err(|e| e.to_string())?;
        // A measuring tool reads the clock: how long the recognizer took is the point.
        #[allow(clippy::disallowed_methods)]
        let started = Instant::now();
        let asked = self.whisper.transcribe(audio, language);
        let transcript = tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(asked))
            .map_err(|e| e.to_string())?;
        let ms = started.elapsed().as_millis() as u32;
        let text = transcript.text.replace(['\t', '\n'], " ");
        self.times.entry(language).or_default().push(ms);
        let line = format!("{}\t{}\t{ms}\t{text}\n", key.0, key.1);
        self.cache_file.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        self.cache.insert(key, (ms, text.clone()));
        Ok((text, ms))
    }
}
