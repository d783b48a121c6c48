//! The recordings' writers: a few threads shared by every recording of the
//! runtime (one per shard), so that a thousand recordings cost two threads, not
//! a thousand. A recording is given to one thread for its whole life, so its
//! batches are written in the order they were sent.
//!
//! A thread sleeps on its queue; once woken it takes everything queued, writes
//! it, and rests [`REST`] before looking again, so that the media side's
//! batches from many calls are written in one wake-up rather than one each. A
//! recording's file trails its audio by the timeline's window plus that rest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bond_codecs::g711::{alaw_decode, ulaw_decode};
use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};
use tokio::sync::oneshot;

use super::packet_decode::{PacketDecoders, Samples};
use super::record_rerate::Rerate;
use super::record_timeline::Timeline;
use super::recorder::{partial_path, RecordChannels, RecordInput, RecordingSpec, RecordingSummary};
use super::RuntimeError;

/// How long a writer thread rests after writing what was queued.
const REST: Duration = Duration::from_millis(20);
/// The file's write buffer: room for the header's small writes; audio, written
/// a batch at a time, goes past it to the OS in one write.
const HEADER_BYTES: usize = 64;
/// How often the WAV header is brought up to date, in audio written. Crash
/// safety does not need it (the repair sets the sizes from the file's length);
/// a reader of the growing `.partial` file does. Each update costs six system
/// calls (hound seeks to the two sizes and back), against the two or three
/// writes of a second of audio.
const HEADER_EVERY_MS: u64 = 5000;

pub(super) type Wav = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

/// A recording's counters, shared by its media side and its writer.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Batches sent and not yet written.
    pub queued: AtomicUsize,
    /// Frames (ticks, or packets) dropped because the writer was behind.
    pub dropped: AtomicU64,
    /// The file could not be created.
    pub failed: AtomicBool,
}

pub(super) enum Job {
    Open { id: u64, spec: RecordingSpec, counters: Arc<Counters>, done: Done, opened: Opened },
    Write { id: u64, batch: Vec<RecordInput> },
    Close { id: u64 },
}

type Done = oneshot::Sender<Result<RecordingSummary, String>>;
/// Answered once the recording's file exists, or with why it could not be created.
pub(crate) type Opened = oneshot::Sender<Result<(), RuntimeError>>;

/// The writer threads, started as recordings need them.
#[derive(Debug)]
pub(crate) struct Writers {
    /// Each thread's queue, and the next recording's id.
    threads: Mutex<(Vec<Sender<Job>>, u64)>,
    size: usize,
}

impl Writers {
    pub fn new(size: usize) -> Self {
        Self { threads: Mutex::new((Vec::new(), 0)), size: size.max(1) }
    }

    /// A new recording's id and the queue of the thread that writes it.
    pub fn assign(&self) -> Result<(u64, Sender<Job>), String> {
        // Nothing a panicking holder could leave half-done: a thread is pushed whole.
        let mut guard = self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (threads, next) = &mut *guard;
        if threads.len() < self.size {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name(format!("bond-recorder-{}", threads.len()))
                .spawn(move || run(&rx))
                .map_err(|e| format!("cannot start a recording writer: {e}"))?;
            threads.push(tx);
        }
        let id = *next;
        *next += 1;
        Ok((id, threads[(id % threads.len() as u64) as usize].clone()))
    }
}

/// A writer thread: runs until every sender of its queue is gone.
fn run(rx: &Receiver<Job>) {
    let mut recordings: HashMap<u64, Recording> = HashMap::new();
    // One staging buffer for every recording of the thread, so it stays in cache.
    let mut out = Vec::new();
    while let Ok(job) = rx.recv() {
        handle(&mut recordings, job, &mut out);
        while let Ok(job) = rx.try_recv() {
            handle(&mut recordings, job, &mut out);
        }
        std::thread::sleep(REST);
    }
}

fn handle(recordings: &mut HashMap<u64, Recording>, job: Job, out: &mut Vec<i16>) {
    match job {
        Job::Open { id, spec, counters, done, opened } => match create(&spec) {
            Ok(wav) => {
                recordings.insert(id, Recording::new(spec, wav, counters, done));
                let _ = opened.send(Ok(()));
            }
            Err(e) => {
                // Writes and the close for `id` find nothing and are let go.
                counters.failed.store(true, Ordering::Relaxed);
                let _ = done.send(Err(e.clone()));
                let _ = opened.send(Err(RuntimeError::Recording(e)));
            }
        },
        Job::Write { id, batch } => {
            if let Some(recording) = recordings.get_mut(&id) {
                recording.counters.queued.fetch_sub(1, Ordering::Relaxed);
                recording.write(batch, out);
            }
        }
        Job::Close { id } => {
            if let Some(recording) = recordings.remove(&id) {
                recording.close(out);
            }
        }
    }
}

/// Create the recording's directory and its `.partial` file.
fn create(spec: &RecordingSpec) -> Result<Wav, String> {
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
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", partial.display());
    let file = std::fs::File::create(&partial).map_err(|e| fail(&e))?;
    let file = std::io::BufWriter::with_capacity(HEADER_BYTES, file);
    hound::WavWriter::new(file, wav_spec).map_err(|e| fail(&e))
}

/// One recording on its writer thread.
struct Recording {
    spec: RecordingSpec,
    file: FileSink,
    converter: Converter,
    counters: Arc<Counters>,
    done: Done,
    /// For a passthrough bridge's packets.
    decoders: PacketDecoders,
    /// The first error; what comes after it is dropped.
    error: Option<String>,
}

impl Recording {
    fn new(spec: RecordingSpec, wav: Wav, counters: Arc<Counters>, done: Done) -> Self {
        let rate = spec.rate;
        let file = FileSink {
            wav,
            rate,
            layout: None,
            mono: spec.channels == RecordChannels::Single,
            header_every: HEADER_EVERY_MS * u64::from(rate.hz()) / 1000,
            since_header: 0,
        };
        let converter = Converter {
            resamplers: None,
            scratch: (AudioFrame::silent(rate, 0), AudioFrame::silent(rate, 0)),
        };
        Self { spec, file, converter, counters, done, decoders: PacketDecoders::default(), error: None }
    }

    /// Place a batch and write what falls out of the timeline, staged in `out`.
    fn write(&mut self, batch: Vec<RecordInput>, out: &mut Vec<i16>) {
        out.clear();
        if self.error.is_some() {
            let frames = batch.iter().map(RecordInput::frames).sum();
            self.counters.dropped.fetch_add(frames, Ordering::Relaxed);
            return;
        }
        for input in batch {
            if let Err(e) = self.place(input, out) {
                self.error = Some(e);
                return;
            }
        }
        if let Err(e) = self.file.write_out(out) {
            self.error = Some(e);
        }
    }

    fn place(&mut self, input: RecordInput, out: &mut Vec<i16>) -> Result<(), String> {
        match input {
            RecordInput::Frames { at, inbound, outbound } => {
                let rate = self.file.laid_at().unwrap_or(inbound.rate());
                let (inbound, outbound) = self.converter.convert(rate, &inbound, &outbound)?;
                let mut layout = self.file.layout(rate, out)?;
                layout.place(0, at, Samples::Linear(inbound.samples()));
                layout.place(1, at, Samples::Linear(outbound.samples()));
            }
            RecordInput::Packets(batch) => {
                let rate = batch.codec().sample_rate();
                // The leg's rate cannot change under a recording; packets of another are left out.
                if self.file.laid_at().is_some_and(|laid| laid != rate) {
                    return Ok(());
                }
                let (decoders, mut layout) = (&mut self.decoders, self.file.layout(rate, out)?);
                for (outbound, at, payload) in batch.packets() {
                    decoders.decode(batch.codec(), outbound, payload, |offset, samples| {
                        layout.place(usize::from(outbound), at + offset, samples)
                    });
                }
            }
            RecordInput::Paused => self.file.restart(out),
        }
        Ok(())
    }

    /// Write out the rest, finalize the header, give the file its name and say how it went.
    fn close(self, out: &mut Vec<i16>) {
        let Self { spec, file, counters, done, error, .. } = self;
        out.clear();
        let result = match error {
            Some(e) => Err(e),
            None => file.finish(spec, &counters.dropped, out),
        };
        // Nobody waiting (the leg ended without a stop) is fine: the file is final either way.
        let _ = done.send(result);
    }
}

/// The file and the timeline that feeds it.
struct FileSink {
    wav: Wav,
    /// The file's rate.
    rate: SampleRate,
    /// Made with the first audio, at its rate (the leg's).
    layout: Option<Layout>,
    mono: bool,
    /// Sample frames between header updates.
    header_every: u64,
    /// Sample frames written since the header was last brought up to date.
    since_header: u64,
}

/// The call laid out at its leg's rate, and what brings it to the file's.
struct Layout {
    rate: SampleRate,
    timeline: Timeline,
    rerate: Option<Rerate>,
}

/// Lays out audio at the leg's rate, writing what falls out of the timeline to the file.
struct Placer<'a> {
    layout: &'a mut Layout,
    out: &'a mut Vec<i16>,
    mono: bool,
}

impl Placer<'_> {
    fn place(&mut self, channel: usize, at: u64, samples: Samples<'_>) {
        let Layout { timeline, rerate, .. } = &mut *self.layout;
        let out = &mut to_file(rerate, self.out, self.mono);
        match samples {
            Samples::Linear(samples) => timeline.place(channel, at, samples.iter().copied(), out),
            Samples::Ulaw(codes) => timeline.place(channel, at, codes.iter().map(|&c| ulaw_decode(c)), out),
            Samples::Alaw(codes) => timeline.place(channel, at, codes.iter().map(|&c| alaw_decode(c)), out),
        }
    }
}

impl FileSink {
    /// The rate the call is laid out at, once audio came.
    fn laid_at(&self) -> Option<SampleRate> {
        self.layout.as_ref().map(|layout| layout.rate)
    }

    /// Where audio at `rate` is placed; the first audio sets the rate.
    fn layout<'a>(&'a mut self, rate: SampleRate, out: &'a mut Vec<i16>) -> Result<Placer<'a>, String> {
        let layout = match &mut self.layout {
            Some(layout) => layout,
            none => {
                let rerate = if rate == self.rate { None } else { Some(Rerate::new(rate, self.rate)?) };
                none.insert(Layout { rate, timeline: Timeline::new(rate.hz()), rerate })
            }
        };
        Ok(Placer { layout, out, mono: self.mono })
    }

    /// Lay out what is held; the next audio follows it in the file, wherever its place.
    fn restart(&mut self, out: &mut Vec<i16>) {
        if let Some(Layout { timeline, rerate, .. }) = &mut self.layout {
            timeline.restart(&mut to_file(rerate, out, self.mono));
        }
    }

    /// Write what has been laid out to the OS, in one go; every
    /// [`HEADER_EVERY_MS`] of audio, bring the header up to date.
    fn write_out(&mut self, out: &mut Vec<i16>) -> Result<(), String> {
        if out.is_empty() {
            return Ok(());
        }
        let count = u32::try_from(out.len()).map_err(|e| e.to_string())?;
        let mut block = self.wav.get_i16_writer(count);
        for &sample in out.iter() {
            block.write_sample(sample);
        }
        block.flush().map_err(|e| e.to_string())?;
        self.since_header += out.len() as u64 / u64::from(self.wav.spec().channels);
        out.clear();
        if self.since_header >= self.header_every {
            self.since_header = 0;
            self.wav.flush().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn finish(
        mut self,
        spec: RecordingSpec,
        dropped: &AtomicU64,
        out: &mut Vec<i16>,
    ) -> Result<RecordingSummary, String> {
        // Audio that came after its place was written counts as dropped too, a frame each 20 ms.
        let mut late_frames = 0;
        if let Some(Layout { rate, timeline, rerate }) = &mut self.layout {
            timeline.finish(&mut to_file(rerate, out, self.mono));
            if let Some(rerate) = rerate {
                let mono = self.mono;
                rerate.finish(&mut |run| lay(out, mono, run));
            }
            late_frames = timeline.late_samples().div_ceil(rate.frame_samples() as u64);
        }
        self.write_out(out)?;
        let channels = self.wav.spec().channels;
        let frames = u64::from(self.wav.duration());
        self.wav.finalize().map_err(|e| e.to_string())?;
        std::fs::rename(partial_path(&spec.path), &spec.path).map_err(|e| e.to_string())?;
        let rate = spec.rate.hz();
        Ok(RecordingSummary {
            path: spec.path,
            channels,
            rate,
            duration_ms: frames * 1000 / u64::from(rate),
            frames_dropped: dropped.load(Ordering::Relaxed) + late_frames,
        })
    }
}

/// Takes the timeline's runs of (inbound, outbound) pairs to the file's rate and into `out`.
fn to_file<'a>(
    rerate: &'a mut Option<Rerate>,
    out: &'a mut Vec<i16>,
    mono: bool,
) -> impl FnMut(&[[i16; 2]]) + 'a {
    move |pairs| match rerate {
        Some(rerate) => rerate.push(pairs, &mut |run| lay(out, mono, run)),
        None => lay(out, mono, pairs),
    }
}

/// Lays (inbound, outbound) pairs into `out`: both, interleaved, or their mix.
fn lay(out: &mut Vec<i16>, mono: bool, pairs: &[[i16; 2]]) {
    if mono {
        out.extend(pairs.iter().map(|&[i, o]| i.saturating_add(o)));
    } else {
        out.extend_from_slice(pairs.as_flattened());
    }
}

/// Brings a tick's frames to the rate the call is laid out at (the leg's, so
/// normally nothing to do).
struct Converter {
    resamplers: Option<(FrameResampler, FrameResampler)>,
    scratch: (AudioFrame, AudioFrame),
}

impl Converter {
    fn convert<'a>(
        &'a mut self,
        rate: SampleRate,
        inbound: &'a AudioFrame,
        outbound: &'a AudioFrame,
    ) -> Result<(&'a AudioFrame, &'a AudioFrame), String> {
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
