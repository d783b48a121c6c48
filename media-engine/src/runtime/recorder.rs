//! Recordings: a writer task per recording, fed over a bounded channel so the
//! media path never waits for the disk. Frames that find the channel full are
//! dropped and counted. The file is written as `NAME.wav.partial` with its WAV
//! header brought up to date every 200 ms, and renamed to `NAME.wav` when the
//! recording stops; [`repair_partials`] fixes the header of files a crash cut
//! short, so everything written before the crash is kept.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Frames (20 ms each) that may wait for the writer: 2 s.
const QUEUE: usize = 100;
/// Header refresh interval in frames (200 ms).
const FLUSH_EVERY: u64 = 10;

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
    /// Frames the writer could not take in time.
    pub frames_dropped: u64,
}

pub(crate) type RecordFrames = (Box<AudioFrame>, Box<AudioFrame>);

/// The media side of a running recording.
#[derive(Debug)]
pub(crate) struct RecordSink {
    tx: mpsc::Sender<RecordFrames>,
    dropped: Arc<AtomicU64>,
    pub task: JoinHandle<Result<RecordingSummary, String>>,
    /// Paused: the tick's frames are not offered.
    pub paused: bool,
}

impl RecordSink {
    /// Hand a tick's frames to the writer without waiting; false if they were dropped.
    pub fn offer(&self, frames: RecordFrames) -> bool {
        let sent = self.tx.try_send(frames).is_ok();
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
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
    let task = tokio::task::spawn_blocking(move || write_all(spec, writer, rx, &counter));
    Ok(RecordSink { tx, dropped, task, paused: false })
}

fn write_all(
    spec: RecordingSpec,
    mut writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
    mut rx: mpsc::Receiver<RecordFrames>,
    dropped: &AtomicU64,
) -> Result<RecordingSummary, String> {
    let mut converters: Option<(FrameResampler, FrameResampler)> = None;
    let mut scratch = (AudioFrame::silent(spec.rate, 0), AudioFrame::silent(spec.rate, 0));
    let mut frames = 0u64;
    let error = |e: hound::Error| e.to_string();
    while let Some((inbound, outbound)) = rx.blocking_recv() {
        let (inbound, outbound) = if inbound.rate() == spec.rate && outbound.rate() == spec.rate {
            (&*inbound, &*outbound)
        } else {
            let (a, b) = match &mut converters {
                Some(c) => c,
                None => converters.insert((
                    FrameResampler::new(inbound.rate(), spec.rate, ResamplerProfile::LowDelay)
                        .map_err(|e| e.to_string())?,
                    FrameResampler::new(outbound.rate(), spec.rate, ResamplerProfile::LowDelay)
                        .map_err(|e| e.to_string())?,
                )),
            };
            a.process(&inbound, &mut scratch.0).map_err(|e| e.to_string())?;
            b.process(&outbound, &mut scratch.1).map_err(|e| e.to_string())?;
            (&scratch.0, &scratch.1)
        };
        for (&i, &o) in inbound.samples().iter().zip(outbound.samples()) {
            match spec.channels {
                RecordChannels::Single => writer.write_sample(i.saturating_add(o)).map_err(error)?,
                RecordChannels::Dual => {
                    writer.write_sample(i).map_err(error)?;
                    writer.write_sample(o).map_err(error)?;
                }
            }
        }
        frames += 1;
        if frames % FLUSH_EVERY == 0 {
            writer.flush().map_err(error)?;
        }
    }
    let channels = writer.spec().channels;
    writer.finalize().map_err(error)?;
    std::fs::rename(partial_path(&spec.path), &spec.path).map_err(|e| e.to_string())?;
    Ok(RecordingSummary {
        path: spec.path,
        channels,
        rate: spec.rate.hz(),
        duration_ms: frames * 20,
        frames_dropped: dropped.load(Ordering::Relaxed),
    })
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
