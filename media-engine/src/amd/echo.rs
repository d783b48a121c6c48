//! Telling Bond's own audio coming back (echo) from the callee: while Bond
//! talks to the callee, what is heard no louder than what was recently sent
//! is taken for echo.

use super::activity::FrameLevel;

/// How far back sent audio can come back as echo (frames).
const ECHO_FRAMES: usize = 16;
/// Heard audio within this many dB of the loudest recently sent frame may be echo.
const ECHO_MARGIN_DB: f64 = 2.0;

/// Recent levels of what Bond sent the callee, to tell echo from the callee.
#[derive(Debug, Clone)]
pub(super) struct EchoGuard {
    sent_db: [f64; ECHO_FRAMES],
    next: usize,
}

impl EchoGuard {
    pub(super) fn push(&mut self, sent: Option<FrameLevel>) {
        self.sent_db[self.next] = sent.map_or(0.0, |l| l.power_db);
        self.next = (self.next + 1) % ECHO_FRAMES;
    }

    /// `heard` could be Bond's own audio coming back.
    pub(super) fn masks(&self, heard: FrameLevel, floor_db: f64) -> bool {
        let loudest = self.sent_db.iter().copied().fold(0.0, f64::max);
        loudest > floor_db + 6.0 && heard.power_db < loudest + ECHO_MARGIN_DB
    }
}

impl Default for EchoGuard {
    fn default() -> Self {
        Self { sent_db: [0.0; ECHO_FRAMES], next: 0 }
    }
}
