//! Recordings: a writer task per recording, fed over a bounded channel so the
//! media path never waits for the disk. The media side hands over a batch at a
//! time (ten ticks' frames, or a leg's batch of passthrough packets); batches
//! that find the channel full are dropped and their frames counted. The writer
//! places the audio on the call's timeline (`record_timeline.rs`), writes the
//! file as `NAME.wav.partial` with its WAV header brought up to date every
//! 200 ms, and renames it to `NAME.wav` when the recording stops;
//! [`repair_partials`] fixes the header of files a crash cut short, so
//! everything written before the crash is kept.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bond_codecs::g711::{alaw_decode_slice, ulaw_decode_slice};
use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, Codec, SampleRate};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::record_timeline::Timeline;
use crate::leg::PacketBatch;

/// Batches that may wait for the writer (about 6 s of audio).
const QUEUE: usize = 32;
/// Ticks' frames handed over together (200 ms).
const FRAMES_PER_BATCH: usize = 10;
/// How often the WAV header is brought up to date, in audio written.
const FLUSH_EVERY_MS: u64 = 200;

/// Mono mix of both directions, or dual channel (inbound left, outbound right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordChannels {
    Single,
    Dual,
}

/// Where and how to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSpec {
    /// The finished file (`.wav`); it is written as `<path>.partial` until it stops.
    pub path: PathBuf,
    pub channels: RecordChannels,
    pub rate: SampleRate,
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    pub channels: u16,
    pub rate: u32,
    /// Audio in the file, in milliseconds.
    pub duration_ms: u64,
    /// Frames (20 ms ticks, or packets) the writer could not take in time.
    pub frames_dropped: u64,
}

/// What a recorded leg hands its writer.
#[derive(Debug)]
pub(crate) enum RecordInput {
    /// One tick: what the party said and was sent, from `at` (8 kHz samples since the leg started).
    Frames { at: u64, inbound: Box<AudioFrame>, outbound: Box<AudioFrame> },
    /// Packets that crossed a passthrough leg.
    Packets(Box<PacketBatch>),
    /// The recording paused: what comes after follows on in the file, the time between left out.
    Paused,
}

impl RecordInput {
    /// Frames (ticks or packets) it holds, for the dropped count.
    fn frames(&self) -> u64 {
        match self {
            Self::Frames { .. } => 1,
            Self::Packets(batch) => batch.len() as u64,
            Self::Paused => 0,
        }
    }
}

/// The media side of a running recording.
#[derive(Debug)]
pub(crate) struct RecordSink {
    tx: mpsc::Sender<Vec<RecordInput>>,
    pending: Vec<RecordInput>,
    dropped: Arc<AtomicU64>,
    pub task: JoinHandle<Result<RecordingSummary, String>>,
    /// Paused: the tick's frames are not offered.
    pub paused: bool,
    /// The writer takes passthrough packets (G.711 at 8 kHz needs no resampling).
    pub takes_packets: bool,
}

impl RecordSink {
    /// Take a tick's frames, a batch of packets or a pause, handing them to the
    /// writer without waiting once a batch is full; the frames dropped if it was full.
    pub fn offer(&mut self, input: RecordInput) -> u64 {
        let hand_over = !matches!(input, RecordInput::Frames { .. });
        self.pending.push(input);
        if hand_over || self.pending.len() >= FRAMES_PER_BATCH {
            self.flush()
        } else {
            0
        }
    }

    /// Hand over what is pending (when the recording stops); the frames dropped.
    pub fn flush(&mut self) -> u64 {
        if self.pending.is_empty() {
            return 0;
        }
        let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(FRAMES_PER_BATCH));
        match self.tx.try_send(batch) {
            Ok(()) => 0,
            Err(e) => {
                let frames = e.into_inner().iter().map(RecordInput::frames).sum();
                self.dropped.fetch_add(frames, Ordering::Relaxed);
                frames
            }
        }
    }
}

pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Open the file and start the writer task.
pub(crate) fn start(spec: RecordingSpec) -> Result<RecordSink, String> {
    if let Some(dir) = spec.path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let channels = match spec.channels {
        RecordChannels::Single => 1,
        RecordChannels::Dual => 2,
    };
    let wav_spec = hound::WavSpec {
        channels,
        sample_rate: spec.rate.hz(),
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let partial = partial_path(&spec.path);
    let writer =
        hound::WavWriter::create(&partial, wav_spec).map_err(|e| format!("{}: {e}", partial.display()))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = dropped.clone();
    let takes_packets = spec.rate == SampleRate::Hz8000;
    let task = tokio::task::spawn_blocking(move || write_all(spec, writer, rx, &counter));
    Ok(RecordSink {
        tx,
        pending: Vec::with_capacity(FRAMES_PER_BATCH),
        dropped,
        task,
        paused: false,
        takes_packets,
    })
}

type Wav = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

/// The file and the timeline that feeds it.
struct FileSink {
    wav: Wav,
    timeline: Timeline,
    mono: bool,
    /// Sample frames between header updates (200 ms).
    flush_every: u64,
    /// Sample frames written.
    written: u64,
    /// The first write error; nothing is written after it.
    error: Option<String>,
}

impl FileSink {
    fn place(&mut self, channel: usize, at: u64, samples: &[i16]) {
        let Self { wav, timeline, mono, flush_every, written, error } = self;
        timeline.place(channel, at, samples, &mut pair_writer(wav, *mono, *flush_every, written, error));
    }

    /// Write out what is held; the next audio follows it in the file, wherever its place.
    fn restart(&mut self) {
        let Self { wav, timeline, mono, flush_every, written, error } = self;
        timeline.restart(&mut pair_writer(wav, *mono, *flush_every, written, error));
    }

    fn check(&mut self) -> Result<(), String> {
        self.error.take().map_or(Ok(()), Err)
    }

    /// Write out the rest, finalize the header and give the file its name.
    fn finish(mut self, spec: RecordingSpec, dropped: &AtomicU64) -> Result<RecordingSummary, String> {
        let Self { wav, timeline, mono, written, error, .. } = &mut self;
        timeline.finish(&mut pair_writer(wav, *mono, u64::MAX, written, error));
        self.check()?;
        let channels = self.wav.spec().channels;
        self.wav.finalize().map_err(|e| e.to_string())?;
        std::fs::rename(partial_path(&spec.path), &spec.path).map_err(|e| e.to_string())?;
        let rate = spec.rate.hz();
        Ok(RecordingSummary {
            path: spec.path,
            channels,
            rate,
            duration_ms: self.written * 1000 / u64::from(rate),
            // Audio that came after its place was written counts as dropped too.
            frames_dropped: dropped.load(Ordering::Relaxed)
                + self.timeline.late_samples().div_ceil(u64::from(rate / 50)),
        })
    }
}

/// Writes (inbound, outbound) sample frames, bringing the header up to date
/// every `flush_every`; the first error is kept and nothing is written after it.
fn pair_writer<'a>(
    wav: &'a mut Wav,
    mono: bool,
    flush_every: u64,
    written: &'a mut u64,
    error: &'a mut Option<String>,
) -> impl FnMut(i16, i16) + 'a {
    move |i, o| {
        if error.is_some() {
            return;
        }
        let result = if mono {
            wav.write_sample(i.saturating_add(o))
        } else {
            wav.write_sample(i).and_then(|()| wav.write_sample(o))
        };
        *written += 1;
        let result = result.and_then(|()| if *written % flush_every == 0 { wav.flush() } else { Ok(()) });
        if let Err(e) = result {
            *error = Some(e.to_string());
        }
    }
}

/// Brings a tick's frames to the recording's rate.
struct Converter {
    rate: SampleRate,
    resamplers: Option<(FrameResampler, FrameResampler)>,
    scratch: (AudioFrame, AudioFrame),
}

impl Converter {
    fn convert<'a>(
        &'a mut self,
        inbound: &'a AudioFrame,
        outbound: &'a AudioFrame,
    ) -> Result<(&'a AudioFrame, &'a AudioFrame), String> {
        let rate = self.rate;
        if inbound.rate() == rate && outbound.rate() == rate {
            return Ok((inbound, outbound));
        }
        let resampler =
            |from| FrameResampler::new(from, rate, ResamplerProfile::LowDelay).map_err(|e| e.to_string());
        let (a, b) = match &mut self.resamplers {
            Some(r) => r,
            None => self.resamplers.insert((resampler(inbound.rate())?, resampler(outbound.rate())?)),
        };
        a.process(inbound, &mut self.scratch.0).map_err(|e| e.to_string())?;
        b.process(outbound, &mut self.scratch.1).map_err(|e| e.to_string())?;
        Ok((&self.scratch.0, &self.scratch.1))
    }
}

fn write_all(
    spec: RecordingSpec,
    wav: Wav,
    mut rx: mpsc::Receiver<Vec<RecordInput>>,
    dropped: &AtomicU64,
) -> Result<RecordingSummary, String> {
    let rate = spec.rate;
    let mut file = FileSink {
        wav,
        timeline: Timeline::new(rate.hz()),
        mono: spec.channels == RecordChannels::Single,
        flush_every: FLUSH_EVERY_MS * u64::from(rate.hz()) / 1000,
        written: 0,
        error: None,
    };
    let mut converter = Converter {
        rate,
        resamplers: None,
        scratch: (AudioFrame::silent(rate, 0), AudioFrame::silent(rate, 0)),
    };
    let mut decoded = Vec::with_capacity(160);
    while let Some(batch) = rx.blocking_recv() {
        for input in batch {
            match input {
                RecordInput::Frames { at, inbound, outbound } => {
                    let (inbound, outbound) = converter.convert(&inbound, &outbound)?;
                    file.place(0, at, inbound.samples());
                    file.place(1, at, outbound.samples());
                }
                // Only sinks at 8 kHz are offered packets (`RecordSink::takes_packets`).
                RecordInput::Packets(_) if rate != SampleRate::Hz8000 => {}
                RecordInput::Packets(batch) => {
                    let decode = match batch.codec() {
                        Codec::Pcma => alaw_decode_slice,
                        _ => ulaw_decode_slice,
                    };
                    for (outbound, at, payload) in batch.packets() {
                        decoded.resize(payload.len(), 0);
                        decode(payload, &mut decoded);
                        file.place(usize::from(outbound), at, &decoded);
                    }
                }
                RecordInput::Paused => file.restart(),
            }
            file.check()?;
        }
    }
    file.finish(spec, dropped)
}

/// Fix every `*.wav.partial` under `dir` (a crash cut them short): set the WAV
/// sizes from the file length, drop a torn last sample frame, rename to `.wav`.
pub fn repair_partials(dir: &Path) -> Vec<Result<RecordingSummary, String>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut repaired = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            repaired.extend(repair_partials(&path));
        } else if path.to_string_lossy().ends_with(".wav.partial") {
            repaired.push(repair(&path));
        }
    }
    repaired
}

fn repair(partial: &Path) -> Result<RecordingSummary, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", partial.display());
    let mut file = OpenOptions::new().read(true).write(true).open(partial).map_err(fail)?;
    let mut header = [0u8; 512];
    let n = file.read(&mut header).map_err(fail)?;
    let header = &header[..n];
    if n < 12 || &header[..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Err(format!("{}: not a WAV file", partial.display()));
    }
    // Walk the chunks to `fmt ` (channels, rate, block size) and `data`.
    let (mut pos, mut fmt, mut data_at) = (12usize, None, None);
    while pos + 8 <= header.len() {
        let id = &header[pos..pos + 4];
        let size =
            u32::from_le_bytes([header[pos + 4], header[pos + 5], header[pos + 6], header[pos + 7]]) as usize;
        if id == b"fmt " && pos + 8 + 16 <= header.len() {
            let f = &header[pos + 8..];
            fmt = Some((
                u16::from_le_bytes([f[2], f[3]]),
                u32::from_le_bytes([f[4], f[5], f[6], f[7]]),
                u16::from_le_bytes([f[12], f[13]]),
            ));
        }
        if id == b"data" {
            data_at = Some(pos + 8);
            break;
        }
        pos += 8 + size + size % 2;
    }
    let (Some((channels, rate, block)), Some(data_at)) = (fmt, data_at) else {
        return Err(format!("{}: no fmt or data chunk", partial.display()));
    };
    let length = file.metadata().map_err(fail)?.len();
    let block = u64::from(block.max(1));
    let data_len = (length.saturating_sub(data_at as u64) / block) * block;
    file.set_len(data_at as u64 + data_len).map_err(fail)?;
    file.seek(SeekFrom::Start(4)).map_err(fail)?;
    file.write_all(&((data_at as u64 + data_len - 8) as u32).to_le_bytes()).map_err(fail)?;
    file.seek(SeekFrom::Start(data_at as u64 - 4)).map_err(fail)?;
    file.write_all(&(data_len as u32).to_le_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    let finished = PathBuf::from(partial.to_string_lossy().trim_end_matches(".partial"));
    std::fs::rename(partial, &finished).map_err(fail)?;
    let frames = data_len / block;
    Ok(RecordingSummary {
        path: finished,
        channels,
        rate,
        duration_ms: frames * 1000 / u64::from(rate.max(1)),
        frames_dropped: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_short_file_is_repaired_with_all_its_audio() {
        let dir = tempfile_dir();
        let path = dir.join("call.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let partial = partial_path(&path);
        let mut writer = hound::WavWriter::create(&partial, spec).unwrap();
        for n in 0..8000i16 {
            writer.write_sample(n).unwrap();
            writer.write_sample(-n).unwrap();
        }
        writer.flush().unwrap();
        // A crash: the process dies (nothing more from the writer) after the OS got
        // 400 more stereo frames and half of another, past the last header update.
        std::mem::forget(writer);
        let mut file = OpenOptions::new().append(true).open(&partial).unwrap();
        file.write_all(&vec![7u8; 400 * 4 + 2]).unwrap();
        drop(file);
        let results = repair_partials(&dir);
        let summary = results[0].as_ref().unwrap();
        assert_eq!(summary.path, path);
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.duration(), 8000 + 400);
        assert_eq!(summary.duration_ms, 1050);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(&samples[..4], &[0, 0, 1, -1]);
        assert_eq!(samples[2 * 7999 + 1], -7999);
        assert!(!partial.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bond-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
