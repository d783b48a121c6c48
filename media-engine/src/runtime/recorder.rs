//! Recordings, from the media side: a recorded leg's audio goes to its
//! writer over a queue so the media path never waits for the disk. The media
//! side hands over a batch at a time (twenty ticks' frames, or a leg's batch of
//! passthrough packets); a recording with [`QUEUE`] batches already waiting has
//! the next dropped and its frames counted. The writer (`record_writer.rs`)
//! creates the file (the `record_start` answer waits for it, the media path
//! does not), places the audio on the call's timeline (`record_timeline.rs`), writes the
//! file as `NAME.wav.partial` (each batch handed to the OS as it is written,
//! the WAV header brought up to date every 5 s), and renames it to `NAME.wav` when the recording stops;
//! [`repair_partials`](super::record_repair::repair_partials) fixes the header
//! of files a crash cut short, so everything written before the crash is kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use bond_codecs::{AudioFrame, SampleRate};
use tokio::sync::oneshot;

use super::record_writer::{Counters, Job, Opened, Writers};
use super::RuntimeError;
use crate::leg::PacketBatch;

/// Batches of one recording that may wait for the writer (about 6 s of audio).
const QUEUE: usize = 16;
/// Ticks' frames handed over together (400 ms, as a passthrough leg's packets).
const FRAMES_PER_BATCH: usize = 20;

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
    Frames { at: u64, inbound: AudioFrame, outbound: AudioFrame },
    /// Packets that crossed a passthrough leg.
    Packets(Box<PacketBatch>),
    /// The recording paused: what comes after follows on in the file, the time between left out.
    Paused,
}

impl RecordInput {
    /// Frames (ticks or packets) it holds, for the dropped count.
    pub(super) fn frames(&self) -> u64 {
        match self {
            Self::Frames { .. } => 1,
            Self::Packets(batch) => batch.len() as u64,
            Self::Paused => 0,
        }
    }
}

/// What a stopped recording's writer answers once the file is final.
pub(crate) type Finished = oneshot::Receiver<Result<RecordingSummary, String>>;

/// The media side of a running recording.
#[derive(Debug)]
pub(crate) struct RecordSink {
    id: u64,
    writer: Sender<Job>,
    pending: Vec<RecordInput>,
    counters: Arc<Counters>,
    finished: Option<Finished>,
    /// Paused: the tick's frames are not offered.
    pub paused: bool,
}

impl RecordSink {
    /// Take a tick's frames, a batch of packets or a pause, handing them to the
    /// writer without waiting once a batch is full; the frames dropped if it was behind.
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
        let behind = self.counters.queued.load(Ordering::Relaxed) >= QUEUE;
        let frames = batch.iter().map(RecordInput::frames).sum();
        if !behind {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
            if self.writer.send(Job::Write { id: self.id, batch }).is_ok() {
                return 0;
            }
        }
        self.counters.dropped.fetch_add(frames, Ordering::Relaxed);
        frames
    }

    /// Its file could not be created: nothing offered to it is kept.
    pub fn failed(&self) -> bool {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Stop: hand over what is pending; the answer comes once the file is final.
    pub fn stop(mut self) -> (u64, Finished) {
        let dropped = self.flush();
        let finished = self.finished.take().unwrap_or_else(|| oneshot::channel().1);
        (dropped, finished)
    }
}

impl Drop for RecordSink {
    /// The writer finishes the file whether or not anyone waits for it.
    fn drop(&mut self) {
        let _ = self.writer.send(Job::Close { id: self.id });
    }
}

pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Hand a new recording to a writer thread, which creates its file (off the
/// media path) and answers `opened` with whether it could. `None` (and the
/// answer given here) when no writer could take it.
pub(crate) fn start(spec: RecordingSpec, writers: &Writers, opened: Opened) -> Option<RecordSink> {
    let (id, writer) = match writers.assign() {
        Ok(assigned) => assigned,
        Err(e) => {
            let _ = opened.send(Err(RuntimeError::Recording(e)));
            return None;
        }
    };
    let counters = Arc::new(Counters::default());
    let (done, finished) = oneshot::channel();
    let open = Job::Open { id, spec, counters: counters.clone(), done, opened };
    if let Err(std::sync::mpsc::SendError(Job::Open { opened, .. })) = writer.send(open) {
        let _ = opened.send(Err(RuntimeError::Recording("the recording writer has stopped".into())));
        return None;
    }
    Some(RecordSink {
        id,
        writer,
        pending: Vec::with_capacity(FRAMES_PER_BATCH),
        counters,
        finished: Some(finished),
        paused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at: u64, inbound: i16, outbound: i16) -> RecordInput {
        let frame = |value| AudioFrame::from_samples(SampleRate::Hz8000, at, &[value; 160]).unwrap();
        RecordInput::Frames { at, inbound: frame(inbound), outbound: frame(outbound) }
    }

    /// More recordings than tokio's blocking pool has threads (512), on two writers.
    #[tokio::test]
    async fn six_hundred_recordings_share_two_writer_threads_and_each_file_is_whole() {
        let dir = std::env::temp_dir().join(format!("bond-rec-pool-{}", std::process::id()));
        let writers = Writers::new(2);
        let mut sinks = Vec::new();
        let mut opening = Vec::new();
        for n in 0..600 {
            let path = dir.join(format!("{n}.wav"));
            let spec = RecordingSpec { path, channels: RecordChannels::Dual, rate: SampleRate::Hz8000 };
            let (opened, answer) = oneshot::channel();
            sinks.push(start(spec, &writers, opened).unwrap());
            opening.push(answer);
        }
        for answer in opening {
            answer.await.unwrap().unwrap();
        }
        // One second each: 50 ticks, with the recording's number in its left channel.
        for t in 0..50u64 {
            for (n, sink) in sinks.iter_mut().enumerate() {
                assert_eq!(sink.offer(tick(t * 160, n as i16, -1)), 0);
            }
        }
        let finishing: Vec<_> = sinks.into_iter().map(|sink| sink.stop()).collect();
        for (n, (dropped, finished)) in finishing.into_iter().enumerate() {
            assert_eq!(dropped, 0);
            let summary = finished.await.unwrap().unwrap();
            assert_eq!((summary.duration_ms, summary.frames_dropped), (1000, 0));
            let mut reader = hound::WavReader::open(&summary.path).unwrap();
            let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
            assert_eq!(samples.len(), 2 * 8000);
            assert!(samples.chunks(2).all(|pair| pair == [n as i16, -1]), "recording {n}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_created_is_answered_with_its_error_and_the_sink_reports_failed() {
        // A directory that cannot exist: its parent is a file.
        let file = std::env::temp_dir().join(format!("bond-rec-not-a-dir-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let spec = RecordingSpec {
            path: file.join("call.wav"),
            channels: RecordChannels::Dual,
            rate: SampleRate::Hz8000,
        };
        let (opened, answer) = oneshot::channel();
        let mut sink = start(spec, &Writers::new(1), opened).unwrap();
        let error = answer.await.unwrap().unwrap_err();
        assert!(error.to_string().contains("bond-rec-not-a-dir"), "{error}");
        assert!(sink.failed());
        // What it is offered afterwards goes nowhere and nothing hangs.
        assert_eq!(sink.offer(RecordInput::Paused), 0);
        let (_, finished) = sink.stop();
        assert!(finished.await.unwrap().is_err());
        std::fs::remove_file(file).unwrap();
    }
}
