//! Forks: a copy of a leg's audio, both directions tick by tick, for a consumer
//! off the media path (the control plane streaming it out over a WebSocket).
//! The driver offers each tick over a bounded queue and never waits: what the
//! consumer does not take in time is dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bond_codecs::AudioFrame;
use tokio::sync::mpsc;

/// Ticks (20 ms each) that may wait for the consumer: 1 s.
const QUEUE: usize = 50;

/// One tick of a forked leg: what its party said, and what the party was sent,
/// both at the leg's rate.
#[derive(Debug, Clone)]
pub struct ForkTick {
    pub inbound: AudioFrame,
    pub outbound: AudioFrame,
}

/// The consumer's end of a fork. The stream ends (`recv` gives `None`) when the
/// fork is stopped or the leg ends.
#[derive(Debug)]
pub struct Fork {
    pub ticks: mpsc::Receiver<ForkTick>,
    dropped: Arc<AtomicU64>,
}

impl Fork {
    /// Ticks dropped so far because the consumer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The driver's end of a fork.
#[derive(Debug)]
pub(crate) struct ForkSink {
    tx: mpsc::Sender<ForkTick>,
    dropped: Arc<AtomicU64>,
}

impl ForkSink {
    /// Hand a tick to the consumer without waiting; false if it was dropped.
    pub fn offer(&self, inbound: &AudioFrame, outbound: &AudioFrame) -> bool {
        let tick = ForkTick { inbound: inbound.clone(), outbound: outbound.clone() };
        let sent = self.tx.try_send(tick).is_ok();
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        sent
    }
}

pub(crate) fn open() -> (ForkSink, Fork) {
    let (tx, ticks) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    (ForkSink { tx, dropped: dropped.clone() }, Fork { ticks, dropped })
}

#[cfg(test)]
mod tests {
    use bond_codecs::SampleRate;

    use super::*;

    #[test]
    fn a_consumer_that_falls_behind_loses_ticks_and_they_are_counted() {
        let (sink, mut fork) = open();
        let frame = AudioFrame::silent(SampleRate::Hz8000, 160);
        let offered = QUEUE + 7;
        let sent = (0..offered).filter(|_| sink.offer(&frame, &frame)).count();
        assert_eq!(sent, QUEUE);
        assert_eq!(fork.dropped(), 7);
        assert!(fork.ticks.try_recv().is_ok());
        assert!(sink.offer(&frame, &frame), "room again once the consumer took a tick");
    }

    #[test]
    fn dropping_the_sink_ends_the_consumers_stream() {
        let (sink, mut fork) = open();
        drop(sink);
        assert!(fork.ticks.blocking_recv().is_none());
    }
}
