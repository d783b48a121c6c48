//! The driver's taps on its legs: recordings (each fed to its writer's
//! bounded queue) and forks (speech and media streams), and which of a leg's
//! outputs the engine must produce for them.

use tokio::sync::oneshot;

use super::{
    engine_error, fork, recorder, Driver, RecordInput, RecordSink, RecordTap, RuntimeError, RuntimeMetrics,
};
use crate::ids::LegId;
use crate::runtime::fork::Fork;
use crate::runtime::recorder::{Finished, RecordingSpec};

impl Driver {
    /// Start recording `leg`; the writer answers `reply` once it has created the file.
    pub(super) fn start_recording(
        &mut self,
        leg: LegId,
        spec: RecordingSpec,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    ) {
        // One whose file could not be created makes way for the new one.
        if self.recordings.get(&leg).is_some_and(RecordSink::failed) {
            self.recordings.remove(&leg);
        }
        if self.recordings.contains_key(&leg) {
            let _ = reply.send(Err(RuntimeError::Recording(format!("{leg} is already being recorded"))));
        } else if self.engine.rate(leg).is_none() {
            let _ = reply.send(Err(engine_error(crate::EngineError::UnknownLeg(leg))));
        } else {
            if let Some(sink) = recorder::start(spec, &self.shared.writers, reply) {
                self.recordings.insert(leg, sink);
                self.retap(leg);
            }
        }
    }

    pub(super) fn pause_recording(&mut self, leg: LegId, paused: bool) -> Result<(), RuntimeError> {
        match self.recordings.get_mut(&leg) {
            Some(sink) => {
                let pausing = paused && !sink.paused;
                sink.paused = paused;
                self.retap(leg);
                if pausing {
                    self.record(leg, RecordInput::Paused);
                }
                Ok(())
            }
            None => Err(RuntimeError::Recording(format!("{leg} is not being recorded"))),
        }
    }

    /// Stop recording `leg`: what the writer will answer once the file is finished.
    pub(super) fn stop_recording(&mut self, leg: LegId) -> Option<Finished> {
        if let Some(sink) = self.recordings.get_mut(&leg) {
            sink.paused = true;
            self.retap(leg);
        }
        // The writer finishes the file once the sink is dropped; the reply waits for it.
        self.recordings.remove(&leg).map(|sink| {
            let (dropped, finished) = sink.stop();
            RuntimeMetrics::add(&self.shared.metrics.recording_frames_dropped, dropped);
            finished
        })
    }

    pub(super) fn start_fork(&mut self, leg: LegId, name: &'static str) -> Result<Fork, RuntimeError> {
        let forks = self.forks.get(&leg).map(Vec::as_slice).unwrap_or_default();
        if forks.iter().any(|(n, _)| *n == name) {
            Err(RuntimeError::Fork(format!("{leg} already has a {name} fork")))
        } else {
            self.engine.set_recording(leg, RecordTap::Frames).map_err(engine_error).map(|()| {
                let (sink, fork) = fork::open();
                self.forks.entry(leg).or_default().push((name, sink));
                fork
            })
        }
    }

    /// Whether `leg` had a fork `name` to stop.
    pub(super) fn stop_fork(&mut self, leg: LegId, name: &'static str) -> bool {
        // Dropping the sink ends the consumer's stream.
        let forks = self.forks.entry(leg).or_default();
        let before = forks.len();
        forks.retain(|(n, _)| *n != name);
        let stopped = forks.len() < before;
        if forks.is_empty() {
            self.forks.remove(&leg);
        }
        self.retap(leg);
        stopped
    }

    /// Hand a recording what its leg gave it. A paused recording takes no frames
    /// (a fork beside it may keep them coming), but does take the packets a leg
    /// hands over as its tap is taken off, and the pause itself, after them.
    pub(super) fn record(&mut self, leg: LegId, input: RecordInput) {
        let Some(sink) = self.recordings.get_mut(&leg) else { return };
        if sink.failed() {
            // Its writer has told the API; the leg goes back to no recording.
            self.recordings.remove(&leg);
            self.retap(leg);
            return;
        }
        if sink.paused && matches!(input, RecordInput::Frames { .. }) {
            return;
        }
        let dropped = sink.offer(input);
        RuntimeMetrics::add(&self.shared.metrics.recording_frames_dropped, dropped);
    }

    /// Have the engine output a leg's audio while a running recording or a fork
    /// wants it: as packets while passing through, if only a recording that takes them does.
    pub(super) fn retap(&mut self, leg: LegId) {
        let recording = self.recordings.get(&leg).filter(|sink| !sink.paused);
        let tap = match recording {
            _ if self.forks.contains_key(&leg) => RecordTap::Frames,
            Some(_) => RecordTap::FramesOrPackets,
            None => RecordTap::Off,
        };
        let _ = self.engine.set_recording(leg, tap);
        // Packets a passthrough leg held for the recording come out as its tap
        // changes: take them now, ahead of whatever the change is for.
        self.flush();
    }
}
