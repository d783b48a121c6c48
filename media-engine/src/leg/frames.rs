//! The two frames a decoding leg works in: what it heard and what it sent on
//! its latest tick. A leg passing packets through does not tick, so it gives
//! their room back ([`TickFrames::park`]) and keeps only their timestamps; the
//! frames come back, silent and at those timestamps, when it ticks again.

use std::sync::LazyLock;

use bond_codecs::{AudioFrame, SampleRate};

#[derive(Debug)]
pub(super) struct TickFrames {
    live: Option<Box<Frames>>,
    rate: SampleRate,
    /// The frames' timestamps while parked.
    heard_at: u64,
    sent_at: u64,
}

#[derive(Debug)]
struct Frames {
    heard: AudioFrame,
    sent: AudioFrame,
}

/// A silent frame at each rate, for a parked leg asked what it heard or sent.
static SILENT: LazyLock<[AudioFrame; 4]> =
    LazyLock::new(|| SampleRate::ALL.map(|rate| AudioFrame::silent(rate, 0)));

impl TickFrames {
    /// Parked: the room is made on the first tick.
    pub fn new(rate: SampleRate) -> Self {
        Self { live: None, rate, heard_at: 0, sent_at: 0 }
    }

    /// What the leg heard on its latest tick (silence while parked).
    pub fn heard(&self) -> &AudioFrame {
        self.live.as_ref().map_or_else(|| silent(self.rate), |f| &f.heard)
    }

    /// What the leg sent on its latest tick (silence while parked).
    pub fn sent(&self) -> &AudioFrame {
        self.live.as_ref().map_or_else(|| silent(self.rate), |f| &f.sent)
    }

    pub fn heard_mut(&mut self) -> &mut AudioFrame {
        &mut self.unpark().heard
    }

    pub fn sent_mut(&mut self) -> &mut AudioFrame {
        &mut self.unpark().sent
    }

    /// Give the frames' room back, keeping their timestamps.
    pub fn park(&mut self) {
        if let Some(frames) = self.live.take() {
            self.heard_at = frames.heard.timestamp;
            self.sent_at = frames.sent.timestamp;
        }
    }

    fn unpark(&mut self) -> &mut Frames {
        let (rate, heard_at, sent_at) = (self.rate, self.heard_at, self.sent_at);
        self.live.get_or_insert_with(|| {
            Box::new(Frames {
                heard: AudioFrame::silent(rate, heard_at),
                sent: AudioFrame::silent(rate, sent_at),
            })
        })
    }
}

fn silent(rate: SampleRate) -> &'static AudioFrame {
    let index = SampleRate::ALL.iter().position(|&r| r == rate).unwrap_or(0);
    &SILENT[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_frames_come_back_silent_at_the_timestamps_they_had() {
        let mut frames = TickFrames::new(SampleRate::Hz8000);
        assert_eq!(frames.heard().timestamp, 0);
        frames.heard_mut().samples_mut().fill(1000);
        frames.heard_mut().timestamp = 1600;
        frames.sent_mut().timestamp = 3200;
        frames.park();
        assert!(frames.live.is_none(), "no room while parked");
        assert_eq!(frames.sent().rate(), SampleRate::Hz8000);
        assert_eq!(frames.heard_mut().timestamp, 1600);
        assert!(frames.heard().samples().iter().all(|&s| s == 0));
        assert_eq!(frames.sent().timestamp, 3200);
    }
}
